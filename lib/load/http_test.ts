/**
 * The HTTP load generator against a real local server: counting, keep-alive, chunked bodies,
 * connection: close, error kinds, timeouts, the rate cap, request bodies and HEAD; connections go
 * to the given addresses with the URL's name kept in Host and in the TLS handshake.
 */
import assert from "node:assert/strict";
import { encodeRequest, runHttpLoad } from "./http.ts";
import { freePort, startTarget } from "../../tests/helpers.ts";

const base = {
  addresses: ["127.0.0.1"],
  method: "GET",
  headers: {},
  concurrency: 4,
  timeoutMs: 5_000,
  rampMs: 0,
};

Deno.test("requests mode sends exactly that many requests and counts statuses and bytes", async () => {
  await using target = startTarget();
  const r = await runHttpLoad({ ...base, url: new URL(`${target.url}/`), requests: 500 });
  assert.equal(r.requests, 500);
  assert.equal(target.hits(), 500);
  assert.deepEqual(r.status_counts, { "200": 500 });
  assert.equal(r.errors.total, 0);
  assert.ok(r.bytes >= 500 * 1024, "bodies counted");
  assert.ok(r.latency_ms.p50 > 0 && r.latency_ms.p50 <= r.latency_ms.p99);
  assert.ok(r.latency_ms.p99 <= r.latency_ms.max);
});

Deno.test("chunked responses and connection: close are read to the end", async () => {
  await using target = startTarget();
  const chunked = await runHttpLoad({
    ...base,
    url: new URL(`${target.url}/chunked`),
    requests: 200,
  });
  assert.equal(chunked.requests, 200);
  assert.equal(chunked.errors.total, 0);
  const close = await runHttpLoad({ ...base, url: new URL(`${target.url}/close`), requests: 100 });
  assert.equal(close.requests, 100);
  assert.equal(close.errors.total, 0);
});

Deno.test("4xx and 5xx answers are counted by status and as errors by kind", async () => {
  await using target = startTarget();
  const nf = await runHttpLoad({ ...base, url: new URL(`${target.url}/status/404`), requests: 50 });
  assert.deepEqual(nf.status_counts, { "404": 50 });
  assert.equal(nf.errors.http_4xx, 50);
  const se = await runHttpLoad({ ...base, url: new URL(`${target.url}/status/503`), requests: 50 });
  assert.equal(se.errors.http_5xx, 50);
  assert.equal(se.errors.total, 50);
});

Deno.test("a refused connection is a connect error, not a hang", async () => {
  const port = freePort();
  const started = Date.now();
  const r = await runHttpLoad({
    ...base,
    url: new URL(`http://127.0.0.1:${port}/`),
    durationMs: 1_000,
  });
  assert.equal(r.requests, 0);
  assert.ok(r.errors.connect > 0);
  assert.ok(Date.now() - started < 5_000);
});

Deno.test("a request budget ends on refused connections instead of retrying forever", async () => {
  const started = Date.now();
  const r = await runHttpLoad({
    ...base,
    url: new URL(`http://127.0.0.1:${freePort()}/`),
    requests: 20,
  });
  assert.equal(r.requests, 0);
  assert.equal(r.errors.connect, 20);
  assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
});

Deno.test("a request slower than timeout_ms counts as a timeout", async () => {
  await using target = startTarget();
  const r = await runHttpLoad({
    ...base,
    concurrency: 2,
    url: new URL(`${target.url}/slow?ms=2000`),
    timeoutMs: 200,
    durationMs: 1_000,
  });
  assert.ok(r.errors.timeout >= 2, `timeouts: ${r.errors.timeout}`);
  assert.equal(r.requests, 0);
});

Deno.test("the rate cap holds the request rate", async () => {
  await using target = startTarget();
  const r = await runHttpLoad({
    ...base,
    concurrency: 8,
    url: new URL(`${target.url}/`),
    rate: 200,
    durationMs: 2_000,
  });
  assert.ok(r.rps > 150 && r.rps < 230, `rps ${r.rps}`);
});

Deno.test("POST bodies are sent with their length; HEAD answers have no body", async () => {
  await using target = startTarget();
  const post = await runHttpLoad({
    ...base,
    method: "POST",
    body: "hello world",
    url: new URL(`${target.url}/echo`),
    requests: 20,
  });
  assert.equal(post.requests, 20);
  assert.equal(post.errors.total, 0);
  const head = await runHttpLoad({
    ...base,
    method: "HEAD",
    url: new URL(`${target.url}/`),
    requests: 20,
  });
  assert.equal(head.requests, 20);
  assert.equal(head.errors.total, 0);
});

Deno.test("encodeRequest writes the request line, Host and the caller's headers", () => {
  const bytes = encodeRequest(new URL("http://example.test:8080/a?b=1"), "GET", { "X-Test": "1" });
  const text = new TextDecoder().decode(bytes);
  assert.match(text, /^GET \/a\?b=1 HTTP\/1\.1\r\nHost: example\.test:8080\r\n/);
  assert.match(text, /X-Test: 1\r\n/);
  assert.ok(text.endsWith("\r\n\r\n"));
});

Deno.test("connections go to the checked address, the name kept in Host and TLS SNI", async () => {
  const seen: string[] = [];
  const ac = new AbortController();
  const named = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => {
      seen.push(req.headers.get("host")!);
      return new Response("ok");
    },
  );
  // A name nobody resolves: only the given address can be reached.
  const r = await runHttpLoad({
    ...base,
    url: new URL(`http://rebind.invalid:${named.addr.port}/`),
    requests: 5,
  });
  assert.equal(r.requests, 5);
  assert.deepEqual(new Set(seen), new Set([`rebind.invalid:${named.addr.port}`]));
  ac.abort();
  await named.finished;

  // Over TLS: the ClientHello sent to the address names the host (SNI).
  const tls = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const hello = (async () => {
    const conn = await tls.accept();
    const bytes = new Uint8Array(4096);
    const n = await conn.read(bytes);
    conn.close();
    return new TextDecoder("latin1").decode(bytes.subarray(0, n ?? 0));
  })();
  const failed = await runHttpLoad({
    ...base,
    concurrency: 1,
    url: new URL(`https://sni.example.test:${(tls.addr as Deno.NetAddr).port}/`),
    requests: 1,
  });
  assert.equal(failed.requests, 0);
  assert.ok((await hello).includes("sni.example.test"), "the SNI names the URL's host");
  tls.close();
});
