/**
 * Live video streams of sessions:
 *
 * - the API: start one on a session (`POST /api/sessions/:id/stream`, reaching the process that
 *   runs the session), list, read with live metrics, stop with the final totals, and the quality
 *   profiles;
 * - the media, served by the process that encodes the stream (`streamMediaRoutes`, also on a
 *   worker's listener): HLS playlists and DASH manifests with their segments, the clock DASH
 *   players synchronise with, the stream's status for its player, and the player page
 *   `/player/:id` (hls.js or dash.js from /vendor). Media URLs hold the stream id, 80 random
 *   bits: like a signed URL, holding it is what lets a player (VLC, ffplay, hls.js) watch.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { Hono } from "hono";
import { getConnInfo } from "hono/deno";
import { HTTPException } from "hono/http-exception";
import { requireRole } from "../lib/http/auth.ts";
import { bearer, errorResponse, jsonResponse, newApp } from "../lib/http/openapi.ts";
import type { AppDeps, AppEnv, StreamDeps, WorkerDeps } from "../lib/http/context.ts";
import type { StreamStatus } from "../lib/streams/store.ts";
import { liveTiming, PROTOCOL_CODECS, PROTOCOLS, StreamRequest } from "../lib/streams/options.ts";
import { CODECS, DEFAULT_PROFILE, PROFILE_NAMES, PROFILES } from "../lib/video/codecs.ts";
import { controlSession } from "../lib/sessions/control.ts";
import { pageFile } from "../lib/http/static_files.ts";

/** Starting waits for the encoders' detection (at start-up) and the first segment. */
const START_TIMEOUT_MS = 40_000;
const STOP_TIMEOUT_MS = 25_000;

const Metrics = z.object({
  current_fps: z.number().openapi({ description: "Frames per second leaving the encoder" }),
  current_bitrate: z.number().openapi({ description: "Bits per second of encoded video" }),
  frames_sent: z.number().openapi({ description: "Frames encoded into the stream" }),
  bytes_sent: z.number()
    .openapi({ description: "HLS/DASH: bytes served to players; RTMP: bytes pushed" }),
  viewer_count: z.number().nullable()
    .openapi({ description: "Players that fetched a segment in the last window (null: RTMP)" }),
  buffer_health: z.number()
    .openapi({ description: "Percent of the frames due in the last 5 s encoded in time" }),
  dropped_frames: z.number(),
  encoder_speed: z.number().openapi({
    description: "Frames encoded per frame due (1 = real time)",
  }),
  frames_in: z.number().openapi({ description: "Frames the session captured into the stream" }),
  frames_repeated: z.number().openapi({ description: "Repeats of the last frame while idle" }),
  backlog_frames: z.number(),
  bytes_encoded: z.number(),
  segments_served: z.number(),
  requests_served: z.number(),
  restarts: z.number().openapi({ description: "ffmpeg restarts after an exit (at most 1)" }),
}).openapi("StreamMetrics");

const StatusFields = {
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
  state: z.enum(["active", "paused", "stopped"]),
  health: z.enum(["healthy", "degraded", "unhealthy"]),
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
  metrics: Metrics,
  updated_at: z.string(),
};

const Status = z.object(StatusFields).openapi("StreamStatus");
const Started = z.object({ ...StatusFields, status: z.enum(["active", "paused"]) })
  .openapi("StreamStarted");
const Active = z.object({ active: z.literal(true), stream_id: z.string(), status: Status })
  .openapi("StreamActive");
const NoStream = z.object({
  active: z.literal(false),
  error: z.string(),
  status: Status.optional().openapi({ description: "The final status of a recently ended one" }),
}).openapi("NoStream");

const IdParam = z.object({ id: z.string().min(1).max(200) });

/** The freshest status: from this process when it encodes the stream, else from Redis. */
async function findStatus(streams: StreamDeps, id: string): Promise<StreamStatus | null> {
  return streams.host?.get(id)?.status() ?? await streams.store.get(id).catch(() => null);
}

const noStream = (status: StreamStatus | null) => ({
  active: false as const,
  error: "No active stream",
  ...(status ? { status } : {}),
});

export function streamsRoutes(deps: AppDeps) {
  const app = newApp();

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/sessions/{id}/stream",
      tags: ["streams"],
      summary: "Start a live video stream of a session: HLS, DASH or an RTMP push",
      security: bearer,
      middleware: [requireRole("operator")] as const,
      request: {
        params: IdParam,
        body: { content: { "application/json": { schema: StreamRequest } }, required: true },
      },
      responses: {
        201: jsonResponse(Started, "Streaming: open stream_url in a player, or player_url"),
        400: errorResponse("Invalid body or a combination the protocol or ffmpeg cannot do"),
        404: errorResponse("Unknown session"),
        409: errorResponse("The session has ended or is still starting"),
        429: errorResponse("This process already encodes STREAMPLAY_MAX_STREAMS streams"),
        502: errorResponse("ffmpeg could not start the stream (the reason is given)"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const request = c.req.valid("json");
      const reply = await controlSession(deps, id, "stream_start", request, START_TIMEOUT_MS);
      const status = reply.data as StreamStatus;
      c.header("Location", `/api/streams/${status.stream_id}`);
      const state = status.state === "paused" ? "paused" as const : "active" as const;
      return c.json({ ...status, status: state }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/streams",
      tags: ["streams"],
      summary: "The active video streams",
      security: bearer,
      responses: {
        200: jsonResponse(z.object({ streams: z.array(Status) }), "Active streams"),
      },
    }),
    async (c) => {
      const { streams } = deps;
      const all = await streams.store.active();
      return c.json({
        streams: all.map((s) => streams.host?.get(s.stream_id)?.status() ?? s),
      }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/streams/{id}",
      tags: ["streams"],
      summary: "A stream's state, health and live metrics",
      security: bearer,
      request: { params: IdParam },
      responses: {
        200: jsonResponse(Active, "The active stream"),
        404: jsonResponse(NoStream, "Unknown or ended (with its final status for a while)"),
      },
    }),
    async (c) => {
      const { streams } = deps;
      const { id } = c.req.valid("param");
      const status = await findStatus(streams, id);
      if (!status || status.state === "stopped") return c.json(noStream(status), 404);
      return c.json({ active: true as const, stream_id: id, status }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/api/streams/{id}",
      tags: ["streams"],
      summary: "Stop a stream; answers its final totals (the segments are removed)",
      security: bearer,
      middleware: [requireRole("operator")] as const,
      request: { params: IdParam },
      responses: {
        200: jsonResponse(
          z.object({ success: z.literal(true), info: Status }),
          "Stopped, with the final status and metrics",
        ),
        404: jsonResponse(NoStream, "Unknown or already ended"),
        503: errorResponse("The process encoding the stream did not answer"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const outcome = await stopStream(deps, id);
      if ("stopped" in outcome) {
        return c.json({ success: true as const, info: outcome.stopped }, 200);
      }
      return c.json(noStream(outcome.ended), 404);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/stream-profiles",
      tags: ["streams"],
      summary:
        "The quality profiles (shared with recordings), codecs and what each protocol carries",
      security: bearer,
      responses: {
        200: jsonResponse(
          z.object({
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
          }).openapi("StreamProfiles"),
          "Profiles, codecs, protocols",
        ),
      },
    }),
    (c) =>
      c.json({
        default: DEFAULT_PROFILE,
        profiles: PROFILE_NAMES.map((name) => ({
          ...PROFILES[name],
          segment_seconds: liveTiming(PROFILES[name]).segment_s,
        })),
        codecs: [...CODECS],
        protocols: Object.fromEntries(PROTOCOLS.map((p) => [p, [...PROTOCOL_CODECS[p]]])),
      }, 200),
  );

  return app;
}

/** The final status of the stream this call stopped, or what is known of an ended one. */
type StopOutcome = { stopped: StreamStatus } | { ended: StreamStatus | null };

/** Stops a stream here or through the process that runs its session. */
async function stopStream(deps: AppDeps, id: string): Promise<StopOutcome> {
  const local = deps.streams.host?.get(id);
  if (local) return { stopped: await local.stop("stopped") };
  const status = await deps.streams.store.get(id);
  if (!status || status.state === "stopped") return { ended: status };
  const reply = await deps.sessions.store.request(
    status.session_id,
    "stream_stop",
    { stream_id: id },
    STOP_TIMEOUT_MS,
  );
  if (!reply) {
    throw new HTTPException(503, {
      message: `The process encoding stream ${id} did not answer; try again`,
    });
  }
  if (!reply.ok) return { ended: await deps.streams.store.get(id) };
  return { stopped: reply.data as StreamStatus };
}

/**
 * The media side, mounted by every process that may encode streams (and by the API, which
 * redirects to the process that encodes a stream it does not).
 */
export function streamMediaRoutes({ streams }: WorkerDeps) {
  const app = new Hono<AppEnv>();
  const cors = { "access-control-allow-origin": "*" };

  app.get("/streams/time", (c) => {
    c.header("Cache-Control", "no-store");
    c.header("Access-Control-Allow-Origin", "*");
    return c.text(new Date().toISOString());
  });

  app.get("/streams/:id/status", async (c) => {
    const status = await findStatus(streams, c.req.param("id"));
    c.header("Cache-Control", "no-store");
    c.header("Access-Control-Allow-Origin", "*");
    if (!status || status.state === "stopped") return c.json(noStream(status), 404);
    return c.json({ active: true, stream_id: status.stream_id, status }, 200);
  });

  app.get("/streams/:id/:file", async (c) => {
    const id = c.req.param("id");
    const file = c.req.param("file");
    const stream = streams.host?.get(id);
    if (stream) {
      const info = getConnInfo(c);
      const client = (c.req.header("x-playback-session-id") ??
        `${info.remote.address}|${c.req.header("user-agent") ?? ""}`).slice(0, 200);
      const msn = c.req.query("_HLS_msn");
      const res = await stream.serve(
        file,
        client,
        msn !== undefined && /^\d{1,9}$/.test(msn) ? Number(msn) : undefined,
      );
      if (res) return res;
      return c.json({ error: `Stream ${id} has no file "${file}"` }, 404, cors);
    }
    const status = await streams.store.get(id).catch(() => null);
    if (status && status.state !== "stopped") {
      // Encoded by another process: players follow to it (and resolve segments there).
      return c.redirect(`${status.node}/streams/${id}/${encodeURIComponent(file)}`, 307);
    }
    return c.json({ error: "No active stream" }, 404, cors);
  });

  app.get("/player/:id", ...pageFile("player.html"));
  return app;
}
