/**
 * Sandboxed Deno Workers and their warm pool: a job runs in a Worker whose `deno.permissions` are
 * narrowed to what its type needs.
 */
import type { JobDone, PoolMessage, WorkerJob, WorkerMessage } from "./worker_protocol.ts";
import { errorMessage, type Logger } from "../core/log.ts";
import { safeData } from "../core/strings.ts";

export type Permissions = Deno.PermissionOptionsObject;

/** No permission at all; job types widen only what they need. */
export const NO_PERMISSIONS: Permissions = {
  env: false,
  ffi: false,
  import: false,
  net: false,
  read: false,
  run: false,
  sys: false,
  write: false,
};

/** Read and write limited to a job's own artifact directory, nothing else. */
export function artifactPermissions(artifactDir: string): Permissions {
  return { ...NO_PERMISSIONS, read: [artifactDir], write: [artifactDir] };
}

export interface SandboxSpec {
  module: URL;
  permissions: Permissions;
  /** Plain data sent to the Worker once, before its first job. */
  init?: unknown;
  /** How many jobs one Worker may run at the same time. */
  jobsPerWorker: number;
}

export type RunResult = { ok: true; result: unknown } | {
  ok: false;
  error: string;
  fatal: boolean;
};

/**
 * The Worker that hosted a job ended before the job did: killed for this job (`self`), killed for
 * another job it also hosted (`other`: this job did nothing wrong), or crashed (`crash`).
 */
export class WorkerLost extends Error {
  override name = "WorkerLost";
  constructor(message: string, readonly why: "self" | "other" | "crash") {
    super(message);
  }
}

export interface RunHandle {
  done: Promise<RunResult>;
  /** Cooperative abort: the job's AbortSignal fires with `reason` (default "cancelled"). */
  abort(reason?: string): void;
  /** Sends a message to the job (its `onMessage` handler); `transfer` moves buffers. */
  send(data: unknown, transfer?: Transferable[]): void;
  /** Terminates the Worker hosting this job; `reason` ends up in the job's error. */
  kill(reason: string): void;
}

interface Host {
  key: string;
  worker: Worker;
  ready: Promise<void>;
  jobs: Map<
    string,
    {
      resolve(r: RunResult): void;
      reject(e: Error): void;
      onEvent: EventSink;
      onMessage?: MessageSink;
    }
  >;
  capacity: number;
  dead: boolean;
  idleSince: number;
  /** Set while the Worker's teardown is awaited (`close`, or an idle Worker let go). */
  closed?: () => void;
}

type EventSink = (event: Record<string, unknown>) => void;
type MessageSink = (data: unknown) => void;

export interface SandboxOptions {
  log: Logger;
  /** Idle Workers kept per profile (0 = none: every job pays a cold start). */
  warmPerProfile: number;
  /** A profile not used for this long loses its idle Workers. */
  idleMs?: number;
}

export interface Sandbox {
  run(spec: SandboxSpec, job: WorkerJob, onEvent: EventSink, onMessage?: MessageSink): RunHandle;
  /** Starts `count` idle Workers for a profile ahead of its first job. */
  prewarm(spec: SandboxSpec, count?: number): Promise<void>;
  /**
   * Starts a Worker for a job that is on its way (enqueued here, not yet claimed), unless one
   * with room is there already. Not used within `PRESTART_WAIT_MS` (another process took the
   * job), it goes unless the warm pool keeps it.
   */
  prestart(spec: SandboxSpec): void;
  stats(): { workers: number; busy: number; profiles: number };
  /**
   * Terminates every Worker, after letting each run its teardown (`serveJobs`), at most
   * `teardownMs` (default 3 s) for all of them together.
   */
  close(teardownMs?: number): Promise<void>;
}

/** How long Workers being ended get for their teardown (`serveJobs`), all together. */
export const TEARDOWN_MS = 3_000;

/** How long a Worker started for a job on its way waits for it before it may be trimmed. */
export const PRESTART_WAIT_MS = 5_000;

function profileKey(spec: SandboxSpec): string {
  return JSON.stringify([spec.module.href, spec.permissions, spec.init ?? null]);
}

/**
 * Workers are pooled per permission profile (module + permissions + init data), so the next job
 * with the same profile skips the cold start; a Worker may host several jobs at once when its type
 * allows it. Terminating a Worker (cancel, timeout) fails the jobs it hosted with `WorkerLost`,
 * telling the caller whether it was their own job that was killed. Besides events, a job and its
 * caller may exchange messages (`RunHandle.send`, the `onMessage` sink), delivered in order with
 * the run and cancel messages, buffers transferred rather than copied.
 */
export function createSandbox(options: SandboxOptions): Sandbox {
  const { log } = options;
  const idleMs = options.idleMs ?? 10 * 60_000;
  const hosts = new Map<string, Host[]>();

  const detach = (host: Host) => {
    const list = hosts.get(host.key);
    if (list) {
      const i = list.indexOf(host);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) hosts.delete(host.key);
    }
  };

  const kill = (host: Host, reason: string, killedFor: string | null) => {
    if (host.dead) return;
    host.dead = true;
    host.worker.terminate();
    detach(host);
    for (const [id, job] of host.jobs) {
      const why = killedFor === null ? "crash" : killedFor === id ? "self" : "other";
      job.reject(new WorkerLost(reason, why));
    }
    host.jobs.clear();
  };

  const spawn = (spec: SandboxSpec, key: string): Host => {
    const worker = new Worker(spec.module, {
      type: "module",
      name: spec.module.pathname.split("/").pop(),
      deno: { permissions: spec.permissions },
    });
    let readyResolve!: () => void;
    let readyReject!: (e: Error) => void;
    const ready = new Promise<void>((res, rej) => {
      readyResolve = res;
      readyReject = rej;
    });
    ready.catch(() => {});
    const host: Host = {
      key,
      worker,
      ready,
      jobs: new Map(),
      capacity: Math.max(1, spec.jobsPerWorker),
      dead: false,
      idleSince: performance.now(),
    };
    worker.onmessage = (e: MessageEvent<WorkerMessage>) => {
      const msg = e.data;
      if (msg.t === "out") {
        // What a job emits (page text, errors, results) is made safe once, here, on its way in.
        for (const [id, event] of msg.events) host.jobs.get(id)?.onEvent(safeData(event));
        for (const d of msg.done) settle(host, safeData(d));
      } else if (msg.t === "msg") {
        host.jobs.get(msg.id)?.onMessage?.(msg.data);
      } else if (msg.t === "closed") {
        host.closed?.();
      } else if (msg.t === "ready") {
        readyResolve();
      } else if (msg.t === "init_failed") {
        readyReject(new Error(`worker start-up failed: ${msg.error}`));
        kill(host, `worker start-up failed: ${msg.error}`, null);
      }
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      const reason = `worker crashed: ${e.message}`;
      log.warn("sandboxed worker crashed", { module: spec.module.pathname, error: e.message });
      readyReject(new Error(reason));
      kill(host, reason, null);
    };
    worker.onmessageerror = () => {
      kill(host, "worker sent a message that could not be read", null);
    };
    worker.postMessage({ t: "init", data: spec.init ?? null } satisfies PoolMessage);
    let list = hosts.get(key);
    if (!list) hosts.set(key, list = []);
    list.push(host);
    return host;
  };

  const settle = (host: Host, d: JobDone) => {
    const job = host.jobs.get(d.id);
    if (!job) return;
    host.jobs.delete(d.id);
    if (host.jobs.size === 0) host.idleSince = performance.now();
    job.resolve(
      d.ok ? { ok: true, result: d.result } : {
        ok: false,
        error: d.error ?? "job failed",
        fatal: d.fatal ?? false,
      },
    );
    trimIdle(host.key);
  };

  /** A promise that resolves in `ms`, and the way to stop its timer once it is not needed. */
  const deadlineIn = (ms: number) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const at = new Promise<void>((r) => timer = setTimeout(r, ms));
    return { at, clear: () => clearTimeout(timer) };
  };

  /** Lets a Worker run its teardown until `deadline`; one not ready by then has none to run. */
  const tearDown = async (host: Host, deadline: Promise<void>): Promise<void> => {
    const ready = host.ready.then(() => true, () => false);
    if (!host.dead && (await Promise.race([ready, deadline.then(() => false)])) && !host.dead) {
      const closed = new Promise<void>((r) => (host.closed = r));
      host.worker.postMessage({ t: "close" } satisfies PoolMessage);
      await Promise.race([closed, deadline]);
    }
  };

  /** An idle Worker goes the way `close` ends them all: out of the pool at once, then torn down. */
  const retiring = new Set<Promise<void>>();
  const retire = (host: Host) => {
    if (host.dead) return;
    detach(host);
    const deadline = deadlineIn(TEARDOWN_MS);
    const done = tearDown(host, deadline.at).finally(() => {
      deadline.clear();
      kill(host, "idle", null);
      retiring.delete(done);
    });
    retiring.add(done);
  };

  /** Keeps at most `warmPerProfile` idle Workers for a profile. */
  const trimIdle = (key: string) => {
    const list = hosts.get(key);
    if (!list) return;
    const idle = list.filter((h) => h.jobs.size === 0);
    for (const h of idle.slice(options.warmPerProfile)) retire(h);
  };

  const sweep = setInterval(() => {
    const now = performance.now();
    for (const list of [...hosts.values()]) {
      for (const h of [...list]) {
        if (h.jobs.size === 0 && now - h.idleSince > idleMs) retire(h);
      }
    }
  }, Math.min(idleMs, 60_000));
  Deno.unrefTimer(sweep);

  const hasRoom = (h: Host) => !h.dead && h.jobs.size < h.capacity;

  const pick = (spec: SandboxSpec): Host => {
    const key = profileKey(spec);
    const list = hosts.get(key) ?? [];
    // The busiest host that still has room, so idle ones stay idle and can be trimmed.
    let best: Host | undefined;
    for (const h of list) {
      if (hasRoom(h) && (!best || h.jobs.size > best.jobs.size)) best = h;
    }
    return best ?? spawn(spec, key);
  };

  // Messages for a host go out in order; runs queued in the same tick are merged into one
  // message.
  const outbox = new Map<Host, Array<{ msg: PoolMessage; transfer: Transferable[] }>>();
  let outboxScheduled = false;
  const post = (host: Host, msg: PoolMessage, transfer: Transferable[] = []) => {
    let list = outbox.get(host);
    if (!list) outbox.set(host, list = []);
    const last = list.at(-1);
    if (msg.t === "run" && last?.msg.t === "run") last.msg.jobs.push(...msg.jobs);
    else list.push({ msg, transfer });
    if (!outboxScheduled) {
      outboxScheduled = true;
      queueMicrotask(() => {
        outboxScheduled = false;
        // Straight behind `init`: the Worker holds them until it is set up.
        for (const [h, messages] of outbox) {
          for (const { msg, transfer } of messages) {
            if (!h.dead) h.worker.postMessage(msg, transfer);
          }
        }
        outbox.clear();
      });
    }
  };

  return {
    run(spec, job, onEvent, onMessage) {
      const host = pick(spec);
      let resolve!: (r: RunResult) => void;
      let reject!: (e: Error) => void;
      const done = new Promise<RunResult>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      host.jobs.set(job.id, { resolve, reject, onEvent, onMessage });
      host.ready.catch((err: Error) => {
        if (host.jobs.delete(job.id)) reject(new WorkerLost(err.message, "crash"));
      });
      post(host, { t: "run", jobs: [job] });
      return {
        done,
        abort: (reason) => {
          if (!host.dead) post(host, { t: "cancel", id: job.id, reason });
        },
        send: (data, transfer) => {
          if (!host.dead) post(host, { t: "msg", id: job.id, data }, transfer);
        },
        kill: (reason) => kill(host, reason, job.id),
      };
    },

    prestart(spec) {
      const key = profileKey(spec);
      if (hosts.get(key)?.some(hasRoom)) return;
      spawn(spec, key);
      Deno.unrefTimer(setTimeout(() => trimIdle(key), PRESTART_WAIT_MS));
    },

    async prewarm(spec, count = 1) {
      const key = profileKey(spec);
      const existing = hosts.get(key)?.length ?? 0;
      const started: Host[] = [];
      for (let i = existing; i < count; i++) started.push(spawn(spec, key));
      try {
        await Promise.all(started.map((h) => h.ready));
      } catch (err) {
        log.warn("prewarming a worker failed", { error: errorMessage(err) });
      }
    },

    stats() {
      let workers = 0;
      let busy = 0;
      for (const list of hosts.values()) {
        for (const h of list) {
          workers++;
          if (h.jobs.size > 0) busy++;
        }
      }
      return { workers, busy, profiles: hosts.size };
    },

    async close(teardownMs = TEARDOWN_MS) {
      clearInterval(sweep);
      const all = [...hosts.values()].flat();
      const deadline = deadlineIn(teardownMs);
      await Promise.all([...all.map((h) => tearDown(h, deadline.at)), ...retiring]);
      deadline.clear();
      for (const h of all) kill(h, "sandbox closed", null);
    },
  };
}
