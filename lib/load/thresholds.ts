/**
 * Benchmark thresholds as SLOs, as k6 and Artillery have them (`p95<200`, `errors<1%`, `rps>=500`,
 * `lcp.p95<4000ms`): one parser for the params schema, the CLI and the check; a run passes when
 * each holds at every level.
 */
import { z } from "@hono/zod-openapi";
import type { LoadResult } from "./http.ts";
import type { LevelResult, Percentiles } from "./browser.ts";

export type BenchKind = "http" | "browser";

const OPS = ["<=", ">=", "<", ">"] as const;
type Op = typeof OPS[number];

const VITALS = ["lcp", "fcp", "ttfb", "inp", "cls"] as const;
type Vital = typeof VITALS[number];
const VITAL_PERCENTILES = ["p50", "p75", "p95", "max"] as const;
const VITAL_FIELD = {
  lcp: "lcp_ms",
  fcp: "fcp_ms",
  ttfb: "ttfb_ms",
  inp: "inp_ms",
  cls: "cls",
} as const satisfies Record<Vital, keyof LevelResult>;

/** Metric names each kind accepts, as a user writes them. */
export const THRESHOLD_METRICS: Record<BenchKind, readonly string[]> = {
  http: ["p50", "p90", "p95", "p99", "max", "mean", "rps", "errors"],
  browser: [
    ...VITALS.flatMap((v) => [v, ...VITAL_PERCENTILES.map((p) => `${v}.${p}`)]),
    "errors",
    "iterations",
  ],
};

const SHAPE = /^\s*([a-z0-9]+(?:\.[a-z0-9]+)?)\s*(<=|>=|<|>)\s*(\d+(?:\.\d+)?)\s*(ms|s|%)?\s*$/;

export interface Threshold {
  /** The threshold as written, trimmed. */
  text: string;
  metric: string;
  op: Op;
  /** The bound in the metric's unit (ms for times, % for an error share). */
  bound: number;
  /** "ms", "%", "req/s" or "" (counts, CLS). */
  unit: string;
}

const TIMES = new Set(["p50", "p90", "p95", "p99", "max", "mean"]);
const isTime = (kind: BenchKind, metric: string) =>
  kind === "http" ? TIMES.has(metric) : VITALS.some((v) => v !== "cls" && metric.startsWith(v));

/**
 * Parses one threshold for a job kind; throws an Error whose message says what is wrong.
 *
 *   threshold := metric op number [unit]        op := < | <= | > | >=
 *   http-bench:    p50 p90 p95 p99 max mean (latency, ms) · rps (requests/s) ·
 *                  errors (a count; with % the share of attempts that failed)
 *   browser-bench: lcp fcp ttfb inp (ms) and cls, at p75 unless a percentile follows
 *                  (lcp.p50, lcp.p95, lcp.max) · errors (a count) · iterations (completed ones)
 *   units: ms or s on times (default ms), % on errors
 *
 * @example parseThreshold("http", "p95<0.2s") // { metric: "p95", op: "<", bound: 200, unit: "ms" }
 */
export function parseThreshold(kind: BenchKind, text: string): Threshold {
  const m = SHAPE.exec(text);
  if (!m) {
    throw new Error(
      `"${text}" is not a threshold: write METRIC<VALUE such as p95<200 or errors<1% ` +
        "(operators < <= > >=)",
    );
  }
  const [, metric, op, number, suffix] = m as unknown as [string, string, Op, string, string?];
  if (!THRESHOLD_METRICS[kind].includes(metric)) {
    throw new Error(
      `"${text}": unknown metric "${metric}"; use ${THRESHOLD_METRICS[kind].join(", ")}`,
    );
  }
  let bound = Number(number);
  let unit = "";
  if (isTime(kind, metric)) {
    if (suffix === "%") throw new Error(`"${text}": ${metric} is a time (ms or s), not a share`);
    if (suffix === "s") bound *= 1000;
    unit = "ms";
  } else if (metric === "errors" && suffix === "%") {
    if (kind === "browser") {
      throw new Error(`"${text}": browser-bench counts errors; write errors<N without %`);
    }
    unit = "%";
  } else if (suffix) {
    throw new Error(`"${text}": ${metric} takes no unit`);
  } else if (metric === "rps") {
    unit = "req/s";
  }
  return { text: text.trim(), metric, op, bound, unit };
}

/** The `thresholds` job param of a kind: each entry checked by `parseThreshold`. */
export function thresholdsField(kind: BenchKind) {
  return z.array(
    z.string().max(100).superRefine((text, ctx) => {
      try {
        parseThreshold(kind, text);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message });
      }
    }),
  ).max(20).optional().openapi({
    description: "SLOs checked at every level, e.g. " +
      (kind === "http" ? '["p95<200", "errors<1%", "rps>100"]' : '["lcp<2500", "errors<1"]') +
      `. Metrics: ${THRESHOLD_METRICS[kind].join(", ")}. The result's \`thresholds\` says ` +
      "which passed, with the measured value.",
    example: kind === "http" ? ["p95<200", "errors<1%"] : ["lcp<2500", "errors<1"],
  });
}

/** One threshold's outcome: the worst value measured over the levels, and where. */
export interface ThresholdResult {
  threshold: string;
  ok: boolean;
  /** null when the metric had no measurement (no answered request, no page visit). */
  value: number | null;
  unit: string;
  /** The level's concurrency the value comes from. */
  concurrency: number | null;
}

export interface ThresholdReport {
  /** Every threshold held at every level. */
  passed: boolean;
  results: ThresholdResult[];
}

/** A level's figures by metric (what `parseThreshold` names), in the metric's unit. */
export type LevelFigures = { concurrency: number; value(t: Threshold): number | null };

const round = (v: number) => Math.round(v * 1000) / 1000;

/** The figures of one http-bench level. */
export function httpFigures(r: LoadResult): LevelFigures {
  const e = r.errors;
  // HTTP errors are answered requests; the other kinds never got an answer.
  const attempts = r.requests + e.connect + e.timeout + e.reset + e.parse;
  return {
    concurrency: r.concurrency,
    value(t) {
      if (t.metric === "errors") {
        if (t.unit !== "%") return e.total;
        return attempts === 0 ? null : round(e.total / attempts * 100);
      }
      if (t.metric === "rps") return r.rps;
      if (r.requests === 0) return null;
      return r.latency_ms[t.metric as keyof LoadResult["latency_ms"]];
    },
  };
}

/** The figures of one browser-bench level. */
export function browserFigures(l: LevelResult): LevelFigures {
  return {
    concurrency: l.concurrency,
    value(t) {
      if (t.metric === "errors") return l.errors.total;
      if (t.metric === "iterations") return l.iterations;
      const [vital, percentile = "p75"] = t.metric.split(".") as [Vital, keyof Percentiles];
      const p = VITAL_FIELD[vital];
      return l[p]?.[percentile] ?? null;
    },
  };
}

const holds = (v: number, op: Op, bound: number) =>
  op === "<" ? v < bound : op === "<=" ? v <= bound : op === ">" ? v > bound : v >= bound;

/**
 * Checks each threshold at every level. The value reported is the worst one (the highest for
 * `<`, the lowest for `>`); a metric with no measurement at some level fails there.
 */
export function checkThresholds(
  kind: BenchKind,
  thresholds: readonly string[],
  levels: readonly LevelFigures[],
): ThresholdReport {
  const results = thresholds.map((text): ThresholdResult => {
    const t = parseThreshold(kind, text);
    const upper = t.op === "<" || t.op === "<=";
    let worst: { value: number | null; concurrency: number } | null = null;
    for (const level of levels) {
      const value = level.value(t);
      if (
        worst === null || value === null ||
        (upper ? value > worst.value! : value < worst.value!)
      ) {
        worst = { value, concurrency: level.concurrency };
      }
      if (value === null) break;
    }
    const value = worst?.value ?? null;
    return {
      threshold: t.text,
      ok: value !== null && holds(value, t.op, t.bound),
      value,
      unit: t.unit,
      concurrency: worst?.concurrency ?? null,
    };
  });
  return { passed: results.every((r) => r.ok), results };
}

/** Requests answered below 400 over every level: 0 means nothing the benchmark did worked. */
export function httpSucceeded(levels: readonly LoadResult[]): number {
  return levels.reduce((n, l) => n + l.requests - l.errors.http_4xx - l.errors.http_5xx, 0);
}

/** Scenario iterations completed over every level: 0 means every one failed or none ran. */
export function browserSucceeded(levels: readonly LevelResult[]): number {
  return levels.reduce((n, l) => n + l.iterations, 0);
}
