/**
 * The shape of every benchmark run (an idle baseline, then each concurrency level in turn), run by
 * the `http-bench` and `browser-bench` Workers.
 */
import { quantile } from "simple-statistics";
import type { LevelWindow, SweepRecord } from "./report.ts";

export interface LevelContext {
  concurrency: number;
  /** 0-based position in the sweep. */
  index: number;
  /** Call once every user runs (the end of the ramp); the measured window starts here. */
  steady(): void;
  /** Call when the load stops, before teardown; the measured window ends here. */
  stopped(): void;
}

export type SweepPhase =
  | { kind: "baseline"; seconds: number }
  | { kind: "level"; index: number; concurrency: number };

export interface SweepOptions<L> {
  levels: number[];
  baselineMs: number;
  /** Pause after each level so its teardown does not leak into the next one. */
  settleMs?: number;
  signal: AbortSignal;
  runLevel(ctx: LevelContext): Promise<L>;
  onPhase?(phase: SweepPhase): void;
}

/** What a sweeping job reports through (its job context). */
export interface SweepReporter {
  log(level: "info", message: string): void;
  progress(value: number, text: string, extra?: Record<string, unknown>): void;
}

/** Reports the idle baseline as every sweeping job does: a log line and progress 0. */
export function reportBaseline(job: SweepReporter, seconds: number): void {
  job.log("info", `sampling the idle machine for ${seconds} s`);
  job.progress(0, `idle baseline (${seconds} s)`, { phase: "baseline" });
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener("abort", abort);
      resolve();
    }
    function abort() {
      clearTimeout(timer);
      reject(signal!.reason);
    }
    signal?.addEventListener("abort", abort, { once: true });
  });

/** How often the lag watch's timer asks to run. */
const LAG_PERIOD_MS = 50;

/**
 * Watches this thread's event loop: how late a 50 ms timer fires. A generator whose loop is
 * busy (its own CPU, a flood of callbacks) delays everything it times, so its figures are suspect.
 */
export function watchLag(): { stop(): { p99: number; max: number } } {
  const lags: number[] = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    lags.push(Math.max(0, now - last - LAG_PERIOD_MS));
    last = now;
  }, LAG_PERIOD_MS);
  return {
    stop() {
      clearInterval(timer);
      const r = (v: number) => Math.round(v * 10) / 10;
      return lags.length
        ? { p99: r(quantile(lags, 0.99)), max: r(Math.max(...lags)) }
        : { p99: 0, max: 0 };
    },
  };
}

/**
 * Runs the baseline and the levels; returns the record of windows and each level's result.
 *
 * The time windows are recorded so the sizing report can pick the matching resource samples, with
 * the load generator's event-loop lag during each level (a generator that cannot keep up says so).
 */
export async function runSweep<L>(
  o: SweepOptions<L>,
): Promise<{ record: SweepRecord; results: L[] }> {
  let baseline: SweepRecord["baseline"] = null;
  if (o.baselineMs > 0) {
    o.onPhase?.({ kind: "baseline", seconds: o.baselineMs / 1000 });
    const from = Date.now();
    await sleep(o.baselineMs, o.signal);
    baseline = { from, to: Date.now() };
  }
  const windows: LevelWindow[] = [];
  const results: L[] = [];
  for (const [index, concurrency] of o.levels.entries()) {
    o.onPhase?.({ kind: "level", index, concurrency });
    const started = Date.now();
    let steady: number | null = null;
    let stopped: number | null = null;
    const lag = watchLag();
    let lagMs = { p99: 0, max: 0 };
    let result: L;
    try {
      result = await o.runLevel({
        concurrency,
        index,
        steady: () => {
          steady ??= Date.now();
        },
        stopped: () => {
          stopped ??= Date.now();
        },
      });
    } finally {
      lagMs = lag.stop();
    }
    const ended = stopped ?? Date.now();
    windows.push({ concurrency, started, steady: steady ?? started, ended, lag_ms: lagMs });
    results.push(result);
    if (index < o.levels.length - 1 && (o.settleMs ?? 0) > 0) await sleep(o.settleMs!, o.signal);
  }
  return { record: { baseline, levels: windows }, results };
}
