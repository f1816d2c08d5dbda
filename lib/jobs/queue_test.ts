/**
 * Queue semantics against a real redis-server: claim and complete, retries with backoff, the
 * dead-letter list, cancel in every state, the reaper for a consumer whose lease expired,
 * requeue without losing an attempt, and the events each change emits.
 */
import assert from "node:assert/strict";
import { createQueue, newJobId, type Queue } from "./queue.ts";
import { connectRedis, type Redis, waitReady } from "../core/redis.ts";
import { startRedis, uniquePrefix } from "../../tests/helpers.ts";
import { parseStreamFields } from "./events.ts";

async function setup(options: { backoffBaseMs?: number } = {}) {
  const server = await startRedis();
  const redis = connectRedis(server.url, "command");
  await waitReady(redis);
  const prefix = uniquePrefix();
  const queue = createQueue({ redis, prefix, backoffBaseMs: options.backoffBaseMs ?? 50 });
  return {
    queue,
    redis,
    prefix,
    url: server.url,
    async [Symbol.asyncDispose]() {
      redis.disconnect();
      await server.close();
    },
  };
}

const job = (params: unknown = {}, maxAttempts = 3) => ({
  id: newJobId(),
  type: "noop",
  params,
  maxAttempts,
  timeoutS: 60,
});

async function statuses(redis: Redis, prefix: string, id: string): Promise<string[]> {
  const rows = await redis.xrange(`${prefix}:events`, "-", "+");
  return rows
    .map(([, f]) => parseStreamFields(f))
    .filter((e) => e?.jobId === id && e.type === "status")
    .map((e) => JSON.parse(e!.json).status);
}

Deno.test("claim takes jobs oldest first and complete stores the result", async () => {
  await using t = await setup();
  const a = job({ n: 1 });
  const b = job({ n: 2 });
  await t.queue.enqueue([a, b]);
  const claimed = await t.queue.claim("noop", "c1", 10, 10_000);
  assert.deepEqual(claimed.map((j) => j.id), [a.id, b.id]);
  assert.deepEqual(claimed[0]!.params, { n: 1 });
  assert.equal(claimed[0]!.attempt, 1);
  await t.queue.complete("c1", [{ id: a.id, kind: "ok", result: { answer: 42 } }]);
  const done = await t.queue.get(a.id);
  assert.equal(done!.status, "succeeded");
  assert.deepEqual(done!.result, { answer: 42 });
  assert.equal(done!.worker, "c1");
  assert.deepEqual(await statuses(t.redis, t.prefix, a.id), ["queued", "running", "succeeded"]);
  assert.deepEqual(await t.redis.lrange(`${t.prefix}:processing:c1`, 0, -1), [b.id]);
});

Deno.test("a failed attempt is retried after a backoff, the last one goes to the dead letter list", async () => {
  await using t = await setup({ backoffBaseMs: 200 });
  const j = job({}, 2);
  await t.queue.enqueue([j]);
  await t.queue.claim("noop", "c1", 1, 10_000);
  await t.queue.complete("c1", [{ id: j.id, kind: "fail", error: "boom" }]);
  assert.equal((await t.queue.get(j.id))!.status, "retrying");
  assert.equal(await t.queue.promote(), 0, "not before its backoff");
  await new Promise((r) => setTimeout(r, 250));
  assert.equal(await t.queue.promote(), 1);
  const again = await t.queue.claim("noop", "c1", 1, 10_000);
  assert.equal(again[0]!.attempt, 2);
  await t.queue.complete("c1", [{ id: j.id, kind: "fail", error: "boom again" }]);
  const failed = await t.queue.get(j.id);
  assert.equal(failed!.status, "failed");
  assert.equal(failed!.error, "boom again");
  assert.equal(failed!.attempts, 2);
  assert.deepEqual(await t.redis.lrange(`${t.prefix}:dead`, 0, -1), [j.id]);
  assert.deepEqual(await statuses(t.redis, t.prefix, j.id), [
    "queued",
    "running",
    "retrying",
    "queued",
    "running",
    "failed",
  ]);
});

Deno.test("a fatal error fails at once; requeue keeps the attempt count", async () => {
  await using t = await setup();
  const fatal = job({}, 5);
  const requeued = job({}, 5);
  await t.queue.enqueue([fatal, requeued]);
  await t.queue.claim("noop", "c1", 2, 10_000);
  await t.queue.complete("c1", [
    { id: fatal.id, kind: "fatal", error: "bad input" },
    { id: requeued.id, kind: "requeue" },
  ]);
  assert.equal((await t.queue.get(fatal.id))!.status, "failed");
  const back = await t.queue.get(requeued.id);
  assert.equal(back!.status, "queued");
  assert.equal(back!.attempts, 0);
  assert.equal(back!.worker, null);
  const next = await t.queue.claim("noop", "c2", 1, 10_000);
  assert.equal(next[0]!.id, requeued.id, "a requeued job is next in line");
});

Deno.test("cancel works for queued, retrying and running jobs, not for finished ones", async () => {
  await using t = await setup({ backoffBaseMs: 60_000 });
  const queued = job();
  const retrying = job();
  const running = job();
  await t.queue.enqueue([retrying, running]);
  await t.queue.claim("noop", "c1", 2, 10_000);
  await t.queue.complete("c1", [{ id: retrying.id, kind: "fail", error: "x" }]);
  await t.queue.enqueue([queued]);
  const sub = connectRedis(t.url, "subscriber");
  const messages: string[] = [];
  await sub.subscribe(`${t.prefix}:control`);
  sub.on("message", (_c: string, m: string) => messages.push(m));
  for (const j of [queued, retrying, running]) assert.equal(await t.queue.cancel(j.id), "ok");
  for (const j of [queued, retrying, running]) {
    assert.equal((await t.queue.get(j.id))!.status, "cancelled");
  }
  assert.equal(await t.redis.llen(`${t.prefix}:queue:noop`), 0);
  assert.equal(await t.redis.zcard(`${t.prefix}:delayed`), 0);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(messages, [`cancel ${running.id}`], "the running job's worker is told");
  assert.equal(await t.queue.cancel(queued.id), "cancelled", "already cancelled");
  assert.equal(await t.queue.cancel("job_missing"), "missing");
  // The worker finishing afterwards does not overwrite the cancellation.
  await t.queue.complete("c1", [{ id: running.id, kind: "ok", result: {} }]);
  assert.equal((await t.queue.get(running.id))!.status, "cancelled");
  sub.disconnect();
});

Deno.test("the reaper gives back the jobs of a consumer whose lease expired", async () => {
  await using t = await setup();
  const [a, b, last] = [job({}, 3), job({}, 3), job({}, 1)];
  await t.queue.enqueue([a, b, last]);
  await t.queue.claim("noop", "dead-worker", 3, 100);
  assert.equal(await t.queue.reap(), 0, "lease still valid");
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(await t.queue.reap(), 3);
  assert.equal((await t.queue.get(a.id))!.status, "retrying");
  assert.match((await t.queue.get(a.id))!.error!, /dead-worker stopped responding/);
  assert.equal((await t.queue.get(last.id))!.status, "failed", "no attempt left");
  assert.equal(await t.queue.promote(), 2);
  const retried = await t.queue.claim("noop", "alive", 5, 10_000);
  assert.deepEqual(retried.map((j) => j.id).sort(), [a.id, b.id].sort());
  assert.ok(retried.every((j) => j.attempt === 2));
  assert.equal(await t.redis.sismember(`${t.prefix}:consumers`, "dead-worker"), 0);
});

Deno.test("heartbeat reports jobs that were cancelled or taken over", async () => {
  await using t = await setup();
  const a = job();
  await t.queue.enqueue([a]);
  await t.queue.claim("noop", "c1", 1, 10_000);
  assert.deepEqual(await t.queue.heartbeat("c1", 10_000), []);
  await t.queue.cancel(a.id);
  assert.deepEqual(await t.queue.heartbeat("c1", 10_000), [a.id]);
});

Deno.test("retire gives back what a stopping consumer still holds", async () => {
  await using t = await setup();
  const a = job();
  await t.queue.enqueue([a]);
  // Moved by BLMOVE but not yet claimed: still "queued" in its hash.
  await t.redis.lmove(`${t.prefix}:queue:noop`, `${t.prefix}:processing:c1`, "RIGHT", "LEFT");
  assert.equal(await t.queue.retire("c1"), 1);
  assert.deepEqual(await t.redis.lrange(`${t.prefix}:queue:noop`, 0, -1), [a.id]);
});

Deno.test("depth counts waiting jobs per type", async () => {
  await using t = await setup();
  await t.queue.enqueue([job(), job(), { ...job(), type: "http-bench" }]);
  assert.deepEqual(await t.queue.depth(), { noop: 2, "http-bench": 1 });
});

Deno.test("with Redis gone, queue calls fail fast with QueueUnavailable", async () => {
  const server = await startRedis();
  const redis = connectRedis(server.url, "command");
  await waitReady(redis);
  const queue: Queue = createQueue({ redis, prefix: uniquePrefix() });
  await server.close();
  const started = Date.now();
  await assert.rejects(() => queue.enqueue([job()]), { name: "QueueUnavailable" });
  assert.ok(Date.now() - started < 5_000, "no hang");
  redis.disconnect();
});
