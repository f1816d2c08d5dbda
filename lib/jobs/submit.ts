/**
 * Queueing a job, the one way every job enters the queue: its params checked against its type,
 * its URLs against the URL policy, the platform's admission, then the queue.
 */
import { z } from "@hono/zod-openapi";
import { invalid } from "../core/errors.ts";
import { describeZodError } from "../http/errors.ts";
import type { UrlPolicy } from "../security/url_policy.ts";
import type { PressureGauge } from "../monitoring/pressure.ts";
import type { JobType, JobTypes } from "./job_type.ts";
import { type JobRecord, type NewJob, newJobId, type Queue } from "./queue.ts";

/** What checking a job needs. */
export interface JobChecks {
  jobTypes: JobTypes;
  policy: UrlPolicy;
}

/** What queueing a job needs. */
export interface JobSubmission extends JobChecks {
  queue: Queue;
  monitor: { pressure: Pick<PressureGauge, "admit"> };
}

/** A job as asked for: its type's name, its params (unchecked), and how it runs. */
export interface JobRequest {
  type: string;
  params: unknown;
  /** Default: the type's (`defaultTimeoutS`). */
  timeout_s?: number | undefined;
  max_attempts: number;
}

/** A problem with a job's params, naming its field. */
export const JobProblemSchema = z.object({ field: z.string(), message: z.string() });
export type JobProblem = z.infer<typeof JobProblemSchema>;

/**
 * The verdict on a job's params: filled in with their defaults, or every problem (`params` is
 * null when they do not match the schema, filled in when only URLs are refused).
 */
export type JobCheck =
  | { ok: true; params: unknown; problems: [] }
  | { ok: false; params: unknown; problems: JobProblem[] };

/**
 * Something a job takes once admitted and before it is queued (a session slot, a replay's
 * steps), given back if queueing fails.
 */
export interface Hold {
  take(job: NewJob): Promise<void>;
  release(id: string): Promise<void>;
}

/** The job type of that name; 400 naming the ones there are otherwise. */
function jobType(types: JobTypes, name: string): JobType {
  const type = types.get(name);
  if (!type) {
    throw invalid(`type: unknown job type "${name}"; use one of ${[...types.keys()].join(", ")}`);
  }
  return type;
}

/**
 * Checks params against the schema of the job type `name` (400 when there is no such type) and,
 * when they pass, every URL they hold against the URL policy, without queueing anything.
 * Problems name the field (`params.` prefixed for schema problems).
 */
export async function checkJob(deps: JobChecks, name: string, params: unknown): Promise<JobCheck> {
  const type = jobType(deps.jobTypes, name);
  const parsed = type.params.safeParse(params);
  if (!parsed.success) {
    return { ok: false, params: null, problems: describeZodError(parsed.error, "params").details };
  }
  const problems: JobProblem[] = [];
  for (const { field, url } of type.urls(parsed.data)) {
    const verdict = await deps.policy.check(url);
    if (!verdict.ok) problems.push({ field, message: `${url} is refused: ${verdict.reason}` });
  }
  return problems.length === 0
    ? { ok: true, params: parsed.data, problems: [] }
    : { ok: false, params: parsed.data, problems };
}

/**
 * Queues a job: checked (400 naming the first problem), admitted (`PlatformBusy` when the
 * platform is full or overloaded), `hold` taken, then queued. Answers the queued job.
 */
export async function submitJob(
  deps: JobSubmission,
  request: JobRequest,
  options: { id?: string; hold?: Hold } = {},
): Promise<JobRecord> {
  const type = jobType(deps.jobTypes, request.type);
  const checked = await checkJob(deps, type.name, request.params);
  if (!checked.ok) {
    const first = checked.problems[0]!;
    // Schema problems come with all of them as details; a refused URL is one sentence.
    throw invalid(
      `${first.field}: ${first.message}`,
      checked.params === null ? checked.problems : undefined,
    );
  }
  await deps.monitor.pressure.admit();
  const job: NewJob = {
    id: options.id ?? newJobId(),
    type: type.name,
    params: checked.params,
    maxAttempts: request.max_attempts,
    timeoutS: request.timeout_s ?? type.defaultTimeoutS(checked.params),
  };
  await options.hold?.take(job);
  let createdMs: number;
  try {
    createdMs = await deps.queue.enqueue([job]);
  } catch (err) {
    await options.hold?.release(job.id).catch(() => {});
    throw err;
  }
  return {
    id: job.id,
    type: job.type,
    status: "queued",
    params: job.params,
    result: null,
    error: null,
    attempts: 0,
    max_attempts: job.maxAttempts,
    timeout_s: job.timeoutS,
    created_at: new Date(createdMs).toISOString(),
    started_at: null,
    finished_at: null,
    worker: null,
  };
}
