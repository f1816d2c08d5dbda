/**
 * The sessions running in this process: the `session` job type's companion (see `Companion` in
 * runner.ts). For each session it
 *
 * - gives the session's browser its own SOCKS proxy (the URL policy on every connection);
 * - captures the active tab (CDP screencast over the tab's DevTools WebSocket, see
 *   `screencast.ts`; the Worker says which tab) and fans the frames out: to every viewer with
 *   latest-frame backpressure (a viewer still busy with earlier bytes skips to the newest frame;
 *   skipped frames count as `dropped_frames`; nobody else waits), and to frame subscribers;
 * - takes viewers' JSON messages (validated, view-only viewers refused, URLs checked) to the
 *   Worker and answers them (ack, error, clipboard text);
 * - publishes page events to the job's stream (history in DuckDB) and shows them to viewers;
 * - keeps the metrics, publishes the snapshot to Redis every second, answers control requests
 *   from any API process, and ends the session on idle timeout or max duration.
 *
 * Frame subscribers are how other features tap the stream in the process that runs a session:
 * `host.onStart(s => s.subscribe({ frame, state, end }))` gets every captured frame in order
 * (the same bytes viewers get), each page/state change, and the end. A subscriber that cannot
 * keep up must drop or queue on its own side: `frame` is called synchronously. It may also see
 * each page event before it is stored and add fields to it (`event`), and features may answer
 * control ops of their own for the sessions of this process (`host.handle(op, ...)`).
 */
import type { Companion, CompanionRun, JobLink } from "../jobs/runner.ts";
import type { Outcome } from "../jobs/queue.ts";
import type { Logger } from "../core/log.ts";
import { errorMessage } from "../core/log.ts";
import type { UrlPolicy } from "../security/url_policy.ts";
import { type SocksProxy, startSocksProxy } from "../security/socks_proxy.ts";
import { type Screencast, startScreencast } from "./screencast.ts";
import { freePort } from "../core/redis.ts";
import { describeZodError } from "../http/errors.ts";
import type { ControlOp, ControlReply, SessionStore } from "./store.ts";
import { decodeFrame, type FrameHeader } from "./frame.ts";
import {
  isInput,
  type PageState,
  type SessionMetrics,
  type SessionSnapshot,
  type SessionState,
  ViewerMessage,
} from "./protocol.ts";
import type { SessionIn, SessionOut } from "./worker_messages.ts";
import type { SessionParams } from "./params.ts";

/**
 * A viewer whose socket still holds more unsent bytes than this (or than two frames of the
 * current size, for large frames) gets no new frame yet.
 */
const VIEWER_SLACK_BYTES = 256 * 1024;
const DRAIN_EVERY_MS = 10;
const BACKLOG_EVENTS = 200;
const SAMPLE_EVERY_S = 5;
const WINDOW_S = 5;

/** One captured frame as subscribers get it. */
export interface LiveFrame {
  /** The wire message: `[u32 header length][header JSON][JPEG]`, shared, do not modify. */
  message: Uint8Array;
  /** Capture time, ms since the epoch. */
  ts: number;
  /** Decoded on first use. */
  readonly header: FrameHeader;
  readonly jpeg: Uint8Array;
}

export interface FrameSubscriber {
  /** Every captured frame, in order, synchronously: keep it cheap (queue or drop). */
  frame(frame: LiveFrame): void;
  /** The session's state, page or tabs changed. */
  state?(snapshot: SessionSnapshot): void;
  /** No more frames: the session ended this way. */
  end?(final: { state: SessionState; reason: string | null }): void;
  /**
   * A page event (navigation, console, page error, input, ...) before it is stored and shown;
   * the fields returned are added to it. Called synchronously.
   */
  event?(event: Readonly<Record<string, unknown>>): Record<string, unknown> | void;
}

/** Answers a control op for a session of this process (see `SessionHost.handle`). */
export type SessionOpHandler = (
  session: LiveSession,
  args: Record<string, unknown>,
) => Promise<ControlReply>;

export interface LiveSession {
  readonly id: string;
  readonly params: SessionParams;
  /** The latest captured frame (what the page shows while it does not repaint). */
  readonly lastFrame: LiveFrame | null;
  snapshot(): SessionSnapshot;
  /** Serves one viewer on an open (or opening) WebSocket until either side closes. */
  join(socket: WebSocket, viewer: { interactive: boolean; name: string }): void;
  /** Adds an event to the session job's history (what features built on it do there). */
  emit(event: Record<string, unknown>): void;
  subscribe(subscriber: FrameSubscriber): () => void;
  control(op: ControlOp, args: Record<string, unknown>): Promise<ControlReply>;
  /** Whether the session reports each input as an `input` page event with its target element. */
  trackInputs(on: boolean): void;
}

export interface SessionHost {
  companion: Companion;
  get(id: string): LiveSession | undefined;
  /** Calls `listener` with each session that starts in this process. */
  onStart(listener: (session: LiveSession) => void): () => void;
  /** Answers control op `op` (from any API process) for the sessions of this process. */
  handle(op: ControlOp, handler: SessionOpHandler): () => void;
  close(): Promise<void>;
}

export interface SessionHostOptions {
  log: Logger;
  policy: UrlPolicy;
  store: SessionStore;
  /** This process's base URL as clients reach it (known once it listens). */
  publicUrl(): string;
}

interface Viewer {
  id: string;
  name: string;
  socket: WebSocket;
  interactive: boolean;
  pending: LiveFrame | null;
  frames: number;
  bytes: number;
  dropped: number;
}

type Reply = { ok: boolean; error?: string; data?: unknown };

function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** Loopback and unspecified addresses (connecting to 0.0.0.0 reaches local listeners). */
function isLocalAddress(address: string): boolean {
  return /^127\./.test(address) || address === "::1" || address === "0.0.0.0" || address === "::";
}

function slack(frame: LiveFrame): number {
  return Math.max(VIEWER_SLACK_BYTES, 2 * frame.message.length);
}

function frameOf(message: Uint8Array, ts: number): LiveFrame {
  let decoded: ReturnType<typeof decodeFrame> | undefined;
  return {
    message,
    ts,
    get header() {
      return (decoded ??= decodeFrame(message)).header;
    },
    get jpeg() {
      return (decoded ??= decodeFrame(message)).jpeg;
    },
  };
}

class Live implements LiveSession, CompanionRun {
  state: SessionState = "starting";
  reason: string | null = null;
  page: PageState;
  readonly startedAt = Date.now();
  lastActive = Date.now();
  readonly viewers = new Map<string, Viewer>();
  readonly subscribers = new Set<FrameSubscriber>();
  lastFrame: LiveFrame | null = null;
  nextViewer = 1;
  maxViewers = 0;
  // totals
  framesCaptured = 0;
  jpegBytes = 0;
  framesSent = 0;
  bytesSent = 0;
  dropped = 0;
  // sliding windows
  captured: Array<[at: number, bytes: number]> = [];
  latencies: Array<[at: number, ms: number]> = [];
  buckets: Array<{ sent: number; dropped: number }> = [{ sent: 0, dropped: 0 }];
  backlog: Array<Record<string, unknown>> = [];
  replies = new Map<number, (reply: Reply) => void>();
  nextRid = 1;
  proxy: SocksProxy;
  cast: Screencast | undefined;
  /** Bumped at every tab switch, so a slow connect to an old tab is dropped. */
  castGeneration = 0;
  seq = 0;
  /** The DevTools port of the browser running this session. */
  debugPort = 0;
  ticks = 0;
  tick: ReturnType<typeof setInterval>;
  drainTimer: ReturnType<typeof setInterval> | undefined;
  stateTimer: ReturnType<typeof setTimeout> | undefined;
  stopAsked = false;
  ended = Promise.withResolvers<Record<string, unknown>>();

  constructor(
    readonly id: string,
    readonly params: SessionParams,
    readonly link: JobLink,
    readonly host: HostContext,
  ) {
    this.page = { url: params.url, title: "", tabs: [], viewport: { ...params.viewport } };
    this.proxy = startSocksProxy({
      policy: host.policy,
      // The browser's DevTools port drives the browser: pages must not reach it.
      refuse: (addresses, port) =>
        port === this.debugPort && addresses.some(isLocalAddress)
          ? "the browser's own DevTools port is not for pages"
          : null,
      onRefused: (target, reason) => this.pageEvent({ type: "request_blocked", target, reason }),
    });
    this.link.send(
      { k: "setup", proxy: this.proxy.url, debugPort: freePort() } satisfies SessionIn,
    );
    this.tick = setInterval(() => this.everySecond(), 1000);
    host.store.hold(id).catch(() => {});
    this.publish();
  }

  // ---- from the Worker ----

  onMessage(data: unknown) {
    // Runs in the sandbox's message handler: nothing may escape it.
    try {
      this.receive(data as SessionOut);
    } catch (err) {
      this.host.log.warn("session message not handled", {
        session: this.id,
        error: errorMessage(err),
      });
    }
  }

  receive(msg: SessionOut) {
    switch (msg.k) {
      case "cast":
        this.debugPort = Number(new URL(msg.url).port);
        this.capture(msg.tab, msg.url).catch((err) =>
          this.host.log.warn("screencast failed", { session: this.id, error: errorMessage(err) })
        );
        break;
      case "page":
        this.page = msg.page;
        this.cast?.resize(msg.page.viewport);
        this.changed();
        break;
      case "active":
        this.page = msg.page;
        if (this.state === "starting") {
          this.state = "active";
          this.link.emit({ type: "session", state: "active", node: this.host.publicUrl() });
        }
        this.changed();
        break;
      case "event":
        this.pageEvent(msg.event, msg.image);
        break;
      case "reply":
        this.replies.get(msg.rid)?.(msg);
        this.replies.delete(msg.rid);
        break;
    }
  }

  /** Captures the tab the Worker made active, replacing the previous capture. */
  async capture(tab: string, url: string) {
    const generation = ++this.castGeneration;
    this.cast?.close();
    this.cast = undefined;
    try {
      const cast = await startScreencast({
        url,
        tab,
        quality: this.params.quality,
        maxFps: this.params.max_fps,
        size: this.page.viewport,
        nextSeq: () => ++this.seq,
        onFrame: (message, ts, jpegBytes) => this.frame(frameOf(message, ts), jpegBytes),
        onClose: () => {
          if (this.cast === cast) this.cast = undefined;
        },
      });
      if (generation !== this.castGeneration || this.isOver()) {
        cast.close();
        return;
      }
      this.cast = cast;
      cast.setCapturing(this.state !== "paused");
    } catch (err) {
      if (generation !== this.castGeneration || this.isOver()) return;
      this.link.send(
        {
          k: "fail",
          reason: `cannot capture the page: ${errorMessage(err)}`,
        } satisfies SessionIn,
      );
    }
  }

  isOver() {
    return this.state === "stopped" || this.state === "failed";
  }

  frame(frame: LiveFrame, jpegBytes: number) {
    // Frames still in flight after the stop was asked are not part of the final stats.
    if (this.stopAsked) return;
    const now = Date.now();
    this.framesCaptured++;
    this.jpegBytes += jpegBytes;
    this.captured.push([now, jpegBytes]);
    this.latencies.push([now, now - frame.ts]);
    this.lastFrame = frame;
    for (const viewer of this.viewers.values()) this.offer(viewer, frame);
    for (const subscriber of this.subscribers) {
      try {
        subscriber.frame(frame);
      } catch (err) {
        this.host.log.warn("frame subscriber failed", {
          session: this.id,
          error: errorMessage(err),
        });
      }
    }
  }

  /** Latest-frame backpressure: a busy viewer keeps only the newest frame waiting. */
  offer(viewer: Viewer, frame: LiveFrame) {
    if (viewer.socket.readyState !== WebSocket.OPEN) return;
    if (viewer.pending) {
      viewer.dropped++;
      this.dropped++;
      this.buckets[0]!.dropped++;
      viewer.pending = null;
    }
    if (viewer.socket.bufferedAmount <= slack(frame)) {
      this.sendFrame(viewer, frame);
    } else {
      viewer.pending = frame;
      this.drainTimer ??= setInterval(() => this.drain(), DRAIN_EVERY_MS);
    }
  }

  sendFrame(viewer: Viewer, frame: LiveFrame) {
    try {
      viewer.socket.send(frame.message);
    } catch {
      return;
    }
    viewer.frames++;
    viewer.bytes += frame.message.length;
    this.framesSent++;
    this.bytesSent += frame.message.length;
    this.buckets[0]!.sent++;
  }

  drain() {
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

  /** Stores a page event in the job's history and shows it to viewers. */
  pageEvent(event: Record<string, unknown>, image?: Uint8Array) {
    const shown: Record<string, unknown> = { ts: Date.now(), ...event };
    for (const subscriber of this.subscribers) {
      try {
        Object.assign(shown, subscriber.event?.(shown));
      } catch (err) {
        this.host.log.warn("event subscriber failed", {
          session: this.id,
          error: errorMessage(err),
        });
      }
    }
    if (typeof event.screenshot === "number") {
      shown.screenshot_url = `/api/sessions/${this.id}/screenshots/${event.screenshot}`;
    }
    this.link.emit(image ? { ...shown, image_base64: image.toBase64() } : shown);
    this.backlog.push(shown);
    if (this.backlog.length > BACKLOG_EVENTS) this.backlog.shift();
    this.broadcast({ type: "event", event: shown });
  }

  // ---- viewers ----

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
      if (this.state === "stopped" || this.state === "failed") {
        socket.close(1000, "the session has ended");
        return;
      }
      this.viewers.set(viewer.id, viewer);
      this.maxViewers = Math.max(this.maxViewers, this.viewers.size);
      this.lastActive = Date.now();
      this.json(viewer, {
        type: "hello",
        viewer: { id: viewer.id, interactive: viewer.interactive },
        session: this.snapshot(),
        events: this.backlog,
      });
      if (this.lastFrame) this.sendFrame(viewer, this.lastFrame);
      this.link.emit({
        type: "viewer",
        action: "joined",
        viewer: viewer.id,
        name: viewer.name,
        interactive: viewer.interactive,
        viewer_count: this.viewers.size,
      });
      this.changed();
    };
    if (socket.readyState === WebSocket.OPEN) open();
    else socket.addEventListener("open", open);
    socket.addEventListener("message", (e) => {
      this.fromViewer(viewer, e.data).catch((err) => {
        this.host.log.warn("viewer message not handled", {
          session: this.id,
          error: errorMessage(err),
        });
        this.json(viewer, { type: "error", error: "The message could not be handled" });
      });
    });
    socket.addEventListener("close", () => {
      if (!this.viewers.delete(viewer.id)) return;
      this.lastActive = Date.now();
      this.link.emit({
        type: "viewer",
        action: "left",
        viewer: viewer.id,
        viewer_count: this.viewers.size,
      });
      this.changed();
    });
  }

  emit(event: Record<string, unknown>) {
    this.link.emit(event);
  }

  json(viewer: Viewer, message: Record<string, unknown>) {
    if (viewer.socket.readyState !== WebSocket.OPEN) return;
    try {
      viewer.socket.send(JSON.stringify(message));
    } catch { /* closing */ }
  }

  broadcast(message: Record<string, unknown>) {
    const text = JSON.stringify(message);
    for (const v of this.viewers.values()) {
      if (v.socket.readyState !== WebSocket.OPEN) continue;
      try {
        v.socket.send(text);
      } catch { /* closing */ }
    }
  }

  async fromViewer(viewer: Viewer, data: unknown) {
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
      this.json(viewer, { type: "pong", t: msg.t, server_time: Date.now() });
      return;
    }
    const refuse = (error: string) => this.json(viewer, { type: "error", ...refField, error });
    if (isInput(msg)) {
      if (!viewer.interactive) {
        return refuse(`This viewer is view-only: ${msg.type} input is refused`);
      }
      if (this.state === "paused") {
        return refuse("The session is paused; resume it before sending input");
      }
      this.lastActive = Date.now();
      const url = msg.type === "navigate" ? msg.url : msg.type === "tab" ? msg.url : undefined;
      if (url !== undefined) {
        const verdict = await this.host.policy.check(url);
        if (!verdict.ok) return refuse(`url: ${url} is refused: ${verdict.reason}`);
      }
    }
    const reply = await this.ask({ k: "input", rid: 0, msg });
    if (!reply.ok) return refuse(reply.error ?? "The input failed");
    const result = (reply.data ?? {}) as { clipboard?: string };
    if (typeof result.clipboard === "string") {
      this.json(viewer, { type: "clipboard", text: result.clipboard });
    }
    if (msg.type === "tabs") this.json(viewer, { type: "tabs", ...refField, ...result });
    else if ("ref" in refField) this.json(viewer, { type: "ack", ...refField, ...result });
  }

  /** Sends a request to the Worker and waits for its reply. */
  ask(msg: SessionIn & { rid: number }, timeoutMs = 60_000): Promise<Reply> {
    const rid = this.nextRid++;
    return new Promise<Reply>((resolve) => {
      const timer = setTimeout(() => {
        this.replies.delete(rid);
        resolve({ ok: false, error: "The session did not answer in time" });
      }, timeoutMs);
      this.replies.set(rid, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      this.link.send({ ...msg, rid });
    });
  }

  subscribe(subscriber: FrameSubscriber) {
    this.subscribers.add(subscriber);
    return () => void this.subscribers.delete(subscriber);
  }

  trackInputs(on: boolean) {
    if (!this.isOver()) this.link.send({ k: "inputs", on } satisfies SessionIn);
  }

  // ---- control (REST, from any API process) ----

  async control(op: ControlOp, args: Record<string, unknown>): Promise<ControlReply> {
    if (this.isOver()) {
      return { ok: false, status: 409, error: `Session ${this.id} has ended (${this.state})` };
    }
    if (op === "stop") {
      return { ok: true, status: 200, data: await this.stop("deleted") };
    }
    const handler = this.host.handlers.get(op);
    if (handler) return await handler(this, args);
    if (op === "navigate") {
      const url = String(args.url);
      const verdict = await this.host.policy.check(url);
      if (!verdict.ok) {
        return { ok: false, status: 400, error: `url: ${url} is refused: ${verdict.reason}` };
      }
      this.lastActive = Date.now();
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
        error: `${op} is not available where session ${this.id} runs`,
      };
    }
    if (this.state === "starting") {
      return { ok: false, status: 409, error: `Session ${this.id} is still starting` };
    }
    const next: SessionState = op === "pause" ? "paused" : "active";
    this.cast?.setCapturing(next === "active");
    if (this.state !== next) {
      this.state = next;
      this.link.emit({ type: "session", state: next });
      this.changed();
    }
    return { ok: true, status: 200, data: this.snapshot() };
  }

  /** Asks the Worker to end the session; resolves with the final stats. */
  stop(reason: string): Promise<Record<string, unknown>> {
    if (!this.stopAsked) {
      this.stopAsked = true;
      this.cast?.setCapturing(false);
      this.link.send({ k: "stop", reason, stats: this.hostStats() } satisfies SessionIn);
    }
    return this.ended.promise;
  }

  // ---- the end ----

  end(outcome: Outcome) {
    const ok = outcome.kind === "ok";
    const result = ok ? outcome.result as Record<string, unknown> : null;
    this.state = ok ? "stopped" : "failed";
    this.reason = ok
      ? String(result?.reason ?? "stopped")
      : outcome.kind === "requeue"
      ? "the session was interrupted"
      : outcome.error;
    const final = result ?? { state: "failed", reason: this.reason, ...this.hostStats() };
    this.link.emit({
      type: "session",
      state: this.state,
      reason: this.reason,
      metrics: this.metrics(),
    });
    this.broadcast({ type: "ended", state: this.state, reason: this.reason });
    for (const v of this.viewers.values()) {
      try {
        v.socket.close(ok ? 1000 : 1011, `session ${this.state}`);
      } catch { /* closed */ }
    }
    this.viewers.clear();
    for (const s of this.subscribers) {
      try {
        s.end?.({ state: this.state, reason: this.reason });
      } catch { /* the subscriber's problem */ }
    }
    this.subscribers.clear();
    for (const resolve of this.replies.values()) resolve({ ok: false, error: "The session ended" });
    this.replies.clear();
    this.castGeneration++;
    this.cast?.close();
    clearInterval(this.tick);
    clearInterval(this.drainTimer);
    clearTimeout(this.stateTimer);
    this.proxy.close();
    this.publish();
    this.host.store.release(this.id).catch(() => {});
    this.host.forget(this.id);
    this.ended.resolve(final);
  }

  // ---- metrics and state ----

  everySecond() {
    const now = Date.now();
    this.ticks++;
    if (this.viewers.size > 0) this.lastActive = now;
    if (now - this.lastActive >= this.params.idle_timeout_s * 1000) this.stop("idle_timeout");
    if (now - this.startedAt >= this.params.max_duration_s * 1000) this.stop("max_duration");
    const since = now - WINDOW_S * 1000;
    while (this.captured.length && this.captured[0]![0] < since) this.captured.shift();
    while (this.latencies.length && this.latencies[0]![0] < since) this.latencies.shift();
    this.buckets.unshift({ sent: 0, dropped: 0 });
    if (this.buckets.length > WINDOW_S) this.buckets.pop();
    const metrics = this.metrics();
    for (const v of this.viewers.values()) {
      this.json(v, {
        type: "stats",
        metrics,
        you: { frames: v.frames, bytes: v.bytes, dropped: v.dropped },
      });
    }
    if (this.ticks % SAMPLE_EVERY_S === 0) {
      this.link.emit({
        type: "sample",
        fps: metrics.current_fps,
        bitrate_bps: metrics.current_bitrate,
        viewers: metrics.viewer_count,
        frames_captured: metrics.frames_captured,
        frames_sent: metrics.frames_sent,
        bytes_sent: metrics.bytes_sent,
        dropped_frames: metrics.dropped_frames,
        buffer_health: metrics.buffer_health,
        latency_p50_ms: metrics.latency_ms.p50,
      });
    }
    this.publish();
  }

  metrics(): SessionMetrics {
    const now = Date.now();
    const recent = this.captured.filter(([at]) => at >= now - 2000);
    const bytes = recent.reduce((a, [, b]) => a + b, 0);
    const offered = this.buckets.reduce((a, b) => a + b.sent + b.dropped, 0);
    const sent = this.buckets.reduce((a, b) => a + b.sent, 0);
    const latencies = this.latencies.map(([, ms]) => ms).sort((a, b) => a - b);
    return {
      current_fps: Math.round(recent.length / 2 * 10) / 10,
      current_bitrate: Math.round(bytes * 8 / 2),
      frames_captured: this.framesCaptured,
      frames_sent: this.framesSent,
      bytes_sent: this.bytesSent,
      viewer_count: this.viewers.size,
      dropped_frames: this.dropped,
      buffer_health: offered === 0 ? 100 : Math.round(sent / offered * 1000) / 10,
      latency_ms: { p50: percentile(latencies, 0.5), p95: percentile(latencies, 0.95) },
    };
  }

  hostStats() {
    return {
      frames_captured: this.framesCaptured,
      jpeg_bytes: this.jpegBytes,
      frames_sent: this.framesSent,
      bytes_sent: this.bytesSent,
      dropped_frames: this.dropped,
      viewers_max: this.maxViewers,
    };
  }

  snapshot(): SessionSnapshot {
    const metrics = this.metrics();
    const p95 = metrics.latency_ms.p95 ?? 0;
    const health = this.state === "failed" || metrics.buffer_health < 50 || p95 > 1000
      ? "unhealthy"
      : metrics.buffer_health < 90 || p95 > 250
      ? "degraded"
      : "healthy";
    const node = this.host.publicUrl();
    return {
      id: this.id,
      state: this.state,
      health,
      reason: this.reason,
      node,
      ws_url: `${node.replace(/^http/, "ws")}/ws/sessions/${this.id}`,
      started_at: new Date(this.startedAt).toISOString(),
      uptime_seconds: Math.round((Date.now() - this.startedAt) / 1000),
      ...this.page,
      metrics,
      updated_at: new Date().toISOString(),
    };
  }

  publish() {
    this.host.store.publish(this.snapshot()).catch((err) =>
      this.host.log.debug("session snapshot not published", { error: errorMessage(err) })
    );
  }

  /** State, page or viewers changed: tell viewers and subscribers soon, publish the snapshot. */
  changed() {
    if (this.stateTimer !== undefined) return;
    this.stateTimer = setTimeout(() => {
      this.stateTimer = undefined;
      const snapshot = this.snapshot();
      this.broadcast({ type: "state", session: snapshot });
      for (const s of this.subscribers) {
        try {
          s.state?.(snapshot);
        } catch { /* the subscriber's problem */ }
      }
      this.publish();
    }, 30);
  }
}

interface HostContext {
  handlers: ReadonlyMap<ControlOp, SessionOpHandler>;
  policy: UrlPolicy;
  store: SessionStore;
  log: Logger;
  publicUrl(): string;
  forget(id: string): void;
}

export function createSessionHost(options: SessionHostOptions): SessionHost {
  const sessions = new Map<string, Live>();
  const startListeners = new Set<(session: LiveSession) => void>();
  const handlers = new Map<ControlOp, SessionOpHandler>();
  const context: HostContext = {
    handlers,
    policy: options.policy,
    store: options.store,
    log: options.log,
    publicUrl: options.publicUrl,
    forget: (id) => sessions.delete(id),
  };
  let serving: Promise<void> | undefined;

  const serve = () =>
    serving ??= options.store.serve((id, op, args) => sessions.get(id)?.control(op, args) ?? null)
      .catch((err) => {
        serving = undefined;
        options.log.warn("cannot serve session control requests", { error: errorMessage(err) });
      });

  return {
    companion: {
      start(job, link) {
        serve();
        const live = new Live(job.id, job.params as SessionParams, link, context);
        sessions.set(job.id, live);
        for (const listener of startListeners) {
          try {
            listener(live);
          } catch (err) {
            options.log.warn("session start listener failed", { error: errorMessage(err) });
          }
        }
        return live;
      },
    },
    get: (id) => sessions.get(id),
    onStart(listener) {
      startListeners.add(listener);
      return () => void startListeners.delete(listener);
    },
    handle(op, handler) {
      handlers.set(op, handler);
      return () => void handlers.delete(op);
    },
    async close() {
      await Promise.all([...sessions.values()].map((s) => s.proxy.close()));
    },
  };
}
