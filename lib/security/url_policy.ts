/**
 * The URL policy every job type applies to the URLs it will reach (benchmark targets, pages a
 * browser opens, webhooks): only http and https; link-local and cloud metadata addresses always
 * refused; private and loopback ranges allowed unless `STREAMPLAY_ALLOW_PRIVATE=false`; optional
 * allow-list and deny-list of hosts. Host names are resolved and every address is checked, so a
 * name pointing at a metadata address is refused too.
 */
import ipaddr from "ipaddr.js";

export interface UrlPolicyOptions {
  allowPrivate: boolean;
  /** Host patterns: `example.com` (exact), `*.example.com` (subdomains), an IP or a CIDR range. */
  allowHosts: string[];
  denyHosts: string[];
  /** Resolver, replaceable for tests; defaults to Deno.resolveDns (A and AAAA). */
  resolve?: (host: string) => Promise<string[]>;
}

/** `addresses`: what the host resolved to, all checked (connect to these, not a new lookup). */
export type PolicyVerdict = { ok: true; url: URL; addresses: string[] } | {
  ok: false;
  reason: string;
};

export interface UrlPolicy {
  check(raw: string): Promise<PolicyVerdict>;
  /** Checks an address without DNS (for intercepted browser requests that carry an IP). */
  checkAddress(address: string): string | null;
}

/** Always refused, whatever the settings: instance metadata services and link-local ranges. */
const ALWAYS_REFUSED = ["169.254.0.0/16", "fd00:ec2::254/128", "fe80::/10"].map((c) =>
  ipaddr.parseCIDR(c)
);
const PRIVATE_RANGES = new Set([
  "private",
  "loopback",
  "uniqueLocal",
  "carrierGradeNat",
  "unspecified",
]);

function normalize(address: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  try {
    const parsed = ipaddr.parse(address.replace(/^\[|\]$/g, ""));
    if (parsed.kind() === "ipv6" && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
      return (parsed as ipaddr.IPv6).toIPv4Address();
    }
    return parsed;
  } catch {
    return null;
  }
}

function matchesHost(pattern: string, host: string, addresses: string[]): boolean {
  if (pattern.startsWith("*.")) return host.endsWith(pattern.slice(1));
  if (pattern.includes("/")) {
    try {
      const range = ipaddr.parseCIDR(pattern);
      return addresses.some((a) => {
        const ip = normalize(a);
        return ip !== null && ip.kind() === range[0].kind() && ip.match(range);
      });
    } catch {
      return false;
    }
  }
  return host === pattern || addresses.includes(pattern);
}

async function defaultResolve(host: string): Promise<string[]> {
  if (host === "localhost" || host.endsWith(".localhost")) return ["127.0.0.1", "::1"];
  const settled = await Promise.allSettled([
    Deno.resolveDns(host, "A"),
    Deno.resolveDns(host, "AAAA"),
  ]);
  return settled.flatMap((r) => (r.status === "fulfilled" ? r.value : []));
}

export function createUrlPolicy(options: UrlPolicyOptions): UrlPolicy {
  const resolve = options.resolve ?? defaultResolve;

  /** Refused whatever the lists say. */
  const neverAllowed = (ip: ipaddr.IPv4 | ipaddr.IPv6, address: string): string | null => {
    for (const range of ALWAYS_REFUSED) {
      if (ip.kind() === range[0].kind() && ip.match(range)) {
        return `${address} is a link-local or cloud metadata address (never allowed)`;
      }
    }
    return null;
  };

  const checkAddress = (address: string): string | null => {
    const ip = normalize(address);
    if (!ip) return `"${address}" is not an IP address`;
    const never = neverAllowed(ip, address);
    if (never) return never;
    if (!options.allowPrivate && PRIVATE_RANGES.has(ip.range())) {
      return `${address} is a private or loopback address and STREAMPLAY_ALLOW_PRIVATE is false`;
    }
    return null;
  };

  return {
    checkAddress,
    async check(raw) {
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        return { ok: false, reason: "is not a valid absolute URL" };
      }
      if (url.protocol !== "http:" && url.protocol !== "https:") {
        return {
          ok: false,
          reason: `uses ${url.protocol.replace(":", "")}; only http and https are allowed`,
        };
      }
      if (url.username || url.password) {
        return { ok: false, reason: "must not carry a user name or password" };
      }
      const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, "");
      const literal = normalize(host);
      const addresses = literal ? [literal.toString()] : await resolve(host);
      if (addresses.length === 0) return { ok: false, reason: `host ${host} does not resolve` };
      const describe = (problem: string) => (literal ? problem : `${host} resolves to ${problem}`);
      for (const address of addresses) {
        const ip = normalize(address);
        const never = ip && neverAllowed(ip, address);
        if (never) return { ok: false, reason: describe(never) };
      }
      for (const pattern of options.denyHosts) {
        if (matchesHost(pattern, host, addresses)) {
          return { ok: false, reason: `host ${host} is on the deny-list` };
        }
      }
      if (
        options.allowHosts.length > 0 &&
        !options.allowHosts.some((p) => matchesHost(p, host, addresses))
      ) {
        return { ok: false, reason: `host ${host} is not on the allow-list` };
      }
      for (const address of addresses) {
        const problem = checkAddress(address);
        if (problem) {
          return { ok: false, reason: literal ? problem : `${host} resolves to ${problem}` };
        }
      }
      return { ok: true, url, addresses };
    },
  };
}
