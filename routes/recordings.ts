/**
 * Recordings: start and stop a session's recording (a control op for the process that runs the
 * session), list them with filters and a cursor, read one with a summary of its timeline, its
 * timeline, its video (HTTP Range, so players seek), the screenshots taken at errors, delete,
 * clean older than an age, and replay it.
 *
 * Files stay on the node that recorded them and that node serves them: the API serves the files
 * it has (same process, or a data directory shared with the workers) and redirects (307) to the
 * recording's node for the others — the same way a session's `ws_url` points at its node; heavy
 * bytes never go through Redis. A worker's own listener serves the file routes
 * (`recordingFileRoutes`). Ids are checked against the recording id pattern before any path is
 * built, so no request reaches outside the recordings directory.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import parseRange from "range-parser";
import { requireRole } from "../lib/http/auth.ts";
import { badRequest } from "../lib/http/errors.ts";
import { bearer, errorResponse, jsonResponse, newApp } from "../lib/http/openapi.ts";
import { decodeCursor } from "../lib/history/store.ts";
import type { AppDeps, AppEnv, WorkerDeps } from "../lib/http/context.ts";
import {
  parseAge,
  readLocalMeta,
  RECORDING_ID_PATTERN,
  RECORDING_STATES,
  type RecordingMeta,
  recordingPaths,
  RecordOptions,
  toMb,
  VIDEO_MIME,
} from "../lib/recordings/model.ts";
import { type RecordingView, recordingView } from "../lib/recordings/catalog.ts";
import { CODECS, PROFILE_NAMES } from "../lib/video/codecs.ts";
import { ReplayOptions } from "../lib/recordings/replay_params.ts";
import { controlSession } from "../lib/sessions/control.ts";
import { startReplay } from "../lib/recordings/replay_start.ts";

const RecordingSchema = z.object({
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

const Summary = z.object({
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

const TimelineEntry = z.object({
  t: z.number().openapi({ description: "Seconds from the start of the video" }),
  at: z.string(),
  type: z.string().openapi({
    description: "input, navigation, navigation_failed, tab, console, page_error, " +
      "failed_request, request_blocked, dialog, viewer, ...",
  }),
  screenshot: z.number().nullable(),
  screenshot_url: z.string().nullable(),
}).catchall(z.unknown()).openapi("TimelineEntry");

const SessionIdParam = z.object({ id: z.string().min(1).max(200) });
const IdParam = z.object({
  id: z.string().regex(
    RECORDING_ID_PATTERN,
    "is not a recording id (rec_ followed by 17 lowercase letters or digits)",
  ),
});
const ShotParam = IdParam.extend({
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

const noRecording = (id: string) =>
  new HTTPException(404, { message: `No recording with id "${id}"` });

async function findRecording(deps: AppDeps, id: string): Promise<RecordingView> {
  const recording = await deps.recordings.catalog.get(id);
  if (!recording) throw noRecording(id);
  return recording;
}

/** Reads `length` bytes of `file` from `start`, then closes it. */
function fileStream(file: Deno.FsFile, start: number, length: number): ReadableStream<Uint8Array> {
  let left = length;
  let positioned = false;
  const close = () => {
    try {
      file.close();
    } catch { /* closed */ }
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        if (!positioned) {
          await file.seek(start, Deno.SeekMode.Start);
          positioned = true;
        }
        const chunk = new Uint8Array(Math.min(256 * 1024, left));
        const n = left > 0 ? await file.read(chunk) : null;
        if (!n) {
          close();
          controller.close();
          return;
        }
        left -= n;
        controller.enqueue(chunk.subarray(0, n));
      } catch (err) {
        close();
        controller.error(err);
      }
    },
    cancel: close,
  });
}

/**
 * Serves a file with Range support (one range: 206; unsatisfiable: 416; none, several or a
 * malformed header: the whole file). Null when the file is not here.
 */
async function serveFile(
  c: Context<AppEnv>,
  path: string,
  type: string,
  options: { download?: string | null; cache: string },
): Promise<Response | null> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch {
    return null;
  }
  // A recording in progress grows: what is served is what was there when it was opened.
  const size = (await file.stat()).size;
  const headers = new Headers({
    "Content-Type": type,
    "Accept-Ranges": "bytes",
    "Cache-Control": options.cache,
  });
  if (options.download) {
    headers.set("Content-Disposition", `attachment; filename="${options.download}"`);
  }
  let start = 0;
  let end = size - 1;
  let status = 200;
  const header = c.req.header("range");
  if (header) {
    const ranges = parseRange(size, header, { combine: true });
    if (ranges === -1) {
      file.close();
      headers.set("Content-Range", `bytes */${size}`);
      headers.set("Content-Type", "application/json");
      return new Response(
        JSON.stringify({ error: `range: ${header} is outside the file (${size} bytes)` }),
        { status: 416, headers },
      );
    }
    if (ranges !== -2 && ranges.type === "bytes" && ranges.length === 1) {
      start = ranges[0]!.start;
      end = ranges[0]!.end;
      status = 206;
      headers.set("Content-Range", `bytes ${start}-${end}/${size}`);
    }
  }
  headers.set("Content-Length", String(end - start + 1));
  if (c.req.method === "HEAD") {
    file.close();
    return new Response(null, { status, headers });
  }
  return new Response(fileStream(file, start, end - start + 1), { status, headers });
}

const VIDEO_CACHE = "private, no-cache";
const SHOT_CACHE = "private, max-age=86400";

function shotPath(dataDir: string, id: string, n: number | "final"): string {
  const paths = recordingPaths(dataDir, id);
  return n === "final" ? paths.final : paths.shot(n);
}

const videoRoute = createRoute({
  method: "get",
  path: "/api/recordings/{id}/video",
  tags: ["recordings"],
  summary: "The video file (MP4 or WebM), with HTTP Range support",
  description: "Served by the node that recorded it: other nodes answer 307 to it. Players " +
    "and <video> elements may pass ?token= instead of a header.",
  security: bearer,
  request: {
    params: IdParam,
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

/** Where the file is when not here: the recording's node, unless that is this process. */
function elsewhere(
  deps: AppDeps,
  c: Context<AppEnv>,
  recording: RecordingView,
  what: string,
): Response {
  const here = [deps.recordings.publicUrl(), deps.config.publicUrl];
  if (recording.node && !here.includes(recording.node)) {
    const url = new URL(c.req.url);
    return c.redirect(`${recording.node}${url.pathname}${url.search}`, 307);
  }
  throw new HTTPException(404, {
    message: `The ${what} of recording ${recording.recording_id} is not on this node any more`,
  });
}

export function recordingsRoutes(deps: AppDeps) {
  const app = newApp();

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/sessions/{id}/recording",
      tags: ["recordings"],
      summary: "Start recording a session: a video file plus a timeline of what happened",
      security: bearer,
      middleware: [requireRole("operator")] as const,
      request: {
        params: SessionIdParam,
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
      const reply = await controlSession(deps, id, "record_start", options, 30_000);
      const recording = recordingView(reply.data as RecordingMeta);
      c.header("Location", `/api/recordings/${recording.recording_id}`);
      return c.json(recording, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/api/sessions/{id}/recording",
      tags: ["recordings"],
      summary: "Stop a session's recording; answers its duration, frames and size",
      security: bearer,
      middleware: [requireRole("operator")] as const,
      request: { params: SessionIdParam },
      responses: {
        200: jsonResponse(RecordingSchema, "The finished recording"),
        404: errorResponse("Unknown session"),
        409: errorResponse("The session has ended or is not being recorded"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const reply = await controlSession(deps, id, "record_stop", {}, 60_000);
      return c.json(recordingView(reply.data as RecordingMeta), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/recordings",
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
    async (c) => {
      const q = c.req.valid("query");
      if (q.cursor && !decodeCursor(q.cursor)) {
        throw badRequest("cursor: is not a cursor this API returned");
      }
      return c.json(await deps.recordings.catalog.list(q), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/recordings/clean",
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
          }),
          "What was removed",
        ),
        400: errorResponse("Not an age"),
      },
    }),
    async (c) => {
      const { older_than } = c.req.valid("json");
      const ms = parseAge(older_than);
      if (ms === null || ms <= 0) {
        throw badRequest(
          `older_than: "${older_than}" is not an age; use a number and a unit: 45s, 30m, 12h, ` +
            "7d or 2w",
        );
      }
      const { removed, bytes } = await deps.recordings.catalog.clean(ms);
      return c.json({
        removed: removed.length,
        removed_bytes: bytes,
        removed_mb: toMb(bytes),
        recording_ids: removed,
      }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/recordings/{id}",
      tags: ["recordings"],
      summary: "One recording, with a summary of its timeline",
      security: bearer,
      request: { params: IdParam },
      responses: {
        200: jsonResponse(RecordingSchema.extend({ timeline: Summary }), "The recording"),
        400: errorResponse("Not a recording id"),
        404: errorResponse("Unknown recording"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const recording = await findRecording(deps, id);
      const entries = await deps.recordings.catalog.timeline(id);
      return c.json({ ...recording, timeline: deps.recordings.catalog.summarize(entries) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/recordings/{id}/timeline",
      tags: ["recordings"],
      summary: "What happened, in order, at its time in the video: inputs (with the element's " +
        "selector), navigations, tabs, console, page errors, failed requests",
      security: bearer,
      request: { params: IdParam },
      responses: {
        200: jsonResponse(
          z.object({ recording_id: z.string(), entries: z.array(TimelineEntry) }),
          "The timeline",
        ),
        400: errorResponse("Not a recording id"),
        404: errorResponse("Unknown recording"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      await findRecording(deps, id);
      return c.json({ recording_id: id, entries: await deps.recordings.catalog.timeline(id) }, 200);
    },
  );

  app.openapi(videoRoute, async (c) => {
    const { id } = c.req.valid("param");
    const recording = await findRecording(deps, id);
    const path = recordingPaths(deps.config.dataDir, id).video(recording.container);
    const served = await serveFile(c, path, VIDEO_MIME[recording.container], {
      download: c.req.valid("query").download === "1" ? `${id}.${recording.container}` : null,
      cache: VIDEO_CACHE,
    });
    return (served ?? elsewhere(deps, c, recording, "video")) as never;
  });

  app.openapi(shotRoute, async (c) => {
    const { id, n } = c.req.valid("param");
    const recording = await findRecording(deps, id);
    if (n !== "final" && n > recording.screenshots) {
      throw new HTTPException(404, { message: `Recording ${id} has no screenshot ${n}` });
    }
    const served = await serveFile(c, shotPath(deps.config.dataDir, id, n), "image/jpeg", {
      cache: SHOT_CACHE,
    });
    return (served ?? elsewhere(deps, c, recording, `screenshot ${n}`)) as never;
  });

  app.openapi(
    createRoute({
      method: "delete",
      path: "/api/recordings/{id}",
      tags: ["recordings"],
      summary: "Delete a recording: its row, timeline and files (on every node)",
      security: bearer,
      middleware: [requireRole("admin")] as const,
      request: { params: IdParam },
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
    async (c) => {
      const { id } = c.req.valid("param");
      const recording = await findRecording(deps, id);
      if (recording.state === "recording") {
        throw new HTTPException(409, {
          message: `Recording ${id} is still recording; stop it with DELETE ` +
            `/api/sessions/${recording.session_id}/recording first`,
        });
      }
      const { bytes } = await deps.recordings.catalog.remove([id]);
      return c.json({ deleted: id, removed_bytes: bytes }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/recordings/{id}/replay",
      tags: ["recordings"],
      summary: "Replay a recording in a fresh browser: a live `replay` job reporting divergences",
      description: "Answers once the replay's page is up, with its viewer URL and WebSocket " +
        "(view-only). Its result (GET /api/jobs/{replay_id}, or /api/recordings/{id}/replays) " +
        "lists the divergences.",
      security: bearer,
      middleware: [requireRole("operator")] as const,
      request: {
        params: IdParam,
        body: { content: { "application/json": { schema: ReplayOptions } }, required: false },
      },
      responses: {
        201: jsonResponse(
          z.object({
            replay_id: z.string(),
            recording_id: z.string(),
            status: z.string(),
            steps: z.number(),
            speed: z.union([z.number(), z.literal("max")]),
            viewer_url: z.string(),
            ws_url: z.string().nullable(),
            job_url: z.string(),
          }),
          "Started",
        ),
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
      tags: ["recordings"],
      summary: "The replays of a recording, newest first, with their divergences",
      security: bearer,
      request: { params: IdParam },
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
      await findRecording(deps, id);
      return c.json({ replays: await deps.recordings.catalog.replays(id) }, 200);
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
  const local = async (id: string): Promise<RecordingMeta> => {
    const meta = await readLocalMeta(config.dataDir, id);
    if (!meta) throw new HTTPException(404, { message: `No recording "${id}" on this node` });
    return meta;
  };
  app.openapi(videoRoute, async (c) => {
    const { id } = c.req.valid("param");
    const meta = await local(id);
    const served = await serveFile(
      c,
      recordingPaths(config.dataDir, id).video(meta.container),
      VIDEO_MIME[meta.container],
      {
        download: c.req.valid("query").download === "1" ? `${id}.${meta.container}` : null,
        cache: VIDEO_CACHE,
      },
    );
    if (!served) throw new HTTPException(404, { message: `Recording ${id} has no video here` });
    return served as never;
  });
  app.openapi(shotRoute, async (c) => {
    const { id, n } = c.req.valid("param");
    await local(id);
    const served = await serveFile(c, shotPath(config.dataDir, id, n), "image/jpeg", {
      cache: SHOT_CACHE,
    });
    if (!served) {
      throw new HTTPException(404, { message: `Recording ${id} has no screenshot ${n}` });
    }
    return served as never;
  });
  return app;
}
