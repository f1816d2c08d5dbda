/** Sandbox side of `http-bench`: network access to the target's host:port only. */
import { serveJobs } from "./runtime.ts";
import { type LoadResult, runHttpLoad } from "../lib/http_load.ts";
import type { HttpBenchParams } from "./http-bench.ts";

serveJobs<HttpBenchParams, LoadResult>(async (ctx) => {
  const p = ctx.params;
  const durationMs = p.requests === undefined ? (p.duration_s ?? 10) * 1000 : undefined;
  ctx.log("info", `starting ${p.method} ${p.url} with ${p.concurrency} connections`);
  const result = await runHttpLoad({
    url: new URL(p.url),
    method: p.method,
    headers: p.headers,
    body: p.body,
    concurrency: p.concurrency,
    durationMs,
    requests: p.requests,
    timeoutMs: p.timeout_ms,
    rate: p.rate,
    rampMs: p.ramp_s * 1000,
    signal: ctx.signal,
    onTick: (tick) => {
      const value = durationMs ? tick.elapsed_s * 1000 / durationMs : tick.requests / p.requests!;
      ctx.progress(
        value,
        `${tick.requests} requests, ${tick.rps} req/s, p95 ${tick.latency_ms.p95.toFixed(2)} ms`,
        { stats: tick },
      );
    },
  });
  ctx.log(
    "info",
    `done: ${result.requests} requests, ${result.rps} req/s, ${result.errors.total} errors`,
  );
  return result;
});
