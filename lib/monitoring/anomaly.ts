/**
 * Online anomaly detection on one series: a robust baseline (median and MAD of the last `windowS`
 * seconds), a modified z-score, and a minimum duration, so one blip is never an alert.
 */
import { medianSorted } from "simple-statistics";

export interface DetectorOptions {
  series: string;
  direction: "high" | "low";
  /** z-score beyond which a sample is out of the expected range. */
  z: number;
  minDurationS: number;
  minScale: number;
  /** Baseline window (default 600 s). */
  windowS?: number;
  /** Samples needed before anything is judged (default: 3 × minDurationS, at least 10). */
  warmupSamples?: number;
  /** Whether the series can go below zero (default false: the expected range is clipped at 0). */
  signed?: boolean;
}

export interface Anomaly {
  series: string;
  direction: "high" | "low";
  /** The latest value while open; the value that opened it in the alert. */
  value: number;
  /** The most extreme value seen while open. */
  peak: number;
  baseline: number;
  expected_low: number;
  expected_high: number;
  z: number;
  /** Epoch ms of the first out-of-range sample. */
  since: number;
  /** Epoch ms when the minimum duration was reached. */
  detected_at: number;
}

export type DetectorEvent =
  | { kind: "alert"; anomaly: Anomaly }
  | { kind: "resolved"; anomaly: Anomaly; resolved_at: number };

export interface Detector {
  /** Feeds one sample; returns what changed, if anything. */
  update(ts: number, value: number): DetectorEvent | null;
  /** The open anomaly, if any. */
  active(): Anomaly | null;
  samples(): number;
}

/** Index where `v` goes in the sorted array `a`. */
function insertAt(a: number[], v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The score is `(x − median) / max(1.4826 · MAD, minScale)`. An anomaly opens when it stays beyond
 * the threshold (in the watched direction) for `minDurationS`, and resolves when it stays back
 * inside for as long. The baseline keeps every sample: a new level that lasts longer than half the
 * window becomes the new normal.
 */
export function createDetector(options: DetectorOptions): Detector {
  const windowMs = (options.windowS ?? 600) * 1000;
  const minMs = options.minDurationS * 1000;
  const warmup = options.warmupSamples ?? Math.max(10, Math.ceil(3 * options.minDurationS));
  const times: number[] = [];
  const values: number[] = [];
  const sorted: number[] = [];
  let outSince: number | null = null;
  let inSince: number | null = null;
  let open: Anomaly | null = null;

  const add = (ts: number, v: number) => {
    times.push(ts);
    values.push(v);
    sorted.splice(insertAt(sorted, v), 0, v);
    while (times.length > 0 && ts - times[0]! > windowMs) {
      times.shift();
      const old = values.shift()!;
      sorted.splice(insertAt(sorted, old), 1);
    }
  };

  return {
    update(ts, value) {
      if (!Number.isFinite(value)) return null;
      if (sorted.length < warmup) {
        add(ts, value);
        return null;
      }
      const base = medianSorted(sorted);
      const deviations = sorted.map((v) => Math.abs(v - base)).sort((a, b) => a - b);
      const scale = Math.max(1.4826 * medianSorted(deviations), options.minScale);
      const raw = (value - base) / scale;
      const z = options.direction === "high" ? raw : -raw;
      const out = z >= options.z;
      let low = base - options.z * scale;
      if (!options.signed) low = Math.max(0, low);
      const high = base + options.z * scale;
      add(ts, value);

      if (!open) {
        if (!out) {
          outSince = null;
          return null;
        }
        outSince ??= ts;
        if (ts - outSince < minMs) return null;
        open = {
          series: options.series,
          direction: options.direction,
          value,
          peak: value,
          baseline: base,
          expected_low: low,
          expected_high: high,
          z: Math.round(z * 100) / 100,
          since: outSince,
          detected_at: ts,
        };
        inSince = null;
        return { kind: "alert", anomaly: { ...open } };
      }
      if (out) {
        inSince = null;
        open.value = value;
        if (options.direction === "high" ? value > open.peak : value < open.peak) open.peak = value;
        return null;
      }
      inSince ??= ts;
      if (ts - inSince < minMs) return null;
      const closed = { ...open, value };
      open = null;
      outSince = null;
      return { kind: "resolved", anomaly: closed, resolved_at: ts };
    },
    active: () => (open ? { ...open } : null),
    samples: () => sorted.length,
  };
}
