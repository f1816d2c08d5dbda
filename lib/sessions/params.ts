/** What a live session is started with: the `session` job's params (`POST /api/sessions`). */
import { z } from "@hono/zod-openapi";
import { RecordParam } from "../recordings/model.ts";

export const SessionParams = z.object({
  url: z.string().min(1).max(8192).openapi({ example: "http://127.0.0.1:8080/" }),
  viewport: z.object({
    width: z.number().int().min(200).max(3840).default(1280),
    height: z.number().int().min(200).max(2160).default(720),
  }).strict().default({ width: 1280, height: 720 }),
  quality: z.number().int().min(1).max(100).default(60)
    .openapi({ description: "JPEG quality of the frames (1..100)." }),
  max_fps: z.number().int().min(1).max(60).default(30)
    .openapi({ description: "Most frames per second captured (Chromium renders up to 60)." }),
  idle_timeout_s: z.number().int().min(1).max(86_400).default(300)
    .openapi({
      description: "The session ends after this long unused: without viewers, input, stream " +
        "players, an RTMP push, a recording or a CDP client.",
    }),
  max_duration_s: z.number().int().min(5).max(86_400).default(3600)
    .openapi({ description: "The session ends after this long in any case." }),
  record: RecordParam,
  cdp: z.object({
    keep_alive_s: z.number().int().min(0).max(3600).default(0).openapi({
      description: "Seconds the session waits for a CDP client to reconnect once the last left.",
    }),
  }).strict().optional().openapi({
    description: "Opened for a CDP client (GET /cdp): the session ends when its last CDP client " +
      "disconnects, keep_alive_s later.",
  }),
}).strict().openapi("SessionParams");

export type SessionParams = z.infer<typeof SessionParams>;

/** How long a stopping session may take before its Worker is terminated. */
export const SESSION_STOP_GRACE_MS = 10_000;
