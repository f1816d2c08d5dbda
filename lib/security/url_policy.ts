/**
 * The URL policy every job type applies to the URLs it will reach (benchmark targets, pages a
 * browser opens, webhooks): only http and https, host names resolved and every address checked.
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

type Ip = ipaddr.IPv4 | ipaddr.IPv6;

function normalize(address: string): Ip | null {
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

const NAT64_LOCAL = ipaddr.parseCIDR("64:ff9b:1::/48");

/**
 * The IPv4 addresses an IPv6 address carries, which a gateway on the path may connect to:
 * IPv4-translated (`::ffff:0:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`,
 * and the local-use `64:ff9b:1::/48` in its /96 layout), 6to4 (`2002:aabb:ccdd::`) and Teredo
 * (its server, and its client with the bits inverted).
 */
function embeddedIPv4(ip: ipaddr.IPv6): ipaddr.IPv4[] {
  const b = ip.toByteArray();
  const v4 = (at: number, flip = 0) =>
    new ipaddr.IPv4([b[at]! ^ flip, b[at + 1]! ^ flip, b[at + 2]! ^ flip, b[at + 3]! ^ flip]);
  const range = ip.range();
  const zeroHead = b.slice(0, 12).every((x) => x === 0);
  if (range === "rfc6145" || range === "rfc6052" || ip.match(NAT64_LOCAL)) return [v4(12)];
  if (zeroHead && range !== "unspecified" && range !== "loopback") return [v4(12)];
  if (range === "6to4") return [v4(2)];
  if (range === "teredo") return [v4(4), v4(12, 0xff)];
  return [];
}

/** The address and every IPv4 address it carries, each to be judged. */
function judged(ip: Ip): Ip[] {
  return ip.kind() === "ipv6" ? [ip, ...embeddedIPv4(ip as ipaddr.IPv6)] : [ip];
}

function matchesHost(pattern: string, host: string, addresses: string[]): boolean {
  if (pattern.startsWith("*.")) return host.endsWith(pattern.slice(1));
  if (pattern.includes("/")) {
    try {
      const range = ipaddr.parseCIDR(pattern);
      return addresses.some((a) => {
        const ip = normalize(a);
        return ip !== null &&
          judged(ip).some((j) => j.kind() === range[0].kind() && j.match(range));
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

/**
 * Link-local and cloud metadata addresses are always refused; private and loopback ranges are
 * allowed unless `STREAMPLAY_ALLOW_PRIVATE=false`; optional allow-list and deny-list of hosts.
 * Every address a name resolves to is checked, so a name pointing at a metadata address is refused
 * too. An IPv6 address that carries an IPv4 one (mapped, IPv4-compatible, NAT64, 6to4, Teredo) is
 * judged by both.
 */
export function createUrlPolicy(options: UrlPolicyOptions): UrlPolicy {
  const resolve = options.resolve ?? defaultResolve;

  /** Refused whatever the lists say. */
  const neverAllowed = (ip: Ip, address: string): string | null => {
    for (const one of judged(ip)) {
      for (const range of ALWAYS_REFUSED) {
        if (one.kind() === range[0].kind() && one.match(range)) {
          return `${address} is a link-local or cloud metadata address (never allowed)`;
        }
      }
    }
    return null;
  };

  const checkAddress = (address: string): string | null => {
    const ip = normalize(address);
    if (!ip) return `"${address}" is not an IP address`;
    const never = neverAllowed(ip, address);
    if (never) return never;
    if (!options.allowPrivate && judged(ip).some((one) => PRIVATE_RANGES.has(one.range()))) {
      return `${address} is a private or loopback address and STREAMPLAY_ALLOW_PRIVATE is false`;
    }
    return null;
  };

  return {
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
