/**
 * The worker pool against a real redis-server and real sandboxed Workers: a busy job type claims
 * ahead of its free slots, and what it claimed ahead is never lost or charged an attempt.
 */
import assert from "node:assert/strict";
import { loadConfig } from "./config.ts";
import { createLogger } from "./log.ts";
import { startPlatform } from "./platform.ts";
import { createQueue, type JobRecord, type NewJob, newJobId } from "./queue.ts";
import { connectRedis, waitReady } from "./redis.ts";
import { redisKeys } from "./keys.ts";
import { startRedis, tempDir, uniquePrefix, waitFor } from "../tests/helpers.ts";

const noop = (sleepMs: number): NewJob => ({
  id: newJobId(),
  type: "noop",
  params: { sleep_ms: sleepMs },
  maxAttempts: 3,
  timeoutS: 60,
});

Deno.test("a busy type claims ahead of its slots; at shutdown those jobs go back without losing an attempt", async () => {
  await using redis = await startRedis();
  await using dir = await tempDir();
  const prefix = uniquePrefix();
  // The test's own connection, which outlives the platform's.
  const conn = connectRedis(redis.url, "command");
  await waitReady(conn);
  const queue = createQueue({ redis: conn, prefix });
  const config = loadConfig({
    REDIS_URL: redis.url,
    STREAMPLAY_DATA_DIR: dir.path,
    STREAMPLAY_REDIS_PREFIX: prefix,
    STREAMPLAY_CONCURRENCY: "4",
    STREAMPLAY_SHUTDOWN_GRACE_S: "10",
    STREAMPLAY_LOG_LEVEL: "warn",
  });
  const platform = await startPlatform(config, {
    role: "worker",
    listen: false,
    log: createLogger({ level: "warn" }),
    version: "test",
  });
  let closed = false;
  try {
    const runner = platform.runner!;
    // Short jobs for over two seconds: the type starts well over 80 a second, so its window
    // (50 ms of starts, at most the concurrency) is the full 4.
    const until = Date.now() + 2_200;
    while (Date.now() < until) {
      await queue.enqueue(Array.from({ length: 100 }, () => noop(0)));
      await new Promise((r) => setTimeout(r, 50));
    }
    const long = Array.from({ length: 12 }, () => noop(1_500));
    await queue.enqueue(long);
    const states = async () => (await Promise.all(long.map((j) => queue.get(j.id)))) as JobRecord[];

    // 4 run; up to 4 more are claimed (running in Redis) and wait here for a slot.
    const claimed = await waitFor(async () => {
      const s = await states();
      const running = s.filter((j) => j.status === "running").length;
      return running > 4 ? running : undefined;
    }, { timeoutMs: 10_000 });
    assert.ok(claimed <= 8, `at most the concurrency ahead (${claimed} claimed)`);
    assert.ok(runner.runningIds().length <= 4, "never more running than the concurrency");

    await platform.close();
    closed = true;
    const after = await states();
    for (const j of after) {
      assert.ok(
        (j.status === "succeeded" && j.attempts === 1) ||
          (j.status === "queued" && j.attempts === 0),
        `job ${j.id} ended ${j.status} after ${j.attempts} attempts`,
      );
    }
    assert.ok(after.some((j) => j.status === "succeeded"), "the running ones finished");
    assert.ok(after.some((j) => j.status === "queued"), "the ones claimed ahead went back");
    const processing = await conn.lrange(redisKeys(prefix).processing(runner.consumerId), 0, -1);
    assert.deepEqual(processing, [], "nothing left in the processing list");
  } finally {
    if (!closed) await platform.close();
    conn.disconnect();
  }
});
