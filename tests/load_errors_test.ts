/**
 * Errors of a real-browser load run (lib/load/browser.ts) in real Chromium: a missing `learn.json`
 * and a timestamped console error count once per visit, repeat visits group into one error with its
 * count and one screenshot, and known errors can be left out by pattern.
 */
import assert from "node:assert/strict";
import { createBrowserLoad, readWebVitals } from "../lib/load/browser.ts";
import { loadPlaywright } from "../lib/core/playwright.ts";
import { tempDir } from "./helpers.ts";

const CHROMIUM = Deno.env.get("STREAMPLAY_CHROMIUM") ?? "/usr/bin/chromium";

function startSite() {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => {
      if (new URL(req.url).pathname !== "/") return new Response("not found", { status: 404 });
      return new Response(
        `<!doctype html><html><head><meta charset="utf-8"><title>todos</title></head>` +
          `<body><h1>todos</h1><script>fetch("/learn.json?v=" + Math.random());` +
          `console.error("render took " + Date.now() + " ms")</script></body></html>`,
        { headers: { "content-type": "text/html" } },
      );
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    async [Symbol.asyncDispose]() {
      ac.abort();
      await server.finished;
    },
  };
}

async function run(url: string, dir: string, ignoreErrors: RegExp[] = []) {
  const load = createBrowserLoad({
    playwright: await loadPlaywright(),
    launch: { executablePath: CHROMIUM },
    browserPerUser: false,
    url,
    scenario: [{ action: "goto" }, { action: "wait", ms: 300 }],
    artifactDir: dir,
    screenshotEveryS: 0,
    screenshotQuality: 60,
    stepTimeoutMs: 10_000,
    viewport: { width: 640, height: 360 },
    maxErrorScreenshots: 20,
    ignoreErrors,
    webVitalsSource: await readWebVitals(),
  });
  try {
    const level = await load.runLevel({
      index: 0,
      concurrency: 2,
      durationMs: 6_000,
      rampMs: 0,
      signal: new AbortController().signal,
    });
    return { level, groups: load.errors() };
  } finally {
    await load.close();
  }
}

Deno.test("browser load errors: counted once, grouped with counts, known ones ignored", async (t) => {
  await using site = startSite();

  await t.step("one 404 and one console error per visit, two groups", async () => {
    await using dir = await tempDir();
    const { level, groups } = await run(site.url, dir.path);
    const { errors } = level;
    assert.ok(level.visits >= 4, `visits ${level.visits}`);
    // A visit the level's end cuts short may have logged its console line and not yet had its 404.
    assert.ok(Math.abs(errors.http - errors.console) <= 2, JSON.stringify(errors));
    assert.ok(Math.abs(errors.http - level.visits) <= 2, `${errors.http} 404s, ${level.visits}`);
    assert.equal(errors.total, errors.http + errors.console);
    assert.deepEqual(
      groups.map((g) => [g.kind, g.count]).sort(),
      [["console", errors.console], ["http", errors.http]],
      JSON.stringify(groups, null, 1),
    );
    const http = groups.find((g) => g.kind === "http")!;
    assert.match(http.message, /^HTTP 404 GET .*\/learn\.json\?v=/);
    assert.equal(http.url, site.url);
    assert.deepEqual(http.levels, [2]);
    assert.ok(http.first_ts < http.last_ts, `${http.first_ts} .. ${http.last_ts}`);
    for (const g of groups) {
      assert.match(g.screenshot ?? "", /^errors\/\d{4}-/, "one screenshot per group");
      await Deno.stat(`${dir.path}/${g.screenshot}`);
    }
    const shots = [...Deno.readDirSync(`${dir.path}/errors`)];
    assert.equal(shots.length, 2, "no screenshot for the repeats");
  });

  await t.step("a known error left out by pattern is counted apart", async () => {
    await using dir = await tempDir();
    const { level, groups } = await run(site.url, dir.path, [/learn\.json/]);
    const { errors } = level;
    assert.equal(errors.http, 0, JSON.stringify(errors));
    assert.ok(errors.ignored >= 4, JSON.stringify(errors));
    assert.equal(errors.total, errors.console);
    assert.deepEqual(groups.map((g) => g.kind), ["console"]);
  });
});
