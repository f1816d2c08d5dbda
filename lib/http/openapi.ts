/**
 * Shared pieces for route files: a sub-app factory whose validation failures answer 400 naming
 * the field, and the common response schemas.
 */
import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "./context.ts";
import { describeZodError } from "./errors.ts";

export function newApp(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (!result.success) {
        const where = result.target === "json" ? "" : result.target;
        return c.json(describeZodError(result.error, where === "param" ? "" : where), 400);
      }
    },
  });
}

export const ErrorSchema = z.object({
  error: z.string().openapi({
    example: "params.concurrency: Too big: expected number to be <=1000",
  }),
  details: z.unknown().optional(),
}).openapi("Error");

export const errorResponse = (description: string) => ({
  content: { "application/json": { schema: ErrorSchema } },
  description,
});

export const jsonResponse = <T extends z.ZodType>(schema: T, description: string) => ({
  content: { "application/json": { schema } },
  description,
});

/** An opaque `{id}` path parameter: a job's (sessions and replays are jobs) or a stream's. */
export const IdParam = z.object({ id: z.string().min(1).max(200) });

/** Security requirement for documented routes (ignored when tokens are off). */
export const bearer = [{ bearer: [] as string[] }];
