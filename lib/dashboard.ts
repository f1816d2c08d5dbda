/**
 * The live dashboard feed behind `GET /ws/dashboard`: the connected clients, one serialisation
 * per message for all of them, and the `content_change` events (a job, session or stream
 * started, ended or failed) read from the global event stream.
 *
 * The cost is bounded whatever the load: the stream is read only while a client is connected,
 * 5 times a second, at most 200 entries a time; changes wait in a queue of 20 and go out at 2 per
 * read (10 a second: more than anyone reads on a feed, and a burst arrives whole within 2 s).
 * Only the changes that fit in the queue are parsed. Beyond that the feed says it shows a
 * sample, and under heavier load it jumps to the newest events; exact counts are in the metrics. A client that does not keep up (over 1 MB
 * buffered) misses messages instead of growing the server's memory.
 */
import type { Redis } from "./redis.ts";
import { redisKeys } from "./keys.ts";
import { errorMessage, type Logger } from "./log.ts";

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
  /** The latest changes, oldest first (for a client that just connected). */
  recentChanges(): ContentChange[];
  /** Whether changes were skipped since the last call (the feed showed a sample). */
  takeSampled(): boolean;
  close(): Promise<void>;
}

const STATUS_ACTIONS: Record<string, string> = {
  running: "started",
  succeeded: "ended",
  cancelled: "ended",
  failed: "failed",
  retrying: "failed",
};

/** The change a stream event stands for, or null if it is not one. */
export function toChange(jobId: string, body: Record<string, unknown>): ContentChange | null {
  const ts = new Date(typeof body.ts === "number" ? body.ts : Date.now()).toISOString();
  if (body.type === "status") {
    const status = String(body.status);
    const action = STATUS_ACTIONS[status];
    if (!action) return null;
    const jobType = String(body.job_type ?? "");
    return {
      kind: jobType === "session" ? "session" : "job",
      action,
      id: jobId,
      job_id: jobId,
      job_type: jobType,
      status,
      error: (body.error as string | undefined) ?? null,
      ts,
    };
  }
  if (body.type === "content_change" && typeof body.kind === "string") {
    const { type: _type, ts: _ts, ...rest } = body;
    return {
      ...rest,
      kind: body.kind,
      action: String(body.action ?? "changed"),
      id: String(body.id ?? jobId),
      job_id: jobId,
      ts,
    };
  }
  return null;
}

const POLL_MS = 200;
const READ_COUNT = 200;
const CHANGES_PER_READ = 2;
const MAX_PENDING = 20;
const CHANGE_TYPES = new Set(["status", "content_change"]);
const MAX_BUFFERED = 1 << 20;

export function createDashboardFeed(options: {
  redis: Redis;
  prefix: string;
  log: Logger;
}): DashboardFeed {
  const { redis, log } = options;
  const stream = redisKeys(options.prefix).events;
  const clients = new Set<FeedClient>();
  const recent: ContentChange[] = [];
  const pending: ContentChange[] = [];
  let last: string | null = null;
  let sampled = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let polling: Promise<void> | null = null;
  let warned = false;

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

  const newestId = async () => {
    const rows = await redis.xrevrange(stream, "+", "-", "COUNT", 1);
    return rows[0]?.[0] ?? "0-0";
  };

  const poll = async () => {
    last ??= await newestId();
    const reply = (await redis.xread("COUNT", READ_COUNT, "STREAMS", stream, last)) as
      | Array<[string, Array<[string, string[]]>]>
      | null;
    const entries = reply?.[0]?.[1] ?? [];
    for (const [id, list] of entries) {
      last = id;
      let jobId = "";
      let type = "";
      let json = "";
      for (let i = 0; i + 1 < list.length; i += 2) {
        if (list[i] === "j") jobId = list[i + 1]!;
        else if (list[i] === "t") type = list[i + 1]!;
        else if (list[i] === "e") json = list[i + 1]!;
      }
      // When the entry names its event type, others are skipped without parsing.
      if (type !== "" && !CHANGE_TYPES.has(type)) continue;
      if (pending.length >= MAX_PENDING) {
        sampled = true;
        continue;
      }
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(json);
      } catch {
        continue;
      }
      const change = toChange(jobId, body);
      if (change) pending.push(change);
    }
    if (entries.length === READ_COUNT) {
      last = await newestId();
      sampled = true;
    }
    for (const change of pending.splice(0, CHANGES_PER_READ)) {
      recent.push(change);
      if (recent.length > 50) recent.shift();
      broadcastText(JSON.stringify({ type: "content_change", ...change }));
    }
  };

  const schedule = () => {
    if (clients.size === 0 || timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      polling = poll().then(() => {
        warned = false;
      }, (err) => {
        if (!warned) log.warn("dashboard feed read failed", { error: errorMessage(err) });
        warned = true;
      }).finally(() => {
        polling = null;
        schedule();
      });
    }, POLL_MS);
  };

  return {
    join(client) {
      clients.add(client);
      schedule();
      return () => {
        clients.delete(client);
        if (clients.size === 0) {
          // Next time, start from the newest events rather than replaying the gap.
          last = null;
          pending.length = 0;
          if (timer !== undefined) clearTimeout(timer);
          timer = undefined;
        }
      };
    },
    clients: () => clients.size,
    broadcast(message) {
      if (clients.size > 0) broadcastText(JSON.stringify(message));
    },
    recentChanges: () => [...recent],
    takeSampled() {
      const s = sampled;
      sampled = false;
      return s;
    },
    async close() {
      clients.clear();
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      await polling;
    },
  };
}
