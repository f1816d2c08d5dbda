/**
 * Capacity math, pure (no I/O): cost(n) models fitted to the healthy levels of a sweep, their
 * validation and intervals, disk and network rates, and the projection to a target concurrency.
 * `lib/capacity/report.ts` feeds it measurements.
 */
import jStat from "jstat";
import { mean, sampleStandardDeviation } from "simple-statistics";

export const FORMULAS = {
  cpu: "cost(n) = a + b·n (b ≥ 0), fitted to the healthy levels; per_session = cost(n) / n",
  memory: "cost(n) = a + b·n with b ≥ (cost(n_high) − cost(n_low)) / (n_high − n_low)",
  non_linear: "CPU only: a + b·n + c·n² with ≥ 4 levels, c > 0 beyond noise " +
    "(c / se(c) ≥ t(df), 95 %) and a lower leave-one-level-out error",
  disk: "disk_rate = Σ growth / Σ (users × seconds) over healthy levels; " +
    "disk_per_session = disk_rate × session_s",
  network: "net_rate = Σ bytes / Σ (users × seconds); network(target) = net_rate × target",
  interval: "max(t(df)·s·√(1 + x₀ᵀ(XᵀX)⁻¹x₀), z·√(x₀ᵀ·Cov(level means)·x₀)), 95 %",
  required_cores: "ceil(cpu(target) × safety_factor)",
  required_ram: "memory(target) × safety_factor + baseline_os",
  required_disk: "disk_per_session × target × retention_days × sessions_per_day + baseline_storage",
  nodes: "max(ceil(cpu(target) × safety_factor / node_cores), " +
    "ceil(memory(target) × safety_factor / (node_memory − baseline_os)))",
} as const;

/** Confidence of every interval the report prints. */
export const CONFIDENCE = 0.95;
/** Fitted levels a non-linear model needs before it may be chosen (and LOO validation runs). */
export const MIN_LEVELS_NON_LINEAR = 4;
export const MIN_LEVELS_VALIDATION = 4;
/** Beyond this many times the highest healthy level the report recommends a higher level. */
export const EXTRAPOLATION_LIMIT = 20;
/** An interval wider than this fraction of its value (either side) counts as wide. */
export const WIDE_INTERVAL = 0.25;

const GB = 1024 ** 3;
const MB = 1024 ** 2;

export interface Point {
  n: number;
  y: number;
}

/** One level's per-second values of a cost (their mean is the level's cost). */
export interface LevelSeries {
  n: number;
  values: number[];
}

export type ModelKind = "proportional" | "linear" | "quadratic";

/** y = a + b·n + c·n² (c = 0 unless quadratic; a = 0 when proportional). */
export interface Model {
  kind: ModelKind;
  a: number;
  b: number;
  c: number;
  /** R² on the fitted levels (null with fewer than three). */
  r2: number | null;
  /** Residual degrees of freedom (levels − parameters). */
  df: number;
  /** Standard deviation of the level means around the model (null when df is 0). */
  residual_sd: number | null;
}

export function predict(m: Pick<Model, "a" | "b" | "c">, n: number): number {
  return m.a + m.b * n + m.c * n * n;
}

const row = (kind: ModelKind, n: number) =>
  kind === "quadratic" ? [1, n, n * n] : kind === "linear" ? [1, n] : [n];

type Matrix = number[][];
const transpose = (m: Matrix): Matrix => m[0]!.map((_, j) => m.map((r) => r[j]!));
const multiply = (a: Matrix, b: Matrix): Matrix =>
  a.map((r) => b[0]!.map((_, j) => r.reduce((s, v, k) => s + v * b[k]![j]!, 0)));
const quadForm = (x: number[], m: Matrix) =>
  x.reduce((s, xi, i) => s + xi * m[i]!.reduce((t, mij, j) => t + mij * x[j]!, 0), 0);

/** The least-squares design of a model kind over the points: X, (XᵀX)⁻¹ and the estimator. */
function design(kind: ModelKind, ns: number[]) {
  const X = ns.map((n) => row(kind, n));
  const Xt = transpose(X);
  const inv = jStat.inv(multiply(Xt, X)) as Matrix;
  return { X, inv, estimator: multiply(inv, Xt) };
}

const distinct = (points: Point[]) => new Set(points.map((p) => p.n)).size;

function finish(kind: ModelKind, coef: number[], points: Point[], params: number): Model {
  const [a, b, c] = kind === "proportional"
    ? [0, coef[0]!, 0]
    : [coef[0]!, coef[1]!, kind === "quadratic" ? coef[2]! : 0];
  const model = { kind, a, b, c };
  const df = points.length - params;
  const sse = points.reduce((s, p) => s + (p.y - predict(model, p.n)) ** 2, 0);
  const ybar = mean(points.map((p) => p.y));
  const sst = points.reduce((s, p) => s + (p.y - ybar) ** 2, 0);
  return {
    ...model,
    r2: points.length >= 3 ? (sst === 0 ? (sse < 1e-12 ? 1 : 0) : 1 - sse / sst) : null,
    df,
    residual_sd: df > 0 ? Math.sqrt(sse / df) : null,
  };
}

/** Cost in proportion to users, from one level: y/n per user. */
export function fitProportional(p: Point): Model {
  if (p.n <= 0) throw new RangeError("concurrency must be positive");
  return finish("proportional", [p.y / p.n], [p], 1);
}

/**
 * Least-squares line with its slope at least `minSlope` (then the line goes through the mean
 * of the points); null with fewer than two distinct levels.
 */
export function fitLinear(points: Point[], minSlope = -Infinity): Model | null {
  if (distinct(points) < 2) return null;
  const { estimator } = design("linear", points.map((p) => p.n));
  let [a, b] = multiply(estimator, points.map((p) => [p.y])).map((r) => r[0]!) as [
    number,
    number,
  ];
  if (b < minSlope) {
    b = minSlope;
    a = mean(points.map((p) => p.y)) - b * mean(points.map((p) => p.n));
  }
  return finish("linear", [a, b], points, 2);
}

/**
 * How many standard errors a quadratic's n² term lies above 0, against the two-sided 95 % Student
 * t it must reach: a curvature no larger than the levels' scatter would still be squared out to the
 * target. Infinite when the parabola goes through every level.
 */
function curvature(m: Model, points: Point[]): { t: number; needed: number } | null {
  if (m.kind !== "quadratic" || m.residual_sd === null || m.df < 1) return null;
  const { inv } = design("quadratic", points.map((p) => p.n));
  const se = m.residual_sd * Math.sqrt(Math.max(0, inv[2]![2]!));
  return {
    t: se === 0 ? (m.c > 0 ? Infinity : 0) : m.c / se,
    needed: jStat.studentt.inv(1 - (1 - CONFIDENCE) / 2, m.df) as number,
  };
}

/** Least-squares parabola; null with fewer than three distinct levels. */
export function fitQuadratic(points: Point[]): Model | null {
  if (distinct(points) < 3) return null;
  const { estimator } = design("quadratic", points.map((p) => p.n));
  const coef = multiply(estimator, points.map((p) => [p.y])).map((r) => r[0]!);
  return finish("quadratic", coef, points, 3);
}

export type ResourceKind = "cpu" | "memory";

/** The slope from the lowest to the highest level: what one added session cost in this run. */
export function addedSessionCost(points: Point[]): number | null {
  if (distinct(points) < 2) return null;
  const sorted = [...points].sort((a, b) => a.n - b.n);
  const lo = sorted[0]!;
  const hi = sorted[sorted.length - 1]!;
  return (hi.y - lo.y) / (hi.n - lo.n);
}

/**
 * The model a kind of resource gets on these points (the quadratic's convexity is checked on all
 * levels by `fitResource`, not in each held-out fold):
 *
 * - CPU: linear, a + b·n with b ≥ 0 (fixed cost plus a cost per user, up to saturation).
 * - Memory: linear with the per-session slope never below the cost the run measured for an added
 *   session (`addedSessionCost`), so browsers never get cheaper as they multiply.
 * - One level: cost in proportion to users (y/n per user), the conservative reading.
 */
export function fitKind(kind: ModelKind, resource: ResourceKind, points: Point[]): Model | null {
  if (kind === "proportional") return points.length === 1 ? fitProportional(points[0]!) : null;
  if (kind === "quadratic") return fitQuadratic(points);
  const floor = resource === "memory" ? Math.max(0, addedSessionCost(points) ?? 0) : 0;
  return fitLinear(points, floor);
}

export interface HeldOut {
  held_out: number;
  predicted: number;
  measured: number;
  /** (predicted − measured) / measured × 100; null when measured is 0. */
  error_pct: number | null;
}

export interface Validation {
  method: "leave-one-level-out";
  model: ModelKind;
  levels: HeldOut[];
  mean_abs_error_pct: number | null;
  max_abs_error_pct: number | null;
}

/** Each level predicted by the same kind of model fitted to the others; null below 4 levels. */
export function leaveOneLevelOut(
  kind: ModelKind,
  resource: ResourceKind,
  points: Point[],
): Validation | null {
  if (distinct(points) < MIN_LEVELS_VALIDATION) return null;
  const levels: HeldOut[] = [];
  for (const p of points) {
    const model = fitKind(kind, resource, points.filter((q) => q !== p));
    if (!model) return null;
    const predicted = Math.max(0, predict(model, p.n));
    levels.push({
      held_out: p.n,
      predicted,
      measured: p.y,
      error_pct: p.y === 0 ? null : (predicted - p.y) / Math.abs(p.y) * 100,
    });
  }
  const errors = levels.map((l) => l.error_pct).filter((e): e is number => e !== null)
    .map(Math.abs);
  return {
    method: "leave-one-level-out",
    model: kind,
    levels,
    mean_abs_error_pct: errors.length ? mean(errors) : null,
    max_abs_error_pct: errors.length ? Math.max(...errors) : null,
  };
}

export interface Candidate {
  kind: ModelKind;
  loo_mean_abs_error_pct: number | null;
}

export interface ResourceModel {
  chosen: Model;
  /** Why this model: the rule that picked it, in a sentence. */
  reason: string;
  candidates: Candidate[];
  /** The level means the model was fitted to (healthy levels only). */
  points: Point[];
  /** The per-user slope floor (memory): the measured cost of an added session. */
  added_session_cost: number | null;
  /** Leave-one-level-out errors of the chosen model; null: unvalidated (< 4 levels). */
  validation: Validation | null;
  /** Where the interval comes from: the fit (≥ 3 levels) or only the levels' own noise. */
  interval: "prediction" | "measurement noise only";
  curve: Curve;
}

export interface Range {
  value: number;
  low: number;
  high: number;
}

/** The model with its band, from 0 to 1.5× the highest level (or `curveTo`), for charts. */
export type Curve = Array<{ n: number } & Range>;

export interface ResourceFit {
  model: ResourceModel;
  /** The cost at n users with its interval (never negative). */
  at(n: number): Range;
}

/**
 * Fits a resource's cost to the healthy levels (each with its per-second values): the model,
 * why it was chosen, its validation, and the interval at any n. The chart curve reaches at least
 * `curveTo` (the highest level run, healthy or not).
 *
 * Memory is always a line: a session's memory does not grow with the number of other sessions, and
 * a parabola through a few low levels (where the browser's shared processes still grow) squares a
 * bend of a few MB into terabytes at 1,000 users. For CPU, which contention can make super-linear,
 * a convex quadratic (a + b·n + c·n², c > 0) replaces the line only with ≥ 4 fitted levels, an n²
 * term beyond the levels' scatter (`curvature`) and a lower leave-one-level-out error: never on R²
 * over the fitted points. The interval is the wider of the fit's prediction interval (Student's t,
 * between-level scatter) and the measurement noise of the level means (per-second samples) carried
 * through the fit.
 */
export function fitResource(
  resource: ResourceKind,
  series: LevelSeries[],
  curveTo?: number,
): ResourceFit | null {
  const usable = series.filter((s) => s.values.length > 0).sort((a, b) => a.n - b.n);
  if (usable.length === 0) return null;
  const points = usable.map((s) => ({ n: s.n, y: mean(s.values) }));
  const kinds: ModelKind[] = points.length === 1
    ? ["proportional"]
    : points.length >= MIN_LEVELS_NON_LINEAR && resource === "cpu"
    ? ["linear", "quadratic"]
    : ["linear"];
  const candidates = kinds.map((kind) => ({
    kind,
    model: fitKind(kind, resource, points),
    validation: leaveOneLevelOut(kind, resource, points),
  })).filter((c) => c.model !== null && (c.kind !== "quadratic" || c.model.c > 0));
  const linear = candidates.find((c) => c.kind === "linear");
  const quad = candidates.find((c) => c.kind === "quadratic");
  let chosen = candidates[0]!;
  let reason = points.length === 1
    ? "one level: cost in proportion to users"
    : resource === "memory"
    ? "linear: a fixed cost plus a cost per session"
    : "linear: a fixed cost plus a cost per user, up to saturation";
  const err = (c: typeof chosen | undefined) => c?.validation?.mean_abs_error_pct ?? null;
  const bend = quad ? curvature(quad.model!, points) : null;
  if (linear && quad && err(quad) !== null && err(linear) !== null) {
    const held = `(${err(quad)!.toFixed(1)} % against ${err(linear)!.toFixed(1)} %)`;
    if (err(quad)! >= err(linear)!) {
      reason += `; a quadratic did not beat it on held-out levels ${held}`;
    } else if (bend && bend.t < bend.needed) {
      reason += `; a quadratic beat it on held-out levels ${held} but its n² term is within ` +
        `the levels' scatter (t = ${bend.t.toFixed(2)} < ${bend.needed.toFixed(2)}), so it is ` +
        "not extrapolated";
    } else {
      chosen = quad;
      reason = `quadratic: beats linear on held-out levels ${held}`;
    }
  }
  const model = chosen.model!;
  const floor = resource === "memory" ? addedSessionCost(points) : null;
  if (floor !== null && model.kind === "linear" && Math.abs(model.b - Math.max(0, floor)) < 1e-9) {
    reason += "; per-session slope raised to the measured cost of an added session";
  }

  // Measurement noise of each level mean, carried through the least-squares estimator.
  const ns = points.map((p) => p.n);
  const { inv, estimator } = design(model.kind, ns);
  const se2 = usable.map((s) =>
    s.values.length > 1 ? sampleStandardDeviation(s.values) ** 2 / s.values.length : 0
  );
  const covMeas = multiply(
    estimator.map((r) => r.map((v, i) => v * se2[i]!)),
    transpose(estimator),
  );
  const t = model.df > 0 ? jStat.studentt.inv(1 - (1 - CONFIDENCE) / 2, model.df) as number : 0;
  const z = jStat.normal.inv(1 - (1 - CONFIDENCE) / 2, 0, 1) as number;
  const at = (n: number): Range => {
    const x0 = row(model.kind, n);
    const value = Math.max(0, predict(model, n));
    const fitHalf = model.residual_sd !== null
      ? t * model.residual_sd * Math.sqrt(1 + quadForm(x0, inv))
      : 0;
    const measHalf = z * Math.sqrt(Math.max(0, quadForm(x0, covMeas)));
    const half = Math.max(fitHalf, measHalf);
    return { value, low: Math.max(0, value - half), high: value + half };
  };
  const top = Math.max(points[points.length - 1]!.n * 1.5, curveTo ?? 0);

  return {
    model: {
      chosen: model,
      reason,
      candidates: candidates.map((c) => ({
        kind: c.kind,
        loo_mean_abs_error_pct: c.validation?.mean_abs_error_pct ?? null,
      })),
      points,
      added_session_cost: floor,
      validation: chosen.validation,
      interval: model.residual_sd !== null ? "prediction" : "measurement noise only",
      curve: Array.from({ length: 25 }, (_, i) => {
        const n = Math.round(top * i / 24 * 100) / 100;
        return { n, ...at(n) };
      }),
    },
    at,
  };
}

// ---- rates ----

/** One healthy level's totals, for the rates. */
export interface RateLevel {
  n: number;
  seconds: number;
  disk_growth_bytes: number;
  /** Bytes the sized processes received and sent (HTTP: the target's requests and answers). */
  net_rx_bytes: number;
  net_tx_bytes: number;
  requests?: number;
}

export interface Rates {
  /** Disk growth per session-second. */
  disk_bytes_per_session_s: number;
  net_rx_bytes_per_session_s: number;
  net_tx_bytes_per_session_s: number;
  /** HTTP only: bytes in and out per request, and requests per second per connection. */
  net_bytes_per_request: { rx: number; tx: number } | null;
  requests_per_s_per_user: number | null;
}

/** Pooled rates over the healthy levels; never negative. */
export function rates(levels: RateLevel[]): Rates {
  const sessionSeconds = levels.reduce((s, l) => s + l.n * l.seconds, 0);
  const per = (k: "disk_growth_bytes" | "net_rx_bytes" | "net_tx_bytes") =>
    sessionSeconds > 0 ? Math.max(0, levels.reduce((s, l) => s + l[k], 0)) / sessionSeconds : 0;
  const requests = levels.reduce((s, l) => s + (l.requests ?? 0), 0);
  const http = levels.some((l) => l.requests !== undefined);
  const top = [...levels].sort((a, b) => b.n - a.n)[0];
  return {
    disk_bytes_per_session_s: per("disk_growth_bytes"),
    net_rx_bytes_per_session_s: per("net_rx_bytes"),
    net_tx_bytes_per_session_s: per("net_tx_bytes"),
    net_bytes_per_request: http && requests > 0
      ? {
        rx: levels.reduce((s, l) => s + l.net_rx_bytes, 0) / requests,
        tx: levels.reduce((s, l) => s + l.net_tx_bytes, 0) / requests,
      }
      : null,
    requests_per_s_per_user: http && top && top.seconds > 0
      ? (top.requests ?? 0) / top.seconds / top.n
      : null,
  };
}

// ---- projection ----

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
  /** Target ÷ highest healthy level measured. */
  extrapolation_factor: number;
  per_session: PerSession;
  required_cores: number;
  required_ram_bytes: number;
  required_disk_bytes: number;
  /** Bytes per second in and out at the target (rates × target). */
  network_bytes_per_s: { rx: number; tx: number };
  nodes: { count: number; cores: number; memory_gb: number; limited_by: "cpu" | "memory" };
  /** The 95 % interval of each figure (from the cost intervals, safety factor applied). */
  interval: {
    cores: [number, number];
    ram_bytes: [number, number];
    nodes: [number, number];
  };
  /** Relative half-width of the wider of the CPU and memory intervals. */
  uncertainty: number;
  /** A level to measure next to narrow this projection (null: no need). */
  recommended_next_level: number | null;
}

function needs(cores: number, ram: number, inputs: SizingInputs) {
  const sf = inputs.safety_factor;
  const usablePerNode = inputs.node_shape.memory_gb * GB - inputs.baseline_os_mb * MB;
  if (usablePerNode <= 0) throw new RangeError("node memory must exceed baseline_os_mb");
  const byCpu = Math.ceil(cores * sf / inputs.node_shape.cores - 1e-9);
  const byMem = Math.ceil(ram * sf / usablePerNode - 1e-9);
  return {
    cores: Math.ceil(cores * sf - 1e-9),
    ram: Math.round(ram * sf + inputs.baseline_os_mb * MB),
    nodes: Math.max(1, byCpu, byMem),
    limited_by: (byMem > byCpu ? "memory" : "cpu") as "cpu" | "memory",
  };
}

/** A round level near `n` (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, ...). */
export function niceLevel(n: number): number {
  if (n <= 2) return Math.max(1, Math.ceil(n));
  const p = 2 ** Math.floor(Math.log2(n));
  return n <= p ? p : n <= p * 1.5 ? p * 1.5 : p * 2;
}

export interface ProjectInput {
  target: number;
  cpu: Range;
  memory: Range;
  rates: Rates;
  /** Seconds a session lasts (for its disk). */
  session_s: number;
  /** The highest healthy level measured. */
  highest: number;
}

/** The projection formulas for one target, with intervals and what to measure next. */
export function project(p: ProjectInput, inputs: SizingInputs): Projection {
  const mid = needs(p.cpu.value, p.memory.value, inputs);
  const low = needs(p.cpu.low, p.memory.low, inputs);
  const high = needs(p.cpu.high, p.memory.high, inputs);
  const diskPerSession = p.rates.disk_bytes_per_session_s * p.session_s;
  const rel = (r: Range) => r.value > 0 ? (r.high - r.low) / 2 / r.value : 0;
  const uncertainty = Math.max(rel(p.cpu), rel(p.memory));
  const extrapolation = p.target / p.highest;
  let next: number | null = null;
  if (
    (uncertainty > WIDE_INTERVAL || extrapolation > EXTRAPOLATION_LIMIT) && p.target > p.highest
  ) {
    const wanted = Math.max(p.highest * 2, Math.min(p.highest * 4, p.target / EXTRAPOLATION_LIMIT));
    next = niceLevel(Math.min(p.target, wanted));
  }
  return {
    target: p.target,
    extrapolation_factor: Math.round(extrapolation * 10) / 10,
    per_session: {
      cpu_cores: p.cpu.value / p.target,
      mem_bytes: p.memory.value / p.target,
      disk_bytes: diskPerSession,
    },
    required_cores: mid.cores,
    required_ram_bytes: mid.ram,
    required_disk_bytes: Math.round(
      diskPerSession * p.target * inputs.retention_days * inputs.sessions_per_day +
        inputs.baseline_storage_gb * GB,
    ),
    network_bytes_per_s: {
      rx: p.rates.net_rx_bytes_per_session_s * p.target,
      tx: p.rates.net_tx_bytes_per_session_s * p.target,
    },
    nodes: {
      count: mid.nodes,
      cores: inputs.node_shape.cores,
      memory_gb: inputs.node_shape.memory_gb,
      limited_by: mid.limited_by,
    },
    interval: {
      cores: [low.cores, high.cores],
      ram_bytes: [low.ram, high.ram],
      nodes: [low.nodes, high.nodes],
    },
    uncertainty: Math.round(uncertainty * 1000) / 1000,
    recommended_next_level: next,
  };
}
