/**
 * Video streams in Redis, shared by every process, so any API process can list and describe a
 * stream and find the session (hence the process) to ask to stop it.
 */
import { z } from "@hono/zod-openapi";
import type { Redis } from "../core/redis.ts";
import { type RedisKeys, redisKeys } from "../core/keys.ts";
import { CODECS, PROFILE_NAMES } from "../video/codecs.ts";
import { PROTOCOLS } from "./options.ts";

const STATUS_TTL_MS = 15_000;
const ENDED_STATUS_TTL_MS = 10 * 60_000;

export const STREAM_STATES = ["active", "paused", "stopped"] as const;
export type StreamState = typeof STREAM_STATES[number];
export const STREAM_HEALTHS = ["healthy", "degraded", "unhealthy"] as const;
export type StreamHealth = typeof STREAM_HEALTHS[number];

/** A stream's live figures; the rates cover the last 2 s (fps), 5 s (bitrate), 3 s (speed). */
export const StreamMetricsSchema = z.object({
  current_fps: z.number().openapi({ description: "Frames per second leaving the encoder" }),
  current_bitrate: z.number().openapi({ description: "Bits per second of encoded video" }),
  frames_sent: z.number().openapi({ description: "Frames encoded into the stream" }),
  bytes_sent: z.number()
    .openapi({ description: "HLS/DASH: bytes served to players; RTMP: bytes pushed" }),
  viewer_count: z.number().nullable()
    .openapi({ description: "Players that fetched a segment in the last window (null: RTMP)" }),
  buffer_health: z.number()
    .openapi({ description: "Percent of the frames due in the last 5 s encoded in time" }),
  /** Frames skipped because the encoder fell behind (the output stays live). */
  dropped_frames: z.number(),
  encoder_speed: z.number().openapi({
    description: "Frames encoded per frame due (1 = real time)",
  }),
  frames_in: z.number().openapi({ description: "Frames the session captured into the stream" }),
  frames_repeated: z.number().openapi({ description: "Repeats of the last frame while idle" }),
  backlog_frames: z.number(),
  /** Bytes of video written (segments, or the RTMP push). */
  bytes_encoded: z.number(),
  segments_served: z.number(),
  requests_served: z.number(),
  restarts: z.number().openapi({ description: "ffmpeg restarts after an exit (at most 1)" }),
}).openapi("StreamMetrics");
export type StreamMetrics = z.infer<typeof StreamMetricsSchema>;

/** The fields of a stream's status (`StreamStarted` adds one). */
export const STREAM_STATUS_FIELDS = {
  stream_id: z.string(),
  session_id: z.string(),
  protocol: z.enum(PROTOCOLS),
  quality: z.enum(PROFILE_NAMES),
  codec: z.enum(CODECS),
  encoder: z.string().openapi({ description: "The ffmpeg encoder (hardware when present)" }),
  hardware: z.boolean(),
  width: z.number(),
  height: z.number(),
  frame_rate: z.number(),
  segment_seconds: z.number().nullable(),
  target_latency_seconds: z.number().nullable()
    .openapi({ description: "How far behind the live edge the player is tuned to stay" }),
  state: z.enum(STREAM_STATES),
  health: z.enum(STREAM_HEALTHS),
  reason: z.string().nullable()
    .openapi({ description: "Why the health is not healthy, or why the stream stopped" }),
  node: z.string().openapi({ description: "The process that encodes and serves the stream" }),
  started_at: z.string(),
  uptime_seconds: z.number(),
  hls_url: z.string().optional(),
  dash_url: z.string().optional(),
  rtmp_url: z.string().optional(),
  rtmp_key: z.string().optional().openapi({ description: 'Always "***": the key is secret' }),
  player_url: z.string(),
  stream_url: z.string().openapi({ description: "The protocol's primary URL" }),
  metrics: StreamMetricsSchema,
  updated_at: z.string(),
};

/** What `GET /api/streams/:id` answers under `status`. */
export const StreamStatusSchema = z.object(STREAM_STATUS_FIELDS).openapi("StreamStatus");
export type StreamStatus = z.infer<typeof StreamStatusSchema>;

export interface StreamStore {
  keys: RedisKeys;
  /** Publishes a stream's status; an ended one leaves the active set and stays readable. */
  publish(status: StreamStatus): Promise<void>;
  get(id: string): Promise<StreamStatus | null>;
  /** Active streams, oldest first (ids whose status expired, a dead process's, are dropped). */
  active(): Promise<StreamStatus[]>;
}

/**
 * The process that encodes a stream publishes its status every second with a short expiry and keeps
 * its id in the set of active streams. An ended stream's last status stays a while, so a late `GET`
 * can say why it ended.
 */
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
