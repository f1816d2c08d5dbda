/**
 * The machine's network bytes in resource samples (lib/jobs/sampler.ts): 8 MB sent into a network
 * namespace (veth) are counted; 40 MB over loopback are not (they never leave the machine, and
 * would count twice).
 */
import assert from "node:assert/strict";
import { createSampler } from "../lib/jobs/sampler.ts";
import { createLogger } from "../lib/core/log.ts";

const MB = 1024 * 1024;

async function ip(...args: string[]) {
  const { success, stderr } = await new Deno.Command("ip", { args, stderr: "piped" }).output();
  if (!success) throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(stderr)}`);
}

/** A namespace joined to this one by a veth pair: 10.231.<n>.1 here, .2 in it. */
async function namespace() {
  const tag = crypto.randomUUID().slice(0, 4);
  const n = Math.floor(Math.random() * 250) + 1;
  const ns = `spnb-${tag}`;
  const [here, there] = [`spnbh-${tag}`, `spnbn-${tag}`];
  const close = async () => {
    await ip("netns", "del", ns).catch(() => {});
    await ip("link", "del", here).catch(() => {});
  };
  try {
    await ip("netns", "add", ns);
    await ip("link", "add", here, "type", "veth", "peer", "name", there);
    await ip("link", "set", there, "netns", ns);
    await ip("addr", "add", `10.231.${n}.1/30`, "dev", here);
    await ip("link", "set", here, "up");
    await ip("netns", "exec", ns, "ip", "addr", "add", `10.231.${n}.2/30`, "dev", there);
    await ip("netns", "exec", ns, "ip", "link", "set", there, "up");
  } catch (err) {
    await close();
    throw err;
  }
  return { ns, hostAddress: `10.231.${n}.1`, [Symbol.asyncDispose]: close };
}

/** Serves `size` bytes at `/` on `hostname`. */
function serveBytes(hostname: string, size: number) {
  const body = new Uint8Array(size);
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname, port: 0, signal: ac.signal, onListen() {} },
    () => new Response(body),
  );
  return {
    url: `http://${hostname}:${server.addr.port}/`,
    async [Symbol.asyncDispose]() {
      ac.abort();
      await server.finished;
    },
  };
}

/** The machine's network bytes while `work` runs (samples every 250 ms, then one more). */
async function measure(work: () => Promise<void>) {
  const sampler = createSampler({ log: createLogger({ level: "error" }) });
  const tracking = sampler.track("net", { intervalMs: 250 }, () => {});
  try {
    await work();
    await new Promise((r) => setTimeout(r, 600));
    return tracking.stop();
  } finally {
    sampler.close();
  }
}

Deno.test("machine network bytes count what crosses an interface, not loopback", async (t) => {
  await t.step("8 MB sent to another network namespace are counted", async () => {
    await using net = await namespace();
    await using big = serveBytes(net.hostAddress, 8 * MB);
    const summary = await measure(async () => {
      const curl = await new Deno.Command("ip", {
        args: ["netns", "exec", net.ns, "curl", "-sf", "-o", "/dev/null", big.url],
      }).output();
      assert.ok(curl.success, "curl in the namespace fetched the file");
    });
    assert.ok(summary.net_tx_bytes >= 8 * MB, `sent ${summary.net_tx_bytes} bytes`);
    assert.ok(summary.net_rx_bytes > 0, "the requests and acks came in");
  });

  await t.step("40 MB over loopback are not", async () => {
    await using big = serveBytes("127.0.0.1", 8 * MB);
    const summary = await measure(async () => {
      for (let i = 0; i < 5; i++) await (await fetch(big.url)).arrayBuffer();
    });
    // Loopback would add 40 MB each way; what other processes send meanwhile is far less.
    assert.ok(summary.net_rx_bytes < 8 * MB, `received ${summary.net_rx_bytes} bytes`);
    assert.ok(summary.net_tx_bytes < 8 * MB, `sent ${summary.net_tx_bytes} bytes`);
  });
});
