/** Forecasts from stored platform samples (a real DuckDB file), and the histogram quantile. */
import assert from "node:assert/strict";
import { openHistory, tsValue } from "../history/store.ts";
import { bucketQuantile, forecasts } from "./monitor.ts";

const LIMITS = { maxQueued: 1_000, maxMemoryPercent: 95 };
const GB = 1024 ** 3;

Deno.test("forecasts extrapolate the stored trends", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "streamplay-forecast-" });
  await using history = await openHistory(`${dir}/db.duckdb`);
  const now = Date.parse("2026-11-01T12:00:00Z");
  const minutes = (m: number) => now - m * 60_000;

  await t.step("without enough history every forecast says so", async () => {
    const f = await forecasts(history, LIMITS, now);
    assert.deepEqual(f.map((x) => [x.kind, x.status]), [
      ["disk", "unknown"],
      ["queue", "unknown"],
      ["memory", "unknown"],
    ]);
    assert.match(f[0]!.message, /needs 15 minutes of samples/);
  });

  await t.step("a shrinking disk, a growing queue and a steady memory", async () => {
    await history.append("platform_samples", (a) => {
      const row = (ms: number, series: string, v: number) => {
        a.appendTimestampTZ(tsValue(ms));
        a.appendVarchar(series);
        a.appendDouble(v);
        a.endRow();
      };
      for (let m = 40; m >= 0; m--) {
        // 10 GB free, losing 2 GB an hour: full in 5 hours.
        row(minutes(m), "disk_free_bytes", 10 * GB + (m / 60) * 2 * GB);
        row(minutes(m), "memory_percent", 50);
      }
      // 100 jobs waiting, 10 more each minute, for 10 minutes.
      for (let m = 10; m >= 0; m--) row(minutes(m), "jobs_queued", 100 + (10 - m) * 10);
    });
    const [disk, queue, memory] = await forecasts(history, LIMITS, now);
    assert.equal(disk!.status, "warning");
    assert.ok(Math.abs(disk!.eta_hours! - 5) < 0.01, String(disk!.eta_hours));
    assert.match(disk!.message, /^The disk holding the data directory fills in 5 hours/);
    assert.equal(queue!.status, "warning");
    assert.match(
      queue!.message,
      /^The queue grows faster than it drains: \+10 jobs\/min, 200 waiting; it reaches STREAMPLAY_MAX_QUEUED \(1,000\) in 80 min$/,
    );
    assert.equal(memory!.status, "ok");
    assert.equal(memory!.message, "Memory use is steady (50%)");
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bucket quantiles interpolate like histogram_quantile", () => {
  // 10 observations ≤ 0.1, 10 more ≤ 0.5, none above.
  const buckets: Array<[number, number]> = [[0.1, 10], [0.5, 20], [1, 20], [Infinity, 20]];
  assert.equal(bucketQuantile(buckets, 0.5), 0.1);
  assert.ok(Math.abs(bucketQuantile(buckets, 0.75)! - 0.3) < 1e-12);
  assert.equal(bucketQuantile([[0.1, 0], [Infinity, 0]], 0.5), null);
  assert.equal(bucketQuantile([[1, 0], [Infinity, 4]], 0.9), 1, "+Inf bucket: its lower bound");
});
