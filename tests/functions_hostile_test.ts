/**
 * The function sandbox against hostile code, on a real server with a real Redis and a live
 * session: each hostile function ends as a failed job with a clear error, while a neighbouring
 * function (same Worker, its own process), the API and the session carry on unaffected.
 */
import assert from "node:assert/strict";
import { api, startRedis, startServer, uniquePrefix, waitFor, waitForJob } from "./helpers.ts";
import { startPages } from "./session_helpers.ts";
import { listProcesses, processTree, readProcFiles } from "../lib/core/procfs.ts";

/** The DevTools port of a session browser the server started (from Chromium's command line). */
async function devtoolsPort(serverPid: number): Promise<number> {
  return await waitFor(async () => {
    const tree = processTree([serverPid], await listProcesses());
    const files = await readProcFiles(tree.map((p) => `/proc/${p.pid}/cmdline`));
    for (const cmdline of files.values()) {
      const port = /--remote-debugging-port=(\d+)/.exec(cmdline)?.[1];
      if (port) return Number(port);
    }
    return null;
  }, { what: "the session browser's DevTools port" });
}

Deno.test("hostile functions fail with a clear error; the platform, other jobs and sessions carry on", async (t) => {
  await using redis = await startRedis();
  await using pages = startPages();
  await using server = await startServer({
    env: {
      REDIS_URL: redis.url,
      STREAMPLAY_REDIS_PREFIX: uniquePrefix(),
      STREAMPLAY_FUNCTION_MEMORY_MB: "128",
      STREAMPLAY_CONCURRENCY: "8",
    },
  });
  const base = server.url;
  const session = await api(base, "/api/sessions", { method: "POST", json: { url: pages.url } });
  assert.equal(session.status, 201, JSON.stringify(session.body));
  const sessionId = session.body.id;
  await waitFor(
    async () => (await api(base, `/api/sessions/${sessionId}`)).body.state === "active",
    {
      what: "the session to be active",
    },
  );
  const cdpPort = await devtoolsPort(server.process.pid);

  const submit = async (code: string, extra: Record<string, unknown> = {}, browser = false) => {
    const res = await api(base, "/api/jobs", {
      method: "POST",
      json: { type: "function", params: { code, browser }, max_attempts: 1, ...extra },
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.id as string;
  };

  const hostile: Array<
    { name: string; code: string; error: RegExp; timeout_s?: number; browser?: boolean }
  > = [
    {
      name: "reads /etc/passwd",
      code: `export default () => Deno.readTextFile("/etc/passwd")`,
      error: /NotCapable: Requires read access to "\/etc\/passwd"/,
    },
    {
      name: "reads Deno.env",
      code: `export default () => Deno.env.toObject()`,
      error: /NotCapable: Requires env access/,
    },
    {
      name: "spawns a process",
      code: `export default () => new Deno.Command("/bin/sh", { args: ["-c", "id"] }).output()`,
      error: /NotCapable: Requires run access to "\/bin\/sh"/,
    },
    {
      name: "fetches Redis on its port",
      code: `export default () => fetch("http://127.0.0.1:${redis.port}/")`,
      error: new RegExp(`NotCapable: Requires net access to "127\\.0\\.0\\.1:${redis.port}"`),
    },
    {
      name: "fetches the platform's own API",
      code: `export default () => fetch("${base}/api/jobs")`,
      error: new RegExp(`NotCapable: Requires net access to "127\\.0\\.0\\.1:${server.port}"`),
    },
    {
      name: "fetches the cloud metadata address",
      code: `export default () => fetch("http://169.254.169.254/latest/meta-data/")`,
      error: /NotCapable: Requires net access to "169\.254\.169\.254:80"/,
    },
    {
      name: "opens a raw CDP socket to another session's browser",
      code: `export default () => Deno.connect({ hostname: "127.0.0.1", port: ${cdpPort} })`,
      error: new RegExp(`NotCapable: Requires net access to "127\\.0\\.0\\.1:${cdpPort}"`),
    },
    {
      name: "loops forever",
      code: `export default () => { while (true) {} }`,
      timeout_s: 2,
      error: /^timeout$/,
    },
    {
      name: "allocates until memory runs out",
      code: `export default () => { const a = []; while (true) a.push(new Array(1e5).fill(1.5)); }`,
      error: /^the function ran out of memory: it may use 128 MB/,
    },
    {
      name: "allocates buffers until memory runs out",
      code:
        `export default () => { const a = []; while (true) a.push(new Uint8Array(32 << 20).fill(1)); }`,
      error: /^the function ran out of memory: it may use 128 MB/,
    },
    {
      name: "creates Workers in a loop",
      code: `export default () => {
        for (let i = 0; i < 1000; i++) new Worker("data:text/javascript,1", { type: "module" });
      }`,
      error: /functions cannot start Workers/,
    },
    {
      name: "creates node:worker_threads Workers in a loop",
      code: `import { Worker } from "node:worker_threads";
      export default async () => {
        for (let i = 0; i < 1000; i++) {
          new Worker("setInterval(() => {}, 1000)", { eval: true });
          await new Promise((r) => setTimeout(r, 1));
        }
      }`,
      error: /^the function ran out of memory/,
    },
    {
      name: "returns a 100 MB result",
      code: `export default () => "x".repeat(100_000_000)`,
      error: /the result is larger than 4 MB as JSON/,
    },
    {
      name: "writes 1 GB of logs",
      code: `export default () => {
        const line = "y".repeat(1000);
        for (let i = 0; i < 1_000_000; i++) console.log(line);
      }`,
      error: /^the function wrote more than 4 MB of log output/,
    },
    {
      name: "reaches for the browser behind its page",
      code: `export default async ({ page }) => (await page.context()).browser()`,
      browser: true,
      error: /BrowserContext\.browser is not available to functions/,
    },
    {
      name: "opens a raw CDP session on its page",
      code: `export default async ({ page, context }) => context.newCDPSession(page)`,
      browser: true,
      error: /BrowserContext\.newCDPSession is not available to functions/,
    },
    {
      name: "navigates its page to a file",
      code: `export default async ({ page }) => {
        await page.goto("file:///etc/passwd");
        return page.content();
      }`,
      browser: true,
      error: /Page\.goto: only http\(s\), data: and about:blank URLs are allowed/,
    },
    {
      name: "makes its page load a file by itself",
      code: `export default async ({ page }) => {
        await page.evaluate(() => { location.href = "file:///etc/passwd"; });
        await page.waitForTimeout(500);
        const text = await page.content();
        if (text.includes("root:")) return text;
        throw new Error("the page could not load the file");
      }`,
      browser: true,
      error: /^Error: the page could not load the file/,
    },
    {
      name: "screenshots into a file of the host",
      code: `export default async ({ page }) => page.screenshot({ path: "/tmp/stolen.png" })`,
      browser: true,
      error: /option "path": functions have no files/,
    },
    {
      name: "sends its page to the cloud metadata address",
      code:
        `export default async ({ page }) => page.goto("http://169.254.169.254/latest/meta-data/")`,
      browser: true,
      error: /page\.goto: net::ERR_SOCKS_CONNECTION_FAILED/,
    },
  ];

  for (const h of hostile) {
    await t.step(`a function that ${h.name} fails; its neighbours do not`, async () => {
      const neighbour = await submit(`export default async () => {
        await new Promise((r) => setTimeout(r, 300));
        return { fine: true };
      }`);
      const bad = await submit(
        h.code,
        h.timeout_s ? { timeout_s: h.timeout_s } : {},
        h.browser ?? false,
      );
      const [badJob, goodJob] = await Promise.all([
        waitForJob(base, bad, undefined, { timeoutMs: 60_000 }),
        waitForJob(base, neighbour, undefined, { timeoutMs: 60_000 }),
      ]);
      assert.equal(badJob.status, "failed");
      assert.match(badJob.error, h.error);
      assert.equal(goodJob.status, "succeeded", goodJob.error);
      assert.deepEqual(goodJob.result, { fine: true });
      assert.equal((await api(base, "/api/health")).status, 200);
      assert.equal((await api(base, `/api/sessions/${sessionId}`)).body.state, "active");
    });
  }

  await t.step("no function process is left running code or holding memory", async () => {
    const functionProcesses = async () => {
      const tree = processTree([server.process.pid], await listProcesses());
      const cmdlines = await readProcFiles(tree.map((p) => `/proc/${p.pid}/cmdline`));
      return tree.filter((p) =>
        cmdlines.get(`/proc/${p.pid}/cmdline`)?.includes("function_process.ts")
      );
    };
    const before = await functionProcesses();
    await new Promise((r) => setTimeout(r, 1_000));
    const after = await functionProcesses();
    assert.ok(after.length > 0, "the warm function processes are found");
    const busy = after.filter((p) => {
      const then = before.find((b) => b.pid === p.pid);
      return then && p.cpuTicks - then.cpuTicks > 20;
    });
    assert.deepEqual(busy.map((p) => p.pid), [], "function processes still burning CPU");
    for (const p of after) assert.ok(p.rssBytes < 200 * 1024 * 1024, `${p.pid}: ${p.rssBytes} B`);
  });

  await t.step(
    "allow_hosts naming this machine or a metadata address is refused with 400",
    async () => {
      for (
        const [host, error] of [
          [
            "169.254.169.254",
            /allow_hosts\.0: .*169\.254\.169\.254.* is refused|metadata|link-local/,
          ],
          [`127.0.0.1:${redis.port}`, /allow_hosts\.0: is this machine/],
          [`localhost:${cdpPort}`, /allow_hosts\.0: is this machine/],
        ] as const
      ) {
        const res = await api(base, "/api/jobs", {
          method: "POST",
          json: {
            type: "function",
            params: { code: "export default () => 1", allow_hosts: [host] },
          },
        });
        assert.equal(res.status, 400, JSON.stringify(res.body));
        assert.match(res.body.error, error);
      }
    },
  );

  await api(base, `/api/sessions/${sessionId}`, { method: "DELETE" });
  await waitForJob(base, sessionId);
});
