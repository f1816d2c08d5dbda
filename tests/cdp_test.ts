/**
 * Bring your own client: Playwright `connectOverCDP` and puppeteer-core drive sessions through `GET
 * /cdp` on a real server with tokens on; such a session is an ordinary one (listed, watched,
 * recorded, in history, ended when its client leaves); `cdp_url`, `keep_alive_s`, the examples.
 */
import assert from "node:assert/strict";
import puppeteer from "puppeteer-core";
import { loadPlaywright } from "../lib/core/playwright.ts";
import { api, ROOT_DIR, startServer, tempDir, waitFor } from "./helpers.ts";
import { launchBrowser } from "./browser.ts";
import { type Json, openViewer, startPages } from "./session_helpers.ts";
import { probe } from "./recording_helpers.ts";

const OPERATOR = "operator-token-1";
const VIEWER = "viewer-token-1";
const TOKENS = `ops:${OPERATOR}:operator,watcher:${VIEWER}:viewer`;

const { chromium } = await loadPlaywright();

Deno.test("CDP clients drive sessions that stay listed, watchable and recorded", async (t) => {
  await using pages = startPages();
  await using dir = await tempDir();
  await using server = await startServer({ env: { STREAMPLAY_TOKENS: TOKENS } });
  const base = server.url;
  const ws = base.replace(/^http/, "ws");
  const get = (path: string) => api(base, path, { token: OPERATOR });
  /** The live sessions opened over CDP, newest last. */
  const cdpSessions = async (): Promise<Json[]> =>
    (await get("/api/sessions")).body.sessions.filter((s: Json) => s.opened_over_cdp);
  const seen = new Set<string>();
  /** The session the client that just connected opened (one no earlier step saw). */
  const opened = () =>
    waitFor(async () => {
      const session = (await cdpSessions()).find((s) => !seen.has(s.id));
      if (session) seen.add(session.id);
      return session;
    }, { what: "the client's session to be listed" });
  /** Waits until session `id` has ended; answers its view. */
  const ended = (id: string) =>
    waitFor(async () => {
      const { body } = await get(`/api/sessions/${id}`);
      return body.active ? null : body;
    }, { timeoutMs: 20_000, what: `session ${id} to end` });

  await t.step(
    "Playwright connectOverCDP: new pages, goto, click, evaluate, screenshot, close",
    async () => {
      const browser = await chromium.connectOverCDP(
        `${ws}/cdp?token=${OPERATOR}&record=1&width=1024&height=600`,
      );
      const session = await opened();
      assert.equal(session.cdp_url, `${ws}/cdp/${session.id}`);
      assert.deepEqual(session.viewport, { width: 1024, height: 600 });

      const viewer = await openViewer(`${session.ws_url}?token=${VIEWER}`);
      await using home = await launchBrowser();
      const homePage = await home.newPage();
      await homePage.goto(`${base}/?token=${VIEWER}`);
      await homePage.locator(`#sessions tr[data-id="${session.id}"] .status.cdp`).waitFor();
      assert.equal(browser.contexts().length, 1, "the session's context is the default one");
      const context = browser.contexts()[0]!;
      const page = await context.newPage();
      await page.goto(`${pages.url}/`);
      await page.click("#b");
      assert.equal(await page.evaluate("document.title"), "clicked");
      const png = await page.screenshot();
      assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], "a PNG");
      const second = await context.newPage();
      await second.goto(`${pages.url}/popup`);
      assert.equal(await second.title(), "popup");

      await viewer.waitFrames(3, 20_000);
      await viewer.next((m: Json) =>
        m.type === "event" && m.event.type === "navigation" && m.event.url === `${pages.url}/`
      );
      // The listing follows the session's tabs soon, not at once: wait for the second one.
      const live = await waitFor(async () => {
        const { body } = await get(`/api/sessions/${session.id}`);
        const urls = body.tabs.map((tab: Json) => tab.url);
        if (urls.includes(`${pages.url}/popup`)) return body;
        throw new Error(`its tabs: ${JSON.stringify(urls)}`);
      }, { what: "the second tab to be listed" });
      assert.ok(live.metrics.frames_captured > 0, "the session has live metrics");

      await browser.close();
      const final = await ended(session.id);
      assert.equal(final.state, "stopped");
      assert.equal(final.reason, "client_disconnected");
      const told = await viewer.next((m: Json) => m.type === "ended");
      assert.equal(told.reason, "client_disconnected");
      const job = (await get(`/api/jobs/${session.id}`)).body;
      assert.equal(job.status, "succeeded", "its history row");
      assert.equal(job.type, "session");

      const recording = await waitFor(
        async () => (await get(`/api/recordings?session_id=${session.id}`)).body.recordings?.[0],
        { what: "the session's recording" },
      );
      const done = await waitFor(async () => {
        const { body } = await get(`/api/recordings/${recording.recording_id}`);
        return body?.state === "completed" ? body : null;
      }, { timeoutMs: 30_000, what: "its recording to be completed" });
      const video = await fetch(
        `${base}/api/recordings/${done.recording_id}/video?token=${OPERATOR}`,
      );
      assert.equal(video.status, 200);
      const file = `${dir.path}/cdp.${done.container}`;
      await Deno.writeFile(file, new Uint8Array(await video.arrayBuffer()));
      const p = await probe(file);
      assert.ok(p.frames > 0, `ffprobe decodes ${p.frames} frames`);
      assert.deepEqual([p.width, p.height], [1024, 600]);
      const { body } = await get(`/api/recordings/${done.recording_id}/timeline`);
      const visited = body.entries.filter((e: Json) => e.type === "navigation").map((e: Json) =>
        e.url
      );
      assert.ok(visited.includes(`${pages.url}/`), `navigations: ${JSON.stringify(visited)}`);
      assert.ok(visited.includes(`${pages.url}/popup`), `navigations: ${JSON.stringify(visited)}`);
    },
  );

  await t.step("puppeteer-core connect: pages, a context of its own, Browser.close", async () => {
    const browser = await puppeteer.connect({
      browserWSEndpoint: `${ws}/cdp?token=${OPERATOR}`,
      defaultViewport: null,
    });
    const session = await opened();
    const page = await browser.newPage();
    await page.goto(`${pages.url}/`);
    await page.click("#b");
    assert.equal(await page.evaluate("document.title"), "clicked");
    assert.ok((await page.screenshot()).length > 1000);
    const own = await browser.createBrowserContext();
    const other = await own.newPage();
    await other.goto(`${pages.url}/popup`);
    assert.equal(await other.title(), "popup");
    await own.close();
    await browser.close();
    const final = await ended(session.id);
    assert.equal(final.reason, "browser_closed");
  });

  await t.step("a session started over the API is driven through its cdp_url", async () => {
    const started = await api(base, "/api/sessions", {
      method: "POST",
      token: OPERATOR,
      json: { url: `${pages.url}/` },
    });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const session = started.body;
    assert.equal(session.opened_over_cdp, false);
    const browser = await chromium.connectOverCDP(`${session.cdp_url}?token=${OPERATOR}`);
    const page = browser.contexts()[0]!.pages().find((p) => p.url() === `${pages.url}/`);
    assert.ok(page, "the session's own tab is there");
    await page.click("#b");
    await waitFor(async () => (await get(`/api/sessions/${session.id}`)).body.title === "clicked", {
      what: "the session's title to follow the click",
    });
    await browser.close();
    await new Promise((r) => setTimeout(r, 1000));
    const after = (await get(`/api/sessions/${session.id}`)).body;
    assert.equal(after.state, "active", "its client leaving does not end it");
    await api(base, `/api/sessions/${session.id}`, { method: "DELETE", token: OPERATOR });
  });

  await t.step("keep_alive_s: a client reconnects to its session within it", async () => {
    const first = await chromium.connectOverCDP(`${ws}/cdp?token=${OPERATOR}&keep_alive_s=4`);
    const session = await opened();
    const page = await first.contexts()[0]!.newPage();
    await page.goto(`${pages.url}/popup`);
    await first.close();
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await get(`/api/sessions/${session.id}`)).body.state, "active");
    const again = await chromium.connectOverCDP(`${session.cdp_url}?token=${OPERATOR}`);
    const urls = again.contexts()[0]!.pages().map((p) => p.url());
    assert.ok(urls.includes(`${pages.url}/popup`), `the same session: ${JSON.stringify(urls)}`);
    await new Promise((r) => setTimeout(r, 5000));
    assert.equal((await get(`/api/sessions/${session.id}`)).body.state, "active", "still held");
    const left = performance.now();
    await again.close();
    const final = await ended(session.id);
    const waited = (performance.now() - left) / 1000;
    assert.equal(final.reason, "client_disconnected");
    assert.ok(waited >= 3, `ended ${waited.toFixed(1)} s after its last client left`);
  });

  await t.step("the Playwright and Puppeteer examples run against the server", async () => {
    for (
      const [file, permissions] of [
        ["playwright_connect.ts", [
          "--allow-net",
          "--allow-env",
          "--allow-sys",
          "--allow-write=/tmp",
        ]],
        ["puppeteer_connect.ts", ["--allow-net", "--allow-env"]],
      ] as const
    ) {
      const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
        args: ["run", ...permissions, `examples/${file}`, `${pages.url}/`],
        cwd: ROOT_DIR,
        env: { NO_COLOR: "1", STREAMPLAY_URL: base, STREAMPLAY_TOKEN: OPERATOR },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const out = new TextDecoder().decode(stdout);
      assert.equal(code, 0, `${file}: ${out}\n${new TextDecoder().decode(stderr)}`);
      assert.match(out, /^title: start$/m);
      assert.match(out, /^links: \["open a popup"\]$/m);
      assert.match(out, /^screenshot: \d+ bytes$/m);
    }
    await waitFor(async () => (await cdpSessions()).length === 0, {
      what: "the examples' sessions to end with them",
    });
  });
});
