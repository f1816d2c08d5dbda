/** Health of the parts (`/api/health`) and history statistics (`/api/stats`). */
import { createRoute, z } from "@hono/zod-openapi";
import type { AppDeps } from "../lib/http/context.ts";
import { bearer, jsonResponse, newApp } from "../lib/http/openapi.ts";
import type { EncoderTable } from "../lib/video/codecs.ts";

const Health = z.object({
  status: z.enum(["ok", "degraded"]),
  redis: z.enum(["ok", "down"]),
  duckdb: z.enum(["ok", "down"]),
  version: z.string(),
  workers: z.object({ concurrency: z.number(), running: z.number() }).optional(),
  encoders: z.record(
    z.string(),
    z.array(z.object({ encoder: z.string(), hardware: z.boolean() })),
  ).nullable().openapi({
    description: "Video encoders that passed a trial encode here, per codec, hardware first " +
      "(null while the trial encodes run at start-up)",
  }),
}).openapi("Health");

const Stats = z.object({
  total: z.number(),
  by_type_status: z.array(z.object({ type: z.string(), status: z.string(), count: z.number() })),
  duration_by_type: z.array(z.object({
    type: z.string(),
    finished: z.number(),
    p50_s: z.number().nullable(),
    p95_s: z.number().nullable(),
  })),
  per_day: z.array(z.object({ day: z.string(), type: z.string(), count: z.number() })),
}).openapi("Stats");

function usableEncoders(table: EncoderTable | null) {
  if (!table) return null;
  return Object.fromEntries(
    Object.entries(table).map(([codec, found]) => [
      codec,
      found.map(({ encoder, hardware }) => ({ encoder, hardware })),
    ]),
  );
}

export function healthRoutes(deps: AppDeps) {
  const app = newApp();

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/health",
      tags: ["platform"],
      summary: "Health of Redis and DuckDB (503 naming the part that is down), usable encoders",
      security: bearer,
      responses: {
        200: jsonResponse(Health, "All parts answer"),
        503: jsonResponse(Health, "A part is down"),
      },
    }),
    async (c) => {
      const [redisOk, duckOk] = await Promise.all([deps.queue.ping(), deps.history.ping()]);
      const body: z.infer<typeof Health> = {
        status: redisOk && duckOk ? "ok" : "degraded",
        redis: redisOk ? "ok" : "down",
        duckdb: duckOk ? "ok" : "down",
        version: deps.version,
        encoders: usableEncoders(deps.encoders.current()),
      };
      if (deps.runner) {
        const s = deps.runner.stats();
        body.workers = { concurrency: s.concurrency, running: s.running };
      }
      return c.json(body, body.status === "ok" ? 200 : 503);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/stats",
      tags: ["jobs"],
      summary: "Counts by type and status, p50/p95 duration by type, jobs per day",
      security: bearer,
      responses: { 200: jsonResponse(Stats, "Statistics from DuckDB") },
    }),
    async (c) => c.json(await deps.history.stats(), 200),
  );

  return app;
}
