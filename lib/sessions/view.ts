/**
 * A session as the API shows it (the `Session` schema): its job's status and options, and while
 * it runs the live snapshot of the process running it (state, page, tabs, metrics, `ws_url`);
 * once it ended, its final stats.
 */
import { z } from "@hono/zod-openapi";
import { FINAL_STATUSES, type JobRecord } from "../jobs/queue.ts";
import type { JobTypes } from "../jobs/job_type.ts";
import {
  SESSION_HEALTHS,
  SESSION_STATES,
  type SessionMetrics,
  type SessionSnapshot,
  type TabInfo,
} from "./protocol.ts";
import { SessionParams } from "./params.ts";
import type { SessionDeps } from "./control.ts";

const Metrics = z.object({
  current_fps: z.number(),
  current_bitrate: z.number().openapi({ description: "Bits per second of the stream" }),
  frames_captured: z.number(),
  frames_sent: z.number().openapi({ description: "Frame messages sent, summed over viewers" }),
  bytes_sent: z.number(),
  viewer_count: z.number(),
  dropped_frames: z.number().openapi({ description: "Frames busy viewers skipped" }),
  buffer_health: z.number().openapi({ description: "Percent of offered frames sent, last 5 s" }),
  latency_ms: z.object({ p50: z.number().nullable(), p95: z.number().nullable() }),
}).openapi("SessionMetrics") satisfies z.ZodType<SessionMetrics>;

const Tab = z.object({
  id: z.string(),
  url: z.string(),
  title: z.string(),
  active: z.boolean(),
}) satisfies z.ZodType<TabInfo>;

export const SessionSchema = z.object({
  id: z.string(),
  status: z.string().openapi({ description: "Status of the session's job" }),
  active: z.boolean(),
  state: z.enum(SESSION_STATES),
  health: z.enum(SESSION_HEALTHS),
  reason: z.string().nullable().openapi({ description: "Why it ended (idle_timeout, ...)" }),
  uptime_seconds: z.number(),
  url: z.string(),
  title: z.string(),
  tabs: z.array(Tab),
  viewport: z.object({ width: z.number(), height: z.number() }),
  viewer_url: z.string(),
  ws_url: z.string().nullable().openapi({ description: "Viewer WebSocket, on the serving node" }),
  cdp_url: z.string().nullable().openapi({
    description: "Where a Playwright or Puppeteer client connects over CDP (add ?token= when " +
      "tokens are on); null for replays and functions, and once ended",
  }),
  opened_over_cdp: z.boolean().openapi({ description: "Opened by a CDP client (GET /cdp)" }),
  node: z.string().nullable(),
  created_at: z.string().nullable(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  options: z.object({
    quality: z.number(),
    max_fps: z.number(),
    idle_timeout_s: z.number(),
    max_duration_s: z.number(),
  }),
  metrics: Metrics,
  final: z.record(z.string(), z.unknown()).nullable()
    .openapi({ description: "Final stats once the session ended" }),
}).openapi("Session");

export type SessionView = z.infer<typeof SessionSchema>;

const ZERO_METRICS: SessionMetrics = {
  current_fps: 0,
  current_bitrate: 0,
  frames_captured: 0,
  frames_sent: 0,
  bytes_sent: 0,
  viewer_count: 0,
  dropped_frames: 0,
  buffer_health: 100,
  latency_ms: { p50: null, p95: null },
};

/** What building a session's view needs. */
export interface SessionViewing {
  jobTypes: JobTypes;
  config: { publicUrl: string };
  sessions: SessionDeps;
}

/** The API's view of a session: its job, and the live snapshot while it runs. */
export function sessionView(
  deps: Omit<SessionViewing, "sessions">,
  job: JobRecord,
  snap: SessionSnapshot | null,
): SessionView {
  const params = (deps.jobTypes.get(job.type)?.params ?? SessionParams).parse(
    job.params,
  ) as SessionParams;
  const final = FINAL_STATUSES.has(job.status);
  const result = final && job.result && typeof job.result === "object"
    ? job.result as Record<string, unknown>
    : null;
  const state = final
    ? (job.status === "failed" ? "failed" : "stopped")
    : snap?.state ?? "starting";
  const over = state === "stopped" || state === "failed";
  const started = job.started_at ? Date.parse(job.started_at) : null;
  const ended = job.finished_at ? Date.parse(job.finished_at) : Date.now();
  const num = (v: unknown) => (typeof v === "number" ? v : 0);
  return {
    id: job.id,
    status: job.status,
    active: !over,
    state,
    health: state === "failed" ? "unhealthy" : final ? "healthy" : snap?.health ?? "healthy",
    reason: final ? String(result?.reason ?? job.error ?? job.status) : snap?.reason ?? null,
    uptime_seconds: started === null ? 0 : Math.max(0, Math.round((ended - started) / 1000)),
    url: snap?.url ?? String(result?.url ?? params.url),
    title: snap?.title ?? "",
    tabs: snap?.tabs ?? [],
    viewport: snap?.viewport ?? params.viewport,
    viewer_url: `${deps.config.publicUrl}/?session=${job.id}`,
    ws_url: over ? null : snap?.ws_url ?? null,
    cdp_url: over || job.type !== "session" || !snap ? null : cdpUrl(snap.node, job.id),
    opened_over_cdp: params.cdp !== undefined,
    node: snap?.node ?? null,
    created_at: job.created_at,
    started_at: job.started_at,
    finished_at: job.finished_at,
    options: {
      quality: params.quality,
      max_fps: params.max_fps,
      idle_timeout_s: params.idle_timeout_s,
      max_duration_s: params.max_duration_s,
    },
    metrics: final
      ? {
        ...ZERO_METRICS,
        frames_captured: num(result?.frames_captured),
        frames_sent: num(result?.frames_sent),
        bytes_sent: num(result?.bytes_sent),
        dropped_frames: num(result?.dropped_frames),
      }
      : snap?.metrics ?? ZERO_METRICS,
    final: final ? result ?? { state, reason: job.error } : null,
  };
}

/** `ws://<node>/cdp/<id>`: where a CDP client attaches to a session that runs on `node`. */
export function cdpUrl(node: string, id: string): string {
  return `${node.replace(/^http/, "ws")}/cdp/${id}`;
}

/** The view of a session with its freshest snapshot: from this process, else from Redis. */
export async function liveView(deps: SessionViewing, job: JobRecord): Promise<SessionView> {
  const snap = FINAL_STATUSES.has(job.status)
    ? null
    : deps.sessions.host?.get(job.id)?.snapshot() ??
      await deps.sessions.store.snapshot(job.id).catch(() => null);
  return sessionView(deps, job, snap);
}
