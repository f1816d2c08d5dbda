/**
 * The worker pool role: takes jobs from the Redis queue and runs each in its sandboxed Worker,
 * composed of its parts in `runner/` (slots, taking jobs, claiming ahead, running one job,
 * batched completions, prestarting Workers); heartbeat, reaper, retries and shutdown are here.
 */
import type { Redis } from "../core/redis.ts";
import type { Outcome, Queue } from "./queue.ts";
import type { EventPublisher } from "./events.ts";
import type { Sandbox } from "./sandbox.ts";
import type { Sampler } from "./sampler.ts";
import type { JobTypes } from "./job_type.ts";
import type { UrlPolicy } from "../security/url_policy.ts";
import type { Config } from "../core/config.ts";
import { errorMessage, type Logger } from "../core/log.ts";
import { type BlockingRedis, blockingRedis, closeRedis } from "../core/redis.ts";
import { createSlots } from "./runner/slots.ts";
import { batchCompletions } from "./runner/completions.ts";
import { type Companion, createJobRuns, type JobObserver } from "./runner/run_job.ts";
import { createClaimAhead } from "./runner/claim_ahead.ts";
import { takeJobs } from "./runner/take_jobs.ts";
import { prestarter } from "./runner/prestart.ts";

export type {
  Companion,
  CompanionRun,
  JobLink,
  JobObserver,
  RunOutcome,
} from "./runner/run_job.ts";

export interface RunnerOptions {
  queue: Queue;
  /** Makes a new Redis connection (blocking ones for BLMOVE, a subscriber for control). */
  connect: (kind: "blocking" | "subscriber") => Redis;
  events: EventPublisher;
  sandbox: Sandbox;
  sampler: Sampler;
  jobTypes: JobTypes;
  config: Config;
  /** Applied again to a job's URLs right before it runs (see `JobType.egress`). */
  policy: UrlPolicy;
  log: Logger;
  consumerId?: string;
  /** Told when each job starts and ends (the metrics hooks); must be cheap and never throw. */
  observer?: JobObserver;
  /** Companions by job type name. */
  companions?: ReadonlyMap<string, Companion>;
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
  /**
   * Stops taking jobs, lets running ones finish within `graceMs` and puts the rest back on the
   * queue. Types with `stopGraceMs` are asked to end (AbortSignal) rather than killed.
   */
  stop(graceMs?: number): Promise<void>;
  stats(): RunnerStats;
  /** Ids of the jobs running in this process. */
  runningIds(): string[];
  /** Outcomes not recorded in Redis yet (being written, or left when it failed at shutdown). */
  unrecorded(): Outcome[];
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
  const { queue, sandbox, jobTypes, config, log } = options;
  const consumer = options.consumerId ?? defaultConsumerId();
  const concurrency = config.concurrency;
  const leaseMs = config.leaseMs;
  const blockingConns: BlockingRedis[] = [];
  const loops: Promise<void>[] = [];
  const timers: ReturnType<typeof setInterval>[] = [];
  let subscriber: Redis | undefined;

  const slots = createSlots(jobTypes, config);
  const completions = batchCompletions({ queue, events: options.events, consumer, log });
  const { complete } = completions;
  const ahead = createClaimAhead({
    slots,
    config,
    start: (jobs, pool) => runs.startAll(jobs, pool),
    complete,
  });
  const runs = createJobRuns({
    ...options,
    consumer,
    slots,
    complete,
    started: ahead.counted,
    freed: () => {
      ahead.fill();
      slots.wake();
    },
  });
  const prestart = prestarter({ jobTypes, slots, sandbox, config });
  let stopPrestart = () => {};

  const killRunning = (id: string, reason: "cancelled" | "lost") => {
    if (!runs.stop(id, reason)) ahead.drop(id);
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
        ahead.measure(Math.max(1, now - rateSince) / 1000);
        rateSince = now;
        return Promise.resolve();
      });
      every(100, () => {
        runs.sweepTimeouts();
        return Promise.resolve();
      });
      for (const type of jobTypes.values()) {
        const warm = type.warm?.(config);
        if (warm && config.warmWorkers > 0) {
          sandbox.prewarm(warm, Math.min(config.warmWorkers, 1)).catch(() => {});
        }
        const blocking = blockingRedis(() => options.connect("blocking"));
        blockingConns.push(blocking);
        loops.push(
          takeJobs(type.name, { queue, consumer, leaseMs, slots, ahead, blocking, log }),
        );
      }
      if (config.prestart) stopPrestart = queue.onEnqueued(prestart);
      log.info("worker pool started", { consumer, concurrency, types: [...jobTypes.keys()] });
    },

    stop(graceMs = config.shutdownGraceMs) {
      return stopPromise ??= (async () => {
        slots.stop();
        stopPrestart();
        for (const c of blockingConns) c.disconnect();
        await Promise.allSettled(loops);
        ahead.requeueAll();
        // Jobs that never end by themselves (sessions) are asked to end now.
        runs.askToEnd("shutdown");
        const deadline = Date.now() + graceMs;
        while (runs.size > 0 && Date.now() < deadline) await sleep(50);
        if (runs.size > 0) {
          log.info("putting unfinished jobs back on the queue", { count: runs.size });
          runs.killAll();
        }
        while (runs.size > 0) await sleep(10);
        // A result Redis refuses now is left to the platform's spool (`unrecorded`).
        completions.stopRetrying();
        await completions.settled();
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
      running: slots.shared.running,
      pools: Object.fromEntries(
        [...slots.own].map(([name, p]) => [name, { capacity: p.capacity, running: p.running }]),
      ),
      started: runs.started,
      finished: runs.finished,
      startRate: ahead.rates(),
    }),
    runningIds: () => runs.ids(),
    unrecorded: () => completions.unrecorded(),
  };
}
