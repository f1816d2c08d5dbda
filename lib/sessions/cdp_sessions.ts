/**
 * CDP clients of live sessions: the session `GET /cdp` opens, its clients served through the
 * filtering relay (`cdp_proxy.ts`) in the process that runs it, or passed on to that process.
 */
import { z } from "@hono/zod-openapi";
import type { Logger } from "../core/log.ts";
import { errorMessage } from "../core/log.ts";
import { conflict, notFound } from "../core/errors.ts";
import type { UrlPolicy } from "../security/url_policy.ts";
import type { JobRecord } from "../jobs/queue.ts";
import type { LiveSession } from "./host.ts";
import type { SessionDeps } from "./control.ts";
import type { SessionParams } from "./params.ts";
import { type CdpProxy, type CdpTarget, startCdpProxy } from "./cdp_proxy.ts";
import { downloadsDir } from "./downloads.ts";
import { type SessionStart, type SessionStarting, startSession } from "./start.ts";

/** How long a client waits for its session's browser to be reachable. */
const DEVTOOLS_WAIT_MS = 15_000;

const flag = z.enum(["0", "1", "true", "false"]).transform((v) => v === "1" || v === "true");
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max).optional();

/** The query of `GET /cdp`: the session a client opens. */
export const CdpQuery = z.object({
  width: int(200, 3840).openapi({ description: "Viewport width (default 1280)." }),
  height: int(200, 2160).openapi({ description: "Viewport height (default 720)." }),
  record: flag.optional().openapi({ description: "1: record the session from its start." }),
  idle_timeout_s: int(1, 86_400)
    .openapi({ description: "End after this long without a command or a viewer (300)." }),
  max_duration_s: int(5, 86_400).openapi({
    description: "End after this long in any case (3600).",
  }),
  keep_alive_s: int(0, 3600)
    .openapi({ description: "Seconds the session waits for its client to reconnect (0)." }),
  token: z.string().optional().openapi({ description: "The caller's token, when tokens are on." }),
}).strict();
export type CdpQuery = z.infer<typeof CdpQuery>;

/** The params of the session a `GET /cdp` client opens: blank, ending when its client leaves. */
export function cdpSessionParams(query: CdpQuery): Record<string, unknown> {
  const params: Record<string, unknown> = {
    url: "about:blank",
    viewport: { width: query.width ?? 1280, height: query.height ?? 720 },
    cdp: { keep_alive_s: query.keep_alive_s ?? 0 },
  };
  if (query.record) params.record = true;
  if (query.idle_timeout_s !== undefined) params.idle_timeout_s = query.idle_timeout_s;
  if (query.max_duration_s !== undefined) params.max_duration_s = query.max_duration_s;
  return params;
}

/** Starts the session a `GET /cdp` client asked for (429 when no slot is free, as sessions). */
export function openCdpSession(
  deps: SessionStarting,
  query: CdpQuery,
  start: Omit<SessionStart, "type" | "params"> = {},
): Promise<JobRecord> {
  return startSession(deps, { ...start, type: "session", params: cdpSessionParams(query) });
}

/** Where a CDP client of session `id` is served: here, or the process that runs it. */
export async function cdpEndpoint(
  sessions: SessionDeps,
  id: string,
): Promise<{ live: LiveSession } | { node: string }> {
  const live = sessions.host?.get(id);
  if (live) return ensureSession(live.params, id, { live });
  const snap = await sessions.store.snapshot(id).catch(() => null);
  if (!snap) throw notFound(`No live session with id "${id}"`);
  if (snap.state === "stopped" || snap.state === "failed") {
    throw conflict(`Session ${id} has ended (${snap.state})`);
  }
  return { node: snap.node };
}

function ensureSession<T>(params: SessionParams, id: string, value: T): T {
  if ("replay" in params || "code" in params) {
    throw conflict(`Session ${id} is driven by its replay or function; CDP clients drive sessions`);
  }
  return value;
}

export interface CdpGateway {
  /** Serves a CDP client of a session of this process on `socket` until either ends. */
  attach(live: LiveSession, socket: WebSocket): void;
}

export interface CdpGatewayOptions {
  policy: UrlPolicy;
  dataDir: string;
  log: Logger;
}

interface Clients {
  proxies: Set<CdpProxy>;
  /** Ends a CDP session its clients left (keep_alive_s after the last one). */
  timer?: ReturnType<typeof setTimeout>;
  over: boolean;
}

/**
 * The CDP clients of the sessions this process runs.
 *
 * A session opened for CDP clients ends when its last client leaves (`keep_alive_s` later), and its
 * clients' sockets close with the session's reason when it ends.
 */
export function createCdpGateway(options: CdpGatewayOptions): CdpGateway {
  const bySession = new Map<string, Clients>();

  const clientsOf = (live: LiveSession): Clients => {
    let clients = bySession.get(live.id);
    if (clients) return clients;
    const created: Clients = { proxies: new Set(), over: false };
    bySession.set(live.id, created);
    live.subscribe({
      frame() {},
      end(final) {
        created.over = true;
        clearTimeout(created.timer);
        bySession.delete(live.id);
        const code = final.state === "failed" ? 1011 : 1000;
        for (const proxy of created.proxies) {
          proxy.close(code, `session ${final.state}: ${final.reason ?? "ended"}`);
        }
      },
    });
    return clients = created;
  };

  return {
    attach(live, socket) {
      const state = live.snapshot().state;
      if (state === "stopped" || state === "failed") {
        socket.onopen = () => socket.close(1000, `session ${state}`);
        return;
      }
      const clients = clientsOf(live);
      clearTimeout(clients.timer);
      const proxy: CdpProxy = startCdpProxy({
        client: socket,
        target: cdpTarget(live, options.dataDir),
        policy: options.policy,
        onCommand: () => live.touch(),
        onBrowserClose: () => void live.stop("browser_closed").catch(() => {}),
        onClose: (reason) => {
          clients.proxies.delete(proxy);
          options.log.debug("CDP client left", { session: live.id, reason });
          const keepAlive = live.params.cdp?.keep_alive_s;
          if (clients.over || keepAlive === undefined || clients.proxies.size > 0) return;
          clients.timer = setTimeout(
            () => void live.stop("client_disconnected").catch(() => {}),
            keepAlive * 1000,
          );
        },
      });
      clients.proxies.add(proxy);
    },
  };
}

/** The session's browser as its CDP relay needs it (waits for its first tab). */
async function cdpTarget(live: LiveSession, dataDir: string): Promise<CdpTarget> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error("the session's browser did not come up in time")),
      DEVTOOLS_WAIT_MS,
    );
  });
  try {
    const devtools = await Promise.race([live.devtools(), late]);
    const res = await fetch(`http://127.0.0.1:${devtools.port}/json/version`);
    const { webSocketDebuggerUrl } = await res.json() as { webSocketDebuggerUrl: string };
    const downloads = downloadsDir(dataDir, live.id);
    await Deno.mkdir(downloads, { recursive: true });
    return {
      browserUrl: webSocketDebuggerUrl,
      context: devtools.context,
      proxyServer: devtools.proxy,
      downloads,
    };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Passes a CDP client on to the process that runs its session (`ws://<node>/cdp/<id>`), with
 * the client's token, frame for frame both ways until either side closes.
 */
export function relayCdp(client: WebSocket, url: string, token: string | null, log: Logger) {
  const upstream = new WebSocket(url, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  const early: Array<string | ArrayBuffer> = [];
  const close = (socket: WebSocket, code: number, reason: string) => {
    if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) {
      try {
        socket.close(code, reason);
      } catch { /* closed */ }
    }
  };
  client.onmessage = (e) => {
    if (upstream.readyState === WebSocket.OPEN) upstream.send(e.data);
    else early.push(e.data);
  };
  upstream.onopen = () => {
    for (const data of early.splice(0)) upstream.send(data);
  };
  upstream.onmessage = (e) => {
    if (client.readyState === WebSocket.OPEN) client.send(e.data);
  };
  upstream.onerror = (e) => {
    log.warn("cannot reach the process running a CDP client's session", {
      url,
      error: errorMessage((e as ErrorEvent).error ?? e.type),
    });
  };
  client.onerror = () => {};
  // The client's socket is the server side of its upgrade: it may send any code but the ones
  // that say no close frame came (1005, 1006, 1015). The upstream one may send only 1000.
  upstream.onclose = (e) =>
    close(client, [1005, 1006, 1015].includes(e.code) ? 1011 : e.code, e.reason);
  client.onclose = () => close(upstream, 1000, "the client disconnected");
}
