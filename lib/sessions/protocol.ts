/**
 * The live session protocol a viewer speaks on `/ws/sessions/:id`: the JSON messages it sends
 * (validated here) and the state it is shown. Frames: `frame.ts`; Worker ↔ companion messages:
 * `worker_messages.ts`.
 */
import { z } from "@hono/zod-openapi";

// ---- viewer → server ----

const coord = z.number().finite().min(-100_000).max(100_000);
const ref = z.union([z.string().max(64), z.number()]).optional()
  .describe("Echoed in the ack or error for this message.");

export const ViewerMessage = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("mouse"),
    action: z.enum(["move", "down", "up", "click", "dblclick"]),
    x: coord,
    y: coord,
    button: z.enum(["left", "middle", "right"]).default("left"),
    click_count: z.number().int().min(1).max(3).optional(),
    ref,
  }).strict(),
  z.object({
    type: z.literal("wheel"),
    x: coord,
    y: coord,
    dx: z.number().finite().min(-100_000).max(100_000).default(0),
    dy: z.number().finite().min(-100_000).max(100_000).default(0),
    ref,
  }).strict(),
  z.object({
    type: z.literal("key"),
    action: z.enum(["down", "up", "press"]),
    key: z.string().min(1).max(40).describe('A KeyboardEvent.key value: "a", "Enter", "Control"'),
    ref,
  }).strict(),
  z.object({ type: z.literal("text"), text: z.string().min(1).max(10_000), ref }).strict(),
  z.object({ type: z.literal("navigate"), url: z.string().min(1).max(8192), ref }).strict(),
  z.object({ type: z.literal("back"), ref }).strict(),
  z.object({ type: z.literal("forward"), ref }).strict(),
  z.object({ type: z.literal("reload"), ref }).strict(),
  z.object({
    type: z.literal("viewport"),
    width: z.number().int().min(200).max(3840),
    height: z.number().int().min(200).max(2160),
    ref,
  }).strict(),
  z.object({
    type: z.literal("tab"),
    action: z.enum(["switch", "close", "new"]),
    tab: z.string().max(20).optional(),
    url: z.string().min(1).max(8192).optional(),
    ref,
  }).strict().superRefine((m, ctx) => {
    if (m.action !== "new" && !m.tab) {
      ctx.addIssue({ code: "custom", path: ["tab"], message: `is required to ${m.action} a tab` });
    }
  }),
  z.object({ type: z.literal("tabs"), ref }).strict(),
  z.object({ type: z.literal("ping"), t: z.number().finite(), ref }).strict(),
]);
export type ViewerMessage = z.infer<typeof ViewerMessage>;

/** Viewer messages that act on the page (refused for view-only viewers). */
export type InputMessage = Exclude<ViewerMessage, { type: "ping" } | { type: "tabs" }>;

export function isInput(m: ViewerMessage): m is InputMessage {
  return m.type !== "ping" && m.type !== "tabs";
}

// ---- session state ----

export const SESSION_STATES = ["starting", "active", "paused", "stopped", "failed"] as const;
export type SessionState = typeof SESSION_STATES[number];
export const SESSION_HEALTHS = ["healthy", "degraded", "unhealthy"] as const;
export type SessionHealth = typeof SESSION_HEALTHS[number];

export interface TabInfo {
  id: string;
  url: string;
  title: string;
  active: boolean;
}

/** What the page side knows: sent by the Worker whenever it changes. */
export interface PageState {
  url: string;
  title: string;
  tabs: TabInfo[];
  viewport: { width: number; height: number };
}

export interface SessionMetrics {
  current_fps: number;
  /** Bits per second of the stream (what one viewer receiving every frame gets). */
  current_bitrate: number;
  frames_captured: number;
  /** Frame messages sent, summed over viewers. */
  frames_sent: number;
  bytes_sent: number;
  viewer_count: number;
  /** Frames viewers skipped because they were still busy with an earlier one (summed). */
  dropped_frames: number;
  /** Share of the frames offered to viewers in the last 5 s that were sent, in percent. */
  buffer_health: number;
  /** Capture to send in this process, last 5 s (ms). */
  latency_ms: { p50: number | null; p95: number | null };
}

/** The live view of a session that its process publishes (Redis) and sends to viewers. */
export interface SessionSnapshot extends PageState {
  id: string;
  state: SessionState;
  health: SessionHealth;
  reason: string | null;
  /** The process serving the session, as clients reach it. */
  node: string;
  ws_url: string;
  started_at: string;
  uptime_seconds: number;
  metrics: SessionMetrics;
  updated_at: string;
}
