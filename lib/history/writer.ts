/**
 * The history writer: the only code that writes job events to DuckDB, and the live event hub of the
 * process that runs it.
 */
import type { BlockingRedis } from "../core/redis.ts";
import type { History, StreamEntry } from "./store.ts";
import {
  type EventHub,
  type EventListener,
  idToSeq,
  type JobEvent,
  parseEvent,
  parseStreamFields,
  seqToId,
} from "../jobs/events.ts";
import { redisKeys } from "../core/keys.ts";
import { errorMessage, type Logger } from "../core/log.ts";
import { safeString } from "../core/strings.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The consumer group earlier releases read the stream with; removed once caught up. */
export const LEGACY_HISTORY_GROUP = "history";

export interface HistoryWriterOptions {
  /** A dedicated connection: XREAD blocks. */
  redis: BlockingRedis;
  prefix: string;
  history: History;
  log: Logger;
  maxBatch?: number;
  maxDelayMs?: number;
  /** Write what is buffered once no new entry arrived for this long. */
  quietMs?: number;
  /** Stop reading while this many entries wait for DuckDB (backpressure). */
  maxBuffered?: number;
}

export interface HistoryWriter extends EventHub {
  /** Resolves once everything read so far is in DuckDB. */
  flush(): Promise<void>;
  /** Events of a job read from the stream but not yet committed to DuckDB, oldest first. */
  recent(jobId: string): JobEvent[];
  close(): Promise<void>;
}

type Reply = Array<[string, Array<[string, string[] | null]>]> | null;
type Entry = StreamEntry & { id: string };

/**
 * It reads the global event stream with XREAD, hands each event to the local subscribers (WebSocket
 * viewers, dashboard) as it is read, and writes batches to DuckDB — at 100 entries, after 1 s, or
 * once the stream has been quiet for 50 ms, whichever comes first — while it keeps reading. Each
 * batch commits the stream offset it reached in the same DuckDB transaction, so a crash loses
 * nothing and repeats nothing: the next start reads on from the committed offset. (No consumer
 * group: Redis would keep a pending list and write every delivery and acknowledgement to its
 * append-only file.)
 *
 * A late viewer catches up without gaps from three places: DuckDB (committed), `recent()` (read,
 * not yet committed) and live events after it subscribed; duplicates share a stream id.
 */
export async function startHistoryWriter(options: HistoryWriterOptions): Promise<HistoryWriter> {
  const { redis, history, log } = options;
  const stream = redisKeys(options.prefix).events;
  const maxBatch = options.maxBatch ?? 100;
  const maxDelay = options.maxDelayMs ?? 1_000;
  const quietMs = options.quietMs ?? 50;
  const maxBuffered = options.maxBuffered ?? 200_000;

  const committed = await history.streamOffset(stream);
  /** Where reading goes on: the last entry read (committed or not). */
  let lastId = committed === null ? "0" : seqToId(committed);

  let stopped = false;
  /** Read, not yet handed to DuckDB. */
  let buffer: Entry[] = [];
  let firstAt = 0;
  /** Read, not yet committed (buffered or being written), per job. */
  const uncommitted = new Map<string, Entry[]>();
  let writing: Promise<void> | null = null;
  let idle: Promise<void> = Promise.resolve();
  const byJob = new Map<string, Set<EventListener>>();
  const all = new Map<EventListener, ((jobId: string, type: string) => boolean) | undefined>();

  const toEntries = (reply: Reply): Entry[] => {
    const out: Entry[] = [];
    for (const [, entries] of reply ?? []) {
      for (const [id, list] of entries) {
        const fields = list && parseStreamFields(list);
        if (fields) out.push({ id, seq: idToSeq(id), ...fields });
      }
    }
    return out;
  };

  const dispatch = (e: Entry) => {
    const listeners = byJob.get(e.jobId);
    if (!listeners && all.size === 0) return;
    let event: JobEvent | undefined;
    for (const l of listeners ?? []) l(event ??= parseEvent(e.id, e.jobId, e.json));
    for (const [l, accept] of all) {
      if (!accept || accept(e.jobId, e.type)) l(event ??= parseEvent(e.id, e.jobId, e.json));
    }
  };

  const apply = (batch: Entry[], replay: boolean) => history.applyEvents(batch, { replay, stream });

  /**
   * Stores a batch. A failed batch is tried once more after a short pause (DuckDB busy, disk
   * briefly full), then split in halves at once until the event DuckDB refuses is found, which is
   * stored as text with a note (`storeRefused`): one bad event neither stops nor delays the
   * history of the others.
   */
  const store = async (batch: Entry[], replay: boolean): Promise<void> => {
    try {
      return await apply(batch, replay);
    } catch (err) {
      if (stopped) throw err;
      log.warn("history write failed; retrying", {
        count: batch.length,
        error: errorMessage(err),
      });
    }
    await sleep(200);
    await storeSplit(batch);
  };

  /** Stores a batch, halving it on failure (the idempotent way, as a retry may repeat a job). */
  const storeSplit = async (batch: Entry[]): Promise<void> => {
    try {
      return await apply(batch, true);
    } catch (err) {
      if (stopped) throw err;
      if (batch.length === 1) return await storeRefused(batch[0]!, err);
      const half = Math.ceil(batch.length / 2);
      await storeSplit(batch.slice(0, half));
      await storeSplit(batch.slice(half));
    }
  };

  /**
   * Stores an event DuckDB refused as its text, with a note saying why. Should that fail too,
   * DuckDB cannot write at all (disk full, file gone): nothing is dropped, the writer waits with
   * backoff and tries again until it can, or until it is closed.
   */
  const storeRefused = async (entry: Entry, refusal: unknown): Promise<void> => {
    const text: Entry = {
      ...entry,
      json: JSON.stringify({
        type: safeString(entry.type),
        ts: Number(entry.seq / 1_000_000n),
        unreadable: safeString(entry.json).slice(0, 100_000),
        sanitized: `stored as text: DuckDB refused the event (${errorMessage(refusal)})`,
      }),
    };
    for (let attempt = 0;; attempt++) {
      try {
        await apply([text], true);
        log.error("stored an event DuckDB refused as text", {
          job: entry.jobId,
          type: entry.type,
          error: errorMessage(refusal),
        });
        return;
      } catch (err) {
        if (stopped) throw err;
        if (attempt === 0) {
          log.error("history cannot be written; waiting for DuckDB", { error: errorMessage(err) });
        }
        await sleep(Math.min(30_000, 1_000 * 2 ** attempt));
      }
    }
  };

  /** Stores one batch (with its offset), then trims what is committed off the stream. */
  const write = async (batch: Entry[], replay: boolean) => {
    await store(batch, replay);
    for (const e of batch) {
      const list = uncommitted.get(e.jobId);
      if (list?.[0] === e) list.shift();
      if (list?.length === 0) uncommitted.delete(e.jobId);
    }
    try {
      await redis.redis.xtrim(stream, "MINID", "~", batch[batch.length - 1]!.id);
    } catch (err) {
      // Committed all the same; a later batch trims it.
      log.warn("could not trim written events off the stream", { error: errorMessage(err) });
    }
  };

  /** Starts writing the buffer unless a write is already running (or the writer is closing). */
  const startWrite = () => {
    if (writing || buffer.length === 0 || stopped) return;
    const batch = buffer;
    buffer = [];
    writing = write(batch, false).finally(() => {
      writing = null;
      if (buffer.length >= maxBatch) startWrite();
    });
    idle = writing.catch(() => {});
  };

  /** Reads the entries after the last one read. */
  const read = async (blockMs?: number) => {
    const entries = toEntries(
      (await redis.call(
        blockMs ?? 0,
        (r) =>
          blockMs === undefined
            ? r.xread("COUNT", 5000, "STREAMS", stream, lastId)
            : r.xread("COUNT", 5000, "BLOCK", blockMs, "STREAMS", stream, lastId),
      )) as Reply,
    );
    if (entries.length) lastId = entries[entries.length - 1]!.id;
    return entries;
  };

  if (committed === null) {
    // No offset yet: a new stream, or one an earlier release read through a consumer group.
    // What is in the stream may be stored already, so it is written the idempotent way.
    let recovered = 0;
    while (true) {
      const entries = await read();
      if (entries.length === 0) break;
      await write(entries, true);
      recovered += entries.length;
    }
    if (recovered) log.info("history writer caught up with the event stream", { recovered });
    await redis.redis.xgroup("DESTROY", stream, LEGACY_HISTORY_GROUP).catch(() => {});
  }

  const loop = (async () => {
    while (!stopped) {
      try {
        if (buffer.length >= maxBuffered && writing) await writing;
        const wait = buffer.length
          ? Math.max(1, Math.min(quietMs, maxDelay - (Date.now() - firstAt)))
          : 1_000;
        const entries = await read(wait);
        if (entries.length && buffer.length === 0) firstAt = Date.now();
        for (const e of entries) {
          buffer.push(e);
          let list = uncommitted.get(e.jobId);
          if (!list) uncommitted.set(e.jobId, list = []);
          list.push(e);
          dispatch(e);
        }
        const quiet = entries.length === 0;
        if (
          buffer.length >= maxBatch ||
          (buffer.length && (quiet || Date.now() - firstAt >= maxDelay))
        ) {
          startWrite();
        }
      } catch (err) {
        if (stopped) break;
        log.warn("history writer read failed; retrying", { error: errorMessage(err) });
        await sleep(500);
      }
    }
  })();

  const flush = async () => {
    while ((buffer.length && !stopped) || writing) {
      startWrite();
      await idle;
    }
  };

  let closing: Promise<void> | undefined;
  return {
    flush,
    recent: (jobId) => (uncommitted.get(jobId) ?? []).map((e) => parseEvent(e.id, e.jobId, e.json)),
    subscribe(jobId, listener) {
      let set = byJob.get(jobId);
      if (!set) byJob.set(jobId, set = new Set());
      set.add(listener);
      return () => {
        set.delete(listener);
        if (set.size === 0) byJob.delete(jobId);
      };
    },
    subscribeAll(listener, accept) {
      all.set(listener, accept);
      return () => all.delete(listener);
    },
    close: () =>
      closing ??= (async () => {
        stopped = true;
        // Let a write in flight finish, then unblock the XREAD by closing the connection and
        // write what was read since (with its offset, so the next start reads on after it).
        await idle;
        redis.disconnect();
        await loop;
        await idle;
        if (buffer.length) {
          try {
            await history.applyEvents(buffer, { replay: false, stream });
          } catch (err) {
            log.warn("history writer stopped before writing a batch", {
              count: buffer.length,
              error: errorMessage(err),
            });
          }
          buffer = [];
        }
      })(),
  };
}
