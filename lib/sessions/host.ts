/**
 * The sessions running in this process: the `session` job type's companion. Each `Live` runs one
 * session's lifecycle (proxy, capture, page events, stop, end) and composes its viewer fan-out
 * (`viewers.ts`), metrics window (`metrics_window.ts`) and control (`session_control.ts`).
 */
import type { Companion, CompanionRun, JobLink } from "../jobs/runner.ts";
import type { Outcome } from "../jobs/queue.ts";
import type { Logger } from "../core/log.ts";
import { errorMessage } from "../core/log.ts";
import type { UrlPolicy } from "../security/url_policy.ts";
import { type SessionProxy, sessionProxy, SpareProxies } from "./session_proxy.ts";
import { type Screencast, startScreencast } from "./screencast.ts";
import { freePort } from "../core/redis.ts";
import type { ControlOp, ControlReply, SessionStore } from "./store.ts";
import { decodeFrame, type FrameHeader } from "./frame.ts";
import type { PageState, SessionSnapshot, SessionState } from "./protocol.ts";
import { healthOf, MetricsWindow } from "./metrics_window.ts";
import { Viewers, type ViewerSession } from "./viewers.ts";
import { type ControlledSession, SessionControl } from "./session_control.ts";
import type { SessionIn, SessionOut } from "./worker_messages.ts";
import type { SessionParams } from "./params.ts";

const BACKLOG_EVENTS = 200;

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

/**
 * How other features tap a session in the process that runs it
 * (`host.onStart((s) => s.subscribe(...))`): every captured frame in order (the bytes viewers
 * get), each state change, each page event before it is stored, and the end.
 */
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

/** How a CDP client reaches a session's browser (`cdp_sessions.ts`). */
export interface SessionDevtools {
  /** The browser's loopback DevTools port. */
  port: number;
  /** The session's browser context (its DevTools id). */
  context: string;
  /** The policy proxy (`socks5://…`) every context of the session must use. */
  proxy: string;
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
  /** The session's browser, once its first tab is up; rejects if the session ends first. */
  devtools(): Promise<SessionDevtools>;
  /**
   * Someone used the session without a viewer (a CDP client's command, a stream player's request):
   * its idle time restarts.
   */
  touch(): void;
  /**
   * Keeps the session from ending idle until the returned function is called: for what uses it
   * for as long as it runs (a recording, an RTMP push).
   */
  hold(): () => void;
  /** Asks the session to end with this reason; resolves with its final stats. */
  stop(reason: string): Promise<Record<string, unknown>>;
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

/** One session's lifecycle: what its Worker says, capture, page events, stop and end. */
class Live implements LiveSession, CompanionRun {
  private state: SessionState = "starting";
  private reason: string | null = null;
  private page: PageState;
  private readonly startedAt = Date.now();
  private lastActive = Date.now();
  /** What holds the session awake besides its viewers (see `hold`). */
  private holds = 0;
  private latest: LiveFrame | null = null;
  private readonly subscribers = new Set<FrameSubscriber>();
  private readonly backlog: Array<Record<string, unknown>> = [];
  private readonly window = new MetricsWindow();
  private readonly viewers: Viewers;
  private readonly ops: SessionControl;
  /** The policy proxy, once the Worker said hello (a new one, or the spare it claimed). */
  private proxy: SessionProxy | undefined;
  private cast: Screencast | undefined;
  /** Bumped at every tab switch, so a slow connect to an old tab is dropped. */
  private castGeneration = 0;
  private seq = 0;
  /** The DevTools port of the browser running this session. */
  private debugPort = 0;
  private readonly tick: ReturnType<typeof setInterval>;
  private stateTimer: ReturnType<typeof setTimeout> | undefined;
  private stopAsked = false;
  private readonly ended = Promise.withResolvers<Record<string, unknown>>();
  private readonly browser = Promise.withResolvers<SessionDevtools>();

  constructor(
    readonly id: string,
    readonly params: SessionParams,
    private readonly link: JobLink,
    private readonly host: HostContext,
  ) {
    this.page = { url: params.url, title: "", tabs: [], viewport: { ...params.viewport } };
    this.browser.promise.catch(() => {});
    this.viewers = new Viewers(this.viewerSide(), this.window, host.log);
    this.ops = new SessionControl(this.controlSide(), (msg) => this.link.send(msg), host.policy);
    this.tick = setInterval(() => this.everySecond(), 1000);
    host.store.hold(id).catch(() => {});
    this.publish();
  }

  /** What the viewer fan-out asks of this session. */
  private viewerSide(): ViewerSession {
    return {
      id: this.id,
      isOver: () => this.isOver(),
      welcome: () => ({ session: this.snapshot(), events: this.backlog, frame: this.latest }),
      joined: (viewer, count) => {
        this.lastActive = Date.now();
        this.link.emit({
          type: "viewer",
          action: "joined",
          viewer: viewer.id,
          name: viewer.name,
          interactive: viewer.interactive,
          viewer_count: count,
        });
        this.changed();
      },
      left: (viewer, count) => {
        this.lastActive = Date.now();
        this.link.emit({ type: "viewer", action: "left", viewer: viewer.id, viewer_count: count });
        this.changed();
      },
      input: (viewer, msg) => this.ops.input(viewer, msg),
    };
  }

  /** What control asks of this session. */
  private controlSide(): ControlledSession {
    return {
      id: this.id,
      state: () => this.state,
      isOver: () => this.isOver(),
      touch: () => this.touch(),
      setPaused: (paused) => this.setPaused(paused),
      stop: (reason) => this.stop(reason),
      snapshot: () => this.snapshot(),
      featureOp: (op, args) => this.host.handlers.get(op)?.(this, args) ?? null,
    };
  }

  get lastFrame(): LiveFrame | null {
    return this.latest;
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

  private receive(msg: SessionOut) {
    switch (msg.k) {
      case "hello":
        this.hello(msg.spare, msg.wantSpare);
        break;
      case "cast":
        this.debugPort = Number(new URL(msg.url).port);
        this.browser.resolve({
          port: this.debugPort,
          context: msg.context,
          proxy: this.proxy!.url,
        });
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
          // Idle time counts from when the page is up to be watched, not from the launch.
          this.lastActive = Date.now();
          this.link.emit({ type: "session", state: "active", node: this.host.publicUrl() });
        }
        this.changed();
        break;
      case "event":
        this.pageEvent(msg.event, msg.image);
        break;
      case "reply":
        this.ops.reply(msg);
        break;
    }
  }

  /** Captures the tab the Worker made active, replacing the previous capture. */
  private async capture(tab: string, url: string) {
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

  private isOver() {
    return this.state === "stopped" || this.state === "failed";
  }

  private frame(frame: LiveFrame, jpegBytes: number) {
    // Frames still in flight after the stop was asked are not part of the final stats.
    if (this.stopAsked) return;
    this.window.captured(frame.ts, jpegBytes);
    this.latest = frame;
    this.viewers.offer(frame);
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

  /** Stores a page event in the job's history and shows it to viewers. */
  private pageEvent(event: Record<string, unknown>, image?: Uint8Array) {
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
    this.viewers.broadcast({ type: "event", event: shown });
  }

  // ---- what features and viewers use ----

  join(socket: WebSocket, viewer: { interactive: boolean; name: string }) {
    this.viewers.join(socket, viewer);
  }

  emit(event: Record<string, unknown>) {
    this.link.emit(event);
  }

  subscribe(subscriber: FrameSubscriber) {
    this.subscribers.add(subscriber);
    return () => void this.subscribers.delete(subscriber);
  }

  trackInputs(on: boolean) {
    if (!this.isOver()) this.link.send({ k: "inputs", on } satisfies SessionIn);
  }

  control(op: ControlOp, args: Record<string, unknown>): Promise<ControlReply> {
    return this.ops.control(op, args);
  }

  devtools(): Promise<SessionDevtools> {
    return this.browser.promise;
  }

  touch() {
    this.lastActive = Date.now();
  }

  hold(): () => void {
    this.holds++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.holds--;
      this.lastActive = Date.now();
    };
  }

  private setPaused(paused: boolean) {
    const next: SessionState = paused ? "paused" : "active";
    this.cast?.setCapturing(!paused);
    if (this.state !== next) {
      this.state = next;
      this.link.emit({ type: "session", state: next });
      this.changed();
    }
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

  /**
   * The Worker starts the session: it gets its proxy (the spare's, when the Worker made a context
   * ahead with one that is still open) and, if it asked, a proxy for its next spare context.
   */
  private hello(spare: string | null, wantSpare: boolean) {
    if (this.proxy || this.isOver()) return;
    this.proxy = (spare ? this.host.spares.claim(spare) : null) ?? sessionProxy(this.host.policy);
    this.proxy.own({
      debugPort: () => this.debugPort,
      refused: (target, reason) => this.pageEvent({ type: "request_blocked", target, reason }),
    });
    this.link.send(
      {
        k: "setup",
        proxy: this.proxy.url,
        debugPort: freePort(),
        ...(wantSpare ? { spare: this.host.spares.make() } : {}),
      } satisfies SessionIn,
    );
  }

  /** Closes the session's proxy (this process is stopping). */
  async closeProxy(): Promise<void> {
    await this.proxy?.close();
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
      metrics: this.window.metrics(this.viewers.count),
    });
    this.viewers.broadcast({ type: "ended", state: this.state, reason: this.reason });
    this.viewers.closeAll(ok ? 1000 : 1011, `session ${this.state}`);
    for (const s of this.subscribers) {
      try {
        s.end?.({ state: this.state, reason: this.reason });
      } catch { /* the subscriber's problem */ }
    }
    this.subscribers.clear();
    this.ops.end();
    this.browser.reject(new Error(`the session ${this.state}`));
    this.castGeneration++;
    this.cast?.close();
    clearInterval(this.tick);
    clearTimeout(this.stateTimer);
    this.proxy?.close();
    this.publish();
    this.host.store.release(this.id).catch(() => {});
    this.host.forget(this.id);
    this.ended.resolve(final);
  }

  // ---- state ----

  private everySecond() {
    const now = Date.now();
    if (this.viewers.count > 0 || this.holds > 0) this.lastActive = now;
    if (now - this.lastActive >= this.params.idle_timeout_s * 1000) this.stop("idle_timeout");
    if (now - this.startedAt >= this.params.max_duration_s * 1000) this.stop("max_duration");
    const { metrics, sample } = this.window.everySecond(this.viewers.count);
    this.viewers.sendStats(metrics);
    if (sample) this.link.emit(sample);
    this.publish();
  }

  private hostStats() {
    return { ...this.window.totals(), viewers_max: this.viewers.max };
  }

  snapshot(): SessionSnapshot {
    const metrics = this.window.metrics(this.viewers.count);
    const node = this.host.publicUrl();
    return {
      id: this.id,
      state: this.state,
      health: healthOf(metrics, this.state === "failed"),
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

  private publish() {
    this.host.store.publish(this.snapshot()).catch((err) =>
      this.host.log.debug("session snapshot not published", { error: errorMessage(err) })
    );
  }

  /** State, page or viewers changed: tell viewers and subscribers soon, publish the snapshot. */
  private changed() {
    if (this.stateTimer !== undefined) return;
    this.stateTimer = setTimeout(() => {
      this.stateTimer = undefined;
      const snapshot = this.snapshot();
      this.viewers.broadcast({ type: "state", session: snapshot });
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
  /** Proxies of the browser contexts function Workers keep ready. */
  spares: SpareProxies;
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
    spares: new SpareProxies(options.policy),
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
      await Promise.all([...sessions.values()].map((s) => s.closeProxy()));
      await context.spares.close();
    },
  };
}
