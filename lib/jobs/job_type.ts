/**
 * The job-type interface: what a job type needs from the platform (params schema, URLs the policy
 * must allow, default timeout, sandbox) and the registry `main.ts` builds from `workers/`.
 */
import type { z } from "@hono/zod-openapi";
import type { Config } from "../core/config.ts";
import type { SandboxSpec } from "./sandbox.ts";
import type { Sample, TargetSpec, Tracking } from "./sampler.ts";
import { type Egress, NO_EGRESS, openEgress } from "../security/egress.ts";
import type { UrlPolicy } from "../security/url_policy.ts";

export interface JobTypeContext {
  config: Config;
  /** The job's own directory for files it writes (null when the type needs none). */
  artifactDir: string | null;
  /** What the job may reach, checked just now (`NO_EGRESS` for types without `egress`). */
  egress: Egress;
}

/**
 * Each type lives in `workers/<type>.ts` (the part that runs in the pool) and
 * `workers/<type>.worker.ts` (the part in the sandbox).
 */
// deno-lint-ignore no-explicit-any
export interface JobType<P = any> {
  name: string;
  summary: string;
  params: z.ZodType<P>;
  defaultTimeoutS(params: P): number;
  /** URLs the job will reach, by field path, for the URL policy. */
  urls(params: P): Array<{ field: string; url: string }>;
  /**
   * How the job reaches those URLs. The pool checks them again right before the job runs and
   * hands on the addresses it checked (`JobTypeContext.egress`), so a name re-pointed since
   * (DNS rebinding) is not followed: "pinned", the Worker connects to those addresses itself;
   * "proxy", the job's browser goes through a proxy in the pool that connects only to them.
   * Types without it reach nothing or apply the policy on every connection themselves.
   */
  egress?: "pinned" | "proxy";
  sandbox(params: P, ctx: JobTypeContext): SandboxSpec;
  /** A sandbox to start ahead of the first job, when it does not depend on params. */
  warm?(config: Config): SandboxSpec;
  /** Whether the job gets its own artifact directory under the data dir. */
  artifacts: boolean;
  /** Whether the pool samples machine resources every second while the job runs. */
  sample: boolean;
  /** Seconds between resource samples (default 1), when `sample` is true. */
  sampleIntervalS?(params: P): number;
  /** Processes the job measures but does not own (the server a benchmark loads). */
  sampleTargets?(params: P): TargetSpec | null;
  /**
   * Completes a successful result with what only the pool has: the resource samples taken while
   * the job ran (the benchmarks add their sizing report here).
   */
  finish?(params: P, result: unknown, samples: Sample[]): unknown;
  /**
   * Jobs of this type get their own slots in each process instead of sharing
   * STREAMPLAY_CONCURRENCY (long-lived, mostly idle jobs such as live sessions).
   */
  slots?(config: Config): number;
  /**
   * Long-lived jobs that share a Worker: on cancel, timeout or pool shutdown the job's
   * AbortSignal fires ("cancelled", "timeout", "shutdown") and it has this long to end on its
   * own before its Worker is terminated, so one job's end does not take its neighbours down.
   */
  stopGraceMs?: number;
}

export type JobTypes = ReadonlyMap<string, JobType>;

/** The registry of the job types a platform runs (`main.ts` lists them from `workers/`). */
export function createJobTypes(list: readonly JobType[]): JobTypes {
  return new Map(list.map((t) => [t.name, t]));
}

/**
 * A job's egress, opened right before it runs (`JobType.egress`): its URLs checked by the policy
 * now, with the addresses to use (and its proxy); or the first refusal, naming the field.
 */
export async function openJobEgress(
  policy: UrlPolicy,
  type: JobType,
  params: unknown,
): Promise<{ ok: true; egress: Egress } | { ok: false; reason: string }> {
  if (!type.egress) return { ok: true, egress: NO_EGRESS };
  return await openEgress(policy, type.urls(params), { proxy: type.egress === "proxy" });
}

/**
 * A succeeded job's stored result: the type's `finish` applied to the resource samples taken
 * while it ran, plus their summary under `resources`. Stops the tracking. A `finish` that throws
 * is reported to `onError` and leaves the Worker's result as it was.
 */
export function completeResult(
  type: JobType,
  params: unknown,
  result: unknown,
  tracking: Tracking | null,
  onError: (err: unknown) => void,
): unknown {
  const samples = tracking?.samples() ?? [];
  const summary = tracking?.stop();
  let finished = result;
  try {
    if (type.finish) finished = type.finish(params, result, samples);
  } catch (err) {
    onError(err);
  }
  return summary && finished && typeof finished === "object" && !Array.isArray(finished)
    ? { ...finished as Record<string, unknown>, resources: summary }
    : finished;
}
