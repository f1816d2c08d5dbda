/**
 * Session capabilities, what share links hold: a token for one session and one role (viewer or
 * operator) until it expires. Its holder has that role on that session and nothing else, whether
 * tokens are on or off (see lib/http/auth.ts).
 */
import type { Redis } from "../core/redis.ts";
import { redisKeys } from "../core/keys.ts";
import { unavailable } from "../core/errors.ts";

export type ShareRole = "viewer" | "operator";

/** What a valid share token allows. */
export interface Capability {
  session: string;
  role: ShareRole;
  expiresAt: Date;
}

export type ShareCheck = { ok: true; capability: Capability } | { ok: false; reason: string };

export interface ShareLinks {
  /** A token for `role` on session `session`, valid for `expiresInS` seconds. */
  mint(
    session: string,
    role: ShareRole,
    expiresInS: number,
  ): Promise<Capability & { token: string }>;
  /** What a share token allows, or why it allows nothing (bad signature, expired). */
  verify(token: string): Promise<ShareCheck>;
}

const PREFIX = "spshare.";

/** Whether a bearer token is a share token (rather than one of STREAMPLAY_TOKENS). */
export function isShareToken(token: string): boolean {
  return token.startsWith(PREFIX);
}

const base64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

function fromBase64url(text: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null;
  try {
    const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
  } catch {
    return null;
  }
}

/**
 * A token is `spshare.<payload>.<signature>`, the payload base64url JSON `{ s, r, e }` signed with
 * HMAC-SHA256 by a secret the processes sharing a Redis keep there (made by whichever asks first).
 */
export function createShareLinks(options: { redis: Redis; prefix: string }): ShareLinks {
  const key = redisKeys(options.prefix).shareSecret;
  let signing: Promise<CryptoKey> | undefined;

  /** The group's secret: the one in Redis, put there by the first process that needed it. */
  const secret = () =>
    signing ??= (async () => {
      const fresh = base64url(crypto.getRandomValues(new Uint8Array(32)));
      await options.redis.set(key, fresh, "NX");
      const stored = await options.redis.get(key);
      if (!stored) throw unavailable("The share link secret is missing from Redis; try again");
      return await crypto.subtle.importKey(
        "raw",
        new TextEncoder().encode(stored),
        { name: "HMAC", hash: "SHA-256" },
        false,
        ["sign", "verify"],
      );
    })().catch((err) => {
      signing = undefined;
      throw err;
    });

  return {
    async mint(session, role, expiresInS) {
      const expiresAt = new Date(Math.ceil(Date.now() / 1000 + expiresInS) * 1000);
      const payload = base64url(
        new TextEncoder().encode(
          JSON.stringify({ s: session, r: role, e: expiresAt.getTime() / 1000 }),
        ),
      );
      const signature = new Uint8Array(
        await crypto.subtle.sign("HMAC", await secret(), new TextEncoder().encode(payload)),
      );
      return { token: `${PREFIX}${payload}.${base64url(signature)}`, session, role, expiresAt };
    },

    async verify(token) {
      const invalid = { ok: false as const, reason: "This share link is not valid" };
      const [payload, signature, extra] = token.slice(PREFIX.length).split(".");
      const sig = fromBase64url(signature ?? "");
      if (!isShareToken(token) || !payload || !sig || extra !== undefined) return invalid;
      const genuine = await crypto.subtle.verify(
        "HMAC",
        await secret(),
        sig,
        new TextEncoder().encode(payload),
      );
      if (!genuine) return invalid;
      const claims = JSON.parse(new TextDecoder().decode(fromBase64url(payload)!));
      const expiresAt = new Date(claims.e * 1000);
      if (expiresAt.getTime() <= Date.now()) {
        return { ok: false, reason: `This share link expired at ${expiresAt.toISOString()}` };
      }
      return { ok: true, capability: { session: claims.s, role: claims.r, expiresAt } };
    },
  };
}
