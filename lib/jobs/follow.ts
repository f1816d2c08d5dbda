/**
 * Following a job live: every event so far, then the live ones, in order and each once, ending
 * after the final status (what `/ws/jobs/:id` sends).
 */
import { errorMessage, type Logger } from "../core/log.ts";
import { compareIds, type JobEvent } from "./events.ts";
import { allEvents, type JobLookup } from "./lookup.ts";
import { FINAL_STATUSES } from "./queue.ts";

/** Where a followed job's events go. */
export interface JobFollower {
  send(event: JobEvent): void;
  /** After the final status was sent. */
  end(): void;
}

/**
 * Sends the job's events to `follower`: live ones are held back until the ones so far are sent,
 * and an event is never sent twice or out of order. Answers the function that stops following.
 */
export function followJob(
  deps: JobLookup & { log: Logger },
  id: string,
  follower: JobFollower,
): () => void {
  const buffered: JobEvent[] = [];
  let last: string | null = null;
  let live = false;
  let ended = false;
  const send = (e: JobEvent) => {
    if (ended || (last !== null && compareIds(e.id, last) <= 0)) return;
    last = e.id;
    follower.send(e);
    if (e.type === "status" && FINAL_STATUSES.has(String(e.status))) {
      ended = true;
      unsubscribe();
      follower.end();
    }
  };
  const unsubscribe = deps.hub.subscribe(id, (e: JobEvent) => {
    if (live) send(e);
    else buffered.push(e);
  });
  allEvents(deps, id).then((history) => {
    for (const e of history) send(e);
    live = true;
    for (const e of buffered.splice(0)) send(e);
  }).catch((err) => {
    deps.log.warn("job event catch-up failed", { job: id, error: errorMessage(err) });
    live = true;
  });
  return unsubscribe;
}
