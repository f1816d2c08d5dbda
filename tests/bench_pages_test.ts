/**
 * The benchmark pages in headless Chromium: the scenario editor's validation messages, a live sweep
 * with vitals and a bar per level, the job page's sizing table, curves, errors with their
 * screenshots and counts, and "compare with…".
 */
import assert from "node:assert/strict";
import { api, startServer, waitForJob } from "./helpers.ts";
import { launchBrowser } from "./browser.ts";

function startSite() {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => {
      const path = new URL(req.url).pathname;
      const body = path === "/broken"
        ? `<h1>Broken</h1><script>console.error("deliberate console error")</script>`
        : `<h1>Home</h1><p>${"Text. ".repeat(50)}</p>`;
      return new Response(`<!doctype html><title>t</title>${body}`, {
        headers: { "content-type": "text/html" },
      });
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

Deno.test("bench pages, browser mode: editor, live sweep, sizing, errors, compare", async (t) => {
  await using site = startSite();
  await using server = await startServer({ env: { STREAMPLAY_CONCURRENCY: "1" } });
  await using browser = await launchBrowser();
  const page = await browser.newPage();
  const pageErrors: string[] = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  let jobId = "";

  await t.step("the scenario editor shows the server's message on the step", async () => {
    await page.goto(server.url + "/bench");
    await page.check('input[name="mode"][value="browser"]');
    await page.locator("#scenario-editor").waitFor();
    await page.fill('input[name="url"]', `${site.url}/`);
    await page.click("#scenario-add");
    const last = page.locator("#scenario-steps .step").last();
    await last.locator('select[name="step-action"]').selectOption("click");
    await last.locator(".step-error", { hasText: "selector: is required" }).waitFor({
      timeout: 10_000,
    });
    await last.locator('input[name="step-selector"]').fill("h1");
    await last.locator(".step-error:empty").waitFor({ timeout: 10_000 });
    await page.fill('input[name="levels"]', "2,1");
    await page.locator("#problems", { hasText: "levels.1: must be greater than" }).waitFor({
      timeout: 10_000,
    });
  });

  await t.step("a sweep started from the form runs live with a bar per level", async () => {
    await page.fill('input[name="levels"]', "1,2");
    await page.fill('input[name="b_duration_s"]', "4");
    await page.fill('input[name="baseline_s"]', "1");
    await page.fill('input[name="screenshot_every_s"]', "2");
    await page.click("#scenario-add");
    const last = page.locator("#scenario-steps .step").last();
    await last.locator('select[name="step-action"]').selectOption("goto");
    await last.locator('input[name="step-url"]').fill("/broken");
    await page.locator("#problems:empty").waitFor({ timeout: 10_000 });
    await page.click("#start");
    await page.locator('#job-view[data-status="running"]').waitFor({ timeout: 20_000 });
    assert.equal(await page.locator("#jv-levels .level").count(), 2);
    await page.waitForFunction(
      `Number(document.querySelector("#jv-chart-vitals")?.dataset.points) >= 1`,
      null,
      { timeout: 20_000 },
    );
    assert.ok(await page.locator("#jv-chart-rps").isHidden(), "HTTP charts hidden");
    await page.locator('#job-view[data-status="succeeded"]').waitFor({ timeout: 60_000 });
    await page.locator('#jv-levels .level[data-done="true"]').nth(1).waitFor();
    jobId = new URL(page.url()).searchParams.get("job")!;
    assert.match(jobId, /^job_/);
  });

  await t.step("the job page shows sizing, curves, levels and error screenshots", async () => {
    await page.goto(`${server.url}/bench/jobs/${jobId}`);
    // The page shows what the report says, healthy or not (this machine may be busy).
    const sizing = (await api(server.url, `/api/jobs/${jobId}`)).body.result.sizing;
    await page.locator("#sizing-verdict").waitFor({ timeout: 15_000 });
    assert.equal(await page.locator("#sizing-verdict").innerText(), sizing.verdict);
    assert.equal(await page.locator("#sizing-levels tbody tr").count(), 2);
    for (const [i, l] of sizing.levels.entries()) {
      const row = page.locator("#sizing-levels tbody tr").nth(i);
      assert.equal(await row.getAttribute("data-status"), l.status);
    }
    assert.equal(
      await page.locator("#sizing-projections tbody tr").count(),
      sizing.projections.length,
    );
    const models = Object.keys(sizing.models ?? {}).length;
    assert.equal(await page.locator("#sizing-models tbody tr").count(), models);
    if (models) await page.locator("#sizing-curves .chart").nth(models - 1).waitFor();
    assert.equal(await page.locator("#jv-level-table tbody tr").count(), 2);
    // More than three distinct errors (a busy machine adds timeouts) come collapsed: open them.
    const groups = page.locator("#jv-error-groups");
    await groups.waitFor({ state: "attached", timeout: 15_000 });
    if ((await groups.getAttribute("open")) === null) {
      await groups.locator("summary").click();
    }
    // The errors come after the sizing report: scroll to them, as their lazy images wait for it.
    await page.locator("#jv-error-shots figure[data-kind='console']").first()
      .scrollIntoViewIfNeeded();
    const shot = page.locator("#jv-error-shots figure[data-kind='console'] img").first();
    await shot.waitFor({ timeout: 15_000 });
    await page.waitForFunction(
      `[...document.querySelectorAll("#jv-error-shots img")].some((i) => i.naturalWidth > 0)`,
      null,
      { timeout: 10_000 },
    );
    assert.match(
      await page.locator("#jv-error-shots").innerText(),
      /deliberate console error/,
    );
    // One entry per distinct error with its count, after the sizing report; the headline
    // counts what the result counts.
    const result = (await api(server.url, `/api/jobs/${jobId}`)).body.result;
    const group = result.error_log.find((g: { message: string }) =>
      g.message.includes("deliberate")
    );
    assert.ok(group.count >= 2, `visits of /broken: ${group.count}`);
    assert.equal(await page.locator("#jv-error-shots figure").count(), result.error_log.length);
    const figure = page.locator("#jv-error-shots figure[data-kind='console']");
    assert.equal(await figure.getAttribute("data-count"), String(group.count));
    assert.match(await figure.innerText(), new RegExp(`×${group.count}\\b`));
    assert.ok(
      await page.evaluate(`!!(document.querySelector("#jv-sizing").compareDocumentPosition(
        document.querySelector("#jv-errors")) & Node.DOCUMENT_POSITION_FOLLOWING)`),
      "the sizing report comes before the errors",
    );
    assert.equal(
      await page.locator('#jv-kpis [data-kpi="errors"] .v').innerText(),
      String(result.errors.total),
    );
    const cpuPoints = Number(await page.locator("#jv-chart-cpu").getAttribute("data-points"));
    assert.ok(cpuPoints >= 3, "CPU chart from stored samples");
  });

  await t.step("compare with… shows two runs side by side", async () => {
    const other = await api(server.url, "/api/jobs", {
      method: "POST",
      json: {
        type: "browser-bench",
        params: { url: `${site.url}/`, levels: [1, 2], duration_s: 3, baseline_s: 0 },
      },
    });
    assert.equal(other.status, 202);
    const done = await waitForJob(server.url, other.body.id, undefined, { timeoutMs: 60_000 });
    assert.equal(done.status, "succeeded", done.error);
    await page.goto(`${server.url}/bench/jobs/${jobId}`);
    await page.locator("#compare:not(.hidden)").waitFor({ timeout: 15_000 });
    await page.selectOption("#compare-with", other.body.id);
    await page.click('#compare button[type="submit"]');
    await page.waitForURL(`**/bench/compare?a=${jobId}&b=${other.body.id}`);
    const table = page.locator("#compare-table");
    await table.locator("text=LCP p75 ms").waitFor({ timeout: 10_000 });
    // Projections and models exist when a level was healthy (this machine may be busy).
    const sizings = await Promise.all(
      [jobId, other.body.id].map(async (id) =>
        (await api(server.url, `/api/jobs/${id}`)).body.result.sizing
      ),
    );
    if (sizings.some((s) => s.projections.length > 0)) {
      assert.match(await table.innerText(), /100 users: cores/);
    }
    if (sizings.every((s) => s.models !== null)) {
      await page.locator("#compare-curves .chart").first().waitFor();
    }
  });

  assert.deepEqual(pageErrors, []);
});
