/** What a replay is asked for (`POST /api/recordings/:id/replay`) and the `replay` job's params. */
import { z } from "@hono/zod-openapi";
import { RecordParam } from "./model.ts";
import { SessionParams } from "../sessions/params.ts";

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
