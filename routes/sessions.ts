/**
 * Live sessions: create (a `session` job, within STREAMPLAY_MAX_SESSIONS), list, read with live
 * metrics, navigate, pause, resume, screenshot, delete (final stats), error screenshots, and the
 * viewer WebSocket `/ws/sessions/:id`, which is served by the process that runs the session
 * (`ws_url` points there). Control requests go straight to the session when it runs in this
 * process, through Redis to the process that runs it otherwise. Replays (`replay` jobs) are
 * sessions too: they are read, watched (view-only) and stopped here like the others.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { hasRole, requireRole } from "../lib/http/auth.ts";
import { badRequest } from "../lib/http/errors.ts";
import { bearer, errorResponse, jsonResponse, newApp } from "../lib/http/openapi.ts";
import { FINAL_STATUSES, type JobRecord } from "../lib/jobs/queue.ts";
import type { AppDeps, AppEnv, WorkerDeps } from "../lib/http/context.ts";
import type { SessionMetrics, SessionSnapshot } from "../lib/sessions/protocol.ts";
import { SessionParams } from "../lib/sessions/params.ts";
import { allEvents } from "../lib/jobs/lookup.ts";
import { controlSession, findSession, LIVE_TYPES } from "../lib/sessions/control.ts";
import { startSession } from "../lib/sessions/start.ts";
import type { Principal } from "../lib/http/auth.ts";

const Metrics = z.object({
  current_fps: z.number(),
  current_bitrate: z.number().openapi({ description: "Bits per second of the stream" }),
  frames_captured: z.number(),
  frames_sent: z.number().openapi({ description: "Frame messages sent, summed over viewers" }),
  bytes_sent: z.number(),
  viewer_count: z.number(),
  dropped_frames: z.number().openapi({ description: "Frames busy viewers skipped" }),
  buffer_health: z.number().openapi({ description: "Percent of offered frames sent, last 5 s" }),
  latency_ms: z.object({ p50: z.number().nullable(), p95: z.number().nullable() }),
}).openapi("SessionMetrics");

const Tab = z.object({ id: z.string(), url: z.string(), title: z.string(), active: z.boolean() });

export const SessionSchema = z.object({
  id: z.string(),
  status: z.string().openapi({ description: "Status of the session's job" }),
  active: z.boolean(),
  state: z.enum(["starting", "active", "paused", "stopped", "failed"]),
  health: z.enum(["healthy", "degraded", "unhealthy"]),
  reason: z.string().nullable().openapi({ description: "Why it ended (idle_timeout, ...)" }),
  uptime_seconds: z.number(),
  url: z.string(),
  title: z.string(),
  tabs: z.array(Tab),
  viewport: z.object({ width: z.number(), height: z.number() }),
  viewer_url: z.string(),
  ws_url: z.string().nullable().openapi({ description: "Viewer WebSocket, on the serving node" }),
  node: z.string().nullable(),
  created_at: z.string().nullable(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  options: z.object({
    quality: z.number(),
    max_fps: z.number(),
    idle_timeout_s: z.number(),
    max_duration_s: z.number(),
  }),
  metrics: Metrics,
  final: z.record(z.string(), z.unknown()).nullable()
    .openapi({ description: "Final stats once the session ended" }),
}).openapi("Session");

type SessionView = z.infer<typeof SessionSchema>;

const IdParam = z.object({ id: z.string().min(1).max(200) });

const ZERO_METRICS: SessionMetrics = {
  current_fps: 0,
  current_bitrate: 0,
  frames_captured: 0,
  frames_sent: 0,
  bytes_sent: 0,
  viewer_count: 0,
  dropped_frames: 0,
  buffer_health: 100,
  latency_ms: { p50: null, p95: null },
};

/** The API's view of a session: its job, and the live snapshot while it runs. */
function sessionView(
  deps: AppDeps,
  job: JobRecord,
  snap: SessionSnapshot | null,
): SessionView {
  const params = (deps.jobTypes.get(job.type)?.params ?? SessionParams).parse(
    job.params,
  ) as SessionParams;
  const final = FINAL_STATUSES.has(job.status);
  const result = final && job.result && typeof job.result === "object"
    ? job.result as Record<string, unknown>
    : null;
  const state = final
    ? (job.status === "failed" ? "failed" : "stopped")
    : snap?.state ?? "starting";
  const over = state === "stopped" || state === "failed";
  const started = job.started_at ? Date.parse(job.started_at) : null;
  const ended = job.finished_at ? Date.parse(job.finished_at) : Date.now();
  const num = (v: unknown) => (typeof v === "number" ? v : 0);
  return {
    id: job.id,
    status: job.status,
    active: !over,
    state,
    health: state === "failed" ? "unhealthy" : final ? "healthy" : snap?.health ?? "healthy",
    reason: final ? String(result?.reason ?? job.error ?? job.status) : snap?.reason ?? null,
    uptime_seconds: started === null ? 0 : Math.max(0, Math.round((ended - started) / 1000)),
    url: snap?.url ?? String(result?.url ?? params.url),
    title: snap?.title ?? "",
    tabs: snap?.tabs ?? [],
    viewport: snap?.viewport ?? params.viewport,
    viewer_url: `${deps.config.publicUrl}/?session=${job.id}`,
    ws_url: over ? null : snap?.ws_url ?? null,
    node: snap?.node ?? null,
    created_at: job.created_at,
    started_at: job.started_at,
    finished_at: job.finished_at,
    options: {
      quality: params.quality,
      max_fps: params.max_fps,
      idle_timeout_s: params.idle_timeout_s,
      max_duration_s: params.max_duration_s,
    },
    metrics: final
      ? {
        ...ZERO_METRICS,
        frames_captured: num(result?.frames_captured),
        frames_sent: num(result?.frames_sent),
        bytes_sent: num(result?.bytes_sent),
        dropped_frames: num(result?.dropped_frames),
      }
      : snap?.metrics ?? ZERO_METRICS,
    final: final ? result ?? { state, reason: job.error } : null,
  };
}

async function liveView(deps: AppDeps, job: JobRecord): Promise<SessionView> {
  const snap = FINAL_STATUSES.has(job.status)
    ? null
    : deps.sessions.host?.get(job.id)?.snapshot() ??
      await deps.sessions.store.snapshot(job.id).catch(() => null);
  return sessionView(deps, job, snap);
}

export function sessionsRoutes(deps: AppDeps) {
  const app = newApp();

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/sessions",
      tags: ["sessions"],
      summary: "Start a live browser session on a URL (answers once the browser is up)",
      security: bearer,
      middleware: [requireRole("operator")] as const,
      request: {
        body: { content: { "application/json": { schema: SessionParams } }, required: true },
      },
      responses: {
        201: jsonResponse(SessionSchema, "Started: connect a viewer to ws_url"),
        400: errorResponse("Invalid body or a refused URL"),
        429: errorResponse("All session slots are in use, or the platform is full"),
        502: errorResponse("The session failed to start"),
        503: errorResponse(
          "No worker started the session in time, Redis is down, or CPU or memory is over its limit",
        ),
      },
    }),
    async (c) => {
      const job = await startSession(deps, { type: "session", params: c.req.valid("json") });
      c.header("Location", `/api/sessions/${job.id}`);
      return c.json(await liveView(deps, job), 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/sessions",
      tags: ["sessions"],
      summary: "The active sessions",
      security: bearer,
      responses: {
        200: jsonResponse(z.object({ sessions: z.array(SessionSchema) }), "Active sessions"),
      },
    }),
    async (c) => {
      const ids = await deps.sessions.store.active();
      const jobs = await Promise.all(ids.map((id) => deps.queue.get(id)));
      const snaps = await deps.sessions.store.snapshots(ids);
      const sessions = jobs.flatMap((job, i) =>
        job && LIVE_TYPES.has(job.type) && !FINAL_STATUSES.has(job.status)
          ? [sessionView(deps, job, deps.sessions.host?.get(job.id)?.snapshot() ?? snaps[i]!)]
          : []
      ).filter((s) => s.active);
      return c.json({ sessions }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/sessions/{id}",
      tags: ["sessions"],
      summary: "One session: state, health, page, tabs and live metrics (final stats once ended)",
      security: bearer,
      request: { params: IdParam },
      responses: {
        200: jsonResponse(SessionSchema, "The session"),
        404: errorResponse("Unknown id"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      return c.json(await liveView(deps, await findSession(deps, id)), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/sessions/{id}/navigate",
      tags: ["sessions"],
      summary: "Load a URL in the session's active tab (the URL policy applies)",
      security: bearer,
      middleware: [requireRole("operator")] as const,
      request: {
        params: IdParam,
        body: {
          content: {
            "application/json": {
              schema: z.object({ url: z.string().min(1).max(8192) }).strict(),
            },
          },
          required: true,
        },
      },
      responses: {
        200: jsonResponse(
          z.object({ url: z.string(), status: z.number().nullable() }),
          "Loaded (DOMContentLoaded)",
        ),
        400: errorResponse("Invalid body or a refused URL"),
        404: errorResponse("Unknown id"),
        409: errorResponse("The session has ended"),
        502: errorResponse("The navigation failed"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { url } = c.req.valid("json");
      const verdict = await deps.policy.check(url);
      if (!verdict.ok) throw badRequest(`url: ${url} is refused: ${verdict.reason}`);
      const reply = await controlSession(deps, id, "navigate", { url }, 45_000);
      const data = reply.data as { url: string; status: number | null };
      return c.json({ url: data.url, status: data.status }, 200);
    },
  );

  for (const op of ["pause", "resume"] as const) {
    app.openapi(
      createRoute({
        method: "post",
        path: `/api/sessions/{id}/${op}`,
        tags: ["sessions"],
        summary: op === "pause"
          ? "Pause the stream (capture stops; input is refused until resumed)"
          : "Resume a paused stream",
        security: bearer,
        middleware: [requireRole("operator")] as const,
        request: { params: IdParam },
        responses: {
          200: jsonResponse(SessionSchema, "The session"),
          404: errorResponse("Unknown id"),
          409: errorResponse("The session has ended or is still starting"),
        },
      }),
      async (c) => {
        const { id } = c.req.valid("param");
        const reply = await controlSession(deps, id, op);
        const job = await findSession(deps, id);
        return c.json(sessionView(deps, job, reply.data as SessionSnapshot), 200);
      },
    );
  }

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/sessions/{id}/screenshot",
      tags: ["sessions"],
      summary: "A PNG of the active tab now",
      security: bearer,
      request: { params: IdParam },
      responses: {
        200: { description: "PNG", content: { "image/png": { schema: z.string() } } },
        404: errorResponse("Unknown id"),
        409: errorResponse("The session has ended"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const reply = await controlSession(deps, id, "screenshot", {}, 35_000);
      c.header("Content-Type", "image/png");
      c.header("Cache-Control", "no-store");
      return c.body(reply.bytes!.slice().buffer, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/sessions/{id}/screenshots/{n}",
      tags: ["sessions"],
      summary: "The screenshot taken at a page error (JPEG), from the session's stored events",
      security: bearer,
      request: { params: IdParam.extend({ n: z.coerce.number().int().min(1).max(1000) }) },
      responses: {
        200: { description: "JPEG", content: { "image/jpeg": { schema: z.string() } } },
        404: errorResponse("Unknown id or screenshot"),
      },
    }),
    async (c) => {
      const { id, n } = c.req.valid("param");
      await findSession(deps, id);
      const event = (await allEvents(deps, id)).find((e) =>
        e.type === "page_error" && e.screenshot === n && typeof e.image_base64 === "string"
      );
      if (!event) {
        throw new HTTPException(404, { message: `Session ${id} has no screenshot ${n}` });
      }
      c.header("Content-Type", "image/jpeg");
      c.header("Cache-Control", "private, max-age=86400");
      return c.body(Uint8Array.fromBase64(event.image_base64 as string).buffer, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/api/sessions/{id}",
      tags: ["sessions"],
      summary: "End a session; answers its final stats",
      security: bearer,
      middleware: [requireRole("operator")] as const,
      request: { params: IdParam },
      responses: {
        200: jsonResponse(SessionSchema, "The ended session with its final stats"),
        404: errorResponse("Unknown id"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      let job = await findSession(deps, id);
      if (!FINAL_STATUSES.has(job.status)) {
        const local = deps.sessions.host?.get(id);
        const snap = local ? null : await deps.sessions.store.snapshot(id);
        const ended = snap?.state === "stopped" || snap?.state === "failed";
        // A session that has just ended gets its job's final status in a moment.
        if (local) await local.control("stop", {});
        else if (!ended) {
          const stopped = job.status === "running" &&
            await deps.sessions.store.request(id, "stop", {}, snap ? 20_000 : 5_000);
          if (!stopped) await deps.queue.cancel(id);
        }
      }
      const deadline = Date.now() + 15_000;
      while (!FINAL_STATUSES.has(job.status) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        job = await findSession(deps, id);
      }
      return c.json(sessionView(deps, job, null), 200);
    },
  );

  return app;
}

/**
 * `GET /ws/sessions/:id`: a viewer of a session running in this process. Frames arrive as
 * binary messages (see `lib/sessions/frame.ts`); state, stats and events as JSON; input goes
 * back as JSON (`lib/sessions/protocol.ts`). Callers below the operator role, and anyone asking
 * `?mode=view`, are view-only.
 */
export function sessionSocketRoutes({ sessions }: WorkerDeps) {
  const app = new Hono<AppEnv>();
  app.get("/ws/sessions/:id", async (c) => {
    const id = c.req.param("id");
    const live = sessions.host?.get(id);
    if (!live) {
      const snap = await sessions.store.snapshot(id).catch(() => null);
      if (snap?.state === "stopped" || snap?.state === "failed") {
        throw new HTTPException(410, { message: `Session ${id} has ended (${snap.state})` });
      }
      if (snap) {
        throw new HTTPException(421, {
          message: `Session ${id} is served by another process: connect to ${snap.ws_url}`,
        });
      }
      throw new HTTPException(404, { message: `No live session with id "${id}"` });
    }
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw new HTTPException(426, { message: "This endpoint speaks WebSocket" });
    }
    const mode = c.req.query("mode") ?? "interactive";
    if (mode !== "view" && mode !== "interactive") {
      throw badRequest(`mode: must be "view" or "interactive", got "${mode}"`);
    }
    const principal = c.get("principal") as Principal;
    // A replay is driven by its recording: everyone watches.
    const interactive = mode === "interactive" && hasRole(principal, "operator") &&
      !("replay" in live.params);
    const { socket, response } = Deno.upgradeWebSocket(c.req.raw);
    live.join(socket, { interactive, name: principal.name });
    return response;
  });
  return app;
}
