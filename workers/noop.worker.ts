/** Sandbox side of `noop` (no permissions at all). */
import { JobError, serveJobs } from "./runtime.ts";
import type { NoopParams } from "./noop.ts";

serveJobs<NoopParams, { ok: true; message?: string }>(async (ctx) => {
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
  return p.message === undefined ? { ok: true } : { ok: true, message: p.message };
});
