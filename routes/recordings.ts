/**
 * Recordings (`lib/recordings/manage.ts`, `replay_start.ts`) and their files (`files.ts`), which
 * the node that recorded them serves: others redirect there (307); `recordingFileRoutes` on a worker.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { requireRole } from "../lib/http/auth.ts";
import { bearer, errorResponse, IdParam, jsonResponse, newApp } from "../lib/http/openapi.ts";
import type { AppDeps, AppEnv, WorkerDeps } from "../lib/http/context.ts";
import { RECORDING_ID_PATTERN, RECORDING_STATES, RecordOptions } from "../lib/recordings/model.ts";
import {
  RecordingSchema,
  TimelineEntrySchema,
  TimelineSummarySchema,
} from "../lib/recordings/catalog.ts";
import { ReplayOptions } from "../lib/recordings/replay_params.ts";
import { ReplayStartedSchema, startReplay } from "../lib/recordings/replay_start.ts";
import {
  cleanRecordings,
  deleteRecording,
  getRecording,
  listRecordings,
  recordingReplays,
  recordingTimeline,
  startRecording,
  stopRecording,
} from "../lib/recordings/manage.ts";
import {
  type FileAnswer,
  type FileRequest,
  localScreenshot,
  localVideo,
  recordingScreenshot,
  recordingVideo,
} from "../lib/recordings/files.ts";

const RecordingIdParam = z.object({
  id: z.string().regex(
    RECORDING_ID_PATTERN,
    "is not a recording id (rec_ followed by 17 lowercase letters or digits)",
  ),
});
const ShotParam = RecordingIdParam.extend({
  n: z.union([z.literal("final"), z.coerce.number().int().min(1).max(1_000_000)])
    .openapi({ description: 'Screenshot number, or "final" for the last frame' }),
});

const ListQuery = z.object({
  session_id: z.string().max(200).optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  state: z.enum(RECORDING_STATES).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(500).optional(),
});

const videoRoute = createRoute({
  method: "get",
  path: "/api/recordings/{id}/video",
  operationId: "getRecordingVideo",
  tags: ["recordings"],
  summary: "The video file (MP4 or WebM), with HTTP Range support",
  description: "Served by the node that recorded it: other nodes answer 307 to it. Players " +
    "and <video> elements may pass ?token= instead of a header.",
  security: bearer,
  request: {
    params: RecordingIdParam,
    query: z.object({
      download: z.enum(["0", "1"]).optional()
        .openapi({ description: "1: as an attachment named after the recording" }),
    }),
  },
  responses: {
    200: { description: "The whole file", content: { "video/mp4": { schema: z.string() } } },
    206: { description: "The requested byte range" },
    307: { description: "The file is on the node that recorded it: follow Location" },
    400: errorResponse("Not a recording id"),
    404: errorResponse("Unknown recording, or its file is gone"),
    416: errorResponse("The range is outside the file"),
  },
});

const shotRoute = createRoute({
  method: "get",
  path: "/api/recordings/{id}/screenshots/{n}",
  operationId: "getRecordingScreenshot",
  tags: ["recordings"],
  summary: "The frame on screen at an error (JPEG), or the last frame (`final`)",
  security: bearer,
  request: { params: ShotParam },
  responses: {
    200: { description: "JPEG", content: { "image/jpeg": { schema: z.string() } } },
    307: { description: "The file is on the node that recorded it: follow Location" },
    400: errorResponse("Not a recording id or screenshot number"),
    404: errorResponse("Unknown recording or screenshot"),
  },
});

/** What a file route asks of lib/recordings/files.ts: the Range header, HEAD or GET. */
function fileRequest(c: Context<AppEnv>): FileRequest {
  return { range: c.req.header("range"), head: c.req.method === "HEAD" };
}

/** The file from here, or a redirect (307) to the same path on the node that has it. */
function answer(c: Context<AppEnv>, file: FileAnswer): Response {
  if ("response" in file) return file.response;
  const url = new URL(c.req.url);
  return c.redirect(`${file.node}${url.pathname}${url.search}`, 307);
}

export function recordingsRoutes(deps: AppDeps) {
  const app = newApp();

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/sessions/{id}/recording",
      operationId: "startRecording",
      tags: ["recordings"],
      summary: "Start recording a session: a video file plus a timeline of what happened",
      security: bearer,
      middleware: [requireRole("operator")] as const,
      request: {
        params: IdParam,
        body: { content: { "application/json": { schema: RecordOptions } }, required: false },
      },
      responses: {
        201: jsonResponse(RecordingSchema, "Recording"),
        400: errorResponse("Bad options"),
        404: errorResponse("Unknown session"),
        409: errorResponse("The session has ended or is already being recorded"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const options = RecordOptions.parse(
        c.req.header("content-type") ? c.req.valid("json") ?? {} : {},
      );
      const recording = await startRecording(deps, id, options);
      c.header("Location", `/api/recordings/${recording.recording_id}`);
      return c.json(recording, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/api/sessions/{id}/recording",
      operationId: "stopRecording",
      tags: ["recordings"],
      summary: "Stop a session's recording; answers its duration, frames and size",
      security: bearer,
      middleware: [requireRole("operator")] as const,
      request: { params: IdParam },
      responses: {
        200: jsonResponse(RecordingSchema, "The finished recording"),
        404: errorResponse("Unknown session"),
        409: errorResponse("The session has ended or is not being recorded"),
      },
    }),
    async (c) => c.json(await stopRecording(deps, c.req.valid("param").id), 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/recordings",
      operationId: "listRecordings",
      tags: ["recordings"],
      summary: "Recordings, newest first",
      security: bearer,
      request: { query: ListQuery },
      responses: {
        200: jsonResponse(
          z.object({ recordings: z.array(RecordingSchema), next_cursor: z.string().nullable() }),
          "A page of recordings",
        ),
        400: errorResponse("Bad filter or cursor"),
      },
    }),
    async (c) => c.json(await listRecordings(deps.recordings.catalog, c.req.valid("query")), 200),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/recordings/clean",
      operationId: "cleanRecordings",
      tags: ["recordings"],
      summary: "Delete the recordings that started longer ago than an age",
      security: bearer,
      middleware: [requireRole("admin")] as const,
      request: {
        body: {
          content: {
            "application/json": {
              schema: z.object({
                older_than: z.string().max(20).openapi({ example: "7d" }),
                dry_run: z.boolean().default(false).openapi({
                  description: "Delete nothing; answer what would be deleted.",
                }),
              }).strict(),
            },
          },
          required: true,
        },
      },
      responses: {
        200: jsonResponse(
          z.object({
            removed: z.number(),
            removed_bytes: z.number(),
            removed_mb: z.number(),
            recording_ids: z.array(z.string()),
            dry_run: z.boolean(),
          }),
          "What was removed (with dry_run, what would be: nothing is)",
        ),
        400: errorResponse("Not an age"),
      },
    }),
    async (c) => {
      const { older_than, dry_run } = c.req.valid("json");
      return c.json(await cleanRecordings(deps.recordings.catalog, older_than, dry_run), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/recordings/{id}",
      operationId: "getRecording",
      tags: ["recordings"],
      summary: "One recording, with a summary of its timeline",
      security: bearer,
      request: { params: RecordingIdParam },
      responses: {
        200: jsonResponse(
          RecordingSchema.extend({ timeline: TimelineSummarySchema }),
          "The recording",
        ),
        400: errorResponse("Not a recording id"),
        404: errorResponse("Unknown recording"),
      },
    }),
    async (c) => c.json(await getRecording(deps.recordings.catalog, c.req.valid("param").id), 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/recordings/{id}/timeline",
      operationId: "getRecordingTimeline",
      tags: ["recordings"],
      summary: "What happened, in order, at its time in the video: inputs (with the element's " +
        "selector), navigations, tabs, console, page errors, failed requests",
      security: bearer,
      request: { params: RecordingIdParam },
      responses: {
        200: jsonResponse(
          z.object({ recording_id: z.string(), entries: z.array(TimelineEntrySchema) }),
          "The timeline",
        ),
        400: errorResponse("Not a recording id"),
        404: errorResponse("Unknown recording"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      return c.json(await recordingTimeline(deps.recordings.catalog, id), 200);
    },
  );

  app.openapi(videoRoute, async (c) => {
    const { id } = c.req.valid("param");
    const download = c.req.valid("query").download === "1";
    return answer(c, await recordingVideo(deps, id, { ...fileRequest(c), download })) as never;
  });

  app.openapi(shotRoute, async (c) => {
    const { id, n } = c.req.valid("param");
    return answer(c, await recordingScreenshot(deps, id, n, fileRequest(c))) as never;
  });

  app.openapi(
    createRoute({
      method: "delete",
      path: "/api/recordings/{id}",
      operationId: "deleteRecording",
      tags: ["recordings"],
      summary: "Delete a recording: its row, timeline and files (on every node)",
      security: bearer,
      middleware: [requireRole("admin")] as const,
      request: { params: RecordingIdParam },
      responses: {
        200: jsonResponse(
          z.object({ deleted: z.string(), removed_bytes: z.number() }),
          "Deleted",
        ),
        400: errorResponse("Not a recording id"),
        404: errorResponse("Unknown recording"),
        409: errorResponse("It is still recording: stop it first"),
      },
    }),
    async (c) =>
      c.json(await deleteRecording(deps.recordings.catalog, c.req.valid("param").id), 200),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/recordings/{id}/replay",
      operationId: "replayRecording",
      tags: ["recordings"],
      summary: "Replay a recording in a fresh browser: a live `replay` job reporting divergences",
      description: "Answers once the replay's page is up, with its viewer URL and WebSocket " +
        "(view-only). Its result (GET /api/jobs/{replay_id}, or /api/recordings/{id}/replays) " +
        "lists the divergences.",
      security: bearer,
      middleware: [requireRole("operator")] as const,
      request: {
        params: RecordingIdParam,
        body: { content: { "application/json": { schema: ReplayOptions } }, required: false },
      },
      responses: {
        201: jsonResponse(ReplayStartedSchema, "Started"),
        400: errorResponse("Bad options, or the recording's start page is refused"),
        404: errorResponse("Unknown recording"),
        409: errorResponse("It is still recording, or its last frame is not available"),
        429: errorResponse("All session slots are in use (see Retry-After)"),
        502: errorResponse("The replay failed to start"),
        503: errorResponse("No worker started the replay in time"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const options = ReplayOptions.parse(
        c.req.header("content-type") ? c.req.valid("json") ?? {} : {},
      );
      const started = await startReplay(deps, id, options);
      c.header("Location", started.job_url);
      return c.json(started, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/recordings/{id}/replays",
      operationId: "listRecordingReplays",
      tags: ["recordings"],
      summary: "The replays of a recording, newest first, with their divergences",
      security: bearer,
      request: { params: RecordingIdParam },
      responses: {
        200: jsonResponse(
          z.object({ replays: z.array(z.record(z.string(), z.unknown())) }),
          "Replays",
        ),
        400: errorResponse("Not a recording id"),
        404: errorResponse("Unknown recording"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      return c.json({ replays: await recordingReplays(deps.recordings.catalog, id) }, 200);
    },
  );

  return app;
}

/**
 * The file routes of a worker's own listener: the videos and screenshots of the recordings this
 * node made, from its disk (it has no DuckDB), with the same ids checks and Range support.
 */
export function recordingFileRoutes({ config }: WorkerDeps) {
  const app = newApp();
  app.openapi(videoRoute, async (c) => {
    const { id } = c.req.valid("param");
    const download = c.req.valid("query").download === "1";
    return await localVideo(config.dataDir, id, { ...fileRequest(c), download }) as never;
  });
  app.openapi(shotRoute, async (c) => {
    const { id, n } = c.req.valid("param");
    return await localScreenshot(config.dataDir, id, n, fileRequest(c)) as never;
  });
  return app;
}
