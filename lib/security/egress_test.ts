/**
 * Egress: a job's hosts checked once and pinned to the addresses checked, through the proxy
 * (SOCKS5 and HTTP CONNECT) and through `fetchStatus`, whatever the name resolves to later.
 */
import assert from "node:assert/strict";
import { fetchStatus, openEgress, RefusedByPolicy } from "./egress.ts";
import { createUrlPolicy } from "./url_policy.ts";

/** A policy whose resolver answers `answers` in turn, then the last one for ever. */
function rebindingPolicy(answers: string[][]) {
  let n = 0;
  return createUrlPolicy({
    allowPrivate: true,
    allowHosts: [],
    denyHosts: [],
    resolve: () => Promise.resolve(answers[Math.min(n++, answers.length - 1)]!),
  });
}

function serveHere() {
  const hosts: string[] = [];
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (r) => {
      hosts.push(r.headers.get("host")!);
      return new Response("ok");
    },
  );
  return {
    port: server.addr.port,
    hosts,
    async [Symbol.asyncDispose]() {
      ac.abort();
      await server.finished;
    },
  };
}

/** Opens a tunnel through the proxy with HTTP CONNECT; answers the proxy's status line. */
async function connectThrough(proxyUrl: string, target: string): Promise<string> {
  const port = Number(new URL(proxyUrl).port);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(
    new TextEncoder().encode(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`),
  );
  const buf = new Uint8Array(256);
  const n = await conn.read(buf);
  conn.close();
  return new TextDecoder().decode(buf.subarray(0, n ?? 0)).split("\r\n")[0]!;
}

Deno.test("a job's proxy connects its hosts to the addresses checked when it opened", async () => {
  await using site = serveHere();
  // Checked at 127.0.0.1, then the name points at the metadata address.
  const policy = rebindingPolicy([["127.0.0.1"], ["169.254.169.254"]]);
  const opened = await openEgress(policy, [{
    field: "params.url",
    url: `http://site.test:${site.port}/`,
  }], { proxy: true });
  assert.ok(opened.ok);
  const { egress } = opened;
  try {
    assert.deepEqual(egress.addresses.get("site.test"), ["127.0.0.1"]);
    const client = Deno.createHttpClient({
      proxy: { url: egress.proxy!.url.replace("socks5:", "socks5h:") },
    });
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`http://site.test:${site.port}/`, { client });
      assert.equal(await res.text(), "ok");
    }
    client.close();
    assert.deepEqual(site.hosts, Array(3).fill(`site.test:${site.port}`));
    assert.equal(
      await connectThrough(egress.proxy!.httpUrl, `site.test:${site.port}`),
      "HTTP/1.1 200 Connection established",
    );
    assert.equal(
      await connectThrough(egress.proxy!.httpUrl, `other.test:${site.port}`),
      "HTTP/1.1 403 Forbidden",
      "a host the job was not approved for",
    );
  } finally {
    await egress.close();
  }
});

Deno.test("a refused URL is named by its field", async () => {
  const opened = await openEgress(rebindingPolicy([["169.254.169.254"]]), [{
    field: "params.url",
    url: "http://meta.test/",
  }], { proxy: false });
  assert.ok(!opened.ok);
  assert.match(opened.reason, /^params\.url: http:\/\/meta\.test\/ is refused: .*metadata/);
});

Deno.test("fetchStatus connects to the address its proxy checked, or is refused", async () => {
  await using site = serveHere();
  const ok = rebindingPolicy([["127.0.0.1"]]);
  assert.equal(await fetchStatus(ok, `http://hook.test:${site.port}/x`, { method: "POST" }), 200);
  assert.deepEqual(site.hosts, [`hook.test:${site.port}`]);
  const refused = rebindingPolicy([["64:ff9b::a9fe:a9fe"]]);
  await assert.rejects(
    fetchStatus(refused, `http://hook.test:${site.port}/x`, { method: "POST" }),
    (err) => err instanceof RefusedByPolicy && /metadata/.test(err.message),
  );
});
