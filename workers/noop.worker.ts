/** Sandbox side of `noop` (no permissions at all). */
import { JobError, serveJobs } from "./runtime.ts";
import type { NoopParams } from "./noop.ts";

export interface NoopResult {
  ok: true;
  /** When the job's code started, epoch ms with sub-ms precision (for queue latency figures). */
  started_ms: number;
  message?: string;
}

serveJobs<NoopParams, NoopResult>(async (ctx) => {
  const started = performance.timeOrigin + performance.now();
  const p = ctx.params;
  for (let i = 0; i < p.logs; i++) ctx.log("info", `log line ${i + 1} of ${p.logs}`);
  if (p.sleep_ms > 0) {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, p.sleep_ms);
      ctx.signal.addEventListener("abort", () => {
        clearTimeout(timer);
        reject(ctx.signal.reason);
      });
    });
  }
  if (p.fail) throw new JobError(p.message ?? "failed on purpose", !p.fatal);
  const result: NoopResult = { ok: true, started_ms: Math.round(started * 1000) / 1000 };
  if (p.message !== undefined) result.message = p.message;
  return result;
});
