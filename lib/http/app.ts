/**
 * The Hono app: dependencies into the context, body limit, authentication, safe JSON bodies, one
 * error handler, the route files `main.ts` passes in, and the OpenAPI document from the schemas
 * that validate.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import type { AppDeps, AppEnv } from "./context.ts";
import { authenticate, createAuthenticator } from "./auth.ts";
import { errorHandler } from "./errors.ts";
import { MAX_BODY_BYTES, newApp } from "./openapi.ts";
import type { Hono, MiddlewareHandler } from "hono";
import type { WorkerDeps } from "./context.ts";
import { safeData } from "../core/strings.ts";

/** A route file's factory: its routes as a sub-app, given what the serving process has. */
export type RouteFactory<D> = (deps: D) => Hono<AppEnv>;

/** The route files of each listener (composed in `main.ts`). */
export interface RouteSets {
  /** The API process: every route. */
  api: ReadonlyArray<RouteFactory<AppDeps>>;
  /** A worker-only process: its sessions' viewers, recording files, stream media, assets. */
  worker: ReadonlyArray<RouteFactory<WorkerDeps>>;
}

export async function createApp(
  deps: AppDeps,
  routes: RouteSets["api"],
): Promise<OpenAPIHono<AppEnv>> {
  const app = newApp();
  const auth = await createAuthenticator(deps.config.tokens, deps.sessions.shares);
  for (const t of deps.config.tokens) deps.log.addSecret(t.token);

  app.onError(errorHandler(deps.log));
  app.notFound((c) => c.json({ error: `No route for ${c.req.method} ${c.req.path}` }, 404));

  app.use("*", deps.metrics.http);
  const limitBody = bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: (c) => c.json({ error: "Request body exceeds 1 MB" }, 413),
  });
  // Only methods that carry a body (wrapping a body-less DELETE trips a Deno warning).
  app.use(
    "/api/*",
    (c, next) => ["POST", "PUT", "PATCH"].includes(c.req.method) ? limitBody(c, next) : next(),
  );
  const { publicPressure, publicMetrics } = deps.config;
  app.use("/api/*", authenticate(auth, (path) => publicPressure && path === "/api/pressure"));
  app.use("/ws/*", authenticate(auth));
  app.use("/cdp", authenticate(auth));
  app.use("/cdp/*", authenticate(auth));
  app.use("/api/*", safeJsonBody);
  if (!publicMetrics) app.use("/metrics", authenticate(auth));

  for (const routesOf of routes) app.route("/", routesOf(deps));

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    description: "Needed when STREAMPLAY_TOKENS is set (roles viewer < operator < admin).",
  });
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "streamplay",
      version: deps.version,
      description:
        "Watch, drive, record and load-test web pages in real browsers. Every long-running " +
        "thing is a job with an id, a status, live events (WebSocket /ws/jobs/{id}) and history.",
    },
    servers: [{ url: deps.config.publicUrl }],
  });
  return app as unknown as OpenAPIHono<AppEnv>;
}

const JSON_BODY = /^application\/([\w.-]+\+)?json\s*(;|$)/i;

/**
 * Makes the strings of a JSON request body safe (`safeData`: lone surrogates and NUL become
 * U+FFFD) before any route reads it: the parsed body is what `c.req.json()` and the validators
 * get. A body that does not parse is left to the validator, which answers 400.
 */
const safeJsonBody: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (!["POST", "PUT", "PATCH"].includes(c.req.method)) return next();
  if (!JSON_BODY.test(c.req.header("content-type") ?? "")) return next();
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    return next();
  }
  const safe = safeData(body);
  if (safe !== body) c.req.bodyCache.json = Promise.resolve(safe);
  return next();
};

/**
 * The HTTP listener of a worker-only process (`--role=worker`): the viewer WebSockets and CDP
 * clients of the sessions it runs and the files of the recordings it made, with the same tokens
 * as the API, the media and players of the video streams it encodes, and a liveness answer at `/`.
 */
export async function createWorkerApp(
  deps: WorkerDeps,
  routes: RouteSets["worker"],
): Promise<OpenAPIHono<AppEnv>> {
  const app = newApp();
  const auth = await createAuthenticator(deps.config.tokens, deps.sessions.shares);
  for (const t of deps.config.tokens) deps.log.addSecret(t.token);
  app.onError(errorHandler(deps.log));
  app.notFound((c) => c.json({ error: `No route for ${c.req.method} ${c.req.path}` }, 404));
  app.use("/ws/*", authenticate(auth));
  app.use("/cdp/*", authenticate(auth));
  app.use("/api/recordings/*", authenticate(auth));
  app.get("/", (c) => c.json({ role: "worker", serves: ["/ws/sessions/:id", "/cdp/:id"] }));
  for (const routesOf of routes) app.route("/", routesOf(deps));
  return app as unknown as OpenAPIHono<AppEnv>;
}
