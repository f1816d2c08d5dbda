/**
 * The worker pool against a real redis-server and real sandboxed Workers: a busy job type claims
 * ahead of its free slots (unless STREAMPLAY_CLAIM_AHEAD_MS=0), and what it claimed ahead is
 * never lost or charged an attempt; a job enqueued here starts its Worker before its claim.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../core/config.ts";
import { createLogger } from "../core/log.ts";
import { type Platform, startPlatform } from "../platform.ts";
import { createQueue, type JobRecord, type NewJob, newJobId, type Queue } from "./queue.ts";
import { createSandbox, PRESTART_WAIT_MS } from "./sandbox.ts";
import { noopJob } from "../../workers/noop.ts";
import { connectRedis, waitReady } from "../core/redis.ts";
import { redisKeys } from "../core/keys.ts";
import { startRedis, tempDir, uniquePrefix, waitFor } from "../../tests/helpers.ts";
import { parts } from "../../main.ts";

const CONCURRENCY = 4;

const noop = (sleepMs: number): NewJob => ({
  id: newJobId(),
  type: "noop",
  params: { sleep_ms: sleepMs },
  maxAttempts: 3,
  timeoutS: 60,
});

/**
 * A worker process (in this one) on its own Redis and data directory, with `queue`: another
 * process's queue on that Redis (the test's own connection, which outlives the platform's).
 * `stop()` stops the worker process alone.
 */
async function workerProcess(env: Record<string, string>) {
  const redis = await startRedis();
  const dir = await tempDir();
  const prefix = uniquePrefix();
  const conn = connectRedis(redis.url, "command");
  let platform: Platform | undefined;
  const stop = async () => {
    await platform?.close();
    platform = undefined;
  };
  const dispose = async () => {
    await stop();
    conn.disconnect();
    await redis.close();
    await dir[Symbol.asyncDispose]();
  };
  try {
    await waitReady(conn);
    platform = await startPlatform(
      loadConfig({
        REDIS_URL: redis.url,
        STREAMPLAY_DATA_DIR: dir.path,
        STREAMPLAY_REDIS_PREFIX: prefix,
        STREAMPLAY_LOG_LEVEL: "warn",
        ...env,
      }),
      {
        role: "worker",
        parts,
        listen: false,
        log: createLogger({ level: "warn" }),
        version: "test",
      },
    );
  } catch (err) {
    await dispose();
    throw err;
  }
  return {
    platform,
    queue: createQueue({ redis: conn, prefix }),
    conn,
    prefix,
    stop,
    [Symbol.asyncDispose]: dispose,
  };
}

/**
 * A worker process that has just run short jobs for over two seconds, then gets 100 long jobs
 * right behind the last of them. The short ones are fed as fast as the worker takes them (a new batch
 * whenever fewer than 100 wait), so a slow or loaded machine runs them at its own rate without
 * a backlog that would hold the long ones back.
 */
async function busyWorker(env: Record<string, string>) {
  const w = await workerProcess({
    STREAMPLAY_CONCURRENCY: String(CONCURRENCY),
    STREAMPLAY_SHUTDOWN_GRACE_S: "10",
    ...env,
  });
  const { queue, conn } = w;
  const waiting = redisKeys(w.prefix).queue("noop");
  const long = Array.from({ length: 100 }, () => noop(1_500));
  // The most the runner's start rate (what it claims ahead by) has been, sampled more often than
  // it changes.
  let mostRate = 0;
  const sample = () => {
    mostRate = Math.max(mostRate, w.platform.runner!.stats().startRate["noop"] ?? 0);
  };
  try {
    const until = Date.now() + 2_200;
    while (Date.now() < until) {
      sample();
      if (await conn.llen(waiting) < 100) {
        await queue.enqueue(Array.from({ length: 100 }, () => noop(0)));
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    // The long jobs come right behind a last batch of short ones in the same enqueue, so the
    // worker meets them while it is busy, not after waiting on an empty queue.
    await queue.enqueue([...Array.from({ length: 100 }, () => noop(0)), ...long]);
  } catch (err) {
    await w[Symbol.asyncDispose]();
    throw err;
  }
  return {
    ...w,
    runner: w.platform.runner!,
    /** Notes the runner's start rate now. */
    sample,
    /** The highest start rate the runner has measured for no-op jobs so far (jobs/s). */
    mostRate: () => {
      sample();
      return mostRate;
    },
    longIds: new Set(long.map((j) => j.id)),
    /** The long jobs' states in Redis. */
    states: async () => (await Promise.all(long.map((j) => queue.get(j.id)))) as JobRecord[],
  };
}
const runningIn = (states: JobRecord[]) => states.filter((j) => j.status === "running").length;

Deno.test("a busy type claims ahead of its slots; at shutdown those jobs go back without losing an attempt", async () => {
  // The window is 500 ms of the start rate: at least one job from 2 starts/s, which the
  // slowest machine makes with no-op jobs (a CI machine running browsers beside this test
  // started fewer than 50/s, too few for a 20 ms window).
  const aheadMs = 500;
  await using t = await busyWorker({ STREAMPLAY_CLAIM_AHEAD_MS: String(aheadMs) });
  // 4 run; a few more are claimed (running in Redis) and wait here for a slot.
  const claimed = await waitFor(async () => {
    t.sample();
    const n = runningIn(await t.states());
    return n > CONCURRENCY ? n : undefined;
  }, { timeoutMs: 30_000, what: "jobs claimed ahead" });
  const rate = t.mostRate();
  assert.ok(rate <= t.runner.stats().started, `a start rate (${rate}/s) from starts that happened`);
  assert.ok(
    claimed - CONCURRENCY <= Math.floor(rate * aheadMs / 1000),
    `at most STREAMPLAY_CLAIM_AHEAD_MS of the start rate ahead (${claimed} claimed, ` +
      `at most ${Math.round(rate)} starts/s)`,
  );
  assert.ok(t.runner.runningIds().length <= CONCURRENCY, "never more running than the concurrency");
  // On a loaded machine the short jobs' backlog may still hold the slots: stop once a long job
  // runs here, so there is one to finish within the grace period.
  await waitFor(() => t.runner.runningIds().some((id) => t.longIds.has(id)) || undefined, {
    timeoutMs: 30_000,
    what: "a long job running",
  });

  await t.stop();
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
    timeoutMs: 30_000,
    what: "the slots to fill",
  });
  // For a second, while the first long jobs run, never more than the slots are claimed.
  const until = Date.now() + 1_000;
  while (Date.now() < until) {
    assert.ok(runningIn(await t.states()) <= CONCURRENCY);
    await new Promise((r) => setTimeout(r, 50));
  }
});

/** A worker process without warm Workers, so every job needs a new one. */
const coldWorker = (env: Record<string, string>) =>
  workerProcess({ STREAMPLAY_CONCURRENCY: "2", STREAMPLAY_WARM_WORKERS: "0", ...env });

const runningJob = (queue: Queue, id: string) =>
  waitFor(async () => (await queue.get(id))?.status === "running" || undefined, {
    timeoutMs: 10_000,
    what: `job ${id} running`,
  });

Deno.test("a job enqueued by this process starts its Worker at once, and its claim uses that Worker", async () => {
  await using t = await coldWorker({});
  const { queue, sandbox } = t.platform;
  const job = noop(800);
  const enqueued = queue.enqueue([job]);
  // Before Redis has even answered the enqueue.
  assert.equal(sandbox.stats().workers, 1, "a Worker is starting for the job");
  await enqueued;
  await runningJob(queue, job.id);
  assert.deepEqual(sandbox.stats(), { workers: 1, busy: 1, profiles: 1 }, "no second Worker");
  await waitFor(async () => (await queue.get(job.id))?.status === "succeeded" || undefined, {
    timeoutMs: 10_000,
    what: "the job to succeed",
  });

  // A job another process enqueues gets its Worker when this one claims it.
  const other = noop(800);
  const elsewhere = t.queue.enqueue([other]);
  assert.equal(sandbox.stats().workers, 0);
  await elsewhere;
  await runningJob(queue, other.id);
  assert.equal(sandbox.stats().workers, 1);
});

Deno.test("STREAMPLAY_PRESTART=false: a Worker starts only when the job is claimed", async () => {
  await using t = await coldWorker({ STREAMPLAY_PRESTART: "false" });
  const { queue, sandbox } = t.platform;
  const job = noop(800);
  const enqueued = queue.enqueue([job]);
  assert.equal(sandbox.stats().workers, 0);
  await enqueued;
  await runningJob(queue, job.id);
  assert.equal(sandbox.stats().workers, 1);
});

Deno.test("a Worker started for a job that another process took goes after PRESTART_WAIT_MS", async () => {
  const sandbox = createSandbox({ log: createLogger({ level: "warn" }), warmPerProfile: 0 });
  try {
    const spec = noopJob.sandbox({} as never, {} as never);
    sandbox.prestart(spec);
    sandbox.prestart(spec);
    assert.equal(sandbox.stats().workers, 1, "one Worker for jobs of one profile on their way");
    await new Promise((r) => setTimeout(r, PRESTART_WAIT_MS - 1_000));
    assert.equal(sandbox.stats().workers, 1, "still waiting for its job");
    await waitFor(() => sandbox.stats().workers === 0 || undefined, {
      timeoutMs: 3_000,
      what: "the unused Worker to go",
    });
  } finally {
    await sandbox.close();
  }
});
