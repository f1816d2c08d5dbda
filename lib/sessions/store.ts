/**
 * Sessions in Redis, shared by every process: the slots of STREAMPLAY_MAX_SESSIONS, the live
 * snapshots any API process answers from, and control requests to the process running a session.
 */
import type { Redis } from "../core/redis.ts";
import { closeRedis } from "../core/redis.ts";
import { LUA_KEYS, type RedisKeys, redisKeys } from "../core/keys.ts";
import type { SessionSnapshot } from "./protocol.ts";
import { errorMessage, type Logger } from "../core/log.ts";

/** A slot whose job hash does not exist yet (queued right after) is kept this long. */
const UNQUEUED_SLOT_MS = 30_000;
const SNAPSHOT_TTL_MS = 15_000;
const ENDED_SNAPSHOT_TTL_MS = 60_000;

const RESERVE = LUA_KEYS + `
local slots, owners = P .. ':sessions:slots', P .. ':sessions:owners'
local id, max, now = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local owner, ownerMax = ARGV[5], tonumber(ARGV[6])
local entries = redis.call('ZRANGE', slots, 0, -1, 'WITHSCORES')
for i = 1, #entries, 2 do
  local sid, since = entries[i], tonumber(entries[i + 1])
  local st = redis.call('HGET', k_job(sid), 'status')
  if st == 'succeeded' or st == 'failed' or st == 'cancelled' or
     ((not st) and now - since > ${UNQUEUED_SLOT_MS}) then
    redis.call('ZREM', slots, sid)
    redis.call('HDEL', owners, sid)
  end
end
if id == '' then return redis.call('ZRANGE', slots, 0, -1) end
if redis.call('ZSCORE', slots, id) then return 1 end
if max >= 0 and redis.call('ZCARD', slots) >= max then return 0 end
if owner ~= '' and ownerMax >= 0 then
  local held = 0
  for _, sid in ipairs(redis.call('ZRANGE', slots, 0, -1)) do
    if redis.call('HGET', owners, sid) == owner then held = held + 1 end
  end
  if held >= ownerMax then return -1 end
end
redis.call('ZADD', slots, now, id)
if owner ~= '' then redis.call('HSET', owners, id, owner) end
return 1
`;

export type ControlOp =
  | "navigate"
  | "pause"
  | "resume"
  | "screenshot"
  | "stop"
  | "record_start"
  | "record_stop"
  | "stream_start"
  | "stream_stop";

/** A control reply: `status` is the HTTP status the API answers with. */
export interface ControlReply {
  ok: boolean;
  status: number;
  error?: string;
  data?: unknown;
  /** Binary payload (screenshot PNG). */
  bytes?: Uint8Array;
}

export type ControlHandler = (
  id: string,
  op: ControlOp,
  args: Record<string, unknown>,
) => Promise<ControlReply> | null;

/** Whether a slot was taken: "full" when all are held, "owner_full" when its owner's are. */
export type Reservation = "taken" | "full" | "owner_full";

export interface SessionStore {
  keys: RedisKeys;
  /**
   * Takes a slot for `id`, unless all `max` are held by live sessions or `owner` (a token's
   * name) already holds its `max` of them.
   */
  reserve(id: string, max: number, owner?: { name: string; max: number }): Promise<Reservation>;
  /** Holds a slot for a session that started without one (no limit applied). */
  hold(id: string): Promise<void>;
  release(id: string): Promise<void>;
  /** Ids holding a slot (finished ones dropped first), oldest first. */
  active(): Promise<string[]>;
  /** Publishes the live view; it expires unless refreshed (the last one, of an ended session,
   * stays a minute, bridging the moment before its job's final status is stored). */
  publish(snapshot: SessionSnapshot): Promise<void>;
  snapshot(id: string): Promise<SessionSnapshot | null>;
  snapshots(ids: string[]): Promise<Array<SessionSnapshot | null>>;
  /** Asks the process running session `id`; null when no process answered in time. */
  request(
    id: string,
    op: ControlOp,
    args: Record<string, unknown>,
    timeoutMs?: number,
  ): Promise<ControlReply | null>;
  /** Answers control requests for the sessions `handler` knows (it returns null for others). */
  serve(handler: ControlHandler): Promise<void>;
  close(): Promise<void>;
}

interface WireRequest {
  rid: string;
  from: string;
  id: string;
  op: ControlOp;
  args: Record<string, unknown>;
}

interface WireReply extends Omit<ControlReply, "bytes"> {
  rid: string;
  bytes_b64?: string;
}

/**
 * - slots: a sorted set of the session ids holding a slot. A slot is taken atomically before the
 *   session's job is queued and is free again as soon as the job is final, whoever finished it (the
 *   session itself, a cancel, the reaper after a worker died): taking a slot first drops the
 *   entries of finished jobs. A slot may name its owner (a token), which may hold at most its own
 *   number of them.
 * - snapshots: the process running a session publishes its live view every second (state, page,
 *   tabs, metrics, `ws_url`) with a short expiry.
 * - control: navigate / pause / resume / screenshot / stop (and what other features add, e.g. video
 *   streams) reach the process running the session as a request on a pub/sub channel; the reply
 *   comes back on the asking process's own channel.
 */
export function createSessionStore(options: {
  redis: Redis;
  /** A new subscriber connection (made on first use). */
  connect: () => Redis;
  prefix: string;
  log: Logger;
}): SessionStore {
  const { redis, log } = options;
  const keys = redisKeys(options.prefix);
  const node = crypto.randomUUID().slice(0, 12);
  const pending = new Map<string, (reply: ControlReply) => void>();
  let handler: ControlHandler | undefined;
  let subscriber: Redis | undefined;
  let subscribed: Promise<void> | undefined;

  const r = redis as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>;
  if (!r.spSessionReserve) {
    redis.defineCommand("spSessionReserve", { numberOfKeys: 0, lua: RESERVE });
  }
  const reserveScript = (id: string, max: number, owner = "", ownerMax = -1) =>
    r.spSessionReserve!(options.prefix, id, max, Date.now(), owner, ownerMax);

  const onMessage = (channel: string, text: string) => {
    let msg: WireRequest & WireReply;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (channel === keys.sessionReplies(node)) {
      const resolve = pending.get(msg.rid);
      if (!resolve) return;
      pending.delete(msg.rid);
      const { rid: _rid, bytes_b64, ...reply } = msg;
      resolve(bytes_b64 ? { ...reply, bytes: Uint8Array.fromBase64(bytes_b64) } : reply);
    } else if (channel === keys.sessionControl && handler) {
      const answering = handler(msg.id, msg.op, msg.args ?? {});
      if (!answering) return;
      answering.catch((err): ControlReply => ({ ok: false, status: 500, error: errorMessage(err) }))
        .then((reply) => {
          const { bytes, ...rest } = reply;
          const wire: WireReply = { ...rest, rid: msg.rid };
          if (bytes) wire.bytes_b64 = bytes.toBase64();
          return redis.publish(keys.sessionReplies(msg.from), JSON.stringify(wire));
        }).catch((err) =>
          log.warn("could not answer a session control request", { error: errorMessage(err) })
        );
    }
  };

  /** Subscribes to this process's reply channel (and the control channel when serving). */
  const listen = (channels: string[]) => {
    if (!subscriber) {
      subscriber = options.connect();
      subscriber.on("message", onMessage);
    }
    const previous = subscribed ?? Promise.resolve();
    subscribed = previous.then(async () => {
      await subscriber!.subscribe(...channels);
    });
    return subscribed;
  };
  let repliesReady: Promise<void> | undefined;

  return {
    keys,
    reserve: async (id, max, owner) => {
      const answer = Number(await reserveScript(id, max, owner?.name, owner?.max));
      return answer === 1 ? "taken" : answer === 0 ? "full" : "owner_full";
    },
    hold: async (id) => {
      await redis.zadd(keys.sessionSlots, "NX", Date.now(), id);
    },
    release: async (id) => {
      await redis.multi().zrem(keys.sessionSlots, id).hdel(keys.sessionOwners, id).exec();
    },
    active: async () => (await reserveScript("", -1)) as string[],
    publish: async (snapshot) => {
      const ended = snapshot.state === "stopped" || snapshot.state === "failed";
      const ttl = ended ? ENDED_SNAPSHOT_TTL_MS : SNAPSHOT_TTL_MS;
      await redis.set(keys.session(snapshot.id), JSON.stringify(snapshot), "PX", ttl);
    },
    snapshot: async (id) => {
      const text = await redis.get(keys.session(id));
      return text ? JSON.parse(text) as SessionSnapshot : null;
    },
    snapshots: async (ids) => {
      if (ids.length === 0) return [];
      const texts = await redis.mget(...ids.map((id) => keys.session(id)));
      return texts.map((t) => (t ? JSON.parse(t) as SessionSnapshot : null));
    },
    async request(id, op, args, timeoutMs = 15_000) {
      repliesReady ??= listen([keys.sessionReplies(node)]);
      await repliesReady;
      const rid = crypto.randomUUID();
      const reply = new Promise<ControlReply | null>((resolve) => {
        const timer = setTimeout(() => {
          pending.delete(rid);
          resolve(null);
        }, timeoutMs);
        pending.set(rid, (value) => {
          clearTimeout(timer);
          resolve(value);
        });
      });
      const request: WireRequest = { rid, from: node, id, op, args };
      const listeners = Number(await redis.publish(keys.sessionControl, JSON.stringify(request)));
      if (listeners === 0) {
        pending.get(rid)?.({ ok: false, status: 0 });
        return null;
      }
      const answer = await reply;
      return answer && answer.status === 0 ? null : answer;
    },
    async serve(h) {
      handler = h;
      await listen([keys.sessionControl]);
    },
    async close() {
      for (const resolve of pending.values()) resolve({ ok: false, status: 0 });
      pending.clear();
      if (subscriber) await closeRedis(subscriber);
    },
  };
}
