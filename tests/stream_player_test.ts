/**
 * The player page (`player_url`) in headless Chromium plays HLS (hls.js) and DASH (dash.js), shows
 * the stream's live metrics with its URL whole in its panel, and counts as a viewer.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright";
import { api, startServer, waitFor } from "./helpers.ts";
import { startPages } from "./session_helpers.ts";
import { launchBrowser } from "./browser.ts";

interface Video {
  currentTime: number;
  videoWidth: number;
  videoHeight: number;
}

const currentTime = (page: Page) =>
  page.locator("video").evaluate((v) => (v as unknown as Video).currentTime);

Deno.test("the player page plays HLS and DASH and shows the live metrics", async (t) => {
  await using pages = startPages();
  await using server = await startServer();
  await using browser = await launchBrowser();
  const base = server.url;
  const session = await api(base, "/api/sessions", {
    method: "POST",
    json: { url: `${pages.url}/anim` },
  });
  assert.equal(session.status, 201, JSON.stringify(session.body));

  for (const protocol of ["hls", "dash"]) {
    await t.step(`${protocol}: the video plays and the metrics show beside it`, async () => {
      const res = await api(base, `/api/sessions/${session.body.id}/stream`, {
        method: "POST",
        json: { protocol, width: 640, height: 360 },
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(res.body.player_url);
      const t1 = await waitFor(async () => {
        const now = await currentTime(page);
        return now > 0 ? now : null;
      }, { timeoutMs: 45_000, what: "playback to start" });
      await waitFor(async () => (await currentTime(page)) > t1 + 1.5, {
        timeoutMs: 30_000,
        what: "currentTime to advance",
      });
      const size = await page.locator("video").evaluate((v) => {
        const { videoWidth, videoHeight } = v as unknown as Video;
        return [videoWidth, videoHeight];
      });
      assert.deepEqual(size, [640, 360]);
      // The stream's URL wraps inside its panel rather than running out of it (measured in one
      // go: the panel is redrawn every second).
      const url = await page.evaluate(`(() => {
        const dd = [...document.querySelectorAll("#info dd")].at(-1);
        const panel = document.querySelector("aside.card").getBoundingClientRect();
        return { text: dd.textContent, right: dd.getBoundingClientRect().right, panel: panel.right };
      })()`) as { text: string; right: number; panel: number };
      assert.equal(url.text, res.body.stream_url);
      assert.ok(url.right <= url.panel, `the URL ends at ${url.right}, its panel at ${url.panel}`);
      const panel = await page.locator("#metrics").innerText();
      assert.match(panel, /Health\s+healthy|Health\s+degraded/);
      assert.match(panel, /Player latency\s+\d/);
      await waitFor(async () => {
        const { body } = await api(base, `/api/streams/${res.body.stream_id}`);
        return body.status.metrics.viewer_count === 1;
      }, { what: "the player counted as a viewer" });
      await waitFor(async () => /Viewers\s+1\b/.test(await page.locator("#metrics").innerText()), {
        what: "the viewer count on the page",
      });
      assert.deepEqual(errors, []);
      await api(base, `/api/streams/${res.body.stream_id}`, { method: "DELETE" });
      await waitFor(async () => /has ended/.test(await page.locator("#error").innerText()), {
        what: "the page to say the stream ended",
      });
      await page.close();
    });
  }
});
