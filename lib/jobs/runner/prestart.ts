/**
 * Starting Workers for jobs enqueued by this process (the API in the `all` role): the Worker
 * starts while the enqueue's and the claim's round trips are under way; the claim then finds it.
 */
import type { Config } from "../../core/config.ts";
import type { JobTypes } from "../job_type.ts";
import type { NewJob } from "../queue.ts";
import type { Sandbox } from "../sandbox.ts";
import { NO_EGRESS } from "../../security/egress.ts";
import type { Slots } from "./slots.ts";

/** Jobs of one enqueue call looked at for a Worker to start ahead (bulk loads have Workers). */
const PRESTART_LOOK = 16;

/**
 * What to do with jobs this process enqueued. Types with artifact directories are left out
 * (their permissions name the job's own directory, made at claim time), and so are types with
 * `egress` (theirs name the addresses checked at claim time).
 */
export function prestarter(parts: {
  jobTypes: JobTypes;
  slots: Slots;
  sandbox: Sandbox;
  config: Config;
}): (jobs: NewJob[]) => void {
  const { jobTypes, slots, sandbox, config } = parts;
  return (jobs) => {
    if (slots.stopping) return;
    for (const job of jobs.slice(0, PRESTART_LOOK)) {
      const type = jobTypes.get(job.type);
      const pool = slots.poolOf(job.type);
      // Slots held by claims in flight count as free: those claims may well come back empty.
      if (!type || type.artifacts || type.egress || pool.running >= pool.capacity) continue;
      const parsed = type.params.safeParse(job.params);
      if (parsed.success) {
        sandbox.prestart(
          type.sandbox(parsed.data, { config, artifactDir: null, egress: NO_EGRESS }),
        );
      }
    }
  };
}
