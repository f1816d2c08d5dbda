/**
 * The live dashboard feed behind `GET /ws/dashboard`: its clients, one serialisation per message
 * for all of them, and the `content_change` events (a job, session or stream started, ended or
 * failed) taken from the history writer's live events.
 */
import type { EventHub, JobEvent } from "../jobs/events.ts";

export interface ContentChange {
  /** `job`, `session` (a job of type session), or what a job's `content_change` event says. */
  kind: string;
  /** `started`, `ended`, `failed` (or, from a job's own event, what it says). */
  action: string;
  id: string;
  job_id: string;
  job_type?: string;
  status?: string;
  error?: string | null;
  ts: string;
  [field: string]: unknown;
}

export interface FeedClient {
  send(text: string): void;
  /** Bytes queued on the socket and not yet sent. */
  buffered(): number;
}

export interface DashboardFeed {
  /** Adds a client; returns the function that removes it. */
  join(client: FeedClient): () => void;
  clients(): number;
  /** Sends one message to every client that keeps up. */
  broadcast(message: Record<string, unknown>): void;
  /**
   * The latest changes, oldest first (for a client that just connected): those the feed sent,
   * or, when it has sent none yet (nobody was watching), the last ones stored in history.
   */
  recentChanges(): Promise<ContentChange[]>;
  /** Whether changes were skipped since the last call (the feed showed a sample). */
  takeSampled(): boolean;
  close(): void;
}

const STATUS_ACTIONS: Record<string, string> = {
  running: "started",
  succeeded: "ended",
  cancelled: "ended",
  failed: "failed",
  retrying: "failed",
};

/** The change an event stands for, or null if it is not one. */
function toChange(event: JobEvent): ContentChange | null {
  if (event.type === "status") {
    const status = String(event.status);
    const action = STATUS_ACTIONS[status];
    if (!action) return null;
    const jobType = String(event.job_type ?? "");
    return {
      kind: jobType === "session" ? "session" : "job",
      action,
      id: event.job_id,
      job_id: event.job_id,
      job_type: jobType,
      status,
      error: (event.error as string | undefined) ?? null,
      ts: event.ts,
    };
  }
  if (event.type === "content_change" && typeof event.kind === "string") {
    const { type: _type, id: _streamId, ...rest } = event;
    return {
      ...rest,
      kind: event.kind,
      action: String(event.action ?? "changed"),
      id: String(event.entity_id ?? event.job_id),
      job_id: event.job_id,
      ts: event.ts,
    };
  }
  return null;
}

const changeKey = (c: ContentChange) => `${c.job_id}\u0000${c.id}\u0000${c.action}\u0000${c.ts}`;

/** Changes kept for a client that just connected. */
const RECENT = 50;
const TICK_MS = 200;
const CHANGES_PER_TICK = 2;
const MAX_PENDING = 20;
const CHANGE_TYPES = new Set(["status", "content_change"]);
const MAX_BUFFERED = 1 << 20;

/**
 * A client that connects first gets the recent changes: those sent, else the last ones history
 * stored. Job status changes become changes of kind `job` (`session` for jobs of type session). A
 * job announces anything else it starts or stops, such as a video stream, with an event:
 * `ctx.emit("content_change", { kind: "stream", action: "started", entity_id: "<stream id>" })`.
 *
 * The cost is bounded whatever the load: events are looked at only while a client is connected;
 * only status and `content_change` events are considered, by their type, before any parsing;
 * changes wait in a queue of 20 and go out at 2 every 200 ms (10 a second: more than anyone reads
 * on a feed, and a burst arrives whole within 2 s). While the queue is full nothing is parsed and
 * the feed says it shows a sample; the exact counts are in the metrics. A client that does not keep
 * up (over 1 MB buffered) misses messages instead of growing the server's memory.
 */
export function createDashboardFeed(options: {
  hub: EventHub;
  /** The last `limit` status and content_change events stored in history, newest first. */
  stored?: (limit: number) => Promise<JobEvent[]>;
}): DashboardFeed {
  const clients = new Set<FeedClient>();
  const recent: ContentChange[] = [];
  let loading: Promise<void> | undefined;
  const pending: ContentChange[] = [];
  let sampled = false;
  let timer: ReturnType<typeof setInterval> | undefined;
  let unsubscribe: (() => void) | undefined;

  const broadcastText = (text: string) => {
    for (const c of clients) {
      if (c.buffered() > MAX_BUFFERED) continue;
      try {
        c.send(text);
      } catch {
        clients.delete(c);
      }
    }
  };

  const accept = (_jobId: string, type: string) => {
    if (!CHANGE_TYPES.has(type)) return false;
    if (pending.length < MAX_PENDING) return true;
    sampled = true;
    return false;
  };

  const tick = () => {
    for (const change of pending.splice(0, CHANGES_PER_TICK)) {
      recent.push(change);
      if (recent.length > RECENT) recent.shift();
      broadcastText(JSON.stringify({ type: "content_change", ...change }));
    }
  };

  /** Fills an empty feed with what history holds (once; it is what nobody watched happen). */
  const loadStored = async () => {
    const events = await options.stored!(RECENT * 2);
    const stored = events.map(toChange).filter((c): c is ContentChange => c !== null).reverse();
    const seen = new Set(recent.map(changeKey));
    recent.unshift(...stored.filter((c) => !seen.has(changeKey(c))));
    recent.splice(0, Math.max(0, recent.length - RECENT));
  };

  const stop = () => {
    unsubscribe?.();
    unsubscribe = undefined;
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
    pending.length = 0;
    // What happens while nobody watches is read from history by the next first client.
    loading = undefined;
  };

  return {
    join(client) {
      clients.add(client);
      if (!unsubscribe) {
        unsubscribe = options.hub.subscribeAll((event) => {
          const change = toChange(event);
          if (change) pending.push(change);
        }, accept);
        timer = setInterval(tick, TICK_MS);
      }
      return () => {
        clients.delete(client);
        if (clients.size === 0) stop();
      };
    },
    clients: () => clients.size,
    broadcast(message) {
      if (clients.size > 0) broadcastText(JSON.stringify(message));
    },
    async recentChanges() {
      if (options.stored && !loading) {
        loading = loadStored().catch(() => {
          loading = undefined;
        });
      }
      await loading;
      return [...recent];
    },
    takeSampled() {
      const s = sampled;
      sampled = false;
      return s;
    },
    close() {
      clients.clear();
      stop();
    },
  };
}
