/**
 * Replays on the platform side: the spec of a replay built from a recording's stored timeline, and
 * the `replay` job's companion (the session companion that also hands the spec to the Worker).
 */
import type { Companion } from "../jobs/runner.ts";
import type { Redis } from "../core/redis.ts";
import type { RedisKeys } from "../core/keys.ts";
import { errorMessage, type Logger } from "../core/log.ts";
import type { ReplaySpec, ReplayStep } from "./replay_spec.ts";
import type { SessionIn } from "../sessions/worker_messages.ts";
import { ViewerMessage } from "../sessions/protocol.ts";
import type { RecordingView } from "./catalog.ts";
import type { ReplayOptions } from "./replay_params.ts";

/** Steps one replay may hold; beyond it pointer moves are left out, then it is refused. */
export const MAX_REPLAY_STEPS = 20_000;

export class ReplayRefused extends Error {
  override name = "ReplayRefused";
}

const ms = (event: Record<string, unknown>) => Number(event.recording_t_ms ?? 0);

/**
 * The steps and expectations of a replay of `recording`, from its stored timeline events.
 *
 * Its inputs become steps; its navigations and errors become what the replay is compared with.
 */
export function buildReplaySpec(
  recording: RecordingView,
  events: Array<Record<string, unknown>>,
  options: ReplayOptions,
  finalFrame: Uint8Array | null,
): ReplaySpec {
  let steps: ReplayStep[] = [];
  const navigations: ReplaySpec["navigations"] = [];
  const errors: ReplaySpec["errors"] = [];
  for (const e of events) {
    const t = ms(e);
    const tab = typeof e.tab === "string" ? e.tab : undefined;
    if (e.type === "input") {
      const parsed = ViewerMessage.safeParse(e.input);
      if (!parsed.success || parsed.data.type === "ping" || parsed.data.type === "tabs") continue;
      const step: ReplayStep = { t, input: parsed.data };
      if (tab) step.tab = tab;
      if (e.target && typeof e.target === "object") step.target = e.target as ReplayStep["target"];
      if (e.masked === true) step.masked = true;
      steps.push(step);
    } else if (e.type === "navigation" && typeof e.url === "string") {
      navigations.push(tab ? { t, tab, url: e.url } : { t, url: e.url });
    } else if (e.type === "page_error") {
      errors.push({ t, type: "page_error", message: String(e.message ?? "") });
    } else if (
      // The browser makes or skips its own favicon request as it likes: not the page's error.
      e.type === "console" && e.level === "error" &&
      !/\/favicon\.ico(\?|:\d+$|$)/.test(String(e.source ?? ""))
    ) {
      errors.push({ t, type: "console_error", message: String(e.message ?? "") });
    }
  }
  if (steps.length > MAX_REPLAY_STEPS) {
    steps = steps.filter((s) => !(s.input.type === "mouse" && s.input.action === "move"));
  }
  if (steps.length > MAX_REPLAY_STEPS) {
    throw new ReplayRefused(
      `Recording ${recording.recording_id} has ${steps.length} inputs; a replay runs at most ` +
        `${MAX_REPLAY_STEPS}`,
    );
  }
  const threshold = options.visual_threshold ?? null;
  return {
    recording_id: recording.recording_id,
    start_url: recording.start_url,
    duration_ms: Math.round(recording.duration_seconds * 1000),
    steps,
    first_load: recording.from_first_load,
    navigations,
    errors,
    speed: options.speed,
    start_delay_ms: options.start_delay_ms,
    visual_threshold: threshold,
    final_frame_b64: threshold !== null && finalFrame ? finalFrame.toBase64() : null,
  };
}

/**
 * The companion of `replay` jobs: the session companion (viewers, frames, control) that also
 * hands the Worker the job's spec from Redis, and removes it once the job ended.
 */
export function replayCompanion(options: {
  session: Companion;
  redis: Redis;
  keys: RedisKeys;
  log: Logger;
}): Companion {
  const { session, redis, keys, log } = options;
  return {
    start(job, link) {
      const run = session.start(job, link);
      const key = keys.replaySpec(job.id);
      redis.get(key).then((text) => {
        const msg: SessionIn = text ? { k: "replay", spec: JSON.parse(text) as ReplaySpec } : {
          k: "fail",
          reason: "This replay has no steps: create replays with POST /api/recordings/:id/replay",
        };
        link.send(msg);
      }).catch((err) => {
        log.warn("cannot read a replay's steps", { job: job.id, error: errorMessage(err) });
        link.send({ k: "fail", reason: `cannot read the replay's steps: ${errorMessage(err)}` });
      });
      return {
        onMessage: (data) => run.onMessage(data),
        end(outcome) {
          run.end(outcome);
          redis.del(key).catch(() => {});
        },
      };
    },
  };
}
