/**
 * `replay`: a recording's steps run again in a fresh browser context, as a live session (same
 * Worker and companion, view-only) that ends by itself with a report of divergences.
 */
import type { JobType } from "../lib/jobs/job_type.ts";
import { ReplayParams } from "../lib/recordings/replay_params.ts";
import { SESSION_JOB_BASE } from "./session.ts";

/**
 * Created by `POST /api/recordings/:id/replay`, which puts the steps in Redis for the job's
 * companion to hand to the Worker (`lib/recordings/replay.ts`): the job's params stay small (they
 * are in the history), the steps do not need to.
 */
export const replayJob: JobType<ReplayParams> = {
  name: "replay",
  summary: "Runs a recording's steps again in a fresh browser and reports divergences.",
  params: ReplayParams,
  ...SESSION_JOB_BASE,
};
