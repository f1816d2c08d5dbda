/**
 * The job history as the API reads it: a page of jobs with filters and a cursor, or every job a
 * filter matches as a CSV or Parquet file.
 */
import { invalid } from "../core/errors.ts";
import { decodeCursor, type History, type JobFilter, type JobPage } from "./store.ts";

/** A page of the job history, newest first; 400 for a foreign cursor or an empty time range. */
export async function listJobs(
  history: History,
  filter: JobFilter & { limit: number; cursor?: string | undefined },
): Promise<JobPage> {
  if (filter.cursor && !decodeCursor(filter.cursor)) {
    throw invalid("cursor: is not a cursor this API returned");
  }
  if (filter.since && filter.until && Date.parse(filter.since) >= Date.parse(filter.until)) {
    throw invalid("until: must be later than since");
  }
  return await history.listJobs(filter);
}

/** An export file: its bytes, type and download name. */
export interface JobExport {
  bytes: Uint8Array<ArrayBuffer>;
  contentType: string;
  filename: string;
}

/** Every job `filter` matches as a file, written to the data directory's tmp/ and removed. */
export async function exportJobs(
  deps: { history: History; config: { dataDir: string } },
  filter: JobFilter,
  format: "csv" | "parquet",
): Promise<JobExport> {
  const dir = `${deps.config.dataDir}/tmp`;
  await Deno.mkdir(dir, { recursive: true });
  const file = `${dir}/export-${crypto.randomUUID()}.${format}`;
  try {
    await deps.history.exportJobs(filter, format, file);
    const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-");
    return {
      bytes: await Deno.readFile(file),
      contentType: format === "csv" ? "text/csv; charset=utf-8" : "application/vnd.apache.parquet",
      filename: `streamplay-jobs-${stamp}.${format}`,
    };
  } finally {
    await Deno.remove(file).catch(() => {});
  }
}
