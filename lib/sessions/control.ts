/**
 * Reaching a live session wherever it runs: find it, send it a control request (straight to it
 * when it runs in this process, through Redis to the process that runs it otherwise), and join
 * a viewer to it in the process that serves it.
 */
import { conflict, errorOfStatus, notFound, unavailable } from "../core/errors.ts";
import { FINAL_STATUSES, type JobRecord } from "../jobs/queue.ts";
import { findJob, type JobLookup } from "../jobs/lookup.ts";
import type { ControlOp, ControlReply, SessionStore } from "./store.ts";
import type { LiveSession, SessionHost } from "./host.ts";
import type { SessionState } from "./protocol.ts";
import type { ShareLinks } from "./capability.ts";

/** Job types that are live sessions. */
export const LIVE_TYPES = new Set(["session", "replay", "function"]);

/** Live sessions: the shared Redis side, and the ones running here (when this process runs jobs). */
export interface SessionDeps {
  store: SessionStore;
  host?: SessionHost | undefined;
  /** Mints and checks share links (capabilities for one session). */
  shares: ShareLinks;
}

/** What reaching a session needs. */
export interface SessionLookup extends JobLookup {
  sessions: SessionDeps;
}

const noSession = (id: string) => notFound(`No session with id "${id}"`);

export async function findSession(deps: SessionLookup, id: string): Promise<JobRecord> {
  const job = await findJob(deps, id);
  if (!job || !LIVE_TYPES.has(job.type)) throw noSession(id);
  return job;
}

/** Sends a control request to the session wherever it runs; a refusal throws its domain error. */
export async function controlSession(
  deps: SessionLookup,
  id: string,
  op: ControlOp,
  args: Record<string, unknown> = {},
  timeoutMs = 15_000,
): Promise<ControlReply> {
  const job = await findSession(deps, id);
  if (FINAL_STATUSES.has(job.status)) {
    throw conflict(`Session ${id} has ended (${job.status})`);
  }
  const local = deps.sessions.host?.get(id);
  if (!local) {
    const snap = await deps.sessions.store.snapshot(id);
    if (snap?.state === "stopped" || snap?.state === "failed") {
      throw conflict(`Session ${id} has ended (${snap.state})`);
    }
  }
  const reply = local
    ? await local.control(op, args)
    : await deps.sessions.store.request(id, op, args, timeoutMs);
  if (!reply) {
    throw unavailable(
      job.status === "running"
        ? `The process running session ${id} did not answer; try again`
        : `Session ${id} has not started yet (${job.status})`,
    );
  }
  if (!reply.ok) {
    throw errorOfStatus(reply.status, reply.error ?? `${op} failed`);
  }
  return reply;
}

/** Where a viewer of a session connects: the session, here, or why not. */
export type ViewerTarget =
  | { live: LiveSession }
  | { ended: SessionState }
  | { elsewhere: string };

/**
 * The session a viewer connects to in this process; or that it ended, or the viewer WebSocket
 * of the process that serves it. 404 when no live session has that id.
 */
export async function viewerTarget(sessions: SessionDeps, id: string): Promise<ViewerTarget> {
  const live = sessions.host?.get(id);
  if (live) return { live };
  const snap = await sessions.store.snapshot(id).catch(() => null);
  if (snap?.state === "stopped" || snap?.state === "failed") return { ended: snap.state };
  if (snap) return { elsewhere: snap.ws_url };
  throw notFound(`No live session with id "${id}"`);
}

/**
 * Joins a viewer to a session: it drives the session when it asks to and may (the operator
 * role), unless the session is a replay, which its recording drives: everyone watches.
 */
export function joinViewer(
  live: LiveSession,
  socket: WebSocket,
  viewer: { name: string; wantsToDrive: boolean; mayDrive: boolean },
): void {
  const interactive = viewer.wantsToDrive && viewer.mayDrive && !("replay" in live.params);
  live.join(socket, { interactive, name: viewer.name });
}
