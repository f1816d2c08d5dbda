/**
 * What a job may reach, decided by the process that connects, right before it connects: every host
 * checked by the URL policy, and the checked addresses handed on so the job connects to them and
 * never to a second lookup of the name (which a DNS rebinding attacker would answer).
 */
import type { PolicyVerdict, UrlPolicy } from "./url_policy.ts";
import { type SocksProxy, startSocksProxy } from "./socks_proxy.ts";

export interface Egress {
  /** The checked addresses of each host, by `URL.hostname` (IPv6 without brackets). */
  addresses: ReadonlyMap<string, readonly string[]>;
  /**
   * When asked for, a proxy that lets through only these hosts and connects them to these
   * addresses (for a browser, which would otherwise look names up itself): `url` for SOCKS5
   * (`socks5://127.0.0.1:<port>`), `httpUrl` for HTTP CONNECT, the same port.
   */
  proxy: Pick<SocksProxy, "url" | "httpUrl"> | null;
  close(): Promise<void>;
}

/** No hosts, no proxy: for job types that reach nothing or apply the policy themselves. */
export const NO_EGRESS: Egress = { addresses: new Map(), proxy: null, close: async () => {} };

/** A URL's host as a key of `Egress.addresses`. */
export function hostOf(url: string | URL): string {
  return new URL(url).hostname.replace(/^\[|\]$/g, "");
}

/**
 * Checks every URL and keeps the addresses checked for each host; with `proxy`, also starts a
 * proxy on those addresses (closed by `close()`). Answers the first refusal instead, naming the
 * URL's field.
 */
export async function openEgress(
  policy: UrlPolicy,
  urls: Array<{ field: string; url: string }>,
  options: { proxy: boolean },
): Promise<{ ok: true; egress: Egress } | { ok: false; reason: string }> {
  const addresses = new Map<string, readonly string[]>();
  for (const { field, url } of urls) {
    const verdict = await policy.check(url);
    if (!verdict.ok) return { ok: false, reason: `${field}: ${url} is refused: ${verdict.reason}` };
    addresses.set(hostOf(verdict.url), verdict.addresses);
  }
  if (!options.proxy) return { ok: true, egress: { ...NO_EGRESS, addresses } };
  const proxy = startSocksProxy({ policy: pinnedPolicy(addresses) });
  return { ok: true, egress: { addresses, proxy, close: () => proxy.close() } };
}

/**
 * A policy that admits only the given hosts, each at the addresses it was checked at, without
 * a lookup: what a proxy applies once a job's hosts were checked.
 */
export function pinnedPolicy(addresses: ReadonlyMap<string, readonly string[]>): UrlPolicy {
  const refuse = (reason: string): PolicyVerdict => ({ ok: false, reason });
  return {
    check(raw) {
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        return Promise.resolve(refuse("is not a valid absolute URL"));
      }
      const host = hostOf(url);
      const pinned = addresses.get(host);
      return Promise.resolve(
        pinned
          ? { ok: true, url, addresses: [...pinned] }
          : refuse(`host ${host} is not one of the hosts this job was approved for`),
      );
    },
  };
}

/** The port a URL connects to (its scheme's default when it names none). */
export function portOf(url: URL): number {
  if (url.port) return Number(url.port);
  const defaults: Record<string, number> = {
    "http:": 80,
    "https:": 443,
    "rtmp:": 1935,
    "rtmps:": 443,
  };
  return defaults[url.protocol] ?? 80;
}

/** `address:port` as Deno's net permission and URLs spell it (IPv6 in brackets). */
export function hostPort(address: string, port: number): string {
  return `${address.includes(":") ? `[${address}]` : address}:${port}`;
}

/** A connection the URL policy refused, with its reason. */
export class RefusedByPolicy extends Error {
  override name = "RefusedByPolicy";
}

/**
 * Sends a request whose connection goes through a proxy applying `policy`: the proxy resolves
 * the name, checks every address and connects to one it checked, so the address checked is the
 * one used (TLS stays end to end, with the name). Answers the status; the body is discarded.
 * Rejects with `RefusedByPolicy` when the policy refuses the host.
 */
export async function fetchStatus(
  policy: UrlPolicy,
  url: string,
  init: RequestInit,
): Promise<number> {
  let refusal: string | null = null;
  const proxy = startSocksProxy({ policy, onRefused: (_target, reason) => (refusal = reason) });
  // socks5h: the name goes to the proxy, which does the one lookup.
  const client = Deno.createHttpClient({
    proxy: { url: proxy.url.replace(/^socks5:/, "socks5h:") },
  });
  try {
    const res = await fetch(url, { ...init, client });
    await res.body?.cancel();
    return res.status;
  } catch (err) {
    if (refusal) throw new RefusedByPolicy(refusal);
    throw err;
  } finally {
    client.close();
    await proxy.close();
  }
}
