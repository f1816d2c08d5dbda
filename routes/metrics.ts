/**
 * Monitoring: `/metrics` (Prometheus), `/api/pressure` (JSON, or 200/503 for load balancers),
 * the series catalog and their history downsampled in DuckDB, analytics (anomalies and
 * forecasts), and the live dashboard WebSocket `/ws/dashboard`.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { HTTPException } from "hono/http-exception";
import { upgradeWebSocket } from "hono/deno";
import { accepts } from "hono/accepts";
import { bearer, errorResponse, jsonResponse, newApp } from "../lib/http/openapi.ts";
import type { AppDeps } from "../lib/http/context.ts";
import type { Pressure } from "../lib/monitoring/pressure.ts";
import type { AlertRecord } from "../lib/monitoring/alerts.ts";
import type { Forecast } from "../lib/monitoring/monitor.ts";
import { seriesCatalog, seriesHistory } from "../lib/monitoring/series_history.ts";
import { checkDashboard, joinDashboard } from "../lib/monitoring/watch.ts";

const PressureSchema = z.object({
  cpu: z.number().nullable().openapi({ description: "This machine's CPU busy %, 5 s average" }),
  memory: z.number().nullable().openapi({ description: "This machine's memory in use, %" }),
  running: z.number().int().openapi({ description: "Jobs running, all worker processes" }),
  queued: z.number().int().openapi({ description: "Jobs waiting in the queue" }),
  max_concurrent: z.number().int().openapi({ description: "Worker slots of the live workers" }),
  max_queued: z.number().int().openapi({ description: "STREAMPLAY_MAX_QUEUED" }),
  is_available: z.boolean(),
  reason: z.enum(["", "full", "cpu", "memory"]),
  message: z.string(),
  date: z.string(),
}).openapi("Pressure") satisfies z.ZodType<Pressure>;

const AlertSchema = z.object({
  id: z.string(),
  series: z.string(),
  unit: z.string(),
  direction: z.enum(["high", "low"]),
  value: z.number(),
  peak: z.number(),
  baseline: z.number(),
  expected_low: z.number(),
  expected_high: z.number(),
  z: z.number(),
  since: z.string(),
  detected_at: z.string(),
  resolved_at: z.string().nullable(),
  message: z.string().openapi({
    example:
      "job_failure_rate is 0.5 failures/s, above the expected 0 failures/s to 0.175 failures/s " +
      "(baseline 0 failures/s), since 2026-11-01T12:00:03.000Z",
  }),
}).openapi("AnomalyAlert") satisfies z.ZodType<AlertRecord>;

const ForecastSchema = z.object({
  kind: z.enum(["disk", "queue", "memory"]),
  status: z.enum(["ok", "warning", "unknown"]),
  message: z.string().openapi({
    example: "The disk holding the data directory fills in 31.5 hours at this rate " +
      "(12.0 GB free, −390.1 MB/hour)",
  }),
  eta_hours: z.number().nullable(),
  current: z.number().nullable(),
  rate_per_hour: z.number().nullable(),
}).openapi("Forecast") satisfies z.ZodType<Forecast>;

const HistoryQuery = z.object({
  series: z.string().min(1).max(2000).openapi({
    description: "Comma-separated series names (GET /api/metrics/series lists them)",
    example: "cpu_percent,jobs_running",
  }),
  since: z.iso.datetime({ offset: true }).optional()
    .openapi({ description: "Default: one hour before until", example: "2026-11-01T00:00:00Z" }),
  until: z.iso.datetime({ offset: true }).optional().openapi({ description: "Default: now" }),
  step: z.string().max(20).optional().openapi({
    description: "Bucket width: seconds or 30s / 5m / 1h / 1d. Default: about 300 points",
    example: "1m",
  }),
  agg: z.enum(["avg", "min", "max"]).default("avg"),
});

export function metricsRoutes(deps: AppDeps) {
  const app = newApp();

  // A plain route: the exposition's own content type (version=0.0.4) is not a typed response.
  app.openAPIRegistry.registerPath({
    method: "get",
    path: "/metrics",
    operationId: "getMetrics",
    tags: ["monitoring"],
    summary: "Prometheus metrics (text exposition format)",
    description: "Needs a token of any role when tokens are on, unless STREAMPLAY_PUBLIC_METRICS.",
    security: bearer,
    responses: {
      200: { description: "Metrics", content: { "text/plain": { schema: z.string() } } },
      401: errorResponse("A token is required"),
    },
  });
  app.get("/metrics", async (c) => {
    const { text, contentType } = await deps.monitor.scrape();
    return c.body(text, 200, { "Content-Type": contentType, "Cache-Control": "no-store" });
  });

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/pressure",
      operationId: "getPressure",
      tags: ["monitoring"],
      summary: "Whether the platform takes more work; Accept: text/plain gives 200 or 503 only",
      description: "For load balancers. Needs a token when tokens are on, unless " +
        "STREAMPLAY_PUBLIC_PRESSURE. Running and queued are platform-wide; CPU and memory are " +
        "this machine's.",
      security: bearer,
      responses: {
        200: {
          description: "The pressure (JSON), or `OK` (text/plain) when available",
          content: {
            "application/json": { schema: PressureSchema },
            "text/plain": { schema: z.string() },
          },
        },
        503: {
          description: "text/plain only: not available; the body says why",
          content: { "text/plain": { schema: z.string() } },
        },
      },
    }),
    async (c) => {
      const p = await deps.monitor.pressure.current();
      c.header("Cache-Control", "no-store");
      const type = accepts(c, {
        header: "Accept",
        supports: ["application/json", "text/plain"],
        default: "application/json",
      });
      if (type === "text/plain") {
        return c.text(
          p.is_available ? "OK" : `${p.reason}: ${p.message}`,
          p.is_available ? 200 : 503,
        );
      }
      return c.json(p, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/metrics/series",
      operationId: "listMetricSeries",
      tags: ["monitoring"],
      summary: "The platform series: live on the dashboard, stored every few seconds",
      security: bearer,
      responses: {
        200: jsonResponse(
          z.object({
            interval_s: z.number(),
            retention_days: z.number(),
            series: z.array(z.object({
              name: z.string(),
              unit: z.string(),
              description: z.string(),
              watched: z.boolean(),
            })),
          }),
          "The catalog",
        ),
      },
    }),
    (c) => c.json(seriesCatalog(deps.config), 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/metrics/history",
      operationId: "getMetricHistory",
      tags: ["monitoring"],
      summary: "Stored series over a time range, downsampled in DuckDB",
      security: bearer,
      request: { query: HistoryQuery },
      responses: {
        200: jsonResponse(
          z.object({
            since: z.string(),
            until: z.string(),
            step_s: z.number(),
            agg: z.string(),
            timestamps: z.array(z.string()).openapi({ description: "Start of each bucket" }),
            series: z.record(z.string(), z.array(z.number().nullable())),
          }),
          "One value per bucket and series (null: no sample in the bucket)",
        ),
        400: errorResponse("Unknown series, bad range or step"),
      },
    }),
    async (c) => c.json(await seriesHistory(deps, c.req.valid("query")), 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/analytics",
      operationId: "getAnalytics",
      tags: ["monitoring"],
      summary: "Open and recent (24 h) anomaly alerts, and forecasts from the stored trends",
      security: bearer,
      responses: {
        200: jsonResponse(
          z.object({
            generated_at: z.string(),
            anomalies: z.object({ active: z.array(AlertSchema), recent: z.array(AlertSchema) }),
            forecasts: z.array(ForecastSchema),
          }),
          "Analytics",
        ),
      },
    }),
    async (c) => c.json(await deps.monitor.analytics(), 200),
  );

  app.get(
    "/ws/dashboard",
    async (c, next) => {
      checkDashboard(deps.config);
      if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
        throw new HTTPException(426, { message: "This endpoint speaks WebSocket" });
      }
      await next();
    },
    upgradeWebSocket(() => {
      let leave = () => {};
      return {
        onOpen(_evt, ws) {
          const raw = ws.raw as WebSocket | undefined;
          leave = joinDashboard(deps.monitor, {
            send: (text) => ws.send(text),
            buffered: () => raw?.bufferedAmount ?? 0,
          });
        },
        onClose() {
          leave();
        },
      };
    }),
  );

  return app;
}
