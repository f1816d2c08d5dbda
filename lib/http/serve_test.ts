/**
 * The guarded listener in this process: requests and WebSockets pass through with the client's
 * address; heads, bodies and idle connections are bounded; one address gets its cap and a 429;
 * and the framing that drives those deadlines follows lengths, chunks and upgrades.
 */
import assert from "node:assert/strict";
import { MAX_HEAD_BYTES, RequestFramer, serveGuarded } from "./serve.ts";
import { createLogger } from "../core/log.ts";

const log = createLogger({ level: "error" });
const encoder = new TextEncoder();
const feed = (f: RequestFramer, text: string) => f.feed(encoder.encode(text), 1);

Deno.test("the framer follows heads, Content-Length and chunked bodies, and upgrades", () => {
  const f = new RequestFramer(0);
  assert.equal(f.startedAt, 0, "the first head is due from accept");
  feed(f, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab");
  assert.deepEqual([f.phase, f.requests, f.startedAt], ["length", 1, 1]);
  feed(f, "cde");
  assert.deepEqual([f.phase, f.startedAt], ["head", null], "between requests");
  feed(f, "POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n");
  assert.equal(f.phase, "chunk-size");
  feed(f, "0\r\nTrailer: 1\r\n\r\n");
  assert.deepEqual([f.phase, f.requests], ["head", 2]);
  feed(f, "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
  assert.deepEqual([f.phase, f.upgradeAsked, f.requests], ["head", true, 3]);
  const big = new RequestFramer(0);
  feed(big, "GET / HTTP/1.1\r\nX: " + "a".repeat(MAX_HEAD_BYTES));
  assert.ok(big.tooLarge);
});

Deno.test("requests, bodies and WebSockets pass with the client's address", async () => {
  const server = await serveGuarded({
    hostname: "127.0.0.1",
    port: 0,
    log,
    limits: {
      headerTimeoutMs: 10_000,
      bodyTimeoutMs: 10_000,
      idleTimeoutMs: 10_000,
      maxConnections: 100,
      maxConnectionsPerAddress: 100,
    },
  }, async (req, info) => {
    if (req.headers.get("upgrade") === "websocket") {
      const { socket, response } = Deno.upgradeWebSocket(req);
      socket.onmessage = (e) => socket.send(`echo ${e.data}`);
      return response;
    }
    return Response.json({ from: info.remoteAddr.hostname, body: await req.text() });
  });
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    const res = await fetch(`${base}/x`, { method: "POST", body: "hello" });
    assert.deepEqual(await res.json(), { from: "127.0.0.1", body: "hello" });
    const ws = new WebSocket(`ws://127.0.0.1:${server.addr.port}/ws`);
    const echoed = await new Promise((resolve, reject) => {
      ws.onopen = () => ws.send("hi");
      ws.onmessage = (e) => resolve(e.data);
      ws.onerror = () => reject(new Error("WebSocket failed"));
    });
    assert.equal(echoed, "echo hi");
    const closed = new Promise((r) => ws.onclose = r);
    ws.close();
    await closed;
  } finally {
    await server.shutdown();
  }
});

Deno.test("a half-open head, a short body and an idle connection are closed; one address is capped", async () => {
  const server = await serveGuarded({
    hostname: "127.0.0.1",
    port: 0,
    log,
    limits: {
      headerTimeoutMs: 800,
      bodyTimeoutMs: 800,
      idleTimeoutMs: 800,
      maxConnections: 100,
      maxConnectionsPerAddress: 3,
    },
  }, async (req) => new Response(await req.text().catch(() => "")));
  const port = server.addr.port;
  /** Sends `text` and answers the seconds until the server closes, and what it said. */
  const hold = async (text: string) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const t0 = performance.now();
    if (text) await conn.write(encoder.encode(text));
    let answer = "";
    const buf = new Uint8Array(1024);
    try {
      for (let n; (n = await conn.read(buf)) !== null;) {
        answer += new TextDecoder().decode(buf.subarray(0, n));
      }
    } catch { /* reset */ }
    conn.close();
    return { seconds: (performance.now() - t0) / 1000, answer };
  };
  try {
    const ends = await Promise.all([
      hold("GET / HTTP/1.1\r\nHost: x\r\nX-a: "),
      hold("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"),
      hold("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
      // A fourth at once from the same address: over its cap.
      new Promise((r) => setTimeout(r, 200)).then(() => hold("")),
    ]);
    for (const e of ends.slice(0, 3)) assert.ok(e.seconds < 3, `held ${e.seconds} s`);
    assert.match(ends[2]!.answer, /^HTTP\/1.1 200/, "the complete request was answered");
    assert.match(ends[3]!.answer, /^HTTP\/1.1 429/);
    const stats = server.stats();
    assert.deepEqual(
      [stats.closed.header, stats.closed.body, stats.closed.idle, stats.refused.address],
      [1, 1, 1, 1],
    );
  } finally {
    await server.shutdown();
  }
});
