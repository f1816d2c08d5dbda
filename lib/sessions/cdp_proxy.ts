/**
 * A filtering relay between one CDP client and the browser running its session: the client sees
 * only its session's browser context, the contexts it creates and their targets.
 */
import type { UrlPolicy } from "../security/url_policy.ts";

export interface CdpTarget {
  /** The browser's DevTools WebSocket: `ws://127.0.0.1:<port>/devtools/browser/<id>`. */
  browserUrl: string;
  /** The session's browser context: the client's default context. */
  context: string;
  /** The policy proxy every context the client creates must use. */
  proxyServer: string;
  /** Where the client's downloads land (an existing directory). */
  downloads: string;
}

export interface CdpProxyOptions {
  /** The client's WebSocket (open or opening). */
  client: WebSocket;
  /** The session's browser; the client's commands wait for it. */
  target: Promise<CdpTarget>;
  policy: UrlPolicy;
  /** The client sent a command. */
  onCommand(): void;
  /** The client sent `Browser.close`: it wants its session ended. */
  onBrowserClose(): void;
  /** The relay ended (either side closed, or `close()`). */
  onClose(reason: string): void;
}

export interface CdpProxy {
  /** Closes the client's socket with this code and reason, and the browser connection. */
  close(code: number, reason: string): void;
}

/** Ids from here up are the relay's own commands. */
const OWN_IDS = 2 ** 30;
const SERVER_ERROR = -32000;
const INVALID_REQUEST = -32600;
/** Commands a client may have waiting for the browser connection before it is closed. */
const MAX_WAITING = 10_000;

/** The Browser and Target methods a client may use; the rest of both domains is refused. */
const BROWSER_METHODS = new Set([
  "Browser.getVersion",
  "Browser.close",
  "Browser.setDownloadBehavior",
  "Browser.cancelDownload",
  "Browser.grantPermissions",
  "Browser.resetPermissions",
  "Browser.setPermission",
  "Browser.getWindowForTarget",
  "Browser.getWindowBounds",
  "Browser.setWindowBounds",
  "Browser.setContentsSize",
  "Target.setDiscoverTargets",
  "Target.setAutoAttach",
  "Target.attachToTarget",
  "Target.detachFromTarget",
  "Target.getTargets",
  "Target.getTargetInfo",
  "Target.createTarget",
  "Target.closeTarget",
  "Target.activateTarget",
  "Target.createBrowserContext",
  "Target.disposeBrowserContext",
  "Target.getBrowserContexts",
]);
/** On the browser itself (no session) only Browser, Target and these are served. */
const BROWSER_LEVEL = new Set(["Storage.getCookies", "Storage.setCookies", "Storage.clearCookies"]);
/** Refused on every session: they read the host's files or see the whole browser or machine. */
const REFUSED_METHODS = new Set(["DOM.setFileInputFiles", "Network.loadNetworkResource"]);
const REFUSED_DOMAINS = new Set(["Tracing", "SystemInfo", "Extensions", "Cast", "PWA"]);
/** Methods acting on the browser's default context when given none: the session's here. */
const DEFAULT_CONTEXT = new Set([
  "Target.createTarget",
  "Browser.setDownloadBehavior",
  "Browser.grantPermissions",
  "Browser.resetPermissions",
  "Browser.setPermission",
  "Storage.getCookies",
  "Storage.setCookies",
  "Storage.clearCookies",
]);
/** Targets never shown: the browser itself and its own UI (chrome:// pages). */
const HIDDEN_TYPES = new Set(["browser", "browser_ui"]);
/** What a client may open besides the URLs the policy accepts: nothing that reaches anywhere. */
const SELF_CONTAINED = /^(about:blank$|data:)/i;

type Params = Record<string, unknown>;

interface Command {
  id: number;
  method: string;
  params?: Params;
  sessionId?: string;
}

interface Message {
  id?: number;
  method?: string;
  params?: Params;
  result?: Params;
  error?: unknown;
  sessionId?: string;
}

interface TargetInfo {
  targetId: string;
  type: string;
  browserContextId?: string;
}

/** What the relay does with a command: refuse it, answer it itself, or send it on. */
type Verdict =
  | { refuse: string; code?: number }
  | { reply: Params; after?: () => void }
  | { forward: Params | null; hook?: (result: Params) => Params };

const refuse = (message: string): Verdict => ({ refuse: message });

/**
 * Starts relaying `client` to its session's browser.
 *
 * The client speaks browser-level CDP and sees its session's context as the browser's default
 * context; the contexts it creates are forced onto the policy proxy. Foreign targets are hidden,
 * unattachable and, when auto-attach reaches them, released at once; commands that reach beyond the
 * session (the host's files, the whole browser, URLs the policy refuses) answer a CDP error.
 * Downloads are redirected to the session's own directory. Client ids pass through unchanged (below
 * 2^30, `OWN_IDS`); the relay's own commands use ids above.
 */
export function startCdpProxy(options: CdpProxyOptions): CdpProxy {
  return new CdpRelay(options);
}

class CdpRelay implements CdpProxy {
  /** The session's context and those the client created. */
  private readonly contexts = new Set<string>();
  private readonly created = new Set<string>();
  /** What is known of each target: whether the client may see it. */
  private readonly targets = new Map<string, boolean>();
  /** The client's flat sessions, by id. */
  private readonly sessions = new Set<string>();
  /** Frames of the client's pages (downloads name the frame they started in). */
  private readonly frames = new Set<string>();
  private readonly downloadIds = new Set<string>();
  private readonly windows = new Set<number>();
  /** Rewrites of the answers to some commands, by `<sessionId>:<id>`. */
  private readonly hooks = new Map<string, (result: Params) => Params>();
  private readonly own = new Map<number, (msg: Message) => void>();
  private nextOwnId = OWN_IDS;
  private target!: CdpTarget;
  private upstream: WebSocket | undefined;
  private chain: Promise<void>;
  private waiting = 0;
  private closed = false;

  constructor(private readonly options: CdpProxyOptions) {
    const { client } = options;
    this.chain = this.connect();
    this.chain.catch(() => {});
    client.onmessage = (e) => this.fromClient(e.data);
    client.onclose = () => this.close(1000, "the client disconnected");
    client.onerror = () => {};
  }

  private async connect() {
    try {
      this.target = await this.options.target;
      this.contexts.add(this.target.context);
      const upstream = this.upstream = new WebSocket(this.target.browserUrl);
      await new Promise<void>((resolve, reject) => {
        upstream.onopen = () => resolve();
        upstream.onerror = () => reject(new Error("cannot reach the session's browser"));
      });
      upstream.onmessage = (e) => this.fromBrowser(e.data);
      upstream.onerror = () => {};
      upstream.onclose = () => this.close(1011, "the browser connection closed");
    } catch (err) {
      this.close(1011, err instanceof Error ? err.message : String(err));
      throw err;
    }
  }

  close(code: number, reason: string) {
    if (this.closed) return;
    this.closed = true;
    try {
      this.upstream?.close();
    } catch { /* closed */ }
    const client = this.options.client;
    if (client.readyState === WebSocket.OPEN || client.readyState === WebSocket.CONNECTING) {
      try {
        client.close(code, truncate(reason, 120));
      } catch { /* closed */ }
    }
    for (const resolve of this.own.values()) resolve({ error: { message: reason } });
    this.own.clear();
    this.options.onClose(reason);
  }

  // ---- client → browser ----

  private fromClient(data: unknown) {
    if (this.closed) return;
    if (++this.waiting > MAX_WAITING) {
      return this.close(1008, `more than ${MAX_WAITING} commands waiting for the browser`);
    }
    this.options.onCommand();
    const text = typeof data === "string" ? data : new TextDecoder().decode(data as ArrayBuffer);
    this.chain = this.chain.then(() => this.command(text)).finally(() => this.waiting--);
    this.chain.catch(() => {});
  }

  private async command(text: string) {
    if (this.closed) return;
    let msg: Command;
    try {
      msg = JSON.parse(text);
    } catch {
      return this.close(1007, "a CDP message must be JSON");
    }
    if (typeof msg !== "object" || msg === null || !Number.isInteger(msg.id)) {
      return this.close(1007, "a CDP command needs an integer id");
    }
    if (typeof msg.method !== "string") {
      return this.answer(msg, { refuse: "a command needs a method", code: INVALID_REQUEST });
    }
    if (msg.id < 0 || msg.id >= OWN_IDS) {
      return this.answer(msg, { refuse: `id must be from 0 to ${OWN_IDS - 1}` });
    }
    if (msg.sessionId !== undefined && !this.sessions.has(msg.sessionId)) {
      return this.answer(msg, { refuse: `Session with given id not found.` });
    }
    const params = msg.params ?? {};
    if (typeof params !== "object" || params === null) {
      return this.answer(msg, { refuse: "params must be an object", code: INVALID_REQUEST });
    }
    const verdict = await this.inspect(msg.method, params, msg.sessionId);
    if (this.closed) return;
    if (!("forward" in verdict)) return this.answer(msg, verdict);
    if (verdict.hook) this.hooks.set(`${msg.sessionId ?? ""}:${msg.id}`, verdict.hook);
    this.upstream!.send(
      verdict.forward ? JSON.stringify({ ...msg, params: verdict.forward }) : text,
    );
  }

  /** Answers a command the relay refused or served itself. */
  private answer(msg: Command, verdict: Exclude<Verdict, { forward: unknown }>) {
    const scope = msg.sessionId !== undefined ? { sessionId: msg.sessionId } : {};
    if ("refuse" in verdict) {
      const message = `streamplay: ${verdict.refuse}`;
      const error = { code: verdict.code ?? SERVER_ERROR, message };
      this.toClient(JSON.stringify({ id: msg.id, error, ...scope }));
    } else {
      this.toClient(JSON.stringify({ id: msg.id, result: verdict.reply, ...scope }));
      verdict.after?.();
    }
  }

  /** The rules: what a command may do, and how it is changed to stay within the session. */
  private async inspect(method: string, params: Params, sessionId?: string): Promise<Verdict> {
    const domain = method.slice(0, method.indexOf("."));
    if (REFUSED_METHODS.has(method) || REFUSED_DOMAINS.has(domain)) {
      return refuse(`${method} is not available: it reaches beyond the session`);
    }
    if ((domain === "Browser" || domain === "Target") && !BROWSER_METHODS.has(method)) {
      return refuse(`${method} is not available: it reaches beyond the session`);
    }
    if (
      sessionId === undefined && domain !== "Browser" && domain !== "Target" &&
      !BROWSER_LEVEL.has(method)
    ) {
      return refuse(`${method} needs a target's session: the browser itself is shared`);
    }
    let out: Params | null = null;
    const context = params.browserContextId;
    if (context !== undefined && (typeof context !== "string" || !this.contexts.has(context))) {
      return refuse("Failed to find browser context with given id");
    }
    if (context === undefined && DEFAULT_CONTEXT.has(method)) {
      out = { ...params, browserContextId: this.target.context };
    }
    // In other domains these names mean something else (a screencast frame's sessionId).
    const ids = domain === "Target" || domain === "Browser";
    if (ids && params.targetId !== undefined && !(await this.mayReach(params.targetId))) {
      return refuse("No target with given id found");
    }
    if (ids && params.sessionId !== undefined && !this.sessions.has(params.sessionId as string)) {
      return refuse("No session with given id");
    }
    if (ids && params.windowId !== undefined && !this.windows.has(params.windowId as number)) {
      return refuse("Browser window not found");
    }
    if ((method === "Target.createTarget" || method === "Page.navigate") && params.url) {
      const refusal = await this.urlRefusal(String(params.url));
      if (refusal) return refuse(refusal);
    }
    switch (method) {
      case "Browser.close":
        return { reply: {}, after: () => this.options.onBrowserClose() };
      case "Target.getBrowserContexts":
        return {
          reply: {
            browserContextIds: [...this.created],
            defaultBrowserContextId: this.target.context,
          },
        };
      case "Target.createBrowserContext":
        if (params.proxyServer !== undefined || params.proxyBypassList !== undefined) {
          return refuse(
            "proxyServer and proxyBypassList are refused: contexts use the policy proxy",
          );
        }
        if (params.originsWithUniversalNetworkAccess !== undefined) {
          return refuse("originsWithUniversalNetworkAccess is refused");
        }
        return {
          // Disposed with this connection: a context the client made does not outlive it.
          forward: {
            ...params,
            proxyServer: this.target.proxyServer,
            proxyBypassList: "<-loopback>",
            disposeOnDetach: true,
          },
          hook: (result) => {
            const id = String(result.browserContextId);
            this.created.add(id);
            this.contexts.add(id);
            return result;
          },
        };
      case "Target.disposeBrowserContext":
        if (context === this.target.context) {
          return refuse("the session's own browser context cannot be disposed");
        }
        return {
          forward: null,
          hook: (result) => {
            this.created.delete(context as string);
            this.contexts.delete(context as string);
            return result;
          },
        };
      case "Target.attachToTarget":
        if (params.flatten !== true) return refuse("only flat sessions (flatten: true) are served");
        return {
          forward: out,
          hook: (result) => {
            this.sessions.add(String(result.sessionId));
            this.frames.add(String(params.targetId));
            return result;
          },
        };
      case "Target.setAutoAttach":
        if (params.autoAttach && params.flatten !== true) {
          return refuse("only flat sessions (flatten: true) are served");
        }
        return { forward: out };
      case "Target.getTargets":
        return {
          forward: out,
          hook: (result) => ({
            ...result,
            targetInfos: (result.targetInfos as TargetInfo[] ?? []).filter((t) => this.learn(t)),
          }),
        };
      case "Target.createTarget":
        return {
          forward: out,
          hook: (result) => {
            this.targets.set(String(result.targetId), true);
            return result;
          },
        };
      case "Browser.getWindowForTarget":
        return {
          forward: out,
          hook: (result) => {
            this.windows.add(result.windowId as number);
            return result;
          },
        };
      case "Browser.setDownloadBehavior":
      case "Page.setDownloadBehavior": {
        // Downloads land in the session's directory, whatever path the client named.
        const behavior = params.behavior === "default" ? "deny" : params.behavior;
        const { downloadPath: _path, ...rest } = out ?? params;
        return {
          forward: behavior === "deny"
            ? { ...rest, behavior }
            : { ...rest, behavior, downloadPath: this.target.downloads },
        };
      }
    }
    return { forward: out };
  }

  /** Why the client may not open `url`, or null when it may. */
  private async urlRefusal(url: string): Promise<string | null> {
    if (SELF_CONTAINED.test(url)) return null;
    const verdict = await this.options.policy.check(url);
    return verdict.ok ? null : `${url} is refused: ${verdict.reason}`;
  }

  /** Whether the target is one of the client's: known, or asked of the browser. */
  private async mayReach(targetId: unknown): Promise<boolean> {
    if (typeof targetId !== "string") return false;
    const known = this.targets.get(targetId);
    if (known !== undefined) return known;
    const reply = await this.ask("Target.getTargetInfo", { targetId });
    const info = reply.result?.targetInfo as TargetInfo | undefined;
    return info ? this.learn(info) : false;
  }

  /** Records whether the client may see a target; `parentOwned`: it was attached under one. */
  private learn(info: TargetInfo, parentOwned = false): boolean {
    const visible = !HIDDEN_TYPES.has(info.type) &&
      (info.browserContextId ? this.contexts.has(info.browserContextId) : parentOwned);
    this.targets.set(info.targetId, visible);
    return visible;
  }

  // ---- the relay's own commands ----

  private ask(method: string, params: Params, sessionId?: string): Promise<Message> {
    if (this.closed || !this.upstream) return Promise.resolve({ error: { message: "closed" } });
    const id = this.nextOwnId++;
    const reply = new Promise<Message>((resolve) => this.own.set(id, resolve));
    this.upstream.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    return reply;
  }

  /** Lets a target the client must not see run on, and detaches from it. */
  private release(session: string, waiting: boolean, parent?: string) {
    if (waiting) this.ask("Runtime.runIfWaitingForDebugger", {}, session);
    this.ask("Target.detachFromTarget", { sessionId: session }, parent);
  }

  // ---- browser → client ----

  private fromBrowser(data: unknown) {
    if (this.closed || typeof data !== "string") return;
    let msg: Message;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (typeof msg.id === "number") {
      const own = msg.id >= OWN_IDS ? this.own.get(msg.id) : undefined;
      if (own) {
        this.own.delete(msg.id);
        return own(msg);
      }
      if (msg.sessionId !== undefined && !this.sessions.has(msg.sessionId)) return;
      const key = `${msg.sessionId ?? ""}:${msg.id}`;
      const hook = this.hooks.get(key);
      if (!hook) return this.toClient(data);
      this.hooks.delete(key);
      if (msg.result) msg.result = hook(msg.result);
      return this.toClient(JSON.stringify(msg));
    }
    if (this.shows(msg)) this.toClient(data);
  }

  /** Whether the client gets this event (and what the relay learns from it). */
  private shows(msg: Message): boolean {
    const scope = msg.sessionId;
    if (scope !== undefined && !this.sessions.has(scope)) return false;
    const params = msg.params ?? {};
    switch (msg.method) {
      case "Target.targetCreated":
      case "Target.targetInfoChanged":
        return this.learn(params.targetInfo as TargetInfo);
      case "Target.targetDestroyed":
      case "Target.targetCrashed": {
        const id = String(params.targetId);
        const visible = this.targets.get(id) === true;
        if (msg.method === "Target.targetDestroyed") this.targets.delete(id);
        return visible;
      }
      case "Target.attachedToTarget": {
        const info = params.targetInfo as TargetInfo;
        const session = String(params.sessionId);
        if (!this.learn(info, scope !== undefined)) {
          this.release(session, params.waitingForDebugger === true, scope);
          return false;
        }
        this.sessions.add(session);
        this.frames.add(info.targetId);
        return true;
      }
      case "Target.detachedFromTarget":
        return this.sessions.delete(String(params.sessionId));
      case "Target.receivedMessageFromTarget":
        return false;
      case "Browser.downloadWillBegin":
        if (!this.frames.has(String(params.frameId))) return false;
        this.downloadIds.add(String(params.guid));
        return true;
      case "Browser.downloadProgress": {
        const guid = String(params.guid);
        if (!this.downloadIds.has(guid)) return false;
        if (params.state !== "inProgress") this.downloadIds.delete(guid);
        return true;
      }
      case "Page.frameAttached":
        this.frames.add(String(params.frameId));
        return true;
      case "Page.frameNavigated":
        this.frames.add(String((params.frame as { id?: string } | undefined)?.id));
        return true;
    }
    // Other events of the browser itself are not the client's.
    return scope !== undefined;
  }

  private toClient(text: string) {
    if (this.options.client.readyState === WebSocket.OPEN) this.options.client.send(text);
  }
}

function truncate(text: string, bytes: number): string {
  const encoded = new TextEncoder().encode(text);
  if (encoded.length <= bytes) return text;
  return new TextDecoder().decode(encoded.slice(0, bytes)).replace(/\uFFFD$/, "");
}
