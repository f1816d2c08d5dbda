/**
 * A session's downloads: the files its browser saved for a CDP client, always in the session's
 * own directory `<data dir>/artifacts/<id>/downloads` (removed with the job), listed and read on
 * the node that ran the session.
 */
import { resolve } from "node:path";
import { z } from "@hono/zod-openapi";
import { notFound } from "../core/errors.ts";
import { findSession, type SessionLookup } from "./control.ts";

/** A name Chromium may give a download (its suggested name, or a GUID); never a path. */
export const DOWNLOAD_NAME = /^(?!\.\.?$)[^/\\\0]{1,255}$/;
/** Chromium's name for a download still in progress. */
const PARTIAL = /\.crdownload$/;

export const DownloadSchema = z.object({
  name: z.string().openapi({ example: "report.csv" }),
  bytes: z.number().int(),
  modified_at: z.string().nullable(),
  url: z.string().openapi({ example: "/api/sessions/job_0abc/downloads/report.csv" }),
}).openapi("Download");
export type Download = z.infer<typeof DownloadSchema>;

type DownloadDeps = SessionLookup & { config: { dataDir: string } };

/** Where a session's browser saves downloads (absolute: Chromium is told this path). */
export function downloadsDir(dataDir: string, id: string): string {
  return resolve(dataDir, "artifacts", id, "downloads");
}

/** The session's finished downloads, by name; 404 for an unknown session. */
export async function listDownloads(deps: DownloadDeps, id: string): Promise<Download[]> {
  await findSession(deps, id);
  const dir = downloadsDir(deps.config.dataDir, id);
  let entries: Deno.DirEntry[] = [];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch { /* none yet */ }
  const downloads: Download[] = [];
  for (const e of entries) {
    if (!e.isFile || !DOWNLOAD_NAME.test(e.name) || PARTIAL.test(e.name)) continue;
    const info = await Deno.lstat(`${dir}/${e.name}`).catch(() => null);
    if (!info?.isFile) continue;
    downloads.push({
      name: e.name,
      bytes: info.size,
      modified_at: info.mtime?.toISOString() ?? null,
      url: `/api/sessions/${id}/downloads/${encodeURIComponent(e.name)}`,
    });
  }
  return downloads.sort((a, b) => a.name.localeCompare(b.name));
}

/** One finished download, opened for streaming; 404 for an unknown session or file. */
export async function openDownload(
  deps: DownloadDeps,
  id: string,
  name: string,
): Promise<{ file: Deno.FsFile; bytes: number }> {
  await findSession(deps, id);
  const missing = notFound(`Session ${id} has no download "${name}"`);
  if (!DOWNLOAD_NAME.test(name) || PARTIAL.test(name)) throw missing;
  const path = `${downloadsDir(deps.config.dataDir, id)}/${name}`;
  const info = await Deno.lstat(path).catch(() => null);
  if (!info?.isFile) throw missing;
  return { file: await Deno.open(path, { read: true }), bytes: info.size };
}
