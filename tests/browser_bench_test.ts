/**
 * `browser-bench` on a real server: web vitals, errors with screenshots, artifacts, samples, a
 * sweep's sizing report, the URL policy inside Chromium, bad params refused naming the field, and
 * no browser left after a job ends or is cancelled.
 */
import assert from "node:assert/strict";
import { api, startServer, waitFor, waitForJob } from "./helpers.ts";
import { listProcesses, processTree } from "../lib/core/procfs.ts";

/** The site under test: a form page, a second page, a page with a console error, a leak page. */
function startSite() {
  const secretHits: string[] = [];
  const ac = new AbortController();
  const html = (body: string) =>
    new Response(
      `<!doctype html><html><head><meta charset="utf-8"><title>t</title></head>` +
        `<body>${body}</body></html>`,
      { headers: { "content-type": "text/html" } },
    );
  const server: Deno.HttpServer<Deno.NetAddr> = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req): Response => {
      const url = new URL(req.url);
      const port: number = server.addr.port;
      switch (url.pathname) {
        case "/":
          return html(
            `<h1>Home</h1><p>${"Some text. ".repeat(40)}</p><input id="q">` +
              `<a id="next" href="/second">next</a>`,
          );
        case "/second":
          return html(`<h1>Second</h1><p>${"More text. ".repeat(40)}</p>`);
        case "/broken":
          return html(`<h1>Broken</h1><script>console.error("deliberate console error")</script>`);
        case "/leak":
          return html(
            `<h1>Leak</h1><img src="http://localhost:${port}/secret-1.png">` +
              `<img src="/redirect">`,
          );
        case "/redirect":
          return new Response(null, {
            status: 302,
            headers: { location: `http://localhost:${port}/secret-2.png` },
          });
        default:
          if (url.pathname.startsWith("/secret")) secretHits.push(url.pathname);
          return new Response("not found", { status: 404 });
      }
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    secretHits,
    async [Symbol.asyncDispose]() {
      ac.abort();
      await server.finished;
    },
  };
}

/** Chromium processes under the server process (its browsers and their children). */
async function browsersOf(pid: number): Promise<number> {
  const tree = processTree([pid], await listProcesses());
  return tree.filter((p) => p.name.startsWith("chrom")).length;
}

Deno.test("browser-bench: vitals, errors with screenshots, artifacts, samples, sizing", async (t) => {
  await using site = startSite();
  await using server = await startServer({ env: { STREAMPLAY_CONCURRENCY: "2" } });
  const base = server.url;
  const serverPid = server.process.pid;
  const childrenBefore = await browsersOf(serverPid);

  await t.step(
    "a run against the test pages measures vitals and keeps error screenshots",
    async () => {
      const created = await api(base, "/api/jobs", {
        method: "POST",
        json: {
          type: "browser-bench",
          params: {
            url: `${site.url}/`,
            concurrency: 2,
            duration_s: 8,
            baseline_s: 1,
            screenshot_every_s: 1,
            scenario: [
              { action: "goto" },
              { action: "type", selector: "#q", text: "hello" },
              { action: "click", selector: "#next" },
              { action: "wait", selector: "h1" },
              { action: "goto", url: "/broken" },
              { action: "wait", ms: 300 },
            ],
          },
        },
      });
      assert.equal(created.status, 202, JSON.stringify(created.body));
      const id = created.body.id;
      const done = await waitForJob(base, id, undefined, { timeoutMs: 90_000 });
      assert.equal(done.status, "succeeded", done.error);
      const r = done.result;
      const level = r.levels[0];
      assert.equal(level.users_started, 2, JSON.stringify(r.error_log));
      assert.ok(level.iterations >= 1, `iterations ${level.iterations}`);
      const home = level.pages[`${site.url}/`];
      assert.ok(home, `home page figures in ${Object.keys(level.pages)}`);
      for (const k of ["lcp_ms", "fcp_ms", "ttfb_ms", "load_ms", "js_heap_bytes", "requests"]) {
        assert.ok(home[k]?.count >= 1 && home[k].p50 >= 0, `${k} measured`);
      }
      assert.ok(level.pages[`${site.url}/second`]?.visits >= 1, "the page a click opened counts");
      assert.ok(level.inp_ms?.count >= 1, "INP reported after typing and clicking");

      assert.ok(r.errors.console >= 1, `console errors ${JSON.stringify(r.errors)}`);
      const consoleError = r.error_log.find((e: { kind: string; message: string }) =>
        e.kind === "console" && e.message.includes("deliberate")
      );
      assert.ok(consoleError, JSON.stringify(r.error_log));
      assert.match(consoleError.message, /deliberate console error/);
      assert.match(consoleError.url, /\/broken$/);
      assert.match(consoleError.screenshot, /^errors\/\d{4}-console-u\d\.jpg$/);

      const { body } = await api(base, `/api/jobs/${id}/artifacts`);
      const paths = body.artifacts.map((a: { path: string }) => a.path);
      assert.ok(paths.includes(consoleError.screenshot), "the error screenshot is listed");
      assert.ok(paths.some((p: string) => p.startsWith("screenshots/")), "periodic screenshots");
      const shot = await fetch(`${base}/api/jobs/${id}/artifacts/${consoleError.screenshot}`);
      assert.equal(shot.headers.get("content-type"), "image/jpeg");
      const bytes = new Uint8Array(await shot.arrayBuffer());
      assert.deepEqual([...bytes.slice(0, 2)], [0xff, 0xd8], "a JPEG");
      const onDisk = await Deno.stat(
        `${server.dataDir}/artifacts/${id}/${consoleError.screenshot}`,
      );
      assert.equal(onDisk.size, bytes.length);
      assert.equal((await api(base, `/api/jobs/${id}/artifacts/errors/..%2Fx.jpg`)).status, 400);

      const samples = await waitFor(async () => {
        const s = (await api(base, `/api/jobs/${id}/samples`)).body.samples;
        return s.length >= 5 ? s : null;
      }, { what: "stored samples" });
      const withBrowsers = samples.filter((s: { proc_mem_bytes?: number }) => s.proc_mem_bytes);
      assert.ok(withBrowsers.length >= 2, "the browsers' memory is sampled");
      assert.ok(withBrowsers.every((s: { proc_mem_kind: string }) => s.proc_mem_kind === "pss"));
      assert.ok(samples.some((s: { disk_bytes?: number }) => (s.disk_bytes ?? 0) > 0));
      assert.ok(samples.every((s: { cpu_cores: number }) => s.cpu_cores >= 0));

      assert.equal(r.sizing.levels.length, 1);
      assert.equal(typeof r.sizing.verdict, "string");
      assert.ok(r.resources.proc_mem_max_bytes > 50 * 1024 * 1024, "Chromium's PSS counted");
    },
  );

  await t.step("the browser reaches only hosts the URL policy approved", async () => {
    const created = await api(base, "/api/jobs", {
      method: "POST",
      json: {
        type: "browser-bench",
        params: {
          url: `${site.url}/leak`,
          // Long enough for the first load on a busy machine: every request crosses the proxy.
          duration_s: 10,
          baseline_s: 0,
          screenshot_every_s: 0,
          scenario: [{ action: "goto" }, { action: "wait", ms: 500 }],
        },
      },
    });
    assert.equal(created.status, 202);
    const done = await waitForJob(base, created.body.id, undefined, { timeoutMs: 60_000 });
    assert.equal(done.status, "succeeded", done.error);
    assert.ok(done.result.errors.blocked >= 2, JSON.stringify(done.result.errors));
    assert.deepEqual(site.secretHits, [], "no request reached a host that was not approved");
  });

  await t.step(
    "a sweep reports each level's status, the browsers and platform apart, models, verdict",
    async () => {
      const created = await api(base, "/api/jobs", {
        method: "POST",
        json: {
          type: "browser-bench",
          params: {
            url: `${site.url}/`,
            levels: [1, 2, 3],
            duration_s: 4,
            baseline_s: 1,
            screenshot_every_s: 1,
            targets: [10, 100],
          },
        },
      });
      assert.equal(created.status, 202);
      const done = await waitForJob(base, created.body.id, undefined, { timeoutMs: 120_000 });
      assert.equal(done.status, "succeeded", done.error);
      const s = done.result.sizing;
      assert.equal(s.basis, "process", "browsers plus the platform process by default");
      assert.deepEqual(s.levels.map((l: { concurrency: number }) => l.concurrency), [1, 2, 3]);
      for (const l of s.levels) {
        assert.ok(l.browsers.mem_bytes > 20 * 1024 * 1024, "the browsers' PSS");
        assert.ok(l.platform.mem_bytes > 20 * 1024 * 1024, "the platform process's PSS");
        // Each is a mean of the same samples, rounded to the byte.
        assert.ok(Math.abs(l.cost.mem_bytes - l.browsers.mem_bytes - l.platform.mem_bytes) <= 2);
        assert.equal(typeof l.machine.cpu_percent, "number");
        assert.equal(typeof l.timings["LCP p75"], "number");
        assert.ok(["healthy", "saturated", "generator_bound"].includes(l.status));
      }
      assert.equal(s.validated, false, "3 levels cannot be validated");
      if (s.highest_healthy_level === null) {
        assert.match(s.verdict, /^No projection: no level was healthy/);
      } else {
        assert.equal(s.models.cpu.validation, null);
        assert.ok(s.warnings.some((w: string) => /^Unvalidated: \d healthy level/.test(w)));
        assert.deepEqual(s.projections.map((p: { target: number }) => p.target), [10, 100]);
        for (const p of s.projections) {
          assert.ok(p.required_disk_bytes >= 20 * 1024 ** 3, "baseline storage included");
          assert.ok(p.interval.cores[0] <= p.required_cores);
        }
        assert.match(s.verdict, /^About \d+.* for 100 users .*unvalidated/);
      }
      assert.ok(s.formulas.required_cores.includes("safety_factor"));
    },
  );

  await t.step("no browser is left running after the jobs", async () => {
    await waitFor(async () => (await browsersOf(serverPid)) <= childrenBefore, {
      what: "the job browsers to exit",
      timeoutMs: 10_000,
    });
  });

  await t.step("cancelling a running job kills its browsers", async () => {
    const created = await api(base, "/api/jobs", {
      method: "POST",
      json: {
        type: "browser-bench",
        params: { url: `${site.url}/`, concurrency: 2, duration_s: 120, baseline_s: 0 },
      },
    });
    const id = created.body.id;
    await waitFor(async () => {
      const e = (await api(base, `/api/jobs/${id}/events?type=progress`)).body.events;
      return e.some((x: { browser?: { users_active: number } }) => x.browser?.users_active === 2);
    }, { what: "two users running", timeoutMs: 30_000 });
    assert.ok((await browsersOf(serverPid)) > childrenBefore, "browsers run under the server");
    assert.equal((await api(base, `/api/jobs/${id}/cancel`, { method: "POST" })).status, 200);
    await waitForJob(base, id, ["cancelled"]);
    await waitFor(async () => (await browsersOf(serverPid)) <= childrenBefore, {
      what: "the cancelled job's browsers to be killed",
      timeoutMs: 10_000,
    });
  });
});

Deno.test("bad benchmark params get 400 naming the field; validate says the same", async (t) => {
  await using server = await startServer({ env: { STREAMPLAY_CONCURRENCY: "0" } });
  const base = server.url;
  const url = "http://127.0.0.1:9/";
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ["browser-bench", { url, levels: [2, 1] }, /^params\.levels\.1: must be greater than/],
    ["browser-bench", { url, concurrency: 0 }, /^params\.concurrency: /],
    [
      "browser-bench",
      { url, concurrency: 2, levels: [1, 2] },
      /^params\.levels: give concurrency or levels/,
    ],
    [
      "browser-bench",
      { url, scenario: [{ action: "goto" }, { action: "fly" }] },
      /^params\.scenario\.1\.action: must be one of goto, click, type, scroll, wait, screenshot, hover, press/,
    ],
    [
      "browser-bench",
      { url, scenario: [{ action: "click" }] },
      /^params\.scenario\.0\.selector: is required/,
    ],
    [
      "browser-bench",
      { url, scenario: [{ action: "wait", ms: 1, selector: "a" }] },
      /^params\.scenario\.0\.ms: give exactly one of ms/,
    ],
    [
      "browser-bench",
      { url, scenario: [{ action: "goto", url: "file:///etc/passwd" }] },
      /^params\.scenario\.0\.url: must be an http\(s\) URL/,
    ],
    [
      "browser-bench",
      { url, node_shape: { cores: 4, memory_gb: 0.5 } },
      /^params\.node_shape\.memory_gb: must exceed baseline_os_mb/,
    ],
    [
      "browser-bench",
      { url, allow_hosts: ["169.254.169.254"] },
      /^params\.allow_hosts\.0: http:\/\/169\.254\.169\.254\/ is refused/,
    ],
    [
      "browser-bench",
      { url, ignore_errors: ["learn\\.json", "(unclosed"] },
      /^params\.ignore_errors\.1: must be a valid regular expression/,
    ],
    ["http-bench", { url, levels: [1, 1] }, /^params\.levels\.1: must be greater than/],
    ["http-bench", { url, levels: [1, 2], requests: 10 }, /^params\.requests: a sweep/],
    ["http-bench", { url, targets: [] }, /^params\.targets: /],
  ];
  for (const [type, params, pattern] of cases) {
    await t.step(`${type} ${JSON.stringify(params).slice(0, 80)}`, async () => {
      const r = await api(base, "/api/jobs", { method: "POST", json: { type, params } });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.match(r.body.error, pattern);
      const v = await api(base, "/api/bench/validate", { method: "POST", json: { type, params } });
      assert.equal(v.status, 200);
      assert.equal(v.body.ok, false);
      assert.match(`${v.body.problems[0].field}: ${v.body.problems[0].message}`, pattern);
    });
  }
  await t.step("validate fills in the defaults of good params", async () => {
    const v = await api(base, "/api/bench/validate", {
      method: "POST",
      json: { type: "browser-bench", params: { url, levels: [1, 2, 4] } },
    });
    assert.equal(v.body.ok, true);
    assert.deepEqual(v.body.params.targets, [10, 100, 1000]);
    assert.deepEqual(v.body.params.scenario[0], { action: "goto" });
  });
});
