/**
 * Job history in DuckDB: one file, owned by one process. `openHistory(path)` applies the
 * migrations and returns the writer (`applyEvents`, batched through appenders and one upsert per
 * batch) and the read side used by the API (jobs, events, samples, stats, export).
 */
import {
  type DuckDBAppender,
  type DuckDBConnection,
  DuckDBInstance,
  DuckDBTimestampTZValue,
  type DuckDBValue,
} from "@duckdb/node-api";
import { MIGRATIONS } from "./migrations.ts";
import { type JobRecord, toJobRecord } from "../jobs/queue.ts";
import { type JobEvent, parseEvent, seqToId } from "../jobs/events.ts";
import { mayHoldLoneSurrogate, safeData, safeString } from "../core/strings.ts";

/** One entry read from the global event stream. */
export interface StreamEntry {
  seq: bigint;
  jobId: string;
  /** The event's type (also inside `json`). */
  type: string;
  /** The event body as JSON text (`{ "type", "ts", ... }`). */
  json: string;
}

export interface JobFilter {
  type?: string | undefined;
  status?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
}

export interface JobPage {
  jobs: JobRecord[];
  next_cursor: string | null;
}

export interface Sample {
  ts: string;
  cpu_cores: number | null;
  mem_used_bytes: number | null;
  proc_mem_bytes: number | null;
  disk_bytes: number | null;
  net_rx_bytes: number | null;
  net_tx_bytes: number | null;
  [field: string]: unknown;
}

export interface Stats {
  total: number;
  by_type_status: Array<{ type: string; status: string; count: number }>;
  duration_by_type: Array<
    { type: string; finished: number; p50_s: number | null; p95_s: number | null }
  >;
  per_day: Array<{ day: string; type: string; count: number }>;
}

export type Row = Record<string, unknown>;

/**
 * A table kept from events, written in the same transaction as the events themselves (so a
 * crash never leaves one without the other). `sql` reads the batch as `{events}`, a relation of
 * (job_id, seq, data JSON); it runs for batches holding an entry for which `wants` is true, and
 * must be idempotent (a batch may be written again after a crash).
 */
export interface EventProjection {
  name: string;
  wants(type: string, json: string): boolean;
  sql: string;
}

export interface HistoryOptions {
  projections?: EventProjection[];
  /**
   * DuckDB's worker threads (default 1). The writer runs many small batches, where more threads
   * cost more CPU in coordination than they save; a large read gains from more.
   */
  threads?: number;
}

export interface History {
  path: string;
  /**
   * Writes a batch of stream entries; `replay` first removes rows of the same events. With
   * `stream`, the batch's last entry becomes that stream's committed offset in the same
   * transaction (see `streamOffset`).
   */
  applyEvents(entries: StreamEntry[], options?: ApplyOptions): Promise<void>;
  /** The last entry of `stream` committed with `applyEvents`, or null before the first. */
  streamOffset(stream: string): Promise<bigint | null>;
  getJob(id: string): Promise<JobRecord | null>;
  listJobs(filter: JobFilter & { limit: number; cursor?: string | undefined }): Promise<JobPage>;
  events(jobId: string, types?: string[]): Promise<JobEvent[]>;
  samples(jobId: string): Promise<Sample[]>;
  stats(): Promise<Stats>;
  /** Writes the filtered jobs to `file` as CSV or Parquet. */
  exportJobs(filter: JobFilter, format: "csv" | "parquet", file: string): Promise<number>;
  /** Runs a read query (numbers come back as JS numbers, timestamps as epoch ms). */
  query<T = Row>(sql: string, params?: DuckDBValue[]): Promise<T[]>;
  /** Runs a write statement on the writer connection. */
  execute(sql: string, params?: DuckDBValue[]): Promise<void>;
  /** Appends rows to a table through the writer connection's appender (fine for low rates). */
  append(table: string, fill: (appender: DuckDBAppender) => void): Promise<void>;
  ping(): Promise<boolean>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface ApplyOptions {
  replay?: boolean;
  stream?: string;
}

/** Serialises work on one connection (DuckDB runs one statement at a time per connection). */
function serial() {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(work: () => Promise<T>): Promise<T> => {
    const next = tail.then(work, work);
    tail = next.catch(() => {});
    return next;
  };
}

export function tsValue(ms: number): DuckDBTimestampTZValue {
  return new DuckDBTimestampTZValue(BigInt(Math.round(ms)) * 1000n);
}

function plain(value: unknown): unknown {
  if (typeof value === "bigint") return Number(value);
  return value;
}

function iso(ms: unknown): string | null {
  return ms === null || ms === undefined ? null : new Date(Number(ms)).toISOString();
}

function json(text: unknown): unknown {
  if (text === null || text === undefined) return null;
  try {
    return JSON.parse(String(text));
  } catch {
    return text;
  }
}

const JOB_COLUMNS = `id, type, status, params, result, error, attempts, max_attempts, timeout_s,
  epoch_ms(created_at) AS created_at, epoch_ms(started_at) AS started_at,
  epoch_ms(finished_at) AS finished_at, worker`;

function filterSql(filter: JobFilter, params: DuckDBValue[]): string[] {
  const where: string[] = [];
  if (filter.type) {
    params.push(filter.type);
    where.push(`type = $${params.length}`);
  }
  if (filter.status) {
    params.push(filter.status);
    where.push(`status = $${params.length}`);
  }
  if (filter.since) {
    params.push(tsValue(Date.parse(filter.since)));
    where.push(`created_at >= $${params.length}`);
  }
  if (filter.until) {
    params.push(tsValue(Date.parse(filter.until)));
    where.push(`created_at < $${params.length}`);
  }
  return where;
}

export function encodeCursor(createdAtMs: number, id: string): string {
  return btoa(`${createdAtMs}:${id}`).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
}

/** Returns null for a cursor that is not one of ours. */
export function decodeCursor(cursor: string): { createdAtMs: number; id: string } | null {
  try {
    const text = atob(cursor.replace(/-/g, "+").replace(/_/g, "/"));
    const i = text.indexOf(":");
    const ms = Number(text.slice(0, i));
    const id = text.slice(i + 1);
    if (i < 1 || !Number.isFinite(ms) || !id) return null;
    return { createdAtMs: ms, id };
  } catch {
    return null;
  }
}

/** The merged state of one job within a batch, as written to the jobs NDJSON file. */
interface StageRow {
  id: string;
  type: string | null;
  status: string | null;
  params: unknown;
  result: unknown;
  error: string | null;
  attempts: number | null;
  max_attempts: number | null;
  timeout_s: number | null;
  created_at: number | null;
  started_at: number | null;
  finished_at: number | null;
  worker: string | null;
}

const NDJSON_COLUMNS = `{
  id: 'VARCHAR', type: 'VARCHAR', status: 'VARCHAR', params: 'JSON', result: 'JSON',
  error: 'VARCHAR', attempts: 'INTEGER', max_attempts: 'INTEGER', timeout_s: 'DOUBLE',
  created_at: 'DOUBLE', started_at: 'DOUBLE', finished_at: 'DOUBLE', worker: 'VARCHAR'
}`;

/** The jobs rows of a staged NDJSON file, in table column order. */
const staged = (file: string) => `
  SELECT id, type, status, params, result, error, attempts, max_attempts, timeout_s,
    to_timestamp(created_at / 1000), to_timestamp(started_at / 1000),
    to_timestamp(finished_at / 1000), worker
  FROM read_ndjson(${file}, columns = ${NDJSON_COLUMNS})`;

/** How a state change merges with the stored row: only what a change can touch. */
const STATE_CHANGE = `
  status = coalesce(excluded.status, jobs.status),
  result = coalesce(excluded.result, jobs.result),
  error = CASE WHEN excluded.status IS NULL THEN jobs.error ELSE excluded.error END,
  attempts = coalesce(excluded.attempts, jobs.attempts),
  started_at = CASE WHEN excluded.status IS NULL THEN jobs.started_at
    ELSE excluded.started_at END,
  finished_at = CASE WHEN excluded.status IS NULL THEN jobs.finished_at
    ELSE excluded.finished_at END,
  worker = CASE WHEN excluded.status IS NULL THEN jobs.worker ELSE excluded.worker END`;

/** How a replayed creation merges with the stored row (idempotent). */
const UPSERT = `
  type = coalesce(excluded.type, jobs.type),
  params = coalesce(excluded.params, jobs.params),
  max_attempts = coalesce(excluded.max_attempts, jobs.max_attempts),
  timeout_s = coalesce(excluded.timeout_s, jobs.timeout_s),
  created_at = coalesce(excluded.created_at, jobs.created_at),${STATE_CHANGE}`;

/** How read_csv reads the batch files: job id, seq, event type, event JSON; tabs, no quoting. */
const TSV = `delim = '\t', quote = '', escape = '', header = false, ` +
  `columns = { j: 'VARCHAR', s: 'BIGINT', t: 'VARCHAR', e: 'VARCHAR' }`;

/** A field of a tab-separated batch line. */
const clean = (text: string) => /[\t\n\r]/.test(text) ? text.replace(/[\t\n\r]/g, " ") : text;

/** The note a stored event carries when some of its text had to be replaced. */
export const SANITIZED_NOTE = "invalid text (lone UTF-16 surrogates) replaced with U+FFFD";

/**
 * An event's JSON as DuckDB can store it: one line (raw tabs and newlines re-encoded), no
 * escaped lone surrogate (DuckDB's JSON reader refuses the whole value: those parts become
 * U+FFFD and the event gets a `sanitized` note), and an object (unreadable text is kept as a
 * string inside one).
 */
export function storableJson(json: string, type: string): string {
  const surrogates = mayHoldLoneSurrogate(json);
  if (!surrogates && !/[\t\n\r]/.test(json)) return json;
  let body: unknown;
  try {
    body = JSON.parse(json);
  } catch {
    return JSON.stringify({ type, unreadable: safeString(json) });
  }
  if (surrogates) {
    const safe = safeData(body);
    if (safe !== body && typeof safe === "object" && safe !== null && !Array.isArray(safe)) {
      return JSON.stringify({ ...safe, sanitized: SANITIZED_NOTE });
    }
    body = safe;
  }
  return JSON.stringify(body);
}

const emptyRow = (id: string): StageRow => ({
  id,
  type: null,
  status: null,
  params: null,
  result: null,
  error: null,
  attempts: null,
  max_attempts: null,
  timeout_s: null,
  created_at: null,
  started_at: null,
  finished_at: null,
  worker: null,
});

const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

export async function openHistory(path: string, options: HistoryOptions = {}): Promise<History> {
  const projections = options.projections ?? [];
  const instance = await DuckDBInstance.create(path, { threads: String(options.threads ?? 1) });
  const writer = await instance.connect();
  const reader = await instance.connect();
  const onWriter = serial();
  const onReader = serial();

  await migrate(writer);

  const read = <T = Row>(sql: string, params: DuckDBValue[] = []): Promise<T[]> =>
    onReader(async () => {
      const result = await reader.runAndReadAll(sql, params);
      return result.getRowObjectsJS().map((row) => {
        const out: Row = {};
        for (const [k, v] of Object.entries(row)) out[k] = plain(v);
        return out as T;
      });
    });

  // Batches reach DuckDB as files (tab-separated events, NDJSON job rows) loaded with read_csv /
  // read_ndjson: one bulk C++ parse per batch instead of one N-API call per value (an appender
  // costs ~2.5 µs per value under Deno, which capped the platform at a few thousand jobs/s).
  const batchDir = `${path === ":memory:" ? Deno.makeTempDirSync() : path + ".batches"}`;
  Deno.mkdirSync(batchDir, { recursive: true });
  let batchNo = 0;

  const applyEvents = (entries: StreamEntry[], options: ApplyOptions = {}) =>
    onWriter(async () => {
      if (entries.length === 0) return;
      const jobs = new Map<string, StageRow>();
      const eventLines: string[] = [];
      const sampleLines: string[] = [];
      const projecting = new Set<EventProjection>();
      for (const entry of entries) {
        const kind = safeString(entry.type);
        const json = storableJson(entry.json, kind);
        const line = `${clean(safeString(entry.jobId))}\t${entry.seq}\t${clean(kind)}\t${json}`;
        if (kind === "sample") {
          sampleLines.push(line);
          continue;
        }
        eventLines.push(line);
        for (const p of projections) if (p.wants(kind, json)) projecting.add(p);
        if (kind !== "status" && kind !== "result") continue;
        let body: Record<string, unknown>;
        try {
          body = JSON.parse(json);
        } catch {
          continue;
        }
        // An event stored as text (see the history writer) changes no job row.
        if (typeof body !== "object" || body === null) continue;
        if (kind === "status" ? typeof body.status !== "string" : !("result" in body)) continue;
        let row = jobs.get(entry.jobId);
        if (!row) jobs.set(entry.jobId, row = emptyRow(entry.jobId));
        if (kind === "result") {
          row.result = body.result ?? null;
          continue;
        }
        row.type = (body.job_type as string) ?? row.type;
        row.status = String(body.status);
        row.error = (body.error as string) ?? null;
        row.attempts = num(body.attempts);
        row.max_attempts = num(body.max_attempts);
        row.timeout_s = num(body.timeout_s);
        row.created_at = num(body.created_at) ?? row.created_at;
        row.started_at = num(body.started_at);
        row.finished_at = num(body.finished_at);
        row.worker = (body.worker as string) ?? null;
        if (body.params !== undefined) row.params = body.params;
      }

      const stem = `${batchDir}/${Date.now()}-${batchNo++}`;
      const files: string[] = [];
      const write = async (name: string, lines: string[]) => {
        if (lines.length === 0) return null;
        const file = `${stem}-${name}`;
        await Deno.writeTextFile(file, lines.join("\n"));
        files.push(file);
        return `'${file.replaceAll("'", "''")}'`;
      };
      const eventsFile = await write("events.tsv", eventLines);
      const samplesFile = await write("samples.tsv", sampleLines);
      const created: StageRow[] = [];
      const changes: StageRow[] = [];
      for (const row of jobs.values()) (row.params === null ? changes : created).push(row);
      const jobsFile = await write("jobs.ndjson", created.map((r) => JSON.stringify(r)));
      const changesFile = await write("changes.ndjson", changes.map((r) => JSON.stringify(r)));

      await writer.run("BEGIN TRANSACTION");
      try {
        if (options.replay) {
          const seqs = entries.map((e) => e.seq.toString()).join(",");
          await writer.run(`DELETE FROM job_events WHERE seq IN (${seqs})`);
          await writer.run(`DELETE FROM metric_samples WHERE seq IN (${seqs})`);
        }
        if (jobsFile) {
          // Jobs created in this batch. A replay may repeat one: then it merges.
          await writer.run(`
            INSERT INTO jobs ${staged(jobsFile)}
            ${options.replay ? `ON CONFLICT (id) DO UPDATE SET ${UPSERT}` : ""}
          `);
        }
        if (changesFile) {
          // Jobs created in an earlier batch (or whose creation DuckDB refused): merged.
          await writer.run(`
            INSERT INTO jobs ${staged(changesFile)}
            ON CONFLICT (id) DO UPDATE SET ${STATE_CHANGE}
          `);
        }
        if (eventsFile) {
          await writer.run(`
            INSERT INTO job_events (job_id, seq, type, data)
            SELECT j, s, t, e FROM read_csv(${eventsFile}, ${TSV})`);
          const batch = `(SELECT j AS job_id, s AS seq, e::JSON AS data ` +
            `FROM read_csv(${eventsFile}, ${TSV}))`;
          for (const p of projecting) await writer.run(p.sql.replaceAll("{events}", batch));
        }
        if (samplesFile) {
          await writer.run(`
            INSERT INTO metric_samples
            SELECT j, s, to_timestamp((e->>'ts')::DOUBLE / 1000), (e->>'cpu_cores')::DOUBLE,
              (e->>'mem_used_bytes')::BIGINT, (e->>'proc_mem_bytes')::BIGINT,
              (e->>'disk_bytes')::BIGINT, (e->>'net_rx_bytes')::BIGINT,
              (e->>'net_tx_bytes')::BIGINT, e
            FROM (SELECT j, s, e::JSON AS e FROM read_csv(${samplesFile}, ${TSV}))`);
        }
        if (options.stream !== undefined) {
          let last = entries[0]!.seq;
          for (const e of entries) if (e.seq > last) last = e.seq;
          await writer.run(
            `INSERT INTO stream_offsets VALUES ($1, $2)
             ON CONFLICT (stream) DO UPDATE SET seq = greatest(stream_offsets.seq, excluded.seq)`,
            [options.stream, last],
          );
        }
        await writer.run("COMMIT");
      } catch (err) {
        await writer.run("ROLLBACK").catch(() => {});
        throw err;
      } finally {
        for (const f of files) await Deno.remove(f).catch(() => {});
      }
    });

  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      await onWriter(async () => {});
      await onReader(async () => {});
      writer.closeSync();
      reader.closeSync();
      instance.closeSync();
    })();

  return {
    path,
    applyEvents,

    async streamOffset(stream) {
      const rows = await read<{ seq: string }>(
        "SELECT seq::VARCHAR AS seq FROM stream_offsets WHERE stream = $1",
        [stream],
      );
      return rows[0] ? BigInt(rows[0].seq) : null;
    },

    async getJob(id) {
      const rows = await read(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id = $1`, [id]);
      return rows[0] ? toJobRecord(rows[0]) : null;
    },

    async listJobs(filter) {
      const params: DuckDBValue[] = [];
      const where = filterSql(filter, params);
      if (filter.cursor) {
        const c = decodeCursor(filter.cursor);
        if (c) {
          params.push(tsValue(c.createdAtMs), c.id);
          const t = `$${params.length - 1}`;
          const i = `$${params.length}`;
          where.push(`(created_at < ${t} OR (created_at = ${t} AND id < ${i}))`);
        }
      }
      params.push(filter.limit + 1);
      const rows = await read(
        `SELECT ${JOB_COLUMNS} FROM jobs ${where.length ? "WHERE " + where.join(" AND ") : ""}
         ORDER BY created_at DESC NULLS LAST, id DESC LIMIT $${params.length}`,
        params,
      );
      const jobs = rows.slice(0, filter.limit).map(toJobRecord);
      const last = rows.length > filter.limit ? rows[filter.limit - 1] : undefined;
      return {
        jobs,
        next_cursor: last ? encodeCursor(Number(last.created_at ?? 0), String(last.id)) : null,
      };
    },

    async events(jobId, types) {
      const params: DuckDBValue[] = [jobId];
      let where = "job_id = $1";
      if (types?.length) {
        where += ` AND type IN (${
          types.map((t) => (params.push(t), `$${params.length}`)).join(",")
        })`;
      }
      // seq exceeds 2^53, so it is read back exactly from its text form.
      const rows = await read<{ seq: string; data: string }>(
        `SELECT seq::VARCHAR AS seq, data FROM job_events WHERE ${where} ORDER BY job_events.seq`,
        params,
      );
      return rows.map((r) => parseEvent(seqToId(BigInt(r.seq)), jobId, r.data));
    },

    async samples(jobId) {
      const rows = await read<{ data: string }>(
        `SELECT data FROM metric_samples WHERE job_id = $1 ORDER BY seq`,
        [jobId],
      );
      return rows.map((r) => {
        const body = json(r.data) as Record<string, unknown>;
        const { type: _type, ...rest } = body;
        return { ...rest, ts: iso(body.ts) } as Sample;
      });
    },

    async stats() {
      const byTypeStatus = await read<{ type: string; status: string; count: number }>(
        `SELECT type, status, count(*) AS count FROM jobs GROUP BY ALL ORDER BY type, status`,
      );
      const durations = await read<
        { type: string; finished: number; p50_s: number | null; p95_s: number | null }
      >(
        `SELECT type, count(*) AS finished,
           quantile_cont(epoch(finished_at) - epoch(started_at), 0.5) AS p50_s,
           quantile_cont(epoch(finished_at) - epoch(started_at), 0.95) AS p95_s
         FROM jobs WHERE finished_at IS NOT NULL AND started_at IS NOT NULL
         GROUP BY type ORDER BY type`,
      );
      const perDay = await read<{ day: string; type: string; count: number }>(
        `SELECT strftime(date_trunc('day', created_at AT TIME ZONE 'UTC'), '%Y-%m-%d') AS day,
           type, count(*) AS count
         FROM jobs WHERE created_at IS NOT NULL GROUP BY ALL ORDER BY day DESC, type LIMIT 1000`,
      );
      return {
        total: byTypeStatus.reduce((sum, r) => sum + r.count, 0),
        by_type_status: byTypeStatus,
        duration_by_type: durations,
        per_day: perDay,
      };
    },

    async exportJobs(filter, format, file) {
      const params: DuckDBValue[] = [];
      const where = filterSql(filter, params);
      const select = `SELECT id, type, status, params::VARCHAR AS params,
          result::VARCHAR AS result, error, attempts, max_attempts, timeout_s,
          created_at, started_at, finished_at, worker
        FROM jobs ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY created_at DESC`;
      const opts = format === "csv" ? "FORMAT CSV, HEADER" : "FORMAT PARQUET";
      const quoted = `'${file.replaceAll("'", "''")}'`;
      const rows = await onReader(async () => {
        const res = await reader.runAndReadAll(`COPY (${select}) TO ${quoted} (${opts})`, params);
        return Number(res.getRowsJS()[0]?.[0] ?? 0);
      });
      return rows;
    },

    query: read,

    execute: (sql, params = []) =>
      onWriter(async () => {
        await writer.run(sql, params);
      }),

    append: (table, fill) =>
      onWriter(async () => {
        const a = await writer.createAppender(table);
        fill(a);
        a.flushSync();
        a.closeSync();
      }),

    async ping() {
      try {
        await read("SELECT 1");
        return true;
      } catch {
        return false;
      }
    },

    close,
    [Symbol.asyncDispose]: close,
  };
}

async function migrate(con: DuckDBConnection): Promise<void> {
  await con.run(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMPTZ DEFAULT current_timestamp)`);
  const done = new Set(
    (await con.runAndReadAll("SELECT version FROM schema_migrations")).getRowsJS().map((r) =>
      Number(r[0])
    ),
  );
  for (const m of [...MIGRATIONS].sort((a, b) => a.version - b.version)) {
    if (done.has(m.version)) continue;
    await con.run("BEGIN TRANSACTION");
    try {
      await con.run(m.sql);
      await con.run("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [
        m.version,
        m.name,
      ]);
      await con.run("COMMIT");
    } catch (err) {
      await con.run("ROLLBACK").catch(() => {});
      throw new Error(
        `DuckDB migration ${m.version} (${m.name}) failed: ${(err as Error).message}`,
      );
    }
  }
}
