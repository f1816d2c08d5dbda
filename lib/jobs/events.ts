/**
 * Job events through Redis: the event shape, stream ids, and the batched publisher.
 */
import type { Queue } from "./queue.ts";
import type { Logger } from "../core/log.ts";
import { errorMessage } from "../core/log.ts";

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

/**
 * The fields of an event stream entry: one field `d` = "<job id>\t<type>\t<event JSON>" (job
 * ids and types hold no tab), or the `j`, `t`, `e` fields of releases before it. Null when the
 * entry is neither.
 *
 * Every event is one entry of the global stream `<prefix>:events` with one field, `d` = "<job
 * id>\t<event type>\t<event JSON>", written by the queue's Lua scripts (status, result, and the
 * publisher's batches: log, progress, sample, ...) and read by the history writer
 * (`lib/history/writer.ts`).
 */
export function parseStreamFields(
  fields: string[],
): { jobId: string; type: string; json: string } | null {
  if (fields[0] === "d" && fields.length === 2) {
    const d = fields[1]!;
    const a = d.indexOf("\t");
    const b = d.indexOf("\t", a + 1);
    if (a < 0 || b < 0) return null;
    return { jobId: d.slice(0, a), type: d.slice(a + 1, b), json: d.slice(b + 1) };
  }
  let jobId = "";
  let type = "";
  let json = "{}";
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === "j") jobId = fields[i + 1]!;
    else if (fields[i] === "t") type = fields[i + 1]!;
    else if (fields[i] === "e") json = fields[i + 1]!;
  }
  return jobId ? { jobId, type, json } : null;
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

export type EventListener = (event: JobEvent) => void;

/** Live events of this process's event stream reader (the history writer implements it). */
export interface EventHub {
  /** Live events of one job. Returns an unsubscribe function. */
  subscribe(jobId: string, listener: EventListener): () => void;
  /**
   * Live events of every job. Returns an unsubscribe function. With `accept`, only the events
   * it accepts (by job id and event type, asked before the event is parsed) reach the listener,
   * so a listener that wants few events costs little however many there are.
   */
  subscribeAll(
    listener: EventListener,
    accept?: (jobId: string, type: string) => boolean,
  ): () => void;
}

/**
 * Buffers events from running jobs and writes them to Redis in batches (one script call per
 * flush), so a job logging in a tight loop costs one round trip per few milliseconds. While Redis
 * cannot be written (restarting), events are held and written once it can, up to `maxHeld` (the
 * oldest go first beyond); what is still held at shutdown is handed to the spool (`unwritten`).
 */
export interface EventPublisher {
  publish(jobId: string, event: Record<string, unknown>): void;
  flush(): Promise<void>;
  /** Events not written to Redis yet, oldest first. */
  unwritten(): Array<[string, string, string]>;
  close(): Promise<void>;
}

export function createEventPublisher(options: {
  queue: Queue;
  log: Logger;
  intervalMs?: number;
  maxBatch?: number;
  maxHeld?: number;
}): EventPublisher {
  const interval = options.intervalMs ?? 10;
  const maxBatch = options.maxBatch ?? 1000;
  const maxHeld = options.maxHeld ?? 100_000;
  let buffer: Array<[string, string, string]> = [];
  /** Being written, or held after a failed write until the next one. */
  let sending: Array<[string, string, string]> = [];
  let failing = false;
  let closed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let inflight: Promise<void> = Promise.resolve();

  const send = async () => {
    sending = sending.length ? sending.concat(buffer) : buffer;
    buffer = [];
    if (sending.length === 0) return;
    try {
      await options.queue.emit(sending);
      sending = [];
      if (failing) options.log.info("job events written again");
      failing = false;
    } catch (err) {
      if (!failing) {
        options.log.warn("holding job events: Redis write failed", {
          count: sending.length,
          error: errorMessage(err),
        });
      }
      failing = true;
      if (sending.length > maxHeld) {
        const dropped = sending.length - maxHeld;
        sending = sending.slice(dropped);
        options.log.warn("dropping the oldest held job events", { count: dropped });
      }
      if (!closed) timer ??= setTimeout(flush, 1_000);
    }
  };

  const flush = (): Promise<void> => {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (buffer.length === 0 && sending.length === 0) return inflight;
    inflight = inflight.then(send);
    return inflight;
  };

  return {
    publish(jobId, event) {
      buffer.push([jobId, String(event.type), JSON.stringify({ ts: Date.now(), ...event })]);
      if (buffer.length >= maxBatch) flush();
      else timer ??= setTimeout(flush, interval);
    },
    flush,
    unwritten: () => [...sending, ...buffer],
    close: () => {
      closed = true;
      return flush();
    },
  };
}
