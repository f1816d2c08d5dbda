/**
 * The platform as a whole, through Redis: what every streamplay process reports (worker slots,
 * running jobs, machine load, shared metrics), and the one-round-trip read of the platform's state
 * (job counters, queue depths, retries, dead letters, live reports).
 */
import { workerSlots } from "./health.ts";
import { hostname } from "node:os";
import type { Redis } from "../core/redis.ts";
import { LUA_KEYS, redisKeys } from "../core/keys.ts";
import { aggregate, type Metrics, monotonicPart, type Snapshot } from "./metrics.ts";
import type { MachineProbe, MachineSample } from "./machine.ts";
import type { Runner } from "../jobs/runner.ts";
import { errorMessage, type Logger } from "../core/log.ts";

export interface ProcessReport {
  id: string;
  host: string;
  pid: number;
  role: string;
  version: string;
  /** Shared worker slots (0 for a process without a worker pool): what queued jobs wait for. */
  concurrency: number;
  /** Jobs running in the shared slots. */
  running: number;
  /** Every slot, the shared ones and each type's own (sessions); absent from older processes. */
  slots?: number;
  /** Every job running here, sessions included; absent from older processes. */
  jobs_running?: number;
  machine: MachineSample;
  /** Epoch ms when it was published. */
  ts: number;
  /** Set on the last report of a process that stopped cleanly. */
  left?: boolean;
  metrics: Snapshot;
}

export interface PlatformState {
  /** Redis time of the read (epoch ms). */
  at: number;
  jobCounts: Array<{ type: string; status: string; count: number }>;
  queues: Record<string, number>;
  retrying: number;
  dead: number;
  /** Live reports, this process's own included. */
  reports: ProcessReport[];
}

const READ = LUA_KEYS + `
local counts = redis.call('HGETALL', K_JOB_COUNTS)
local types = redis.call('SMEMBERS', K_TYPES)
local depths = {}
for i, t in ipairs(types) do depths[i] = redis.call('LLEN', k_queue(t)) end
local reports = {}
for _, id in ipairs(redis.call('SMEMBERS', K_REPORTS)) do
  local r = redis.call('GET', k_report(id))
  if r then reports[#reports + 1] = r else redis.call('SREM', K_REPORTS, id) end
end
local t = redis.call('TIME')
return { counts, types, depths, redis.call('ZCARD', K_DELAYED), redis.call('LLEN', K_DEAD),
  reports, tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) }
`;

type ReadReply = [string[], string[], number[], number, number, string[], number];

export interface Cluster {
  read(): Promise<PlatformState>;
  publish(report: ProcessReport, ttlMs: number): Promise<void>;
}

export function createCluster(options: { redis: Redis; prefix: string }): Cluster {
  const { redis, prefix } = options;
  const keys = redisKeys(prefix);
  const r = redis as unknown as Record<string, (...args: string[]) => Promise<unknown>>;
  if (!r.spPlatformRead) redis.defineCommand("spPlatformRead", { numberOfKeys: 0, lua: READ });

  return {
    async read() {
      const [counts, types, depths, delayed, dead, reports, at] = (await r.spPlatformRead!(
        prefix,
      )) as ReadReply;
      const jobCounts: PlatformState["jobCounts"] = [];
      for (let i = 0; i + 1 < counts.length; i += 2) {
        const key = counts[i]!;
        const bar = key.lastIndexOf("|");
        jobCounts.push({
          type: key.slice(0, bar),
          status: key.slice(bar + 1),
          count: Number(counts[i + 1]),
        });
      }
      const queues: Record<string, number> = {};
      types.forEach((t, i) => (queues[t] = Number(depths[i] ?? 0)));
      const parsed: ProcessReport[] = [];
      for (const raw of reports) {
        try {
          parsed.push(JSON.parse(raw) as ProcessReport);
        } catch {
          // A report from an incompatible version: ignored until it expires.
        }
      }
      return {
        at: Number(at),
        jobCounts,
        queues,
        retrying: Number(delayed),
        dead: Number(dead),
        reports: parsed,
      };
    },

    async publish(report, ttlMs) {
      await redis.multi()
        .set(keys.report(report.id), JSON.stringify(report), "PX", ttlMs)
        .sadd(keys.reports, report.id)
        .exec();
    },
  };
}

/** A process id for reports: the worker pool's consumer id when there is one. */
export function processId(runner: Runner | undefined): string {
  return runner?.consumerId ??
    `${safeHostname()}:${Deno.pid}:${crypto.randomUUID().slice(0, 6)}`;
}

function safeHostname(): string {
  try {
    return hostname();
  } catch {
    return "host";
  }
}

export interface Reporter {
  id: string;
  /** The latest machine sample (taken by the last `tick`). */
  latest(): MachineSample | null;
  /** Samples the machine and publishes this process's report; returns the sample. */
  tick(): Promise<MachineSample>;
  /** Ticks every `intervalMs` until `stop`, calling `onTick` after each. */
  start(intervalMs: number, onTick?: (sample: MachineSample) => Promise<void> | void): void;
  /** Stops ticking and publishes a last report marked `left`. */
  stop(): Promise<void>;
}

export const REPORT_INTERVAL_MS = 1_000;
const REPORT_TTL_MS = 5_000;

/**
 * Each process publishes a report every second under `<prefix>:metrics:proc:<id>`, expiring after a
 * few seconds unless renewed, and listed in `<prefix>:metrics:procs`. A process that stops cleanly
 * publishes a last report marked `left`.
 */
export function createReporter(options: {
  cluster: Cluster;
  metrics: Metrics;
  machine: MachineProbe;
  runner: Runner | undefined;
  id: string;
  role: string;
  version: string;
  log: Logger;
}): Reporter {
  const { cluster, metrics, machine, runner, log } = options;
  const host = safeHostname();
  let latest: MachineSample | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  let warned = false;

  const report = async (sample: MachineSample, left: boolean): Promise<ProcessReport> => {
    const stats = runner?.stats();
    const all = stats && workerSlots(stats);
    return {
      id: options.id,
      host,
      pid: Deno.pid,
      role: options.role,
      version: options.version,
      concurrency: stats?.concurrency ?? 0,
      running: stats?.running ?? 0,
      slots: all?.slots ?? 0,
      jobs_running: all?.running ?? 0,
      machine: sample,
      ts: Date.now(),
      ...(left ? { left } : {}),
      metrics: await metrics.sharedSnapshot(),
    };
  };

  const tick = async () => {
    const sample = machine.sample();
    latest = sample;
    metrics.setMachine(sample);
    try {
      await cluster.publish(await report(sample, false), REPORT_TTL_MS);
      warned = false;
    } catch (err) {
      if (!warned) log.warn("could not publish the metrics report", { error: errorMessage(err) });
      warned = true;
    }
    return sample;
  };

  return {
    id: options.id,
    latest: () => latest,
    tick,
    start(intervalMs, onTick) {
      // Chained timeouts, not setInterval: a slow tick never overlaps the next.
      const loop = async () => {
        if (stopped) return;
        const started = performance.now();
        try {
          const sample = await tick();
          await onTick?.(sample);
        } catch (err) {
          log.warn("monitoring tick failed", { error: errorMessage(err) });
        }
        if (!stopped) {
          timer = setTimeout(loop, Math.max(50, intervalMs - (performance.now() - started)));
        }
      };
      timer = setTimeout(loop, 0);
    },
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      try {
        await cluster.publish(await report(latest ?? machine.sample(), true), REPORT_TTL_MS);
      } catch (err) {
        log.debug("could not publish the last metrics report", { error: errorMessage(err) });
      }
    },
  };
}

export interface PlatformSnapshot {
  state: PlatformState;
  /** The platform-wide sum of every process's shared metrics. */
  shared: Snapshot;
  /** Round trip of the Redis read, in seconds. */
  readS: number;
}

export interface PlatformView {
  /** Reads Redis, folds departed processes, and sums the shared metrics. */
  refresh(): Promise<PlatformSnapshot>;
}

/**
 * Turns the reports into the platform-wide sum of the shared metrics. When a process goes away, its
 * counters and histograms are kept (folded into a baseline) so the platform totals never go down;
 * its gauges (running jobs, sessions) go with it.
 */
export function createPlatformView(options: {
  cluster: Cluster;
  metrics: Metrics;
  selfId: string;
  runner: Runner | undefined;
}): PlatformView {
  const { cluster, metrics, selfId, runner } = options;
  const host = safeHostname();
  const lastSeen = new Map<string, Snapshot>();
  const folded = new Map<string, number>();
  let departed: Snapshot = [];

  const fold = async (snapshot: Snapshot) => {
    departed = (await aggregate([departed, monotonicPart(snapshot)])
      .getMetricsAsJSON()) as unknown as Snapshot;
  };

  const update = async (reports: ProcessReport[], now: number) => {
    const live = new Set<string>();
    for (const r of reports) {
      if (r.id === selfId || folded.has(r.id)) continue;
      if (r.left) {
        await fold(r.metrics);
        folded.set(r.id, now);
        lastSeen.delete(r.id);
      } else {
        live.add(r.id);
        lastSeen.set(r.id, r.metrics);
      }
    }
    for (const [id, snapshot] of lastSeen) {
      if (live.has(id)) continue;
      await fold(snapshot);
      folded.set(id, now);
      lastSeen.delete(id);
    }
    // A folded id never comes back (ids are unique per process start); forget it after a while.
    for (const [id, at] of folded) if (now - at > 60_000) folded.delete(id);
  };

  return {
    async refresh() {
      const started = performance.now();
      const state = await cluster.read();
      const readS = (performance.now() - started) / 1000;
      await update(state.reports, state.at);
      metrics.setPlatform({
        jobCounts: state.jobCounts,
        queues: state.queues,
        retrying: state.retrying,
        dead: state.dead,
        workers: [
          { host, slots: runner ? workerSlots(runner.stats()).slots : 0 },
          ...state.reports.filter((r) => r.id !== selfId)
            .map((r) => ({ host: r.host, slots: r.slots ?? r.concurrency })),
        ],
      });
      const own = await metrics.sharedSnapshot();
      const shared = (await aggregate([own, ...lastSeen.values(), departed])
        .getMetricsAsJSON()) as unknown as Snapshot;
      return { state, shared, readS };
    },
  };
}
