/**
 * The pages in headless Chromium: start a benchmark from the form, watch it finish live, find
 * it in the history, open its page; bad form input shows the server's message.
 */
import assert from "node:assert/strict";
import { startServer, startTarget } from "./helpers.ts";
import { launchBrowser } from "./browser.ts";

Deno.test("bench pages: start, watch, find in history, open", async (t) => {
  await using server = await startServer();
  await using target = startTarget();
  await using browser = await launchBrowser();
  const page = await browser.newPage();
  const consoleErrors: string[] = [];
  page.on("pageerror", (e) => consoleErrors.push(e.message));
  let jobId = "";

  await t.step("home shows health and links", async () => {
    await page.goto(server.url + "/");
    await page.locator("#health .status.ok").first().waitFor({ timeout: 10_000 });
    assert.ok(await page.locator('a[href="/bench"]').count() >= 1);
  });

  await t.step("the form refuses a bad URL with the server's message", async () => {
    await page.goto(server.url + "/bench");
    await page.fill('input[name="url"]', "ftp://127.0.0.1/");
    await page.click("#start");
    await page.locator("#form-error", { hasText: "only http and https" }).waitFor({
      timeout: 10_000,
    });
  });

  await t.step("a benchmark started from the form runs live to the end", async () => {
    await page.fill('input[name="url"]', `${target.url}/`);
    await page.fill('input[name="concurrency"]', "4");
    // 5 s: a resource sample a second leaves room for a loaded machine to take a few.
    await page.fill('input[name="amount"]', "5");
    // The target server runs in this test's process: the sizing measures it.
    await page.fill('input[name="target"]', String(Deno.pid));
    await page.click("#start");
    await page.locator('#job-view[data-status="running"]').waitFor({ timeout: 15_000 });
    // Live charts receive points while it runs.
    await page.waitForFunction(
      `Number(document.querySelector("#jv-chart-rps")?.dataset.points) >= 1`,
      null,
      { timeout: 10_000 },
    );
    await page.locator('#job-view[data-status="succeeded"]').waitFor({ timeout: 20_000 });
    await page.locator("#jv-result-props").waitFor();
    const text = await page.locator("#jv-result-props").innerText();
    assert.match(text, /Throughput\s+[\d,.]+ req\/s/);
    await page.locator("#sizing-levels").waitFor({ timeout: 10_000 });
    assert.match(await page.locator("#jv-sizing").innerText(), /target server's processes/);
    assert.match(await page.locator("#sizing-levels thead").innerText(), /target \(CPU, PSS\)/);
    jobId = new URL(page.url()).searchParams.get("job")!;
    assert.match(jobId, /^job_/);
    assert.ok((await page.locator("#jv-log div").count()) >= 2, "log lines shown");
  });

  await t.step("the job is in the history and its row opens the job page", async () => {
    await page.goto(server.url + "/bench/history");
    const row = page.locator(`tr[data-id="${jobId}"]`);
    for (let i = 0; i < 20 && (await row.count()) === 0; i++) {
      await page.waitForTimeout(250);
      await page.click('#filters button[type="submit"]');
    }
    await row.click();
    await page.waitForURL(`**/bench/jobs/${jobId}`);
    await page.locator('#job-view[data-status="succeeded"]').waitFor({ timeout: 10_000 });
    await page.locator("#jv-result-props").waitFor();
    // The charts are drawn once the stored samples and progress events have been fetched.
    for (const [chart, what] of [["cpu", "stored samples"], ["rps", "stored progress events"]]) {
      await page.waitForFunction(
        `Number(document.querySelector("#jv-chart-${chart}")?.dataset.points) >= 1`,
        null,
        { timeout: 10_000 },
      ).catch(() => assert.fail(`the ${chart} chart is not drawn from ${what}`));
    }
    assert.ok((await page.locator("#jv-log div").count()) >= 2, "stored logs shown");
  });

  assert.deepEqual(consoleErrors, []);
});
