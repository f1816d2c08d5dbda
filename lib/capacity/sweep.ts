/**
 * The shape of every benchmark run: an idle baseline, then each concurrency level in turn, with
 * the time windows recorded so the sizing report can pick the matching resource samples. Used by
 * the `http-bench` and `browser-bench` Workers and by the CLI.
 */
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

/** Runs the baseline and the levels; returns the record of windows and each level's result. */
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
    const result = await o.runLevel({
      concurrency,
      index,
      steady: () => {
        steady ??= Date.now();
      },
      stopped: () => {
        stopped ??= Date.now();
      },
    });
    const ended = stopped ?? Date.now();
    windows.push({ concurrency, started, steady: steady ?? started, ended });
    results.push(result);
    if (index < o.levels.length - 1 && (o.settleMs ?? 0) > 0) await sleep(o.settleMs!, o.signal);
  }
  return { record: { baseline, levels: windows }, results };
}
