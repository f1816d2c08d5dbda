/**
 * Sandbox side of `function` without a browser: runs each job's code in a Deno process of its
 * own, kept warm for the next run of the same code (`lib/functions/pool.ts`, `function_run.ts`).
 * Functions with a browser run in the session Worker instead.
 */
import { serveJobs } from "./runtime.ts";
import type { FunctionParams } from "../lib/functions/params.ts";
import { createProcessPool, type ProcessPool } from "../lib/functions/pool.ts";
import type { ProcessSpec } from "../lib/functions/process.ts";
import type { FunctionIn } from "../lib/functions/companion.ts";
import { runFunction } from "./function_run.ts";

let pool: ProcessPool;

serveJobs<FunctionParams, unknown, ProcessSpec>(
  (ctx) =>
    runFunction(ctx, {
      pool,
      signal: ctx.signal,
      onMessage: (handler) => ctx.onMessage((data) => handler(data as FunctionIn)),
    }),
  {
    setup(spec) {
      pool = createProcessPool(spec);
    },
    teardown: () => pool.close(),
  },
);
