/**
 * The Hono app: dependencies into the context, body limit, authentication, one error handler,
 * the route files, and the OpenAPI document generated from the same schemas that validate.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import type { AppDeps, AppEnv } from "./context.ts";
import { authenticate, createAuthenticator } from "./auth.ts";
import { errorHandler } from "./errors.ts";
import { newApp } from "./openapi.ts";
import { jobsRoutes } from "../../routes/jobs.ts";
import { healthRoutes } from "../../routes/health.ts";
import { assetRoutes, pageRoutes } from "../../routes/pages.ts";
import { artifactRoutes } from "../../routes/artifacts.ts";
import { benchRoutes } from "../../routes/bench.ts";
import { metricsRoutes } from "../../routes/metrics.ts";
import { sessionSocketRoutes, sessionsRoutes } from "../../routes/sessions.ts";
import { recordingFileRoutes, recordingsRoutes } from "../../routes/recordings.ts";
import { streamMediaRoutes, streamsRoutes } from "../../routes/streams.ts";
import type { Config } from "../core/config.ts";
import type { Logger } from "../core/log.ts";
import type { SessionDeps, StreamDeps } from "./context.ts";

export const MAX_BODY_BYTES = 1024 * 1024;

export async function createApp(deps: AppDeps): Promise<OpenAPIHono<AppEnv>> {
  const app = newApp();
  const auth = await createAuthenticator(deps.config.tokens);
  for (const t of deps.config.tokens) deps.log.addSecret(t.token);

  app.onError(errorHandler(deps.log));
  app.notFound((c) => c.json({ error: `No route for ${c.req.method} ${c.req.path}` }, 404));

  app.use("*", deps.metrics.http);
  app.use("*", async (c, next) => {
    c.set("deps", deps);
    c.set("config", deps.config);
    c.set("log", deps.log);
    c.set("queue", deps.queue);
    c.set("history", deps.history);
    c.set("hub", deps.hub);
    c.set("jobTypes", deps.jobTypes);
    c.set("policy", deps.policy);
    await next();
  });
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
  if (!publicMetrics) app.use("/metrics", authenticate(auth));

  app.route("/", healthRoutes());
  app.route("/", jobsRoutes());
  app.route("/", artifactRoutes());
  app.route("/", benchRoutes());
  app.route("/", pageRoutes());
  app.route("/", metricsRoutes());
  app.route("/", sessionsRoutes());
  app.route("/", sessionSocketRoutes(deps.sessions));
  app.route("/", recordingsRoutes());
  app.route("/", streamsRoutes());
  app.route("/", streamMediaRoutes(deps.streams));

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    description: "Needed when STREAMPLAY_TOKENS is set (roles viewer < operator < admin).",
  });
  for (const type of deps.jobTypes.values()) {
    app.openAPIRegistry.register(
      `${type.name.replace(/(^|-)(\w)/g, (_, _d, ch: string) => ch.toUpperCase())}Params`,
      type.params,
    );
  }
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

/**
 * The HTTP listener of a worker-only process (`--role=worker`): the viewer WebSockets of the
 * sessions it runs and the files of the recordings it made, with the same tokens as the API,
 * the media and players of the video streams it encodes, and a liveness answer at `/`.
 */
export async function createWorkerApp(
  deps: { config: Config; log: Logger; sessions: SessionDeps; streams: StreamDeps },
): Promise<OpenAPIHono<AppEnv>> {
  const app = newApp();
  const auth = await createAuthenticator(deps.config.tokens);
  for (const t of deps.config.tokens) deps.log.addSecret(t.token);
  app.onError(errorHandler(deps.log));
  app.notFound((c) => c.json({ error: `No route for ${c.req.method} ${c.req.path}` }, 404));
  app.use("/ws/*", authenticate(auth));
  app.use("/api/recordings/*", authenticate(auth));
  app.get("/", (c) => c.json({ role: "worker", serves: "/ws/sessions/:id" }));
  app.route("/", sessionSocketRoutes(deps.sessions));
  app.route("/", recordingFileRoutes(deps.config));
  app.route("/", streamMediaRoutes(deps.streams));
  app.route("/", assetRoutes());
  return app as unknown as OpenAPIHono<AppEnv>;
}
