/**
 * The sizing report of a benchmark: the capacity parameters both benchmark types accept (schema
 * fields and their checks), the measurement windows a run records (idle baseline, then each
 * concurrency level), and `buildSizingReport`, which joins those windows with the resource
 * samples and hands the numbers to `lib/capacity/projection.ts`. `formatSizingReport` prints it for people.
 */
import { z } from "@hono/zod-openapi";
import {
  EXTRAPOLATION_WARN_RATIO,
  type Fit,
  fitModels,
  type Footprint,
  footprint,
  FORMULAS,
  holdOut,
  type PerSession,
  type Point,
  predict,
  project,
  type Projection,
  type SizingInputs,
  type Validation,
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
          "use instead of `concurrency`.",
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
}

export interface SweepRecord {
  baseline: { from: number; to: number } | null;
  levels: LevelWindow[];
}

export type ResourceBasis = "system" | "process";

export interface LevelMeasurement {
  concurrency: number;
  samples: number;
  duration_s: number;
  cpu_cores: number;
  cpu_cores_net: number;
  mem_used_bytes: number;
  mem_net_bytes: number;
  proc_cpu_cores: number | null;
  proc_mem_bytes: number | null;
  disk_growth_bytes: number;
  net_rx_bytes_per_s: number;
  net_tx_bytes_per_s: number;
  per_session: PerSession;
  /** Machine CPU was at least 90 % busy: the measured cost is capped by the machine. */
  saturated: boolean;
}

export type ResourceName = "cpu" | "memory" | "disk" | "network";

export interface ResourceModel extends Fit {
  unit: string;
  /** The measured cost at each level the models were fitted to. */
  points: Point[];
  validation: Validation | null;
}

export interface SizingReport {
  basis: ResourceBasis;
  inputs: SizingInputs & { targets: number[] };
  baseline: { samples: number; cpu_cores: number; mem_used_bytes: number } | null;
  levels: LevelMeasurement[];
  /** The spec formulas applied to the highest level. */
  footprint: Footprint | null;
  /** Per resource, when at least two levels were measured. */
  models: Partial<Record<ResourceName, ResourceModel>> | null;
  projections: Array<Projection & { times_highest_level: number; source: "model" | "footprint" }>;
  warnings: string[];
  formulas: typeof FORMULAS;
}

const TOLERANCE_MS = 250;
const mean = (xs: number[]) => xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
const nums = (samples: Sample[], k: keyof Sample) =>
  samples.map((s) => s[k]).filter((v): v is number => typeof v === "number");

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
    if (typeof s.disk_bytes === "number") value = s.disk_bytes;
  }
  return value;
}

const RESOURCES: Array<{ name: ResourceName; unit: string; y: (m: LevelMeasurement) => number }> = [
  { name: "cpu", unit: "cores", y: (m) => m.per_session.cpu_cores * m.concurrency },
  { name: "memory", unit: "bytes", y: (m) => m.per_session.mem_bytes * m.concurrency },
  { name: "disk", unit: "bytes", y: (m) => m.disk_growth_bytes },
  { name: "network", unit: "bytes/s", y: (m) => m.net_rx_bytes_per_s + m.net_tx_bytes_per_s },
];

const LABEL: Record<ResourceName, string> = {
  cpu: "CPU",
  memory: "memory",
  disk: "disk",
  network: "network",
};

/**
 * Joins a run's windows with its samples into the sizing report. `basis` chooses what a session
 * costs: the machine's use net of the idle baseline (`system`, the default) or the job's own
 * processes (`process`: its browsers, PSS memory).
 */
export function buildSizingReport(
  params: CapacityParams,
  record: SweepRecord,
  allSamples: Sample[],
  basis: ResourceBasis = "system",
): SizingReport {
  const samples = [...allSamples].sort((a, b) => a.ts - b.ts);
  const warnings: string[] = [];
  const inputs: SizingReport["inputs"] = {
    targets: params.targets,
    safety_factor: params.safety_factor,
    baseline_os_mb: params.baseline_os_mb,
    baseline_storage_gb: params.baseline_storage_gb,
    retention_days: params.retention_days,
    sessions_per_day: params.sessions_per_day,
    node_shape: params.node_shape,
  };

  let baseline: SizingReport["baseline"] = null;
  if (record.baseline) {
    const b = samplesIn(samples, record.baseline.from, record.baseline.to);
    if (b.length > 0) {
      baseline = {
        samples: b.length,
        cpu_cores: mean(nums(b, "cpu_cores")),
        mem_used_bytes: mean(nums(b, "mem_used_bytes")),
      };
    }
  }
  const cpuCount = samples[0]?.cpu_count ?? 0;
  if (baseline && basis === "system" && cpuCount > 0 && baseline.cpu_cores >= cpuCount * 0.5) {
    warnings.push(
      `The machine was busy before the load started (${
        baseline.cpu_cores.toFixed(2)
      } of ${cpuCount} cores in use): net figures are unreliable. Measure on a quiet machine, ` +
        "or size from the job's own processes (resource_basis: process).",
    );
  }
  if (!baseline && basis === "system") {
    warnings.push(
      "No idle baseline was sampled: machine figures include whatever else was running.",
    );
  }

  const levels: LevelMeasurement[] = [];
  let fpHighest: Footprint | null = null;
  for (const w of record.levels) {
    const s = samplesIn(samples, w.steady, w.ended);
    if (s.length === 0) {
      warnings.push(`Level ${w.concurrency} has no samples: it ran too briefly to measure.`);
      continue;
    }
    const cpu = mean(nums(s, "cpu_cores"));
    const mem = mean(nums(s, "mem_used_bytes"));
    const procCpu = nums(s, "proc_cpu_cores");
    const procMem = nums(s, "proc_mem_bytes");
    const seconds = s.reduce((a, x) => a + x.interval_s, 0);
    const cpuNet = cpu - (baseline?.cpu_cores ?? 0);
    const memNet = mem - (baseline?.mem_used_bytes ?? 0);
    const useProcess = basis === "process" && procMem.length > 0;
    const diskGrowth = Math.max(0, diskAt(samples, w.ended) - diskAt(samples, w.started));
    const fp = footprint({
      avgCoresNet: useProcess ? mean(procCpu) : cpuNet,
      avgMemNetBytes: useProcess ? mean(procMem) : memNet,
      diskGrowthBytes: diskGrowth,
      concurrency: w.concurrency,
      sessions: w.concurrency,
      sessionSeconds: (w.ended - w.started) / 1000,
    });
    const saturated = mean(nums(s, "cpu_percent")) >= 90;
    fpHighest = fp;
    levels.push({
      concurrency: w.concurrency,
      samples: s.length,
      duration_s: Math.round(seconds * 10) / 10,
      cpu_cores: cpu,
      cpu_cores_net: cpuNet,
      mem_used_bytes: Math.round(mem),
      mem_net_bytes: Math.round(memNet),
      proc_cpu_cores: procCpu.length ? mean(procCpu) : null,
      proc_mem_bytes: procMem.length ? Math.round(mean(procMem)) : null,
      disk_growth_bytes: diskGrowth,
      net_rx_bytes_per_s: seconds > 0 ? sumOf(s, "net_rx_bytes") / seconds : 0,
      net_tx_bytes_per_s: seconds > 0 ? sumOf(s, "net_tx_bytes") / seconds : 0,
      per_session: {
        cpu_cores: fp.cpu_per_session,
        mem_bytes: fp.mem_per_session_bytes,
        disk_bytes: fp.disk_per_session_bytes,
      },
      saturated,
    });
    if (saturated) {
      warnings.push(
        `The machine's CPU was saturated at level ${w.concurrency}: the cost measured there ` +
          "is capped by this machine, so projections understate CPU.",
      );
    }
    if (cpuNet <= 0 && basis === "system") {
      warnings.push(
        `CPU use at level ${w.concurrency} is not above the idle baseline: the load is too ` +
          "light to measure against the machine's noise.",
      );
    }
  }
  if (basis === "process" && levels.some((l) => l.proc_mem_bytes === null)) {
    warnings.push("The job started no processes of its own: machine figures are used instead.");
  }

  const highest = levels[levels.length - 1];

  let models: SizingReport["models"] = null;
  if (levels.length >= 2) {
    models = {};
    for (const r of RESOURCES) {
      const points = levels.map((m) => ({ n: m.concurrency, y: r.y(m) }));
      const fit = fitModels(points);
      if (!fit) continue;
      const validation = holdOut(points);
      models[r.name] = { ...fit, unit: r.unit, points, validation };
      if (fit.super_linear) {
        warnings.push(
          `${LABEL[r.name]} grows faster than linearly with users (power exponent ` +
            `${fit.power!.b.toFixed(2)}): each added session costs more than the last.`,
        );
      }
      if (
        validation && validation.error_pct !== null && Math.abs(validation.error_pct) > 15 &&
        (r.name === "cpu" || r.name === "memory")
      ) {
        warnings.push(
          `${LABEL[r.name]} at level ${validation.held_out} was predicted from the lower levels ` +
            `with a ${validation.error_pct.toFixed(1)} % error: trust its projection less.`,
        );
      }
    }
    if (levels.length === 2) {
      warnings.push(
        "Two levels measured: the models fit them exactly and cannot be validated; " +
          "add a third level for a hold-out check.",
      );
    }
  } else if (levels.length === 1) {
    warnings.push(
      "One level measured: the projection assumes cost grows in proportion to users. " +
        "Run a sweep (levels) to see how it really grows.",
    );
  }

  const projections: SizingReport["projections"] = [];
  if (highest) {
    for (const target of params.targets) {
      let per: PerSession = highest.per_session;
      let source: "model" | "footprint" = "footprint";
      if (models?.cpu && models.memory) {
        const at = (name: ResourceName, fallback: number) => {
          const m = models![name];
          return m ? Math.max(0, predict(m.chosen, target)) / target : fallback;
        };
        per = {
          cpu_cores: at("cpu", per.cpu_cores),
          mem_bytes: at("memory", per.mem_bytes),
          disk_bytes: at("disk", per.disk_bytes),
        };
        source = "model";
      }
      const ratio = target / highest.concurrency;
      projections.push({
        ...project(per, target, params),
        times_highest_level: Math.round(ratio * 10) / 10,
        source,
      });
      if (ratio > EXTRAPOLATION_WARN_RATIO) {
        warnings.push(
          `Target ${target} is ${ratio.toFixed(0)}× the highest measured level ` +
            `(${highest.concurrency}): that projection extrapolates far beyond what was ` +
            "measured and may be far off; measure closer to it (more machines) before buying.",
        );
      }
    }
  }

  return {
    basis,
    inputs,
    baseline,
    levels,
    footprint: fpHighest,
    models,
    projections,
    warnings,
    formulas: FORMULAS,
  };
}

function sumOf(samples: Sample[], k: keyof Sample): number {
  return nums(samples, k).reduce((a, b) => a + b, 0);
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
const pad = (s: string, n: number) => s.padStart(n);
const padEnd = (s: string, n: number) => s.padEnd(n);

function describeModel(m: ResourceModel, name: ResourceName): string {
  const f = (v: number) =>
    name === "cpu" ? fmtNum(v) : name === "network" ? `${fmtBytes(v)}/s` : fmtBytes(v);
  const c = m.chosen;
  const formula = c.kind === "linear" ? `${f(c.a)} + ${f(c.b)}·n` : `${f(c.a)}·n^${c.b.toFixed(2)}`;
  const other = c.kind === "linear" ? m.power : m.linear;
  return `${c.kind} ${formula}, R² ${c.r2.toFixed(3)}` +
    (other ? ` (${other.kind}: R² ${other.r2.toFixed(3)})` : "") +
    (m.super_linear ? ", SUPER-LINEAR" : "");
}

function describeValidation(v: Validation | null, name: ResourceName): string {
  if (!v) return "no hold-out (needs 3 levels)";
  const f = (x: number) => name === "cpu" ? fmtNum(x, 2) : fmtBytes(x);
  const err = v.error_pct === null
    ? "n/a"
    : `${v.error_pct >= 0 ? "+" : ""}${v.error_pct.toFixed(1)} %`;
  return `n=${v.held_out} predicted ${f(v.predicted)}, measured ${f(v.measured)} (${err})`;
}

/** The report as text, for the CLI and logs. */
export function formatSizingReport(r: SizingReport): string {
  const lines: string[] = [];
  lines.push(
    r.basis === "system"
      ? "Sizing basis: machine CPU and memory, net of the idle baseline" +
        (r.baseline
          ? ` (${fmtNum(r.baseline.cpu_cores, 2)} cores, ${fmtBytes(r.baseline.mem_used_bytes)})`
          : " (none sampled)")
      : "Sizing basis: the job's own processes (CPU time, PSS memory)",
  );
  lines.push("");
  lines.push(
    `${pad("users", 6)} ${pad("cores", 7)} ${pad("cores/user", 10)} ${pad("memory", 10)} ` +
      `${pad("mem/user", 10)} ${pad("browsers", 10)} ${pad("disk", 10)} ${pad("net in", 11)} ` +
      `${pad("net out", 11)}`,
  );
  for (const l of r.levels) {
    lines.push(
      `${pad(String(l.concurrency), 6)} ${
        pad(fmtNum(l.per_session.cpu_cores * l.concurrency, 2), 7)
      } ` +
        `${pad(fmtNum(l.per_session.cpu_cores, 3), 10)} ` +
        `${pad(fmtBytes(l.per_session.mem_bytes * l.concurrency), 10)} ` +
        `${pad(fmtBytes(l.per_session.mem_bytes), 10)} ` +
        `${pad(l.proc_mem_bytes === null ? "–" : fmtBytes(l.proc_mem_bytes), 10)} ` +
        `${pad(fmtBytes(l.disk_growth_bytes), 10)} ${
          pad(`${fmtBytes(l.net_rx_bytes_per_s)}/s`, 11)
        } ` +
        `${pad(`${fmtBytes(l.net_tx_bytes_per_s)}/s`, 11)}` +
        (l.saturated ? "  CPU saturated" : ""),
    );
  }
  if (r.footprint) {
    const f = r.footprint;
    lines.push("");
    lines.push(
      `Per session at ${f.concurrency} users: ${fmtNum(f.cpu_per_session)} cores, ` +
        `${fmtBytes(f.mem_per_session_bytes)} RAM, ${fmtBytes(f.disk_per_session_bytes)} disk ` +
        `(${fmtBytes(f.disk_per_session_hour_bytes)} per session-hour)`,
    );
  }
  if (r.models) {
    lines.push("");
    lines.push("Models of cost(n) (better R² chosen) and hold-out check of the highest level:");
    for (const name of ["cpu", "memory", "disk", "network"] as const) {
      const m = r.models[name];
      if (!m) continue;
      lines.push(`  ${padEnd(LABEL[name], 8)} ${describeModel(m, name)}`);
      lines.push(`  ${padEnd("", 8)} hold-out: ${describeValidation(m.validation, name)}`);
    }
  }
  const i = r.inputs;
  lines.push("");
  lines.push(
    `Projection: safety_factor ${i.safety_factor}, baseline_os ${i.baseline_os_mb} MB, ` +
      `baseline_storage ${i.baseline_storage_gb} GB, retention ${i.retention_days} d × ` +
      `${i.sessions_per_day} sessions/day, node ${i.node_shape.cores} cores / ` +
      `${i.node_shape.memory_gb} GB`,
  );
  const cpuErr = r.models?.cpu?.validation?.error_pct;
  const memErr = r.models?.memory?.validation?.error_pct;
  const check = cpuErr !== undefined && cpuErr !== null && memErr !== undefined && memErr !== null
    ? `hold-out error CPU ${cpuErr.toFixed(1)} %, memory ${memErr.toFixed(1)} %`
    : r.models
    ? "no hold-out check"
    : "single level";
  lines.push(
    `${pad("target", 8)} ${pad("cores", 7)} ${pad("RAM", 10)} ${pad("disk", 10)} ` +
      `${padEnd("nodes", 22)} trust`,
  );
  for (const p of r.projections) {
    const far = p.times_highest_level > EXTRAPOLATION_WARN_RATIO
      ? `; ${p.times_highest_level}× highest level measured`
      : "";
    lines.push(
      `${pad(String(p.target), 8)} ${pad(String(p.required_cores), 7)} ` +
        `${pad(fmtBytes(p.required_ram_bytes), 10)} ${pad(fmtBytes(p.required_disk_bytes), 10)} ` +
        `${
          padEnd(
            `${p.nodes.count} × ${p.nodes.cores}c/${p.nodes.memory_gb}GB (${p.nodes.limited_by})`,
            22,
          )
        } ` +
        `${check}${far}`,
    );
  }
  if (r.warnings.length) {
    lines.push("");
    lines.push("Warnings:");
    for (const w of r.warnings) lines.push(`  - ${w}`);
  }
  return lines.join("\n");
}
