/**
 * Video streams of sessions (`lib/streams/manage.ts`), and their media (`streamMediaRoutes`, on
 * every process that may encode one): playlists, segments, the DASH clock, status, player page.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { Hono } from "hono";
import { getConnInfo } from "hono/deno";
import { requireRole } from "../lib/http/auth.ts";
import { bearer, errorResponse, IdParam, jsonResponse, newApp } from "../lib/http/openapi.ts";
import type { AppDeps, AppEnv, WorkerDeps } from "../lib/http/context.ts";
import { StreamRequest } from "../lib/streams/options.ts";
import { StreamStatusSchema } from "../lib/streams/store.ts";
import {
  listStreams,
  NoStreamSchema,
  startStream,
  stopStream,
  StreamActiveSchema,
  streamAnswer,
  streamMedia,
  streamProfiles,
  StreamProfilesSchema,
  StreamStartedSchema,
} from "../lib/streams/manage.ts";
import { pageFile } from "../lib/http/static_files.ts";

export function streamsRoutes(deps: AppDeps) {
  const app = newApp();

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/sessions/{id}/stream",
      operationId: "startStream",
      tags: ["streams"],
      summary: "Start a live video stream of a session: HLS, DASH or an RTMP push",
      security: bearer,
      middleware: [requireRole("operator")] as const,
      request: {
        params: IdParam,
        body: { content: { "application/json": { schema: StreamRequest } }, required: true },
      },
      responses: {
        201: jsonResponse(
          StreamStartedSchema,
          "Streaming: open stream_url in a player, or player_url",
        ),
        400: errorResponse("Invalid body or a combination the protocol or ffmpeg cannot do"),
        404: errorResponse("Unknown session"),
        409: errorResponse("The session has ended or is still starting"),
        429: errorResponse("This process already encodes STREAMPLAY_MAX_STREAMS streams"),
        502: errorResponse("ffmpeg could not start the stream (the reason is given)"),
      },
    }),
    async (c) => {
      const started = await startStream(deps, c.req.valid("param").id, c.req.valid("json"));
      c.header("Location", `/api/streams/${started.stream_id}`);
      return c.json(started, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/streams",
      operationId: "listStreams",
      tags: ["streams"],
      summary: "The active video streams",
      security: bearer,
      responses: {
        200: jsonResponse(z.object({ streams: z.array(StreamStatusSchema) }), "Active streams"),
      },
    }),
    async (c) => c.json({ streams: await listStreams(deps.streams) }, 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/streams/{id}",
      operationId: "getStream",
      tags: ["streams"],
      summary: "A stream's state, health and live metrics",
      security: bearer,
      request: { params: IdParam },
      responses: {
        200: jsonResponse(StreamActiveSchema, "The active stream"),
        404: jsonResponse(NoStreamSchema, "Unknown or ended (with its final status for a while)"),
      },
    }),
    async (c) => {
      const stream = await streamAnswer(deps.streams, c.req.valid("param").id);
      return stream.active ? c.json(stream, 200) : c.json(stream, 404);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/api/streams/{id}",
      operationId: "stopStream",
      tags: ["streams"],
      summary: "Stop a stream; answers its final totals (the segments are removed)",
      security: bearer,
      middleware: [requireRole("operator")] as const,
      request: { params: IdParam },
      responses: {
        200: jsonResponse(
          z.object({ success: z.literal(true), info: StreamStatusSchema }),
          "Stopped, with the final status and metrics",
        ),
        404: jsonResponse(NoStreamSchema, "Unknown or already ended"),
        503: errorResponse("The process encoding the stream did not answer"),
      },
    }),
    async (c) => {
      const outcome = await stopStream(deps, c.req.valid("param").id);
      if ("stopped" in outcome) {
        return c.json({ success: true as const, info: outcome.stopped }, 200);
      }
      return c.json(outcome, 404);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/stream-profiles",
      operationId: "listStreamProfiles",
      tags: ["streams"],
      summary:
        "The quality profiles (shared with recordings), codecs and what each protocol carries",
      security: bearer,
      responses: {
        200: jsonResponse(
          StreamProfilesSchema,
          "Profiles, codecs, protocols",
        ),
      },
    }),
    (c) => c.json(streamProfiles(), 200),
  );

  return app;
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
    const stream = await streamAnswer(streams, c.req.param("id"));
    c.header("Cache-Control", "no-store");
    c.header("Access-Control-Allow-Origin", "*");
    return c.json(stream, stream.active ? 200 : 404);
  });

  app.get("/streams/:id/:file", async (c) => {
    const info = getConnInfo(c);
    const client = (c.req.header("x-playback-session-id") ??
      `${info.remote.address}|${c.req.header("user-agent") ?? ""}`).slice(0, 200);
    const msn = c.req.query("_HLS_msn");
    const media = await streamMedia(streams, c.req.param("id"), c.req.param("file"), {
      client,
      msn: msn !== undefined && /^\d{1,9}$/.test(msn) ? Number(msn) : undefined,
    });
    if ("response" in media) return media.response;
    if ("redirect" in media) return c.redirect(media.redirect, 307);
    return c.json({ error: media.missing }, 404, cors);
  });

  app.get("/player/:id", ...pageFile("player.html"));
  return app;
}
