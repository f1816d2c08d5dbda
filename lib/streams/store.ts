/**
 * Video streams in Redis, shared by every process: the process that encodes a stream publishes
 * its status every second with a short expiry and keeps its id in the set of active streams, so
 * any API process can list and describe it and find the session (hence the process) to ask to
 * stop it. An ended stream's last status stays a while, so a late `GET` can say why it ended.
 */
import type { Redis } from "../core/redis.ts";
import { type RedisKeys, redisKeys } from "../core/keys.ts";
import type { Codec, ProfileName } from "../video/codecs.ts";
import type { Protocol } from "./options.ts";

const STATUS_TTL_MS = 15_000;
const ENDED_STATUS_TTL_MS = 10 * 60_000;

export type StreamState = "active" | "paused" | "stopped";
export type StreamHealth = "healthy" | "degraded" | "unhealthy";

export interface StreamMetrics {
  /** Frames per second leaving the encoder (last 2 s). */
  current_fps: number;
  /** Bits per second of encoded video (last 5 s). */
  current_bitrate: number;
  /** Frames encoded into the stream. */
  frames_sent: number;
  /** HLS/DASH: bytes served to players over HTTP; RTMP: bytes pushed to the server. */
  bytes_sent: number;
  /** HLS/DASH: distinct players that fetched a segment in the last window; RTMP: null (the
   * server counts its viewers). */
  viewer_count: number | null;
  /** Percent of the frames due in the last 5 s that reached the encoder in time. */
  buffer_health: number;
  /** Frames skipped because the encoder fell behind (the output stays live). */
  dropped_frames: number;
  /** Frames encoded per frame due, last 3 s (1 = real time). */
  encoder_speed: number;
  frames_in: number;
  frames_repeated: number;
  backlog_frames: number;
  /** Bytes of video written (segments, or the RTMP push). */
  bytes_encoded: number;
  segments_served: number;
  requests_served: number;
  restarts: number;
}

/** What `GET /api/streams/:id` answers under `status`. */
export interface StreamStatus {
  stream_id: string;
  session_id: string;
  protocol: Protocol;
  quality: ProfileName;
  codec: Codec;
  encoder: string;
  hardware: boolean;
  width: number;
  height: number;
  frame_rate: number;
  segment_seconds: number | null;
  /** How far behind the live edge players are tuned to stay (HLS/DASH). */
  target_latency_seconds: number | null;
  state: StreamState;
  health: StreamHealth;
  /** Why the health is not `healthy`, or why the stream stopped. */
  reason: string | null;
  node: string;
  started_at: string;
  uptime_seconds: number;
  hls_url?: string;
  dash_url?: string;
  rtmp_url?: string;
  /** Masked ("***") when a key was given. */
  rtmp_key?: string;
  player_url: string;
  stream_url: string;
  metrics: StreamMetrics;
  updated_at: string;
}

export interface StreamStore {
  keys: RedisKeys;
  /** Publishes a stream's status; an ended one leaves the active set and stays readable. */
  publish(status: StreamStatus): Promise<void>;
  get(id: string): Promise<StreamStatus | null>;
  /** Active streams, oldest first (ids whose status expired, a dead process's, are dropped). */
  active(): Promise<StreamStatus[]>;
}

export function createStreamStore(options: { redis: Redis; prefix: string }): StreamStore {
  const { redis } = options;
  const keys = redisKeys(options.prefix);
  return {
    keys,
    async publish(status) {
      const ended = status.state === "stopped";
      const multi = redis.multi().set(
        keys.stream(status.stream_id),
        JSON.stringify(status),
        "PX",
        ended ? ENDED_STATUS_TTL_MS : STATUS_TTL_MS,
      );
      if (ended) multi.zrem(keys.streams, status.stream_id);
      else multi.zadd(keys.streams, "NX", Date.parse(status.started_at), status.stream_id);
      await multi.exec();
    },
    async get(id) {
      const text = await redis.get(keys.stream(id));
      return text ? JSON.parse(text) as StreamStatus : null;
    },
    async active() {
      const ids = await redis.zrange(keys.streams, 0, -1);
      if (ids.length === 0) return [];
      const texts = await redis.mget(...ids.map((id) => keys.stream(id)));
      const gone = ids.filter((_, i) => !texts[i]);
      if (gone.length) await redis.zrem(keys.streams, ...gone);
      return texts.flatMap((t) => {
        if (!t) return [];
        const status = JSON.parse(t) as StreamStatus;
        return status.state === "stopped" ? [] : [status];
      });
    },
  };
}
