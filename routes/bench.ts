/**
 * Benchmark helpers for the /bench page: `POST /api/bench/validate` checks a benchmark's params
 * exactly as `POST /api/jobs` would (schema and URL policy) without queueing anything, so the
 * scenario editor can show the server's messages while the user types.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { requireRole } from "../lib/http/auth.ts";
import { checkJob, JobProblemSchema } from "../lib/jobs/submit.ts";
import type { AppDeps } from "../lib/http/context.ts";
import { bearer, errorResponse, jsonResponse, newApp } from "../lib/http/openapi.ts";

const BENCH_TYPES = ["http-bench", "browser-bench"] as const;

const Validate = z.object({
  type: z.enum(BENCH_TYPES),
  params: z.record(z.string(), z.unknown()).default({}),
}).strict().openapi("ValidateBench");

export function benchRoutes(deps: AppDeps) {
  const app = newApp();

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/bench/validate",
      operationId: "validateBench",
      tags: ["bench"],
      summary: "Check benchmark params without starting a job",
      security: bearer,
      middleware: [requireRole("operator")] as const,
      request: { body: { content: { "application/json": { schema: Validate } }, required: true } },
      responses: {
        200: jsonResponse(
          z.object({
            ok: z.boolean(),
            params: z.unknown().openapi({ description: "The params with defaults filled in." }),
            problems: z.array(JobProblemSchema),
          }),
          "The verdict: `ok` with the filled-in params, or the problems, each naming its field",
        ),
        400: errorResponse("Not a benchmark type"),
      },
    }),
    async (c) => {
      const { type, params } = c.req.valid("json");
      return c.json(await checkJob(deps, type, params), 200);
    },
  );

  return app;
}
