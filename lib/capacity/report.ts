/**
 * The sizing report of a benchmark: the capacity parameters both benchmark types accept, the
 * measurement windows a run records, and the report built from them (`buildSizingReport`) and
 * printed for people (`formatSizingReport`).
 */
import { z } from "@hono/zod-openapi";
import {
  CONFIDENCE,
  EXTRAPOLATION_LIMIT,
  fitResource,
  FORMULAS,
  project,
  type Projection,
  type Rates,
  rates,
  type ResourceFit,
  type ResourceModel,
  type SizingInputs,
} from "./projection.ts";
import type { Sample } from "../jobs/sampler.ts";

export const NodeShape = z.object({
  cores: z.number().positive().max(4096).openapi({ example: 8 }),
  memory_gb: z.number().positive().max(65_536).openapi({ example: 32 }),
}).strict().openapi("NodeShape");

/** The capacity parameters, shared by `http-bench` and `browser-bench`. */
export function capacityFields(maxConcurrency: number) {
  return {
    levels: z.array(z.number().int().min(1).max(maxConcurrency)).min(1).max(12).optional()
      .openapi({
        description: "A sweep: concurrency levels run in turn (strictly increasing); " +
          "use instead of `concurrency`. Four or more levels get a validated projection.",
        example: [1, 2, 4, 8],
      }),
    targets: z.array(z.number().int().min(1).max(10_000_000)).min(1).max(12)
      .default([10, 100, 1000])
      .openapi({ description: "Concurrencies to project the sizing to." }),
    safety_factor: z.number().min(1).max(10).default(1.5),
    baseline_os_mb: z.number().min(0).max(1_048_576).default(1024)
      .openapi({ description: "Memory the OS and platform need per machine, in MB." }),
    baseline_storage_gb: z.number().min(0).max(1_000_000).default(20)
      .openapi({ description: "Disk needed besides session artifacts, in GB." }),
    retention_days: z.number().min(0).max(3650).default(7),
    sessions_per_day: z.number().min(0).max(1_000_000).default(1)
      .openapi({ description: "Sessions each concurrent user slot runs per day." }),
    node_shape: NodeShape.default({ cores: 8, memory_gb: 32 })
      .openapi({ description: "Machine shape for the 'k nodes' answer." }),
    baseline_s: z.number().min(0).max(60).default(3)
      .openapi({ description: "Idle seconds sampled before the load starts (0: none)." }),
    sample_interval_s: z.number().min(0.25).max(60).default(1),
  };
}

export interface CapacityParams extends SizingInputs {
  concurrency?: number | undefined;
  levels?: number[] | undefined;
  targets: number[];
  baseline_s: number;
  sample_interval_s: number;
}

/** Cross-field checks of the capacity parameters, for a zod `superRefine`. */
export function checkCapacity(p: CapacityParams, ctx: z.RefinementCtx): void {
  if (p.levels !== undefined && p.concurrency !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["levels"],
      message: "give concurrency or levels, not both",
    });
  }
  p.levels?.forEach((level, i) => {
    if (i > 0 && level <= p.levels![i - 1]!) {
      ctx.addIssue({
        code: "custom",
        path: ["levels", i],
        message: `must be greater than the level before it (${p.levels![i - 1]}): ` +
          "levels must be strictly increasing",
      });
    }
  });
  if (p.node_shape.memory_gb * 1024 <= p.baseline_os_mb) {
    ctx.addIssue({
      code: "custom",
      path: ["node_shape", "memory_gb"],
      message: `must exceed baseline_os_mb (${p.baseline_os_mb} MB)`,
    });
  }
}

/** The concurrency levels a run goes through. */
export function levelsOf(p: { concurrency?: number | undefined; levels?: number[] | undefined }) {
  return p.levels ?? [p.concurrency ?? 1];
}

/** One level as the run recorded it (epoch ms): ramp from `started`, measured from `steady`. */
export interface LevelWindow {
  concurrency: number;
  started: number;
  steady: number;
  ended: number;
  /** The load generator's event-loop lag during the level (ms). */
  lag_ms?: { p99: number; max: number };
}

export interface SweepRecord {
  baseline: { from: number; to: number } | null;
  levels: LevelWindow[];
}

/** What the benchmark itself saw at a level, beside the resource samples. */
export interface LevelInfo {
  concurrency: number;
  /** Timings the users saw (ms), e.g. LCP p75 or latency p50: growth means saturation. */
  timings: Record<string, number | null>;
  /** The load fell short of what was asked (users that never started, requests sent late). */
  shortfall: string | null;
  /** HTTP: requests answered, and the bytes the target received and sent. */
  requests?: number;
  bytes_in?: number;
  bytes_out?: number;
}

/**
 * What the cost figures measure. `process`: the browsers (PSS) plus the platform process that
 * drives them; `system`: the machine net of its idle baseline; `target`: the processes of the
 * server an HTTP benchmark loads; `none`: nothing (the target's processes were not named).
 */
export type ResourceBasis = "process" | "system" | "target" | "none";

/** When a level stops counting as a cost measurement. */
export const THRESHOLDS = {
  /**
   * The measured processes waited for a CPU (run-queue delay) this many times as long as they
   * ran, more than they did at the lowest level: they ran out of CPU, whoever took it. Counted
   * over the lowest level because a multi-process browser waits on its own threads even on an
   * idle machine (0.3× at 1 user and 13 % machine CPU on the 2-core development box); an extra
   * 1.0× means the load doubled the wall time of their runnable work.
   */
  cpu_wait_ratio: 1.0,
  /** ...and at least this many cores' worth of waiting (a near-idle process's ratio is noise). */
  cpu_wait_min_cores: 0.1,
  /**
   * Machine CPU busy, % of all cores: out of CPU whatever the browsers' waits say (a target's
   * sizing goes by its own waits, the machine's CPU being the generator's too).
   */
  machine_cpu_pct: 90,
  /**
   * Past the knee: the machine this busy (% of all cores) _and_ the browsers waiting this many
   * times their run time more than at the lowest level, both at once. In the recorded sweep
   * fixtures/browser-simple-ramped.json (2 cores) the simple page's 16 users (82 % busy, waits
   * +0.66×) cost 12 % less CPU per user than at 8, their frames throttled, where 12 users (66 %,
   * +0.40×) cost 6 % less.
   */
  knee_machine_cpu_pct: 75,
  knee_wait_ratio: 0.5,
  /** Machine memory in use, % of total. */
  machine_mem_pct: 95,
  /** A user-facing timing this many times the lowest level's... */
  timing_ratio: 2,
  /** ...and at least this much slower (ms) for browsers (HTTP: any amount). */
  browser_timing_min_ms: 100,
  /** The generator's busiest Worker thread, in cores (a JS thread tops out at 1). */
  generator_thread_cores: 0.9,
  /** The generator's event-loop lag, p99 in ms. */
  generator_lag_ms: 100,
} as const;

export type LevelStatus = "healthy" | "saturated" | "generator_bound";

interface CpuMem {
  cpu_cores: number;
  mem_bytes: number;
}

export interface LevelMeasurement {
  concurrency: number;
  samples: number;
  duration_s: number;
  status: LevelStatus;
  /** Why the level is saturated or generator-bound (empty when healthy). */
  reasons: string[];
  /** Run-queue wait of the measured processes ÷ their CPU time (null: not measured). */
  cpu_wait_ratio: number | null;
  /** That wait in cores' worth (seconds waited per second). */
  cpu_wait_cores: number | null;
  /** The sized cost by the report's basis (null when nothing was measured). */
  cost: CpuMem | null;
  per_session: CpuMem | null;
  machine: {
    cpu_cores: number;
    cpu_cores_net: number;
    cpu_percent: number;
    mem_used_bytes: number;
    mem_net_bytes: number;
    mem_percent: number;
  };
  /** browser-bench: the browsers' process trees (CPU, PSS). */
  browsers: CpuMem & { processes: number } | null;
  /** browser-bench: the platform process that drives them (this process). */
  platform: CpuMem | null;
  /** http-bench: the target's processes. */
  target: CpuMem & { processes: number } | null;
  /** The load generator: its process, its busiest Worker thread and its event-loop lag. */
  generator: CpuMem & { worker_thread_cores: number; lag_p99_ms: number; lag_max_ms: number };
  timings: Record<string, number | null>;
  disk_growth_bytes: number;
  net_rx_bytes_per_s: number;
  net_tx_bytes_per_s: number;
  requests_per_s: number | null;
}

export interface SizingReport {
  basis: ResourceBasis;
  /** What one unit of concurrency is: a virtual user or a connection. */
  unit: "users" | "connections";
  /** What the cost figures are, in a sentence. */
  measured: string;
  inputs: SizingInputs & { targets: number[] };
  thresholds: typeof THRESHOLDS;
  confidence: number;
  baseline: { samples: number; cpu_cores: number; mem_used_bytes: number } | null;
  levels: LevelMeasurement[];
  healthy_levels: number[];
  saturated_levels: number[];
  generator_bound_levels: number[];
  highest_healthy_level: number | null;
  /** CPU and memory models of the healthy levels (null when nothing was measured). */
  models: { cpu?: ResourceModel; memory?: ResourceModel } | null;
  /** Both models passed leave-one-level-out validation (≥ 4 healthy levels). */
  validated: boolean;
  rates: Rates | null;
  projections: Projection[];
  /** The answer in one paragraph of plain language. */
  verdict: string;
  warnings: string[];
  formulas: typeof FORMULAS;
}

const TOLERANCE_MS = 250;
const avg = (xs: number[]) => xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
const nums = (samples: Sample[], k: keyof Sample) =>
  samples.map((s) => s[k]).filter((v): v is number => typeof v === "number");
const sumOf = (samples: Sample[], k: keyof Sample) => nums(samples, k).reduce((a, b) => a + b, 0);

/** Samples whose interval lies inside [from, to] (or, for a short window, that end in it). */
export function samplesIn(samples: Sample[], from: number, to: number): Sample[] {
  const inside = samples.filter((s) =>
    s.ts - s.interval_s * 1000 >= from - TOLERANCE_MS && s.ts <= to + TOLERANCE_MS
  );
  if (inside.length > 0) return inside;
  return samples.filter((s) => s.ts > from && s.ts <= to + s.interval_s * 1000);
}

function diskAt(samples: Sample[], at: number): number {
  let value = 0;
  for (const s of samples) {
    if (s.ts > at + TOLERANCE_MS) break;
    if (s.disk_bytes !== undefined) value = s.disk_bytes;
  }
  return value;
}

/** The per-second cost of one sample by the basis (null when the sample lacks it). */
function costOf(
  s: Sample,
  basis: ResourceBasis,
  base: { cpu_cores: number; mem_used_bytes: number } | null,
): CpuMem | null {
  switch (basis) {
    case "process":
      if (s.platform_cpu_cores === undefined || s.platform_mem_bytes === undefined) return null;
      return {
        cpu_cores: (s.proc_cpu_cores ?? 0) + s.platform_cpu_cores,
        mem_bytes: (s.proc_mem_bytes ?? 0) + s.platform_mem_bytes,
      };
    case "system":
      return {
        cpu_cores: s.cpu_cores - (base?.cpu_cores ?? 0),
        mem_bytes: s.mem_used_bytes - (base?.mem_used_bytes ?? 0),
      };
    case "target":
      if (s.target_cpu_cores === undefined || s.target_mem_bytes === undefined) return null;
      return { cpu_cores: s.target_cpu_cores, mem_bytes: s.target_mem_bytes };
    case "none":
      return null;
  }
}

const MEASURED: Record<ResourceBasis, string> = {
  process: "the browsers' processes (CPU, PSS) plus the platform process that drives them",
  system: "the whole machine's CPU and memory, net of the idle baseline (includes everything " +
    "else running on it)",
  target: "the target server's processes (CPU, PSS), not the load generator",
  none: "nothing: no resource cost was measured for the target",
};

export interface BuildOptions {
  basis: ResourceBasis;
  /** What one unit of concurrency is called in the text (default "users"). */
  unit?: "users" | "connections";
  /** What the run saw at each level (timings, shortfalls, HTTP byte counts). */
  info?: LevelInfo[];
  /** Seconds a session lasts, for its disk use (browser-bench: the level's duration). */
  sessionS?: number;
}

/**
 * Builds the sizing report from a run's windows and the resource samples taken during it.
 * Levels that saturated the machine or whose generator could not keep up are measured and shown
 * but left out of the models.
 *
 * Each level is marked healthy, saturated or generator-bound; the healthy ones go to
 * `lib/capacity/projection.ts`.
 */
export function buildSizingReport(
  params: CapacityParams,
  record: SweepRecord,
  samples: Sample[],
  options: BuildOptions,
): SizingReport {
  const basis = options.basis;
  const warnings: string[] = [];
  const inputs = {
    safety_factor: params.safety_factor,
    baseline_os_mb: params.baseline_os_mb,
    baseline_storage_gb: params.baseline_storage_gb,
    retention_days: params.retention_days,
    sessions_per_day: params.sessions_per_day,
    node_shape: params.node_shape,
    targets: params.targets,
  };

  let baseline: SizingReport["baseline"] = null;
  if (record.baseline) {
    const b = samplesIn(samples, record.baseline.from, record.baseline.to);
    if (b.length) {
      baseline = {
        samples: b.length,
        cpu_cores: avg(nums(b, "cpu_cores")),
        mem_used_bytes: avg(nums(b, "mem_used_bytes")),
      };
    }
  }
  const cpuCount = samples[0]?.cpu_count ?? 0;
  if (basis === "system") {
    if (baseline && cpuCount > 0 && baseline.cpu_cores >= cpuCount * 0.5) {
      warnings.push(
        `The machine was busy before the load started (${
          baseline.cpu_cores.toFixed(2)
        } of ${cpuCount} cores in use): machine figures are unreliable; size from the ` +
          "processes instead (resource_basis: process).",
      );
    }
    if (!baseline) {
      warnings.push(
        "No idle baseline was sampled: machine figures include whatever else was running.",
      );
    }
  }
  if (basis === "none") {
    warnings.push(
      "No resource cost was measured for the target: name its processes (target_pids, " +
        "target_process or target_cgroup) when it runs on the machine that runs the benchmark. " +
        "This report gives throughput and latency only; the machine's use includes this load " +
        "generator and is not the target's cost.",
    );
  }

  const levels: LevelMeasurement[] = [];
  const series = new Map<number, { cpu: number[]; mem: number[] }>();
  const rateLevels = new Map<number, Parameters<typeof rates>[0][number]>();
  let reference: LevelInfo | null = null;
  let lowestWait: number | null = null;
  for (const w of record.levels) {
    const s = samplesIn(samples, w.steady, w.ended);
    if (s.length === 0) {
      warnings.push(`Level ${w.concurrency} has no samples: it ran too briefly to measure.`);
      continue;
    }
    const info = options.info?.find((i) => i.concurrency === w.concurrency) ?? null;
    reference ??= info;
    const seconds = s.reduce((a, x) => a + x.interval_s, 0);
    const costs = s.map((x) => costOf(x, basis, baseline)).filter((c) => c !== null);
    const cost = costs.length
      ? {
        cpu_cores: avg(costs.map((c) => c.cpu_cores)),
        mem_bytes: Math.round(avg(costs.map((c) => c.mem_bytes))),
      }
      : null;
    const cpu = avg(nums(s, "cpu_cores"));
    const mem = avg(nums(s, "mem_used_bytes"));
    const memTotal = avg(nums(s, "mem_total_bytes"));
    const group = (cpuKey: keyof Sample, memKey: keyof Sample) =>
      nums(s, memKey).length
        ? { cpu_cores: avg(nums(s, cpuKey)), mem_bytes: Math.round(avg(nums(s, memKey))) }
        : null;
    const browsers = group("proc_cpu_cores", "proc_mem_bytes");
    const platform = group("platform_cpu_cores", "platform_mem_bytes");
    const target = group("target_cpu_cores", "target_mem_bytes");
    const waitKey = basis === "target" ? "target_cpu_wait_cores" : "proc_cpu_wait_cores";
    const ranKey = basis === "target" ? "target_cpu_cores" : "proc_cpu_cores";
    const ran = sumOf(s, ranKey);
    const m: LevelMeasurement = {
      concurrency: w.concurrency,
      samples: s.length,
      duration_s: Math.round(seconds * 10) / 10,
      status: "healthy",
      reasons: [],
      cpu_wait_ratio: (basis === "target" || basis === "process") && nums(s, waitKey).length &&
          ran > 0
        ? Math.round(sumOf(s, waitKey) / ran * 100) / 100
        : null,
      cpu_wait_cores: (basis === "target" || basis === "process") && nums(s, waitKey).length
        ? Math.round(avg(nums(s, waitKey)) * 1000) / 1000
        : null,
      cost,
      per_session: cost
        ? { cpu_cores: cost.cpu_cores / w.concurrency, mem_bytes: cost.mem_bytes / w.concurrency }
        : null,
      machine: {
        cpu_cores: cpu,
        cpu_cores_net: cpu - (baseline?.cpu_cores ?? 0),
        cpu_percent: avg(nums(s, "cpu_percent")),
        mem_used_bytes: Math.round(mem),
        mem_net_bytes: Math.round(mem - (baseline?.mem_used_bytes ?? 0)),
        mem_percent: memTotal > 0 ? mem / memTotal * 100 : 0,
      },
      browsers: basis === "process" || basis === "system"
        ? browsers && { ...browsers, processes: Math.round(avg(nums(s, "proc_count"))) }
        : null,
      platform: basis === "process" || basis === "system" ? platform : null,
      target: target && { ...target, processes: Math.round(avg(nums(s, "target_count"))) },
      generator: {
        cpu_cores: platform?.cpu_cores ?? 0,
        mem_bytes: platform?.mem_bytes ?? 0,
        worker_thread_cores: avg(nums(s, "worker_thread_cores")),
        lag_p99_ms: w.lag_ms?.p99 ?? 0,
        lag_max_ms: w.lag_ms?.max ?? 0,
      },
      timings: info?.timings ?? {},
      disk_growth_bytes: Math.max(0, diskAt(samples, w.ended) - diskAt(samples, w.started)),
      net_rx_bytes_per_s: seconds > 0 ? sumOf(s, "net_rx_bytes") / seconds : 0,
      net_tx_bytes_per_s: seconds > 0 ? sumOf(s, "net_tx_bytes") / seconds : 0,
      requests_per_s: info?.requests !== undefined
        ? info.requests / Math.max(0.001, (w.ended - w.started) / 1000)
        : null,
    };
    lowestWait ??= m.cpu_wait_ratio;
    judge(m, info, reference, lowestWait ?? 0, basis);
    levels.push(m);
    if (m.status === "healthy" && costs.length) {
      series.set(w.concurrency, {
        cpu: costs.map((c) => c.cpu_cores),
        mem: costs.map((c) => c.mem_bytes),
      });
      // Disk, network and requests count over the whole level (ramp included).
      const whole = samplesIn(samples, w.started, w.ended);
      rateLevels.set(w.concurrency, {
        n: w.concurrency,
        seconds: (w.ended - w.started) / 1000,
        disk_growth_bytes: m.disk_growth_bytes,
        net_rx_bytes: info?.bytes_in ?? sumOf(whole, "net_rx_bytes"),
        net_tx_bytes: info?.bytes_out ?? sumOf(whole, "net_tx_bytes"),
        ...(info?.requests !== undefined ? { requests: info.requests } : {}),
      });
    }
  }
  if (basis === "target" && levels.every((l) => (l.target?.processes ?? 0) === 0)) {
    warnings.push(
      "No process matched the target (target_pids, target_process, target_cgroup): its cost " +
        "reads as zero. Check that it runs on the machine that runs the benchmark.",
    );
  }
  if (basis === "process" && levels.some((l) => l.browsers === null)) {
    warnings.push("The job started no browsers of its own: only the platform process is counted.");
  }

  const healthy = levels.filter((l) => l.status === "healthy").map((l) => l.concurrency);
  const saturated = levels.filter((l) => l.status === "saturated").map((l) => l.concurrency);
  const generatorBound = levels.filter((l) => l.status === "generator_bound")
    .map((l) => l.concurrency);
  const highest = healthy.length ? healthy[healthy.length - 1]! : null;
  for (const l of levels.filter((l) => l.status !== "healthy")) {
    warnings.push(
      `Level ${l.concurrency} is ${
        l.status === "saturated" ? "saturated" : "limited by the load generator"
      } (${l.reasons.join("; ")}): it is shown but not used as a cost measurement` +
        (highest !== null ? `; the highest healthy level is ${highest}.` : "."),
    );
  }
  if (levels.length > 0 && healthy.length === 0 && basis !== "none") {
    warnings.push(
      "No level was healthy: nothing can be projected. Measure lower levels, on a quieter or " +
        "bigger machine.",
    );
  }

  let fits: { cpu: ResourceFit; memory: ResourceFit } | null = null;
  let models: SizingReport["models"] = null;
  if (basis !== "none" && series.size > 0) {
    const list = [...series].map(([n, v]) => ({ n, ...v }));
    const reach = Math.max(...levels.map((l) => l.concurrency));
    const cpuFit = fitResource("cpu", list.map((l) => ({ n: l.n, values: l.cpu })), reach);
    const memFit = fitResource("memory", list.map((l) => ({ n: l.n, values: l.mem })), reach);
    if (cpuFit && memFit) {
      fits = { cpu: cpuFit, memory: memFit };
      models = { cpu: cpuFit.model, memory: memFit.model };
    }
  }
  const validated = models?.cpu?.validation != null && models.memory?.validation != null;
  if (models && !validated) {
    warnings.push(
      `Unvalidated: ${healthy.length} healthy level${healthy.length === 1 ? "" : "s"}; ` +
        "leave-one-level-out validation needs 4. Add levels to learn how far to trust it.",
    );
  }
  for (const [name, m] of Object.entries(models ?? {})) {
    const e = m.validation?.max_abs_error_pct;
    if (e !== undefined && e !== null && e > 15) {
      warnings.push(
        `${name === "cpu" ? "CPU" : "Memory"} levels were predicted from the others with up ` +
          `to ${e.toFixed(1)} % error (leave-one-level-out): trust its projection less.`,
      );
    }
  }

  const rateList = [...rateLevels.values()];
  const rateFigures = rateList.length ? rates(rateList) : null;
  if (basis === "target") {
    warnings.push("The target's disk use is not measured: the disk figure is baseline storage.");
  }
  const projections: Projection[] = [];
  if (fits && rateFigures && highest !== null) {
    for (const target of params.targets) {
      const p = project({
        target,
        cpu: fits.cpu.at(target),
        memory: fits.memory.at(target),
        rates: rateFigures,
        session_s: options.sessionS ?? 0,
        highest,
      }, params);
      projections.push(p);
      if (p.extrapolation_factor > EXTRAPOLATION_LIMIT) {
        warnings.push(
          `Target ${target} is ${fmtFactor(p.extrapolation_factor)} the highest healthy level ` +
            `(${highest}): measure ${p.recommended_next_level} ${
              options.unit ?? "users"
            } next to narrow it.`,
        );
      }
    }
  }

  const report: SizingReport = {
    basis,
    unit: options.unit ?? "users",
    measured: MEASURED[basis],
    inputs,
    thresholds: THRESHOLDS,
    confidence: CONFIDENCE,
    baseline,
    levels,
    healthy_levels: healthy,
    saturated_levels: saturated,
    generator_bound_levels: generatorBound,
    highest_healthy_level: highest,
    models,
    validated,
    rates: rateFigures,
    projections,
    verdict: "",
    warnings,
    formulas: FORMULAS,
  };
  report.verdict = verdict(report);
  return report;
}

/** Marks a level saturated or generator-bound by the thresholds, with the reasons. */
function judge(
  m: LevelMeasurement,
  info: LevelInfo | null,
  reference: LevelInfo | null,
  lowestWait: number,
  basis: ResourceBasis,
): void {
  const saturated: string[] = [];
  // The wait this level added over the lowest; null when not measured or too small to be more
  // than a near-idle process's noise.
  const addedWait = m.cpu_wait_ratio !== null &&
      (m.cpu_wait_cores ?? 0) >= THRESHOLDS.cpu_wait_min_cores
    ? m.cpu_wait_ratio - lowestWait
    : null;
  const busy = `${m.machine.cpu_percent.toFixed(0)} % busy`;
  if (addedWait !== null && addedWait >= THRESHOLDS.cpu_wait_ratio) {
    saturated.push(
      `out of CPU: the ${basis === "target" ? "target's processes" : "browsers"} waited for a ` +
        `CPU ${m.cpu_wait_ratio!.toFixed(2)}× as long as they ran, ` +
        `${addedWait.toFixed(2)}× more than at the lowest level (machine CPU ${busy})`,
    );
  } else if (
    (basis !== "target" || m.cpu_wait_ratio === null) &&
    m.machine.cpu_percent >= THRESHOLDS.machine_cpu_pct
  ) {
    // Not for a target's sizing: there the machine's CPU is the load generator's as well.
    saturated.push(`machine CPU ${busy}`);
  } else if (
    basis !== "target" && addedWait !== null && addedWait >= THRESHOLDS.knee_wait_ratio &&
    m.machine.cpu_percent >= THRESHOLDS.knee_machine_cpu_pct
  ) {
    saturated.push(
      `past the CPU knee: machine CPU ${busy} and the browsers waited for a CPU ` +
        `${addedWait.toFixed(2)}× their run time more than at the lowest level`,
    );
  }
  if (m.machine.mem_percent >= THRESHOLDS.machine_mem_pct) {
    saturated.push(`machine memory ${m.machine.mem_percent.toFixed(0)} % used`);
  }
  if (info && reference && info !== reference) {
    const minMs = basis === "target" || basis === "none" ? 0 : THRESHOLDS.browser_timing_min_ms;
    for (const [name, value] of Object.entries(info.timings)) {
      const ref = reference.timings[name];
      if (value === null || ref === null || ref === undefined || ref <= 0) continue;
      if (value >= ref * THRESHOLDS.timing_ratio && value - ref >= minMs) {
        saturated.push(
          `${name} ${fmtMs(value)}, ${(value / ref).toFixed(1)}× the ${reference.concurrency}-` +
            `user level's ${fmtMs(ref)}`,
        );
      }
    }
  }
  const generator: string[] = [];
  if (m.generator.worker_thread_cores >= THRESHOLDS.generator_thread_cores) {
    generator.push(
      `the generator's thread ${(m.generator.worker_thread_cores * 100).toFixed(0)} % busy`,
    );
  }
  if (m.generator.lag_p99_ms > THRESHOLDS.generator_lag_ms) {
    generator.push(`the generator's event loop lagged ${fmtMs(m.generator.lag_p99_ms)} (p99)`);
  }
  if (info?.shortfall) generator.push(info.shortfall);
  m.reasons = [...saturated, ...generator];
  // A starved machine starves the generator too: then the machine is named as the limit.
  m.status = saturated.length ? "saturated" : generator.length ? "generator_bound" : "healthy";
}

const fmtMs = (v: number) => v >= 100 ? `${v.toFixed(0)} ms` : `${v.toFixed(v >= 10 ? 1 : 2)} ms`;

/** The report's answer in one paragraph, for the largest target. */
export function verdict(r: SizingReport): string {
  const top = r.levels.length ? r.levels[r.levels.length - 1]! : null;
  const unhealthy = [
    r.saturated_levels.length ? `saturated at ${r.saturated_levels.join(", ")}` : "",
    r.generator_bound_levels.length
      ? `generator-bound at ${r.generator_bound_levels.join(", ")}`
      : "",
  ].filter(Boolean).join(", ");
  if (r.basis === "none") {
    const best = r.levels.filter((l) => l.status === "healthy").pop() ?? top;
    return "No resource cost was measured for the target, so no server sizing: name its " +
      "processes when it runs on this machine. " +
      (best && best.requests_per_s !== null
        ? `At ${best.concurrency} connections it answered ${
          Math.round(best.requests_per_s)
        } requests/s` +
          (best.timings["latency p50"] != null
            ? ` (latency p50 ${fmtMs(best.timings["latency p50"]!)})`
            : "") +
          "."
        : "");
  }
  const p = r.projections[r.projections.length - 1];
  if (!p || r.highest_healthy_level === null) {
    return `No projection: no level was healthy${unhealthy ? ` (${unhealthy})` : ""}. ` +
      "Measure lower levels, or on a quieter or bigger machine.";
  }
  const [lo, hi] = p.interval.nodes;
  const nodes = hi === lo
    ? `${p.nodes.count}`
    : p.nodes.count - lo === hi - p.nodes.count
    ? `${p.nodes.count} ± ${hi - p.nodes.count}`
    : `${p.nodes.count} (${lo}–${hi})`;
  const shape = `${p.nodes.cores}c/${p.nodes.memory_gb}GB`;
  const trust = r.validated
    ? `leave-one-level-out error up to ${
      Math.max(
        r.models?.cpu?.validation?.max_abs_error_pct ?? 0,
        r.models?.memory?.validation?.max_abs_error_pct ?? 0,
      ).toFixed(0)
    } %`
    : `unvalidated (${r.healthy_levels.length} healthy level${
      r.healthy_levels.length === 1 ? "" : "s"
    }, 4 needed)`;
  const cost = `${p.interval.cores[0]}–${p.interval.cores[1]} cores, ${
    fmtBytes(p.interval.ram_bytes[0])
  }–${fmtBytes(p.interval.ram_bytes[1])} RAM`;
  const many = (n: number) => `${n.toLocaleString("en")} ${n === 1 ? r.unit.slice(0, -1) : r.unit}`;
  return `About ${nodes} node${hi === 1 ? "" : "s"} of ${shape} for ${many(p.target)} ` +
    `(${cost}, limited by ${p.nodes.limited_by}); measured up to ` +
    `${many(r.highest_healthy_level)}${unhealthy ? ` (${unhealthy})` : ""}, ` +
    `${fmtFactor(p.extrapolation_factor)} extrapolation, ${trust}` +
    (p.recommended_next_level !== null
      ? ` — measure ${many(p.recommended_next_level)} to narrow it.`
      : ".");
}

// ---- text ----

/** Bytes as B / KB / MB / GB (binary units). */
export function fmtBytes(n: number): string {
  const units = ["B", "KB", "MB", "GB", "TB", "PB"];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

const fmtNum = (v: number, d = 3) => Number(v.toFixed(d)).toString();
/** How many times the highest level a target is, as the warning, the verdict and the table say. */
export const fmtFactor = (v: number) => `${Number(v.toFixed(1))}×`;
/** A model's terms with their signs: "a + b·n", "a − b·n" (never "+ -"). */
export function fmtModel(
  c: { kind: string; a: number; b: number; c?: number },
  f: (v: number) => string,
  dot = "·",
): string {
  const term = (v: number, what: string) => `${v < 0 ? "−" : "+"} ${f(Math.abs(v))}${what}`;
  if (c.kind === "proportional") return `${f(c.b)}${dot}n`;
  return `${f(c.a)} ${term(c.b, `${dot}n`)}` +
    (c.kind === "quadratic" ? ` ${term(c.c ?? 0, `${dot}n²`)}` : "");
}
const pad = (s: string, n: number) => s.padStart(n);
const padEnd = (s: string, n: number) => s.padEnd(n);
const pct = (v: number | null) => v === null ? "n/a" : `${v >= 0 ? "+" : ""}${v.toFixed(1)} %`;

function describeModel(m: ResourceModel, name: "cpu" | "memory"): string {
  const f = (v: number) => name === "cpu" ? fmtNum(v) : fmtBytes(v);
  return `${m.chosen.kind} ${fmtModel(m.chosen, f)} — ${m.reason}`;
}

function describeValidation(m: ResourceModel, name: "cpu" | "memory"): string {
  const v = m.validation;
  if (!v) return "unvalidated (leave-one-level-out needs 4 healthy levels)";
  const f = (x: number) => name === "cpu" ? fmtNum(x, 2) : fmtBytes(x);
  return v.levels.map((l) =>
    `n=${l.held_out}: ${f(l.predicted)} vs ${f(l.measured)} (${pct(l.error_pct)})`
  ).join(", ") + `; mean |error| ${v.mean_abs_error_pct?.toFixed(1) ?? "n/a"} %`;
}

const range = (r: [number, number], f: (v: number) => string) => `${f(r[0])}–${f(r[1])}`;

/** The report as text, for the CLI and logs. */
export function formatSizingReport(r: SizingReport): string {
  const lines: string[] = [];
  lines.push(`Sized: ${r.measured}.`);
  lines.push("");
  lines.push(
    `${pad("users", 6)} ${pad("cost cores", 10)} ${pad("cost mem", 10)} ${pad("mem/user", 10)} ` +
      `${pad(r.basis === "target" || r.basis === "none" ? "target" : "browsers", 18)} ` +
      `${pad("generator", 18)} ${pad("machine", 9)} ${pad("wait", 5)} status`,
  );
  for (const l of r.levels) {
    const side = r.basis === "target" || r.basis === "none" ? l.target : l.browsers;
    lines.push(
      `${pad(String(l.concurrency), 6)} ${pad(l.cost ? fmtNum(l.cost.cpu_cores, 2) : "–", 10)} ` +
        `${pad(l.cost ? fmtBytes(l.cost.mem_bytes) : "–", 10)} ` +
        `${pad(l.per_session ? fmtBytes(l.per_session.mem_bytes) : "–", 10)} ` +
        `${pad(side ? `${fmtNum(side.cpu_cores, 2)}c ${fmtBytes(side.mem_bytes)}` : "–", 18)} ` +
        `${pad(`${fmtNum(l.generator.cpu_cores, 2)}c ${fmtBytes(l.generator.mem_bytes)}`, 18)} ` +
        `${pad(`${l.machine.cpu_percent.toFixed(0)} % CPU`, 9)} ` +
        `${pad(l.cpu_wait_ratio === null ? "–" : l.cpu_wait_ratio.toFixed(2), 5)} ${l.status}` +
        (l.reasons.length ? ` (${l.reasons.join("; ")})` : ""),
    );
  }
  if (r.models) {
    lines.push("");
    lines.push(`Models of cost(n) on the healthy levels (${r.healthy_levels.join(", ")}):`);
    for (const name of ["cpu", "memory"] as const) {
      const m = r.models[name];
      if (!m) continue;
      lines.push(`  ${padEnd(name === "cpu" ? "CPU" : "memory", 7)} ${describeModel(m, name)}`);
      lines.push(`  ${padEnd("", 7)} held out: ${describeValidation(m, name)}`);
    }
  }
  if (r.rates) {
    lines.push(
      `  rates   disk ${fmtBytes(r.rates.disk_bytes_per_session_s)}/session-s, network in ` +
        `${fmtBytes(r.rates.net_rx_bytes_per_session_s)}/session-s, out ` +
        `${fmtBytes(r.rates.net_tx_bytes_per_session_s)}/session-s` +
        (r.rates.net_bytes_per_request
          ? ` (${fmtBytes(r.rates.net_bytes_per_request.rx)} in, ` +
            `${fmtBytes(r.rates.net_bytes_per_request.tx)} out per request)`
          : ""),
    );
  }
  const i = r.inputs;
  if (r.projections.length) {
    lines.push("");
    lines.push(
      `Projection (${Math.round(r.confidence * 100)} % intervals): safety_factor ` +
        `${i.safety_factor}, baseline_os ${i.baseline_os_mb} MB, baseline_storage ` +
        `${i.baseline_storage_gb} GB, retention ${i.retention_days} d × ${i.sessions_per_day} ` +
        `sessions/day, node ${i.node_shape.cores} cores / ${i.node_shape.memory_gb} GB`,
    );
    lines.push(
      `${pad("target", 8)} ${pad("cores", 14)} ${pad("RAM", 22)} ${pad("disk", 9)} ` +
        `${padEnd("nodes", 24)} ${pad("extrapolation", 13)}  next level`,
    );
    for (const p of r.projections) {
      lines.push(
        `${pad(String(p.target), 8)} ${
          pad(`${p.required_cores} (${range(p.interval.cores, String)})`, 14)
        } ` +
          `${
            pad(`${fmtBytes(p.required_ram_bytes)} (${range(p.interval.ram_bytes, fmtBytes)})`, 22)
          } ` +
          `${pad(fmtBytes(p.required_disk_bytes), 9)} ` +
          `${
            padEnd(
              `${p.nodes.count} (${range(p.interval.nodes, String)}) × ${p.nodes.cores}c/` +
                `${p.nodes.memory_gb}GB ${p.nodes.limited_by}`,
              24,
            )
          } ${pad(fmtFactor(p.extrapolation_factor), 13)}  ${p.recommended_next_level ?? "–"}`,
      );
    }
  }
  lines.push("");
  lines.push(`Verdict: ${r.verdict}`);
  if (r.warnings.length) {
    lines.push("");
    lines.push("Warnings:");
    for (const w of r.warnings) lines.push(`  - ${w}`);
  }
  return lines.join("\n");
}
