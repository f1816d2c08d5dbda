/**
 * The messages between a session's Worker (`workers/session.worker.ts`) and its companion in the
 * pool process (`host.ts`): setup, input, screenshots, stop and replays one way; page state,
 * the tab to capture, page events and replies the other.
 */
import type { InputMessage, PageState } from "./protocol.ts";
import type { ReplaySpec } from "../recordings/replay_spec.ts";

/** Companion → Worker. Requests with `rid` get a `reply`. */
export type SessionIn =
  /**
   * The answer to `hello`: the proxy the session's browser context must use (the spare's when it
   * was claimed), the DevTools port for a browser launched now, and a proxy for the next spare
   * context when one was asked for.
   */
  | { k: "setup"; proxy: string; debugPort: number; spare?: string }
  | { k: "input"; rid: number; msg: InputMessage | { type: "tabs" } }
  | { k: "screenshot"; rid: number }
  | { k: "stop"; reason: string; stats: Record<string, unknown> }
  /** Report each input as an `input` page event, with the element under it (while recording). */
  | { k: "inputs"; on: boolean }
  /** The steps a `replay` job runs (it waits for them after its page is up). */
  | { k: "replay"; spec: ReplaySpec }
  /** End the session as failed. */
  | { k: "fail"; reason: string };

/** Worker → companion. */
export type SessionOut =
  /**
   * The session starts: `spare` is the proxy of a browser context made ahead for it (claimed when
   * still open); `wantSpare` asks for a proxy for the next one.
   */
  | { k: "hello"; spare: string | null; wantSpare: boolean }
  | { k: "page"; page: PageState }
  | { k: "active"; page: PageState }
  /**
   * The active tab changed: capture this target (`ws://127.0.0.1:<port>/devtools/page/<id>`);
   * `context` is the session's browser context (its DevTools id).
   */
  | { k: "cast"; tab: string; url: string; context: string }
  | { k: "event"; event: Record<string, unknown>; image?: Uint8Array }
  | { k: "reply"; rid: number; ok: boolean; error?: string; data?: unknown };
