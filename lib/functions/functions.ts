/**
 * Named functions as the API offers them: a new version is checked (syntax, default export,
 * schedule, allow_hosts) before it is stored; an invocation is a `function` job built from a
 * stored version, answered at once or, with a wait, once it has ended.
 */
import { z } from "@hono/zod-openapi";
import { Cron } from "croner";
import { invalid, notFound } from "../core/errors.ts";
import { FINAL_STATUSES, type JobRecord, type NewJob, newJobId } from "../jobs/queue.ts";
import { type JobSubmission, submitJob } from "../jobs/submit.ts";
import type { EventHub } from "../jobs/events.ts";
import {
  AllowHost,
  DEFAULT_FUNCTION_TIMEOUT_S,
  FunctionParams,
  MAX_CODE_BYTES,
  type OwnNetwork,
  ownNetwork,
  refuseAllowHost,
} from "./params.ts";
import { compileFunction } from "./compile.ts";
import { createFunctionStore, type FunctionStore, type FunctionVersion } from "./store.ts";
import type { AppDeps } from "../http/context.ts";
import { redisKeys } from "../core/keys.ts";

export const FunctionName = z.string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/,
    "must be 1-63 of A-Z a-z 0-9 _ - (not starting with _ or -)",
  )
  .openapi({ example: "login-check" });

export const FunctionSpec = z.object({
  code: z.string().min(1).max(MAX_CODE_BYTES).openapi({
    description: "An ES module (TypeScript or JavaScript) whose default export is " +
      "`async ({ page, context, params, log, artifacts }) => result`.",
    example: "export default async ({ params }) => ({ hello: params?.name ?? 'world' });",
  }),
  browser: z.boolean().default(true)
    .openapi({ description: "Give the function a browser page (false: no page, no context)." }),
  timeout_s: z.number().int().min(1).max(3600).default(DEFAULT_FUNCTION_TIMEOUT_S),
  allow_hosts: z.array(AllowHost).max(20).default([])
    .openapi({ description: "Hosts (host or host:port) the function's own code may reach." }),
  schedule: z.string().max(200).nullable().optional().openapi({
    description: "A cron expression (5 fields, or 6 with seconds; UTC): each tick runs once " +
      "across the platform.",
    example: "*/5 * * * *",
  }),
}).strict().openapi("FunctionSpec");
export type FunctionSpec = z.infer<typeof FunctionSpec>;

export const InvokeBody = z.object({
  params: z.unknown().optional().openapi({ description: "What the function gets as `params`." }),
  version: z.number().int().min(1).optional()
    .openapi({ description: "The version to run (default: the latest)." }),
  max_attempts: z.number().int().min(1).max(20).default(1),
}).strict().openapi("InvokeFunction");
export type InvokeBody = z.infer<typeof InvokeBody>;

/** What the function operations need from the platform. */
export interface FunctionDeps {
  store: FunctionStore;
  /** How runs are queued (checked, admitted), like every job. */
  jobs: JobSubmission;
  /** This machine and the platform's Redis, which allow_hosts may not reach. */
  own(): OwnNetwork;
  /** Live job events (the API process's history writer), for invocations that wait. */
  hub: EventHub;
}

/** The function operations' view of an API process. */
export function functionDepsOf(deps: AppDeps): FunctionDeps {
  const redis = deps.queue.redis;
  const { host, port } = redis.options;
  const own = ownNetwork(`redis://${host ?? "127.0.0.1"}:${port ?? 6379}`);
  return {
    store: createFunctionStore({ redis, keys: redisKeys(deps.config.redisPrefix) }),
    jobs: deps,
    own: () => own,
    hub: deps.hub,
  };
}

const UTC = { timezone: "Etc/UTC", paused: true } as const;

/** A parsed schedule, or a 400 naming what is wrong with it. */
export function parseSchedule(expression: string): Cron {
  try {
    return new Cron(expression, UTC);
  } catch (err) {
    throw invalid(`schedule: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Checks and stores a new version of function `name`. */
export async function saveFunction(
  deps: FunctionDeps,
  name: string,
  spec: FunctionSpec,
  createdBy: string,
): Promise<FunctionVersion> {
  const schedule = spec.schedule?.trim() || null;
  if (schedule) parseSchedule(schedule);
  for (const [i, host] of spec.allow_hosts.entries()) {
    const refused = await refuseAllowHost(host, deps.jobs.policy, deps.own());
    if (refused) throw invalid(`allow_hosts.${i}: ${refused}`);
  }
  const js = await compileFunction(spec.code);
  return await deps.store.put({
    name,
    code: spec.code,
    js,
    browser: spec.browser,
    timeout_s: spec.timeout_s,
    allow_hosts: spec.allow_hosts,
    schedule,
    created_at: new Date().toISOString(),
    created_by: createdBy,
  });
}

/** The job that runs `version` once (`tick`: the schedule's time it runs for). */
export function functionRun(
  version: FunctionVersion,
  options: { params?: unknown; maxAttempts: number; tick?: string },
): NewJob {
  const params: z.input<typeof FunctionParams> = {
    code: version.js,
    params: options.params ?? null,
    browser: version.browser,
    allow_hosts: version.allow_hosts,
    function: {
      name: version.name,
      version: version.version,
      ...(options.tick ? { tick: options.tick } : {}),
    },
  };
  return {
    id: newJobId(),
    type: "function",
    params,
    maxAttempts: options.maxAttempts,
    timeoutS: version.timeout_s,
  };
}

/**
 * Runs function `name` once. With `waitS`, waits that long for the job to end and answers it
 * ended (`done`); otherwise, or when it is still running then, answers it queued.
 */
export async function invokeFunction(
  deps: FunctionDeps,
  name: string,
  body: InvokeBody,
  waitS: number | null,
): Promise<{ job: JobRecord; done: boolean }> {
  const version = await deps.store.get(name, body.version);
  if (!version) {
    throw notFound(
      body.version === undefined
        ? `No function named "${name}"`
        : `Function "${name}" has no version ${body.version}`,
    );
  }
  const run = functionRun(version, { params: body.params, maxAttempts: body.max_attempts });
  let ended: Promise<boolean> = Promise.resolve(false);
  let unsubscribe = () => {};
  if (waitS) {
    ended = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), waitS * 1000);
      unsubscribe = deps.hub.subscribe(run.id, (event) => {
        if (event.type === "status" && FINAL_STATUSES.has(String(event.status))) {
          clearTimeout(timer);
          resolve(true);
        }
      });
    });
  }
  try {
    const queued = await submitJob(deps.jobs, {
      type: run.type,
      params: run.params,
      timeout_s: run.timeoutS,
      max_attempts: run.maxAttempts,
    }, { id: run.id });
    if (!(await ended)) return { job: queued, done: false };
    return { job: (await deps.jobs.queue.get(run.id)) ?? queued, done: true };
  } finally {
    unsubscribe();
  }
}
