/**
 * The stream client page in headless Chromium (Playwright drives the outer page): start a
 * session from the launcher, click inside the canvas and type into the remote page, join as a
 * second viewer from a share link, which shows no controls and whose clicks change nothing.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright";
import { api, startServer, waitFor } from "./helpers.ts";
import { launchBrowser } from "./browser.ts";
import { type Json, startPages } from "./session_helpers.ts";

/** Clicks the canvas where the remote page's CSS pixel (x, y) is shown. */
async function clickRemote(page: Page, x: number, y: number) {
  const box = (await page.locator("#screen").boundingBox())!;
  await page.mouse.click(box.x + (x / 1280) * box.width, box.y + (y / 720) * box.height);
}

Deno.test("stream client page: launch, drive, share view-only", async (t) => {
  await using pages = startPages();
  await using server = await startServer();
  await using browser = await launchBrowser();
  const context = await browser.newContext({ viewport: { width: 1500, height: 1000 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  let id = "";
  const session = async () => (await api(server.url, `/api/sessions/${id}`)).body;
  const events = async (type: string) =>
    (await api(server.url, `/api/jobs/${id}/events?type=${type}`)).body.events as Json[];

  await t.step("the home page keeps its links and health, and launches a session", async () => {
    await page.goto(server.url + "/");
    await page.locator("#health .status.ok").first().waitFor({ timeout: 10_000 });
    assert.ok(await page.locator('a[href="/bench"]').count() >= 1);
    await page.locator("#sessions-empty").waitFor();
    await page.fill('#launch input[name="url"]', "ftp://127.0.0.1/");
    await page.click("#launch-start");
    await page.locator("#launch-error", { hasText: "only http and https" }).waitFor();
    await page.fill('#launch input[name="url"]', `${pages.url}/`);
    await page.click("#launch-start");
    await page.waitForURL(/\?session=job_/, { timeout: 30_000 });
    id = new URL(page.url()).searchParams.get("session")!;
    await page.waitForFunction(
      `Number(document.querySelector("#screen").dataset.frames) >= 1`,
      null,
      { timeout: 15_000 },
    );
    await page.locator('#viewer[data-interactive="true"]').waitFor();
    await page.locator("#tabs .tab.active").waitFor();
  });

  await t.step("a click inside the canvas presses the remote button", async () => {
    await clickRemote(page, 200, 150);
    await waitFor(async () => (await session()).title === "clicked", {
      what: "the remote title to change",
    });
    await page.locator("#events .ev.console", { hasText: "button clicked" }).waitFor();
    await page.locator("#page-title", { hasText: "clicked" }).waitFor();
  });

  await t.step("typing on the page arrives in the remote input", async () => {
    await clickRemote(page, 250, 320);
    await page.keyboard.type("hi there");
    await page.keyboard.press("Backspace");
    await page.keyboard.press("e");
    await page.keyboard.press("Enter");
    await waitFor(
      async () => (await events("console")).some((e) => e.message === "typed:hi there"),
      { what: "the typed text in the remote page" },
    );
  });

  await t.step("a second viewer from the share link sees no controls and is counted", async () => {
    const pauseAt = (await page.locator("#pause").boundingBox())!;
    await page.click("#share");
    await page.locator("#share-link:not(.hidden)").waitFor();
    const link = new URL(await page.inputValue("#share-link"));
    assert.equal(link.origin + link.pathname, `${server.url}/`);
    assert.equal(link.searchParams.get("session"), id);
    assert.match(link.searchParams.get("token")!, /^spshare\./);
    // A tab of its own: the link's token replaces whatever token that tab held.
    const shared = await browser.newContext({ viewport: { width: 1500, height: 1000 } });
    const second = await shared.newPage();
    second.on("pageerror", (e) => errors.push(e.message));
    await second.goto(link.href);
    await second.locator('#viewer[data-interactive="false"]').waitFor({ timeout: 15_000 });
    await second.waitForFunction(
      `Number(document.querySelector("#screen").dataset.frames) >= 1`,
      null,
      { timeout: 15_000 },
    );
    for (const control of ["#nav-back", "#nav-forward", "#nav-reload", "#urlbar", "#pause"]) {
      assert.equal(await second.locator(control).isVisible(), false, control);
    }
    for (const control of ["#record", "#share", "#stop", "#launcher", "#tabs button"]) {
      assert.equal(await second.locator(control).isVisible(), false, control);
    }
    await waitFor(async () => (await session()).metrics.viewer_count === 2, {
      what: "viewer_count 2",
    });
    await page.locator('#overlay[data-viewers="2"]').waitFor({ timeout: 10_000 });
    // Where Pause is on the operator's page, and the remote page's error button: nothing happens.
    await second.mouse.click(pauseAt.x + pauseAt.width / 2, pauseAt.y + pauseAt.height / 2);
    await clickRemote(second, 550, 125);
    await new Promise((r) => setTimeout(r, 1_500));
    assert.equal((await session()).state, "active");
    assert.deepEqual(await events("page_error"), []);
    await shared.close();
  });

  await t.step("stop ends the session and shows it", async () => {
    await page.click("#stop");
    await page.locator('#viewer[data-state="stopped"]').waitFor({ timeout: 15_000 });
    assert.equal((await session()).state, "stopped");
  });

  assert.deepEqual(errors, []);
});
