/**
 * Live sessions (`lib/sessions/manage.ts`), replays included, and the viewer WebSocket
 * `/ws/sessions/:id`, served by the process that runs the session (`ws_url` points there).
 */
import { createRoute, z } from "@hono/zod-openapi";
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { hasRole, type Principal, refuseShareLinks, requireRole } from "../lib/http/auth.ts";
import { bearer, errorResponse, IdParam, jsonResponse, newApp } from "../lib/http/openapi.ts";
import type { AppDeps, AppEnv, WorkerDeps } from "../lib/http/context.ts";
import { invalid } from "../lib/core/errors.ts";
import { SessionParams } from "../lib/sessions/params.ts";
import { SessionSchema } from "../lib/sessions/view.ts";
import {
  DOWNLOAD_NAME,
  DownloadSchema,
  listDownloads,
  openDownload,
} from "../lib/sessions/downloads.ts";
import { joinViewer, viewerTarget } from "../lib/sessions/control.ts";
import { ShareRequest, ShareSchema, shareSession } from "../lib/sessions/share.ts";
import {
  endSession,
  errorScreenshot,
  getSession,
  listSessions,
  navigateSession,
  openSession,
  pauseSession,
  sessionScreenshot,
} from "../lib/sessions/manage.ts";

export function sessionsRoutes(deps: AppDeps) {
  const app = newApp();

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/sessions",
      operationId: "createSession",
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
        429: errorResponse(
          "All session slots are in use, the token holds its max_sessions, or the platform is full",
        ),
        502: errorResponse("The session failed to start"),
        503: errorResponse(
          "No worker started the session in time, Redis is down, or CPU or memory is over its limit",
        ),
      },
    }),
    async (c) => {
      const session = await openSession(deps, c.req.valid("json"), c.get("principal"));
      c.header("Location", `/api/sessions/${session.id}`);
      return c.json(session, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/sessions",
      operationId: "listSessions",
      tags: ["sessions"],
      summary: "The active sessions",
      security: bearer,
      responses: {
        200: jsonResponse(z.object({ sessions: z.array(SessionSchema) }), "Active sessions"),
      },
    }),
    async (c) => c.json({ sessions: await listSessions(deps) }, 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/sessions/{id}",
      operationId: "getSession",
      tags: ["sessions"],
      summary: "One session: state, health, page, tabs and live metrics (final stats once ended)",
      security: bearer,
      request: { params: IdParam },
      responses: {
        200: jsonResponse(SessionSchema, "The session"),
        404: errorResponse("Unknown id"),
      },
    }),
    async (c) => c.json(await getSession(deps, c.req.valid("param").id), 200),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/sessions/{id}/navigate",
      operationId: "navigateSession",
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
      return c.json(await navigateSession(deps, id, c.req.valid("json").url), 200);
    },
  );

  for (const op of ["pause", "resume"] as const) {
    app.openapi(
      createRoute({
        method: "post",
        path: `/api/sessions/{id}/${op}`,
        operationId: `${op}Session`,
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
      async (c) => c.json(await pauseSession(deps, c.req.valid("param").id, op), 200),
    );
  }

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/sessions/{id}/screenshot",
      operationId: "getSessionScreenshot",
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
      const png = await sessionScreenshot(deps, c.req.valid("param").id);
      c.header("Content-Type", "image/png");
      c.header("Cache-Control", "no-store");
      return c.body(png.slice().buffer, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/sessions/{id}/screenshots/{n}",
      operationId: "getSessionErrorScreenshot",
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
      const jpeg = await errorScreenshot(deps, id, n);
      c.header("Content-Type", "image/jpeg");
      c.header("Cache-Control", "private, max-age=86400");
      return c.body(jpeg.slice().buffer, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/sessions/{id}/share",
      operationId: "shareSession",
      tags: ["sessions"],
      summary:
        "A share link: the session's page for a viewer or an operator of it, until it expires",
      security: bearer,
      middleware: [requireRole("operator"), refuseShareLinks()] as const,
      request: {
        params: IdParam,
        body: { content: { "application/json": { schema: ShareRequest } }, required: true },
      },
      responses: {
        201: jsonResponse(ShareSchema, "The link and its token"),
        400: errorResponse("Invalid body"),
        403: errorResponse("Not an operator, or a share link's holder"),
        404: errorResponse("Unknown id"),
        409: errorResponse("The session has ended"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const base = deps.recordings.publicUrl();
      return c.json(await shareSession(deps, id, c.req.valid("json"), base), 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/sessions/{id}/downloads",
      operationId: "listSessionDownloads",
      tags: ["sessions"],
      summary: "Files the session's browser downloaded (for a CDP client), on its node",
      security: bearer,
      request: { params: IdParam },
      responses: {
        200: jsonResponse(z.object({ downloads: z.array(DownloadSchema) }), "Downloads, by name"),
        404: errorResponse("Unknown id"),
      },
    }),
    async (c) => c.json({ downloads: await listDownloads(deps, c.req.valid("param").id) }, 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/sessions/{id}/downloads/{name}",
      operationId: "getSessionDownload",
      tags: ["sessions"],
      summary: "One downloaded file",
      security: bearer,
      request: { params: IdParam.extend({ name: z.string().regex(DOWNLOAD_NAME) }) },
      responses: {
        200: {
          description: "The file, as an attachment",
          content: { "application/octet-stream": { schema: z.string() } },
        },
        404: errorResponse("Unknown id or file"),
      },
    }),
    async (c) => {
      const { id, name } = c.req.valid("param");
      const { file, bytes } = await openDownload(deps, id, name);
      c.header("Content-Type", "application/octet-stream");
      c.header("Content-Length", String(bytes));
      c.header("Content-Disposition", `attachment; filename*=UTF-8''${encodeURIComponent(name)}`);
      c.header("X-Content-Type-Options", "nosniff");
      return c.body(file.readable, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/api/sessions/{id}",
      operationId: "endSession",
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
    async (c) => c.json(await endSession(deps, c.req.valid("param").id), 200),
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
    const target = await viewerTarget(sessions, id);
    if ("ended" in target) {
      return c.json({ error: `Session ${id} has ended (${target.ended})` }, 410);
    }
    if ("elsewhere" in target) {
      const error = `Session ${id} is served by another process: connect to ${target.elsewhere}`;
      return c.json({ error }, 421);
    }
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw new HTTPException(426, { message: "This endpoint speaks WebSocket" });
    }
    const mode = c.req.query("mode") ?? "interactive";
    if (mode !== "view" && mode !== "interactive") {
      throw invalid(`mode: must be "view" or "interactive", got "${mode}"`);
    }
    const principal = c.get("principal") as Principal;
    const { socket, response } = Deno.upgradeWebSocket(c.req.raw);
    joinViewer(target.live, socket, {
      name: principal.name,
      wantsToDrive: mode === "interactive",
      mayDrive: hasRole(principal, "operator"),
    });
    return response;
  });
  return app;
}
