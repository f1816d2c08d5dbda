/**
 * Prometheus metrics (prom-client): the two registries (`local`, `shared`), the platform's own
 * metrics, and the hooks other features register into.
 */
import {
  AggregatorRegistry,
  Counter,
  type CounterConfiguration,
  Gauge,
  type GaugeConfiguration,
  Histogram,
  type HistogramConfiguration,
  Registry,
} from "prom-client";
import { createMiddleware } from "hono/factory";
import { routePath } from "hono/route";
import process from "node:process";
import type { JobObserver, RunOutcome } from "../jobs/runner.ts";
import { RUN_OUTCOMES } from "../jobs/runner/run_job.ts";
import { JOB_STATUSES } from "../jobs/queue.ts";
import type { MachineSample } from "./machine.ts";

/**
 * - `local` — about this process, exported as is: HTTP requests by route pattern, process CPU and
 *   memory, Redis and DuckDB health, and what is read from Redis at scrape time (job state changes
 *   counted by the queue's scripts, queue depth, worker processes and slots).
 * - `shared` — counted in the process where the work happens and summed over every streamplay
 *   process: each process publishes its `shared` snapshot through Redis every second
 *   (`lib/monitoring/cluster.ts`) and `/metrics` on any API process shows the sum (prom-client's
 *   AggregatorRegistry). Job wait and run time live here, and so must sessions and streams, which
 *   run on whichever worker process took them.
 */
export type Scope = "local" | "shared";

/** One metric of `registry.getMetricsAsJSON()`. */
export interface MetricJson {
  name: string;
  help: string;
  type: string;
  aggregator: string;
  values: Array<{ value: number; labels: Record<string, string | number>; metricName?: string }>;
}

export type Snapshot = MetricJson[];

/** What the platform looks like in Redis, read in one round trip (see `lib/monitoring/cluster.ts`). */
export interface PlatformCounts {
  jobCounts: Array<{ type: string; status: string; count: number }>;
  queues: Record<string, number>;
  retrying: number;
  dead: number;
  /** Each process with a worker pool: its slots, shared and own (sessions) together. */
  workers: Array<{ host: string; slots: number }>;
}

export interface HealthSample {
  redisUp: boolean;
  redisLatencyS: number | null;
  duckdbUp: boolean;
  duckdbBytes: number | null;
}

export interface Metrics {
  readonly local: Registry;
  readonly shared: Registry;
  counter<T extends string = string>(scope: Scope, config: CounterConfiguration<T>): Counter<T>;
  gauge<T extends string = string>(scope: Scope, config: GaugeConfiguration<T>): Gauge<T>;
  histogram<T extends string = string>(
    scope: Scope,
    config: HistogramConfiguration<T>,
  ): Histogram<T>;
  /** The worker pool's hooks: wait and run time histograms, running jobs. */
  readonly jobs: JobObserver;
  /** Hono middleware counting every request by method, route pattern and status. */
  readonly http: ReturnType<typeof createMiddleware>;
  /** Sets what was read from Redis: job state changes, queue depths, workers. */
  setPlatform(counts: PlatformCounts): void;
  /** Sets the health gauges given (the others keep their value). */
  setHealth(health: Partial<HealthSample>): void;
  setMachine(sample: MachineSample): void;
  /** This process's shared metrics, for its report to the others. */
  sharedSnapshot(): Promise<Snapshot>;
  /** Exposition text: the local registry and the platform-wide sum of the shared one. */
  render(shared: Snapshot): Promise<{ text: string; contentType: string }>;
}

const WAIT_BUCKETS = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
  300,
  900,
];
const RUN_BUCKETS = [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600];
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** The platform-wide sum of several shared snapshots, as a registry. */
export function aggregate(snapshots: Snapshot[]): Registry {
  // deno-lint-ignore no-explicit-any
  return AggregatorRegistry.aggregate(snapshots as any);
}

/**
 * Labels are bounded: job type, status, outcome, route pattern, method, host. Never an id. Every
 * label set known at start (job types × statuses and outcomes) is there from the first scrape at 0,
 * so `increase(...{status="failed"}[5m]) > 0` sees the first failure of a type.
 *
 * Hooks for features are get-or-create by name, so pool-side and API-side code can share one:
 *
 *   const active = metrics.gauge("shared", { name: "streamplay_sessions_active", help: "..." });
 *   active.inc(); ... active.dec();
 *
 * The dashboard series that read such metrics are listed in `lib/monitoring/series.ts`.
 */
export function createMetrics(options: {
  version: string;
  /** The job types this platform runs: their series exist from the start, at 0. */
  jobTypes?: readonly string[];
}): Metrics {
  const jobTypes = options.jobTypes ?? [];
  const local = new Registry();
  const shared = new Registry();
  const registries = { local, shared };

  const getOrCreate = <M>(scope: Scope, name: string, make: (r: Registry) => M): M => {
    const existing = registries[scope].getSingleMetric(name);
    return (existing as M | undefined) ?? make(registries[scope]);
  };
  const counter = <T extends string>(scope: Scope, config: CounterConfiguration<T>) =>
    getOrCreate(scope, config.name, (r) => new Counter<T>({ ...config, registers: [r] }));
  const gauge = <T extends string>(scope: Scope, config: GaugeConfiguration<T>) =>
    getOrCreate(scope, config.name, (r) => new Gauge<T>({ ...config, registers: [r] }));
  const histogram = <T extends string>(scope: Scope, config: HistogramConfiguration<T>) =>
    getOrCreate(scope, config.name, (r) => new Histogram<T>({ ...config, registers: [r] }));

  // ---- jobs: counted in Redis by the queue scripts, read at scrape time ----
  const jobsTotal = counter("local", {
    name: "streamplay_jobs_total",
    help:
      "Job state changes by type and new status (queued, running, retrying, succeeded, failed, " +
      "cancelled), counted platform-wide by the queue's Redis scripts",
    labelNames: ["type", "status"],
  });
  const queueDepth = gauge("local", {
    name: "streamplay_queue_depth",
    help: "Jobs waiting in the queue, by type",
    labelNames: ["type"],
  });
  const retrying = gauge("local", {
    name: "streamplay_jobs_retry_waiting",
    help: "Jobs waiting out their retry backoff",
  });
  const dead = gauge("local", {
    name: "streamplay_dead_letter_jobs",
    help: "Jobs in the dead-letter list (failed their last attempt)",
  });
  const workerProcesses = gauge("local", {
    name: "streamplay_worker_processes",
    help: "Processes running a worker pool, by host (reported through Redis every second)",
    labelNames: ["host"],
  });
  const workerSlots = gauge("local", {
    name: "streamplay_worker_slots",
    help: "Jobs the worker pools may run at once, by host: their shared slots plus each " +
      "type's own (sessions), so that streamplay_jobs_running counts against it",
    labelNames: ["host"],
  });

  // ---- jobs: observed by the worker pool, summed over processes ----
  const wait = histogram("shared", {
    name: "streamplay_job_queue_wait_seconds",
    help: "Time from entering the queue to starting, by job type",
    labelNames: ["type"],
    buckets: WAIT_BUCKETS,
  });
  const run = histogram("shared", {
    name: "streamplay_job_run_seconds",
    help: "Time a job attempt ran in its sandbox, by type and outcome",
    labelNames: ["type", "outcome"],
    buckets: RUN_BUCKETS,
  });
  const running = gauge("shared", {
    name: "streamplay_jobs_running",
    help: "Jobs running now, by type",
    labelNames: ["type"],
  });
  const perType = new Map<
    string,
    { wait: Histogram.Internal<"type">; running: Gauge.Internal<"type"> }
  >();
  const perRun = new Map<string, Histogram.Internal<"type" | "outcome">>();
  for (const type of jobTypes) {
    wait.zero({ type });
    running.set({ type }, 0);
    for (const outcome of RUN_OUTCOMES) run.zero({ type, outcome });
  }
  /** The Redis-read job series of the known types, at 0 until Redis says otherwise. */
  const zeroJobCounts = () => {
    for (const type of jobTypes) {
      for (const status of JOB_STATUSES) jobsTotal.inc({ type, status }, 0);
      queueDepth.set({ type }, 0);
    }
  };
  zeroJobCounts();
  const typeChildren = (type: string) => {
    let c = perType.get(type);
    if (!c) perType.set(type, c = { wait: wait.labels(type), running: running.labels(type) });
    return c;
  };
  const jobs: JobObserver = {
    started(type, waitMs) {
      const c = typeChildren(type);
      c.wait.observe(waitMs / 1000);
      c.running.inc();
    },
    ended(type: string, outcome: RunOutcome, runMs: number) {
      typeChildren(type).running.dec();
      const key = `${type}|${outcome}`;
      let h = perRun.get(key);
      if (!h) perRun.set(key, h = run.labels(type, outcome));
      h.observe(runMs / 1000);
    },
  };

  // ---- HTTP ----
  const requests = counter("local", {
    name: "streamplay_http_requests_total",
    help: "HTTP requests by method, route pattern and status",
    labelNames: ["method", "route", "status"],
  });
  const latency = histogram("local", {
    name: "streamplay_http_request_duration_seconds",
    help: "HTTP request latency (to the response headers) by method and route pattern",
    labelNames: ["method", "route"],
    buckets: HTTP_BUCKETS,
  });
  const http = createMiddleware(async (c, next) => {
    const start = performance.now();
    try {
      await next();
    } finally {
      const method = METHODS.has(c.req.method) ? c.req.method : "OTHER";
      const route = routePath(c) || "unmatched";
      requests.inc({ method, route, status: String(c.res.status) });
      latency.observe({ method, route }, (performance.now() - start) / 1000);
    }
  });

  // ---- process, machine and dependencies ----
  const startSeconds = Math.round(Date.now() / 1000 - performance.now() / 1000);
  counter("local", {
    name: "process_cpu_seconds_total",
    help: "Total user and system CPU time spent in seconds",
    collect() {
      const u = process.cpuUsage();
      this.reset();
      this.inc((u.user + u.system) / 1e6);
    },
  });
  gauge("local", {
    name: "process_resident_memory_bytes",
    help: "Resident memory size in bytes",
    collect() {
      this.set(Deno.memoryUsage().rss);
    },
  });
  gauge("local", {
    name: "process_heap_bytes",
    help: "V8 heap size in bytes",
    collect() {
      this.set(Deno.memoryUsage().heapTotal);
    },
  });
  gauge("local", {
    name: "process_start_time_seconds",
    help: "Start time of the process since unix epoch in seconds",
  }).set(startSeconds);
  gauge("local", {
    name: "streamplay_build_info",
    help: "The streamplay version of this process (always 1)",
    labelNames: ["version"],
  }).set({ version: options.version }, 1);
  const hostCpu = gauge("local", {
    name: "streamplay_host_cpu_usage_ratio",
    help: "CPU busy on this machine over the last second, 0 to 1 (all cores)",
  });
  const hostMemory = gauge("local", {
    name: "streamplay_host_memory_usage_ratio",
    help: "Memory in use on this machine (total minus available), 0 to 1",
  });
  const diskFree = gauge("local", {
    name: "streamplay_data_disk_free_bytes",
    help: "Free space on the filesystem holding the data directory",
  });
  const redisUp = gauge("local", {
    name: "streamplay_redis_up",
    help: "Whether Redis answered the last read (1) or not (0)",
  });
  const redisLatency = gauge("local", {
    name: "streamplay_redis_latency_seconds",
    help: "Round trip of the last platform read from Redis",
  });
  const duckdbUp = gauge("local", {
    name: "streamplay_duckdb_up",
    help: "Whether DuckDB answered the last health query (1) or not (0)",
  });
  const duckdbBytes = gauge("local", {
    name: "streamplay_duckdb_size_bytes",
    help: "Size of the DuckDB file and its write-ahead log",
  });

  return {
    local,
    shared,
    counter,
    gauge,
    histogram,
    jobs,
    http,

    setPlatform(p) {
      jobsTotal.reset();
      queueDepth.reset();
      zeroJobCounts();
      for (const c of p.jobCounts) jobsTotal.inc({ type: c.type, status: c.status }, c.count);
      for (const [type, n] of Object.entries(p.queues)) queueDepth.set({ type }, n);
      retrying.set(p.retrying);
      dead.set(p.dead);
      workerProcesses.reset();
      workerSlots.reset();
      for (const w of p.workers) {
        if (w.slots <= 0) continue;
        workerProcesses.inc({ host: w.host });
        workerSlots.inc({ host: w.host }, w.slots);
      }
    },

    setHealth(h) {
      if (h.redisUp !== undefined) redisUp.set(h.redisUp ? 1 : 0);
      if (h.redisLatencyS != null) redisLatency.set(Math.round(h.redisLatencyS * 1e6) / 1e6);
      if (h.duckdbUp !== undefined) duckdbUp.set(h.duckdbUp ? 1 : 0);
      if (h.duckdbBytes != null) duckdbBytes.set(h.duckdbBytes);
    },

    setMachine(s) {
      hostCpu.set(s.cpu_percent / 100);
      hostMemory.set(s.memory_percent / 100);
      if (s.disk_free_bytes !== null) diskFree.set(s.disk_free_bytes);
    },

    sharedSnapshot: async () => (await shared.getMetricsAsJSON()) as unknown as Snapshot,

    async render(sharedSum) {
      const merged = Registry.merge([local, aggregate([sharedSum])]);
      return { text: await merged.metrics(), contentType: local.contentType };
    },
  };
}

/** Keeps only what may be summed forever (counters and histograms), e.g. of a departed process. */
export function monotonicPart(snapshot: Snapshot): Snapshot {
  return snapshot.filter((m) => m.type === "counter" || m.type === "histogram");
}
