/**
 * The sandbox protocol between the worker pool (`sandbox.ts`, `runner.ts`) and the harness every
 * `workers/*.worker.ts` runs (`workers/runtime.ts`): the messages each side sends.
 *
 *   pool → worker  { t: "init", data }            once, plain data
 *                  { t: "run", jobs: [...] }      one or more jobs to start
 *                  { t: "cancel", id, reason? }   abort one job (its AbortSignal fires)
 *                  { t: "msg", id, data }         a message for one job (from its companion)
 *                  { t: "close" }                 run `teardown`: the pool terminates this Worker next
 *   worker → pool  { t: "ready" } | { t: "init_failed", error }
 *                  { t: "closed" }                `teardown` is done: terminate me
 *                  { t: "out", events: [...], done: [...] }   batched
 *                  { t: "msg", id, data }         a message from one job, sent at once
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

export type PoolMessage =
  | { t: "init"; data: unknown }
  | { t: "run"; jobs: WorkerJob[] }
  | { t: "cancel"; id: string; reason?: string }
  | { t: "msg"; id: string; data: unknown }
  | { t: "close" };

export type WorkerMessage =
  | { t: "ready" }
  | { t: "closed" }
  | { t: "init_failed"; error: string }
  | { t: "out"; events: Array<[string, Record<string, unknown>]>; done: JobDone[] }
  | { t: "msg"; id: string; data: unknown };

/** The event type `processes()` sends; the pool consumes it instead of publishing it. */
export const PROCESSES_EVENT = "processes";
