/**
 * The reliable job queue on Redis lists. Every state change is one Lua script that also appends its
 * `status` event to the event stream, so a crash can never leave a state change without its event
 * or half a move.
 */
import { z } from "@hono/zod-openapi";
import type { Redis } from "../core/redis.ts";
import { LUA_KEYS, type RedisKeys, redisKeys } from "../core/keys.ts";

export const JOB_STATUSES = [
  "queued",
  "running",
  "retrying",
  "succeeded",
  "failed",
  "cancelled",
] as const;
export type JobStatus = typeof JOB_STATUSES[number];
export const FINAL_STATUSES: ReadonlySet<string> = new Set<JobStatus>([
  "succeeded",
  "failed",
  "cancelled",
]);

/** A job as the API returns it. Times are ISO-8601 UTC strings. */
export const JobSchema = z.object({
  id: z.string(),
  type: z.string(),
  status: z.enum(JOB_STATUSES),
  params: z.unknown(),
  result: z.unknown(),
  error: z.string().nullable(),
  attempts: z.number().int(),
  max_attempts: z.number().int(),
  timeout_s: z.number(),
  created_at: z.string().nullable(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  worker: z.string().nullable(),
}).openapi("Job");
export type JobRecord = z.infer<typeof JobSchema>;

export interface NewJob {
  id: string;
  type: string;
  params: unknown;
  maxAttempts: number;
  timeoutS: number;
}

/** A job a consumer has taken and must run. */
export interface ClaimedJob {
  id: string;
  type: string;
  params: unknown;
  attempt: number;
  maxAttempts: number;
  timeoutS: number;
  createdAtMs: number;
  /** How long it waited in the queue before this claim, by the Redis clock. */
  waitMs: number;
}

/**
 * How a run ended: `ok` stores the result; `fail` retries with backoff while attempts remain;
 * `fatal` fails without retry; `requeue` puts the job back without counting the attempt
 * (used at shutdown and when a job lost its Worker through no fault of its own).
 */
export type Outcome =
  | { id: string; kind: "ok"; result: unknown }
  | { id: string; kind: "fail" | "fatal"; error: string }
  | { id: string; kind: "requeue" };

/** Thrown when Redis cannot be reached; the API maps it to 503. */
export class QueueUnavailable extends Error {
  override name = "QueueUnavailable";
}

export interface QueueOptions {
  redis: Redis;
  prefix: string;
  /** Seconds a finished job's hash and event stream stay in Redis (history stays in DuckDB). */
  jobTtlS?: number;
  /** Approximate cap of the global event stream. */
  eventsMaxLen?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
}

const LUA_COMMON = LUA_KEYS + `
local MAXLEN = ARGV[2]
local TTL = tonumber(ARGV[3])
-- Epoch ms by the Redis clock, as text: it goes into hashes and JSON, and a Lua number would be
-- formatted anew (sprintf) at every use; arithmetic converts it back where needed.
local function nowms()
  local t = redis.call('TIME')
  return tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
end
-- One field per entry, "<job id>\t<event type>\t<event JSON>" (ids and types hold no tab): a
-- third of the strings to store, send and parse of three fields.
local function emit(id, t, ev)
  return redis.call('XADD', K_EVENTS, 'MAXLEN', '~', MAXLEN, '*', 'd', id .. '\t' .. t .. '\t' .. ev)
end
-- State changes per type and status, added to K_JOB_COUNTS in one HINCRBY per key by
-- flush_counts() at the end of the script (so a batch of 500 claims costs one write).
local COUNTS = {}
local function flush_counts()
  for k, n in pairs(COUNTS) do redis.call('HINCRBY', K_JOB_COUNTS, k, n) end
end
-- The job's state as a status event, from the snapshot fields in SNAP order (hash values:
-- already JSON-safe numbers and identifiers; free text goes through cjson for escaping). The
-- scripts that run per job get the worker's name JSON-encoded by the caller (wj), so the hot path
-- makes no cjson call.
local SNAP = { 'type', 'attempts', 'max_attempts', 'timeout_s', 'created_at', 'started_at',
  'finished_at', 'worker', 'error' }
local function status_json(status, now, h, raw_params, wj)
  return '{"type":"status","status":"' .. status .. '","ts":' .. now ..
    ',"job_type":"' .. h[1] .. '","attempts":' .. h[2] .. ',"max_attempts":' .. h[3] ..
    ',"timeout_s":' .. h[4] .. ',"created_at":' .. h[5] ..
    (h[6] and ',"started_at":' .. h[6] or '') ..
    (h[7] and ',"finished_at":' .. h[7] or '') ..
    (wj and ',"worker":' .. wj or h[8] and ',"worker":' .. cjson.encode(h[8]) or '') ..
    (h[9] and ',"error":' .. cjson.encode(h[9]) or '') ..
    (raw_params and ',"params":' .. raw_params or '') .. '}'
end
-- Appends the status event built from a snapshot already in hand and counts the change.
local function emit_snapshot(id, status, now, h, raw_params, wj)
  local ck = h[1] .. '|' .. status
  COUNTS[ck] = (COUNTS[ck] or 0) + 1
  return emit(id, 'status', status_json(status, now, h, raw_params, wj))
end
-- Appends the status event read from the job's hash and counts the change.
local function emit_status(id, status, now)
  return emit_snapshot(id, status, now, redis.call('HMGET', k_job(id), unpack(SNAP)))
end
local function finish(jk)
  redis.call('EXPIRE', jk, TTL)
end
`;

const ENQUEUE = LUA_COMMON + `
local now = nowms()
local types = {}
for i = 4, #ARGV, 5 do
  local id, typ, params = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  redis.call('HSET', k_job(id), 'id', id, 'type', typ, 'status', 'queued', 'params', params,
    'attempts', '0', 'max_attempts', ARGV[i + 3], 'timeout_s', ARGV[i + 4], 'created_at', now)
  redis.call('LPUSH', k_queue(typ), id)
  types[typ] = true
  emit_snapshot(id, 'queued', now, { typ, '0', ARGV[i + 3], ARGV[i + 4], now }, params)
end
for typ in pairs(types) do redis.call('SADD', K_TYPES, typ) end
flush_counts()
return now
`;

const CLAIM = LUA_COMMON + `
local typ, c, max, lease, wj = ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7], ARGV[8]
local q, pl = k_queue(typ), k_processing(c)
local now = nowms()
redis.call('SET', k_lease(c), '1', 'PX', lease)
redis.call('SADD', K_CONSUMERS, c)
local out = {}
local function claim(id)
  local jk = k_job(id)
  -- SNAP fields, then status, params, queued_at
  local h = redis.call('HMGET', jk, 'type', 'attempts', 'max_attempts', 'timeout_s',
    'created_at', 'started_at', 'finished_at', 'worker', 'error', 'status', 'params', 'queued_at')
  if h[10] ~= 'queued' then
    redis.call('LREM', pl, 1, id)
    return
  end
  local att = tostring(tonumber(h[2]) + 1)
  redis.call('HSET', jk, 'status', 'running', 'attempts', att, 'started_at', now, 'worker', c)
  h[2], h[6], h[8] = att, now, c
  emit_snapshot(id, 'running', now, h, nil, wj)
  local waited = now - (tonumber(h[12]) or tonumber(h[5]) or now)
  out[#out + 1] = { id, h[11], att, h[3], h[4], h[5], waited }
end
for i = 9, #ARGV do claim(ARGV[i]) end
while #out < max do
  local id = redis.call('LMOVE', q, pl, 'RIGHT', 'LEFT')
  if not id then break end
  claim(id)
end
flush_counts()
return out
`;

const COMPLETE = LUA_COMMON + `
local c, base, cap, wj = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local pl = k_processing(c)
local now = nowms()
for i = 8, #ARGV, 3 do
  local id, kind, payload = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local jk = k_job(id)
  redis.call('LREM', pl, -1, id)
  local h = redis.call('HMGET', jk, 'status', 'worker', 'type', 'attempts', 'max_attempts',
    'timeout_s', 'created_at', 'started_at', 'error')
  if h[1] == 'running' and h[2] == c then
    if kind == 'ok' then
      redis.call('HSET', jk, 'status', 'succeeded', 'result', payload, 'finished_at', now)
      if h[9] then redis.call('HDEL', jk, 'error') end
      emit(id, 'result', '{"type":"result","ts":' .. now .. ',"result":' .. payload .. '}')
      emit_snapshot(id, 'succeeded', now, { h[3], h[4], h[5], h[6], h[7], h[8], now, c }, nil, wj)
      finish(jk)
    elseif kind == 'requeue' then
      redis.call('HINCRBY', jk, 'attempts', -1)
      redis.call('HSET', jk, 'status', 'queued', 'queued_at', now)
      redis.call('HDEL', jk, 'started_at', 'worker')
      redis.call('RPUSH', k_queue(h[3]), id)
      emit_status(id, 'queued', now)
    else
      local att, maxa = tonumber(h[4]), tonumber(h[5])
      if kind == 'fail' and att < maxa then
        local delay = math.min(base * 2 ^ (att - 1), cap)
        redis.call('HSET', jk, 'status', 'retrying', 'error', payload)
        redis.call('ZADD', K_DELAYED, now + delay, id)
        emit_status(id, 'retrying', now)
      else
        redis.call('HSET', jk, 'status', 'failed', 'error', payload, 'finished_at', now)
        redis.call('LPUSH', K_DEAD, id)
        redis.call('LTRIM', K_DEAD, 0, 99999)
        emit_status(id, 'failed', now)
        finish(jk)
      end
    end
  end
end
flush_counts()
return now
`;

const PROMOTE = LUA_COMMON + `
local now = nowms()
local ids = redis.call('ZRANGEBYSCORE', K_DELAYED, '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
for _, id in ipairs(ids) do
  redis.call('ZREM', K_DELAYED, id)
  local jk = k_job(id)
  local h = redis.call('HMGET', jk, 'status', 'type')
  if h[1] == 'retrying' then
    redis.call('HSET', jk, 'status', 'queued', 'queued_at', now)
    redis.call('HDEL', jk, 'started_at', 'worker')
    redis.call('LPUSH', k_queue(h[2]), id)
    emit_status(id, 'queued', now)
  end
end
flush_counts()
return #ids
`;

const CANCEL = LUA_COMMON + `
local id = ARGV[4]
local jk = k_job(id)
local h = redis.call('HMGET', jk, 'status', 'type')
local st = h[1]
if not st then return 'missing' end
if st == 'queued' then
  redis.call('LREM', k_queue(h[2]), 0, id)
elseif st == 'retrying' then
  redis.call('ZREM', K_DELAYED, id)
elseif st == 'running' then
  redis.call('PUBLISH', K_CONTROL, 'cancel ' .. id)
else
  return st
end
local now = nowms()
redis.call('HSET', jk, 'status', 'cancelled', 'finished_at', now)
finish(jk)
emit_status(id, 'cancelled', now)
flush_counts()
return 'ok'
`;

const HEARTBEAT = LUA_COMMON + `
local c = ARGV[4]
redis.call('SET', k_lease(c), '1', 'PX', ARGV[5])
redis.call('SADD', K_CONSUMERS, c)
local gone = {}
for _, id in ipairs(redis.call('LRANGE', k_processing(c), 0, -1)) do
  local h = redis.call('HMGET', k_job(id), 'status', 'worker')
  if h[1] ~= 'running' or h[2] ~= c then gone[#gone + 1] = id end
end
return gone
`;

const REAP = LUA_COMMON + `
local c = ARGV[4]
if ARGV[5] == 'retire' then redis.call('DEL', k_lease(c)) end
if redis.call('EXISTS', k_lease(c)) == 1 then return -1 end
local pl = k_processing(c)
local now = nowms()
local n = 0
for _, id in ipairs(redis.call('LRANGE', pl, 0, -1)) do
  local jk = k_job(id)
  local h = redis.call('HMGET', jk, 'status', 'worker', 'type', 'attempts', 'max_attempts')
  if h[1] == 'queued' then
    redis.call('RPUSH', k_queue(h[3]), id)
    n = n + 1
  elseif h[1] == 'running' and h[2] == c then
    local msg = 'worker ' .. c .. ' stopped responding (its lease expired)'
    if tonumber(h[4]) >= tonumber(h[5]) then
      redis.call('HSET', jk, 'status', 'failed', 'error', msg, 'finished_at', now)
      redis.call('LPUSH', K_DEAD, id)
      emit_status(id, 'failed', now)
      finish(jk)
    else
      redis.call('HSET', jk, 'status', 'retrying', 'error', msg)
      redis.call('ZADD', K_DELAYED, now, id)
      emit_status(id, 'retrying', now)
    end
    n = n + 1
  end
end
redis.call('DEL', pl)
redis.call('SREM', K_CONSUMERS, c)
flush_counts()
return n
`;

const GIVE_BACK = LUA_KEYS + `
local c, typ, id = ARGV[2], ARGV[3], ARGV[4]
if redis.call('LREM', k_processing(c), 1, id) == 1 then
  redis.call('RPUSH', k_queue(typ), id)
end
return 1
`;

const EMIT = LUA_COMMON + `
for i = 4, #ARGV, 3 do emit(ARGV[i], ARGV[i + 1], ARGV[i + 2]) end
return 1
`;

const SCRIPTS = {
  spEnqueue: ENQUEUE,
  spClaim: CLAIM,
  spComplete: COMPLETE,
  spPromote: PROMOTE,
  spCancel: CANCEL,
  spHeartbeat: HEARTBEAT,
  spReap: REAP,
  spGiveBack: GIVE_BACK,
  spEmit: EMIT,
} as const;

type ScriptName = keyof typeof SCRIPTS;
type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;

/** Registers the Lua scripts on a connection (idempotent; ioredis caches them by SHA). */
export function defineScripts(redis: Redis): Record<ScriptName, ScriptFn> {
  const r = redis as unknown as Record<string, ScriptFn | undefined>;
  for (const [name, lua] of Object.entries(SCRIPTS)) {
    if (!r[name]) redis.defineCommand(name, { numberOfKeys: 0, lua });
  }
  return r as Record<ScriptName, ScriptFn>;
}

function toIso(ms: unknown): string | null {
  const n = Number(ms);
  return ms === undefined || ms === null || ms === "" || !Number.isFinite(n)
    ? null
    : new Date(n).toISOString();
}

function parseJson(raw: unknown): unknown {
  if (raw === undefined || raw === null || raw === "") return null;
  try {
    return JSON.parse(String(raw));
  } catch {
    return raw;
  }
}

/**
 * A job record from stored fields — a Redis job hash (all strings) or a DuckDB row — where times
 * are epoch milliseconds and params/result are JSON text.
 */
export function toJobRecord(f: Record<string, unknown>): JobRecord {
  const text = (v: unknown) => (v === undefined || v === null ? null : String(v));
  return {
    id: String(f.id ?? ""),
    type: String(f.type ?? ""),
    status: String(f.status ?? "queued") as JobStatus,
    params: parseJson(f.params),
    result: parseJson(f.result),
    error: text(f.error),
    attempts: Number(f.attempts ?? 0),
    max_attempts: Number(f.max_attempts ?? 0),
    timeout_s: Number(f.timeout_s ?? 0),
    created_at: toIso(f.created_at),
    started_at: toIso(f.started_at),
    finished_at: toIso(f.finished_at),
    worker: text(f.worker),
  };
}

/** Wraps connection failures into QueueUnavailable so callers can answer 503. */
async function guard<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    if (
      /Stream isn't writeable|enableOfflineQueue|Connection is closed|ECONNREFUSED|max retries|ETIMEDOUT|ECONNRESET|EPIPE|Reached the max retries/i
        .test(msg)
    ) {
      throw new QueueUnavailable(`Redis is unreachable: ${msg}`);
    }
    throw err;
  }
}

export interface Queue {
  keys: RedisKeys;
  /** The command connection (fails fast while Redis is away). */
  redis: Redis;
  enqueue(jobs: NewJob[]): Promise<number>;
  /**
   * Tells `listener` of the jobs this process enqueues, just before they are sent to Redis: a
   * worker pool in the same process starts their Worker while they go through the queue.
   */
  onEnqueued(listener: (jobs: NewJob[]) => void): () => void;
  get(id: string): Promise<JobRecord | null>;
  /** "ok" when this call cancelled the job, "missing", or the status it already had. */
  cancel(id: string): Promise<"ok" | "missing" | JobStatus>;
  claim(
    type: string,
    consumer: string,
    max: number,
    leaseMs: number,
    preTaken?: string[],
  ): Promise<ClaimedJob[]>;
  /** Blocks up to `timeoutS` for one id of `type`, moving it into the consumer's processing list. */
  take(blocking: Redis, type: string, consumer: string, timeoutS: number): Promise<string | null>;
  giveBack(consumer: string, type: string, id: string): Promise<void>;
  complete(consumer: string, outcomes: Outcome[]): Promise<void>;
  heartbeat(consumer: string, leaseMs: number): Promise<string[]>;
  reap(): Promise<number>;
  /** Gives up a consumer's lease at shutdown and puts back whatever it still holds. */
  retire(consumer: string): Promise<number>;
  promote(limit?: number): Promise<number>;
  /** Appends events (job id, event type, event JSON) to the event streams. */
  emit(events: Array<[jobId: string, type: string, eventJson: string]>): Promise<void>;
  depth(): Promise<Record<string, number>>;
  ping(): Promise<boolean>;
}

/**
 * - Producers LPUSH ids onto `<prefix>:queue:<type>`; a job's state is a hash.
 * - Consumers move ids atomically into their own processing list (BLMOVE / LMOVE) and hold a lease
 *   key renewed by heartbeat; an id leaves the processing list only when the job ends.
 * - A reaper puts back the jobs of consumers whose lease expired (process killed, machine gone).
 */
export function createQueue(options: QueueOptions): Queue {
  const { redis } = options;
  const keys = redisKeys(options.prefix);
  const s = defineScripts(redis);
  const common = [options.prefix, options.eventsMaxLen ?? 1_000_000, options.jobTtlS ?? 86_400];
  const backoffBase = options.backoffBaseMs ?? 1_000;
  const backoffMax = options.backoffMaxMs ?? 60_000;
  const enqueued = new Set<(jobs: NewJob[]) => void>();

  return {
    keys,
    redis,
    enqueue: (jobs) =>
      guard(async () => {
        if (jobs.length === 0) return 0;
        // Told first: what a listener starts (a Worker, whose module then loads on its own thread)
        // takes longer than the enqueue's and the claim's round trips that follow.
        for (const listener of enqueued) {
          try {
            listener(jobs);
          } catch { /* a hint only: the job is queued either way */ }
        }
        const args: (string | number)[] = [...common];
        for (const j of jobs) {
          args.push(j.id, j.type, JSON.stringify(j.params ?? {}), j.maxAttempts, j.timeoutS);
        }
        return Number(await s.spEnqueue(...args));
      }),

    onEnqueued(listener) {
      enqueued.add(listener);
      return () => enqueued.delete(listener);
    },

    get: (id) =>
      guard(async () => {
        const h = await redis.hgetall(keys.job(id));
        return h && h.id ? toJobRecord(h) : null;
      }),

    cancel: (id) =>
      guard(async () => (await s.spCancel(...common, id)) as "ok" | "missing" | JobStatus),

    claim: (type, consumer, max, leaseMs, preTaken = []) =>
      guard(async () => {
        const rows = (await s.spClaim(
          ...common,
          type,
          consumer,
          Math.max(max, preTaken.length),
          leaseMs,
          JSON.stringify(consumer),
          ...preTaken,
        )) as Array<[string, string, number, string, string, string, number]>;
        return rows.map(([id, params, attempt, maxAttempts, timeoutS, createdAt, waited]) => ({
          id,
          type,
          params: parseJson(params),
          attempt: Number(attempt),
          maxAttempts: Number(maxAttempts),
          timeoutS: Number(timeoutS),
          createdAtMs: Number(createdAt),
          waitMs: Number(waited),
        }));
      }),

    take: (blocking, type, consumer, timeoutS) =>
      blocking.blmove(keys.queue(type), keys.processing(consumer), "RIGHT", "LEFT", timeoutS),

    giveBack: async (consumer, type, id) => {
      await s.spGiveBack(options.prefix, consumer, type, id);
    },

    complete: (consumer, outcomes) =>
      guard(async () => {
        if (outcomes.length === 0) return;
        const args: (string | number)[] = [
          ...common,
          consumer,
          backoffBase,
          backoffMax,
          JSON.stringify(consumer),
        ];
        for (const o of outcomes) {
          const payload = o.kind === "ok"
            ? JSON.stringify(o.result ?? null)
            : o.kind === "requeue"
            ? ""
            : o.error;
          args.push(o.id, o.kind, payload);
        }
        await s.spComplete(...args);
      }),

    heartbeat: (consumer, leaseMs) =>
      guard(async () => (await s.spHeartbeat(...common, consumer, leaseMs)) as string[]),

    reap: () =>
      guard(async () => {
        const consumers = await redis.smembers(keys.consumers);
        let moved = 0;
        for (const c of consumers) {
          const n = Number(await s.spReap(...common, c));
          if (n > 0) moved += n;
        }
        return moved;
      }),

    retire: (consumer) => guard(async () => Number(await s.spReap(...common, consumer, "retire"))),

    promote: (limit = 500) => guard(async () => Number(await s.spPromote(...common, limit))),

    emit: (events) =>
      guard(async () => {
        if (events.length === 0) return;
        const args: (string | number)[] = [...common];
        for (const [id, type, ev] of events) args.push(id, type, ev);
        await s.spEmit(...args);
      }),

    depth: () =>
      guard(async () => {
        const types = await redis.smembers(keys.types);
        const pipe = redis.pipeline();
        for (const t of types) pipe.llen(keys.queue(t));
        const res = (await pipe.exec()) ?? [];
        const out: Record<string, number> = {};
        types.forEach((t, i) => (out[t] = Number(res[i]?.[1] ?? 0)));
        return out;
      }),

    ping: async () => {
      try {
        return (await redis.ping()) === "PONG";
      } catch {
        return false;
      }
    },
  };
}

/** A sortable, opaque job id. */
export function newJobId(): string {
  const time = Date.now().toString(36).padStart(9, "0");
  const rand = crypto.getRandomValues(new Uint8Array(8));
  let tail = "";
  for (const b of rand) tail += (b % 36).toString(36);
  return `job_${time}${tail}`;
}
