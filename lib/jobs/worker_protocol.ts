/**
 * The sandbox protocol between the worker pool (`sandbox.ts`, `runner.ts`) and the harness every
 * `workers/*.worker.ts` runs (`workers/runtime.ts`): the messages each side sends.
 */

export interface WorkerJob {
  id: string;
  params: unknown;
  attempt: number;
  artifact_dir: string | null;
}

export interface JobDone {
  id: string;
  ok: boolean;
  result?: unknown;
  error?: string;
  fatal?: boolean;
}

/**
 * Pool → worker: `init` once, plain data; `run` one or more jobs to start; `cancel` aborts one job
 * (its AbortSignal fires); `msg` a message for one job (from its companion); `close` runs
 * `teardown`, and the pool terminates the Worker next.
 */
export type PoolMessage =
  | { t: "init"; data: unknown }
  | { t: "run"; jobs: WorkerJob[] }
  | { t: "cancel"; id: string; reason?: string }
  | { t: "msg"; id: string; data: unknown }
  | { t: "close" };

/**
 * Worker → pool: `ready` or `init_failed`; `closed` when `teardown` is done (terminate me); `out`
 * batched events and finished jobs; `msg` a message from one job, sent at once.
 */
export type WorkerMessage =
  | { t: "ready" }
  | { t: "closed" }
  | { t: "init_failed"; error: string }
  | { t: "out"; events: Array<[string, Record<string, unknown>]>; done: JobDone[] }
  | { t: "msg"; id: string; data: unknown };

/** The event type `processes()` sends; the pool consumes it instead of publishing it. */
export const PROCESSES_EVENT = "processes";
