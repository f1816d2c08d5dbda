/** Health of the parts (`/api/health`) and history statistics (`/api/stats`). */
import { createRoute, z } from "@hono/zod-openapi";
import type { AppDeps } from "../lib/http/context.ts";
import { bearer, jsonResponse, newApp } from "../lib/http/openapi.ts";
import { HealthSchema, platformHealth } from "../lib/monitoring/health.ts";
import type { Stats } from "../lib/history/store.ts";

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
}).openapi("Stats") satisfies z.ZodType<Stats>;

export function healthRoutes(deps: AppDeps) {
  const app = newApp();

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/health",
      operationId: "getHealth",
      tags: ["platform"],
      summary: "Health of Redis and DuckDB (503 naming the part that is down), usable encoders",
      security: bearer,
      responses: {
        200: jsonResponse(HealthSchema, "All parts answer"),
        503: jsonResponse(HealthSchema, "A part is down"),
      },
    }),
    async (c) => {
      const health = await platformHealth(deps);
      return c.json(health, health.status === "ok" ? 200 : 503);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/stats",
      operationId: "getStats",
      tags: ["jobs"],
      summary: "Counts by type and status, p50/p95 duration by type, jobs per day",
      security: bearer,
      responses: { 200: jsonResponse(Stats, "Statistics from DuckDB") },
    }),
    async (c) => c.json(await deps.history.stats(), 200),
  );

  return app;
}
