/** Sandbox side of `http-bench`: network access to the target's checked addresses only. */
import { serveJobs } from "./runtime.ts";
import { type LoadResult, runHttpLoad } from "../lib/load/http.ts";
import { reportBaseline, runSweep } from "../lib/capacity/sweep.ts";
import type { SweepRecord } from "../lib/capacity/report.ts";
import { checkThresholds, httpFigures, type ThresholdReport } from "../lib/load/thresholds.ts";
import { type HttpBenchInit, type HttpBenchParams, httpLevels, SETTLE_S } from "./http-bench.ts";

export type HttpBenchResult = LoadResult & {
  /** Every level's figures (one entry without a sweep); the top level repeats the last one. */
  levels: Array<LoadResult & { concurrency: number }>;
  sweep: SweepRecord;
  /** With `thresholds` in the params: which held at every level, with the worst value. */
  thresholds?: ThresholdReport;
};

serveJobs<HttpBenchParams, HttpBenchResult, HttpBenchInit>(async (ctx) => {
  const p = ctx.params;
  const levels = httpLevels(p);
  const durationMs = p.requests === undefined ? (p.duration_s ?? 10) * 1000 : undefined;
  const { record, results } = await runSweep({
    levels,
    baselineMs: p.baseline_s * 1000,
    settleMs: SETTLE_S * 1000,
    signal: ctx.signal,
    onPhase: (phase) => {
      if (phase.kind === "baseline") {
        reportBaseline(ctx, phase.seconds);
      } else {
        ctx.log(
          "info",
          `starting ${p.method} ${p.url} with ${phase.concurrency} connections` +
            (levels.length > 1 ? ` (level ${phase.index + 1} of ${levels.length})` : ""),
        );
      }
    },
    runLevel: async (level) => {
      const ramp = setTimeout(level.steady, p.ramp_s * 1000);
      try {
        return await runHttpLoad({
          url: new URL(p.url),
          addresses: ctx.init.addresses,
          method: p.method,
          headers: p.headers,
          body: p.body,
          concurrency: level.concurrency,
          durationMs,
          requests: p.requests,
          timeoutMs: p.timeout_ms,
          rate: p.rate,
          rampMs: p.ramp_s * 1000,
          signal: ctx.signal,
          onTick: (tick) => {
            const within = durationMs
              ? tick.elapsed_s * 1000 / durationMs
              : tick.requests / p.requests!;
            ctx.progress(
              (level.index + Math.min(1, within)) / levels.length,
              `${level.concurrency} connections: ${tick.requests} requests, ${tick.rps} req/s, ` +
                `p95 ${tick.latency_ms.p95.toFixed(2)} ms`,
              {
                stats: tick,
                level: { index: level.index, concurrency: level.concurrency, value: within },
              },
            );
          },
        });
      } finally {
        clearTimeout(ramp);
      }
    },
  });
  const last = results[results.length - 1]!;
  ctx.log(
    "info",
    `done: ${last.requests} requests, ${last.rps} req/s, ${last.errors.total} errors`,
  );
  return {
    ...last,
    levels: results.map((r, i) => ({ ...r, concurrency: levels[i]! })),
    sweep: record,
    ...(p.thresholds &&
      { thresholds: checkThresholds("http", p.thresholds, results.map(httpFigures)) }),
  };
});
