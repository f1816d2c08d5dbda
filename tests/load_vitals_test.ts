/**
 * A real-browser load run (lib/load/browser.ts) in a real Chromium against pages this test
 * serves: users start spread over the ramp, not all at once; and the layout shift (CLS) of a
 * page whose content jumps is measured, while a stable page's is 0.
 */
import assert from "node:assert/strict";
import { createBrowserLoad, type LevelTick, readWebVitals } from "../lib/load/browser.ts";
import { loadPlaywright } from "../lib/core/playwright.ts";
import type { Step } from "../lib/load/scenario.ts";

const CHROMIUM = Deno.env.get("STREAMPLAY_CHROMIUM") ?? "/usr/bin/chromium";

/** `/stable`: text that stays put; `/shift`: a banner pushes the text down after 300 ms. */
function startSite() {
  const ac = new AbortController();
  const text = `<p style="font:20px sans-serif">${"Some text that takes room. ".repeat(60)}</p>`;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => {
      const path = new URL(req.url).pathname;
      const body = path === "/stable"
        ? text
        : path === "/shift"
        ? `${text}<script>setTimeout(() => { const b = document.createElement("div");
            b.style.height = "300px"; b.textContent = "late banner";
            document.body.prepend(b); }, 300)</script>`
        : null;
      return body === null ? new Response("not found", { status: 404 }) : new Response(
        `<!doctype html><html><head><meta charset="utf-8"><title>t</title></head>` +
          `<body style="margin:0">${body}</body></html>`,
        { headers: { "content-type": "text/html" } },
      );
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    async [Symbol.asyncDispose]() {
      ac.abort();
      await server.finished;
    },
  };
}

async function runLevel(
  url: string,
  scenario: Step[],
  level: { concurrency: number; durationMs: number; rampMs: number },
  onTick?: (tick: LevelTick) => void,
) {
  const load = createBrowserLoad({
    playwright: await loadPlaywright(),
    launch: { executablePath: CHROMIUM },
    browserPerUser: false,
    url,
    scenario,
    artifactDir: null,
    screenshotEveryS: 0,
    screenshotQuality: 60,
    stepTimeoutMs: 10_000,
    viewport: { width: 800, height: 600 },
    maxErrorScreenshots: 0,
    webVitalsSource: await readWebVitals(),
  });
  try {
    return await load.runLevel({
      index: 0,
      ...level,
      signal: new AbortController().signal,
      ...(onTick ? { onTick } : {}),
    });
  } finally {
    await load.close();
  }
}

Deno.test("browser load: users start spread over the ramp", async () => {
  await using site = startSite();
  const ticks: LevelTick[] = [];
  const result = await runLevel(
    `${site.url}/stable`,
    [{ action: "goto" }, { action: "wait", ms: 500 }],
    { concurrency: 3, durationMs: 9_000, rampMs: 4_000 },
    (tick) => ticks.push(tick),
  );
  assert.equal(result.users_started, 3);
  // Users start at 0, 1.33 and 2.67 s: from the first user active to all three is ~2.7 s.
  const first = ticks.find((t) => t.users_active >= 1);
  const all = ticks.find((t) => t.users_active === 3);
  assert.ok(first && all, JSON.stringify(ticks.map((t) => [t.elapsed_s, t.users_active])));
  assert.ok(
    all.elapsed_s - first.elapsed_s >= 1.8,
    `all 3 active ${all.elapsed_s - first.elapsed_s} s after the first: ` +
      JSON.stringify(ticks.map((t) => [t.elapsed_s, t.users_active])),
  );
  assert.ok(ticks.some((t) => t.users_active === 1 || t.users_active === 2), "a partial ramp");
});

Deno.test("browser load: CLS of a page whose content jumps, 0 for a stable one", async () => {
  await using site = startSite();
  const scenario: Step[] = [
    { action: "goto", url: "/stable" },
    { action: "wait", ms: 800 },
    { action: "goto", url: "/shift" },
    { action: "wait", ms: 1_200 },
  ];
  const result = await runLevel(`${site.url}/stable`, scenario, {
    concurrency: 1,
    durationMs: 7_000,
    rampMs: 0,
  });
  const stable = result.pages[`${site.url}/stable`]?.cls;
  const shifted = result.pages[`${site.url}/shift`]?.cls;
  assert.ok(stable && shifted, JSON.stringify(Object.keys(result.pages)));
  assert.equal(stable.max, 0, `stable page CLS ${JSON.stringify(stable)}`);
  assert.ok(shifted.p50 >= 0.1, `the jumping page's CLS ${JSON.stringify(shifted)}`);
  assert.ok(result.cls && result.cls.max >= 0.1, "the level's CLS counts it");
});
