/**
 * What a replay runs and what it reports: the steps, what happened then, and the divergences. The
 * API builds it (`lib/recordings/replay.ts`); the session Worker runs it
 * (`workers/replay_runner.ts`). Types only: the sandboxed Worker imports this.
 */
import type { InputMessage } from "../sessions/protocol.ts";

/** The element under an input at the moment it was sent (CSS pixels of the viewport). */
export interface ElementTarget {
  /**
   * A Playwright selector: test id, id, role and name, a stable attribute or class, within an
   * item named by its text, or a CSS path; null for "nothing" (the page's background).
   */
  selector: string | null;
  /** Its tag name, or "nothing" for the page's background (its box is then the point). */
  tag: string;
  /** Its visible text or label, shortened (absent for sensitive fields). */
  text?: string;
  box: { x: number; y: number; width: number; height: number };
  /** A password field: typed text is masked in the timeline. */
  sensitive?: boolean;
}

/** An input as recorded: the message without its `ref`, and where it was aimed. */
export interface ReplayStep {
  /** Milliseconds from the start of the recording (video time). */
  t: number;
  tab?: string;
  input: InputMessage;
  target?: ElementTarget | null;
  /** The typed text was masked when recorded (password field): it cannot be typed again. */
  masked?: boolean;
}

export interface ReplaySpec {
  recording_id: string;
  /** The page the recording started on. */
  start_url: string;
  /** Length of the recording (ms): a timed replay runs at least this long (over `speed`). */
  duration_ms: number;
  steps: ReplayStep[];
  /**
   * The recording began before the session's first page load (it holds that load's navigation
   * and errors): the replay compares from its own first load. Otherwise it compares what happens
   * after its start page is up.
   */
  first_load: boolean;
  /** Main-frame navigations seen while recording, in order. */
  navigations: Array<{ t: number; tab?: string; url: string }>;
  /** Page errors and console errors seen while recording. */
  errors: Array<{ t: number; type: ErrorKind; message: string }>;
  /** 1 = original timing, 2 = twice as fast, "max" = each step as soon as the page is ready. */
  speed: number | "max";
  /** Wait before the first step (viewers have time to join). */
  start_delay_ms: number;
  /** Report a visual divergence when this share of pixels of the last frame differ (0..1). */
  visual_threshold: number | null;
  /** The recording's last frame (JPEG, base64) when a visual comparison is asked for. */
  final_frame_b64: string | null;
}

export type ErrorKind = "page_error" | "console_error";

export type DivergenceKind =
  | "element_not_found"
  | "step_failed"
  | "masked_input"
  | "navigation"
  | "new_error"
  | "missing_error"
  | "visual";

export interface Divergence {
  kind: DivergenceKind;
  /** What happened the first time. */
  message: string;
  /**
   * How often it happened: the same kind with the same selector (a missing element), the same
   * error (a failed step), or the same message.
   */
  count: number;
  /** Index of the step (from 0) and its time in the recording (ms), for step divergences. */
  step?: number;
  t?: number;
  /** The last step it happened at, when more than once. */
  last_step?: number;
  last_t?: number;
  selector?: string;
  expected?: unknown;
  actual?: unknown;
}

export interface ReplayReport {
  recording_id: string;
  speed: number | "max";
  steps: number;
  steps_replayed: number;
  /** Steps whose element was found by its selector (the others used the coordinates). */
  located_by_selector: number;
  navigations: { expected: number; actual: number };
  errors: { expected: number; actual: number };
  /** Share of differing pixels of the last frame (null when not compared). */
  visual_difference: number | null;
  divergences: Divergence[];
  ok: boolean;
}
