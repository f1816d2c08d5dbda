/**
 * Job artifacts: the files a job wrote to its artifact directory (screenshots, error
 * screenshots), listed and served by the node whose data directory holds them.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { HTTPException } from "hono/http-exception";
import { bearer, errorResponse, jsonResponse, newApp } from "../lib/http/openapi.ts";
import type { AppDeps } from "../lib/http/context.ts";

/** Folders a job may publish files from, and the names a file there may have. */
const DIRS = ["screenshots", "errors"] as const;
const NAME = /^[A-Za-z0-9_.-]{1,128}$/;
const TYPES: Record<string, string> = {
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  png: "image/png",
  json: "application/json",
  txt: "text/plain; charset=utf-8",
};

const IdParam = z.object({ id: z.string().min(1).max(200).regex(/^[A-Za-z0-9_-]+$/) });

export const ArtifactSchema = z.object({
  path: z.string().openapi({ example: "errors/0001-console-u0.jpg" }),
  bytes: z.number().int(),
  modified_at: z.string().nullable(),
  url: z.string().openapi({ example: "/api/jobs/job_0abc/artifacts/errors/0001-console-u0.jpg" }),
}).openapi("Artifact");

async function jobDir(deps: AppDeps, id: string): Promise<string> {
  const known = await deps.queue.get(id).catch(() => null) ?? await deps.history.getJob(id);
  if (!known) throw new HTTPException(404, { message: `No job with id "${id}"` });
  return `${deps.config.dataDir}/artifacts/${id}`;
}

export function artifactRoutes(deps: AppDeps) {
  const app = newApp();

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/jobs/{id}/artifacts",
      tags: ["jobs"],
      summary: "Files a job wrote (screenshots, error screenshots)",
      security: bearer,
      request: { params: IdParam },
      responses: {
        200: jsonResponse(z.object({ artifacts: z.array(ArtifactSchema) }), "Files, by path"),
        404: errorResponse("Unknown id"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const dir = await jobDir(deps, id);
      const artifacts: z.infer<typeof ArtifactSchema>[] = [];
      for (const sub of DIRS) {
        let entries: Deno.DirEntry[] = [];
        try {
          entries = await Array.fromAsync(Deno.readDir(`${dir}/${sub}`));
        } catch { /* none */ }
        for (const e of entries) {
          if (!e.isFile || !NAME.test(e.name)) continue;
          const info = await Deno.stat(`${dir}/${sub}/${e.name}`).catch(() => null);
          if (!info) continue;
          artifacts.push({
            path: `${sub}/${e.name}`,
            bytes: info.size,
            modified_at: info.mtime?.toISOString() ?? null,
            url: `/api/jobs/${id}/artifacts/${sub}/${e.name}`,
          });
        }
      }
      artifacts.sort((a, b) => a.path.localeCompare(b.path));
      return c.json({ artifacts }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/jobs/{id}/artifacts/{dir}/{name}",
      tags: ["jobs"],
      summary: "One artifact file",
      security: bearer,
      request: {
        params: IdParam.extend({
          dir: z.enum(DIRS),
          name: z.string().regex(NAME, "is not an artifact file name"),
        }),
      },
      responses: {
        200: { description: "The file", content: { "image/jpeg": { schema: z.string() } } },
        404: errorResponse("Unknown job or file"),
      },
    }),
    async (c) => {
      const { id, dir, name } = c.req.valid("param");
      const root = await jobDir(deps, id);
      let bytes: Uint8Array;
      try {
        bytes = await Deno.readFile(`${root}/${dir}/${name}`);
      } catch {
        throw new HTTPException(404, { message: `Job ${id} has no artifact ${dir}/${name}` });
      }
      c.header(
        "Content-Type",
        TYPES[name.split(".").pop()!.toLowerCase()] ?? "application/octet-stream",
      );
      c.header("Cache-Control", "private, max-age=3600");
      return c.body(bytes as Uint8Array<ArrayBuffer>, 200);
    },
  );

  return app;
}
