/**
 * The recordings pages in headless Chromium: a recording made from the live view is listed; its
 * page plays and seeks the video from the timeline, shows error screenshots, downloads, replays and
 * deletes.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright";
import { api, startServer } from "./helpers.ts";
import { launchBrowser } from "./browser.ts";
import { startPages } from "./session_helpers.ts";
import { act, waitForRecording } from "./recording_helpers.ts";
import { openViewer } from "./session_helpers.ts";

const number = (page: Page, expression: string) => page.evaluate<number>(`Number(${expression})`);

Deno.test("recordings pages: list, player and timeline, errors, download, replay, delete", async (t) => {
  await using pages = startPages();
  await using server = await startServer();
  await using browser = await launchBrowser();
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("dialog", (d) => d.accept());
  let recordingId = "";

  await t.step("the live view's Record button records the session", async () => {
    const created = await api(server.url, "/api/sessions", {
      method: "POST",
      json: { url: `${pages.url}/` },
    });
    const id = created.body.id;
    await page.goto(`${server.url}/?session=${id}`);
    await page.waitForFunction(`Number(document.querySelector("#screen").dataset.frames) >= 1`);
    await page.click("#record");
    await page.locator("#record", { hasText: "Stop recording" }).waitFor();
    const viewer = await openViewer(created.body.ws_url);
    await act(viewer, { type: "mouse", action: "click", x: 150, y: 150 });
    await new Promise((r) => setTimeout(r, 1_500));
    await act(viewer, { type: "mouse", action: "click", x: 550, y: 120 });
    await viewer.next((m) => m.type === "event" && m.event.type === "page_error");
    await new Promise((r) => setTimeout(r, 1_000));
    await page.click("#record");
    const link = page.locator('#notice a[href^="/recordings/rec_"]');
    await link.waitFor();
    recordingId = (await link.getAttribute("href"))!.split("/").pop()!;
    await waitForRecording(server.url, recordingId, "completed");
    await viewer.close();
  });

  await t.step("the list shows it and opens its page", async () => {
    await page.goto(`${server.url}/recordings`);
    const row = page.locator(`#recordings tr[data-id="${recordingId}"]`);
    await row.waitFor();
    assert.match(await row.innerText(), /completed[\s\S]*h264 medium/);
    await page.locator('header.nav a[href="/recordings"].active').waitFor();
    await row.click();
    await page.waitForURL(`${server.url}/recordings/${recordingId}`);
  });

  await t.step("the player plays it; a timeline entry seeks the video there", async () => {
    await page.waitForFunction(
      `Number(document.querySelector("#video").dataset.duration) > 2`,
      null,
      {
        timeout: 15_000,
      },
    );
    const duration = await number(page, `document.querySelector("#video").duration`);
    const recording = (await api(server.url, `/api/recordings/${recordingId}`)).body;
    assert.ok(Math.abs(duration - recording.duration_seconds) < 0.5, `${duration}`);
    const error = page.locator('#timeline .ev[data-type="page_error"]');
    await error.waitFor();
    const t = Number(await error.getAttribute("data-t"));
    assert.ok(t > 1, `the error is ${t} s in`);
    await error.click();
    await page.waitForFunction(
      `Math.abs(document.querySelector("#video").currentTime - ${t}) < 0.2`,
      null,
      { timeout: 10_000 },
    );
    await page.locator('#timeline .ev.current[data-type="page_error"]').waitFor();
    const click = page.locator('#timeline .ev[data-type="input"]', { hasText: "#b" });
    assert.equal(await click.count(), 1, "the click, with its selector");
  });

  await t.step(
    "the error shows the screenshot taken then; the download serves the file",
    async () => {
      const shot = page.locator("#errors .shot-card img").first();
      await shot.waitFor();
      await page.waitForFunction(
        `document.querySelector("#errors .shot-card img").naturalWidth === 1280`,
        null,
        { timeout: 10_000 },
      );
      const href = await page.locator("#download").getAttribute("href");
      assert.equal(href, `/api/recordings/${recordingId}/video?download=1`);
      const res = await fetch(server.url + href);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-disposition")!, /attachment/);
      await res.body?.cancel();
    },
  );

  await t.step("Replay opens the replay live", async () => {
    await page.selectOption("#replay-speed", "1");
    await page.click("#replay");
    await page.waitForURL(/\/\?session=job_.*&view=1$/, { timeout: 30_000 });
    await page.waitForFunction(
      `Number(document.querySelector("#screen").dataset.frames) >= 1`,
      null,
      { timeout: 15_000 },
    );
    await page.locator('#viewer[data-interactive="false"]').waitFor();
    const replayId = new URL(page.url()).searchParams.get("session")!;
    const job = (await api(server.url, `/api/jobs/${replayId}`)).body;
    assert.equal(job.type, "replay");
    assert.equal(job.params.replay.recording_id, recordingId);
    await api(server.url, `/api/sessions/${replayId}`, { method: "DELETE" });
  });

  await t.step("Delete removes it", async () => {
    await page.goto(`${server.url}/recordings/${recordingId}`);
    await page.locator("#timeline .ev").first().waitFor();
    await page.click("#delete");
    await page.waitForURL(`${server.url}/recordings`);
    await page.locator("#recordings tbody tr").first().waitFor();
    assert.equal(await page.locator(`#recordings tr[data-id="${recordingId}"]`).count(), 0);
    assert.equal((await api(server.url, `/api/recordings/${recordingId}`)).status, 404);
    assert.deepEqual(errors, []);
  });
});
