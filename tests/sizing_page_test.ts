/**
 * The sizing view in headless Chromium on a hand-set report (1–8 users healthy, 16 out of CPU): the
 * verdict, level rows, each model with its band, held-out and saturated points, projections with
 * their intervals and the next level to measure.
 */
import assert from "node:assert/strict";
import { startServer } from "./helpers.ts";
import { launchBrowser } from "./browser.ts";
import { buildSizingReport, type SweepRecord } from "../lib/capacity/report.ts";
import type { Sample } from "../lib/jobs/sampler.ts";

const MB = 1024 * 1024;
const LEVELS = [1, 2, 4, 8, 16];

/** Per-second samples: browsers 0.2 cores and 40 MB a user; at 16 they wait 3× their run time. */
function sweep(): { record: SweepRecord; samples: Sample[] } {
  const samples: Sample[] = [];
  const levels = LEVELS.map((n, i) => {
    const started = i * 10_000;
    for (let ts = started + 2000, k = 0; ts <= started + 9000; ts += 1000, k++) {
      samples.push({
        ts,
        interval_s: 1,
        cpu_cores: 0.2 * n,
        cpu_percent: 0.2 * n / 8 * 100,
        cpu_count: 8,
        mem_used_bytes: 4096 * MB,
        mem_total_bytes: 16_384 * MB,
        net_rx_bytes: 1000 * n,
        net_tx_bytes: 100 * n,
        proc_count: 3,
        proc_cpu_cores: 0.2 * n + (k % 2 ? 0.02 : -0.02),
        proc_mem_bytes: (40 * n + 100) * MB + (k % 2 ? MB : -MB),
        proc_cpu_wait_cores: n === 16 ? 9.6 : 0.01,
        platform_cpu_cores: 0.05,
        platform_mem_bytes: 200 * MB,
        worker_thread_cores: 0.1,
      });
    }
    return { concurrency: n, started, steady: started + 1000, ended: started + 9000 };
  });
  return { record: { baseline: null, levels }, samples };
}

Deno.test("the sizing view draws the fit, its band, held-out and saturated levels", async () => {
  await using server = await startServer({ env: { STREAMPLAY_CONCURRENCY: "0" } });
  await using browser = await launchBrowser();
  const { record, samples } = sweep();
  const report = buildSizingReport(
    {
      levels: LEVELS,
      targets: [100, 1000],
      safety_factor: 1.5,
      baseline_os_mb: 1024,
      baseline_storage_gb: 20,
      retention_days: 7,
      sessions_per_day: 1,
      node_shape: { cores: 8, memory_gb: 32 },
      baseline_s: 0,
      sample_interval_s: 1,
    },
    record,
    samples,
    { basis: "process", sessionS: 10 },
  );
  assert.deepEqual(report.saturated_levels, [16]);
  assert.equal(report.validated, true);

  const page = await browser.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${server.url}/bench`);
  await page.evaluate(`(async () => {
    const { renderSizing } = await import("/static/js/sizing_view.js");
    const root = document.createElement("div");
    document.body.append(root);
    renderSizing(root, ${JSON.stringify(report)});
  })()`);
  await page.locator("#sizing-curves .chart").nth(1).waitFor({ timeout: 10_000 });

  assert.equal(await page.locator("#sizing-verdict").innerText(), report.verdict);
  assert.match(report.verdict, /measured up to 8 users \(saturated at 16\), 125× extrapolation/);
  assert.match(report.verdict, /— measure 32 users to narrow it\.$/);
  const rows = page.locator("#sizing-levels tbody tr");
  assert.equal(await rows.count(), 5);
  assert.equal(await rows.nth(4).getAttribute("data-status"), "saturated");
  assert.match(await rows.nth(4).innerText(), /saturated: out of CPU: the browsers waited/);
  for (const name of ["cpu", "memory"]) {
    const chart = page.locator(`#sizing-curves [data-resource="${name}"]`);
    assert.equal(await chart.getAttribute("data-points"), "4", `${name}: the healthy levels`);
    assert.equal(await chart.getAttribute("data-held-out"), "4", `${name}: each level held out`);
    assert.equal(await chart.getAttribute("data-excluded"), "1", `${name}: level 16 marked`);
    assert.match(await chart.innerText(), /95 % prediction band/);
  }
  assert.match(
    await page.locator("#sizing-models").innerText(),
    /n=1: .* vs .*n=8: .* vs /,
    "every held-out error printed",
  );
  const projections = page.locator("#sizing-projections tbody tr");
  assert.equal(await projections.count(), 2);
  assert.match(await projections.nth(1).innerText(), /\(\d+–\d+\).*125×\s+32 users/s);
  assert.deepEqual(errors, []);
});
