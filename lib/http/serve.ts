/**
 * The HTTP front door: connections accepted here with header, body and idle timeouts and a
 * connection cap, then relayed byte for byte to Deno.serve on a private loopback port.
 */
import { errorMessage, type Logger } from "../core/log.ts";
import { readProcFiles } from "../core/procfs.ts";

export interface ConnectionLimits {
  /** A request head must arrive within this from its first byte (the first one: from accept). */
  headerTimeoutMs: number;
  /** A request body must arrive within this from the end of its head. */
  bodyTimeoutMs: number;
  /**
   * A connection between requests with no byte either way, or a write that has not gone
   * through, for this long is closed.
   */
  idleTimeoutMs: number;
  /** Connections at once; undefined: from the descriptor limit (see `connectionBudget`). */
  maxConnections: number | undefined;
  maxConnectionsPerAddress: number;
}

export interface GuardedServer {
  /** The public address actually bound. */
  addr: Deno.NetAddr;
  /** Connections open now, and closed by each bound since the start. */
  stats(): ServeStats;
  /** Stops accepting, lets requests in flight finish, then closes every connection. */
  shutdown(): Promise<void>;
}

export interface ServeStats {
  open: number;
  maxConnections: number;
  closed: { header: number; body: number; idle: number };
  refused: { total: number; address: number; descriptors: number };
}

/** The longest request head accepted (request line and headers). */
export const MAX_HEAD_BYTES = 64 * 1024;
/** Descriptors left for everything but HTTP connections when the cap comes from the limit. */
const RESERVED_DESCRIPTORS = 256;
/** Each relayed connection holds three: the client's, ours to Deno.serve, and its end of it. */
const DESCRIPTORS_PER_CONNECTION = 3;
const MAX_DEFAULT_CONNECTIONS = 4096;
/** How often deadlines are checked: a bound holds to within this. */
const SWEEP_MS = 500;
const UP_BUFFER = 16 * 1024;
/** Answers are read 16 KB at a time, growing to 256 KB for a connection that fills them (frames). */
const DOWN_BUFFER = 16 * 1024;
const DOWN_BUFFER_MAX = 256 * 1024;

/**
 * Connections this process can hold with its descriptor limit (RLIMIT_NOFILE): three descriptors
 * each, 256 kept for the rest (Redis, DuckDB, Workers, browsers), at most 4096.
 */
export async function connectionBudget(): Promise<number> {
  const limits = (await readProcFiles([`/proc/${Deno.pid}/limits`])).values().next().value ?? "";
  const soft = Number(/^Max open files\s+(\d+)/m.exec(limits)?.[1]);
  if (!Number.isFinite(soft)) return 1024;
  const budget = Math.floor((soft - RESERVED_DESCRIPTORS) / DESCRIPTORS_PER_CONNECTION);
  return Math.max(16, Math.min(MAX_DEFAULT_CONNECTIONS, budget));
}

const encoder = new TextEncoder();
const now = () => performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A short JSON answer written straight to a socket, which is then closed. */
function refusal(status: number, reason: string, message: string, retryAfterS?: number) {
  const body = JSON.stringify({ error: message });
  return encoder.encode(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\n` +
      `content-length: ${encoder.encode(body).length}\r\nconnection: close\r\n` +
      (retryAfterS ? `retry-after: ${retryAfterS}\r\n` : "") + `\r\n${body}`,
  );
}

const TOO_MANY = refusal(
  503,
  "Service Unavailable",
  "The server holds as many connections as it can; try again shortly",
  1,
);
const TOO_MANY_FROM_YOU = refusal(
  429,
  "Too Many Requests",
  "Too many connections from this address at once; close some and try again",
  1,
);
const HEAD_TOO_LARGE = refusal(
  431,
  "Request Header Fields Too Large",
  `The request head exceeds ${MAX_HEAD_BYTES / 1024} KB`,
);

function isOutOfDescriptors(err: unknown): boolean {
  return /os error 24|too many open files/i.test(errorMessage(err));
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await conn.write(bytes.subarray(done));
}

/** Refusals being written at most; beyond, a refused connection is closed without an answer. */
const MAX_REFUSALS_IN_FLIGHT = 32;
let refusing = 0;

/**
 * Writes a refusal without waiting on a client that does not read, and closes. In a flood, at most
 * `MAX_REFUSALS_IN_FLIGHT` wait for their write: each holds a descriptor until it is done.
 */
function refuse(conn: Deno.Conn, answer: Uint8Array) {
  const close = () => {
    try {
      conn.close();
    } catch { /* closed */ }
  };
  if (refusing >= MAX_REFUSALS_IN_FLIGHT) return close();
  refusing++;
  conn.write(answer).catch(() => {}).finally(() => {
    refusing--;
    close();
  });
}

type Phase = "head" | "length" | "chunk-size" | "chunk-data" | "trailers";

/**
 * Follows the requests of one connection through the bytes the client sends: where a head ends
 * (and whether it is too long), how long its body is (Content-Length or chunked), and whether it
 * asks for an upgrade. Only framing: validating HTTP stays with Deno.serve.
 */
export class RequestFramer {
  phase: Phase = "head";
  /** When the current head or body started (performance.now()); null between requests. */
  startedAt: number | null;
  /** A head asked for an upgrade whose answer has not come yet. */
  upgradeAsked = false;
  tooLarge = false;
  /** Heads completed so far. */
  requests = 0;
  private head: number[] = [];
  private remaining = 0;
  private line: number[] = [];

  constructor(acceptedAt: number) {
    // The first request's head is due from the moment the connection is accepted.
    this.startedAt = acceptedAt;
  }

  /** Takes the next bytes from the client. */
  feed(bytes: Uint8Array, at: number): void {
    let i = 0;
    while (i < bytes.length && !this.tooLarge) {
      switch (this.phase) {
        case "head": {
          this.startedAt ??= at;
          const b = bytes[i++]!;
          this.head.push(b);
          const n = this.head.length;
          if (
            b === 10 &&
            (this.head[n - 2] === 10 || (this.head[n - 2] === 13 && this.head[n - 3] === 10))
          ) {
            if (n <= 2) {
              // Blank lines before a request line are allowed (RFC 9112 §2.2).
              this.head = [];
              continue;
            }
            this.endHead(at);
          } else if (n > MAX_HEAD_BYTES) {
            this.tooLarge = true;
          }
          break;
        }
        case "length": {
          const take = Math.min(this.remaining, bytes.length - i);
          i += take;
          this.remaining -= take;
          if (this.remaining === 0) this.between();
          break;
        }
        case "chunk-data": {
          const take = Math.min(this.remaining, bytes.length - i);
          i += take;
          this.remaining -= take;
          if (this.remaining === 0) this.phase = "chunk-size";
          break;
        }
        case "chunk-size":
        case "trailers": {
          const b = bytes[i++]!;
          if (b !== 10) {
            if (this.line.length < 8192) this.line.push(b);
            else this.tooLarge = true;
            break;
          }
          const text = String.fromCharCode(...this.line).replace(/\r$/, "");
          this.line = [];
          if (this.phase === "trailers") {
            if (text === "") this.between();
          } else {
            const size = parseInt(text.split(";")[0]!.trim(), 16);
            if (!Number.isFinite(size) || size < 0) {
              // Not chunked framing after all: Deno.serve will refuse it; stop following.
              this.between();
            } else if (size === 0) {
              this.phase = "trailers";
            } else {
              this.phase = "chunk-data";
              this.remaining = size + 2;
            }
          }
          break;
        }
      }
    }
  }

  private endHead(at: number) {
    const text = new TextDecoder().decode(new Uint8Array(this.head));
    this.head = [];
    this.requests++;
    let length = 0;
    let chunked = false;
    let upgrade = false;
    for (const line of text.split(/\r?\n/).slice(1)) {
      const colon = line.indexOf(":");
      if (colon < 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim().toLowerCase();
      if (name === "content-length") length = Number(value) || 0;
      else if (name === "transfer-encoding") {
        chunked = value.split(",").at(-1)?.trim() === "chunked";
      } else if (name === "upgrade") upgrade = value !== "";
    }
    this.upgradeAsked = upgrade;
    if (chunked) {
      this.phase = "chunk-size";
      this.startedAt = at;
    } else if (length > 0) {
      this.phase = "length";
      this.remaining = length;
      this.startedAt = at;
    } else {
      this.between();
    }
  }

  private between() {
    this.phase = "head";
    this.startedAt = null;
  }
}

interface Relay {
  client: Deno.TcpConn;
  backend: Deno.TcpConn | undefined;
  address: string;
  framer: RequestFramer;
  /** Last byte either way (performance.now()). */
  activeAt: number;
  /** Since when a write has been waiting (the peer does not read), or null. */
  stalledSince: number | null;
  /** After an answer of 101: bytes only, no more HTTP (WebSocket; Deno.serve pings it). */
  tunnel: boolean;
  closed: boolean;
}

export interface ServeOptions {
  hostname: string;
  port: number;
  limits: ConnectionLimits;
  log: Logger;
}

/**
 * Serves `handler` on `hostname:port` behind the bounds of `limits`. The handler sees the client's
 * address in `info.remoteAddr`, as with Deno.serve. Throws if the port cannot be bound.
 *
 * Deno.serve has no header, body or idle timeout, no connection cap, and ends for good when
 * accepting hits the descriptor limit; hence this relay. Deno.serve still parses HTTP and upgrades
 * WebSockets.
 */
export async function serveGuarded(
  options: ServeOptions,
  handler: Deno.ServeHandler<Deno.NetAddr>,
): Promise<GuardedServer> {
  const { limits, log } = options;
  const maxConnections = limits.maxConnections ?? await connectionBudget();
  const listener = Deno.listen({ hostname: options.hostname, port: options.port });
  const relays = new Set<Relay>();
  const perAddress = new Map<string, number>();
  /** Our end of each relay to Deno.serve, by local port: the client it speaks for. */
  const peers = new Map<number, Deno.NetAddr>();
  const stats: ServeStats = {
    open: 0,
    maxConnections,
    closed: { header: 0, body: 0, idle: 0 },
    refused: { total: 0, address: 0, descriptors: 0 },
  };
  let stopping = false;

  // ---- the HTTP server behind: loopback only, answers only what came through here ----
  let inner!: { server: Deno.HttpServer<Deno.NetAddr>; abort: AbortController };
  const startInner = () => {
    const abort = new AbortController();
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      signal: abort.signal,
      onListen: () => {},
    }, (req, info) => {
      const client = peers.get(info.remoteAddr.port);
      if (!client) {
        return Response.json({ error: "Connect through the server's public address" }, {
          status: 403,
        });
      }
      return handler(req, {
        remoteAddr: client,
        get completed() {
          return info.completed;
        },
      });
    });
    inner = { server, abort };
    server.finished.catch(async (err) => {
      if (stopping) return;
      // Deno.serve ends for good when it cannot accept (out of descriptors): a new one takes over.
      log.error("the HTTP server stopped; starting it again", { error: errorMessage(err) });
      for (let attempt = 0; !stopping; attempt++) {
        await sleep(Math.min(2_000, 50 * 2 ** attempt));
        try {
          startInner();
          return;
        } catch (again) {
          if (attempt === 0) {
            log.warn("the HTTP server cannot start yet", { error: errorMessage(again) });
          }
        }
      }
    });
  };
  startInner();

  // ---- closing a relay, and the deadlines ----
  const close = (relay: Relay, why?: keyof ServeStats["closed"]) => {
    if (relay.closed) return;
    relay.closed = true;
    if (why) stats.closed[why]++;
    relays.delete(relay);
    const left = (perAddress.get(relay.address) ?? 1) - 1;
    if (left > 0) perAddress.set(relay.address, left);
    else perAddress.delete(relay.address);
    if (relay.backend) {
      peers.delete(relay.backend.localAddr.port);
      try {
        relay.backend.close();
      } catch { /* closed */ }
    }
    try {
      relay.client.close();
    } catch { /* closed */ }
  };

  let reported = { header: 0, body: 0, idle: 0 };
  let reportedAt = now();
  const sweep = setInterval(() => {
    const t = now();
    for (const relay of relays) {
      const { framer } = relay;
      if (relay.stalledSince !== null && t - relay.stalledSince > limits.idleTimeoutMs) {
        close(relay, "idle");
      } else if (relay.tunnel) {
        continue;
      } else if (framer.startedAt !== null) {
        const bound = framer.phase === "head" ? limits.headerTimeoutMs : limits.bodyTimeoutMs;
        if (t - framer.startedAt > bound) close(relay, framer.phase === "head" ? "header" : "body");
      } else if (t - relay.activeAt > limits.idleTimeoutMs) {
        close(relay, "idle");
      }
    }
    // One line a minute at most, however many slow clients there are.
    if (t - reportedAt >= 60_000) {
      const c = stats.closed;
      const delta = {
        header: c.header - reported.header,
        body: c.body - reported.body,
        idle: c.idle - reported.idle,
      };
      if (delta.header + delta.body + delta.idle > 0) {
        log.info("closed slow or idle connections in the last minute", delta);
      }
      reported = { ...c };
      reportedAt = t;
    }
  }, SWEEP_MS);

  // ---- one connection ----
  const relayOne = async (relay: Relay) => {
    const { client, framer } = relay;
    // Until its first head is complete, a connection costs one descriptor and a small buffer.
    const first: Uint8Array[] = [];
    const small = new Uint8Array(4096);
    while (framer.requests === 0) {
      const n = await client.read(small);
      if (n === null) return close(relay);
      const bytes = small.slice(0, n);
      first.push(bytes);
      relay.activeAt = now();
      framer.feed(bytes, relay.activeAt);
      if (framer.tooLarge) {
        refuse(client, HEAD_TOO_LARGE);
        return close(relay);
      }
    }
    let backend: Deno.TcpConn;
    try {
      backend = await Deno.connect({ hostname: "127.0.0.1", port: inner.server.addr.port });
    } catch (err) {
      if (isOutOfDescriptors(err)) {
        stats.refused.descriptors++;
        outOfDescriptors();
      }
      refuse(client, TOO_MANY);
      return close(relay);
    }
    if (relay.closed) {
      backend.close();
      return;
    }
    relay.backend = backend;
    peers.set(backend.localAddr.port, client.remoteAddr);
    backend.setNoDelay(true);
    client.setNoDelay(true);

    const up = async () => {
      for (const bytes of first) await write(backend, bytes);
      const buf = new Uint8Array(UP_BUFFER);
      while (!relay.closed) {
        const n = await client.read(buf);
        if (n === null) break;
        relay.activeAt = now();
        if (!relay.tunnel) {
          framer.feed(buf.subarray(0, n), relay.activeAt);
          if (framer.tooLarge) {
            refuse(client, HEAD_TOO_LARGE);
            return close(relay);
          }
        }
        await write(backend, buf.subarray(0, n));
      }
      // The client is done sending; the answer may still be coming.
      await backend.closeWrite().catch(() => {});
    };
    const down = async () => {
      let buf = new Uint8Array(DOWN_BUFFER);
      while (!relay.closed) {
        const n = await backend.read(buf);
        if (n === null) break;
        const full = n === buf.length && buf.length < DOWN_BUFFER_MAX;
        relay.activeAt = now();
        if (framer.upgradeAsked && !relay.tunnel) {
          framer.upgradeAsked = false;
          relay.tunnel = n >= 12 && String.fromCharCode(...buf.subarray(9, 12)) === "101";
        }
        await write(client, buf.subarray(0, n));
        if (full) buf = new Uint8Array(buf.length * 4);
      }
    };
    const write = async (to: Deno.Conn, bytes: Uint8Array) => {
      relay.stalledSince = now();
      await writeAll(to, bytes);
      relay.stalledSince = null;
      relay.activeAt = now();
    };
    up().catch(() => close(relay));
    // The answer side decides the end: once Deno.serve closes, so does the client's connection.
    await down().catch(() => {});
    close(relay);
  };

  // ---- accepting ----
  let exhausted = false;
  let refusedWhileExhausted = 0;
  /** A descriptor held back so that, out of them, a waiting client can still be told so. */
  let spare: Deno.Listener | undefined;
  const openSpare = () => {
    try {
      spare ??= Deno.listen({ hostname: "127.0.0.1", port: 0 });
    } catch { /* still out */ }
  };
  openSpare();
  /** The last time a descriptor was missing: the episode ends after 5 s without. */
  let exhaustedAt = 0;
  const outOfDescriptors = () => {
    exhaustedAt = now();
    if (exhausted) return;
    exhausted = true;
    log.error("out of file descriptors: refusing new connections until some close", {
      open: relays.size,
    });
  };

  const accepting = (async () => {
    while (!stopping) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept() as Deno.TcpConn;
      } catch (err) {
        if (stopping) break;
        if (!isOutOfDescriptors(err)) {
          log.warn("accepting a connection failed", { error: errorMessage(err) });
          await sleep(50);
          continue;
        }
        outOfDescriptors();
        // Spend the spare descriptor to answer one waiting client, so none waits forever.
        spare?.close();
        spare = undefined;
        try {
          const waiting = await listener.accept();
          stats.refused.descriptors++;
          refusedWhileExhausted++;
          refuse(waiting, TOO_MANY);
        } catch { /* still out */ }
        await sleep(20);
        openSpare();
        continue;
      }
      if (exhausted && spare && now() - exhaustedAt > 5_000) {
        exhausted = false;
        log.info("file descriptors available again; accepting connections", {
          refused: refusedWhileExhausted,
        });
        refusedWhileExhausted = 0;
      }
      const address = conn.remoteAddr.hostname;
      const fromAddress = perAddress.get(address) ?? 0;
      if (relays.size >= maxConnections) {
        stats.refused.total++;
        refuse(conn, TOO_MANY);
        continue;
      }
      if (fromAddress >= limits.maxConnectionsPerAddress) {
        stats.refused.address++;
        refuse(conn, TOO_MANY_FROM_YOU);
        continue;
      }
      perAddress.set(address, fromAddress + 1);
      const relay: Relay = {
        client: conn,
        backend: undefined,
        address,
        framer: new RequestFramer(now()),
        activeAt: now(),
        stalledSince: null,
        tunnel: false,
        closed: false,
      };
      relays.add(relay);
      relayOne(relay).catch(() => close(relay));
    }
  })();

  let stopped: Promise<void> | undefined;
  return {
    addr: listener.addr as Deno.NetAddr,
    stats: () => ({ ...stats, open: relays.size }),
    shutdown: () =>
      stopped ??= (async () => {
        stopping = true;
        listener.close();
        await accepting;
        spare?.close();
        inner.abort.abort();
        // Requests in flight finish; connections between requests are closed.
        for (const relay of relays) {
          if (!relay.tunnel && relay.framer.startedAt === null) close(relay);
        }
        await inner.server.finished.catch(() => {});
        for (const relay of relays) close(relay);
        clearInterval(sweep);
      })(),
  };
}
