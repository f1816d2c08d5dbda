/**
 * The worker pool against a real redis-server and real sandboxed Workers: a busy job type claims
 * ahead of its free slots (unless STREAMPLAY_CLAIM_AHEAD_MS=0), and what it claimed ahead is
 * never lost or charged an attempt.
 */
import assert from "node:assert/strict";
import { loadConfig } from "./config.ts";
import { createLogger } from "./log.ts";
import { type Platform, startPlatform } from "./platform.ts";
import { createQueue, type JobRecord, type NewJob, newJobId } from "./queue.ts";
import { connectRedis, waitReady } from "./redis.ts";
import { redisKeys } from "./keys.ts";
import { startRedis, tempDir, uniquePrefix, waitFor } from "../tests/helpers.ts";

const CONCURRENCY = 4;

const noop = (sleepMs: number): NewJob => ({
  id: newJobId(),
  type: "noop",
  params: { sleep_ms: sleepMs },
  maxAttempts: 3,
  timeoutS: 60,
});

/**
 * A worker process (in this one) that has just run short jobs for over two seconds — well over
 * 80 starts a second, so a 50 ms window is the full concurrency — then gets 12 long jobs.
 */
async function busyWorker(env: Record<string, string>) {
  const redis = await startRedis();
  const dir = await tempDir();
  const prefix = uniquePrefix();
  // The test's own connection, which outlives the platform's.
  const conn = connectRedis(redis.url, "command");
  await waitReady(conn);
  const queue = createQueue({ redis: conn, prefix });
  const long = Array.from({ length: 100 }, () => noop(1_500));
  let shortJobs = 0;
  let platform: Platform | undefined;
  const close = async () => {
    await platform?.close();
    platform = undefined;
  };
  try {
    platform = await startPlatform(
      loadConfig({
        REDIS_URL: redis.url,
        STREAMPLAY_DATA_DIR: dir.path,
        STREAMPLAY_REDIS_PREFIX: prefix,
        STREAMPLAY_CONCURRENCY: String(CONCURRENCY),
        STREAMPLAY_SHUTDOWN_GRACE_S: "10",
        STREAMPLAY_LOG_LEVEL: "warn",
        ...env,
      }),
      { role: "worker", listen: false, log: createLogger({ level: "warn" }), version: "test" },
    );
    const until = Date.now() + 2_200;
    while (Date.now() < until) {
      await queue.enqueue(Array.from({ length: 100 }, () => noop(0)));
      shortJobs += 100;
      await new Promise((r) => setTimeout(r, 50));
    }
    await queue.enqueue(long);
  } catch (err) {
    await close();
    conn.disconnect();
    await redis.close();
    await dir[Symbol.asyncDispose]();
    throw err;
  }
  const runner = platform.runner!;
  return {
    queue,
    conn,
    prefix,
    runner,
    /** How many no-op jobs ran before the long ones (more than any second can have started). */
    shortJobs,
    longJobs: long.length,
    close,
    /** The long jobs' states in Redis. */
    states: async () => (await Promise.all(long.map((j) => queue.get(j.id)))) as JobRecord[],
    async [Symbol.asyncDispose]() {
      await close();
      conn.disconnect();
      await redis.close();
      await dir[Symbol.asyncDispose]();
    },
  };
}
const runningIn = (states: JobRecord[]) => states.filter((j) => j.status === "running").length;

Deno.test("a busy type claims ahead of its slots; at shutdown those jobs go back without losing an attempt", async () => {
  // The window is 20 ms of the start rate: at least one job from 50 starts/s, which a loaded
  // machine still makes, and no second can start more than all the jobs there were (about 4,400
  // short ones, 100 every 50 ms for 2.2 s, and the long ones): at most ~94 of the 100 long jobs.
  const aheadMs = 20;
  await using t = await busyWorker({ STREAMPLAY_CLAIM_AHEAD_MS: String(aheadMs) });
  // 4 run; a few more are claimed (running in Redis) and wait here for a slot.
  const claimed = await waitFor(async () => {
    const n = runningIn(await t.states());
    return n > CONCURRENCY ? n : undefined;
  }, { timeoutMs: 10_000, what: "jobs claimed ahead" });
  assert.ok(
    claimed <= CONCURRENCY + Math.floor((t.shortJobs + t.longJobs) * aheadMs / 1000),
    `at most STREAMPLAY_CLAIM_AHEAD_MS of the start rate ahead (${claimed} claimed)`,
  );
  assert.ok(t.runner.runningIds().length <= CONCURRENCY, "never more running than the concurrency");

  await t.close();
  const after = await t.states();
  for (const j of after) {
    assert.ok(
      (j.status === "succeeded" && j.attempts === 1) ||
        (j.status === "queued" && j.attempts === 0),
      `job ${j.id} ended ${j.status} after ${j.attempts} attempts`,
    );
  }
  assert.ok(after.some((j) => j.status === "succeeded"), "the running ones finished");
  assert.ok(after.some((j) => j.status === "queued"), "the ones claimed ahead went back");
  const processing = await t.conn.lrange(
    redisKeys(t.prefix).processing(t.runner.consumerId),
    0,
    -1,
  );
  assert.deepEqual(processing, [], "nothing left in the processing list");
});

Deno.test("STREAMPLAY_CLAIM_AHEAD_MS=0: a worker claims only what its slots can run", async () => {
  await using t = await busyWorker({ STREAMPLAY_CLAIM_AHEAD_MS: "0" });
  await waitFor(async () => runningIn(await t.states()) === CONCURRENCY, {
    timeoutMs: 10_000,
    what: "the slots to fill",
  });
  // For a second, while the first long jobs run, never more than the slots are claimed.
  const until = Date.now() + 1_000;
  while (Date.now() < until) {
    assert.ok(runningIn(await t.states()) <= CONCURRENCY);
    await new Promise((r) => setTimeout(r, 50));
  }
});
