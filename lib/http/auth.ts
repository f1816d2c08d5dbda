/**
 * Bearer-token authentication with roles viewer < operator < admin, and share-link tokens.
 */
import { createMiddleware } from "hono/factory";
import { HTTPException } from "hono/http-exception";
import type { Role, Token } from "../core/config.ts";
import { isShareToken, type ShareLinks } from "../sessions/capability.ts";

export interface Principal {
  name: string;
  role: Role;
  /** Set for a share link's holder: the one session it may reach. */
  session?: string;
  /** Live sessions this caller may hold at once (its token's max_sessions). */
  maxSessions?: number;
}

const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

export function hasRole(principal: Principal | undefined, role: Role): boolean {
  return principal !== undefined && RANK[principal.role] >= RANK[role];
}

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length && i < b.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export interface Authenticator {
  enabled: boolean;
  /** Who holds this token; null when nobody; why a share link's token is refused. */
  identify(token: string | null): Promise<Principal | null | { refused: string }>;
}

/**
 * With `STREAMPLAY_TOKENS` unset every caller is an anonymous admin (the default loopback-only
 * setup). A share link's token (lib/sessions/share.ts), tokens on or off, makes its holder a viewer
 * or operator of one session: any other path answers 403, an expired one 401. Tokens are compared
 * as SHA-256 digests in constant time and never logged.
 */
export async function createAuthenticator(
  tokens: Token[],
  shares: ShareLinks,
): Promise<Authenticator> {
  const known = await Promise.all(
    tokens.map(async (t) => ({
      hash: await digest(t.token),
      principal: t.maxSessions === undefined
        ? { name: t.name, role: t.role }
        : { name: t.name, role: t.role, maxSessions: t.maxSessions },
    })),
  );
  return {
    enabled: tokens.length > 0,
    async identify(token) {
      if (token && isShareToken(token)) {
        const check = await shares.verify(token);
        if (!check.ok) return { refused: check.reason };
        const { role, session } = check.capability;
        return { name: `share link (${role})`, role, session };
      }
      if (tokens.length === 0) return { name: "anonymous", role: "admin" };
      if (!token) return null;
      const hash = await digest(token);
      let found: Principal | null = null;
      for (const k of known) if (sameBytes(hash, k.hash)) found = { ...k.principal };
      return found;
    },
  };
}

/** The token a request carries: the Authorization header, or `?token=` where allowed. */
export function requestToken(req: Request, allowQuery: boolean): string | null {
  const header = req.headers.get("authorization");
  if (header) {
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    return m ? m[1]! : null;
  }
  if (allowQuery) return new URL(req.url).searchParams.get("token");
  return null;
}

type AuthEnv = { Variables: { principal: Principal } };

/** Media a browser element loads by URL: a recording's video and screenshots. */
const MEDIA_PATH = /^\/api\/recordings\/[^/]+\/(video|screenshots\/[^/]+)$/;

/**
 * Identifies the caller on /api, /ws and /cdp; answers 401 when a token is needed and missing.
 * Paths for which `isPublic` says so pass without a token (as an anonymous viewer).
 *
 * With tokens, `/api`, `/ws` and `/cdp` calls need `Authorization: Bearer <token>`; WebSocket
 * upgrades (CDP clients' too), page requests and recording media (video, screenshots: `<video>` and
 * `<img>` cannot set headers either) may pass `?token=` instead.
 */
export function authenticate(auth: Authenticator, isPublic?: (path: string) => boolean) {
  return createMiddleware<AuthEnv>(async (c, next) => {
    const queryToken = c.req.path.startsWith("/ws/") || /^\/cdp(\/|$)/.test(c.req.path) ||
      ((c.req.method === "GET" || c.req.method === "HEAD") && MEDIA_PATH.test(c.req.path));
    const token = requestToken(c.req.raw, queryToken);
    if (!token && isPublic?.(c.req.path)) {
      c.set("principal", { name: "public", role: "viewer" });
      return await next();
    }
    const principal = await auth.identify(token);
    if (!principal || "refused" in principal) {
      throw new HTTPException(401, {
        message: principal?.refused ??
          "A valid token is required: send Authorization: Bearer <token>",
        res: undefined,
      });
    }
    if (principal.session !== undefined && !withinSession(c.req.path, principal.session)) {
      throw new HTTPException(403, {
        message: `This share link is for session ${principal.session} only`,
      });
    }
    c.set("principal", principal);
    await next();
  });
}

/** Whether a path is about session `id`: its API resource and below, its viewer socket. */
function withinSession(path: string, id: string): boolean {
  const api = `/api/sessions/${encodeURIComponent(id)}`;
  return path === api || path.startsWith(`${api}/`) ||
    path === `/ws/sessions/${encodeURIComponent(id)}`;
}

/** The role each `requireRole` middleware asks for (the OpenAPI document lists its 403). */
const REQUIRED = new WeakMap<object, Role>();

/** Refuses with 403 a caller whose role is below `role`. */
export function requireRole(role: Role) {
  const middleware = createMiddleware<AuthEnv>(async (c, next) => {
    const p = c.get("principal");
    if (!hasRole(p, role)) {
      throw new HTTPException(403, {
        message: `This needs the ${role} role; token "${p?.name}" has ${p?.role}`,
      });
    }
    await next();
  });
  REQUIRED.set(middleware, role);
  return middleware;
}

/** The role a middleware made by `requireRole` asks for; undefined for any other. */
export function requiredRole(middleware: unknown): Role | undefined {
  return typeof middleware === "function" ? REQUIRED.get(middleware) : undefined;
}

/** Refuses with 403 a share link's holder (what it guards needs one of STREAMPLAY_TOKENS). */
export function refuseShareLinks() {
  return createMiddleware<AuthEnv>(async (c, next) => {
    if (c.get("principal")?.session !== undefined) {
      throw new HTTPException(403, { message: "A share link cannot make other share links" });
    }
    await next();
  });
}
