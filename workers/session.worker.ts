/**
 * Sandbox side of `session` (and of `replay` and browser `function` jobs): one Chromium for every
 * session of this Worker, one browser context per session, its pages as tabs; viewers' input is
 * applied in order and page events go back to the companion.
 */
import type { Browser, BrowserContext, Dialog, Page } from "playwright";
import { type JobContext, JobError, serveJobs } from "./runtime.ts";
import { CHROMIUM_ARGS, loadPlaywright, type Playwright } from "../lib/core/playwright.ts";
import type { InputMessage, PageState, TabInfo } from "../lib/sessions/protocol.ts";
import type { SessionIn, SessionOut } from "../lib/sessions/worker_messages.ts";
import type { ReplayReport, ReplaySpec } from "../lib/recordings/replay_spec.ts";
import type { SessionInit } from "./session.ts";
import type { SessionParams } from "../lib/sessions/params.ts";
import { elementTarget } from "./element_target.ts";
import { runReplay } from "./replay_runner.ts";
import { runFunction } from "./function_run.ts";
import { createProcessPool, type ProcessPool } from "../lib/functions/pool.ts";
import type { FunctionIn } from "../lib/functions/companion.ts";
import type { FunctionParams } from "../lib/functions/params.ts";

/**
 * Everything must go through the proxy: no QUIC, no WebRTC over plain UDP. The browser's own
 * background requests (autofill, translate, hints) are turned off: they are not the page's; so
 * are the omnibox popups headless Chromium opens as chrome:// targets in every context (a CDP
 * client would see them as tabs).
 */
const SESSION_ARGS = [
  "--disable-quic",
  "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
  "--disable-features=AutofillServerCommunication,OptimizationHints,Translate,MediaRouter," +
  "InterestFeedContentSuggestions,CertificateTransparencyComponentUpdater,WebUIOmniboxPopup," +
  "WebUIOmniboxAimPopup",
  "--disable-sync",
  "--disable-default-apps",
  "--mute-audio",
];
const BROWSER_IDLE_MS = 60_000;
/** Titles change without a navigation: the page state is refreshed this often too. */
const PAGE_POLL_MS = 1_000;
const NAVIGATION_TIMEOUT_MS = 30_000;
/** Page events (console, failed requests) per session: burst, then this many per second. */
const EVENT_BURST = 200;
const EVENTS_PER_S = 50;
/** Screenshots of page errors: at most one per this many ms, and this many per session. */
const ERROR_SHOT_GAP_MS = 2_000;
const ERROR_SHOTS_MAX = 50;
/** While recording, pointer moves are reported at most this often (and before other input). */
const MOVE_REPORT_MS = 200;
/** The selected text: in the focused field, else in the document. */
const SELECTION_JS = `(() => {
  const el = document.activeElement;
  if (el && typeof el.selectionStart === "number" && typeof el.value === "string") {
    return el.value.slice(el.selectionStart, el.selectionEnd ?? el.selectionStart);
  }
  return String(getSelection() ?? "");
})()`;

function sameSize(a: Viewport, b: Viewport): boolean {
  return a.width === b.width && a.height === b.height;
}

/** The browser's own favicon request (made or skipped as it likes): not the page's error. */
function isFaviconLoad(url: string | undefined): boolean {
  return url !== undefined && /\/favicon\.ico(\?|$)/.test(url);
}

let pw: Playwright;
let init: SessionInit;
let browser: Promise<Browser> | undefined;
/** The DevTools port of the running browser. */
let debugPort = 0;
let idleTimer: ReturnType<typeof setTimeout> | undefined;
const sessions = new Set<Session>();
/** The processes of functions with a browser (when this Worker runs them). */
let functionPool: ProcessPool | undefined;

type Viewport = { width: number; height: number };

/** Every session's browser context: its size, and all its traffic through the policy proxy. */
const contextOptions = (viewport: Viewport, proxy: string) => ({
  viewport,
  deviceScaleFactor: 1,
  proxy: { server: proxy, bypass: "<-loopback>" },
  serviceWorkers: "block" as const,
  acceptDownloads: false,
});

/** A browser context with a blank page, made ahead for the next function (see `makeSpare`). */
interface Spare {
  proxy: string;
  viewport: Viewport;
  ready: Promise<{ context: BrowserContext; page: Page } | null>;
}
let spare: Spare | undefined;

/**
 * A function Worker keeps one fresh context and page ready: Chromium takes about 150 ms to make
 * them (Target.createBrowserContext, createTarget, attach), and contexts are made one at a time
 * however many are asked for at once. Its proxy refuses everything until the session that takes
 * the context over claims it (`SpareProxies`). Dropped when the browser closes.
 */
function makeSpare(b: Browser, proxy: string, viewport: Viewport) {
  discardSpare(takeSpare());
  const ready = (async () => {
    const context = await b.newContext(contextOptions(viewport, proxy));
    return { context, page: await context.newPage() };
  })().catch(() => null);
  spare = { proxy, viewport: { ...viewport }, ready };
}

function takeSpare(): Spare | undefined {
  const taken = spare;
  spare = undefined;
  return taken;
}

function discardSpare(s: Spare | undefined) {
  s?.ready.then((r) => r?.context.close()).catch(() => {});
}

/**
 * The shared browser; a new one listens for DevTools on `port` (loopback).
 *
 * Launched on first use, closed a minute after the last session (`BROWSER_IDLE_MS`). The DevTools
 * port is for the companion, which captures the active tab's screencast: this side tells it which
 * target to capture.
 */
function getBrowser(port: number): Promise<Browser> {
  clearTimeout(idleTimer);
  if (!browser) {
    debugPort = port;
    const launching = pw.chromium.launch({
      executablePath: init.chromium,
      args: [
        ...CHROMIUM_ARGS,
        ...SESSION_ARGS,
        "--remote-debugging-address=127.0.0.1",
        `--remote-debugging-port=${port}`,
      ],
      env: init.env,
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
    });
    browser = launching;
    launching.then((b) => {
      b.on("disconnected", () => {
        if (browser === launching) browser = undefined;
        spare = undefined;
        for (const s of sessions) {
          if (s.browser === b) {
            s.fail("the browser process ended unexpectedly (it crashed or was killed)");
          }
        }
      });
    }, () => {
      if (browser === launching) browser = undefined;
    });
  }
  return browser;
}

function releaseBrowser() {
  if (sessions.size > 0 || !browser) return;
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    const idle = browser;
    if (sessions.size > 0 || !idle) return;
    browser = undefined;
    idle.then((b) => b.close()).catch(() => {});
  }, BROWSER_IDLE_MS);
}

interface Tab {
  id: string;
  page: Page;
  /** The DevTools target id (for the companion's screencast). */
  target?: string;
  /** Its browser context's DevTools id (the session's, for CDP clients). */
  context?: string;
}

interface Counters {
  navigations: number;
  console_messages: number;
  page_errors: number;
  failed_requests: number;
  events_suppressed: number;
}

type Request = { rid: number; run: () => Promise<unknown>; move?: { x: number; y: number } };

/**
 * Playwright drives the pages over its pipe; input from viewers arrives from the companion already
 * validated and allowed, and is applied in order. The browser reaches the network only through the
 * companion's SOCKS proxy, which applies the URL policy to every connection.
 *
 * While the session is recorded, each input is also reported as an `input` page event with the
 * element under it resolved to a stable selector before the input is applied (`element_target.ts`).
 * A `replay` job is a session that, once its page is up, runs a recording's steps and reports how
 * it diverged (`replay_runner.ts`); a `function` job with a browser is a session whose page is
 * handed to the user's code (`function_run.ts`), whose return value is the job's result.
 */
class Session {
  browser!: Browser;
  context!: BrowserContext;
  readonly params: SessionParams;
  readonly tabs = new Map<string, Tab>();
  readonly tabOf = new WeakMap<Page, Tab>();
  active: Tab | undefined;
  nextTab = 1;
  viewport: { width: number; height: number };
  startedAt = Date.now();
  counters: Counters = {
    navigations: 0,
    console_messages: 0,
    page_errors: 0,
    failed_requests: 0,
    events_suppressed: 0,
  };
  tokens = EVENT_BURST;
  tokensAt = Date.now();
  lastShotAt = 0;
  shots = 0;
  modifiers = new Set<string>();
  queue: Request[] = [];
  working = false;
  lastPage = "";
  pageTimer: ReturnType<typeof setTimeout> | undefined;
  pollTimer: ReturnType<typeof setInterval> | undefined;
  closing = false;
  /** Inputs are reported as `input` events (the session is being recorded). */
  trackInputs = false;
  lastMoveReport = 0;
  /** The last key went to a password field (its key-up is masked too). */
  typingSensitive = false;
  unreportedMove: { x: number; y: number } | null = null;
  /** A replay's record of what happened: main-frame navigations and errors, in order. */
  readonly replaying: boolean;
  navigations: Array<{ t: number; tab: string; url: string }> = [];
  errors: Array<{ type: "page_error" | "console_error"; message: string }> = [];
  replayReport: ReplayReport | undefined;
  /** A `function` job: its code gets the page once it is up. */
  readonly function: boolean;
  functionInbox: { handler?: (msg: FunctionIn) => void; early: FunctionIn[] } = { early: [] };
  functionResult: { value: unknown } | undefined;

  #setup = Promise.withResolvers<{ proxy: string; debugPort: number; spare?: string }>();
  #end = Promise.withResolvers<{ reason: string; stats: Record<string, unknown> }>();
  #replay = Promise.withResolvers<ReplaySpec>();

  constructor(readonly ctx: JobContext<SessionParams, SessionInit>) {
    this.params = ctx.params;
    this.replaying = "replay" in ctx.params;
    this.function = "code" in ctx.params;
    this.viewport = { ...ctx.params.viewport };
    this.#end.promise.catch(() => {});
    ctx.onMessage((data) => this.receive(data as SessionIn));
    ctx.signal.addEventListener("abort", () => {
      const reason = ctx.signal.reason instanceof Error ? ctx.signal.reason.message : "cancelled";
      this.#end.resolve({ reason, stats: {} });
    });
  }

  send(msg: SessionOut, transfer: Transferable[] = []) {
    this.ctx.send(msg, transfer);
  }

  /** Ends the session as failed (browser gone, page crashed). */
  fail(reason: string, retryable = false) {
    this.#end.reject(new JobError(reason, retryable));
  }

  receive(msg: SessionIn) {
    switch (msg.k) {
      case "setup":
        this.#setup.resolve(msg);
        break;
      case "stop":
        this.#end.resolve({ reason: msg.reason, stats: msg.stats });
        break;
      case "fail":
        this.fail(msg.reason);
        break;
      case "input":
        this.enqueue(msg.rid, msg.msg);
        break;
      case "screenshot":
        this.request(msg.rid, async () => {
          const png = await this.tab().page.screenshot({ type: "png" });
          return new Uint8Array(png);
        });
        break;
      case "inputs":
        this.trackInputs = msg.on;
        this.unreportedMove = null;
        break;
      case "replay":
        this.#replay.resolve(msg.spec);
        break;
      default: {
        // The function companion's word (allow_hosts cleared, artifacts saved).
        const fn = msg as unknown as FunctionIn;
        if (this.functionInbox.handler) this.functionInbox.handler(fn);
        else this.functionInbox.early.push(fn);
      }
    }
  }

  async run() {
    // A function takes the spare context when it has the function's size.
    let offered = this.function ? takeSpare() : undefined;
    if (offered && !sameSize(offered.viewport, this.viewport)) {
      discardSpare(offered);
      offered = undefined;
    }
    this.send({ k: "hello", spare: offered?.proxy ?? null, wantSpare: this.function });
    const setup = await Promise.race([this.#setup.promise, this.#end.promise.then(() => null)]);
    if (setup === null) {
      discardSpare(offered);
      return this.result((await this.#end.promise).reason, {});
    }
    this.browser = await getBrowser(setup.debugPort);
    sessions.add(this);
    try {
      const ready = offered?.proxy === setup.proxy ? await offered.ready : null;
      if (!ready) discardSpare(offered);
      this.context = ready?.context ??
        await this.browser.newContext(contextOptions(this.viewport, setup.proxy));
      this.context.on("page", (page) => this.addTab(page, true));
      const page = ready?.page ?? await this.context.newPage();
      this.addTab(page, true);
      if (!this.function) await this.navigate(page, this.params.url);
      this.send({ k: "active", page: await this.pageState() });
      this.pollTimer = setInterval(() => this.pageChanged(), PAGE_POLL_MS);
      if (this.replaying) this.replay();
      if (this.function) this.runFunction();
      const { reason, stats } = await this.#end.promise;
      return this.result(reason, stats);
    } finally {
      this.closing = true;
      clearTimeout(this.pageTimer);
      clearInterval(this.pollTimer);
      sessions.delete(this);
      await this.context?.close().catch(() => {});
      if (setup.spare && this.browser.isConnected()) {
        makeSpare(this.browser, setup.spare, this.params.viewport);
      }
      releaseBrowser();
    }
  }

  result(reason: string, hostStats: Record<string, unknown>) {
    if (this.functionResult) return this.functionResult.value;
    return {
      state: "stopped",
      reason,
      duration_s: Math.round((Date.now() - this.startedAt) / 100) / 10,
      url: this.active?.page.url() ?? this.params.url,
      ...this.counters,
      ...hostStats,
      ...(this.replayReport ? { replay: this.replayReport } : {}),
    };
  }

  /** Runs the replay's steps once they arrive, then ends the session with its report. */
  async replay() {
    const ended = new AbortController();
    this.#end.promise.finally(() => ended.abort());
    const spec = await Promise.race([this.#replay.promise, this.#end.promise.then(() => null)]);
    if (!spec) return;
    try {
      this.replayReport = await runReplay(
        {
          page: () => this.tab().page,
          apply: (msg) => this.input(msg),
          navigations: () => this.navigations,
          errors: () => this.errors,
          event: (event) => this.event(event),
          progress: (value, text) => this.ctx.progress(value, text),
        },
        spec,
        ended.signal,
      );
      this.#end.resolve({ reason: "replayed", stats: {} });
    } catch (err) {
      this.fail(`the replay failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Hands the page to the function's code; the session ends when it returns. */
  async runFunction() {
    const ended = new AbortController();
    this.#end.promise.finally(() => ended.abort(new JobError("the session ended", false)))
      .catch(() => {});
    try {
      const value = await runFunction(this.ctx as unknown as JobContext<FunctionParams>, {
        pool: functionPool!,
        signal: AbortSignal.any([this.ctx.signal, ended.signal]),
        onMessage: (handler) => {
          this.functionInbox.handler = handler;
          for (const msg of this.functionInbox.early.splice(0)) handler(msg);
        },
        browser: { page: this.tab().page, context: this.context },
      });
      this.functionResult = { value };
      this.#end.resolve({ reason: "returned", stats: {} });
    } catch (err) {
      const retryable = err instanceof JobError && err.retryable;
      this.fail(err instanceof Error ? err.message : String(err), retryable);
    }
  }

  tab(): Tab {
    if (!this.active) throw new Error("the session has no open tab");
    return this.active;
  }

  // ---- tabs ----

  addTab(page: Page, activate: boolean) {
    if (this.tabOf.has(page) || this.closing) return;
    const tab: Tab = { id: `t${this.nextTab++}`, page };
    this.tabs.set(tab.id, tab);
    this.tabOf.set(page, tab);
    page.on("close", () => this.removeTab(tab));
    page.on("framenavigated", (frame) => {
      if (frame !== page.mainFrame()) return;
      this.counters.navigations++;
      if (this.replaying) this.navigations.push({ t: Date.now(), tab: tab.id, url: frame.url() });
      this.event({ type: "navigation", tab: tab.id, url: frame.url() });
      this.pageChanged();
    });
    page.on("load", () => this.pageChanged());
    page.on("console", (m) => {
      this.counters.console_messages++;
      const where = m.location();
      if (this.replaying && m.type() === "error" && !isFaviconLoad(where.url)) {
        this.errors.push({ type: "console_error", message: m.text().slice(0, 4000) });
      }
      this.limitedEvent({
        type: "console",
        tab: tab.id,
        level: m.type(),
        message: m.text().slice(0, 4000),
        source: where.url ? `${where.url}:${where.lineNumber + 1}` : null,
      });
    });
    page.on("pageerror", (err) => this.pageError(tab, err));
    page.on("requestfailed", (r) => {
      this.counters.failed_requests++;
      this.limitedEvent({
        type: "failed_request",
        tab: tab.id,
        url: r.url().slice(0, 2000),
        method: r.method(),
        resource_type: r.resourceType(),
        error: r.failure()?.errorText ?? "failed",
      });
    });
    page.on("response", (r) => {
      if (r.status() < 400) return;
      this.counters.failed_requests++;
      this.limitedEvent({
        type: "failed_request",
        tab: tab.id,
        url: r.url().slice(0, 2000),
        method: r.request().method(),
        resource_type: r.request().resourceType(),
        status: r.status(),
      });
    });
    page.on("dialog", (dialog) => this.dialog(tab, dialog));
    page.on("crash", () => this.fail("the page crashed (its renderer process ended)"));
    const size = page.viewportSize();
    if (size && (size.width !== this.viewport.width || size.height !== this.viewport.height)) {
      page.setViewportSize(this.viewport).catch(() => {});
    }
    this.event({ type: "tab", action: "opened", tab: tab.id, url: page.url() });
    if (activate) this.activate(tab).catch(() => {});
    this.pageChanged();
  }

  removeTab(tab: Tab) {
    if (!this.tabs.delete(tab.id) || this.closing) return;
    this.event({ type: "tab", action: "closed", tab: tab.id });
    if (this.active === tab) {
      this.active = undefined;
      const next = [...this.tabs.values()].at(-1);
      if (next) this.activate(next).catch(() => {});
      else this.context.newPage().catch(() => {});
    }
    this.pageChanged();
  }

  async activate(tab: Tab) {
    if (this.active === tab) return;
    this.active = tab;
    await tab.page.bringToFront().catch(() => {});
    if (!tab.target) {
      const cdp = await this.context.newCDPSession(tab.page);
      const { targetInfo } = await cdp.send("Target.getTargetInfo");
      tab.target = targetInfo.targetId;
      tab.context = targetInfo.browserContextId;
      await cdp.detach().catch(() => {});
    }
    if (this.active !== tab) return;
    this.send({
      k: "cast",
      tab: tab.id,
      url: `ws://127.0.0.1:${debugPort}/devtools/page/${tab.target}`,
      context: tab.context ?? "",
    });
    this.pageChanged();
  }

  // ---- page state and events ----

  pageChanged() {
    if (this.closing) return;
    clearTimeout(this.pageTimer);
    this.pageTimer = setTimeout(async () => {
      const page = await this.pageState().catch(() => null);
      if (!page || this.closing) return;
      const text = JSON.stringify(page);
      if (text === this.lastPage) return;
      this.lastPage = text;
      this.send({ k: "page", page });
    }, 50);
  }

  async pageState(): Promise<PageState> {
    const tabs: TabInfo[] = await Promise.all(
      [...this.tabs.values()].map(async (t) => ({
        id: t.id,
        url: t.page.url(),
        title: await Promise.race([
          t.page.title().catch(() => ""),
          new Promise<string>((r) => setTimeout(() => r(""), 1000)),
        ]),
        active: t === this.active,
      })),
    );
    const active = tabs.find((t) => t.active);
    return {
      url: active?.url ?? "",
      title: active?.title ?? "",
      tabs,
      viewport: { ...this.viewport },
    };
  }

  event(event: Record<string, unknown>, image?: Uint8Array<ArrayBuffer>) {
    if (this.closing) return;
    this.send(
      { k: "event", event: { ts: Date.now(), ...event }, image },
      image ? [image.buffer] : [],
    );
  }

  /** Page-driven events are rate limited so a page logging in a loop cannot flood history. */
  limitedEvent(event: Record<string, unknown>) {
    const now = Date.now();
    this.tokens = Math.min(EVENT_BURST, this.tokens + (now - this.tokensAt) * EVENTS_PER_S / 1000);
    this.tokensAt = now;
    if (this.tokens < 1) {
      this.counters.events_suppressed++;
      return;
    }
    this.tokens--;
    this.event(event);
  }

  async pageError(tab: Tab, err: Error) {
    this.counters.page_errors++;
    if (this.replaying) {
      this.errors.push({ type: "page_error", message: String(err.message ?? err).slice(0, 4000) });
    }
    const event = {
      type: "page_error",
      tab: tab.id,
      message: String(err.message ?? err).slice(0, 4000),
      stack: String(err.stack ?? "").slice(0, 8000),
      url: tab.page.url(),
      screenshot: null as number | null,
    };
    const now = Date.now();
    if (now - this.lastShotAt < ERROR_SHOT_GAP_MS || this.shots >= ERROR_SHOTS_MAX) {
      this.event(event);
      return;
    }
    this.lastShotAt = now;
    const n = ++this.shots;
    try {
      const jpeg = await tab.page.screenshot({ type: "jpeg", quality: 70, timeout: 5_000 });
      this.event({ ...event, screenshot: n }, new Uint8Array(jpeg));
    } catch {
      this.event(event);
    }
  }

  dialog(tab: Tab, dialog: Dialog) {
    this.event({
      type: "dialog",
      tab: tab.id,
      kind: dialog.type(),
      message: dialog.message().slice(0, 2000),
      answer: dialog.type() === "alert" ? "accepted" : "dismissed",
    });
    (dialog.type() === "alert" ? dialog.accept() : dialog.dismiss()).catch(() => {});
  }

  // ---- input ----

  /** Replies to a request once `run` settles, in order with the input queue. */
  request(rid: number, run: () => Promise<unknown>) {
    this.queue.push({ rid, run });
    this.drain();
  }

  enqueue(rid: number, msg: InputMessage | { type: "tabs" }) {
    if (msg.type === "mouse" && msg.action === "move") {
      // A move still waiting is replaced by the newer one: the pointer goes where it is now.
      const last = this.queue.at(-1);
      if (last?.move) {
        this.send({ k: "reply", rid: last.rid, ok: true });
        last.rid = rid;
        last.move.x = msg.x;
        last.move.y = msg.y;
        return;
      }
      const move = { x: msg.x, y: msg.y };
      this.queue.push({
        rid,
        move,
        run: () => {
          if (this.trackInputs) this.reportMove(move);
          return this.tab().page.mouse.move(move.x, move.y);
        },
      });
    } else {
      this.queue.push({ rid, run: () => this.input(msg) });
    }
    this.drain();
  }

  async drain() {
    if (this.working) return;
    this.working = true;
    while (this.queue.length > 0) {
      const next = this.queue.shift()!;
      try {
        const data = await next.run();
        const transfer = data instanceof Uint8Array ? [data.buffer as ArrayBuffer] : [];
        this.send({ k: "reply", rid: next.rid, ok: true, data }, transfer);
      } catch (err) {
        const message = err instanceof Error ? err.message.split("\n")[0]! : String(err);
        this.send({ k: "reply", rid: next.rid, ok: false, error: message });
      }
    }
    this.working = false;
  }

  async input(msg: InputMessage | { type: "tabs" }): Promise<unknown> {
    if (this.trackInputs && msg.type !== "tabs") await this.reportInput(msg);
    switch (msg.type) {
      case "mouse": {
        const mouse = this.tab().page.mouse;
        const clickCount = msg.click_count ?? 1;
        if (msg.action === "click") {
          return await mouse.click(msg.x, msg.y, { button: msg.button, clickCount });
        }
        if (msg.action === "dblclick") {
          return await mouse.dblclick(msg.x, msg.y, { button: msg.button });
        }
        await mouse.move(msg.x, msg.y);
        if (msg.action === "down") return await mouse.down({ button: msg.button, clickCount });
        if (msg.action === "up") return await mouse.up({ button: msg.button, clickCount });
        return;
      }
      case "wheel": {
        const mouse = this.tab().page.mouse;
        await mouse.move(msg.x, msg.y);
        return await mouse.wheel(msg.dx, msg.dy);
      }
      case "key":
        return await this.key(msg.action, msg.key);
      case "text":
        return await this.tab().page.keyboard.insertText(msg.text);
      case "navigate":
        return await this.navigate(this.tab().page, msg.url, true);
      case "back":
        await this.tab().page.goBack({ timeout: NAVIGATION_TIMEOUT_MS, waitUntil: "commit" });
        return { url: this.tab().page.url() };
      case "forward":
        await this.tab().page.goForward({ timeout: NAVIGATION_TIMEOUT_MS, waitUntil: "commit" });
        return { url: this.tab().page.url() };
      case "reload":
        await this.tab().page.reload({ timeout: NAVIGATION_TIMEOUT_MS, waitUntil: "commit" });
        return { url: this.tab().page.url() };
      case "viewport": {
        this.viewport = { width: msg.width, height: msg.height };
        for (const t of this.tabs.values()) await t.page.setViewportSize(this.viewport);
        this.pageChanged();
        return { viewport: this.viewport };
      }
      case "tab":
        return await this.tabAction(msg);
      case "tabs":
        return { tabs: (await this.pageState()).tabs };
    }
  }

  /** Reports a move now, or keeps it until the next report is due or another input comes. */
  reportMove(move: { x: number; y: number }) {
    const now = Date.now();
    if (now - this.lastMoveReport < MOVE_REPORT_MS) {
      this.unreportedMove = { ...move };
      return;
    }
    this.lastMoveReport = now;
    this.unreportedMove = null;
    this.event({
      type: "input",
      tab: this.active?.id,
      input: { type: "mouse", action: "move", ...move },
    });
  }

  /**
   * Reports an input with the element it is aimed at, resolved now, before it is applied: under
   * the pointer for mouse and wheel input, the focused element for typing. Text typed into a
   * password field is masked.
   */
  async reportInput(msg: InputMessage) {
    const { ref: _ref, ...input } = msg as InputMessage & { ref?: unknown };
    if (this.unreportedMove) {
      const move = this.unreportedMove;
      this.unreportedMove = null;
      this.event({
        type: "input",
        tab: this.active?.id,
        input: { type: "mouse", action: "move", ...move },
      });
    }
    const page = this.active?.page;
    let target = null;
    if (page && (msg.type === "mouse" || msg.type === "wheel")) {
      target = await elementTarget(page, { x: msg.x, y: msg.y });
    } else if (page && (msg.type === "text" || (msg.type === "key" && msg.action !== "up"))) {
      target = await elementTarget(page, null);
      this.typingSensitive = target?.sensitive === true;
    }
    const event: Record<string, unknown> = { type: "input", tab: this.active?.id, input, target };
    const sensitive = target?.sensitive || (msg.type === "key" && msg.action === "up" &&
      this.typingSensitive);
    if (sensitive) {
      if (msg.type === "text") {
        event.input = { ...input, text: "•".repeat(msg.text.length) };
        event.masked = true;
      } else if (msg.type === "key" && msg.key.length === 1) {
        event.input = { ...input, key: "•" };
        event.masked = true;
      }
    }
    this.event(event);
  }

  async key(action: "down" | "up" | "press", key: string) {
    const keyboard = this.tab().page.keyboard;
    if (action === "down") {
      await keyboard.down(key);
      if (["Control", "Meta", "Shift", "Alt"].includes(key)) this.modifiers.add(key);
    } else if (action === "up") {
      await keyboard.up(key);
      this.modifiers.delete(key);
    } else {
      await keyboard.press(key);
    }
    // A copy or cut shortcut: hand the selection back so the viewer's clipboard gets it.
    const parts = key.split("+");
    const last = parts.at(-1)!.toLowerCase();
    const held = parts.length > 1 ? parts.slice(0, -1) : [...this.modifiers];
    if (
      action !== "up" && (last === "c" || last === "x") &&
      held.some((m) => m === "Control" || m === "Meta" || m === "ControlOrMeta")
    ) {
      return { clipboard: await this.selection() };
    }
  }

  selection(): Promise<string> {
    return this.tab().page.evaluate<string>(SELECTION_JS);
  }

  async tabAction(msg: Extract<InputMessage, { type: "tab" }>) {
    if (msg.action === "new") {
      const page = await this.context.newPage();
      if (msg.url) await this.navigate(page, msg.url, true);
      return { tab: this.tabOf.get(page)?.id };
    }
    const tab = this.tabs.get(msg.tab!);
    if (!tab) throw new Error(`tab: no tab "${msg.tab}" in this session`);
    if (msg.action === "switch") await this.activate(tab);
    else await tab.page.close();
    return { tab: tab.id };
  }

  /** Goes to a URL; a failed load is an event, and an error only when a viewer asked for it. */
  async navigate(page: Page, url: string, report = false) {
    try {
      const response = await page.goto(url, {
        timeout: NAVIGATION_TIMEOUT_MS,
        waitUntil: "domcontentloaded",
      });
      return { url: page.url(), status: response?.status() ?? null };
    } catch (err) {
      // Chromium commits its error page right after: let it, so the next load is not cut short.
      await page.waitForURL(/^chrome-error:/, { timeout: 2_000 }).catch(() => {});
      const message = err instanceof Error ? err.message.split("\n")[0]! : String(err);
      this.event({
        type: "navigation_failed",
        tab: this.tabOf.get(page)?.id,
        url,
        error: message,
      });
      if (report) throw new Error(`navigation to ${url} failed: ${message}`);
    }
  }
}

serveJobs<SessionParams, unknown, SessionInit>(
  // A session is never retried: a new attempt would not be the same session.
  (ctx) =>
    new Session(ctx).run().catch((err) => {
      throw err instanceof JobError ? err : new JobError(String(err?.message ?? err), false);
    }),
  {
    async setup(data) {
      init = data;
      await Deno.mkdir(data.tmpDir, { recursive: true });
      pw = await loadPlaywright({}, { tmpDir: data.tmpDir });
      if (data.functions) functionPool = createProcessPool(data.functions);
    },
    async teardown() {
      await functionPool?.close();
      // The process is stopping: the browser kept open for the next session closes now.
      clearTimeout(idleTimer);
      const open = browser;
      browser = undefined;
      await open?.then((b) => b.close()).catch(() => {});
    },
  },
);
