/**
 * A proxy on 127.0.0.1 (SOCKS5 and HTTP CONNECT on one port) that applies the URL policy to every
 * connection made through it, connecting only to addresses it checked.
 */
import type { UrlPolicy } from "./url_policy.ts";

export interface SocksProxy {
  /** `socks5://127.0.0.1:<port>` */
  url: string;
  /** `http://127.0.0.1:<port>`: the same proxy for HTTP CONNECT clients. */
  httpUrl: string;
  close(): Promise<void>;
}

export interface SocksProxyOptions {
  policy: UrlPolicy;
  /** A rule on top of the policy, given the checked addresses: a reason to refuse, or null. */
  refuse?(addresses: string[], port: number): string | null;
  /** Called for each connection the policy refused (`target` is host:port). */
  onRefused?(target: string, reason: string): void;
  /** How long a policy verdict for a host is reused. */
  cacheMs?: number;
  handshakeTimeoutMs?: number;
}

const REPLY_OK = 0x00;
const REPLY_FAILURE = 0x01;
const REPLY_NOT_ALLOWED = 0x02;
const REPLY_HOST_UNREACHABLE = 0x04;
const REPLY_COMMAND_NOT_SUPPORTED = 0x07;
const REPLY_ADDRESS_NOT_SUPPORTED = 0x08;

const CONNECT_HEAD_LIMIT = 8 * 1024;

/** Reads exact byte counts from a stream, keeping what arrived beyond them. */
class ByteReader {
  #buffer = new Uint8Array(0);
  constructor(readonly reader: ReadableStreamDefaultReader<Uint8Array>) {}

  async read(n: number): Promise<Uint8Array> {
    while (this.#buffer.length < n) {
      const { value, done } = await this.reader.read();
      if (done) throw new Error("connection closed during the SOCKS handshake");
      const next = new Uint8Array(this.#buffer.length + value.length);
      next.set(this.#buffer);
      next.set(value, this.#buffer.length);
      this.#buffer = next;
    }
    const out = this.#buffer.subarray(0, n);
    this.#buffer = this.#buffer.subarray(n);
    return out;
  }

  /** Reads up to and including the blank line that ends an HTTP head. */
  async head(limit: number): Promise<string> {
    let text = "";
    while (!text.endsWith("\r\n\r\n")) {
      if (text.length >= limit) throw new Error("HTTP CONNECT head too long");
      text += String.fromCharCode((await this.read(1))[0]!);
    }
    return text;
  }

  /** Bytes received past the handshake (sent before our reply was read). */
  rest(): Uint8Array {
    return this.#buffer;
  }
}

function reply(code: number): Uint8Array {
  return new Uint8Array([5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
}

const HTTP_STATUS: Record<number, string> = {
  [REPLY_OK]: "200 Connection established",
  [REPLY_FAILURE]: "400 Bad Request",
  [REPLY_NOT_ALLOWED]: "403 Forbidden",
  [REPLY_HOST_UNREACHABLE]: "502 Bad Gateway",
  [REPLY_COMMAND_NOT_SUPPORTED]: "405 Method Not Allowed",
};

function httpReply(code: number): Uint8Array {
  return new TextEncoder().encode(`HTTP/1.1 ${HTTP_STATUS[code] ?? "400 Bad Request"}\r\n\r\n`);
}

function ipv6(bytes: Uint8Array): string {
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return parts.join(":");
}

type Answer = (code: number) => Promise<void>;

/** The rest of a SOCKS5 greeting and its CONNECT request (the version byte was read). */
async function socksRequest(
  reader: ByteReader,
  client: Deno.Conn,
  write: (bytes: Uint8Array) => Promise<void>,
  answer: Answer,
): Promise<{ host: string; port: number }> {
  const [methodCount] = await reader.read(1);
  const methods = await reader.read(methodCount!);
  if (!methods.includes(0)) {
    await write(new Uint8Array([5, 0xff]));
    throw new Error("client offers no method without authentication");
  }
  await client.write(new Uint8Array([5, 0]));
  const [, command, , addressType] = await reader.read(4);
  let host: string;
  if (addressType === 1) host = [...await reader.read(4)].join(".");
  else if (addressType === 3) {
    const [length] = await reader.read(1);
    host = new TextDecoder().decode(await reader.read(length!));
  } else if (addressType === 4) host = ipv6(await reader.read(16));
  else {
    await answer(REPLY_ADDRESS_NOT_SUPPORTED);
    throw new Error(`unknown address type ${addressType}`);
  }
  const portBytes = await reader.read(2);
  const port = (portBytes[0]! << 8) | portBytes[1]!;
  if (command !== 1) {
    await answer(REPLY_COMMAND_NOT_SUPPORTED);
    throw new Error(`SOCKS command ${command} is not supported`);
  }
  return { host, port };
}

/** An HTTP `CONNECT host:port HTTP/1.1` head (its first byte was read). */
async function connectRequest(reader: ByteReader, answer: Answer) {
  const head = "C" + await reader.head(CONNECT_HEAD_LIMIT);
  const match = /^CONNECT (\[[0-9a-fA-F:.]+\]|[^\s:/]+):(\d{1,5}) HTTP\/1\.[01]\r\n/.exec(head);
  if (!match || Number(match[2]) > 65535) {
    await answer(head.startsWith("CONNECT ") ? REPLY_FAILURE : REPLY_COMMAND_NOT_SUPPORTED);
    throw new Error("not an HTTP CONNECT request to host:port");
  }
  return { host: match[1]!.replace(/^\[|\]$/g, ""), port: Number(match[2]) };
}

/**
 * Starts the proxy; `close()` stops it and cuts every open tunnel.
 *
 * Its clients: a session's browser (page loads, every redirect hop, subresources, iframes, workers,
 * WebSockets), a browser-bench browser, ffmpeg's RTMPS pushes, alert webhooks. Clients send host
 * names (remote DNS), so the proxy resolves them, checks every address, and connects to an address
 * it checked: a name cannot be re-pointed between the check and the connection. Refusals are
 * reported.
 *
 * Why here: request interception in Playwright (`route`) does not see redirect hops (they are
 * continued internally) and cannot pin DNS answers.
 */
export function startSocksProxy(options: SocksProxyOptions): SocksProxy {
  const cacheMs = options.cacheMs ?? 5_000;
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const verdicts = new Map<string, { at: number; verdict: ReturnType<UrlPolicy["check"]> }>();

  const check = (host: string) => {
    const now = Date.now();
    const cached = verdicts.get(host);
    if (cached && now - cached.at < cacheMs) return cached.verdict;
    const literal = host.includes(":") ? `[${host}]` : host;
    const verdict = options.policy.check(`http://${literal}/`);
    verdicts.set(host, { at: now, verdict });
    if (verdicts.size > 1000) verdicts.delete(verdicts.keys().next().value!);
    return verdict;
  };

  const closeQuietly = (conn: Deno.Conn) => {
    open.delete(conn);
    try {
      conn.close();
    } catch { /* already closed */ }
  };

  const handle = async (client: Deno.Conn) => {
    open.add(client);
    const reader = new ByteReader(client.readable.getReader());
    const timer = setTimeout(() => closeQuietly(client), handshakeTimeoutMs);
    let remote: Deno.Conn | undefined;
    let answered = false;
    let http = false;
    /** Writes a final answer to the handshake (no failure reply follows it). */
    const write = async (bytes: Uint8Array) => {
      answered = true;
      await client.write(bytes);
    };
    const answer = (code: number) => write(http ? httpReply(code) : reply(code));
    try {
      const [first] = await reader.read(1);
      let host: string;
      let port: number;
      if (first === 5) ({ host, port } = await socksRequest(reader, client, write, answer));
      else if (first === "C".charCodeAt(0)) {
        http = true;
        ({ host, port } = await connectRequest(reader, answer));
      } else throw new Error(`neither SOCKS5 nor HTTP CONNECT (first byte ${first})`);
      const verdict = await check(host.toLowerCase());
      const refusal = verdict.ok
        ? options.refuse?.(verdict.addresses, port) ?? null
        : verdict.reason;
      if (!verdict.ok || refusal) {
        await answer(REPLY_NOT_ALLOWED);
        options.onRefused?.(`${host}:${port}`, refusal!);
        throw new Error("refused by the URL policy");
      }
      for (const address of verdict.addresses) {
        try {
          remote = await Deno.connect({ hostname: address, port });
          break;
        } catch { /* try the next address */ }
      }
      if (!remote) {
        await answer(REPLY_HOST_UNREACHABLE);
        throw new Error(`cannot connect to ${host}:${port}`);
      }
      open.add(remote);
      await answer(REPLY_OK);
      clearTimeout(timer);
      const early = reader.rest();
      if (early.length > 0) await remote.write(early);
      reader.reader.releaseLock();
      const up = client.readable.pipeTo(remote.writable);
      const down = remote.readable.pipeTo(client.writable);
      await Promise.allSettled([up, down]);
    } catch {
      if (!answered) await answer(REPLY_FAILURE).catch(() => {});
    } finally {
      clearTimeout(timer);
      closeQuietly(client);
      if (remote) closeQuietly(remote);
    }
  };

  const accepting = (async () => {
    for await (const conn of listener) handle(conn).catch(() => {});
  })().catch(() => {});

  let closing: Promise<void> | undefined;
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    url: `socks5://127.0.0.1:${port}`,
    httpUrl: `http://127.0.0.1:${port}`,
    close() {
      return closing ??= (async () => {
        try {
          listener.close();
        } catch { /* closed */ }
        for (const conn of [...open]) closeQuietly(conn);
        await accepting;
      })();
    },
  };
}
