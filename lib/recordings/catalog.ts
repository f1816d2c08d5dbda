/**
 * Recordings in DuckDB, for the API process (the one that owns the DuckDB file): the projections
 * that keep the tables, the reads, deletion, and the sweeps.
 */
import type { DuckDBValue } from "@duckdb/node-api";
import { z } from "@hono/zod-openapi";
import type { Config } from "../core/config.ts";
import {
  decodeCursor,
  encodeCursor,
  type EventProjection,
  type History,
  tsValue,
} from "../history/store.ts";
import type { HistoryWriter } from "../history/writer.ts";
import type { RedisKeys } from "../core/keys.ts";
import { notFound } from "../core/errors.ts";
import { errorMessage, type Logger } from "../core/log.ts";
import { invalid } from "../core/errors.ts";
import type { Redis } from "../core/redis.ts";
import { CODECS, PROFILE_NAMES } from "../video/codecs.ts";
import {
  RECORDING_LIVE_TTL_MS,
  RECORDING_STATES,
  type RecordingMeta,
  recordingPaths,
  type RecordingState,
  toMb,
} from "./model.ts";

const STALE_SWEEP_MS = 3_000;
const RETENTION_EVERY_MS = 24 * 3600_000;
/** Deleted ids are kept this long for nodes that were down when the deletion was announced. */
const DELETED_KEEP_MS = 30 * 86_400_000;

const TIMESTAMP = (field: string) => `to_timestamp((data->>'${field}')::DOUBLE / 1000)`;
const NOT_DELETED = `NOT EXISTS (SELECT 1 FROM recording_tombstones t ` +
  `WHERE t.id = (data->>'recording_id'))`;

const COLUMNS = [
  "id",
  "session_id",
  "seq",
  "state",
  "reason",
  "source",
  "replay_of",
  "codec",
  "encoder",
  "hardware",
  "quality",
  "container",
  "width",
  "height",
  "fps",
  "node",
  "start_url",
  "viewport",
  "from_first_load",
  "started_at",
  "video_started_at",
  "stopped_at",
  "duration_seconds",
  "frame_count",
  "file_size_bytes",
  "storage_bytes",
  "screenshots",
  "stats",
  "updated_at",
];

/**
 * The history writer keeps these tables in the same transactions as the events.
 *
 * They keep the `recordings` table (from `recording` events, latest first) and `recording_events`
 * (session events stamped with a `recording_id`: the timelines) in the history writer's own
 * transactions.
 */
export const RECORDING_PROJECTIONS: EventProjection[] = [
  {
    name: "recordings",
    wants: (type) => type === "recording",
    sql: `
      INSERT INTO recordings (${COLUMNS.join(", ")})
      SELECT data->>'recording_id', data->>'session_id', seq, data->>'state', data->>'reason',
        data->>'source', data->>'replay_of', data->>'codec', data->>'encoder',
        (data->>'hardware')::BOOLEAN, data->>'quality', data->>'container',
        (data->>'width')::INTEGER, (data->>'height')::INTEGER, (data->>'fps')::DOUBLE,
        data->>'node', data->>'start_url', data->'viewport', (data->>'from_first_load')::BOOLEAN,
        ${TIMESTAMP("started_at")}, ${TIMESTAMP("video_started_at")}, ${TIMESTAMP("stopped_at")},
        (data->>'duration_seconds')::DOUBLE, (data->>'frame_count')::BIGINT,
        (data->>'file_size_bytes')::BIGINT, (data->>'storage_bytes')::BIGINT,
        (data->>'screenshots')::INTEGER, data->'stats', now()
      FROM {events}
      WHERE (data->>'type') = 'recording' AND ${NOT_DELETED}
      QUALIFY row_number() OVER (PARTITION BY (data->>'recording_id') ORDER BY seq DESC) = 1
      ON CONFLICT (id) DO UPDATE SET ${
      COLUMNS.slice(1).map((c) => `${c} = excluded.${c}`).join(", ")
    }
      WHERE excluded.seq > recordings.seq`,
  },
  {
    name: "recording_events",
    wants: (type, json) => type !== "recording" && json.includes('"recording_id"'),
    sql: `
      INSERT INTO recording_events (recording_id, seq, data)
      SELECT data->>'recording_id', seq,
        json_merge_patch(data, '{"image_base64": null}')::VARCHAR
      FROM {events}
      WHERE (data->>'recording_id') IS NOT NULL AND (data->>'type') <> 'recording'
        AND ${NOT_DELETED}
      ON CONFLICT DO NOTHING`,
  },
];

/** A recording as the API shows it. */
export const RecordingSchema = z.object({
  recording_id: z.string(),
  session_id: z.string(),
  state: z.enum(RECORDING_STATES).openapi({
    description: "recording, completed, incomplete (the recording process died: the video " +
      "holds what was written until then) or failed",
  }),
  complete: z.boolean(),
  reason: z.string().nullable(),
  source: z.enum(["session", "replay"]),
  replay_of: z.string().nullable(),
  codec: z.enum(CODECS),
  encoder: z.string(),
  hardware: z.boolean(),
  quality: z.enum(PROFILE_NAMES),
  container: z.enum(["mp4", "webm"]),
  width: z.number(),
  height: z.number(),
  fps: z.number(),
  node: z.string().openapi({ description: "The process that recorded it and serves its files" }),
  start_url: z.string(),
  viewport: z.object({ width: z.number(), height: z.number() }),
  from_first_load: z.boolean(),
  started_at: z.string(),
  stopped_at: z.string().nullable(),
  duration_seconds: z.number(),
  frame_count: z.number(),
  file_size_bytes: z.number(),
  file_size_mb: z.number(),
  storage_bytes: z.number().openapi({ description: "Video, screenshots and last frame" }),
  screenshots: z.number(),
  stats: z.record(z.string(), z.number()).nullable(),
  updated_at: z.string(),
  video_url: z.string(),
  timeline_url: z.string(),
}).openapi("Recording");
export type RecordingView = z.infer<typeof RecordingSchema>;

/** The counts of a recording's timeline and its first error. */
export const TimelineSummarySchema = z.object({
  entries: z.number(),
  inputs: z.number(),
  clicks: z.number(),
  navigations: z.number(),
  tab_changes: z.number(),
  console_messages: z.number(),
  page_errors: z.number(),
  failed_requests: z.number(),
  errors_with_screenshot: z.number(),
  first_error: z.object({ t: z.number(), type: z.string(), message: z.string() }).nullable(),
}).openapi("TimelineSummary");
export type TimelineSummary = z.infer<typeof TimelineSummarySchema>;

/** One timeline entry: a session event with its time in the video. */
export const TimelineEntrySchema = z.object({
  t: z.number().openapi({ description: "Seconds from the start of the video" }),
  at: z.string(),
  type: z.string().openapi({
    description: "input, navigation, navigation_failed, tab, console, page_error, " +
      "failed_request, request_blocked, dialog, viewer, ...",
  }),
  screenshot: z.number().nullable(),
  screenshot_url: z.string().nullable(),
}).catchall(z.unknown()).openapi("TimelineEntry");
export type TimelineEntry = z.infer<typeof TimelineEntrySchema>;

export interface RecordingFilter {
  session_id?: string | undefined;
  since?: string | undefined;
  state?: RecordingState | undefined;
  limit: number;
  cursor?: string | undefined;
}

/** The oldest age `clean` takes: 100 years, as STREAMPLAY_RECORDING_RETENTION_DAYS. */
export const MAX_CLEAN_AGE_MS = 36_500 * 86_400_000;

export interface RecordingCatalog {
  list(
    filter: RecordingFilter,
  ): Promise<{ recordings: RecordingView[]; next_cursor: string | null }>;
  get(id: string): Promise<RecordingView | null>;
  /** The timeline; `raw` gives the stored events as they are (for building a replay). */
  timeline(id: string): Promise<TimelineEntry[]>;
  rawTimeline(id: string): Promise<Array<Record<string, unknown>>>;
  summarize(entries: TimelineEntry[]): TimelineSummary;
  /** Deletes recordings that are not recording; answers how many and their bytes. */
  remove(ids: string[]): Promise<{ removed: string[]; bytes: number }>;
  /**
   * Deletes the recordings that started more than `ms` ago and are not recording; with `dryRun`
   * only answers which those are and their bytes. An age beyond `MAX_CLEAN_AGE_MS` is refused as
   * invalid `older_than`.
   */
  clean(ms: number, options?: { dryRun?: boolean }): Promise<{ removed: string[]; bytes: number }>;
  /** Marks recordings whose process is gone as incomplete; answers their ids. */
  sweepStale(): Promise<string[]>;
  replays(id: string): Promise<Array<Record<string, unknown>>>;
  close(): Promise<void>;
}

export interface CatalogOptions {
  config: Config;
  log: Logger;
  history: History;
  hub: HistoryWriter;
  redis: Redis;
  keys: RedisKeys;
}

type Row = Record<string, unknown>;

const iso = (ms: unknown) =>
  ms === null || ms === undefined ? null : new Date(Number(ms)).toISOString();

function parseJson(v: unknown): unknown {
  if (typeof v !== "string") return v ?? null;
  try {
    return JSON.parse(v);
  } catch {
    return null;
  }
}

const SELECT = `SELECT ${
  COLUMNS.map((c) =>
    ["started_at", "video_started_at", "stopped_at", "updated_at"].includes(c)
      ? `epoch_ms(${c}) AS ${c}`
      : c
  ).join(", ")
} FROM recordings`;

/** The recording with that id; 404 when there is none. */
export async function findRecording(catalog: RecordingCatalog, id: string): Promise<RecordingView> {
  const recording = await catalog.get(id);
  if (!recording) throw notFound(`No recording with id "${id}"`);
  return recording;
}

/** A recording's metadata as the API shows it (ISO times, sizes in MB, its URLs). */
export function recordingView(meta: RecordingMeta, updatedAt = Date.now()): RecordingView {
  const { started_at, video_started_at, stopped_at, ...rest } = meta;
  // While it records, its length is the time since the first frame (the stored figures are
  // refreshed every 10 s).
  const duration = meta.state === "recording" && video_started_at !== null
    ? Math.max(meta.duration_seconds, (Date.now() - video_started_at) / 1000)
    : meta.duration_seconds;
  const id = meta.recording_id;
  return {
    ...rest,
    complete: meta.state === "completed",
    started_at: iso(started_at)!,
    stopped_at: iso(stopped_at),
    duration_seconds: Math.round(duration * 1000) / 1000,
    file_size_mb: toMb(meta.file_size_bytes),
    updated_at: iso(updatedAt)!,
    video_url: `/api/recordings/${id}/video`,
    timeline_url: `/api/recordings/${id}/timeline`,
  };
}

function view(row: Row): RecordingView {
  const num = (v: unknown) => (typeof v === "number" ? v : 0);
  const opt = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return recordingView({
    recording_id: String(row.id),
    session_id: String(row.session_id),
    state: String(row.state) as RecordingState,
    reason: (row.reason as string | null) ?? null,
    source: (row.source as "session" | "replay") ?? "session",
    replay_of: (row.replay_of as string | null) ?? null,
    codec: row.codec as RecordingMeta["codec"],
    encoder: String(row.encoder ?? ""),
    hardware: row.hardware === true,
    quality: row.quality as RecordingMeta["quality"],
    container: row.container as "mp4" | "webm",
    width: num(row.width),
    height: num(row.height),
    fps: num(row.fps),
    node: String(row.node ?? ""),
    start_url: String(row.start_url ?? ""),
    viewport: (parseJson(row.viewport) as RecordingMeta["viewport"]) ?? { width: 0, height: 0 },
    from_first_load: row.from_first_load === true,
    started_at: num(row.started_at),
    video_started_at: opt(row.video_started_at),
    stopped_at: opt(row.stopped_at),
    duration_seconds: num(row.duration_seconds),
    frame_count: num(row.frame_count),
    file_size_bytes: num(row.file_size_bytes),
    storage_bytes: num(row.storage_bytes),
    screenshots: num(row.screenshots),
    stats: parseJson(row.stats) as Record<string, number> | null,
  }, num(row.updated_at));
}

/** Fields of a stored event that are bookkeeping, not part of the timeline entry. */
const INTERNAL = new Set([
  "recording_id",
  "recording_t_ms",
  "recording_screenshot",
  "screenshot",
  "screenshot_url",
  "image_base64",
  "ts",
  "type",
]);

function entry(recordingId: string, data: Record<string, unknown>): TimelineEntry {
  const shot = typeof data.recording_screenshot === "number" ? data.recording_screenshot : null;
  const out: TimelineEntry = {
    t: Math.round(Number(data.recording_t_ms ?? 0)) / 1000,
    at: iso(data.ts) ?? "",
    type: String(data.type),
    screenshot: shot,
    screenshot_url: shot === null ? null : `/api/recordings/${recordingId}/screenshots/${shot}`,
  };
  for (const [k, v] of Object.entries(data)) if (!INTERNAL.has(k)) out[k] = v;
  return out;
}

/**
 * - reads: a page of recordings with filters and a cursor, one recording, its timeline with times
 *   in video seconds and screenshot links, a summary of the timeline, its replays;
 * - deletion: rows first (with a tombstone, so a late event cannot bring a row back), then the
 *   files — here when they are here, and on every node through a pub/sub message plus a set of
 *   deleted ids that nodes which were down read when they start;
 * - sweeps: a recording whose recording process stopped refreshing its Redis key is marked
 *   `incomplete` (every 3 s); recordings past STREAMPLAY_RECORDING_RETENTION_DAYS are deleted (at
 *   start, then daily).
 */
export function createRecordingCatalog(options: CatalogOptions): RecordingCatalog {
  const { config, log, history, hub, redis, keys } = options;

  const rawTimeline = async (id: string) => {
    await hub.flush();
    const rows = await history.query<{ data: string }>(
      `SELECT data FROM recording_events WHERE recording_id = $1 ORDER BY seq`,
      [id],
    );
    return rows.map((r) => JSON.parse(r.data) as Record<string, unknown>);
  };

  const remove = async (ids: string[]) => {
    if (ids.length === 0) return { removed: [], bytes: 0 };
    const list = ids.map((_, i) => `$${i + 1}`).join(", ");
    const rows = await history.query<{ id: string; state: string; bytes: number | null }>(
      `SELECT id, state, coalesce(storage_bytes, file_size_bytes, 0) AS bytes
       FROM recordings WHERE id IN (${list})`,
      ids,
    );
    const gone = rows.filter((r) => r.state !== "recording");
    if (gone.length === 0) return { removed: [], bytes: 0 };
    const removed = gone.map((r) => r.id);
    const marks = removed.map((_, i) => `$${i + 1}`).join(", ");
    await history.execute(
      `INSERT INTO recording_tombstones SELECT unnest([${marks}]), now() ON CONFLICT DO NOTHING`,
      removed,
    );
    await history.execute(`DELETE FROM recording_events WHERE recording_id IN (${marks})`, removed);
    await history.execute(`DELETE FROM recordings WHERE id IN (${marks})`, removed);
    for (const id of removed) {
      await Deno.remove(recordingPaths(config.dataDir, id).dir, { recursive: true }).catch(
        () => {},
      );
    }
    try {
      const now = Date.now();
      await redis.zadd(keys.recordingsDeleted, ...removed.flatMap((id) => [now, id]));
      await redis.zremrangebyscore(keys.recordingsDeleted, 0, now - DELETED_KEEP_MS);
      await redis.publish(keys.recordingsControl, JSON.stringify({ op: "delete", ids: removed }));
    } catch (err) {
      log.warn("could not tell the nodes to delete recording files", { error: errorMessage(err) });
    }
    return { removed, bytes: gone.reduce((sum, r) => sum + Number(r.bytes ?? 0), 0) };
  };

  const clean = async (ms: number, options: { dryRun?: boolean } = {}) => {
    if (!(ms <= MAX_CLEAN_AGE_MS)) {
      throw invalid(
        `older_than: ${Math.round(ms / 86_400_000)} days is beyond the 36500 days (100 years) ` +
          "a recording can be kept",
      );
    }
    const rows = await history.query<{ id: string; bytes: number | null }>(
      `SELECT id, coalesce(storage_bytes, file_size_bytes, 0) AS bytes
       FROM recordings WHERE started_at < $1 AND state <> 'recording' ORDER BY started_at`,
      [tsValue(Date.now() - ms)],
    );
    if (!options.dryRun) return await remove(rows.map((r) => r.id));
    return {
      removed: rows.map((r) => r.id),
      bytes: rows.reduce((sum, r) => sum + Number(r.bytes ?? 0), 0),
    };
  };

  const sweepStale = async () => {
    const rows = await history.query<{ id: string; updated_at: number }>(
      `SELECT id, epoch_ms(updated_at) AS updated_at FROM recordings WHERE state = 'recording'`,
    );
    const old = rows.filter((r) => Date.now() - r.updated_at > RECORDING_LIVE_TTL_MS);
    if (old.length === 0) return [];
    const alive = await redis.mget(...old.map((r) => keys.recordingLive(r.id)));
    const gone = old.filter((_, i) => alive[i] === null).map((r) => r.id);
    for (const id of gone) {
      await history.execute(
        `UPDATE recordings SET state = 'incomplete', reason = $2,
           stopped_at = coalesce(stopped_at, updated_at)
         WHERE id = $1 AND state = 'recording'`,
        [
          id,
          "the process recording it stopped answering (it crashed or was killed); the video " +
          "holds what was written until then",
        ],
      );
      log.info("recording marked incomplete: its process is gone", { recording: id });
    }
    return gone;
  };

  const retention = async () => {
    if (config.recordingRetentionDays <= 0) return;
    const { removed, bytes } = await clean(config.recordingRetentionDays * 86_400_000);
    if (removed.length) {
      log.info("deleted recordings past retention", {
        count: removed.length,
        mb: toMb(bytes),
        days: config.recordingRetentionDays,
      });
    }
  };

  const guarded = (what: string, work: () => Promise<unknown>) => {
    let busy = false;
    return async () => {
      if (busy) return;
      busy = true;
      try {
        await work();
      } catch (err) {
        log.warn(`${what} failed`, { error: errorMessage(err) });
      } finally {
        busy = false;
      }
    };
  };
  const staleTick = guarded("marking abandoned recordings", sweepStale);
  const retentionTick = guarded("recording retention", retention);
  retentionTick();
  const timers = [
    setInterval(staleTick, STALE_SWEEP_MS),
    setInterval(retentionTick, RETENTION_EVERY_MS),
  ];

  return {
    async list(filter) {
      const params: DuckDBValue[] = [];
      const where: string[] = [];
      const bind = (v: DuckDBValue) => (params.push(v), `$${params.length}`);
      if (filter.session_id) where.push(`session_id = ${bind(filter.session_id)}`);
      if (filter.state) where.push(`state = ${bind(filter.state)}`);
      if (filter.since) where.push(`started_at >= ${bind(tsValue(Date.parse(filter.since)))}`);
      const cursor = filter.cursor ? decodeCursor(filter.cursor) : null;
      if (cursor) {
        const t = bind(tsValue(cursor.createdAtMs));
        where.push(`(started_at < ${t} OR (started_at = ${t} AND id < ${bind(cursor.id)}))`);
      }
      const rows = await history.query(
        `${SELECT} ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
         ORDER BY started_at DESC, id DESC LIMIT ${bind(filter.limit + 1)}`,
        params,
      );
      const last = rows.length > filter.limit ? rows[filter.limit - 1] : undefined;
      return {
        recordings: rows.slice(0, filter.limit).map(view),
        next_cursor: last ? encodeCursor(Number(last.started_at), String(last.id)) : null,
      };
    },

    async get(id) {
      const rows = await history.query(`${SELECT} WHERE id = $1`, [id]);
      return rows[0] ? view(rows[0]) : null;
    },

    async timeline(id) {
      return (await rawTimeline(id)).map((data) => entry(id, data));
    },

    rawTimeline,

    summarize(entries) {
      const count = (match: (e: TimelineEntry) => boolean) => entries.filter(match).length;
      const input = (e: TimelineEntry) => e.input as { type?: string; action?: string } | undefined;
      const errors = entries.filter((e) =>
        e.type === "page_error" || (e.type === "console" && e.level === "error") ||
        e.type === "failed_request" || e.type === "request_blocked" ||
        e.type === "navigation_failed"
      );
      const first = entries.find((e) => e.type === "page_error") ?? errors[0];
      return {
        entries: entries.length,
        inputs: count((e) => e.type === "input" && input(e)?.action !== "move"),
        clicks: count((e) =>
          e.type === "input" && input(e)?.type === "mouse" &&
          ["click", "down", "dblclick"].includes(String(input(e)?.action))
        ),
        navigations: count((e) => e.type === "navigation"),
        tab_changes: count((e) =>
          e.type === "tab" || (e.type === "input" && input(e)?.type === "tab")
        ),
        console_messages: count((e) => e.type === "console"),
        page_errors: count((e) => e.type === "page_error"),
        failed_requests: count((e) => e.type === "failed_request"),
        errors_with_screenshot: errors.filter((e) => e.screenshot !== null).length,
        first_error: first
          ? {
            t: first.t,
            type: first.type,
            message: String(first.message ?? first.error ?? first.url ?? ""),
          }
          : null,
      };
    },

    remove,
    clean,
    sweepStale,

    async replays(id) {
      await hub.flush();
      const rows = await history.query(
        `SELECT id, status, error, epoch_ms(created_at) AS created_at,
           epoch_ms(finished_at) AS finished_at, result->'replay' AS report,
           params->'replay' AS options
         FROM jobs WHERE type = 'replay' AND (params->'replay'->>'recording_id') = $1
         ORDER BY created_at DESC LIMIT 50`,
        [id],
      );
      return rows.map((r) => ({
        replay_id: r.id,
        status: r.status,
        error: r.error ?? null,
        created_at: iso(r.created_at),
        finished_at: iso(r.finished_at),
        options: parseJson(r.options),
        report: parseJson(r.report),
      }));
    },

    close() {
      for (const t of timers) clearInterval(t);
      return Promise.resolve();
    },
  };
}
