/**
 * The worker pool role: takes jobs from the Redis queue and runs each in its sandboxed Worker.
 *
 * - Up to `concurrency` jobs at once per process. When slots are free it claims jobs in batches
 *   with one script call; when the queue is empty it blocks on BLMOVE (one blocking connection
 *   per job type), so a new job starts within a round trip.
 * - Heartbeat renews the lease and reports jobs that were cancelled or taken over elsewhere;
 *   the reaper and the retry promoter run here too (any process may run them).
 * - Timeouts and cancellations terminate the Worker; jobs that shared that Worker are put back
 *   on the queue without losing an attempt. Results go back to Redis in batches, after the
 *   job's own events, so a viewer sees every log line before the final status.
 * - `stop(grace)` stops taking jobs, lets running ones finish within the grace period and puts
 *   the rest back on the queue.
 */
import type { Redis } from "./redis.ts";
import type { ClaimedJob, Outcome, Queue } from "./queue.ts";
import type { EventPublisher } from "./events.ts";
import { type RunHandle, type Sandbox, WorkerLost } from "./sandbox.ts";
import type { Sampler } from "./sampler.ts";
import { completeResult, type JobTypes } from "./job_types.ts";
import type { Config } from "./config.ts";
import { errorMessage, type Logger } from "./log.ts";
import { closeRedis } from "./redis.ts";
import { killProcessTree } from "./procfs.ts";
import { PROCESSES_EVENT } from "../workers/runtime.ts";

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
}

export interface RunnerStats {
  consumer: string;
  concurrency: number;
  running: number;
  started: number;
  finished: number;
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
  handle: RunHandle;
  killed: KillReason | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function defaultConsumerId(): string {
  let host = "host";
  try {
    host = Deno.hostname();
  } catch { /* no sys permission */ }
  return `${host}:${Deno.pid}:${crypto.randomUUID().slice(0, 6)}`;
}

export function createRunner(options: RunnerOptions): Runner {
  const { queue, events, sandbox, sampler, jobTypes, config, log } = options;
  const consumer = options.consumerId ?? defaultConsumerId();
  const concurrency = config.concurrency;
  const leaseMs = config.leaseMs;
  const running = new Map<string, Active>();
  let reserved = 0;
  let stopping = false;
  let started = 0;
  let finished = 0;
  const waiters: Array<() => void> = [];
  const blockingConns: Redis[] = [];
  const loops: Promise<void>[] = [];
  const timers: ReturnType<typeof setInterval>[] = [];
  let subscriber: Redis | undefined;

  const free = () => concurrency - running.size - reserved;
  const waitFree = () =>
    free() > 0 || stopping ? Promise.resolve() : new Promise<void>((r) => waiters.push(r));
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
  const run = async (job: ClaimedJob) => {
    const type = jobTypes.get(job.type);
    if (!type) {
      unreserve(1);
      complete({
        id: job.id,
        kind: "fatal",
        error: `unknown job type "${job.type}" on ${consumer}`,
      });
      return;
    }
    const parsed = type.params.safeParse(job.params);
    if (!parsed.success) {
      unreserve(1);
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
    const handle = sandbox.run(
      spec,
      { id: job.id, params: parsed.data, attempt: job.attempt, artifact_dir: artifactDir },
      (event) => {
        if (event.type !== PROCESSES_EVENT) return events.publish(job.id, event);
        processes = Array.isArray(event.pids) ? event.pids.filter(Number.isInteger) : [];
        tracking?.setProcesses(processes);
      },
    );
    const active: Active = { handle, killed: null };
    running.set(job.id, active);
    reserved--;
    started++;
    const timer = setTimeout(() => {
      active.killed = "timeout";
      handle.kill(`job ${job.id} timed out after ${job.timeoutS} s`);
    }, job.timeoutS * 1000);

    let outcome: Outcome;
    try {
      const r = await handle.done;
      if (r.ok) {
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
        outcome = active.killed === "shutdown"
          ? { id: job.id, kind: "requeue" }
          : { id: job.id, kind: "fatal", error: active.killed ?? err.message };
      } else if (err instanceof WorkerLost && err.why === "other") {
        // Its Worker was terminated for another job: not this job's fault, so no attempt lost.
        outcome = { id: job.id, kind: "requeue" };
      } else {
        outcome = { id: job.id, kind: "fail", error: errorMessage(err) };
      }
    } finally {
      clearTimeout(timer);
      tracking?.stop();
      if (processes.length > 0) {
        // Still listed: the Worker ended (terminated, crashed) before it could close them.
        await killProcessTree(processes, Deno.pid).catch((err) =>
          log.warn("could not stop a job's processes", { job: job.id, error: errorMessage(err) })
        );
      }
      running.delete(job.id);
      finished++;
      wake();
    }
    complete(outcome);
  };

  const startAll = (jobs: ClaimedJob[]) => {
    for (const job of jobs) {
      run(job).catch((err) => {
        log.error("job start failed", { job: job.id, error: errorMessage(err) });
        if (!running.delete(job.id)) reserved--;
        wake();
        complete({ id: job.id, kind: "fail", error: `could not start: ${errorMessage(err)}` });
      });
    }
  };

  // ---- taking jobs ----
  // Slots are reserved while a claim is in flight so concurrent type loops never over-claim.
  const unreserve = (n: number) => {
    reserved = Math.max(0, reserved - n);
    wake();
  };
  const loop = async (type: string) => {
    const blocking = options.connect("blocking");
    blockingConns.push(blocking);
    while (!stopping) {
      await waitFree();
      if (stopping) break;
      const n = Math.min(free(), 512);
      if (n <= 0) continue;
      reserved += n;
      let jobs: ClaimedJob[];
      try {
        jobs = await queue.claim(type, consumer, n, leaseMs);
      } catch (err) {
        unreserve(n);
        if (stopping) break;
        log.warn("taking jobs failed; retrying", { type, error: errorMessage(err) });
        await sleep(500);
        continue;
      }
      // Claimed jobs keep their slot reserved until they are in `running`.
      unreserve(n - jobs.length);
      if (jobs.length === 0) {
        try {
          const id = await queue.take(blocking, type, consumer, 2);
          if (!id) continue;
          const m = free();
          if (stopping || m <= 0) {
            await queue.giveBack(consumer, type, id);
            continue;
          }
          reserved += m;
          try {
            jobs = await queue.claim(type, consumer, m, leaseMs, [id]);
          } catch (err) {
            unreserve(m);
            throw err;
          }
          unreserve(m - jobs.length);
        } catch (err) {
          if (stopping) break;
          log.warn("waiting for jobs failed; retrying", { type, error: errorMessage(err) });
          await sleep(500);
          continue;
        }
      }
      startAll(jobs);
    }
  };

  const killRunning = (id: string, reason: KillReason) => {
    const active = running.get(id);
    if (!active || active.killed) return;
    active.killed = reason;
    active.handle.kill(`job ${id}: ${reason}`);
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
      for (const type of jobTypes.values()) {
        const warm = type.warm?.(config);
        if (warm && config.warmWorkers > 0) {
          sandbox.prewarm(warm, Math.min(config.warmWorkers, 1)).catch(() => {});
        }
        loops.push(loop(type.name));
      }
      log.info("worker pool started", { consumer, concurrency, types: [...jobTypes.keys()] });
    },

    stop(graceMs = config.shutdownGraceMs) {
      return stopPromise ??= (async () => {
        stopping = true;
        wake();
        for (const c of blockingConns) c.disconnect();
        await Promise.allSettled(loops);
        const deadline = Date.now() + graceMs;
        while (running.size > 0 && Date.now() < deadline) await sleep(50);
        if (running.size > 0) {
          log.info("putting unfinished jobs back on the queue", { count: running.size });
          for (const id of [...running.keys()]) killRunning(id, "shutdown");
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

    stats: () => ({ consumer, concurrency, running: running.size, started, finished }),
    runningIds: () => [...running.keys()],
  };
}
