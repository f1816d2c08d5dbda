/**
 * The history writer: the only code that writes job history to DuckDB. It reads the global event
 * stream through the `history` consumer group, writes in batches (at 100 entries or after 1 s,
 * whichever comes first), and acknowledges entries only after DuckDB committed them, so a crash
 * at any point loses nothing: unacknowledged entries are read again at the next start.
 */
import type { Redis } from "./redis.ts";
import type { History, StreamEntry } from "./history.ts";
import { idToSeq } from "./events.ts";
import { redisKeys } from "./keys.ts";
import { errorMessage, type Logger } from "./log.ts";

export const HISTORY_GROUP = "history";

export interface HistoryWriterOptions {
  /** A dedicated connection: XREADGROUP blocks. */
  redis: Redis;
  prefix: string;
  history: History;
  log: Logger;
  maxBatch?: number;
  maxDelayMs?: number;
  /** How much of the stream to keep after it is written (for live readers that lag). */
  keepMs?: number;
}

export interface HistoryWriter {
  /** Resolves once everything read so far is in DuckDB. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

type Reply = Array<[string, Array<[string, string[] | null]>]> | null;

export async function startHistoryWriter(options: HistoryWriterOptions): Promise<HistoryWriter> {
  const { redis, history, log } = options;
  const stream = redisKeys(options.prefix).events;
  const consumer = "writer";
  const maxBatch = options.maxBatch ?? 100;
  const maxDelay = options.maxDelayMs ?? 1_000;
  const keepMs = options.keepMs ?? 10_000;

  try {
    await redis.xgroup("CREATE", stream, HISTORY_GROUP, "0", "MKSTREAM");
  } catch (err) {
    if (!/BUSYGROUP/.test(errorMessage(err))) throw err;
  }

  let stopped = false;
  let buffer: Array<StreamEntry & { id: string }> = [];
  let firstAt = 0;
  let flushing: Promise<void> = Promise.resolve();

  const toEntries = (reply: Reply) => {
    const out: Array<StreamEntry & { id: string }> = [];
    for (const [, entries] of reply ?? []) {
      for (const [id, list] of entries) {
        if (!list) continue; // deleted while pending
        let jobId = "";
        let json = "{}";
        for (let i = 0; i + 1 < list.length; i += 2) {
          if (list[i] === "j") jobId = list[i + 1]!;
          else if (list[i] === "e") json = list[i + 1]!;
        }
        out.push({ id, seq: idToSeq(id), jobId, json });
      }
    }
    return out;
  };

  const write = async (batch: Array<StreamEntry & { id: string }>, replay: boolean) => {
    while (true) {
      try {
        await history.applyEvents(batch, { replay });
        break;
      } catch (err) {
        if (stopped) throw err;
        log.error("history write failed; retrying", { error: errorMessage(err) });
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
    const ids = batch.map((e) => e.id);
    for (let i = 0; i < ids.length; i += 5000) {
      await redis.xack(stream, HISTORY_GROUP, ...ids.slice(i, i + 5000));
    }
    const last = ids[ids.length - 1]!;
    const keepFrom = Math.max(0, Number(last.split("-")[0]) - keepMs);
    await redis.xtrim(stream, "MINID", "~", `${keepFrom}-0`);
  };

  const flush = (): Promise<void> => {
    if (buffer.length === 0) return flushing;
    const batch = buffer;
    buffer = [];
    flushing = flushing.then(() => write(batch, false));
    return flushing;
  };

  // First, entries read before a crash but never acknowledged.
  while (true) {
    const pending = toEntries(
      (await redis.xreadgroup(
        "GROUP",
        HISTORY_GROUP,
        consumer,
        "COUNT",
        5000,
        "STREAMS",
        stream,
        "0",
      )) as Reply,
    );
    if (pending.length === 0) break;
    await write(pending, true);
    log.info("history writer recovered unacknowledged events", { count: pending.length });
    if (pending.length < 5000) break;
  }

  const loop = (async () => {
    while (!stopped) {
      try {
        const wait = buffer.length ? Math.max(1, maxDelay - (Date.now() - firstAt)) : 1_000;
        const reply = (await redis.xreadgroup(
          "GROUP",
          HISTORY_GROUP,
          consumer,
          "COUNT",
          5000,
          "BLOCK",
          wait,
          "STREAMS",
          stream,
          ">",
        )) as Reply;
        const entries = toEntries(reply);
        if (entries.length && buffer.length === 0) firstAt = Date.now();
        for (const e of entries) buffer.push(e);
        if (buffer.length >= maxBatch || (buffer.length && Date.now() - firstAt >= maxDelay)) {
          await flush();
        }
      } catch (err) {
        if (stopped) break;
        log.warn("history writer read failed; retrying", { error: errorMessage(err) });
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  })();

  let closing: Promise<void> | undefined;
  return {
    flush,
    close: () =>
      closing ??= (async () => {
        stopped = true;
        // Unblock the XREADGROUP by closing the connection, then write what was read.
        redis.disconnect();
        await loop;
        if (buffer.length) {
          const batch = buffer;
          buffer = [];
          try {
            await flushing;
            await history.applyEvents(batch, { replay: false });
          } catch (err) {
            // Not acknowledged: it is read again, from the pending list, at the next start.
            log.warn("history writer stopped before writing a batch", {
              count: batch.length,
              error: errorMessage(err),
            });
          }
        }
        await flushing.catch(() => {});
      })(),
  };
}
