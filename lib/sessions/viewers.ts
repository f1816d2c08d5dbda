/**
 * The viewer fan-out of one live session: viewers join on a WebSocket; each frame goes out as the
 * one wire message built for it, with latest-frame backpressure (a viewer still busy with earlier
 * bytes skips to the newest frame; nobody else waits); JSON goes to one viewer or to all.
 */
import { errorMessage, type Logger } from "../core/log.ts";
import { describeZodError } from "../http/errors.ts";
import type { MetricsWindow } from "./metrics_window.ts";
import { type SessionMetrics, type SessionSnapshot, ViewerMessage } from "./protocol.ts";

/**
 * A viewer whose socket still holds more unsent bytes than this (or than two frames of the
 * current size, for large frames) gets no new frame yet.
 */
const VIEWER_SLACK_BYTES = 256 * 1024;
const DRAIN_EVERY_MS = 10;

/** A frame as viewers get it: the wire message (`frame.ts`), sent unchanged to every viewer. */
export interface WireFrame {
  readonly message: Uint8Array;
}

export interface ViewerInfo {
  readonly id: string;
  readonly name: string;
  readonly interactive: boolean;
}

/** How the session answered a viewer's message (`data` goes back in the ack). */
export interface InputReply {
  ok: boolean;
  error?: string;
  data?: unknown;
}

/** What the fan-out needs from its session. */
export interface ViewerSession {
  readonly id: string;
  /** Whether the session has ended: a viewer whose socket opens then is turned away. */
  isOver(): boolean;
  /** What a joining viewer is shown first: the session, its recent events, its latest frame. */
  welcome(): {
    session: SessionSnapshot;
    events: Record<string, unknown>[];
    frame: WireFrame | null;
  };
  /** A viewer joined or left; `count` viewers are there now. */
  joined(viewer: ViewerInfo, count: number): void;
  left(viewer: ViewerInfo, count: number): void;
  /** Acts on a viewer's valid message (anything but a ping). */
  input(viewer: ViewerInfo, msg: Exclude<ViewerMessage, { type: "ping" }>): Promise<InputReply>;
}

interface Viewer extends ViewerInfo {
  socket: WebSocket;
  pending: WireFrame | null;
  frames: number;
  bytes: number;
  dropped: number;
}

function slack(frame: WireFrame): number {
  return Math.max(VIEWER_SLACK_BYTES, 2 * frame.message.length);
}

export class Viewers {
  private readonly viewers = new Map<string, Viewer>();
  private nextViewer = 1;
  private maxCount = 0;
  private drainTimer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly session: ViewerSession,
    private readonly metrics: MetricsWindow,
    private readonly log: Logger,
  ) {}

  /** Viewers connected now. */
  get count(): number {
    return this.viewers.size;
  }

  /** The most viewers connected at once. */
  get max(): number {
    return this.maxCount;
  }

  /** Serves one viewer on an open (or opening) WebSocket until either side closes. */
  join(socket: WebSocket, who: { interactive: boolean; name: string }) {
    const viewer: Viewer = {
      id: `v${this.nextViewer++}`,
      name: who.name,
      socket,
      interactive: who.interactive,
      pending: null,
      frames: 0,
      bytes: 0,
      dropped: 0,
    };
    socket.binaryType = "arraybuffer";
    const open = () => {
      if (this.session.isOver()) {
        socket.close(1000, "the session has ended");
        return;
      }
      this.viewers.set(viewer.id, viewer);
      this.maxCount = Math.max(this.maxCount, this.viewers.size);
      const { session, events, frame } = this.session.welcome();
      this.json(viewer, {
        type: "hello",
        viewer: { id: viewer.id, interactive: viewer.interactive },
        session,
        events,
      });
      if (frame) this.sendFrame(viewer, frame);
      this.session.joined(viewer, this.viewers.size);
    };
    if (socket.readyState === WebSocket.OPEN) open();
    else socket.addEventListener("open", open);
    socket.addEventListener("message", (e) => {
      this.fromViewer(viewer, e.data).catch((err) => {
        this.log.warn("viewer message not handled", {
          session: this.session.id,
          error: errorMessage(err),
        });
        this.json(viewer, { type: "error", error: "The message could not be handled" });
      });
    });
    socket.addEventListener("close", () => {
      if (!this.viewers.delete(viewer.id)) return;
      this.session.left(viewer, this.viewers.size);
    });
  }

  /** Sends a frame to every viewer; one still busy keeps only the newest frame waiting. */
  offer(frame: WireFrame) {
    for (const viewer of this.viewers.values()) {
      if (viewer.socket.readyState !== WebSocket.OPEN) continue;
      if (viewer.pending) {
        viewer.dropped++;
        this.metrics.dropped();
        viewer.pending = null;
      }
      if (viewer.socket.bufferedAmount <= slack(frame)) {
        this.sendFrame(viewer, frame);
      } else {
        viewer.pending = frame;
        this.drainTimer ??= setInterval(() => this.drain(), DRAIN_EVERY_MS);
      }
    }
  }

  private sendFrame(viewer: Viewer, frame: WireFrame) {
    try {
      viewer.socket.send(frame.message);
    } catch {
      return;
    }
    viewer.frames++;
    viewer.bytes += frame.message.length;
    this.metrics.sent(frame.message.length);
  }

  private drain() {
    let waiting = 0;
    for (const viewer of this.viewers.values()) {
      if (!viewer.pending) continue;
      if (viewer.socket.readyState !== WebSocket.OPEN) viewer.pending = null;
      else if (viewer.socket.bufferedAmount <= slack(viewer.pending)) {
        const frame = viewer.pending;
        viewer.pending = null;
        this.sendFrame(viewer, frame);
      } else waiting++;
    }
    if (waiting === 0) {
      clearInterval(this.drainTimer);
      this.drainTimer = undefined;
    }
  }

  /** Sends one JSON text to every viewer. */
  broadcast(message: Record<string, unknown>) {
    const text = JSON.stringify(message);
    for (const v of this.viewers.values()) {
      if (v.socket.readyState !== WebSocket.OPEN) continue;
      try {
        v.socket.send(text);
      } catch { /* closing */ }
    }
  }

  /** Tells each viewer the session's metrics and its own share of them. */
  sendStats(metrics: SessionMetrics) {
    for (const v of this.viewers.values()) {
      this.json(v, {
        type: "stats",
        metrics,
        you: { frames: v.frames, bytes: v.bytes, dropped: v.dropped },
      });
    }
  }

  /** Closes every viewer's socket (the session ended). */
  closeAll(code: number, reason: string) {
    for (const v of this.viewers.values()) {
      try {
        v.socket.close(code, reason);
      } catch { /* closed */ }
    }
    this.viewers.clear();
    clearInterval(this.drainTimer);
    this.drainTimer = undefined;
  }

  private json(viewer: Viewer, message: Record<string, unknown>) {
    if (viewer.socket.readyState !== WebSocket.OPEN) return;
    try {
      viewer.socket.send(JSON.stringify(message));
    } catch { /* closing */ }
  }

  private async fromViewer(viewer: Viewer, data: unknown) {
    if (typeof data !== "string") {
      this.json(viewer, {
        type: "error",
        error: "Send JSON text messages; binary is not accepted",
      });
      return;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(data);
    } catch {
      this.json(viewer, { type: "error", error: "The message is not valid JSON" });
      return;
    }
    const parsed = ViewerMessage.safeParse(raw);
    const ref = (raw as { ref?: unknown })?.ref;
    const refField = typeof ref === "string" || typeof ref === "number" ? { ref } : {};
    if (!parsed.success) {
      this.json(viewer, { type: "error", ...refField, ...describeZodError(parsed.error) });
      return;
    }
    const msg = parsed.data;
    if (msg.type === "ping") {
      this.json(viewer, { type: "pong", ...refField, t: msg.t, server_time: Date.now() });
      return;
    }
    const reply = await this.session.input(viewer, msg);
    if (!reply.ok) {
      this.json(viewer, { type: "error", ...refField, error: reply.error ?? "The input failed" });
      return;
    }
    const result = (reply.data ?? {}) as { clipboard?: string };
    if (typeof result.clipboard === "string") {
      this.json(viewer, { type: "clipboard", ...refField, text: result.clipboard });
    }
    if (msg.type === "tabs") this.json(viewer, { type: "tabs", ...refField, ...result });
    else if ("ref" in refField) this.json(viewer, { type: "ack", ...refField, ...result });
  }
}
