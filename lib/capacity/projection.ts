/**
 * Capacity math, pure: per-session footprint, projections to a target concurrency (cores, RAM,
 * disk, nodes of a given shape), and the sweep models — cost(n) fitted with a linear and a power
 * model, the better one chosen by R², a super-linear flag, and hold-out validation (the highest
 * level predicted from the others). No I/O here; `lib/capacity/report.ts` feeds it measurements.
 *
 * The formulas (as the report prints them):
 *   cpu_per_session  = avg_cores_used_net / concurrency
 *   mem_per_session  = avg_mem_used_net / concurrency
 *   disk_per_session = disk_growth / sessions
 *   required_cores   = ceil(cpu_per_session × target × safety_factor)
 *   required_ram     = mem_per_session × target × safety_factor + baseline_os
 *   required_disk    = disk_per_session × target × retention_days × sessions_per_day
 *                      + baseline_storage
 *   nodes            = max(ceil(cpu_per_session × target × safety_factor / node_cores),
 *                          ceil(mem_per_session × target × safety_factor
 *                               / (node_memory − baseline_os)))
 */
import { linearRegression, rSquared } from "simple-statistics";

export const FORMULAS = {
  cpu_per_session: "avg_cores_used_net / concurrency",
  mem_per_session: "avg_mem_used_net / concurrency",
  disk_per_session: "disk_growth / sessions",
  required_cores: "ceil(cpu_per_session × target × safety_factor)",
  required_ram: "mem_per_session × target × safety_factor + baseline_os",
  required_disk: "disk_per_session × target × retention_days × sessions_per_day + baseline_storage",
  nodes: "max(ceil(cpu_per_session × target × safety_factor / node_cores), " +
    "ceil(mem_per_session × target × safety_factor / (node_memory − baseline_os)))",
  sweep: "per_session values at a target come from the chosen model: cost(target) / target",
} as const;

/** A power model exponent above this flags super-linear growth. */
export const SUPER_LINEAR_EXPONENT = 1.1;
/** A target more than this many times the highest measured level gets a plain warning. */
export const EXTRAPOLATION_WARN_RATIO = 10;

const GB = 1024 ** 3;
const MB = 1024 ** 2;

export interface Footprint {
  concurrency: number;
  cpu_per_session: number;
  mem_per_session_bytes: number;
  disk_per_session_bytes: number;
  /** Disk per session per hour of session time. */
  disk_per_session_hour_bytes: number;
}

export interface FootprintInput {
  /** Average cores used during the measurement, net of the idle baseline. */
  avgCoresNet: number;
  /** Average memory used during the measurement, net of the idle baseline. */
  avgMemNetBytes: number;
  /** Growth of the artifact directory during the run. */
  diskGrowthBytes: number;
  concurrency: number;
  /** Sessions that produced the disk growth. */
  sessions: number;
  /** How long those sessions ran, in seconds (for the per-hour figure). */
  sessionSeconds: number;
}

/** The per-session footprint from one measured level. */
export function footprint(m: FootprintInput): Footprint {
  if (m.concurrency <= 0) throw new RangeError("concurrency must be positive");
  const sessions = Math.max(1, m.sessions);
  const disk = m.diskGrowthBytes / sessions;
  return {
    concurrency: m.concurrency,
    cpu_per_session: m.avgCoresNet / m.concurrency,
    mem_per_session_bytes: m.avgMemNetBytes / m.concurrency,
    disk_per_session_bytes: disk,
    disk_per_session_hour_bytes: m.sessionSeconds > 0 ? disk / (m.sessionSeconds / 3600) : 0,
  };
}

export interface NodeShape {
  cores: number;
  memory_gb: number;
}

export interface SizingInputs {
  safety_factor: number;
  baseline_os_mb: number;
  baseline_storage_gb: number;
  retention_days: number;
  sessions_per_day: number;
  node_shape: NodeShape;
}

export interface PerSession {
  cpu_cores: number;
  mem_bytes: number;
  disk_bytes: number;
}

export interface Projection {
  target: number;
  per_session: PerSession;
  required_cores: number;
  required_ram_bytes: number;
  required_disk_bytes: number;
  nodes: { count: number; cores: number; memory_gb: number; limited_by: "cpu" | "memory" };
}

/** Applies the projection formulas to per-session costs for one target concurrency. */
export function project(per: PerSession, target: number, inputs: SizingInputs): Projection {
  const sf = inputs.safety_factor;
  const baselineOs = inputs.baseline_os_mb * MB;
  const coresLoad = Math.max(0, per.cpu_cores) * target * sf;
  const ramLoad = Math.max(0, per.mem_bytes) * target * sf;
  const usablePerNode = inputs.node_shape.memory_gb * GB - baselineOs;
  if (usablePerNode <= 0) throw new RangeError("node memory must exceed baseline_os_mb");
  const byCpu = Math.ceil(coresLoad / inputs.node_shape.cores - 1e-9);
  const byMem = Math.ceil(ramLoad / usablePerNode - 1e-9);
  return {
    target,
    per_session: per,
    required_cores: Math.ceil(coresLoad - 1e-9),
    required_ram_bytes: Math.round(ramLoad + baselineOs),
    required_disk_bytes: Math.round(
      Math.max(0, per.disk_bytes) * target * inputs.retention_days * inputs.sessions_per_day +
        inputs.baseline_storage_gb * GB,
    ),
    nodes: {
      count: Math.max(1, byCpu, byMem),
      cores: inputs.node_shape.cores,
      memory_gb: inputs.node_shape.memory_gb,
      limited_by: byMem > byCpu ? "memory" : "cpu",
    },
  };
}

// ---- models ----

export interface Point {
  n: number;
  y: number;
}

export type ModelKind = "linear" | "power";

/** linear: y = a + b·n; power: y = a·n^b. `r2` is computed on the original scale. */
export interface Model {
  kind: ModelKind;
  a: number;
  b: number;
  r2: number;
}

export function predict(model: Pick<Model, "kind" | "a" | "b">, n: number): number {
  return model.kind === "linear" ? model.a + model.b * n : model.a * n ** model.b;
}

/** R² of a model on points; when every y is equal, 1 for an exact fit and 0 otherwise. */
export function r2Of(model: Pick<Model, "kind" | "a" | "b">, points: Point[]): number {
  const data = points.map((p) => [p.n, p.y]);
  const mean = points.reduce((a, p) => a + p.y, 0) / Math.max(1, points.length);
  const total = points.reduce((a, p) => a + (p.y - mean) ** 2, 0);
  if (total === 0) {
    const err = points.reduce((a, p) => a + (p.y - predict(model, p.n)) ** 2, 0);
    return err < 1e-12 ? 1 : 0;
  }
  return rSquared(data, (n) => predict(model, n));
}

const distinctN = (points: Point[]) => new Set(points.map((p) => p.n)).size;

/** Least-squares line; null with fewer than two distinct levels. */
export function fitLinear(points: Point[]): Model | null {
  if (distinctN(points) < 2) return null;
  const { m, b } = linearRegression(points.map((p) => [p.n, p.y]));
  const model = { kind: "linear" as const, a: b, b: m };
  return { ...model, r2: r2Of(model, points) };
}

/** Least squares on log n, log y; null unless every n and y is positive (two levels at least). */
export function fitPower(points: Point[]): Model | null {
  if (distinctN(points) < 2 || points.some((p) => p.n <= 0 || p.y <= 0)) return null;
  const { m, b } = linearRegression(points.map((p) => [Math.log(p.n), Math.log(p.y)]));
  const model = { kind: "power" as const, a: Math.exp(b), b: m };
  return { ...model, r2: r2Of(model, points) };
}

export interface Fit {
  chosen: Model;
  linear: Model;
  power: Model | null;
  /** The power exponent is above SUPER_LINEAR_EXPONENT. */
  super_linear: boolean;
}

/** Fits both models and keeps the one with the higher R² (the linear one on a tie). */
export function fitModels(points: Point[]): Fit | null {
  const linear = fitLinear(points);
  if (!linear) return null;
  const power = fitPower(points);
  const chosen = power && power.r2 > linear.r2 + 1e-9 ? power : linear;
  return {
    chosen,
    linear,
    power,
    super_linear: power !== null && power.b > SUPER_LINEAR_EXPONENT,
  };
}

export interface Validation {
  /** The level left out of the fit. */
  held_out: number;
  predicted: number;
  measured: number;
  /** (predicted − measured) / measured × 100; null when measured is 0. */
  error_pct: number | null;
  model: ModelKind;
}

/**
 * Hold-out check: fits the models without the highest level and predicts it. Needs three levels
 * (two left to fit).
 */
export function holdOut(points: Point[]): Validation | null {
  if (distinctN(points) < 3) return null;
  const sorted = [...points].sort((a, b) => a.n - b.n);
  const last = sorted[sorted.length - 1]!;
  const fit = fitModels(sorted.filter((p) => p.n !== last.n));
  if (!fit) return null;
  const predicted = predict(fit.chosen, last.n);
  return {
    held_out: last.n,
    predicted,
    measured: last.y,
    error_pct: last.y === 0 ? null : (predicted - last.y) / Math.abs(last.y) * 100,
    model: fit.chosen.kind,
  };
}
