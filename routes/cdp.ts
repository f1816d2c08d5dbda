/**
 * `GET /cdp` and `GET /cdp/:id`: a Playwright or Puppeteer client's browser-level CDP connection
 * to a new isolated session, or to a running one (`lib/sessions/cdp_sessions.ts`). The API
 * process passes a client on to the process that runs its session; a worker serves its own.
 */
import { createRoute, type RouteConfig } from "@hono/zod-openapi";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { type Principal, requestToken, requireRole } from "../lib/http/auth.ts";
import { bearer, errorResponse, IdParam, newApp } from "../lib/http/openapi.ts";
import type { AppDeps, AppEnv, WorkerDeps } from "../lib/http/context.ts";
import {
  cdpEndpoint,
  CdpQuery,
  createCdpGateway,
  openCdpSession,
  relayCdp,
} from "../lib/sessions/cdp_sessions.ts";
import { cdpUrl } from "../lib/sessions/view.ts";

const upgrade = { description: "Switching Protocols: the connection speaks browser-level CDP" };

const newSessionRoute = createRoute(
  {
    method: "get",
    path: "/cdp",
    operationId: "connectCdp",
    tags: ["cdp"],
    summary: "Connect a CDP client (Playwright connectOverCDP, Puppeteer connect) to a new session",
    description: "A WebSocket upgrade. Opens an isolated live session (listed, watchable, " +
      "recordable with record=1) whose browser context is the client's default context; it " +
      "ends when the client disconnects (keep_alive_s later). Pass ?token= when tokens are on.",
    security: bearer,
    middleware: [requireRole("operator")] as const,
    request: { query: CdpQuery },
    responses: {
      101: upgrade,
      400: errorResponse("Invalid query"),
      401: errorResponse("A token is needed"),
      403: errorResponse("The token's role is below operator"),
      426: errorResponse("Not a WebSocket upgrade"),
      429: errorResponse(
        "Every session slot is in use, the token is at its max_sessions, or the platform is " +
          "full (Retry-After)",
      ),
      502: errorResponse("The session failed to start"),
      503: errorResponse("No worker started the session in time, or Redis is down"),
    },
  } satisfies RouteConfig,
);

const attachRoute = createRoute(
  {
    method: "get",
    path: "/cdp/{id}",
    operationId: "attachCdp",
    tags: ["cdp"],
    summary: "Connect a CDP client to a running session (its `cdp_url`)",
    description: "A WebSocket upgrade. The session stays as it was: it does not end when the " +
      "client leaves unless it was opened through GET /cdp.",
    security: bearer,
    middleware: [requireRole("operator")] as const,
    request: { params: IdParam },
    responses: {
      101: upgrade,
      401: errorResponse("A token is needed"),
      403: errorResponse("The token's role is below operator"),
      404: errorResponse("No live session with that id"),
      409: errorResponse("The session has ended, or is a replay or a function"),
      421: errorResponse("The session runs in another process: connect to its cdp_url"),
      426: errorResponse("Not a WebSocket upgrade"),
    },
  } satisfies RouteConfig,
);

function requireUpgrade(c: Context<AppEnv>) {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    throw new HTTPException(426, { message: "This endpoint speaks WebSocket (CDP)" });
  }
}

export function cdpRoutes(deps: AppDeps) {
  const app = newApp();
  const gateway = createCdpGateway({
    policy: deps.policy,
    dataDir: deps.config.dataDir,
    log: deps.log,
  });

  /** Serves the client here when the session runs here, else passes it on to its process. */
  const serve = async (c: Context<AppEnv>, id: string) => {
    const endpoint = await cdpEndpoint(deps.sessions, id);
    // Read before the upgrade: the request is gone after it.
    const token = requestToken(c.req.raw, true);
    const { socket, response } = Deno.upgradeWebSocket(c.req.raw);
    if ("live" in endpoint) gateway.attach(endpoint.live, socket);
    else relayCdp(socket, cdpUrl(endpoint.node, id), token, deps.log);
    return response;
  };

  app.openapi(newSessionRoute, async (c) => {
    requireUpgrade(c);
    const principal = c.get("principal") as Principal;
    const job = await openCdpSession(deps, c.req.valid("query"), { owner: principal });
    return await serve(c, job.id) as never;
  });

  app.openapi(attachRoute, async (c) => {
    requireUpgrade(c);
    return await serve(c, c.req.valid("param").id) as never;
  });

  return app;
}

/** A worker-only process serves CDP clients of the sessions it runs. */
export function cdpSessionRoutes(deps: WorkerDeps) {
  const app = newApp();
  const gateway = createCdpGateway({
    policy: deps.policy,
    dataDir: deps.config.dataDir,
    log: deps.log,
  });
  app.openapi(attachRoute, async (c) => {
    requireUpgrade(c);
    const id = c.req.valid("param").id;
    const endpoint = await cdpEndpoint(deps.sessions, id);
    if (!("live" in endpoint)) {
      const url = cdpUrl(endpoint.node, id);
      return c.json(
        { error: `Session ${id} is served by another process: connect to ${url}` },
        421,
      );
    }
    const { socket, response } = Deno.upgradeWebSocket(c.req.raw);
    gateway.attach(endpoint.live, socket);
    return response as never;
  });
  return app;
}
