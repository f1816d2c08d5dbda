/**
 * Sandbox side of `function`: runs each job's code in a Deno process of its own, kept warm for
 * the next run of the same code (`lib/functions/pool.ts`). This Worker relays the process's log
 * lines to the job and its artifacts to the companion, and ends the process the moment the job
 * is cancelled or times out.
 */
import { type JobContext, JobError, serveJobs } from "./runtime.ts";
import type { FunctionParams } from "../lib/functions/params.ts";
import { createProcessPool, type ProcessPool } from "../lib/functions/pool.ts";
import { FunctionError, type ProcessSpec } from "../lib/functions/process.ts";
import type { FunctionIn, FunctionOut } from "../lib/functions/companion.ts";

let pool: ProcessPool;

/** The companion's word on the run (allow_hosts cleared or refused), then its artifact replies. */
function companionLink(ctx: JobContext<FunctionParams, ProcessSpec>) {
  const cleared = Promise.withResolvers<void>();
  const saved = new Map<number, (error?: string) => void>();
  ctx.onMessage((data) => {
    const msg = data as FunctionIn;
    if (msg.k === "go") cleared.resolve();
    else if (msg.k === "refuse") cleared.reject(new JobError(msg.reason, false));
    else if (msg.k === "saved") {
      saved.get(msg.rid)?.(msg.error);
      saved.delete(msg.rid);
    }
  });
  let nextRid = 1;
  return {
    cleared: cleared.promise,
    save(name: string, bytes: Uint8Array): Promise<void> {
      const rid = nextRid++;
      return new Promise<void>((resolve, reject) => {
        saved.set(rid, (error) => error ? reject(new Error(error)) : resolve());
        ctx.send({ k: "artifact", rid, name, bytes } satisfies FunctionOut, [bytes.buffer]);
      });
    },
  };
}

const reasonOf = (signal: AbortSignal) =>
  signal.reason instanceof Error ? signal.reason.message : String(signal.reason ?? "cancelled");

async function runFunction(ctx: JobContext<FunctionParams, ProcessSpec>): Promise<unknown> {
  const link = companionLink(ctx);
  const stopped = new Promise<never>((_, reject) => {
    const stop = () => reject(new JobError(reasonOf(ctx.signal), false));
    if (ctx.signal.aborted) stop();
    else ctx.signal.addEventListener("abort", stop, { once: true });
  });
  stopped.catch(() => {});
  await Promise.race([link.cleared, stopped]);
  const acquiring = pool.acquire(ctx.params.code, ctx.params.allow_hosts);
  const proc = await Promise.race([acquiring, stopped]).catch((err) => {
    acquiring.then((p) => pool.release(p), () => {});
    throw err;
  });
  const kill = () => proc.kill(reasonOf(ctx.signal));
  ctx.signal.addEventListener("abort", kill, { once: true });
  if (ctx.signal.aborted) kill();
  ctx.processes([proc.pid]);
  try {
    return await proc.run(ctx.params.params ?? null, {
      log: (level, message) => ctx.log(level, message),
      artifact: (name, bytes) => link.save(name, bytes),
    });
  } finally {
    ctx.signal.removeEventListener("abort", kill);
    // Kept warm (or already ended): not the pool's to kill when this job ends.
    ctx.processes([]);
    pool.release(proc);
  }
}

serveJobs<FunctionParams, unknown, ProcessSpec>(
  (ctx) =>
    runFunction(ctx).catch((err) => {
      if (err instanceof FunctionError) throw new JobError(err.message, !err.fatal);
      throw err;
    }),
  {
    setup(spec) {
      pool = createProcessPool(spec);
    },
    teardown: () => pool.close(),
  },
);
