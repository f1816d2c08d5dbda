/**
 * Taking jobs away: cancelling one that is queued or running (a running job's Worker is told to
 * stop, then terminated), deleting a finished one with its events, samples and artifacts.
 */
import { conflict } from "../core/errors.ts";
import { FINAL_STATUSES, type JobRecord } from "./queue.ts";
import { getJob, type JobLookup } from "./lookup.ts";

/** Cancels a queued or running job and answers it; 404 for an unknown id, 409 once it ended. */
export async function cancelJob(deps: JobLookup, id: string): Promise<JobRecord> {
  const outcome = await deps.queue.cancel(id);
  if (outcome === "missing") {
    const stored = await getJob(deps, id);
    throw conflict(`Job ${id} already ended: ${stored.status}`);
  }
  if (outcome !== "ok") throw conflict(`Job ${id} already ended: ${outcome}`);
  return await getJob(deps, id);
}

/**
 * Deletes a finished job: its rows (events, samples, the job) in DuckDB once the hub has stored
 * what it holds, its Redis hash, and its artifact directory. 404 for an unknown id, 409 while it
 * has not ended.
 */
export async function deleteJob(
  deps: JobLookup & { config: { dataDir: string } },
  id: string,
): Promise<void> {
  const job = await getJob(deps, id);
  if (!FINAL_STATUSES.has(job.status)) {
    throw conflict(`Job ${id} is ${job.status}; cancel it first`);
  }
  await deps.hub.flush();
  for (const table of ["job_events", "metric_samples", "jobs"]) {
    await deps.history.execute(
      `DELETE FROM ${table} WHERE ${table === "jobs" ? "id" : "job_id"} = $1`,
      [id],
    );
  }
  await deps.queue.redis.del(deps.queue.keys.job(id)).catch(() => {});
  await Deno.remove(`${deps.config.dataDir}/artifacts/${id}`, { recursive: true })
    .catch(() => {});
}
