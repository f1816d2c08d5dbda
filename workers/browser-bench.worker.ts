/**
 * Sandbox side of `browser-bench`: reads node_modules and the Chromium executable, runs it,
 * writes only under the job's artifact directory (screenshots; browser profiles in `.tmp`).
 */
import { JobError, serveJobs } from "./runtime.ts";
import { loadPlaywright } from "../lib/core/playwright.ts";
import {
  type BrowserBenchResult,
  createBrowserLoad,
  ERROR_COUNT_KEYS,
  type ErrorCounts,
  readWebVitals,
} from "../lib/load/browser.ts";
import { reportBaseline, runSweep } from "../lib/capacity/sweep.ts";
import { browserFigures, checkThresholds, type ThresholdReport } from "../lib/load/thresholds.ts";
import {
  type BrowserBenchInit,
  type BrowserBenchParams,
  browserLevels,
  SETTLE_S,
} from "./browser-bench.ts";

/** Distinct errors logged the first time they happen; later ones are only counted. */
const LOGGED_ERRORS = 20;

/** With `thresholds` in the params: which held at every level, with the worst value. */
type Result = BrowserBenchResult & { thresholds?: ThresholdReport };

serveJobs<BrowserBenchParams, Result, BrowserBenchInit>(async (ctx) => {
  const p = ctx.params;
  if (!ctx.artifactDir) throw new JobError("browser-bench needs an artifact directory", false);
  const tmpDir = `${ctx.artifactDir}/.tmp`;
  await Deno.mkdir(tmpDir, { recursive: true });
  // Browser profiles go to the artifact directory; Chromium's own TMPDIR stays the system's,
  // because its singleton socket path must stay short.
  const playwright = await loadPlaywright({}, { tmpDir });
  const levels = browserLevels(p);
  let logged = 0;
  const load = createBrowserLoad({
    playwright,
    launch: { executablePath: ctx.init.chromiumPath, proxy: ctx.init.proxy },
    browserPerUser: p.browser_per_user,
    url: p.url,
    scenario: p.scenario,
    artifactDir: ctx.artifactDir,
    screenshotEveryS: p.screenshot_every_s,
    screenshotQuality: p.screenshot_quality,
    stepTimeoutMs: p.step_timeout_ms,
    viewport: p.viewport,
    maxErrorScreenshots: p.error_screenshots,
    webVitalsSource: await readWebVitals(),
    onProcesses: (pids) => ctx.processes(pids),
    ignoreErrors: p.ignore_errors.map((source) => new RegExp(source)),
    onNewError: (e) => {
      if (logged++ < LOGGED_ERRORS) {
        ctx.log("warn", `${e.kind} error (${e.levels[0]} users): ${e.message}`);
      } else if (logged === LOGGED_ERRORS + 1) {
        ctx.log("warn", "more distinct errors: counted in the result, not logged");
      }
    },
  });
  try {
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
            `level ${phase.index + 1} of ${levels.length}: ${phase.concurrency} users on ${p.url}` +
              (p.browser_per_user ? " (a browser each)" : " (a context each)"),
          );
        }
      },
      runLevel: (level) =>
        load.runLevel({
          index: level.index,
          concurrency: level.concurrency,
          durationMs: p.duration_s * 1000,
          rampMs: p.ramp_s * 1000,
          signal: ctx.signal,
          onSteady: level.steady,
          onStop: level.stopped,
          onTick: (tick) => {
            const within = Math.min(1, tick.elapsed_s / p.duration_s);
            const lcp = tick.vitals.lcp_ms === null ? "–" : `${Math.round(tick.vitals.lcp_ms)} ms`;
            ctx.progress(
              (level.index + within) / levels.length,
              `${tick.users_active}/${level.concurrency} users: ${tick.iterations} iterations, ` +
                `${tick.page_visits} page visits, LCP p75 ${lcp}, ${tick.errors} errors`,
              {
                browser: tick,
                level: { index: level.index, concurrency: level.concurrency, value: within },
              },
            );
          },
        }),
    });
    const last = results[results.length - 1]!;
    const errors = Object.fromEntries(
      ERROR_COUNT_KEYS.map((k) => [
        k,
        results.reduce((a, r) => a + r.errors[k as keyof ErrorCounts], 0),
      ]),
    ) as ErrorCounts;
    ctx.log(
      "info",
      `done: ${results.reduce((a, r) => a + r.iterations, 0)} iterations, ` +
        `${errors.total} errors, ${results.reduce((a, r) => a + r.screenshots, 0)} screenshots`,
    );
    return {
      url: p.url,
      browser_per_user: p.browser_per_user,
      concurrency: last.concurrency,
      iterations: last.iterations,
      lcp_ms: last.lcp_ms,
      fcp_ms: last.fcp_ms,
      cls: last.cls,
      ttfb_ms: last.ttfb_ms,
      inp_ms: last.inp_ms,
      levels: results,
      errors,
      error_log: load.errors(),
      screenshots: results.reduce((a, r) => a + r.screenshots, 0),
      sweep: record,
      ...(p.thresholds &&
        { thresholds: checkThresholds("browser", p.thresholds, results.map(browserFigures)) }),
    };
  } finally {
    await load.close();
    await Deno.remove(tmpDir, { recursive: true }).catch(() => {});
  }
});
