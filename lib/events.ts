/**
 * Job events through Redis.
 *
 * Every event is appended to the global stream `<prefix>:events` and, with the same stream id,
 * to the job's own stream `<prefix>:jobevents:<id>`. Writers: the queue's Lua scripts (status,
 * result) and the event publisher below (log, progress, sample, ...). Readers: the history
 * writer (consumer group on the global stream), and the event hub, which runs one XREAD loop per
 * API process and fans events out to local subscribers (WebSocket clients, dashboard).
 * A late subscriber catches up from the job's stream, then continues live without gaps or
 * duplicates because both carry the same ids.
 */
import type { Redis } from "./redis.ts";
import type { Queue } from "./queue.ts";
import type { Logger } from "./log.ts";
import { errorMessage } from "./log.ts";
import { redisKeys } from "./keys.ts";

/** An event as clients see it. */
export interface JobEvent {
  /** Stream id: increasing, unique, comparable with `compareIds`. */
  id: string;
  job_id: string;
  type: string;
  /** ISO-8601 UTC. */
  ts: string;
  [field: string]: unknown;
}

/** Orders two Redis stream ids ("ms-seq"). */
export function compareIds(a: string, b: string): number {
  const [am = "0", as = "0"] = a.split("-");
  const [bm = "0", bs = "0"] = b.split("-");
  return Number(am) - Number(bm) || Number(as) - Number(bs);
}

/** A stream id as one sortable integer (ms × 10⁶ + seq), used as `seq` in DuckDB. */
export function idToSeq(id: string): bigint {
  const [ms = "0", seq = "0"] = id.split("-");
  return BigInt(ms) * 1_000_000n + BigInt(seq);
}

export function seqToId(seq: bigint): string {
  return `${seq / 1_000_000n}-${seq % 1_000_000n}`;
}

export function parseEvent(id: string, jobId: string, json: string): JobEvent {
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(json);
  } catch {
    body = { type: "log", level: "error", message: "unreadable event" };
  }
  const ts = typeof body.ts === "number"
    ? new Date(body.ts).toISOString()
    : new Date().toISOString();
  return { ...body, id, job_id: jobId, type: String(body.type ?? "unknown"), ts };
}

type StreamReply = Array<[string, Array<[string, string[]]>]> | null;

function fields(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) out[list[i]!] = list[i + 1]!;
  return out;
}

/** All events of one job still held in Redis, oldest first (after `afterId` when given). */
export async function readJobEvents(
  redis: Redis,
  prefix: string,
  jobId: string,
  afterId?: string,
): Promise<JobEvent[]> {
  const start = afterId ? `(${afterId}` : "-";
  const rows = await redis.xrange(redisKeys(prefix).jobEvents(jobId), start, "+");
  return rows.map(([id, list]) => parseEvent(id, jobId, fields(list).e ?? "{}"));
}

export type EventListener = (event: JobEvent) => void;

export interface EventHub {
  /** Live events of one job. Returns an unsubscribe function. */
  subscribe(jobId: string, listener: EventListener): () => void;
  /** Live events of every job. */
  subscribeAll(listener: EventListener): () => void;
  /**
   * Resolves once live delivery covers every event written from now on: a subscriber that
   * reads its catch-up after this misses nothing between catch-up and live.
   */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/**
 * One blocking XREAD loop on the global stream per process, started on first subscription.
 * `connect` makes the dedicated blocking connection.
 */
export function createEventHub(options: {
  connect: () => Redis;
  prefix: string;
  log: Logger;
}): EventHub {
  const keys = redisKeys(options.prefix);
  const byJob = new Map<string, Set<EventListener>>();
  const all = new Set<EventListener>();
  let conn: Redis | undefined;
  let loop: Promise<void> | undefined;
  let started: Promise<void> | undefined;
  let stopped = false;

  const dispatch = (event: JobEvent) => {
    for (const l of byJob.get(event.job_id) ?? []) l(event);
    for (const l of all) l(event);
  };

  const run = async (conn: Redis, from: string) => {
    let last = from;
    while (!stopped) {
      try {
        const reply = (await conn.xread(
          "COUNT",
          5000,
          "BLOCK",
          1000,
          "STREAMS",
          keys.events,
          last,
        )) as StreamReply;
        if (!reply) continue;
        for (const [, entries] of reply) {
          for (const [id, list] of entries) {
            last = id;
            const f = fields(list);
            if (!f.j || (!byJob.has(f.j) && all.size === 0)) continue;
            dispatch(parseEvent(id, f.j, f.e ?? "{}"));
          }
        }
      } catch (err) {
        if (stopped) break;
        options.log.warn("event hub read failed; retrying", { error: errorMessage(err) });
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  };

  // The loop starts from the newest id at start-up (not "$", which would skip whatever is
  // written before the first XREAD reaches Redis).
  const ensure = () =>
    started ??= (async () => {
      const c = conn = options.connect();
      let from = "0-0";
      try {
        from = (await c.xrevrange(keys.events, "+", "-", "COUNT", 1))[0]?.[0] ?? "0-0";
      } catch (err) {
        options.log.warn("event hub could not read the stream's end", {
          error: errorMessage(err),
        });
      }
      loop = run(c, from);
    })();

  return {
    subscribe(jobId, listener) {
      ensure();
      let set = byJob.get(jobId);
      if (!set) byJob.set(jobId, set = new Set());
      set.add(listener);
      return () => {
        set.delete(listener);
        if (set.size === 0) byJob.delete(jobId);
      };
    },
    subscribeAll(listener) {
      ensure();
      all.add(listener);
      return () => all.delete(listener);
    },
    ready: () => ensure(),
    async close() {
      stopped = true;
      await started;
      conn?.disconnect();
      await loop;
    },
  };
}

/**
 * Buffers events from running jobs and writes them to Redis in batches (one script call per
 * flush), so a job logging in a tight loop costs one round trip per few milliseconds.
 */
export interface EventPublisher {
  publish(jobId: string, event: Record<string, unknown>): void;
  flush(): Promise<void>;
  close(): Promise<void>;
}

export function createEventPublisher(options: {
  queue: Queue;
  log: Logger;
  intervalMs?: number;
  maxBatch?: number;
}): EventPublisher {
  const interval = options.intervalMs ?? 10;
  const maxBatch = options.maxBatch ?? 1000;
  let buffer: Array<[string, string]> = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let inflight: Promise<void> = Promise.resolve();

  const flush = (): Promise<void> => {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (buffer.length === 0) return inflight;
    const batch = buffer;
    buffer = [];
    inflight = inflight.then(() =>
      options.queue.emit(batch).catch((err) => {
        options.log.warn("dropping job events: Redis write failed", {
          count: batch.length,
          error: errorMessage(err),
        });
      })
    );
    return inflight;
  };

  return {
    publish(jobId, event) {
      buffer.push([jobId, JSON.stringify({ ts: Date.now(), ...event })]);
      if (buffer.length >= maxBatch) flush();
      else timer ??= setTimeout(flush, interval);
    },
    flush,
    close: flush,
  };
}
