/**
 * `function`: user code as a job. `params.code` is an ES module whose default export the platform
 * calls with `{ params, log, artifacts }` (and `page`, `context` with a browser); its return value
 * is the job's result.
 */
import { fileURLToPath } from "node:url";
import type { JobType } from "../lib/jobs/job_type.ts";
import type { Config } from "../lib/core/config.ts";
import { NO_PERMISSIONS, type SandboxSpec } from "../lib/jobs/sandbox.ts";
import { SESSION_STOP_GRACE_MS } from "../lib/sessions/params.ts";
import { type SessionInit, sessionSandbox } from "./session.ts";
import {
  allowHostUrls,
  DEFAULT_FUNCTION_TIMEOUT_S,
  FunctionParams,
} from "../lib/functions/params.ts";
import type { ProcessSpec } from "../lib/functions/process.ts";

/** util-linux's prlimit, which starts each function's process under its memory limit. */
export const PRLIMIT = "/usr/bin/prlimit";

const module = new URL("./function.worker.ts", import.meta.url);
const entry = fileURLToPath(new URL("./function_process.ts", import.meta.url));

const processSpec = (config: Config): ProcessSpec => ({
  deno: Deno.execPath(),
  prlimit: PRLIMIT,
  entry,
  memoryMb: config.functionMemoryMb,
});

/** Every browserless function of a process shares this Worker; it keeps their processes warm. */
export function functionSandbox(config: Config): SandboxSpec {
  return {
    module,
    permissions: { ...NO_PERMISSIONS, run: [PRLIMIT] },
    init: processSpec(config),
    jobsPerWorker: 256,
  };
}

/**
 * Functions with a browser run as live sessions, in a session Worker of their own (its browser
 * is not the one interactive sessions share) that may also start functions' processes.
 */
export function browserFunctionSandbox(config: Config): SandboxSpec {
  const session = sessionSandbox(config);
  const run = session.permissions.run;
  return {
    ...session,
    permissions: { ...session.permissions, run: [...(Array.isArray(run) ? run : []), PRLIMIT] },
    init: { ...session.init as SessionInit, functions: processSpec(config) } satisfies SessionInit,
  };
}

/**
 * The code runs in a Deno process of its own with no permission at all (net only to its
 * allow_hosts) under a memory cap; without a browser, the Worker that starts it may run prlimit and
 * nothing else (`lib/functions/process.ts`); with one, it is a live session (viewers, recording)
 * whose page the code drives through a bridge (`lib/functions/page_bridge.ts`). Timeouts and
 * cancels end the process at once; the Worker and the function's neighbours carry on.
 */
export const functionJob: JobType<FunctionParams> = {
  name: "function",
  summary: "Runs user code (a TypeScript or JavaScript module) in a sandbox of its own.",
  params: FunctionParams,
  defaultTimeoutS: () => DEFAULT_FUNCTION_TIMEOUT_S,
  urls: (p) => allowHostUrls(p.allow_hosts),
  sandbox: (p, { config }) => p.browser ? browserFunctionSandbox(config) : functionSandbox(config),
  warm: (config) => functionSandbox(config),
  artifacts: false,
  sample: false,
  // Stopped runs end their process at once; a session's browser context takes a little longer.
  stopGraceMs: SESSION_STOP_GRACE_MS,
};
