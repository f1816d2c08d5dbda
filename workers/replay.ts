/**
 * `replay`: a recording's steps run again in a fresh browser context, as a live session (same
 * Worker, same companion: viewers watch it like any session, view-only) that ends by itself with
 * a report of divergences. Created by `POST /api/recordings/:id/replay`, which puts the steps in
 * Redis for the job's companion to hand to the Worker (`lib/recordings/replay.ts`): the job's params stay
 * small (they are in the history), the steps do not need to.
 */
import { z } from "@hono/zod-openapi";
import type { JobType } from "../lib/jobs/job_type.ts";
import { RecordParam } from "../lib/recordings/model.ts";
import { SESSION_JOB_BASE, SessionParams } from "./session.ts";

export const ReplaySpeed = z.union([z.number().min(0.1).max(100), z.literal("max")])
  .openapi({
    description: 'Playback speed: 1 is the original timing, 2 twice as fast, "max" as fast as ' +
      "the page allows.",
    example: 1,
  });

/** What a replay is asked to do (the body of `POST /api/recordings/:id/replay`). */
export const ReplayOptions = z.object({
  speed: ReplaySpeed.default(1),
  visual_threshold: z.number().min(0).max(1).optional().openapi({
    description: "Compare the last frame with the recording's and report a divergence when " +
      "more than this share of pixels differ (0..1). Omitted: no visual comparison.",
  }),
  start_delay_ms: z.number().int().min(0).max(60_000).default(1_000)
    .openapi({ description: "Wait before the first step, so viewers can join." }),
  quality: z.number().int().min(1).max(100).default(60)
    .openapi({ description: "JPEG quality of the replay's live frames." }),
  max_fps: z.number().int().min(1).max(60).default(30),
  record: RecordParam,
}).strict().openapi("ReplayOptions");

export type ReplayOptions = z.infer<typeof ReplayOptions>;

export const ReplayParams = SessionParams.extend({
  replay: z.object({
    recording_id: z.string().max(64),
    speed: ReplaySpeed,
    visual_threshold: z.number().min(0).max(1).nullable(),
    steps: z.number().int().min(0),
  }).strict(),
}).strict().openapi("ReplayParams");

export type ReplayParams = z.infer<typeof ReplayParams>;

export const replayJob: JobType<ReplayParams> = {
  name: "replay",
  summary: "Runs a recording's steps again in a fresh browser and reports divergences.",
  params: ReplayParams,
  ...SESSION_JOB_BASE,
};
