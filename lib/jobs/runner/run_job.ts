/**
 * Running one claimed job: its sandboxed Worker, its sampler, its companion, its timeout and how
 * it ended; and ending it early (asked first when its type allows, killed otherwise).
 */
import type { Config } from "../../core/config.ts";
import { errorMessage, type Logger } from "../../core/log.ts";
import { killProcessTree } from "../../core/procfs.ts";
import type { EventPublisher } from "../events.ts";
import { completeResult, type JobTypes, openJobEgress } from "../job_type.ts";
import type { ClaimedJob, Outcome } from "../queue.ts";
import type { Sampler } from "../sampler.ts";
import { type RunHandle, type Sandbox, type SandboxSpec, WorkerLost } from "../sandbox.ts";
import type { UrlPolicy } from "../../security/url_policy.ts";
import { PROCESSES_EVENT } from "../worker_protocol.ts";
import type { SlotPool, Slots } from "./slots.ts";

/** How a run ended, as the metrics see it. */
export const RUN_OUTCOMES = ["succeeded", "failed", "cancelled", "requeued"] as const;
export type RunOutcome = typeof RUN_OUTCOMES[number];

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

export type KillReason = "timeout" | "cancelled" | "lost" | "shutdown";

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

export interface JobRunsOptions {
  events: EventPublisher;
  sandbox: Sandbox;
  sampler: Sampler;
  jobTypes: JobTypes;
  config: Config;
  /** Applied again to a job's URLs right before it runs (see `JobType.egress`). */
  policy: UrlPolicy;
  log: Logger;
  consumer: string;
  observer?: JobObserver | undefined;
  companions?: ReadonlyMap<string, Companion> | undefined;
  slots: Slots;
  /** Records how a job ended. */
  complete(outcome: Outcome): void;
  /** A job of `type` started. */
  started(type: string): void;
  /** A job left its slot. */
  freed(): void;
}

/** The jobs running in this process. */
export interface JobRuns {
  /** Runs claimed jobs whose slots in `pool` are reserved. */
  startAll(jobs: ClaimedJob[], pool: SlotPool): void;
  /** Ends job `id` if it runs here; false when it does not. */
  stop(id: string, reason: KillReason): boolean;
  /** Ends the jobs past their timeout. */
  sweepTimeouts(): void;
  /** Asks the jobs of types that end when asked (sessions) to end, for `reason`. */
  askToEnd(reason: KillReason): void;
  /** Kills every job still running; they go back on the queue. */
  killAll(): void;
  readonly size: number;
  ids(): string[];
  /** Jobs started and finished since the start. */
  readonly started: number;
  readonly finished: number;
}

export function createJobRuns(options: JobRunsOptions): JobRuns {
  const { events, sandbox, sampler, jobTypes, config, log, consumer, observer, slots } = options;
  const { complete } = options;
  const running = new Map<string, Active>();
  let started = 0;
  let finished = 0;

  /** Runs one claimed job; its slot is reserved until it is in `running`. */
  const run = async (job: ClaimedJob, pool: SlotPool) => {
    const type = jobTypes.get(job.type);
    if (!type) {
      slots.unreserve(pool, 1);
      complete({
        id: job.id,
        kind: "fatal",
        error: `unknown job type "${job.type}" on ${consumer}`,
      });
      return;
    }
    const parsed = type.params.safeParse(job.params);
    if (!parsed.success) {
      slots.unreserve(pool, 1);
      complete({ id: job.id, kind: "fatal", error: `invalid params: ${parsed.error.message}` });
      return;
    }
    let artifactDir: string | null = null;
    if (type.artifacts) {
      artifactDir = `${config.dataDir}/artifacts/${job.id}`;
      await Deno.mkdir(artifactDir, { recursive: true });
      artifactDir = await Deno.realPath(artifactDir);
    }
    const opened = await openJobEgress(options.policy, type, parsed.data);
    if (!opened.ok) {
      if (artifactDir) await Deno.remove(artifactDir, { recursive: true }).catch(() => {});
      slots.unreserve(pool, 1);
      complete({ id: job.id, kind: "fatal", error: opened.reason });
      return;
    }
    const { egress } = opened;
    let spec: SandboxSpec;
    try {
      spec = type.sandbox(parsed.data, { config, artifactDir, egress });
    } catch (err) {
      await egress.close();
      throw err;
    }
    const tracking = type.sample
      ? sampler.track(
        job.id,
        {
          intervalMs: (type.sampleIntervalS?.(parsed.data) ?? 1) * 1000,
          artifactDir,
          targets: type.sampleTargets?.(parsed.data) ?? null,
        },
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
    options.started(job.type);
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
      await egress.close();
      if (processes.length > 0) {
        // Still listed: the Worker ended (terminated, crashed) before it could close them.
        await killProcessTree(processes, Deno.pid).catch((err) =>
          log.warn("could not stop a job's processes", { job: job.id, error: errorMessage(err) })
        );
      }
      running.delete(job.id);
      pool.running--;
      finished++;
      options.freed();
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

  return {
    startAll(jobs, pool) {
      for (const job of jobs) {
        run(job, pool).catch((err) => {
          log.error("job start failed", { job: job.id, error: errorMessage(err) });
          if (running.delete(job.id)) pool.running--;
          else pool.reserved--;
          slots.wake();
          complete({ id: job.id, kind: "fail", error: `could not start: ${errorMessage(err)}` });
        });
      }
    },
    stop(id, reason) {
      const active = running.get(id);
      if (!active) return false;
      stopJob(active, reason);
      return true;
    },
    // One sweep for every job's timeout (a timer per job costs more than the job at high rates).
    sweepTimeouts() {
      const now = performance.now();
      for (const active of running.values()) {
        if (!active.killed && now > active.deadline) stopJob(active, "timeout");
      }
    },
    askToEnd(reason) {
      for (const active of running.values()) {
        if (active.graceMs !== undefined) stopJob(active, reason);
      }
    },
    killAll() {
      for (const active of running.values()) {
        active.killed = "shutdown";
        active.handle.kill(`job ${active.id}: shutdown`);
      }
    },
    get size() {
      return running.size;
    },
    ids: () => [...running.keys()],
    get started() {
      return started;
    },
    get finished() {
      return finished;
    },
  };
}
