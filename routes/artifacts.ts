/** Job artifacts: the files a job wrote (screenshots, error screenshots), listed and served. */
import { createRoute, z } from "@hono/zod-openapi";
import { bearer, errorResponse, jsonResponse, newApp } from "../lib/http/openapi.ts";
import type { AppDeps } from "../lib/http/context.ts";
import {
  ARTIFACT_DIRS,
  ARTIFACT_NAME,
  ArtifactSchema,
  listArtifacts,
  readArtifact,
} from "../lib/jobs/artifacts.ts";

const IdParam = z.object({ id: z.string().min(1).max(200).regex(/^[A-Za-z0-9_-]+$/) });

export function artifactRoutes(deps: AppDeps) {
  const app = newApp();

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/jobs/{id}/artifacts",
      operationId: "listJobArtifacts",
      tags: ["jobs"],
      summary: "Files a job wrote (screenshots, error screenshots, a function's files)",
      security: bearer,
      request: { params: IdParam },
      responses: {
        200: jsonResponse(z.object({ artifacts: z.array(ArtifactSchema) }), "Files, by path"),
        404: errorResponse("Unknown id"),
      },
    }),
    async (c) => c.json({ artifacts: await listArtifacts(deps, c.req.valid("param").id) }, 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/jobs/{id}/artifacts/{dir}/{name}",
      operationId: "getJobArtifact",
      tags: ["jobs"],
      summary: "One artifact file",
      security: bearer,
      request: {
        params: IdParam.extend({
          dir: z.enum(ARTIFACT_DIRS),
          name: z.string().regex(ARTIFACT_NAME, "is not an artifact file name"),
        }),
      },
      responses: {
        200: { description: "The file", content: { "image/jpeg": { schema: z.string() } } },
        404: errorResponse("Unknown job or file"),
      },
    }),
    async (c) => {
      const { id, dir, name } = c.req.valid("param");
      const file = await readArtifact(deps, id, dir, name);
      c.header("Content-Type", file.contentType);
      c.header("Cache-Control", "private, max-age=3600");
      return c.body(file.bytes, 200);
    },
  );

  return app;
}
