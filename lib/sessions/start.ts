/**
 * Starting a live session (a `session` job, or a `replay`, which is a session too): a session
 * slot taken, the job queued, then the wait for its browser. A start that fails or times out is
 * cancelled and gives its slot back.
 */
import { busy, DomainError, unavailable } from "../core/errors.ts";
import type { EventHub } from "../jobs/events.ts";
import { FINAL_STATUSES, type JobRecord } from "../jobs/queue.ts";
import { type Hold, type JobSubmission, submitJob } from "../jobs/submit.ts";
import type { SessionDeps } from "./control.ts";

/** How long starting a session waits for its browser to be up. */
const START_TIMEOUT_MS = 30_000;

/** Seconds a caller is told to wait when every slot is taken or no worker started the session. */
const RETRY_AFTER_S = 10;

/** What starting a session needs. */
export interface SessionStarting extends JobSubmission {
  hub: Pick<EventHub, "subscribe">;
  sessions: SessionDeps;
  config: { maxSessions: number };
}

export interface SessionStart {
  type: "session" | "replay";
  /** The job's params (checked against the type's schema). */
  params: unknown;
  /** Taken with the slot (a replay's steps) and given back with it. */
  hold?: Hold;
  /** How long to wait for the browser (default `START_TIMEOUT_MS`). */
  timeoutMs?: number;
  /** Who asks: a token with `maxSessions` may hold at most that many sessions at once. */
  owner?: { name: string; maxSessions?: number | undefined };
}

/**
 * Starts a live session and answers its job once the browser is up. Throws `busy` (429, Retry-After)
 * when every STREAMPLAY_MAX_SESSIONS slot is taken or the owner holds its max_sessions, `unavailable` (503) when no worker started it
 * in time, an upstream error (502) when it failed to start; the last two cancel the job and free
 * its slot.
 */
export async function startSession(
  deps: SessionStarting,
  start: SessionStart,
): Promise<JobRecord> {
  const { store } = deps.sessions;
  const slot: Hold = {
    async take(job) {
      const max = deps.config.maxSessions;
      const owner = start.owner?.maxSessions === undefined
        ? undefined
        : { name: start.owner.name, max: start.owner.maxSessions };
      const taken = await store.reserve(job.id, max, owner);
      if (taken === "full") {
        throw busy(
          `All ${max} session slots are in use (STREAMPLAY_MAX_SESSIONS); try later`,
          RETRY_AFTER_S,
        );
      }
      if (taken === "owner_full") {
        throw busy(
          `Token "${owner!.name}" already holds its ${owner!.max} sessions (max_sessions); ` +
            `end one or try later`,
          RETRY_AFTER_S,
        );
      }
      try {
        await start.hold?.take(job);
      } catch (err) {
        await store.release(job.id).catch(() => {});
        throw err;
      }
    },
    async release(id) {
      await start.hold?.release(id).catch(() => {});
      await store.release(id);
    },
  };
  const queued = await submitJob(deps, {
    type: start.type,
    params: start.params,
    max_attempts: 1,
  }, { hold: slot });
  const timeoutMs = start.timeoutMs ?? START_TIMEOUT_MS;
  const job = await waitStarted(deps, queued.id, timeoutMs);
  if (job && job.status !== "failed" && job.status !== "cancelled") return job;
  await deps.queue.cancel(queued.id).catch(() => {});
  await slot.release(queued.id).catch(() => {});
  if (!job) {
    throw unavailable(
      `No worker started ${start.type} ${queued.id} within ${timeoutMs / 1000} s`,
      RETRY_AFTER_S,
    );
  }
  throw new DomainError(
    "upstream",
    `The ${start.type} failed to start: ${job.error ?? job.status}`,
  );
}

/**
 * Waits until the session's browser is up, it ended, or `timeoutMs` passed (null: its job is
 * still waiting or gone).
 */
async function waitStarted(
  deps: SessionStarting,
  id: string,
  timeoutMs: number,
): Promise<JobRecord | null> {
  const deadline = Date.now() + timeoutMs;
  let wake = () => {};
  const unsubscribe = deps.hub.subscribe(id, (e) => {
    if (e.type === "session" || e.type === "status") wake();
  });
  try {
    while (Date.now() < deadline) {
      const job = await deps.queue.get(id);
      if (!job || FINAL_STATUSES.has(job.status)) return job;
      const snap = deps.sessions.host?.get(id)?.snapshot() ??
        await deps.sessions.store.snapshot(id);
      if (snap && snap.state !== "starting") return job;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(250, Math.max(0, deadline - Date.now())));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return null;
  } finally {
    unsubscribe();
  }
}
