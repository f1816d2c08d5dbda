/**
 * Shared pieces for route files: a sub-app factory whose validation failures answer 400 naming
 * the field and whose documented routes also list the answers the app gives around every route
 * (bad input, tokens, roles, body size and type), and the common response schemas.
 */
import { OpenAPIHono, type RouteConfig, z } from "@hono/zod-openapi";
import type { AppEnv } from "./context.ts";
import { describeZodError } from "./errors.ts";
import { requiredRole } from "./auth.ts";

/** The body limit of every POST, PUT and PATCH under /api (lib/http/app.ts). */
export const MAX_BODY_BYTES = 1024 * 1024;

export function newApp(): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (!result.success) {
        const where = result.target === "json" ? "" : result.target;
        return c.json(describeZodError(result.error, where === "param" ? "" : where), 400);
      }
    },
  });
  const openapi = app.openapi;
  app.openapi = ((route: RouteConfig, ...rest: unknown[]) =>
    // deno-lint-ignore no-explicit-any
    (openapi as any)(withCommonAnswers(route), ...rest)) as typeof app.openapi;
  return app;
}

/**
 * A route with the answers the app gives besides the route's own (which keep their wording):
 * 400 when it validates input, 401 (with tokens on), 403 when `requireRole` guards it, 413 for
 * a body over the limit and 415 for a JSON body sent as something else.
 */
export function withCommonAnswers<R extends RouteConfig>(route: R): R {
  const middleware = [route.middleware ?? []].flat();
  const role = middleware.map(requiredRole).find((r) => r !== undefined);
  const json = route.request?.body?.content?.["application/json"] !== undefined;
  const hasBody = ["post", "put", "patch"].includes(route.method) && route.path.startsWith("/api/");
  const common: RouteConfig["responses"] = {
    ...(json || route.request?.params || route.request?.query
      ? { 400: errorResponse("Invalid input; the error names the field") }
      : {}),
    ...(route.security
      ? { 401: errorResponse("No valid token (when STREAMPLAY_TOKENS is set)") }
      : {}),
    ...(role ? { 403: errorResponse(`Needs the ${role} role`) } : {}),
    ...(hasBody ? { 413: errorResponse(`Body over ${MAX_BODY_BYTES / 1024 / 1024} MB`) } : {}),
    ...(json ? { 415: errorResponse("Body not sent as Content-Type: application/json") } : {}),
  };
  return { ...route, responses: { ...common, ...route.responses } };
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
