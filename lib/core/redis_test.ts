/**
 * Blocking reads against a real redis-server: one that gets no reply fails at its deadline on a
 * fresh connection instead of hanging (what ioredis can do after a reconnect).
 */
import assert from "node:assert/strict";
import { blockingRedis, connectRedis, type Redis, waitReady } from "./redis.ts";
import { startRedis, uniquePrefix, waitFor } from "../../tests/helpers.ts";

Deno.test("a blocking read without a reply fails at its deadline; the next one runs on a new connection", async () => {
  await using redis = await startRedis();
  const admin = connectRedis(redis.url, "command");
  const made: Redis[] = [];
  const blocking = blockingRedis(() => {
    const conn = connectRedis(redis.url, "blocking");
    made.push(conn);
    return conn;
  }, 300);
  const [from, to] = [`${uniquePrefix()}:from`, `${uniquePrefix()}:to`];
  try {
    await waitReady(admin);
    await waitReady(blocking.redis);
    // Redis holds every write command, BLMOVE included, for 1.5 s: no reply comes in time.
    await admin.client("PAUSE", 1_500, "WRITE");
    const started = Date.now();
    await assert.rejects(
      blocking.call(100, (r) => r.blmove(from, to, "RIGHT", "LEFT", 0.1)),
      /did not answer a blocking read within 400 ms/,
    );
    assert.ok(Date.now() - started < 1_400, "failed at its deadline, not when Redis answered");
    assert.equal(made.length, 2, "the silent connection was replaced");
    await waitFor(() => made[0]!.status === "end" || undefined, { what: "the old one closed" });

    await admin.lpush(from, "job-1"); // runs once the pause is over
    const moved = await blocking.call(
      2_000,
      (r) => r.blmove(from, to, "RIGHT", "LEFT", 2),
    );
    assert.equal(moved, "job-1");
    assert.equal(made.length, 2, "a read that is answered keeps its connection");
  } finally {
    blocking.disconnect();
    admin.disconnect();
  }
});
