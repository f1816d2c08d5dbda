/**
 * The HTTP load generator behind `http-bench` (in its sandboxed Worker) and the CLI: keep-alive
 * HTTP/1.1 connections over raw TCP or TLS, one request in flight per connection.
 */
import * as hdr from "hdr-histogram-js";

export interface LoadOptions {
  url: URL;
  /** Where `url`'s host was checked to be: connections go to the first that answers. */
  addresses: readonly string[];
  method: string;
  headers: Record<string, string>;
  body?: string | undefined;
  concurrency: number;
  durationMs?: number | undefined;
  requests?: number | undefined;
  timeoutMs: number;
  /** Cap on requests per second across all connections. */
  rate?: number | undefined;
  rampMs: number;
  signal?: AbortSignal;
  /** Called once per second with the figures of the last interval. */
  onTick?: (tick: LoadTick) => void;
}

export interface LatencySummary {
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
  min: number;
  stdev: number;
}

export interface LoadTick {
  elapsed_s: number;
  requests: number;
  errors: number;
  rps: number;
  active_connections: number;
  latency_ms: Pick<LatencySummary, "p50" | "p95" | "p99" | "max">;
}

export type ErrorKind =
  | "connect"
  | "timeout"
  | "reset"
  | "parse"
  | "http_4xx"
  | "http_5xx";

export interface LoadResult {
  url: string;
  method: string;
  concurrency: number;
  duration_s: number;
  requests: number;
  rps: number;
  bytes: number;
  throughput_bytes_per_s: number;
  errors: Record<ErrorKind, number> & { total: number };
  status_counts: Record<string, number>;
  latency_ms: LatencySummary;
  /** With a `rate`: requests sent more than one period after their planned time. */
  late_requests: number;
  /** Bytes of the requests sent (what the target received). */
  request_bytes: number;
}

const CR = 13;
const LF = 10;
const latin1 = new TextDecoder("latin1");

function newHistogram() {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

type Histogram = ReturnType<typeof newHistogram>;

function summarize(h: Histogram): LatencySummary {
  const ms = (us: number) => Math.round(us) / 1000;
  if (h.totalCount === 0) {
    return { p50: 0, p90: 0, p95: 0, p99: 0, max: 0, mean: 0, min: 0, stdev: 0 };
  }
  return {
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p95: ms(h.getValueAtPercentile(95)),
    p99: ms(h.getValueAtPercentile(99)),
    max: ms(h.maxValue),
    mean: ms(h.mean),
    min: ms(h.minNonZeroValue),
    stdev: ms(h.stdDeviation),
  };
}

export function encodeRequest(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body?: string,
): Uint8Array {
  const bodyBytes = body === undefined ? undefined : new TextEncoder().encode(body);
  const lines = [`${method} ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`];
  const given = new Set(Object.keys(headers).map((k) => k.toLowerCase()));
  if (!given.has("user-agent")) lines.push("User-Agent: streamplay-bench/1");
  if (!given.has("accept")) lines.push("Accept: */*");
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() !== "host") lines.push(`${k}: ${v}`);
  }
  if (bodyBytes) lines.push(`Content-Length: ${bodyBytes.length}`);
  const head = new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n");
  if (!bodyBytes) return head;
  const out = new Uint8Array(head.length + bodyBytes.length);
  out.set(head);
  out.set(bodyBytes, head.length);
  return out;
}

/** Parse state of one response on one connection. */
class ResponseParser {
  buf = new Uint8Array(64 * 1024);
  len = 0;
  private scanFrom = 0;
  // -1: reading headers; 0: body by length; 1: chunked; 2: until close
  private mode = -1;
  private remaining = 0;
  private chunkState = 0; // 0: size line, 1: data, 2: CRLF after data, 3: trailers
  status = 0;
  keepAlive = true;
  bytes = 0;
  noBody = false;

  reset() {
    this.mode = -1;
    this.scanFrom = 0;
    this.status = 0;
    this.keepAlive = true;
    this.bytes = 0;
  }

  /** Room to read into. */
  space(): Uint8Array {
    if (this.len === this.buf.length) {
      const bigger = new Uint8Array(this.buf.length * 2);
      bigger.set(this.buf);
      this.buf = bigger;
    }
    return this.buf.subarray(this.len);
  }

  /** Feeds `n` new bytes; returns true when a whole response has arrived. */
  feed(n: number): boolean {
    this.len += n;
    this.bytes += n;
    if (this.mode === -1 && !this.parseHead()) return false;
    return this.parseBody();
  }

  /** The connection closed: completes a read-until-close body. */
  end(): boolean {
    return this.mode === 2;
  }

  private parseHead(): boolean {
    const b = this.buf;
    let end = -1;
    for (let i = Math.max(0, this.scanFrom - 3); i + 3 < this.len; i++) {
      if (b[i] === CR && b[i + 1] === LF && b[i + 2] === CR && b[i + 3] === LF) {
        end = i + 4;
        break;
      }
    }
    if (end < 0) {
      this.scanFrom = this.len;
      if (this.len > 1024 * 1024) throw new ParseError("response headers exceed 1 MB");
      return false;
    }
    const head = latin1.decode(b.subarray(0, end));
    if (!head.startsWith("HTTP/1.")) throw new ParseError("not an HTTP/1.x response");
    this.status = Number(head.slice(9, 12));
    if (!(this.status >= 100 && this.status < 600)) throw new ParseError("bad status line");
    let length = -1;
    let chunked = false;
    this.keepAlive = head.charCodeAt(7) === 49; // HTTP/1.1 keeps alive unless told otherwise
    let i = head.indexOf("\r\n") + 2;
    while (i < end - 2) {
      const eol = head.indexOf("\r\n", i);
      const colon = head.indexOf(":", i);
      if (colon > i && colon < eol) {
        const name = head.slice(i, colon).toLowerCase();
        if (name === "content-length") length = Number(head.slice(colon + 1, eol).trim());
        else if (name === "transfer-encoding") {
          chunked = head.slice(colon + 1, eol).toLowerCase().includes("chunked");
        } else if (name === "connection") {
          const v = head.slice(colon + 1, eol).trim().toLowerCase();
          if (v === "close") this.keepAlive = false;
          else if (v === "keep-alive") this.keepAlive = true;
        }
      }
      i = eol + 2;
    }
    this.consume(end);
    if (this.noBody || this.status === 204 || this.status === 304 || this.status < 200) {
      this.mode = 0;
      this.remaining = 0;
    } else if (chunked) {
      this.mode = 1;
      this.chunkState = 0;
    } else if (length >= 0) {
      this.mode = 0;
      this.remaining = length;
    } else {
      this.mode = 2;
      this.keepAlive = false;
    }
    return true;
  }

  private parseBody(): boolean {
    if (this.mode === 0) {
      const take = Math.min(this.remaining, this.len);
      this.remaining -= take;
      this.consume(take);
      return this.remaining === 0;
    }
    if (this.mode === 2) {
      this.len = 0;
      return false;
    }
    // chunked
    while (true) {
      if (this.chunkState === 1) {
        const take = Math.min(this.remaining, this.len);
        this.remaining -= take;
        this.consume(take);
        if (this.remaining > 0) return false;
        this.chunkState = 2;
      }
      const eol = this.indexOfCrlf();
      if (eol < 0) return false;
      if (this.chunkState === 0) {
        const line = latin1.decode(this.buf.subarray(0, eol));
        const size = parseInt(line.split(";")[0]!.trim(), 16);
        if (!Number.isFinite(size) || size < 0) throw new ParseError("bad chunk size");
        this.consume(eol + 2);
        if (size === 0) this.chunkState = 3;
        else {
          this.remaining = size;
          this.chunkState = 1;
        }
      } else if (this.chunkState === 2) {
        this.consume(eol + 2);
        this.chunkState = 0;
      } else {
        // trailers end with an empty line
        this.consume(eol + 2);
        if (eol === 0) return true;
      }
    }
  }

  private indexOfCrlf(): number {
    const b = this.buf;
    for (let i = 0; i + 1 < this.len; i++) if (b[i] === CR && b[i + 1] === LF) return i;
    return -1;
  }

  private consume(n: number) {
    if (n >= this.len) {
      this.len = 0;
      return;
    }
    this.buf.copyWithin(0, n, this.len);
    this.len -= n;
  }
}

class ParseError extends Error {}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Requests are pre-encoded once, responses parsed in place (Content-Length, chunked, or until
 * close) without copying bodies; latency goes into an HdrHistogram (microsecond resolution, 3
 * significant digits). It connects to the checked `addresses`, never to a new lookup of the name
 * (the Worker's `net` is limited to them and the port); the name stays in the `Host` header and,
 * over TLS, in the SNI and the certificate check.
 */
export async function runHttpLoad(options: LoadOptions): Promise<LoadResult> {
  const { url } = options;
  const https = url.protocol === "https:";
  const hostname = url.hostname.replace(/^\[|\]$/g, "");
  const port = Number(url.port || (https ? 443 : 80));
  if (options.addresses.length === 0) throw new Error(`no address to connect to for ${url.host}`);
  const request = encodeRequest(url, options.method, options.headers, options.body);
  const isHead = options.method === "HEAD";

  const total = newHistogram();
  let interval = newHistogram();
  const errors: Record<ErrorKind, number> = {
    connect: 0,
    timeout: 0,
    reset: 0,
    parse: 0,
    http_4xx: 0,
    http_5xx: 0,
  };
  const statusCounts = new Map<number, number>();
  let requests = 0;
  let late = 0;
  let issued = 0;
  let bytes = 0;
  let lastTickRequests = 0;
  let activeConns = 0;

  const start = performance.now();
  const deadline = options.durationMs !== undefined ? start + options.durationMs : Infinity;
  const maxRequests = options.requests ?? Infinity;
  let stopped = false;
  const stop = () => (stopped = true);
  options.signal?.addEventListener("abort", stop);

  const ratePeriod = options.rate ? 1000 / options.rate : 0;
  let nextSlot = start;

  interface Conn {
    conn: Deno.Conn | null;
    sentAt: number;
    busy: boolean;
  }
  const conns: Conn[] = [];

  const watchdog = setInterval(() => {
    const now = performance.now();
    if (now >= deadline) stop();
    for (const c of conns) {
      if (c.busy && c.conn && now - c.sentAt > options.timeoutMs) {
        errors.timeout++;
        c.busy = false;
        try {
          c.conn.close();
        } catch { /* closed */ }
        c.conn = null;
      }
    }
  }, Math.max(10, Math.min(100, options.timeoutMs / 4)));

  const ticker = setInterval(() => {
    const now = performance.now();
    const done = requests - lastTickRequests;
    lastTickRequests = requests;
    const errTotal = Object.values(errors).reduce((a, b) => a + b, 0);
    const snap = interval;
    interval = newHistogram();
    options.onTick?.({
      elapsed_s: Math.round((now - start) / 100) / 10,
      requests,
      errors: errTotal,
      rps: done,
      active_connections: activeConns,
      latency_ms: {
        p50: snap.totalCount ? snap.getValueAtPercentile(50) / 1000 : 0,
        p95: snap.totalCount ? snap.getValueAtPercentile(95) / 1000 : 0,
        p99: snap.totalCount ? snap.getValueAtPercentile(99) / 1000 : 0,
        max: snap.totalCount ? snap.maxValue / 1000 : 0,
      },
    });
  }, 1000);

  const connect = async (): Promise<Deno.Conn> => {
    let conn: Deno.TcpConn | undefined;
    let failure: unknown;
    for (const address of options.addresses) {
      try {
        conn = await Deno.connect({ hostname: address, port });
        break;
      } catch (err) {
        failure = err;
      }
    }
    if (!conn) throw failure;
    conn.setNoDelay(true);
    // TLS over the checked address, with the URL's name for SNI and the certificate check.
    return https ? await Deno.startTls(conn, { hostname }) : conn;
  };

  const worker = async (index: number) => {
    if (options.rampMs > 0) {
      await sleep((index / options.concurrency) * options.rampMs);
    }
    const state: Conn = { conn: null, sentAt: 0, busy: false };
    conns.push(state);
    const parser = new ResponseParser();
    parser.noBody = isHead;
    let backoff = 0;
    while (!stopped && issued < maxRequests && performance.now() < deadline) {
      if (!state.conn) {
        try {
          state.conn = await connect();
          activeConns++;
          backoff = 0;
        } catch {
          errors.connect++;
          // A refused connection is an attempt: a request budget ends even if none connects.
          issued++;
          backoff = Math.min(1000, backoff ? backoff * 2 : 10);
          await sleep(backoff);
          continue;
        }
      }
      const conn: Deno.Conn = state.conn;
      issued++;
      let sentAt = performance.now();
      if (ratePeriod) {
        // Behind schedule by more than a period: the asked rate is not being reached.
        if (sentAt - nextSlot > ratePeriod) late++;
        const slot = Math.max(sentAt, nextSlot);
        nextSlot = slot + ratePeriod;
        if (slot > sentAt) await sleep(slot - sentAt);
        if (stopped) break;
        // Latency counts from the planned send time, so a slow server cannot hide its queueing.
        sentAt = slot;
      }
      state.sentAt = performance.now();
      state.busy = true;
      parser.reset();
      let complete = false;
      try {
        let written = await conn.write(request);
        while (written < request.length) written += await conn.write(request.subarray(written));
        while (true) {
          const n = await conn.read(parser.space());
          if (n === null) {
            complete = parser.end();
            if (!complete) throw new Deno.errors.ConnectionReset("closed mid-response");
            break;
          }
          if (parser.feed(n)) {
            complete = true;
            break;
          }
        }
      } catch (err) {
        if (state.busy) {
          // The watchdog clears `busy` when it closes a connection for a timeout.
          if (err instanceof ParseError) errors.parse++;
          else errors.reset++;
        }
        state.busy = false;
        activeConns--;
        try {
          conn.close();
        } catch { /* closed */ }
        state.conn = null;
        continue;
      }
      state.busy = false;
      if (complete) {
        const us = Math.max(1, Math.round((performance.now() - sentAt) * 1000));
        total.recordValue(us);
        interval.recordValue(us);
        requests++;
        bytes += parser.bytes;
        const s = parser.status;
        statusCounts.set(s, (statusCounts.get(s) ?? 0) + 1);
        if (s >= 500) errors.http_5xx++;
        else if (s >= 400) errors.http_4xx++;
      }
      if (!parser.keepAlive) {
        activeConns--;
        try {
          conn.close();
        } catch { /* closed */ }
        state.conn = null;
      }
    }
    if (state.conn) {
      activeConns--;
      try {
        state.conn.close();
      } catch { /* closed */ }
      state.conn = null;
    }
  };

  try {
    await Promise.all(Array.from({ length: options.concurrency }, (_, i) => worker(i)));
  } finally {
    clearInterval(watchdog);
    clearInterval(ticker);
    options.signal?.removeEventListener("abort", stop);
  }
  const elapsed = (performance.now() - start) / 1000;
  const errTotal = Object.values(errors).reduce((a, b) => a + b, 0);
  return {
    url: url.href,
    method: options.method,
    concurrency: options.concurrency,
    duration_s: Math.round(elapsed * 1000) / 1000,
    requests,
    rps: Math.round((requests / elapsed) * 10) / 10,
    bytes,
    throughput_bytes_per_s: Math.round(bytes / elapsed),
    errors: { ...errors, total: errTotal },
    status_counts: Object.fromEntries([...statusCounts].map(([k, v]) => [String(k), v])),
    latency_ms: summarize(total),
    late_requests: late,
    request_bytes: requests * request.length,
  };
}
