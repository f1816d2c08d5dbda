/**
 * `http-bench`: HTTP load against one URL (concurrency or a sweep of `levels`, duration or count,
 * rate cap, ramp-up) reporting throughput, errors, statuses, latency percentiles and a sizing
 * report of the target.
 */
import { z } from "@hono/zod-openapi";
import type { JobType } from "../lib/jobs/job_type.ts";
import { NO_PERMISSIONS } from "../lib/jobs/sandbox.ts";
import {
  buildSizingReport,
  capacityFields,
  checkCapacity,
  levelsOf,
  type SweepRecord,
} from "../lib/capacity/report.ts";
import type { Sample } from "../lib/jobs/sampler.ts";
import type { LevelInfo } from "../lib/capacity/report.ts";
import type { LoadResult } from "../lib/load/http.ts";
import { thresholdsField } from "../lib/load/thresholds.ts";
import { type Egress, hostOf, hostPort, portOf } from "../lib/security/egress.ts";

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const RESERVED_HEADERS = new Set(["content-length", "transfer-encoding", "connection", "upgrade"]);

/**
 * The sizing report measures the TARGET: the processes named by `target_pids`, `target_process` or
 * `target_cgroup`, measured by the pool (never by the sandbox) and kept apart from the load
 * generator's own use. Without them the report says no resource cost was measured.
 */
export const HttpBenchParams = z.object({
  url: z.string().max(8192).openapi({ example: "http://127.0.0.1:8080/" }),
  method: z.enum(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]).default("GET"),
  headers: z.record(z.string(), z.string().max(8192)).default({})
    .superRefine((headers, ctx) => {
      for (const [name, value] of Object.entries(headers)) {
        if (!TOKEN.test(name)) {
          ctx.addIssue({ code: "custom", path: [name], message: "is not a valid header name" });
        } else if (RESERVED_HEADERS.has(name.toLowerCase())) {
          ctx.addIssue({ code: "custom", path: [name], message: "is set by the load generator" });
        } else if (/[\r\n\0]/.test(value)) {
          ctx.addIssue({ code: "custom", path: [name], message: "must not contain CR, LF or NUL" });
        }
      }
    }),
  body: z.string().max(512 * 1024).optional(),
  concurrency: z.number().int().min(1).max(1000).optional()
    .openapi({ description: "Connections (default 10); or give `levels` for a sweep." }),
  duration_s: z.number().min(1).max(3600).optional()
    .openapi({
      description: "Run time (per level); default 10 s unless `requests` is given.",
    }),
  requests: z.number().int().min(1).max(1_000_000_000).optional()
    .openapi({ description: "Stop after this many requests instead of after a duration." }),
  timeout_ms: z.number().int().min(1).max(600_000).default(10_000),
  rate: z.number().positive().max(10_000_000).optional()
    .openapi({ description: "Cap on requests per second across all connections." }),
  ramp_s: z.number().min(0).max(3600).default(0)
    .openapi({ description: "Connections open evenly over this many seconds." }),
  target_pids: z.array(z.number().int().min(2).max(4_194_304)).min(1).max(64).optional()
    .openapi({
      description: "The target server's processes on the machine that runs the job (with their " +
        "children): the sizing report measures them. They are only read, never stopped.",
    }),
  target_process: z.string().regex(
    /^[^/\0\n]{1,15}$/,
    "must be a process name (at most 15 " +
      "characters, as /proc/<pid>/comm spells it)",
  ).optional()
    .openapi({
      description: "Measure every process of this name (and its children).",
      example: "nginx",
    }),
  target_cgroup: z.string().max(512).regex(
    /^\/sys\/fs\/cgroup\/(?!.*\.\.)[A-Za-z0-9_.:@\/-]+$/,
    "must be a cgroup directory under /sys/fs/cgroup",
  ).optional()
    .openapi({ description: "Measure the processes of this cgroup (e.g. a container's)." }),
  thresholds: thresholdsField("http"),
  ...capacityFields(1000),
}).strict().superRefine((p, ctx) => {
  checkCapacity(p, ctx);
  if (p.levels !== undefined && p.requests !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["requests"],
      message: "a sweep (levels) runs each level for duration_s; requests cannot be used",
    });
  }
  if (p.duration_s !== undefined && p.requests !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["requests"],
      message: "give duration_s or requests, not both",
    });
  }
  if (p.duration_s !== undefined && p.ramp_s >= p.duration_s) {
    ctx.addIssue({ code: "custom", path: ["ramp_s"], message: "must be shorter than duration_s" });
  }
}).openapi("HttpBenchParams");

export type HttpBenchParams = z.infer<typeof HttpBenchParams>;

/** Connections per level: `levels`, or `concurrency` (default 10). */
export const httpLevels = (p: HttpBenchParams) =>
  levelsOf({ ...p, concurrency: p.concurrency ?? 10 });

/** Seconds between levels, so one level's teardown stays out of the next one's figures. */
export const SETTLE_S = 1;

/** What the pool tells the Worker once, before its job: where the target's host was checked. */
export interface HttpBenchInit {
  /** The target's addresses, as checked by the URL policy when the job started. */
  addresses: string[];
}

/**
 * The target's checked addresses (the job's egress), and each `address:port` to allow.
 *
 * The sandbox may connect to the target's port at the addresses the URL policy checked when the job
 * started, and nothing else: the Worker never looks the name up again.
 */
export function pinnedTarget(raw: string, egress: Egress): { addresses: string[]; net: string[] } {
  const url = new URL(raw);
  const addresses = [...egress.addresses.get(hostOf(url)) ?? []];
  if (addresses.length === 0) throw new Error(`no checked address for ${url.host}`);
  return { addresses, net: addresses.map((a) => hostPort(a, portOf(url))) };
}

const module = new URL("./http-bench.worker.ts", import.meta.url);

export const httpBenchJob: JobType<HttpBenchParams> = {
  name: "http-bench",
  summary: "HTTP load test of one URL: throughput, errors and latency percentiles.",
  params: HttpBenchParams,
  defaultTimeoutS: (p) =>
    p.requests !== undefined
      ? 3600
      : p.baseline_s + httpLevels(p).length * ((p.duration_s ?? 10) + SETTLE_S) + 60,
  urls: (p) => [{ field: "params.url", url: p.url }],
  egress: "pinned",
  sandbox: (p, { egress }) => {
    const target = pinnedTarget(p.url, egress);
    return {
      module,
      init: { addresses: target.addresses } satisfies HttpBenchInit,
      permissions: { ...NO_PERMISSIONS, net: target.net },
      jobsPerWorker: 1,
    };
  },
  artifacts: false,
  sample: true,
  sampleIntervalS: (p) => p.sample_interval_s,
  sampleTargets: (p) =>
    targetNamed(p)
      ? { pids: p.target_pids, process: p.target_process, cgroup: p.target_cgroup }
      : null,
  finish: (p, result, samples: Sample[]) => {
    const r = result as { sweep?: SweepRecord; levels?: Array<LoadResult> };
    if (!r.sweep) return result;
    const sizing = buildSizingReport(p, r.sweep, samples, {
      basis: targetNamed(p) ? "target" : "none",
      unit: "connections",
      info: (r.levels ?? []).map(levelInfo),
    });
    return { ...r, sizing };
  },
};

const targetNamed = (p: HttpBenchParams) =>
  p.target_pids !== undefined || p.target_process !== undefined || p.target_cgroup !== undefined;

/** Share of requests sent late above which a level's load fell short of the asked rate. */
const LATE_SHARE = 0.05;

/** What a level's load result tells the sizing report. */
export function levelInfo(l: LoadResult): LevelInfo {
  const lateShare = l.requests > 0 ? l.late_requests / l.requests : 0;
  return {
    concurrency: l.concurrency,
    timings: { "latency p50": l.latency_ms.p50 },
    shortfall: lateShare > LATE_SHARE
      ? `${(lateShare * 100).toFixed(0)} % of requests were sent late: the asked rate was not ` +
        "reached"
      : null,
    requests: l.requests,
    bytes_in: l.request_bytes,
    bytes_out: l.bytes,
  };
}
