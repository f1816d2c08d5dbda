/**
 * A running session's side of control: REST ops (from any API process) and viewers' input,
 * answered by asking the session's Worker (each request carries a rid its reply names).
 * Reaching a session from the API, wherever it runs, is `control.ts`.
 */
import type { UrlPolicy } from "../security/url_policy.ts";
import type { ControlOp, ControlReply } from "./store.ts";
import {
  isInput,
  type SessionSnapshot,
  type SessionState,
  type ViewerMessage,
} from "./protocol.ts";
import type { SessionIn } from "./worker_messages.ts";
import type { InputReply, ViewerInfo } from "./viewers.ts";

/** What control needs from its session. */
export interface ControlledSession {
  readonly id: string;
  state(): SessionState;
  isOver(): boolean;
  /** Someone used the session: its idle timeout starts again. */
  touch(): void;
  /** Pauses or resumes capture. */
  setPaused(paused: boolean): void;
  /** Asks the Worker to end the session; resolves with the final stats. */
  stop(reason: string): Promise<Record<string, unknown>>;
  snapshot(): SessionSnapshot;
  /** Answers an op another feature handles for this session (`SessionHost.handle`), or null. */
  featureOp(op: ControlOp, args: Record<string, unknown>): Promise<ControlReply> | null;
}

export class SessionControl {
  private readonly replies = new Map<number, (reply: InputReply) => void>();
  private nextRid = 1;

  constructor(
    private readonly session: ControlledSession,
    private readonly send: (msg: SessionIn) => void,
    private readonly policy: UrlPolicy,
  ) {}

  /** Answers a control op. */
  async control(op: ControlOp, args: Record<string, unknown>): Promise<ControlReply> {
    const session = this.session;
    if (session.isOver()) {
      return {
        ok: false,
        status: 409,
        error: `Session ${session.id} has ended (${session.state()})`,
      };
    }
    if (op === "stop") {
      return { ok: true, status: 200, data: await session.stop("deleted") };
    }
    const handled = session.featureOp(op, args);
    if (handled) return await handled;
    if (op === "navigate") {
      const url = String(args.url);
      const verdict = await this.policy.check(url);
      if (!verdict.ok) {
        return { ok: false, status: 400, error: `url: ${url} is refused: ${verdict.reason}` };
      }
      session.touch();
      const reply = await this.ask({ k: "input", rid: 0, msg: { type: "navigate", url } });
      return reply.ok
        ? { ok: true, status: 200, data: reply.data }
        : { ok: false, status: 502, error: reply.error ?? "navigation failed" };
    }
    if (op === "screenshot") {
      const reply = await this.ask({ k: "screenshot", rid: 0 }, 30_000);
      return reply.ok
        ? { ok: true, status: 200, bytes: reply.data as Uint8Array }
        : { ok: false, status: 502, error: reply.error ?? "screenshot failed" };
    }
    if (op !== "pause" && op !== "resume") {
      return {
        ok: false,
        status: 501,
        error: `${op} is not available where session ${session.id} runs`,
      };
    }
    if (session.state() === "starting") {
      return { ok: false, status: 409, error: `Session ${session.id} is still starting` };
    }
    session.setPaused(op === "pause");
    return { ok: true, status: 200, data: session.snapshot() };
  }

  /** Takes a viewer's message to the Worker: input only from interactive viewers, URLs checked. */
  async input(
    viewer: ViewerInfo,
    msg: Exclude<ViewerMessage, { type: "ping" }>,
  ): Promise<InputReply> {
    if (isInput(msg)) {
      if (!viewer.interactive) {
        return { ok: false, error: `This viewer is view-only: ${msg.type} input is refused` };
      }
      if (this.session.state() === "paused") {
        return { ok: false, error: "The session is paused; resume it before sending input" };
      }
      this.session.touch();
      const url = msg.type === "navigate" ? msg.url : msg.type === "tab" ? msg.url : undefined;
      if (url !== undefined) {
        const verdict = await this.policy.check(url);
        if (!verdict.ok) return { ok: false, error: `url: ${url} is refused: ${verdict.reason}` };
      }
    }
    return await this.ask({ k: "input", rid: 0, msg });
  }

  /** Sends a request to the Worker and waits for its reply. */
  private ask(msg: Extract<SessionIn, { rid: number }>, timeoutMs = 60_000): Promise<InputReply> {
    const rid = this.nextRid++;
    return new Promise<InputReply>((resolve) => {
      const timer = setTimeout(() => {
        this.replies.delete(rid);
        resolve({ ok: false, error: "The session did not answer in time" });
      }, timeoutMs);
      this.replies.set(rid, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      this.send({ ...msg, rid });
    });
  }

  /** The Worker answered request `reply.rid`. */
  reply(reply: InputReply & { rid: number }) {
    this.replies.get(reply.rid)?.(reply);
    this.replies.delete(reply.rid);
  }

  /** The session ended: requests still waiting are answered so. */
  end() {
    for (const resolve of this.replies.values()) resolve({ ok: false, error: "The session ended" });
    this.replies.clear();
  }
}
