import assert from "node:assert/strict";
import { createUrlPolicy } from "../security/url_policy.ts";
import { sessionProxy, SpareProxies } from "./session_proxy.ts";

const policy = createUrlPolicy({ allowPrivate: true, allowHosts: [], denyHosts: [] });

/** The status line an HTTP CONNECT through `proxy` gets for 127.0.0.1:`port`; null if refused. */
async function connectThrough(proxyHttpUrl: string, port: number): Promise<string | null> {
  let conn: Deno.Conn;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(proxyHttpUrl).port) });
  } catch {
    return null;
  }
  try {
    await conn.write(new TextEncoder().encode(`CONNECT 127.0.0.1:${port} HTTP/1.1\r\n\r\n`));
    const buf = new Uint8Array(256);
    const n = await conn.read(buf);
    return n === null ? null : new TextDecoder().decode(buf.subarray(0, n)).split("\r\n")[0]!;
  } finally {
    conn.close();
  }
}

function listen() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const c of listener) c.close();
  })().catch(() => {});
  return { port: (listener.addr as Deno.NetAddr).port, close: () => listener.close() };
}

Deno.test("a session proxy refuses everything until a session owns it", async () => {
  const target = listen();
  const devtools = listen();
  const proxy = sessionProxy(policy);
  try {
    assert.match((await connectThrough(proxy.httpUrl, target.port))!, / 403 | 405 | 502 /);
    const refused: string[] = [];
    proxy.own({
      debugPort: () => devtools.port,
      refused: (_target, reason) => refused.push(reason),
    });
    assert.match((await connectThrough(proxy.httpUrl, target.port))!, / 200 /);
    assert.doesNotMatch((await connectThrough(proxy.httpUrl, devtools.port))!, / 200 /);
    assert.deepEqual(refused, ["the browser's own DevTools port is not for pages"]);
  } finally {
    await proxy.close();
    target.close();
    devtools.close();
  }
});

Deno.test("a spare proxy is claimed once, and closed when nobody claims it in time", async () => {
  const spares = new SpareProxies(policy, 200);
  try {
    const url = spares.make();
    const claimed = spares.claim(url);
    assert.ok(claimed);
    assert.equal(spares.claim(url), null, "a second claim gets nothing");
    await claimed.close();

    const stale = spares.make();
    const http = stale.replace("socks5:", "http:");
    assert.notEqual(await connectThrough(http, 9), null, "open while it waits");
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(spares.claim(stale), null);
    assert.equal(await connectThrough(http, 9), null, "closed once its time is up");
  } finally {
    await spares.close();
  }
});
