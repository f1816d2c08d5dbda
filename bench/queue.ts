/**
 * `deno task bench:queue` — no-op jobs end to end (enqueue → Redis → sandboxed Worker → result in
 * DuckDB) against BullMQ (Node, concurrency 50) on the same Redis, plus queue-to-start latency for
 * warm and cold Workers. The drivers are exported for other benchmarks (e.g. `bench/metrics.ts`).
 */
import { parseArgs } from "node:util";
import { loadConfig } from "../lib/core/config.ts";
import { createLogger } from "../lib/core/log.ts";
import { type Platform, startPlatform } from "../lib/platform.ts";
import { type NewJob, newJobId } from "../lib/jobs/queue.ts";
import {
  connectRedis,
  type EmbeddedRedis,
  startEmbeddedRedis,
  waitReady,
} from "../lib/core/redis.ts";
import {
  benchReport,
  benchTempDir,
  ensurePeers,
  percentile,
  ROOT,
  round,
  undoOnInterrupt,
} from "./common.ts";
import { noopJob } from "../workers/noop.ts";
import { parts } from "../main.ts";

export async function startBenchRedis(): Promise<EmbeddedRedis> {
  return await startEmbeddedRedis({ dir: await benchTempDir("bench-redis-") });
}

/** The platform as `deno task start` runs it (API off), on a given Redis, in this process. */
export async function startBenchPlatform(
  redisUrl: string,
  env: Record<string, string> = {},
): Promise<Platform & { dataDir: string; startSeconds: number }> {
  const started = performance.now();
  const dataDir = await benchTempDir("bench-data-");
  const prefix = `bench-${crypto.randomUUID().slice(0, 6)}`;
  const config = loadConfig({
    REDIS_URL: redisUrl,
    STREAMPLAY_DATA_DIR: dataDir,
    STREAMPLAY_REDIS_PREFIX: prefix,
    STREAMPLAY_CONCURRENCY: "50",
    STREAMPLAY_LOG_LEVEL: "warn",
    ...env,
  });
  const platform = await startPlatform(config, {
    role: "all",
    parts,
    listen: false,
    log: createLogger({ level: "warn" }),
    version: "bench",
  });
  // The trial encodes that find the usable video encoders run once at start; measure after them.
  await platform.encoders.ready;
  const startSeconds = (performance.now() - started) / 1000;
  const stop = platform.close;
  return Object.assign(platform, {
    dataDir,
    startSeconds,
    close: async () => {
      await stop();
      await dropKeys(redisUrl, prefix);
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    },
  });
}

/**
 * Removes a finished run's keys, as the BullMQ peer obliterates its queue after its run, so
 * every round of either side starts on the same Redis.
 */
async function dropKeys(redisUrl: string, prefix: string) {
  const redis = connectRedis(redisUrl, "command");
  try {
    await waitReady(redis);
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 5000);
      cursor = next;
      if (keys.length) await redis.unlink(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

const noop = (): NewJob => ({
  id: newJobId(),
  type: "noop",
  params: {},
  maxAttempts: 1,
  timeoutS: 60,
});

async function succeededInDuckDB(platform: Platform): Promise<number> {
  const [row] = await platform.history!.query<{ n: number }>(
    `SELECT count(*)::INTEGER AS n FROM jobs WHERE status = 'succeeded'`,
  );
  return row?.n ?? 0;
}

/**
 * Enqueues `jobs` no-op jobs in batches and waits until DuckDB holds all their results. It polls
 * the last job by primary key (cheap) and counts everything only once that one is stored, so
 * the measurement itself does not load DuckDB.
 */
export async function measureThroughput(platform: Platform, jobs: number) {
  const before = await succeededInDuckDB(platform);
  const t0 = performance.now();
  let last = "";
  for (let i = 0; i < jobs; i += 1000) {
    const batch = Array.from({ length: Math.min(1000, jobs - i) }, noop);
    last = batch[batch.length - 1]!.id;
    await platform.queue.enqueue(batch);
  }
  while (true) {
    const job = await platform.history!.getJob(last);
    if (job?.status === "succeeded" && (await succeededInDuckDB(platform)) >= before + jobs) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const seconds = (performance.now() - t0) / 1000;
  return { jobs, seconds, jobs_per_s: jobs / seconds };
}

/** Queue-to-start latency: one job at a time, from enqueue to the job's code starting. */
export async function measureLatency(platform: Platform, count: number, gapMs = 2) {
  const latencies: number[] = [];
  for (let i = 0; i < count; i++) {
    const job = noop();
    const enqueuedAt = performance.timeOrigin + performance.now();
    await platform.queue.enqueue([job]);
    let started: number | undefined;
    while (started === undefined) {
      const record = await platform.queue.get(job.id);
      if (record?.status === "succeeded") {
        started = (record.result as { started_ms: number }).started_ms;
      } else await new Promise((r) => setTimeout(r, 1));
    }
    latencies.push(started - enqueuedAt);
    await new Promise((r) => setTimeout(r, gapMs));
  }
  latencies.sort((a, b) => a - b);
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

/**
 * The floor under a cold start: a bare Deno Worker of the noop job's module, with the same
 * permissions, from `new Worker` to its "ready" answer, without the platform around it.
 */
export async function measureWorkerFloor(count: number) {
  const spec = noopJob.sandbox({} as never, {} as never);
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const worker = new Worker(spec.module, {
      type: "module",
      deno: { permissions: spec.permissions },
    } as WorkerOptions);
    await new Promise<void>((resolve) => {
      worker.onmessage = (e) => {
        if (e.data?.t === "ready") resolve();
      };
      worker.postMessage({ t: "init", data: null });
    });
    times.push(performance.now() - t0);
    worker.terminate();
    await new Promise((r) => setTimeout(r, 10));
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}

async function runBullmq(redisUrl: string, jobs: number, latency: number) {
  await ensurePeers();
  const child = new Deno.Command("node", {
    args: [
      "bullmq.mjs",
      "--redis",
      redisUrl,
      "--jobs",
      String(jobs),
      "--concurrency",
      "50",
      "--latency",
      String(latency),
    ],
    cwd: `${ROOT}bench/peers`,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Without its Redis (which ends with an interrupted bench) it would retry for ever.
  undoOnInterrupt(() => child.kill("SIGKILL"));
  const { stdout, success, stderr } = await child.output();
  if (!success) throw new Error(`BullMQ peer failed: ${new TextDecoder().decode(stderr)}`);
  return JSON.parse(new TextDecoder().decode(stdout).trim().split("\n").pop()!) as {
    jobs_per_s: number;
    seconds: number;
    latency_p50_ms: number;
    latency_p99_ms: number;
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      jobs: { type: "string", default: "50000" },
      latency: { type: "string", default: "300" },
      rounds: { type: "string", default: "5" },
      json: { type: "string" },
    },
  });
  const report = benchReport("queue");
  const jobs = Number(values.jobs);
  const latencyCount = Number(values.latency);
  const rounds = Number(values.rounds);
  const redis = await startBenchRedis();
  try {
    console.log(
      `no-op jobs: ${jobs} per round, ${rounds} rounds, concurrency 50, Redis ${redis.url}`,
    );
    const ours: number[] = [];
    const peers: number[] = [];
    let bull = { latency_p50_ms: NaN, latency_p99_ms: NaN };
    // Alternate the two so background noise hits both alike.
    for (let r = 0; r < rounds; r++) {
      const platform = await startBenchPlatform(redis.url);
      if (r === 0) {
        console.log(
          `  platform start, encoder detection included: ${platform.startSeconds.toFixed(2)} s` +
            " (measured after it)",
        );
      }
      await measureThroughput(platform, 2000); // warm-up
      ours.push((await measureThroughput(platform, jobs)).jobs_per_s);
      await platform.close();
      const b = await runBullmq(redis.url, jobs, r === rounds - 1 ? latencyCount : 0);
      peers.push(b.jobs_per_s);
      if (r === rounds - 1) bull = b;
      console.log(
        `  round ${r + 1}: streamplay ${ours[r]!.toFixed(0)} jobs/s, BullMQ ${
          peers[r]!.toFixed(0)
        } jobs/s`,
      );
    }
    const warmPlatform = await startBenchPlatform(redis.url, { STREAMPLAY_CONCURRENCY: "4" });
    await measureLatency(warmPlatform, 20);
    const warm = await measureLatency(warmPlatform, latencyCount);
    await warmPlatform.close();
    // Cold: no idle Worker. Enqueued by this process (the API in `deno task start`), the job's
    // Worker starts during the queue's round trips; enqueued elsewhere, it starts at the claim.
    const measureCold = async (prestart: boolean) => {
      const coldPlatform = await startBenchPlatform(redis.url, {
        STREAMPLAY_CONCURRENCY: "4",
        STREAMPLAY_WARM_WORKERS: "0",
        STREAMPLAY_PRESTART: String(prestart),
      });
      await measureLatency(coldPlatform, 5, 10);
      const cold = await measureLatency(coldPlatform, Math.min(latencyCount, 100), 10);
      await coldPlatform.close();
      return cold;
    };
    const cold = await measureCold(true);
    const coldAtClaim = await measureCold(false);
    const floor = await measureWorkerFloor(Math.min(latencyCount, 100));

    const median = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);
    const ratio = median(ours) / median(peers);
    const bullmq = "BullMQ 5 (Node)";
    report.add({
      metric: "no-op jobs end to end (enqueue → Redis → sandboxed Worker → DuckDB), concurrency 50",
      ours: round(median(ours), 0),
      peer: round(median(peers), 0),
      peer_name: bullmq,
      unit: "jobs/s",
      target: "≥ 1.0× BullMQ",
      met: ratio >= 1,
    });
    report.add({ metric: "ratio to BullMQ (median of rounds)", ours: round(ratio), unit: "×" });
    for (const [i, jobsPerS] of ours.entries()) {
      report.add({
        metric: `round ${i + 1} of ${rounds}`,
        ours: round(jobsPerS, 0),
        peer: round(peers[i]!, 0),
        peer_name: bullmq,
        unit: "jobs/s",
      });
    }
    const latency = (
      metric: string,
      p: { p50: number; p99: number },
      peer: { p50: number; p99: number; name: string },
      target?: number,
    ) => {
      report.add({
        metric: `${metric} p50`,
        ours: round(p.p50),
        peer: round(peer.p50),
        peer_name: peer.name,
        unit: "ms",
        target: target === undefined ? null : `p50 ≤ ${target} ms`,
        met: target === undefined ? null : p.p50 <= target,
      });
      report.add({
        metric: `${metric} p99`,
        ours: round(p.p99),
        peer: round(peer.p99),
        peer_name: peer.name,
        unit: "ms",
      });
    };
    const bullLatency = { p50: bull.latency_p50_ms, p99: bull.latency_p99_ms, name: bullmq };
    const bareWorker = { ...floor, name: "bare Deno Worker, new → ready" };
    latency("queue-to-start, warm Worker pool,", warm, bullLatency, 2);
    latency("queue-to-start, cold Worker, enqueued by this process,", cold, bareWorker, 15);
    latency("queue-to-start, cold Worker, enqueued elsewhere,", coldAtClaim, bareWorker);
    report.print();
    await report.write();
  } finally {
    await redis.close();
    await Deno.remove(redis.dir, { recursive: true }).catch(() => {});
  }
  Deno.exit(0);
}
