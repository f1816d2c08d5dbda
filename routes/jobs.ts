/**
 * Jobs: create, read, list, cancel, delete, logs, events, samples, export, and the live event
 * WebSocket `/ws/jobs/:id` (everything so far, then live events, closed after the final status).
 */
import { createRoute, z } from "@hono/zod-openapi";
import { HTTPException } from "hono/http-exception";
import { upgradeWebSocket } from "hono/deno";
import { requireRole } from "../lib/http/auth.ts";
import { bearer, errorResponse, IdParam, jsonResponse, newApp } from "../lib/http/openapi.ts";
import { JOB_STATUSES, JobSchema } from "../lib/jobs/queue.ts";
import { submitJob } from "../lib/jobs/submit.ts";
import { getJob, jobEvents, jobLogs, jobSamples, LogLineSchema } from "../lib/jobs/lookup.ts";
import { cancelJob, deleteJob } from "../lib/jobs/removal.ts";
import { followJob } from "../lib/jobs/follow.ts";
import { exportJobs, listJobs } from "../lib/history/job_listing.ts";
import type { AppDeps } from "../lib/http/context.ts";
import type { JobTypes } from "../lib/jobs/job_type.ts";

/** "http-bench" → "HttpBench", for schema names. */
const pascal = (name: string) =>
  name.replace(/(^|-)(\w)/g, (_, _d, ch: string) => ch.toUpperCase());

/**
 * `POST /api/jobs`'s body: one shape per job type of the registry, told apart by `type`, each
 * with that type's params schema (`params` may be left out when `{}` is valid for the type).
 */
function createJobSchema(jobTypes: JobTypes) {
  const names = [...jobTypes.keys()];
  const shapes = [...jobTypes.values()].map((t) => {
    const params = t.params.openapi(`${pascal(t.name)}Params`);
    return z.object({
      type: z.literal(t.name),
      params: t.params.safeParse({}).success ? params.optional() : params,
      timeout_s: z.number().min(1).max(7 * 86_400).optional()
        .openapi({ description: "Default depends on the type (http-bench: duration + 60 s)." }),
      max_attempts: z.number().int().min(1).max(20).default(3),
    }).strict().openapi(`Create${pascal(t.name)}Job`, { description: t.summary });
  });
  return z.discriminatedUnion("type", shapes as [typeof shapes[number], ...typeof shapes], {
    error: (issue) =>
      issue.code === "invalid_union"
        ? `${
          (issue.input as { type?: unknown })?.type === undefined
            ? "is required"
            : `unknown job type "${(issue.input as { type: unknown }).type}"`
        }; use one of ${names.join(", ")}`
        : undefined,
  }).openapi("CreateJob");
}

const ListQuery = z.object({
  type: z.string().max(100).optional(),
  status: z.enum(JOB_STATUSES).optional(),
  since: z.iso.datetime({ offset: true }).optional().openapi({ example: "2026-11-01T00:00:00Z" }),
  until: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(500).optional(),
});

const ExportQuery = ListQuery.omit({ limit: true, cursor: true }).extend({
  format: z.enum(["csv", "parquet"]).default("csv"),
});

export function jobsRoutes(deps: AppDeps) {
  const app = newApp();
  const CreateJob = createJobSchema(deps.jobTypes);

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/jobs",
      operationId: "createJob",
      tags: ["jobs"],
      summary: "Queue a job",
      security: bearer,
      middleware: [requireRole("operator")] as const,
      request: { body: { content: { "application/json": { schema: CreateJob } }, required: true } },
      responses: {
        202: jsonResponse(JobSchema, "Queued"),
        400: errorResponse("Invalid body, unknown type, bad params or a refused URL"),
        429: errorResponse("The platform is full (see GET /api/pressure); retry later"),
        503: errorResponse("Queue (Redis) unavailable, or CPU or memory over its limit"),
      },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const job = await submitJob(deps, { ...body, params: body.params ?? {} });
      c.header("Location", `/api/jobs/${job.id}`);
      return c.json(job, 202);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/jobs/export",
      operationId: "exportJobs",
      tags: ["jobs"],
      summary: "Download the filtered job history as CSV or Parquet",
      security: bearer,
      middleware: [requireRole("admin")] as const,
      request: { query: ExportQuery },
      responses: {
        200: { description: "The file", content: { "text/csv": { schema: z.string() } } },
        400: errorResponse("Bad filter"),
        403: errorResponse("Needs the admin role"),
      },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const file = await exportJobs(deps, q, q.format);
      c.header("Content-Type", file.contentType);
      c.header("Content-Disposition", `attachment; filename="${file.filename}"`);
      return c.body(file.bytes, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/jobs",
      operationId: "listJobs",
      tags: ["jobs"],
      summary: "Job history, newest first (from DuckDB)",
      security: bearer,
      request: { query: ListQuery },
      responses: {
        200: jsonResponse(
          z.object({ jobs: z.array(JobSchema), next_cursor: z.string().nullable() }),
          "A page of jobs",
        ),
        400: errorResponse("Bad filter or cursor"),
      },
    }),
    async (c) => c.json(await listJobs(deps.history, c.req.valid("query")), 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/jobs/{id}",
      operationId: "getJob",
      tags: ["jobs"],
      summary: "One job",
      security: bearer,
      request: { params: IdParam },
      responses: { 200: jsonResponse(JobSchema, "The job"), 404: errorResponse("Unknown id") },
    }),
    async (c) => c.json(await getJob(deps, c.req.valid("param").id), 200),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/jobs/{id}/cancel",
      operationId: "cancelJob",
      tags: ["jobs"],
      summary: "Cancel a queued or running job (a running job's Worker is terminated)",
      security: bearer,
      middleware: [requireRole("operator")] as const,
      request: { params: IdParam },
      responses: {
        200: jsonResponse(JobSchema, "The cancelled job"),
        404: errorResponse("Unknown id"),
        409: errorResponse("The job already ended"),
        503: errorResponse("Queue (Redis) unavailable"),
      },
    }),
    async (c) => c.json(await cancelJob(deps, c.req.valid("param").id), 200),
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/api/jobs/{id}",
      operationId: "deleteJob",
      tags: ["jobs"],
      summary: "Delete a finished job and its events, samples and artifacts",
      security: bearer,
      middleware: [requireRole("admin")] as const,
      request: { params: IdParam },
      responses: {
        200: jsonResponse(z.object({ deleted: z.string() }), "Deleted"),
        404: errorResponse("Unknown id"),
        409: errorResponse("The job has not ended; cancel it first"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      await deleteJob(deps, id);
      return c.json({ deleted: id }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/jobs/{id}/logs",
      operationId: "getJobLogs",
      tags: ["jobs"],
      summary: "A job's log lines",
      security: bearer,
      request: { params: IdParam },
      responses: {
        200: jsonResponse(
          z.object({ logs: z.array(LogLineSchema) }),
          "Log lines, oldest first",
        ),
        404: errorResponse("Unknown id"),
      },
    }),
    async (c) => c.json({ logs: await jobLogs(deps, c.req.valid("param").id) }, 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/jobs/{id}/events",
      operationId: "getJobEvents",
      tags: ["jobs"],
      summary: "A job's events (status, log, progress, result, ...), oldest first",
      security: bearer,
      request: {
        params: IdParam,
        query: z.object({
          type: z.string().max(200).optional().openapi({ example: "progress,status" }),
        }),
      },
      responses: {
        200: jsonResponse(
          z.object({ events: z.array(z.record(z.string(), z.unknown())) }),
          "Events",
        ),
        404: errorResponse("Unknown id"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { type } = c.req.valid("query");
      const events = await jobEvents(deps, id, type ? new Set(type.split(",")) : undefined);
      return c.json({ events }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/jobs/{id}/samples",
      operationId: "getJobSamples",
      tags: ["jobs"],
      summary: "Resource samples stored for a job (one per second while it ran)",
      security: bearer,
      request: { params: IdParam },
      responses: {
        200: jsonResponse(
          z.object({ samples: z.array(z.record(z.string(), z.unknown())) }),
          "Samples",
        ),
        404: errorResponse("Unknown id"),
      },
    }),
    async (c) => c.json({ samples: await jobSamples(deps, c.req.valid("param").id) }, 200),
  );

  app.get(
    "/ws/jobs/:id",
    async (c, next) => {
      await getJob(deps, c.req.param("id"));
      if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
        throw new HTTPException(426, { message: "This endpoint speaks WebSocket" });
      }
      await next();
    },
    upgradeWebSocket((c) => {
      const id = c.req.param("id")!;
      let stop = () => {};
      return {
        onOpen(_evt, ws) {
          stop = followJob(deps, id, {
            send: (e) => ws.send(JSON.stringify(e)),
            end: () => ws.close(1000, "job finished"),
          });
        },
        onClose() {
          stop();
        },
      };
    }),
  );

  return app;
}
