/**
 * The dashboard page in headless Chromium, first opened after jobs ran: its live feed shows the
 * recent jobs from history at once; and its charts drawn as the page draws them: bitrate on its
 * own axis beside frame rates, and wait/run times in µs/ms/s with an axis wide enough for them.
 */
import assert from "node:assert/strict";
import { api, startServer, waitForJob } from "./helpers.ts";
import { launchBrowser } from "./browser.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

Deno.test("dashboard: recent events when opened, bitrate on its own axis, readable times", async (t) => {
  await using server = await startServer({ env: { STREAMPLAY_METRICS_INTERVAL_S: "1" } });
  await using browser = await launchBrowser();
  const page = await browser.newPage();
  const pageErrors: string[] = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));

  await t.step("jobs that ran before the page opened are in its feed", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await api(server.url, "/api/jobs", { method: "POST", json: { type: "noop" } });
      assert.equal(r.status, 202, JSON.stringify(r.body));
      ids.push(r.body.id);
    }
    for (const id of ids) await waitForJob(server.url, id);
    // History stores events a moment after they happen.
    await new Promise((r) => setTimeout(r, 1500));
    await page.goto(`${server.url}/dashboard`);
    for (const id of ids) {
      await page.locator(`#feed .change[data-action="ended"]`, { hasText: id }).waitFor({
        timeout: 10_000,
      });
    }
    assert.equal(
      await page.locator(`#feed .change[data-action="started"]`).count(),
      3,
      "each started once, not repeated",
    );
  });

  /** Draws one of the dashboard's charts in a fresh box with the given points (one a second). */
  const draw = (id: string, rows: Array<Array<number | null>>): Promise<Json> =>
    page.evaluate(`(async () => {
      const { lineChart } = await import("/static/js/charts.js");
      const { CHARTS } = await import("/static/js/dashboard_charts.js");
      const { title, series, ...options } = CHARTS.find((c) => c.id === ${JSON.stringify(id)});
      const box = document.createElement("div");
      // Beside the dashboard, not in place of it: its live code still updates its own boxes.
      box.style.cssText = "width: 460px; position: absolute; left: 0; top: 0";
      document.body.append(box);
      const chart = lineChart(box, { title, series: series.map((s) => s[1]), ...options });
      const rows = ${JSON.stringify(rows)};
      const now = Math.floor(Date.now() / 1000);
      rows.forEach((row, i) => chart.push(now - rows.length + i, row));
      // uPlot lays out and draws on the next frames.
      for (let i = 0; i < 3; i++) await new Promise((r) => requestAnimationFrame(r));
      const plot = chart.plot;
      const canvas = box.querySelector("canvas");
      // Any text drawn in the left-most 2 px means a label was cut at the edge.
      const edge = canvas.getContext("2d").getImageData(0, 0, 2, canvas.height).data;
      return {
        scales: plot.series.slice(1).map((s) => s.scale),
        axes: plot.axes.length,
        max: Object.fromEntries(Object.entries(plot.scales).map(([k, v]) => [k, v.max])),
        ticks: plot.axes[1].values(plot, [0.00004, 0.0012, 3.5]),
        clipped: edge.some((v, i) => i % 4 === 3 && v > 0),
      };
    })()`);

  await t.step("the bitrate has its own axis on the right, not flat at 0", async () => {
    const rows = Array.from({ length: 60 }, (_, i) => [30, 25 + (i % 5), 0.6 + (i % 3) / 10]);
    const shown = await draw("chart-streams", rows);
    assert.deepEqual(shown.scales, ["y", "y", "right"]);
    assert.equal(shown.axes, 3);
    assert.ok(shown.max.y >= 30, `fps scale up to ${shown.max.y}`);
    assert.ok(shown.max.right < 2, `bitrate scale up to ${shown.max.right}, not 30`);
  });

  await t.step("wait and run times read in µs, ms and s, their labels whole", async () => {
    const rows = Array.from({ length: 60 }, (_, i) => [0.000041 + i * 1e-7, 0.00009, null, null]);
    const shown = await draw("chart-times", rows);
    assert.deepEqual(shown.ticks, ["40 µs", "1.2 ms", "3.5 s"]);
    assert.equal(shown.clipped, false, "no tick label is cut at the chart's left edge");
  });

  assert.deepEqual(pageErrors, []);
});
