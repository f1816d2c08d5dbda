/**
 * The dashboard page in headless Chromium: live values change while jobs run, the feed shows
 * jobs starting and ending, an anomaly is highlighted, and the time-range picker reads history.
 */
import assert from "node:assert/strict";
import { api, startServer } from "./helpers.ts";
import { launchBrowser } from "./browser.ts";
import { startPages } from "./session_helpers.ts";

Deno.test("dashboard page: live values, feed, alerts and history", async (t) => {
  await using server = await startServer({
    env: {
      STREAMPLAY_CONCURRENCY: "2",
      STREAMPLAY_METRICS_INTERVAL_S: "1",
      STREAMPLAY_ANOMALY_MIN_DURATION_S: "1",
      STREAMPLAY_ANOMALY_SERIES: "job_failure_rate",
    },
  });
  await using browser = await launchBrowser();
  await using pages = startPages();
  const page = await browser.newPage();
  const pageErrors: string[] = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  const kpi = (name: string) =>
    page.locator(`[data-kpi="${name}"]`).getAttribute("data-value").then(Number);
  const points = (id: string) => page.locator(`#${id}`).getAttribute("data-points").then(Number);

  await t.step("it connects and shows the live KPIs", async () => {
    await page.goto(`${server.url}/dashboard`);
    await page.locator("#conn.ok").waitFor({ timeout: 10_000 });
    await page.locator('[data-kpi="running"]').waitFor({ timeout: 10_000 });
    assert.equal(await kpi("running"), 0);
    assert.match(await page.locator("#pressure").innerText(), /accepting work/);
  });

  await t.step("values change while jobs run, and the feed shows them", async () => {
    const before = await points("chart-running");
    for (let i = 0; i < 4; i++) {
      const r = await api(server.url, "/api/jobs", {
        method: "POST",
        json: { type: "noop", params: { sleep_ms: 3_000 } },
      });
      assert.equal(r.status, 202);
    }
    await page.waitForFunction(
      `Number(document.querySelector('[data-kpi="running"]').dataset.value) === 2`,
      null,
      { timeout: 10_000 },
    );
    await page.waitForFunction(
      `Number(document.querySelector('[data-kpi="queued"]').dataset.value) === 2`,
      null,
      { timeout: 5_000 },
    );
    await page.locator('#feed .change[data-action="started"]').first().waitFor();
    // The charts take a point per metrics_update (once a second); the KPIs may move first.
    await page.waitForFunction(
      `Number(document.querySelector("#chart-running").dataset.points) > ${before}`,
      null,
      { timeout: 5_000 },
    );
    await page.waitForFunction(
      `Number(document.querySelector('[data-kpi="running"]').dataset.value) === 0`,
      null,
      { timeout: 20_000 },
    );
    // The feed follows the job events, a moment after the runner's own count.
    await page.waitForFunction(
      `document.querySelectorAll('#feed .change[data-action="ended"]').length === 4`,
      null,
      { timeout: 5_000 },
    );
    assert.equal(await page.locator('#feed .change[data-action="started"]').count(), 4);
  });

  await t.step("a live session shows in the KPIs, the feed and its frame rate", async () => {
    const res = await api(server.url, "/api/sessions", {
      method: "POST",
      json: { url: `${pages.url}/anim`, max_fps: 10 },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    await page.waitForFunction(
      `Number(document.querySelector('[data-kpi="sessions"]').dataset.value) === 1`,
      null,
      { timeout: 10_000 },
    );
    await page.locator('#feed .change[data-kind="session"][data-action="started"]').waitFor();
    await page.waitForFunction(
      `Number(document.querySelector('[data-kpi="fps"]').dataset.value) > 0`,
      null,
      { timeout: 10_000 },
    );
    assert.equal(
      (await api(server.url, `/api/sessions/${res.body.id}`, { method: "DELETE" })).status,
      200,
    );
    await page.locator('#feed .change[data-kind="session"][data-action="ended"]').waitFor({
      timeout: 10_000,
    });
  });

  await t.step("an anomaly is highlighted", async () => {
    for (let i = 0; i < 15; i++) {
      await api(server.url, "/api/jobs", {
        method: "POST",
        json: { type: "noop", params: { fail: true, fatal: true }, max_attempts: 1 },
      });
    }
    const card = page.locator('#alerts .alert-card.active[data-series="job_failure_rate"]');
    await card.waitFor({ timeout: 20_000 });
    assert.match(await card.innerText(), /job_failure_rate is .* above the expected/);
  });

  await t.step("the time-range picker reads the stored history", async () => {
    await page.selectOption('select[name="range"]', "15m");
    await page.click("#range-apply");
    await page.waitForFunction(
      `document.getElementById("kpis").dataset.range?.includes("/")`,
      null,
      { timeout: 10_000 },
    );
    // The default step gives 300 buckets: 15 minutes in 3 s buckets.
    assert.equal(await points("chart-machine"), 300);
    assert.equal(await page.locator("#range-error").innerText(), "");
  });

  assert.deepEqual(pageErrors, []);
});
