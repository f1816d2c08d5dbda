/**
 * The same numbers wherever a user reads them: one live session is 1 job running of 8 slots in
 * `/api/health`, `/metrics` and on the dashboard; the sizing view prints a falling model term with
 * a minus and a target's factor as the report does.
 */
import assert from "node:assert/strict";
import { api, startServer, waitFor } from "./helpers.ts";
import { launchBrowser } from "./browser.ts";
import { startPages } from "./session_helpers.ts";

/** The sum of a metric's samples in a Prometheus text exposition (every label set). */
function metric(text: string, name: string): number {
  return text.split("\n")
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .reduce((a, line) => a + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
}

Deno.test("one session counts as one job of the same slots everywhere", async (t) => {
  await using pages = startPages();
  await using server = await startServer({
    env: {
      STREAMPLAY_CONCURRENCY: "2",
      STREAMPLAY_MAX_SESSIONS: "3",
      STREAMPLAY_METRICS_INTERVAL_S: "1",
    },
  });
  const base = server.url;
  await using browser = await launchBrowser();
  const page = await browser.newPage();
  const created = await api(base, "/api/sessions", { method: "POST", json: { url: pages.url } });
  assert.equal(created.status, 201, JSON.stringify(created.body));

  try {
    await t.step("/api/health: 1 running of 8 slots, each pool apart", async () => {
      const { body } = await api(base, "/api/health");
      assert.deepEqual(body.workers, {
        concurrency: 2,
        slots: 8,
        running: 1,
        pools: {
          shared: { capacity: 2, running: 0 },
          session: { capacity: 3, running: 1 },
          replay: { capacity: 3, running: 0 },
        },
      });
    });

    await t.step("/metrics counts the same", async () => {
      await waitFor(async () => {
        const text = await (await fetch(`${base}/metrics`)).text();
        return metric(text, "streamplay_jobs_running") === 1 &&
          metric(text, "streamplay_worker_slots") === 8;
      }, { what: "streamplay_jobs_running 1 and streamplay_worker_slots 8" });
    });

    await t.step("the dashboard says 1 / 8, and so does its process row", async () => {
      await page.goto(`${base}/dashboard`);
      const running = page.locator('[data-kpi="running"] .v');
      await page.waitForFunction(
        `document.querySelector('[data-kpi="running"] .v')?.textContent === "1 / 8"`,
        null,
        { timeout: 15_000 },
      );
      assert.equal(await running.innerText(), "1 / 8");
      const row = page.locator("#workers tbody tr").first();
      assert.equal(await row.locator("td").nth(2).innerText(), "8");
      assert.equal(await row.locator("td").nth(3).innerText(), "1");
    });
  } finally {
    await api(base, `/api/sessions/${created.body.id}`, { method: "DELETE" });
  }

  await t.step("the sizing view: a minus for a falling term, the report's factor", async () => {
    const shown = await page.evaluate(async () => {
      const view = await import("/static/js/sizing_view.js");
      return {
        linear: view.modelText("memory", { kind: "linear", a: 164.2 * 1024, b: -23.5 * 1024 }),
        quadratic: view.modelText("cpu", { kind: "quadratic", a: 0.5, b: 0.25, c: -0.01 }),
        factor: view.fmtFactor(12.5),
      };
    });
    assert.deepEqual(shown, {
      linear: "164.2 KB − 23.5 KB · n",
      quadratic: "0.50 + 0.25 · n − 0.01 · n²",
      factor: "12.5×",
    });
  });
});
