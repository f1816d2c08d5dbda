/**
 * A session's policy proxy, and proxies made before their session (`SpareProxies`) for the browser
 * context a function Worker keeps ready for its next function.
 */
import type { UrlPolicy } from "../security/url_policy.ts";
import { type SocksProxy, startSocksProxy } from "../security/socks_proxy.ts";

/** The session a proxy serves: its browser's DevTools port and where refusals are reported. */
export interface ProxyOwner {
  /** The DevTools port of the session's browser (0 while unknown). */
  debugPort(): number;
  refused(target: string, reason: string): void;
}

export interface SessionProxy extends SocksProxy {
  /** From now on the proxy serves this session. */
  own(owner: ProxyOwner): void;
}

/** Loopback and unspecified addresses (connecting to 0.0.0.0 reaches local listeners). */
function isLocalAddress(address: string): boolean {
  return /^127\./.test(address) || address === "::1" || address === "0.0.0.0" || address === "::";
}

/**
 * The URL policy, plus: the session's browser's DevTools port is not for its pages. A proxy no
 * session owns yet refuses everything (its context shows a blank page and loads nothing).
 */
export function sessionProxy(policy: UrlPolicy): SessionProxy {
  let owner: ProxyOwner | null = null;
  const proxy = startSocksProxy({
    policy,
    refuse: (addresses, port) =>
      owner === null
        ? "the proxy serves no session yet"
        : port === owner.debugPort() && addresses.some(isLocalAddress)
        ? "the browser's own DevTools port is not for pages"
        : null,
    onRefused: (target, reason) => owner?.refused(target, reason),
  });
  return { ...proxy, own: (next) => void (owner = next) };
}

/** How long a spare proxy waits for its session before it is closed. */
export const SPARE_PROXY_TTL_MS = 5 * 60_000;

/**
 * Proxies handed out ahead of a session, each to the one browser context made with it; the
 * session that takes over that context claims its proxy. One not claimed in `ttlMs` is closed,
 * so a context kept longer than that is refused (its Worker then makes a new one).
 */
export class SpareProxies {
  readonly #spare = new Map<
    string,
    { proxy: SessionProxy; timer: ReturnType<typeof setTimeout> }
  >();

  constructor(readonly policy: UrlPolicy, readonly ttlMs = SPARE_PROXY_TTL_MS) {}

  /** A new unowned proxy; its URL. */
  make(): string {
    const proxy = sessionProxy(this.policy);
    const timer = setTimeout(() => {
      this.#spare.delete(proxy.url);
      proxy.close();
    }, this.ttlMs);
    this.#spare.set(proxy.url, { proxy, timer });
    return proxy.url;
  }

  /** The spare proxy at `url`, now the caller's to own and close; null if there is none. */
  claim(url: string): SessionProxy | null {
    const spare = this.#spare.get(url);
    if (!spare) return null;
    this.#spare.delete(url);
    clearTimeout(spare.timer);
    return spare.proxy;
  }

  get size(): number {
    return this.#spare.size;
  }

  async close(): Promise<void> {
    const all = [...this.#spare.values()];
    this.#spare.clear();
    for (const s of all) clearTimeout(s.timer);
    await Promise.all(all.map((s) => s.proxy.close()));
  }
}
