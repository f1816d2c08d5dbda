/**
 * The worker pool role: takes jobs from the Redis queue and runs each in its sandboxed Worker.
 *
 * - Up to `concurrency` jobs at once per process; a type with its own `slots` (live sessions)
 *   has a separate count. When slots are free it claims jobs in batches with one script call;
 *   when the queue is empty it blocks on BLMOVE (one blocking connection per job type), so a new
 *   job starts within a round trip.
 * - Heartbeat renews the lease and reports jobs that were cancelled or taken over elsewhere;
 *   the reaper and the retry promoter run here too (any process may run them).
 * - Timeouts and cancellations terminate the Worker; jobs that shared that Worker are put back
 *   on the queue without losing an attempt. Results go back to Redis in batches, after the
 *   job's own events, so a viewer sees every log line before the final status.
 * - `stop(grace)` stops taking jobs, lets running ones finish within the grace period and puts
 *   the rest back on the queue. Types with `stopGraceMs` are asked to end (AbortSignal) rather
 *   than killed, on cancel, timeout and shutdown alike.
 * - A type may have a companion here, in the pool process: it hears the job's messages and can
 *   send it some (live sessions keep their viewers' WebSockets there).
 */
import type { Redis } from "../core/redis.ts";
import type { ClaimedJob, NewJob, Outcome, Queue } from "./queue.ts";
import type { EventPublisher } from "./events.ts";
import { type RunHandle, type Sandbox, WorkerLost } from "./sandbox.ts";
import type { Sampler } from "./sampler.ts";
import { completeResult, type JobTypes } from "./job_type.ts";
import type { Config } from "../core/config.ts";
import { errorMessage, type Logger } from "../core/log.ts";
import { type BlockingRedis, blockingRedis, closeRedis } from "../core/redis.ts";
import { killProcessTree } from "../core/procfs.ts";
import { PROCESSES_EVENT } from "./worker_protocol.ts";

export interface RunnerOptions {
  queue: Queue;
  /** Makes a new Redis connection (blocking ones for BLMOVE, a subscriber for control). */
  connect: (kind: "blocking" | "subscriber") => Redis;
  events: EventPublisher;
  sandbox: Sandbox;
  sampler: Sampler;
  jobTypes: JobTypes;
  config: Config;
  log: Logger;
  consumerId?: string;
  /** Told when each job starts and ends (the metrics hooks); must be cheap and never throw. */
  observer?: JobObserver;
  /** Companions by job type name. */
  companions?: ReadonlyMap<string, Companion>;
}

/** How a run ended, as the metrics see it. */
export type RunOutcome = "succeeded" | "failed" | "cancelled" | "requeued";

/** Hooks called on the hot path of every job. */
export interface JobObserver {
  started(type: string, waitMs: number): void;
  ended(type: string, outcome: RunOutcome, runMs: number): void;
}

/** What a companion can do for its job. */
export interface JobLink {
  /** Sends a message to the job in its Worker (`ctx.onMessage`); `transfer` moves buffers. */
  send(data: unknown, transfer?: Transferable[]): void;
  /** Publishes an event on the job's stream (live viewers and history see it). */
  emit(event: Record<string, unknown>): void;
}

/** The companion's side of one running job. */
export interface CompanionRun {
  /** A message the job sent with `ctx.send`. */
  onMessage(data: unknown): void;
  /** The job left this process: how it ended. */
  end(outcome: Outcome): void;
}

/**
 * The part of a job type that lives in the pool process next to the sandboxed job, for what a
 * Worker cannot do or should not own (serving live viewers, listening sockets).
 */
export interface Companion {
  start(job: { id: string; params: unknown; attempt: number }, link: JobLink): CompanionRun;
}

export interface RunnerStats {
  consumer: string;
  concurrency: number;
  /** Jobs running in the shared slots (out of `concurrency`). */
  running: number;
  /** Types with their own slots: capacity and jobs running. */
  pools: Record<string, { capacity: number; running: number }>;
  started: number;
  finished: number;
  /** Jobs started per second by type, over the last second (what claiming ahead goes by). */
  startRate: Record<string, number>;
}

export interface Runner {
  consumerId: string;
  start(): Promise<void>;
  stop(graceMs?: number): Promise<void>;
  stats(): RunnerStats;
  /** Ids of the jobs running in this process. */
  runningIds(): string[];
}

type KillReason = "timeout" | "cancelled" | "lost" | "shutdown";

interface Active {
  id: string;
  handle: RunHandle;
  pool: SlotPool;
  killed: KillReason | null;
  /** Set for types that are asked to stop before being killed. */
  graceMs: number | undefined;
  graceTimer?: ReturnType<typeof setTimeout>;
  /** performance.now() after which the job is stopped for its timeout. */
  deadline: number;
  timeoutS: number;
}

interface SlotPool {
  capacity: number;
  running: number;
  /** Slots held by claims in flight. */
  reserved: number;
}

/** Claims one job type may have out at once while its queue has jobs. */
const MAX_CLAIMS_IN_FLIGHT = 4;
/** Jobs one claim takes at most (and the most a type claims ahead of its free slots). */
const MAX_CLAIM = 512;
/** Jobs of one enqueue call looked at for a Worker to start ahead (bulk loads have Workers). */
const PRESTART_LOOK = 16;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function defaultConsumerId(): string {
  let host = "host";
  try {
    host = Deno.hostname();
  } catch { /* no sys permission */ }
  return `${host}:${Deno.pid}:${crypto.randomUUID().slice(0, 6)}`;
}

export function createRunner(options: RunnerOptions): Runner {
  const { queue, events, sandbox, sampler, jobTypes, config, log, observer } = options;
  const consumer = options.consumerId ?? defaultConsumerId();
  const concurrency = config.concurrency;
  const leaseMs = config.leaseMs;
  const running = new Map<string, Active>();
  const shared: SlotPool = { capacity: concurrency, running: 0, reserved: 0 };
  const own = new Map<string, SlotPool>();
  for (const type of jobTypes.values()) {
    if (type.slots) own.set(type.name, { capacity: type.slots(config), running: 0, reserved: 0 });
  }
  const poolOf = (type: string) => own.get(type) ?? shared;
  let stopping = false;
  let started = 0;
  let finished = 0;
  const waiters: Array<() => void> = [];
  const blockingConns: BlockingRedis[] = [];
  const loops: Promise<void>[] = [];
  const timers: ReturnType<typeof setInterval>[] = [];
  let subscriber: Redis | undefined;

  const free = (pool: SlotPool) => pool.capacity - pool.running - pool.reserved;
  const waitFree = (pool: SlotPool) =>
    free(pool) > 0 || stopping ? Promise.resolve() : new Promise<void>((r) => waiters.push(r));
  const wake = () => {
    for (const w of waiters.splice(0)) w();
  };

  // ---- completions, batched ----
  let pending: Outcome[] = [];
  let flushing: Promise<void> | null = null;
  const complete = (outcome: Outcome) => {
    pending.push(outcome);
    flushing ??= (async () => {
      while (pending.length) {
        const batch = pending;
        pending = [];
        try {
          await events.flush();
          await queue.complete(consumer, batch);
        } catch (err) {
          log.warn("could not record job results; retrying", {
            count: batch.length,
            error: errorMessage(err),
          });
          pending.unshift(...batch);
          await sleep(500);
        }
      }
      flushing = null;
    })();
  };

  // ---- running one job ----
  /** Runs one claimed job; its slot is reserved until it is in `running`. */
  const run = async (job: ClaimedJob, pool: SlotPool) => {
    const type = jobTypes.get(job.type);
    if (!type) {
      unreserve(pool, 1);
      complete({
        id: job.id,
        kind: "fatal",
        error: `unknown job type "${job.type}" on ${consumer}`,
      });
      return;
    }
    const parsed = type.params.safeParse(job.params);
    if (!parsed.success) {
      unreserve(pool, 1);
      complete({ id: job.id, kind: "fatal", error: `invalid params: ${parsed.error.message}` });
      return;
    }
    let artifactDir: string | null = null;
    if (type.artifacts) {
      artifactDir = `${config.dataDir}/artifacts/${job.id}`;
      await Deno.mkdir(artifactDir, { recursive: true });
      artifactDir = await Deno.realPath(artifactDir);
    }
    const spec = type.sandbox(parsed.data, { config, artifactDir });
    const tracking = type.sample
      ? sampler.track(
        job.id,
        { intervalMs: (type.sampleIntervalS?.(parsed.data) ?? 1) * 1000, artifactDir },
        (s) => events.publish(job.id, { type: "sample", ...s }),
      )
      : null;
    // Processes the job started (its browsers): measured while it runs, killed if its Worker goes.
    let processes: number[] = [];
    // The Worker cannot answer before this tick ends, so the companion is there for its messages.
    const link: { companion?: CompanionRun | undefined } = {};
    const handle = sandbox.run(
      spec,
      { id: job.id, params: parsed.data, attempt: job.attempt, artifact_dir: artifactDir },
      (event) => {
        if (event.type !== PROCESSES_EVENT) return events.publish(job.id, event);
        processes = Array.isArray(event.pids) ? event.pids.filter(Number.isInteger) : [];
        tracking?.setProcesses(processes);
      },
      (data) => link.companion?.onMessage(data),
    );
    let companionError: string | undefined;
    try {
      link.companion = options.companions?.get(type.name)?.start(
        { id: job.id, params: parsed.data, attempt: job.attempt },
        { send: handle.send, emit: (event) => events.publish(job.id, event) },
      );
    } catch (err) {
      // The job cannot work without its companion: it is asked to end and fails.
      companionError = `could not start: ${errorMessage(err)}`;
      handle.abort("cancelled");
    }
    const companion = link.companion;
    const active: Active = {
      id: job.id,
      handle,
      pool,
      killed: null,
      graceMs: type.stopGraceMs,
      deadline: performance.now() + job.timeoutS * 1000,
      timeoutS: job.timeoutS,
    };
    running.set(job.id, active);
    pool.reserved--;
    pool.running++;
    started++;
    startsNow.set(job.type, (startsNow.get(job.type) ?? 0) + 1);
    const startedAt = performance.now();
    observer?.started(job.type, job.waitMs);

    let outcome: Outcome;
    try {
      const r = await handle.done;
      if (companionError) {
        outcome = { id: job.id, kind: "fatal", error: companionError };
      } else if (active.killed === "timeout") {
        outcome = { id: job.id, kind: "fatal", error: "timeout" };
      } else if (r.ok) {
        const result = completeResult(
          type,
          parsed.data,
          r.result,
          tracking,
          (err) =>
            log.warn("completing a job's result failed", { job: job.id, error: errorMessage(err) }),
        );
        outcome = { id: job.id, kind: "ok", result };
      } else {
        outcome = { id: job.id, kind: r.fatal ? "fatal" : "fail", error: r.error };
      }
    } catch (err) {
      if (err instanceof WorkerLost && err.why === "self") {
        outcome = active.killed === "shutdown" && active.graceMs === undefined
          ? { id: job.id, kind: "requeue" }
          : { id: job.id, kind: "fatal", error: active.killed ?? err.message };
      } else if (err instanceof WorkerLost && err.why === "other") {
        // Its Worker was terminated for another job: not this job's fault, so no attempt lost.
        outcome = { id: job.id, kind: "requeue" };
      } else {
        outcome = { id: job.id, kind: "fail", error: errorMessage(err) };
      }
    } finally {
      clearTimeout(active.graceTimer);
      tracking?.stop();
      if (processes.length > 0) {
        // Still listed: the Worker ended (terminated, crashed) before it could close them.
        await killProcessTree(processes, Deno.pid).catch((err) =>
          log.warn("could not stop a job's processes", { job: job.id, error: errorMessage(err) })
        );
      }
      running.delete(job.id);
      pool.running--;
      finished++;
      fill();
      wake();
    }
    observer?.ended(
      job.type,
      outcome.kind === "ok"
        ? "succeeded"
        : outcome.kind === "requeue"
        ? "requeued"
        : active.killed === "cancelled"
        ? "cancelled"
        : "failed",
      performance.now() - startedAt,
    );
    try {
      companion?.end(outcome);
    } catch (err) {
      log.warn("job companion failed at the end of a job", {
        job: job.id,
        error: errorMessage(err),
      });
    }
    complete(outcome);
  };

  const startAll = (jobs: ClaimedJob[], pool: SlotPool) => {
    for (const job of jobs) {
      run(job, pool).catch((err) => {
        log.error("job start failed", { job: job.id, error: errorMessage(err) });
        if (running.delete(job.id)) pool.running--;
        else pool.reserved--;
        wake();
        complete({ id: job.id, kind: "fail", error: `could not start: ${errorMessage(err)}` });
      });
    }
  };

  // ---- taking jobs ----
  // Slots are reserved while a claim is in flight so concurrent type loops never over-claim.
  const unreserve = (pool: SlotPool, n: number) => {
    pool.reserved = Math.max(0, pool.reserved - n);
    wake();
  };
  // ---- claiming ahead ----
  // A type that starts many short jobs claims a little ahead of its free slots: what it starts
  // in `claimAheadMs` at its current rate, at most one full claim more. A slot that frees up then
  // starts its next job at once instead of a Redis round trip later. Types with their own slots
  // (sessions) and types that start a few jobs a second never claim ahead, so a long job never
  // waits here while another worker process is free. Jobs claimed ahead are in this consumer's
  // processing list under its lease like running ones; at shutdown they go back on the queue.
  const ahead = new Map<string, ClaimedJob[]>();
  const startsNow = new Map<string, number>();
  let startRate = new Map<string, number>();
  const aheadWindow = (type: string, pool: SlotPool) =>
    pool === shared
      ? Math.min(MAX_CLAIM, Math.floor((startRate.get(type) ?? 0) * config.claimAheadMs / 1000))
      : 0;
  /** Starts jobs claimed ahead while their pool has free slots. */
  const fill = () => {
    if (stopping) return;
    for (const [type, list] of ahead) {
      const pool = poolOf(type);
      const n = Math.min(list.length, free(pool));
      if (n <= 0) continue;
      pool.reserved += n;
      startAll(list.splice(0, n), pool);
    }
  };
  /** Lets go of a job claimed ahead that was cancelled or lost its claim meanwhile. */
  const dropAhead = (id: string) => {
    for (const list of ahead.values()) {
      const i = list.findIndex((j) => j.id === id);
      if (i < 0) continue;
      list.splice(i, 1);
      // Its state is no longer "running here", so this only takes it off the processing list.
      complete({ id, kind: "requeue" });
      return;
    }
  };

  /** Resolves at the next change of slots (a job ended, a claim came back). */
  const changed = () => new Promise<void>((r) => waiters.push(r));
  const loop = async (type: string) => {
    const pool = poolOf(type);
    const blocking = blockingRedis(() => options.connect("blocking"));
    blockingConns.push(blocking);
    const waiting: ClaimedJob[] = [];
    ahead.set(type, waiting);
    // While the queue has jobs, claims are pipelined: the next one goes out before the reply to
    // the previous one, so a busy Redis costs latency here rather than throughput.
    let more = false;
    let inFlight = 0;
    let asked = 0;
    const chunk = Math.max(1, Math.floor(pool.capacity / 4));
    const claimAsync = (n: number) => {
      const held = Math.min(n, free(pool));
      pool.reserved += held;
      inFlight++;
      asked += n;
      queue.claim(type, consumer, n, leaseMs).then(
        (jobs) => {
          more = jobs.length === n;
          waiting.push(...jobs);
        },
        (err) => {
          more = false;
          if (!stopping) log.warn("taking jobs failed", { type, error: errorMessage(err) });
        },
      ).finally(() => {
        inFlight--;
        asked -= n;
        unreserve(pool, held);
        fill();
      });
    };
    while (!stopping) {
      if (more || inFlight > 0) {
        const want = Math.min(
          free(pool) + aheadWindow(type, pool) - waiting.length - asked,
          MAX_CLAIM,
        );
        if (
          more && inFlight < MAX_CLAIMS_IN_FLIGHT && want > 0 && (inFlight === 0 || want >= chunk)
        ) {
          claimAsync(want);
        } else await changed();
        continue;
      }
      await waitFree(pool);
      if (stopping) break;
      fill();
      const n = Math.min(free(pool) + aheadWindow(type, pool) - waiting.length, MAX_CLAIM);
      if (n <= 0) continue;
      // Slots are reserved while the claim is in flight; jobs beyond them wait in `waiting`.
      const held = Math.min(n, free(pool));
      pool.reserved += held;
      let jobs: ClaimedJob[];
      try {
        jobs = await queue.claim(type, consumer, n, leaseMs);
      } catch (err) {
        if (stopping) break;
        log.warn("taking jobs failed; retrying", { type, error: errorMessage(err) });
        await sleep(500);
        continue;
      } finally {
        unreserve(pool, held);
      }
      more = jobs.length === n;
      if (jobs.length === 0) {
        try {
          const id = await blocking.call(2_000, (r) => queue.take(r, type, consumer, 2));
          if (!id) continue;
          const m = free(pool);
          if (stopping || m <= 0) {
            await queue.giveBack(consumer, type, id);
            continue;
          }
          pool.reserved += m;
          try {
            jobs = await queue.claim(type, consumer, m, leaseMs, [id]);
          } finally {
            unreserve(pool, m);
          }
        } catch (err) {
          if (stopping) break;
          log.warn("waiting for jobs failed; retrying", { type, error: errorMessage(err) });
          await sleep(500);
          continue;
        }
      }
      waiting.push(...jobs);
      fill();
    }
    while (inFlight > 0) await changed();
  };

  // ---- starting Workers for jobs enqueued here ----
  // A job enqueued by this process (the API in the `all` role) would start its Worker only once
  // the queue has handed it over: the enqueue's and the claim's round trips, then the Worker's
  // start. Its Worker starts now instead, while those round trips are under way; the claim then
  // finds it. Types with artifact directories are left out (their permissions name the job's own
  // directory, made at claim time).
  const prestart = (jobs: NewJob[]) => {
    if (stopping) return;
    for (const job of jobs.slice(0, PRESTART_LOOK)) {
      const type = jobTypes.get(job.type);
      const pool = poolOf(job.type);
      // Slots held by claims in flight count as free: those claims may well come back empty.
      if (!type || type.artifacts || pool.running >= pool.capacity) continue;
      const parsed = type.params.safeParse(job.params);
      if (parsed.success) {
        sandbox.prestart(type.sandbox(parsed.data, { config, artifactDir: null }));
      }
    }
  };
  let stopPrestart = () => {};

  const killMessage = (active: Active, reason: KillReason) =>
    reason === "timeout" ? `timed out after ${active.timeoutS} s` : reason;

  /** Ends a running job: asks it first when its type allows, kills its Worker otherwise. */
  const stopJob = (active: Active, reason: KillReason) => {
    if (active.killed) return;
    active.killed = reason;
    if (active.graceMs === undefined) {
      active.handle.kill(`job ${active.id}: ${killMessage(active, reason)}`);
      return;
    }
    active.handle.abort(reason);
    active.graceTimer = setTimeout(
      () => active.handle.kill(`job ${active.id}: ${killMessage(active, reason)}`),
      active.graceMs,
    );
  };

  const killRunning = (id: string, reason: KillReason) => {
    const active = running.get(id);
    if (active) stopJob(active, reason);
    else dropAhead(id);
  };

  const every = (ms: number, work: () => Promise<unknown>) => {
    let busy = false;
    const t = setInterval(async () => {
      if (busy) return;
      busy = true;
      try {
        await work();
      } catch (err) {
        log.debug("periodic queue task failed", { error: errorMessage(err) });
      } finally {
        busy = false;
      }
    }, ms);
    timers.push(t);
  };

  let stopPromise: Promise<void> | undefined;

  return {
    consumerId: consumer,

    async start() {
      await queue.heartbeat(consumer, leaseMs);
      subscriber = options.connect("subscriber");
      subscriber.on("message", (_channel: string, message: string) => {
        const [verb, id] = message.split(" ");
        if (verb === "cancel" && id) killRunning(id, "cancelled");
      });
      await subscriber.subscribe(queue.keys.control);
      every(Math.max(200, Math.floor(leaseMs / 3)), async () => {
        const gone = await queue.heartbeat(consumer, leaseMs);
        for (const id of gone) killRunning(id, "lost");
      });
      every(
        Math.max(500, Math.floor(leaseMs / 2)) + Math.floor(Math.random() * 250),
        () => queue.reap(),
      );
      every(250, () => queue.promote());
      let rateSince = performance.now();
      every(1000, () => {
        // Per second of the time that passed: a timer fires late on a busy machine.
        const now = performance.now();
        const seconds = Math.max(1, now - rateSince) / 1000;
        rateSince = now;
        startRate = new Map([...startsNow].map(([type, n]) => [type, n / seconds]));
        startsNow.clear();
        return Promise.resolve();
      });
      // One sweep for every job's timeout (a timer per job costs more than the job at high rates).
      every(100, () => {
        const now = performance.now();
        for (const active of running.values()) {
          if (!active.killed && now > active.deadline) stopJob(active, "timeout");
        }
        return Promise.resolve();
      });
      for (const type of jobTypes.values()) {
        const warm = type.warm?.(config);
        if (warm && config.warmWorkers > 0) {
          sandbox.prewarm(warm, Math.min(config.warmWorkers, 1)).catch(() => {});
        }
        loops.push(loop(type.name));
      }
      if (config.prestart) stopPrestart = queue.onEnqueued(prestart);
      log.info("worker pool started", { consumer, concurrency, types: [...jobTypes.keys()] });
    },

    stop(graceMs = config.shutdownGraceMs) {
      return stopPromise ??= (async () => {
        stopping = true;
        stopPrestart();
        wake();
        for (const c of blockingConns) c.disconnect();
        await Promise.allSettled(loops);
        for (const list of ahead.values()) {
          for (const job of list.splice(0)) complete({ id: job.id, kind: "requeue" });
        }
        // Jobs that never end by themselves (sessions) are asked to end now.
        for (const active of running.values()) {
          if (active.graceMs !== undefined) stopJob(active, "shutdown");
        }
        const deadline = Date.now() + graceMs;
        while (running.size > 0 && Date.now() < deadline) await sleep(50);
        if (running.size > 0) {
          log.info("putting unfinished jobs back on the queue", { count: running.size });
          for (const active of running.values()) {
            active.killed = "shutdown";
            active.handle.kill(`job ${active.id}: shutdown`);
          }
        }
        while (running.size > 0) await sleep(10);
        while (flushing) await flushing;
        for (const t of timers) clearInterval(t);
        if (subscriber) await closeRedis(subscriber);
        try {
          await queue.retire(consumer);
        } catch (err) {
          log.warn("could not release the lease; the reaper will", { error: errorMessage(err) });
        }
        log.info("worker pool stopped", { consumer });
      })();
    },

    stats: () => ({
      consumer,
      concurrency,
      running: shared.running,
      pools: Object.fromEntries(
        [...own].map(([name, p]) => [name, { capacity: p.capacity, running: p.running }]),
      ),
      started,
      finished,
      startRate: Object.fromEntries(startRate),
    }),
    runningIds: () => [...running.keys()],
  };
}
