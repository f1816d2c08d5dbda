/**
 * Named, versioned functions: store a version, list, read, delete, and invoke one (a `function`
 * job, answered at once or with `?wait=` once it ended).
 */
import { createRoute, z } from "@hono/zod-openapi";
import { requireRole } from "../lib/http/auth.ts";
import { bearer, errorResponse, jsonResponse, newApp } from "../lib/http/openapi.ts";
import type { AppDeps } from "../lib/http/context.ts";
import { notFound } from "../lib/core/errors.ts";
import { JobSchema } from "../lib/jobs/queue.ts";
import {
  functionDepsOf,
  FunctionName,
  FunctionSpec,
  InvokeBody,
  invokeFunction,
  saveFunction,
} from "../lib/functions/functions.ts";

const NameParam = z.object({ name: FunctionName });

const FunctionVersionSchema = z.object({
  name: z.string(),
  version: z.number().int(),
  code: z.string(),
  browser: z.boolean(),
  timeout_s: z.number().int(),
  allow_hosts: z.array(z.string()),
  schedule: z.string().nullable(),
  created_at: z.string(),
  created_by: z.string(),
}).openapi("FunctionVersion");

const FunctionSummarySchema = z.object({
  name: z.string(),
  version: z.number().int(),
  browser: z.boolean(),
  schedule: z.string().nullable(),
  updated_at: z.string(),
}).openapi("FunctionSummary");

const WaitQuery = z.object({
  wait: z.coerce.number().min(0).max(300).optional().openapi({
    description: "Seconds to wait for the run to end: answered 200 with its result if it " +
      "ends in time, else 202 as without a wait.",
    example: 30,
  }),
});

/** A version as the API shows it (the stripped code it runs stays inside). */
const view = ({ js: _js, ...version }: { js: string } & z.infer<typeof FunctionVersionSchema>) =>
  version;

export function functionsRoutes(deps: AppDeps) {
  const app = newApp();
  const fns = functionDepsOf(deps);

  app.openapi(
    createRoute({
      method: "put",
      path: "/api/functions/{name}",
      operationId: "putFunction",
      tags: ["functions"],
      summary: "Store a new version of a function (code checked: syntax, default export)",
      security: bearer,
      middleware: [requireRole("operator")] as const,
      request: {
        params: NameParam,
        body: { content: { "application/json": { schema: FunctionSpec } }, required: true },
      },
      responses: {
        201: jsonResponse(FunctionVersionSchema, "The version stored"),
        400: errorResponse("Invalid body, a syntax error (naming its line), a bad schedule"),
        403: errorResponse("Needs the operator role"),
      },
    }),
    async (c) => {
      const { name } = c.req.valid("param");
      const version = await saveFunction(fns, name, c.req.valid("json"), c.get("principal").name);
      c.header("Location", `/api/functions/${name}`);
      return c.json(view(version), 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/functions",
      operationId: "listFunctions",
      tags: ["functions"],
      summary: "The functions, last changed first",
      security: bearer,
      responses: {
        200: jsonResponse(z.object({ functions: z.array(FunctionSummarySchema) }), "Functions"),
      },
    }),
    async (c) => c.json({ functions: await fns.store.list() }, 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/functions/{name}",
      operationId: "getFunction",
      tags: ["functions"],
      summary: "A function's versions, newest first",
      security: bearer,
      request: { params: NameParam },
      responses: {
        200: jsonResponse(
          z.object({ name: z.string(), versions: z.array(FunctionVersionSchema) }),
          "The versions kept (the newest 50)",
        ),
        404: errorResponse("Unknown function"),
      },
    }),
    async (c) => {
      const { name } = c.req.valid("param");
      const versions = await fns.store.versions(name);
      if (versions.length === 0) throw notFound(`No function named "${name}"`);
      return c.json({ name, versions: versions.map(view) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/api/functions/{name}",
      operationId: "deleteFunction",
      tags: ["functions"],
      summary: "Delete a function, its versions and its schedule (its runs stay in the history)",
      security: bearer,
      middleware: [requireRole("admin")] as const,
      request: { params: NameParam },
      responses: {
        200: jsonResponse(z.object({ deleted: z.string() }), "Deleted"),
        403: errorResponse("Needs the admin role"),
        404: errorResponse("Unknown function"),
      },
    }),
    async (c) => {
      const { name } = c.req.valid("param");
      if (!(await fns.store.delete(name))) throw notFound(`No function named "${name}"`);
      return c.json({ deleted: name }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/functions/{name}/invoke",
      operationId: "invokeFunction",
      tags: ["functions"],
      summary: "Run a function once (a `function` job)",
      security: bearer,
      middleware: [requireRole("operator")] as const,
      request: {
        params: NameParam,
        query: WaitQuery,
        body: { content: { "application/json": { schema: InvokeBody } }, required: false },
      },
      responses: {
        200: jsonResponse(JobSchema, "Ended within the wait: status, result or error"),
        202: jsonResponse(JobSchema, "Queued (or still running after the wait)"),
        400: errorResponse("Invalid body"),
        403: errorResponse("Needs the operator role"),
        404: errorResponse("Unknown function or version"),
        429: errorResponse("The platform is full (see GET /api/pressure); retry later"),
      },
    }),
    async (c) => {
      const { name } = c.req.valid("param");
      const { wait } = c.req.valid("query");
      const body = InvokeBody.parse(c.req.valid("json") ?? {});
      const { job, done } = await invokeFunction(fns, name, body, wait ?? null);
      c.header("Location", `/api/jobs/${job.id}`);
      return done ? c.json(job, 200) : c.json(job, 202);
    },
  );

  return app;
}
