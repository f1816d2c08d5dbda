/**
 * `noop`: a job that does nothing (or sleeps, logs, or fails on request). It measures the
 * platform itself (queue, sandbox, history) and lets tests and operators exercise retries,
 * timeouts, cancellation and failure alerts without touching the network.
 */
import { z } from "@hono/zod-openapi";
import type { JobType } from "../lib/jobs/job_type.ts";
import { NO_PERMISSIONS } from "../lib/jobs/sandbox.ts";

export const NoopParams = z.object({
  sleep_ms: z.number().int().min(0).max(3_600_000).default(0)
    .openapi({ description: "How long the job waits before it ends." }),
  logs: z.number().int().min(0).max(10_000).default(0)
    .openapi({ description: "Log lines to emit while running." }),
  fail: z.boolean().default(false).openapi({ description: "End the attempt with an error." }),
  fatal: z.boolean().default(false)
    .openapi({ description: "With fail: fail for good, without retries." }),
  message: z.string().max(1000).optional().openapi({ description: "Error or result message." }),
}).strict().openapi("NoopParams");

export type NoopParams = z.infer<typeof NoopParams>;

const spec = {
  module: new URL("./noop.worker.ts", import.meta.url),
  permissions: NO_PERMISSIONS,
  jobsPerWorker: 256,
};

export const noopJob: JobType<NoopParams> = {
  name: "noop",
  summary: "Does nothing, sleeps, logs or fails on request (platform checks and tests).",
  params: NoopParams,
  defaultTimeoutS: (p) => Math.ceil(p.sleep_ms / 1000) + 60,
  urls: () => [],
  sandbox: () => spec,
  warm: () => spec,
  artifacts: false,
  sample: false,
};
