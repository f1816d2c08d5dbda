/**
 * Starting a replay of a recording: its spec built from the stored timeline (and the last frame
 * for a visual comparison), kept in Redis for the job's companion, and the `replay` job started
 * as a live session (`startSession`).
 */
import { z } from "@hono/zod-openapi";
import { conflict, invalid } from "../core/errors.ts";
import type { Config } from "../core/config.ts";
import type { Hold } from "../jobs/submit.ts";
import { type SessionStarting, startSession } from "../sessions/start.ts";
import { findRecording, type RecordingCatalog, type RecordingView } from "./catalog.ts";
import { recordingPaths } from "./model.ts";
import { buildReplaySpec, ReplayRefused } from "./replay.ts";
import type { ReplayOptions, ReplayParams } from "./replay_params.ts";

/** What `POST /api/recordings/:id/replay` answers. */
export const ReplayStartedSchema = z.object({
  replay_id: z.string(),
  recording_id: z.string(),
  status: z.string(),
  steps: z.number(),
  speed: z.union([z.number(), z.literal("max")]),
  viewer_url: z.string(),
  ws_url: z.string().nullable(),
  job_url: z.string(),
});
export type ReplayStarted = z.infer<typeof ReplayStartedSchema>;

/** What starting a replay needs. */
export interface ReplayStarting extends SessionStarting {
  config: Pick<Config, "maxSessions" | "dataDir" | "publicUrl" | "tokens">;
  recordings: { catalog: RecordingCatalog; publicUrl(): string };
}

/**
 * Replays recording `id` in a fresh browser; answers once the replay's page is up. 409 while it
 * still records, or when a visual comparison is asked for and its last frame cannot be had;
 * otherwise the errors of `startSession`.
 */
export async function startReplay(
  deps: ReplayStarting,
  id: string,
  options: ReplayOptions,
): Promise<ReplayStarted> {
  const recording = await findRecording(deps.recordings.catalog, id);
  if (recording.state === "recording") {
    throw conflict(`Recording ${id} is still recording; stop it before replaying it`);
  }
  let finalFrame: Uint8Array | null = null;
  if (options.visual_threshold !== undefined) {
    finalFrame = await lastFrame(deps, recording);
    if (!finalFrame) {
      throw conflict(
        `visual_threshold: the last frame of recording ${id} is not available from this node; ` +
          "replay without a visual comparison",
      );
    }
  }
  let spec;
  try {
    spec = buildReplaySpec(
      recording,
      await deps.recordings.catalog.rawTimeline(id),
      options,
      finalFrame,
    );
  } catch (err) {
    if (err instanceof ReplayRefused) throw invalid(err.message);
    throw err;
  }
  const speed = spec.speed === "max" ? null : spec.speed;
  const runS = speed === null
    ? spec.steps.length * 2
    : spec.duration_ms / 1000 / speed + spec.steps.length * 0.5;
  const params: ReplayParams = {
    url: spec.start_url,
    viewport: recording.viewport.width > 0 ? recording.viewport : { width: 1280, height: 720 },
    quality: options.quality,
    max_fps: options.max_fps,
    idle_timeout_s: 86_400,
    max_duration_s: Math.min(86_400, Math.ceil(runS + spec.start_delay_ms / 1000 + 120)),
    record: options.record,
    replay: {
      recording_id: id,
      speed: spec.speed,
      visual_threshold: spec.visual_threshold,
      steps: spec.steps.length,
    },
  };
  const { redis, keys } = deps.queue;
  // The steps wait in Redis for the job's companion, a while past the job's own timeout.
  const steps: Hold = {
    async take(job) {
      await redis.set(
        keys.replaySpec(job.id),
        JSON.stringify(spec),
        "PX",
        (job.timeoutS + 600) * 1000,
      );
    },
    async release(replayId) {
      await redis.del(keys.replaySpec(replayId));
    },
  };
  const job = await startSession(deps, { type: "replay", params, hold: steps });
  const snap = deps.sessions.host?.get(job.id)?.snapshot() ??
    await deps.sessions.store.snapshot(job.id);
  return {
    replay_id: job.id,
    recording_id: id,
    status: job.status,
    steps: spec.steps.length,
    speed: spec.speed,
    viewer_url: `${deps.config.publicUrl}/?session=${job.id}&view=1`,
    ws_url: snap?.ws_url ?? null,
    job_url: `/api/jobs/${job.id}`,
  };
}

/** The recording's last frame: from this node's disk, else from its node. */
async function lastFrame(
  deps: ReplayStarting,
  recording: RecordingView,
): Promise<Uint8Array | null> {
  const path = recordingPaths(deps.config.dataDir, recording.recording_id).final;
  try {
    return await Deno.readFile(path);
  } catch { /* not here */ }
  if (!recording.node || recording.node === deps.recordings.publicUrl()) return null;
  const token = deps.config.tokens[0]?.token;
  try {
    const res = await fetch(
      `${recording.node}/api/recordings/${recording.recording_id}/screenshots/final`,
      { headers: token ? { authorization: `Bearer ${token}` } : {} },
    );
    if (!res.ok) {
      await res.body?.cancel();
      return null;
    }
    return new Uint8Array(await res.arrayBuffer());
  } catch {
    return null;
  }
}
