/**
 * Reading a job wherever it is: Redis while it is live, DuckDB after; its events so far, its log
 * lines and its resource samples.
 */
import { z } from "@hono/zod-openapi";
import { notFound } from "../core/errors.ts";
import { type JobRecord, type Queue, QueueUnavailable } from "./queue.ts";
import { compareIds, type JobEvent } from "./events.ts";
import type { History } from "../history/store.ts";
import type { HistoryWriter } from "../history/writer.ts";

/** What reading a job needs: the queue, the history, and the hub's not-yet-stored events. */
export interface JobLookup {
  queue: Queue;
  history: History;
  hub: HistoryWriter;
}

/** The freshest view of a job: Redis while it is live, DuckDB after. */
export async function findJob(deps: JobLookup, id: string): Promise<JobRecord | null> {
  try {
    const live = await deps.queue.get(id);
    if (live) return live;
  } catch (err) {
    if (!(err instanceof QueueUnavailable)) throw err;
  }
  return await deps.history.getJob(id);
}

/** The job, wherever it is; 404 when there is none. */
export async function getJob(deps: JobLookup, id: string): Promise<JobRecord> {
  const job = await findJob(deps, id);
  if (!job) throw notFound(`No job with id "${id}"`);
  return job;
}

/**
 * Every event of a job so far: the ones read but not yet stored (taken first, synchronously),
 * then DuckDB's; an event stored in between appears in both and is kept once.
 */
export async function allEvents(deps: JobLookup, id: string): Promise<JobEvent[]> {
  const recent = deps.hub.recent(id);
  const stored = await deps.history.events(id);
  const seen = new Set(stored.map((e) => e.id));
  return [...stored, ...recent.filter((e) => !seen.has(e.id))].sort((a, b) =>
    compareIds(a.id, b.id)
  );
}

/** A job's events so far, oldest first, only those of `types` when given; 404 for an unknown id. */
export async function jobEvents(
  deps: JobLookup,
  id: string,
  types?: ReadonlySet<string>,
): Promise<JobEvent[]> {
  await getJob(deps, id);
  return (await allEvents(deps, id)).filter((e) => !types || types.has(e.type));
}

/** A log line of a job. */
export const LogLineSchema = z.object({ ts: z.string(), level: z.string(), message: z.string() });
export type LogLine = z.infer<typeof LogLineSchema>;

/** A job's log lines, oldest first; 404 for an unknown id. */
export async function jobLogs(deps: JobLookup, id: string): Promise<LogLine[]> {
  return (await jobEvents(deps, id, new Set(["log"]))).map((e) => ({
    ts: e.ts,
    level: String(e.level ?? "info"),
    message: String(e.message ?? ""),
  }));
}

/** The resource samples of a job: stored ones, then those the hub has not stored yet. */
export async function jobSamples(
  deps: JobLookup,
  id: string,
): Promise<Array<Record<string, unknown>>> {
  await getJob(deps, id);
  const recent = deps.hub.recent(id).filter((e) => e.type === "sample");
  const stored = await deps.history.samples(id);
  const seen = new Set(stored.map((s) => s.ts));
  return [
    ...stored,
    ...recent.filter((e) => !seen.has(e.ts)).map(({ id: _i, job_id: _j, type: _t, ...s }) => s),
  ];
}
