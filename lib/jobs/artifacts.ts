/**
 * Job artifacts: the files a job wrote to its artifact directory (screenshots, error
 * screenshots), listed and read from the data directory of the node that holds them.
 */
import { z } from "@hono/zod-openapi";
import { notFound } from "../core/errors.ts";
import { getJob, type JobLookup } from "./lookup.ts";

/** Folders a job may publish files from, and the names a file there may have. */
export const ARTIFACT_DIRS = ["screenshots", "errors", "files"] as const;
export type ArtifactDir = typeof ARTIFACT_DIRS[number];
export const ARTIFACT_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

const TYPES: Record<string, string> = {
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  png: "image/png",
  json: "application/json",
  txt: "text/plain; charset=utf-8",
};

export const ArtifactSchema = z.object({
  path: z.string().openapi({ example: "errors/0001-console-u0.jpg" }),
  bytes: z.number().int(),
  modified_at: z.string().nullable(),
  url: z.string().openapi({ example: "/api/jobs/job_0abc/artifacts/errors/0001-console-u0.jpg" }),
}).openapi("Artifact");
export type Artifact = z.infer<typeof ArtifactSchema>;

type ArtifactDeps = JobLookup & { config: { dataDir: string } };

/** The job's artifact directory; 404 for an unknown job. */
async function jobDir(deps: ArtifactDeps, id: string): Promise<string> {
  await getJob(deps, id);
  return `${deps.config.dataDir}/artifacts/${id}`;
}

/** The files a job wrote, by path; 404 for an unknown job. */
export async function listArtifacts(deps: ArtifactDeps, id: string): Promise<Artifact[]> {
  const dir = await jobDir(deps, id);
  const artifacts: Artifact[] = [];
  for (const sub of ARTIFACT_DIRS) {
    let entries: Deno.DirEntry[] = [];
    try {
      entries = await Array.fromAsync(Deno.readDir(`${dir}/${sub}`));
    } catch { /* none */ }
    for (const e of entries) {
      if (!e.isFile || !ARTIFACT_NAME.test(e.name)) continue;
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
  return artifacts.sort((a, b) => a.path.localeCompare(b.path));
}

/** One artifact file and its content type; 404 for an unknown job or file. */
export async function readArtifact(
  deps: ArtifactDeps,
  id: string,
  dir: ArtifactDir,
  name: string,
): Promise<{ bytes: Uint8Array<ArrayBuffer>; contentType: string }> {
  const root = await jobDir(deps, id);
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await Deno.readFile(`${root}/${dir}/${name}`);
  } catch {
    throw notFound(`Job ${id} has no artifact ${dir}/${name}`);
  }
  const type = TYPES[name.split(".").pop()!.toLowerCase()] ?? "application/octet-stream";
  return { bytes, contentType: type };
}
