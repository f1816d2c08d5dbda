/**
 * One run of a function, as both Workers that run functions do it (`function.worker.ts` without a
 * browser, `session.worker.ts` with one).
 */
import type { BrowserContext, Page } from "playwright";
import { type JobContext, JobError } from "./runtime.ts";
import type { FunctionParams } from "../lib/functions/params.ts";
import type { ProcessPool } from "../lib/functions/pool.ts";
import { FunctionError } from "../lib/functions/process.ts";
import { createPageBridge } from "../lib/functions/page_bridge.ts";
import type { FunctionIn, FunctionOut } from "../lib/functions/companion.ts";

export interface RunOptions {
  pool: ProcessPool;
  /** Where the companion's messages for the run arrive (a handler, told of earlier ones too). */
  onMessage(handler: (data: FunctionIn) => void): void;
  /** Ends the run (the job's own signal, or one that also fires when its session ends). */
  signal: AbortSignal;
  /** The function's browser, when it has one. */
  browser?: { page: Page; context: BrowserContext };
}

const reasonOf = (signal: AbortSignal) =>
  signal.reason instanceof Error ? signal.reason.message : String(signal.reason ?? "cancelled");

/**
 * Runs the job's function once; failures are JobErrors (sandbox breaches are not retried).
 *
 * Waits for the companion to clear the run's allow_hosts, takes a process with the code loaded,
 * runs it with its log lines going to the job, its artifacts to the companion and its page calls to
 * the bridge, and ends the process the moment the run is stopped.
 */
export async function runFunction(
  ctx: JobContext<FunctionParams, unknown>,
  options: RunOptions,
): Promise<unknown> {
  const { pool, signal } = options;
  const cleared = Promise.withResolvers<void>();
  const saved = new Map<number, (error?: string) => void>();
  options.onMessage((msg) => {
    if (msg.k === "go") cleared.resolve();
    else if (msg.k === "refuse") cleared.reject(new JobError(msg.reason, false));
    else if (msg.k === "saved") {
      saved.get(msg.rid)?.(msg.error);
      saved.delete(msg.rid);
    }
  });
  let nextRid = 1;
  const save = (name: string, bytes: Uint8Array) =>
    new Promise<void>((resolve, reject) => {
      const rid = nextRid++;
      saved.set(rid, (error) => error ? reject(new Error(error)) : resolve());
      ctx.send({ k: "artifact", rid, name, bytes } satisfies FunctionOut, [
        bytes.buffer as ArrayBuffer,
      ]);
    });

  const stopped = new Promise<never>((_, reject) => {
    const stop = () => reject(new JobError(reasonOf(signal), false));
    if (signal.aborted) stop();
    else signal.addEventListener("abort", stop, { once: true });
  });
  stopped.catch(() => {});
  await Promise.race([cleared.promise, stopped]);
  const acquiring = pool.acquire(ctx.params.code, ctx.params.allow_hosts);
  const proc = await Promise.race([acquiring, stopped]).catch((err) => {
    acquiring.then((p) => pool.release(p), () => {});
    throw toJobError(err);
  });
  const kill = () => proc.kill(reasonOf(signal));
  signal.addEventListener("abort", kill, { once: true });
  if (signal.aborted) kill();
  ctx.processes([proc.pid]);
  const bridge = options.browser ? createPageBridge() : null;
  try {
    return await proc.run(
      ctx.params.params ?? null,
      {
        log: (level, message) => ctx.log(level, message),
        artifact: save,
        ...(bridge ? { call: bridge.call } : {}),
      },
      bridge && options.browser
        ? {
          page: bridge.handle(options.browser.page),
          context: bridge.handle(options.browser.context),
        }
        : null,
    );
  } catch (err) {
    throw toJobError(err);
  } finally {
    signal.removeEventListener("abort", kill);
    // Kept warm (or already ended): not the pool's to kill when this job ends.
    ctx.processes([]);
    pool.release(proc);
  }
}

function toJobError(err: unknown): unknown {
  return err instanceof FunctionError ? new JobError(err.message, !err.fatal) : err;
}
