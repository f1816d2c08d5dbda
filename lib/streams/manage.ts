/**
 * What the streams API does: start a session's video stream (a control op for the process that
 * runs the session), list, read and stop streams wherever they are encoded, describe the quality
 * profiles, and find a stream's media file: here, or on the process that encodes it.
 */
import { z } from "@hono/zod-openapi";
import { unavailable } from "../core/errors.ts";
import { controlSession, type SessionDeps, type SessionLookup } from "../sessions/control.ts";
import { CODECS, DEFAULT_PROFILE, PROFILE_NAMES, PROFILES } from "../video/codecs.ts";
import type { StreamHost } from "./host.ts";
import { liveTiming, PROTOCOL_CODECS, PROTOCOLS, type StreamRequest } from "./options.ts";
import {
  STREAM_STATUS_FIELDS,
  type StreamStatus,
  StreamStatusSchema,
  type StreamStore,
} from "./store.ts";

/** Starting waits for the encoders' detection (at start-up) and the first segment. */
const START_TIMEOUT_MS = 40_000;
const STOP_TIMEOUT_MS = 25_000;

/** Video streams: the shared Redis side, and the ones encoded here (when sessions run here). */
export interface StreamDeps {
  store: StreamStore;
  host?: StreamHost | undefined;
}

/** What starting a stream answers: its status, and whether it is active or paused. */
export const StreamStartedSchema = z.object({
  ...STREAM_STATUS_FIELDS,
  status: z.enum(["active", "paused"]),
}).openapi("StreamStarted");

/** An active stream's answer. */
export const StreamActiveSchema = z.object({
  active: z.literal(true),
  stream_id: z.string(),
  status: StreamStatusSchema,
}).openapi("StreamActive");

/** The answer when a stream is not active. */
export const NoStreamSchema = z.object({
  active: z.literal(false),
  error: z.string(),
  status: StreamStatusSchema.optional().openapi({
    description: "The final status of a recently ended one",
  }),
}).openapi("NoStream");
export type NoStream = z.infer<typeof NoStreamSchema>;

/** A stream's answer: active with its status, or not. */
export type StreamAnswer = z.infer<typeof StreamActiveSchema> | NoStream;

/** Starts a video stream of session `sessionId`; answers its status. */
export async function startStream(
  deps: SessionLookup,
  sessionId: string,
  request: StreamRequest,
): Promise<z.infer<typeof StreamStartedSchema>> {
  const reply = await controlSession(deps, sessionId, "stream_start", request, START_TIMEOUT_MS);
  const status = reply.data as StreamStatus;
  return { ...status, status: status.state === "paused" ? "paused" : "active" };
}

/** The active streams, each with its freshest status. */
export async function listStreams(streams: StreamDeps): Promise<StreamStatus[]> {
  const all = await streams.store.active();
  return all.map((s) => streams.host?.get(s.stream_id)?.status() ?? s);
}

/** Whether stream `id` is active, with its freshest status (from here, else from Redis). */
export async function streamAnswer(streams: StreamDeps, id: string): Promise<StreamAnswer> {
  const status = streams.host?.get(id)?.status() ??
    await streams.store.get(id).catch(() => null);
  if (!status || status.state === "stopped") return ended(status);
  return { active: true, stream_id: status.stream_id, status };
}

const ended = (status: StreamStatus | null): NoStream => ({
  active: false,
  error: "No active stream",
  ...(status ? { status } : {}),
});

/**
 * Stops a stream here or through the process that runs its session: its final status, or, when
 * it had already ended, what is known of it. 503 when that process does not answer.
 */
export async function stopStream(
  deps: { streams: StreamDeps; sessions: SessionDeps },
  id: string,
): Promise<{ stopped: StreamStatus } | NoStream> {
  const local = deps.streams.host?.get(id);
  if (local) return { stopped: await local.stop("stopped") };
  const status = await deps.streams.store.get(id);
  if (!status || status.state === "stopped") return ended(status);
  const reply = await deps.sessions.store.request(
    status.session_id,
    "stream_stop",
    { stream_id: id },
    STOP_TIMEOUT_MS,
  );
  if (!reply) throw unavailable(`The process encoding stream ${id} did not answer; try again`);
  if (!reply.ok) return ended(await deps.streams.store.get(id));
  return { stopped: reply.data as StreamStatus };
}

/** The quality profiles (shared with recordings), the codecs, and what each protocol carries. */
export const StreamProfilesSchema = z.object({
  default: z.enum(PROFILE_NAMES),
  profiles: z.array(z.object({
    name: z.enum(PROFILE_NAMES),
    description: z.string(),
    bitrate_kbps: z.number().nullable(),
    crf: z.number(),
    width: z.number(),
    height: z.number(),
    fps: z.number(),
    keyframe_s: z.number(),
    low_latency: z.boolean(),
    segment_seconds: z.number(),
  })),
  codecs: z.array(z.enum(CODECS)),
  protocols: z.record(z.string(), z.array(z.enum(CODECS))),
}).openapi("StreamProfiles");

/** The quality profiles (shared with recordings), the codecs, and what each protocol carries. */
export function streamProfiles(): z.infer<typeof StreamProfilesSchema> {
  return {
    default: DEFAULT_PROFILE,
    profiles: PROFILE_NAMES.map((name) => ({
      ...PROFILES[name],
      segment_seconds: liveTiming(PROFILES[name]).segment_s,
    })),
    codecs: [...CODECS],
    protocols: Object.fromEntries(PROTOCOLS.map((p) => [p, [...PROTOCOL_CODECS[p]]])),
  };
}

/** A media file of a stream: served here, on the process that encodes it, or not at all. */
export type MediaAnswer = { response: Response } | { redirect: string } | { missing: string };

/**
 * Media file `file` of stream `id` for player `client` (an HLS blocking reload waits for
 * segment `msn`): from this process when it encodes the stream, else the URL on the process that
 * does (players follow it and resolve segments there).
 */
export async function streamMedia(
  streams: StreamDeps,
  id: string,
  file: string,
  player: { client: string; msn?: number | undefined },
): Promise<MediaAnswer> {
  const stream = streams.host?.get(id);
  if (stream) {
    const response = await stream.serve(file, player.client, player.msn);
    return response ? { response } : { missing: `Stream ${id} has no file "${file}"` };
  }
  const status = await streams.store.get(id).catch(() => null);
  if (status && status.state !== "stopped") {
    return { redirect: `${status.node}/streams/${id}/${encodeURIComponent(file)}` };
  }
  return { missing: "No active stream" };
}
