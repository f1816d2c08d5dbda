/**
 * DNS rebinding: in a network namespace whose resolver (dns2) answers the vetted address first and
 * a denied one after, http-bench, browser-bench and an RTMP push reach only the address the URL
 * policy checked.
 */
import assert from "node:assert/strict";
import dns2 from "dns2";
import { api, startServer, waitFor, waitForJob } from "./helpers.ts";

const canMakeNamespaces = Deno.uid() === 0 &&
  (await new Deno.Command("ip", { args: ["netns", "list"], stdout: "null", stderr: "null" })
    .output().then((o) => o.success, () => false));

async function ip(...args: string[]): Promise<void> {
  const out = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/**
 * A namespace joined to this one by a veth pair: the server's side is `inside`, this test
 * listens on `vetted` and `denied`, and `resolvConf` (for the server) names `vetted` as its DNS.
 */
async function rebindNetwork() {
  const tag = crypto.randomUUID().slice(0, 6);
  const subnet = `10.${200 + (parseInt(tag.slice(0, 2), 16) % 50)}.${
    parseInt(tag.slice(2, 4), 16)
  }`;
  const name = `sp-rebind-${tag}`;
  const outer = `vsp${tag}`;
  const inner = `vsq${tag}`;
  const dir = await Deno.makeTempDir({ prefix: "streamplay-rebind-" });
  const net = {
    name,
    resolvConf: `${dir}/resolv.conf`,
    vetted: `${subnet}.1`,
    inside: `${subnet}.2`,
    denied: `${subnet}.3`,
    async [Symbol.asyncDispose]() {
      await ip("netns", "del", name).catch(() => {});
      await ip("link", "del", outer).catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  try {
    await ip("netns", "add", name);
    await ip("link", "add", outer, "type", "veth", "peer", "name", inner);
    await ip("link", "set", inner, "netns", name);
    await ip("addr", "add", `${net.vetted}/24`, "dev", outer);
    await ip("addr", "add", `${net.denied}/24`, "dev", outer);
    await ip("link", "set", outer, "up");
    await ip("-n", name, "addr", "add", `${net.inside}/24`, "dev", inner);
    await ip("-n", name, "link", "set", inner, "up");
    await ip("-n", name, "link", "set", "lo", "up");
    await Deno.writeTextFile(
      net.resolvConf,
      `nameserver ${net.vetted}\noptions timeout:1 attempts:1\n`,
    );
  } catch (err) {
    await net[Symbol.asyncDispose]();
    throw err;
  }
  return net;
}

/** `rebind.test` → `vetted` until `flip()`, then → `denied`; TTL 0, no AAAA records. */
async function startResolver(address: string, vetted: string, denied: string) {
  let flipped = false;
  const { Packet } = dns2;
  const server = dns2.createServer({
    udp: true,
    handle(request, send) {
      const response = Packet.createResponseFromRequest(request);
      const question = request.questions[0];
      if (question?.name === "rebind.test" && question.type === Packet.TYPE.A) {
        response.answers.push(Packet.createResourceFromQuestion(question, {
          ttl: 0,
          address: flipped ? denied : vetted,
        }));
      }
      send(response);
    },
  });
  await server.listen({ udp: { port: 53, address } });
  return {
    flip: () => (flipped = true),
    reset: () => (flipped = false),
    [Symbol.asyncDispose]: () => server.close(),
  };
}

/**
 * The same port on both addresses: a page at `/`, which on `vetted` flips the resolver (other
 * paths, such as the page of the RTMP step's session, neither count nor flip).
 */
function httpTargets(net: { vetted: string; denied: string }, flip: () => void) {
  const hits = { vetted: 0, denied: 0 };
  const ac = new AbortController();
  const page = `<!doctype html><html><head><title>t</title></head><body><h1>hi</h1></body></html>`;
  const serve = (hostname: string, port: number, side: "vetted" | "denied") =>
    Deno.serve({ hostname, port, signal: ac.signal, onListen() {} }, (req) => {
      if (new URL(req.url).pathname !== "/") return new Response(page);
      hits[side]++;
      if (side === "vetted") flip();
      // A new connection, so a new name lookup, for every request.
      return new Response(page, { headers: { "content-type": "text/html", connection: "close" } });
    });
  const vetted = serve(net.vetted, 0, "vetted");
  const denied = serve(net.denied, vetted.addr.port, "denied");
  return {
    port: vetted.addr.port,
    hits,
    reset: () => (hits.vetted = hits.denied = 0),
    async [Symbol.asyncDispose]() {
      ac.abort();
      await Promise.all([vetted.finished, denied.finished]);
    },
  };
}

/**
 * RTMP listeners that count connections; `vetted` keeps the first bytes it was sent (an RTMP
 * handshake, or a TLS ClientHello), flips the resolver and hangs up.
 */
function rtmpTargets(net: { vetted: string; denied: string }, flip: () => void) {
  const hits = { vetted: 0, denied: 0 };
  const firstBytes: string[] = [];
  const vetted = Deno.listen({ hostname: net.vetted, port: 0 });
  const port = (vetted.addr as Deno.NetAddr).port;
  const denied = Deno.listen({ hostname: net.denied, port });
  const accept = async (listener: Deno.Listener, side: "vetted" | "denied") => {
    for await (const conn of listener) {
      hits[side]++;
      if (side === "vetted") {
        const bytes = new Uint8Array(4096);
        const n = await conn.read(bytes).catch(() => null);
        firstBytes.push(new TextDecoder("latin1").decode(bytes.subarray(0, n ?? 0)));
        flip();
      }
      conn.close();
    }
  };
  const loops = [accept(vetted, "vetted"), accept(denied, "denied")].map((p) => p.catch(() => {}));
  return {
    port,
    hits,
    firstBytes,
    reset: () => (hits.vetted = hits.denied = firstBytes.length = 0),
    async [Symbol.asyncDispose]() {
      vetted.close();
      denied.close();
      await Promise.all(loops);
    },
  };
}

const TOKEN = "rebind-admin-token";

Deno.test({
  name: "a name rebound after the URL policy's check is never followed to the denied address",
  ignore: !canMakeNamespaces,
  async fn(t) {
    await using net = await rebindNetwork();
    await using resolver = await startResolver(net.vetted, net.vetted, net.denied);
    await using web = httpTargets(net, resolver.flip);
    await using rtmp = rtmpTargets(net, resolver.flip);
    await using server = await startServer({
      netns: { name: net.name, host: net.inside, resolvConf: net.resolvConf },
      env: {
        STREAMPLAY_TOKENS: `admin:${TOKEN}:admin`,
        STREAMPLAY_DENY_HOSTS: `${net.denied}/32`,
        STREAMPLAY_CONCURRENCY: "2",
      },
    });
    const call = (path: string, init: { method?: string; json?: unknown } = {}) =>
      api(server.url, path, { ...init, token: TOKEN });
    const target = `http://rebind.test:${web.port}/`;

    await t.step("the denied address is refused when the name points there", async () => {
      resolver.flip();
      const res = await call("/api/jobs", {
        method: "POST",
        json: { type: "http-bench", params: { url: target, requests: 1 } },
      });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.match(res.body.error, /deny-list/);
      resolver.reset();
    });

    await t.step("http-bench sends every request to the vetted address", async () => {
      web.reset();
      const res = await call("/api/jobs", {
        method: "POST",
        json: { type: "http-bench", params: { url: target, requests: 10, concurrency: 1 } },
      });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      const job = await waitForJob(server.url, res.body.id, undefined, { token: TOKEN });
      assert.deepEqual(web.hits, { vetted: 10, denied: 0 }, JSON.stringify(job.result?.errors));
      assert.equal(job.status, "succeeded", job.error);
    });

    await t.step("browser-bench pages load only from the vetted address", async () => {
      resolver.reset();
      web.reset();
      const res = await call("/api/jobs", {
        method: "POST",
        json: {
          type: "browser-bench",
          params: {
            url: target,
            // A browser per user and a second level: new browsers, new name lookups.
            levels: [1, 2, 3],
            browser_per_user: true,
            duration_s: 5,
            baseline_s: 0,
            screenshot_every_s: 0,
            scenario: [{ action: "goto" }, { action: "wait", ms: 200 }],
          },
        },
      });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      const job = await waitForJob(server.url, res.body.id, undefined, {
        token: TOKEN,
        timeoutMs: 180_000,
      });
      assert.equal(job.status, "succeeded", job.error);
      assert.ok(web.hits.vetted >= 1, `${JSON.stringify(web.hits)} ${JSON.stringify(job.result)}`);
      assert.equal(web.hits.denied, 0, JSON.stringify(web.hits));
    });

    await t.step("RTMP and RTMPS pushes connect only to the vetted address", async () => {
      const session = await call("/api/sessions", {
        method: "POST",
        json: { url: `http://${net.vetted}:${web.port}/session` },
      });
      assert.equal(session.status, 201, JSON.stringify(session.body));
      for (const scheme of ["rtmp", "rtmps"]) {
        resolver.reset();
        rtmp.reset();
        const res = await call(`/api/sessions/${session.body.id}/stream`, {
          method: "POST",
          json: {
            protocol: "rtmp",
            rtmp_url: `${scheme}://rebind.test:${rtmp.port}/live`,
            rtmp_key: "k1",
          },
        });
        // The vetted side hangs up: ffmpeg fails, is restarted once, and fails again.
        assert.ok(res.status === 201 || res.status === 502, JSON.stringify(res.body));
        await waitFor(() => rtmp.hits.vetted + rtmp.hits.denied >= 2, {
          timeoutMs: 30_000,
          what: `the restarted ffmpeg to connect over ${scheme}`,
        });
        assert.deepEqual(rtmp.hits, { vetted: 2, denied: 0 }, scheme);
        if (scheme === "rtmps") {
          assert.ok(rtmp.firstBytes.every((b) => b.includes("rebind.test")), "TLS SNI kept");
        } else assert.ok(rtmp.firstBytes.every((b) => b.charCodeAt(0) === 3), "RTMP C0");
        const streams = await call("/api/streams");
        for (const s of streams.body.streams ?? []) {
          await call(`/api/streams/${s.stream_id}`, { method: "DELETE" });
        }
      }
      await call(`/api/sessions/${session.body.id}`, { method: "DELETE" });
    });
  },
});
