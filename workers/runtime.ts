/**
 * The harness every `*.worker.ts` uses: it speaks the sandbox protocol
 * (`lib/jobs/worker_protocol.ts`) with the worker pool.
 */
import {
  type JobDone,
  type PoolMessage,
  PROCESSES_EVENT,
  type WorkerJob,
  type WorkerMessage,
} from "../lib/jobs/worker_protocol.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";

export interface JobContext<P, I = unknown> {
  id: string;
  params: P;
  attempt: number;
  artifactDir: string | null;
  /** The plain data the pool sent at start-up. */
  init: I;
  signal: AbortSignal;
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void;
  /** `value` from 0 to 1. */
  progress(value: number, text: string, extra?: Record<string, unknown>): void;
  sample(data: Record<string, unknown>): void;
  emit(type: string, data: Record<string, unknown>): void;
  /**
   * Names the processes this job started (e.g. its browsers): the pool measures them and their
   * descendants in the job's resource samples, and kills them if the job's Worker is terminated.
   */
  processes(pids: number[]): void;
  /**
   * Sends a message to the job's companion in the pool process at once (not batched, not
   * stored). Buffers listed in `transfer` move to the pool instead of being copied.
   */
  send(data: unknown, transfer?: Transferable[]): void;
  /** Receives the companion's messages; messages that came before this call are replayed. */
  onMessage(handler: (data: unknown) => void): void;
}

/** An error that should not be retried (bad input the schema could not catch, a 4xx target). */
export class JobError extends Error {
  override name = "JobError";
  constructor(message: string, readonly retryable = true) {
    super(message);
  }
}

export interface ServeOptions<I> {
  /** Runs once with the init data before any job (e.g. to launch a browser). */
  setup?(init: I): Promise<void> | void;
  /**
   * Runs when the pool is about to terminate this Worker (idle and let go, or its process is
   * stopping), for what a terminated Worker would leave behind: a browser it launched, which
   * Playwright can close and remove the profile of only from here.
   */
  teardown?(): Promise<void> | void;
}

/**
 * A job handler gets a context with its params, an AbortSignal and event emitters; what it returns
 * is the job's result, what it throws fails the attempt (`JobError` with `retryable: false` fails
 * the job for good). `send` / `onMessage` talk to the job's companion in the pool process without
 * going through Redis.
 */
export function serveJobs<P, R, I = unknown>(
  handler: (ctx: JobContext<P, I>) => Promise<R>,
  options: ServeOptions<I> = {},
): void {
  const scope = self as unknown as {
    postMessage(m: WorkerMessage, transfer?: Transferable[]): void;
    onmessage: ((e: MessageEvent<PoolMessage>) => void) | null;
  };
  let init: I;
  let events: Array<[string, Record<string, unknown>]> = [];
  let done: JobDone[] = [];
  let scheduled = false;
  const controllers = new Map<string, AbortController>();
  const inboxes = new Map<string, { handler?: (data: unknown) => void; early: unknown[] }>();
  const inbox = (id: string) => {
    let box = inboxes.get(id);
    if (!box) inboxes.set(id, box = { early: [] });
    return box;
  };

  const flush = () => {
    scheduled = false;
    if (events.length === 0 && done.length === 0) return;
    scope.postMessage({ t: "out", events, done });
    events = [];
    done = [];
  };
  const schedule = () => {
    if (!scheduled) {
      scheduled = true;
      queueMicrotask(flush);
    }
  };
  const push = (id: string, event: Record<string, unknown>) => {
    events.push([id, { ts: Date.now(), ...event }]);
    schedule();
  };

  const run = async (job: WorkerJob) => {
    const controller = new AbortController();
    controllers.set(job.id, controller);
    const ctx: JobContext<P, I> = {
      id: job.id,
      params: job.params as P,
      attempt: job.attempt,
      artifactDir: job.artifact_dir,
      init,
      signal: controller.signal,
      log: (level, message, fields) => push(job.id, { type: "log", level, message, ...fields }),
      progress: (value, text, extra) =>
        push(job.id, { type: "progress", value: Math.max(0, Math.min(1, value)), text, ...extra }),
      sample: (data) => push(job.id, { type: "sample", ...data }),
      emit: (type, data) => push(job.id, { ...data, type }),
      processes: (pids) => push(job.id, { type: PROCESSES_EVENT, pids }),
      send: (data, transfer = []) => scope.postMessage({ t: "msg", id: job.id, data }, transfer),
      onMessage: (handler) => {
        const box = inbox(job.id);
        box.handler = handler;
        for (const data of box.early.splice(0)) handler(data);
      },
    };
    try {
      const result = await handler(ctx);
      done.push({ id: job.id, ok: true, result: result ?? null });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const fatal = err instanceof JobError && !err.retryable;
      done.push({ id: job.id, ok: false, error: message, fatal });
    } finally {
      controllers.delete(job.id);
      inboxes.delete(job.id);
      schedule();
    }
  };

  // The pool sends jobs right behind `init` without waiting for "ready" (a cold start saves a
  // round trip), so everything after `init` waits until it is handled; after a failed `init`
  // nothing runs (the pool terminates this Worker).
  let initialized!: () => void;
  const setupDone = new Promise<void>((resolve) => (initialized = resolve));
  scope.onmessage = async (e) => {
    const msg = e.data;
    if (msg.t === "init") {
      init = msg.data as I;
      try {
        await options.setup?.(init);
      } catch (err) {
        scope.postMessage({
          t: "init_failed",
          error: err instanceof Error ? err.message : String(err),
        });
        return;
      }
      scope.postMessage({ t: "ready" });
      initialized();
      return;
    }
    await setupDone;
    if (msg.t === "run") {
      for (const job of msg.jobs) run(job);
    } else if (msg.t === "close") {
      try {
        await options.teardown?.();
      } finally {
        scope.postMessage({ t: "closed" });
      }
    } else if (msg.t === "cancel") {
      controllers.get(msg.id)?.abort(new JobError(msg.reason ?? "cancelled", false));
    } else if (msg.t === "msg") {
      if (!controllers.has(msg.id)) return;
      const box = inbox(msg.id);
      if (box.handler) box.handler(msg.data);
      else box.early.push(msg.data);
    }
  };
}
