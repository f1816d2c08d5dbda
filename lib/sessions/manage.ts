/**
 * What the sessions API does with a session: open one, read it, list the active ones, navigate,
 * pause, resume, take a screenshot, fetch the screenshot taken at a page error, end it. Each
 * reaches the session wherever it runs (`control.ts`) and answers its view (`view.ts`).
 */
import { invalid, notFound } from "../core/errors.ts";
import { allEvents } from "../jobs/lookup.ts";
import { FINAL_STATUSES } from "../jobs/queue.ts";
import type { UrlPolicy } from "../security/url_policy.ts";
import { controlSession, findSession, LIVE_TYPES, type SessionLookup } from "./control.ts";
import type { SessionParams } from "./params.ts";
import type { SessionSnapshot } from "./protocol.ts";
import { type SessionStart, type SessionStarting, startSession } from "./start.ts";
import { liveView, type SessionView, sessionView, type SessionViewing } from "./view.ts";

/** What the sessions API needs. */
export type SessionManaging = SessionStarting & SessionLookup & SessionViewing & {
  policy: UrlPolicy;
};

/** How long a session may take to load a page it is sent to (DOMContentLoaded). */
const NAVIGATE_TIMEOUT_MS = 45_000;
const SCREENSHOT_TIMEOUT_MS = 35_000;
/** How long ending a session waits for its job's final status. */
const END_WAIT_MS = 15_000;

/**
 * Starts a session (see `startSession`) for `owner` (a token, which may be limited in sessions)
 * and answers its view once its browser is up.
 */
export async function openSession(
  deps: SessionManaging,
  params: SessionParams,
  owner?: SessionStart["owner"],
): Promise<SessionView> {
  return await liveView(deps, await startSession(deps, { type: "session", params, owner }));
}

/** One session, live or ended; 404 when `id` is not a session. */
export async function getSession(deps: SessionManaging, id: string): Promise<SessionView> {
  return await liveView(deps, await findSession(deps, id));
}

/** The sessions holding a slot that have not ended, oldest first. */
export async function listSessions(deps: SessionManaging): Promise<SessionView[]> {
  const ids = await deps.sessions.store.active();
  const jobs = await Promise.all(ids.map((id) => deps.queue.get(id)));
  const snaps = await deps.sessions.store.snapshots(ids);
  return jobs.flatMap((job, i) =>
    job && LIVE_TYPES.has(job.type) && !FINAL_STATUSES.has(job.status)
      ? [sessionView(deps, job, deps.sessions.host?.get(job.id)?.snapshot() ?? snaps[i]!)]
      : []
  ).filter((s) => s.active);
}

/** Loads `url` in the session's active tab (the URL policy applies): where it landed, status. */
export async function navigateSession(
  deps: SessionManaging,
  id: string,
  url: string,
): Promise<{ url: string; status: number | null }> {
  const verdict = await deps.policy.check(url);
  if (!verdict.ok) throw invalid(`url: ${url} is refused: ${verdict.reason}`);
  const reply = await controlSession(deps, id, "navigate", { url }, NAVIGATE_TIMEOUT_MS);
  const data = reply.data as { url: string; status: number | null };
  return { url: data.url, status: data.status };
}

/** Pauses the stream (capture stops, input is refused) or resumes it; answers the view. */
export async function pauseSession(
  deps: SessionManaging,
  id: string,
  op: "pause" | "resume",
): Promise<SessionView> {
  const reply = await controlSession(deps, id, op);
  return sessionView(deps, await findSession(deps, id), reply.data as SessionSnapshot);
}

/** A PNG of the session's active tab now. */
export async function sessionScreenshot(deps: SessionManaging, id: string): Promise<Uint8Array> {
  const reply = await controlSession(deps, id, "screenshot", {}, SCREENSHOT_TIMEOUT_MS);
  return reply.bytes!;
}

/** The JPEG taken at the session's `n`th page error, from its stored events. */
export async function errorScreenshot(
  deps: SessionManaging,
  id: string,
  n: number,
): Promise<Uint8Array> {
  await findSession(deps, id);
  const event = (await allEvents(deps, id)).find((e) =>
    e.type === "page_error" && e.screenshot === n && typeof e.image_base64 === "string"
  );
  if (!event) throw notFound(`Session ${id} has no screenshot ${n}`);
  return Uint8Array.fromBase64(event.image_base64 as string);
}

/**
 * Ends a session wherever it runs (asked to stop; cancelled when no process answers) and answers
 * its view with the final stats once its job has its final status. Ending an ended session
 * answers the same.
 */
export async function endSession(deps: SessionManaging, id: string): Promise<SessionView> {
  let job = await findSession(deps, id);
  if (!FINAL_STATUSES.has(job.status)) {
    const local = deps.sessions.host?.get(id);
    const snap = local ? null : await deps.sessions.store.snapshot(id);
    const ended = snap?.state === "stopped" || snap?.state === "failed";
    // A session that has just ended gets its job's final status in a moment.
    if (local) await local.control("stop", {});
    else if (!ended) {
      const stopped = job.status === "running" &&
        await deps.sessions.store.request(id, "stop", {}, snap ? 20_000 : 5_000);
      if (!stopped) await deps.queue.cancel(id);
    }
  }
  const deadline = Date.now() + END_WAIT_MS;
  while (!FINAL_STATUSES.has(job.status) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    job = await findSession(deps, id);
  }
  return sessionView(deps, job, null);
}
