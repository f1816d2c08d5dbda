/**
 * The capacity math against values computed by hand (the arithmetic is in the comments): model
 * selection, the memory floor, leave-one-level-out validation, prediction intervals, rates and
 * the projection with its next level to measure.
 */
import assert from "node:assert/strict";
import {
  addedSessionCost,
  fitLinear,
  fitResource,
  leaveOneLevelOut,
  niceLevel,
  predict,
  project,
  rates,
  type SizingInputs,
} from "./projection.ts";

const MB = 1024 ** 2;
const GB = 1024 ** 3;
const close = (actual: number, expected: number, eps = 1e-9) =>
  assert.ok(Math.abs(actual - expected) <= eps, `${actual} ≠ ${expected}`);
/** Level series with one value each (no measurement noise). */
const exact = (points: Array<[number, number]>) => points.map(([n, y]) => ({ n, values: [y] }));

const inputs: SizingInputs = {
  safety_factor: 1.5,
  baseline_os_mb: 1024,
  baseline_storage_gb: 20,
  retention_days: 7,
  sessions_per_day: 2,
  node_shape: { cores: 8, memory_gb: 32 },
};

Deno.test("the linear fit is the least-squares line", () => {
  // (1,1) (2,3) (3,2): mean n 2, mean y 2; Sxy = 1, Sxx = 2 → b = 0.5, a = 1.
  // Fitted 1.5, 2, 2.5 → SSE = 1.5; SST = 2 → R² = 0.25; residual sd = √(1.5 / 1).
  const m = fitLinear([{ n: 1, y: 1 }, { n: 2, y: 3 }, { n: 3, y: 2 }])!;
  close(m.a, 1);
  close(m.b, 0.5);
  close(m.r2!, 0.25);
  close(m.residual_sd!, Math.sqrt(1.5));
  assert.equal(m.df, 1);
  close(predict(m, 10), 6);
});

Deno.test("memory per session never falls below the measured cost of an added session", () => {
  // Concave: (1,100) (2,150) (4,220) (8,300) MB. Least squares: n̄ 3.75, ȳ 192.5,
  // Sxy 792.5, Sxx 28.75 → slope 27.57. Added session 1 → 8: (300 − 100) / 7 = 28.571 > 27.57,
  // so the slope is 28.571 and the line goes through the mean: a = 192.5 − 28.571·3.75 = 85.357.
  const points: Array<[number, number]> = [[1, 100], [2, 150], [4, 220], [8, 300]];
  close(addedSessionCost(points.map(([n, y]) => ({ n, y })))!, 200 / 7);
  const mem = fitResource("memory", exact(points))!.model;
  assert.equal(mem.chosen.kind, "linear");
  close(mem.chosen.b, 200 / 7, 1e-9);
  close(mem.chosen.a, 192.5 - 200 / 7 * 3.75, 1e-9);
  assert.match(mem.reason, /raised to the measured cost of an added session/);
  // CPU keeps the least-squares slope: 792.5 / 28.75.
  close(fitResource("cpu", exact(points))!.model.chosen.b, 792.5 / 28.75, 1e-9);
});

Deno.test("a CPU cost that falls with users is read as flat, never negative", () => {
  const cpu = fitResource("cpu", exact([[1, 0.5], [2, 0.45], [4, 0.4]]))!;
  close(cpu.model.chosen.b, 0);
  close(cpu.model.chosen.a, 0.45, 1e-12);
  assert.ok(cpu.at(1000).low >= 0);
});

Deno.test("a quadratic wins only with 4 levels and a lower held-out error", async (t) => {
  await t.step("y = 1 + n² on 1, 2, 4, 8, 16: quadratic, held-out error 0", () => {
    const fit = fitResource("cpu", exact([1, 2, 4, 8, 16].map((n) => [n, 1 + n * n])))!.model;
    assert.equal(fit.chosen.kind, "quadratic");
    close(fit.chosen.c, 1, 1e-6);
    assert.match(fit.reason, /^quadratic: beats linear on held-out levels \(0\.0 %/);
    assert.equal(fit.validation!.model, "quadratic");
    for (const l of fit.validation!.levels) close(l.error_pct!, 0, 1e-6);
  });
  await t.step("the same curve on 3 levels stays linear (too few to pick a curve)", () => {
    const fit = fitResource("cpu", exact([1, 2, 4].map((n) => [n, 1 + n * n])))!.model;
    assert.equal(fit.chosen.kind, "linear");
    assert.equal(fit.validation, null, "3 levels: unvalidated");
    assert.deepEqual(fit.candidates.map((c) => c.kind), ["linear"]);
  });
  await t.step("a noisy line: the quadratic fits the points better yet loses held out", () => {
    // 10 + 5n ± 1 on 1, 2, 4, 8: the parabola's R² is higher (one more parameter), but it
    // predicts the levels it did not see worse.
    const points: Array<[number, number]> = [[1, 16], [2, 19], [4, 29], [8, 51]];
    const fit = fitResource("cpu", exact(points))!.model;
    assert.equal(fit.chosen.kind, "linear");
    const [lin, quad] = fit.candidates;
    assert.ok(quad!.loo_mean_abs_error_pct! > lin!.loo_mean_abs_error_pct!);
    assert.match(fit.reason, /a quadratic did not beat it on held-out levels/);
  });
  await t.step("a bend that wins held out but lies within the scatter stays a line", () => {
    // 0.1 + 0.1n ± 0.03 on 1–16 users: the parabola's held-out error is lower (3.3 % against
    // 4.4 %), but its n² term is 1.4 standard errors above 0 where t(3) at 95 % is 3.18.
    const points: Array<[number, number]> = [
      [1, 0.21],
      [2, 0.32],
      [4, 0.47],
      [8, 0.89],
      [12, 1.29],
      [16, 1.7],
    ];
    const fit = fitResource("cpu", exact(points))!.model;
    assert.equal(fit.chosen.kind, "linear");
    const [lin, quad] = fit.candidates;
    assert.ok(quad!.loo_mean_abs_error_pct! < lin!.loo_mean_abs_error_pct!);
    assert.match(fit.reason, /n² term is within the levels' scatter \(t = 1\.3\d < 3\.18\)/);
  });
  await t.step("memory is never a parabola, however well it fits", () => {
    const fit = fitResource("memory", exact([1, 2, 4, 8, 16].map((n) => [n, 1 + n * n])))!.model;
    assert.equal(fit.chosen.kind, "linear");
    assert.deepEqual(fit.candidates.map((c) => c.kind), ["linear"]);
  });
});

Deno.test("leave-one-level-out predicts every level from the others", () => {
  // y = 100 + 50n measured as 150, 200, 300, 520 (the last 20 above the line).
  // Leaving out 8: the line through (1,150) (2,200) (4,300) predicts 500 → −3.846 %.
  // Leaving out 1: fit on (2,200) (4,300) (8,520): n̄ 14/3, ȳ 340, Sxy = 1000, Sxx = 18.667
  // → b = 53.571, a = 90 → predicts 143.57 → −4.29 %.
  const v = leaveOneLevelOut("linear", "cpu", [
    { n: 1, y: 150 },
    { n: 2, y: 200 },
    { n: 4, y: 300 },
    { n: 8, y: 520 },
  ])!;
  assert.deepEqual(v.levels.map((l) => l.held_out), [1, 2, 4, 8]);
  close(v.levels[3]!.predicted, 500, 1e-9);
  close(v.levels[3]!.error_pct!, -3.846153846, 1e-6);
  close(v.levels[0]!.predicted, 90 + 1000 / (56 / 3), 1e-9);
  assert.equal(v.max_abs_error_pct, Math.max(...v.levels.map((l) => Math.abs(l.error_pct!))));
  assert.equal(leaveOneLevelOut("linear", "cpu", [{ n: 1, y: 1 }, { n: 2, y: 2 }]), null);
});

Deno.test("the interval is the fit's prediction interval, or the measurement noise", async (t) => {
  await t.step("three exact points: Student's t with 1 degree of freedom", () => {
    // (1,1) (2,3) (3,2): s = √1.5, t(0.975, 1) = 12.7062, at n = 10:
    // x₀ᵀ(XᵀX)⁻¹x₀ = 1/3 + (10 − 2)² / 2 = 32.333 → half = 12.7062 · 1.2247 · √33.333 = 89.85.
    const r = fitResource("cpu", exact([[1, 1], [2, 3], [3, 2]]))!.at(10);
    close(r.value, 6, 1e-9);
    close(r.high, 6 + 12.7062047 * Math.sqrt(1.5) * Math.sqrt(1 + 1 / 3 + 32), 1e-4);
    assert.equal(r.low, 0, "never below zero");
  });
  await t.step("one level: cost in proportion to users, noise from its per-second values", () => {
    // values 1.8, 2.2, 2.0, 2.0 at n = 4: mean 2, sd 0.16330, se = 0.08165; per user 0.5;
    // at n = 100: 50 ± 1.95996 · 0.08165 · 100/4 = 50 ± 4.0008.
    const fit = fitResource("cpu", [{ n: 4, values: [1.8, 2.2, 2.0, 2.0] }])!;
    assert.equal(fit.model.chosen.kind, "proportional");
    const r = fit.at(100);
    close(r.value, 50, 1e-9);
    close(r.high - r.value, 1.959964 * (Math.sqrt(0.08 / 3) / 2) * 25, 1e-4);
  });
});

Deno.test("rates are pooled over session-seconds and never negative", () => {
  // disk: (100 + 300) / (1·10 + 3·10) = 10 B per session-second; a shrinking level counts 0.
  const r = rates([
    { n: 1, seconds: 10, disk_growth_bytes: 100, net_rx_bytes: 400, net_tx_bytes: 40 },
    { n: 3, seconds: 10, disk_growth_bytes: 300, net_rx_bytes: 1200, net_tx_bytes: 120 },
  ]);
  close(r.disk_bytes_per_session_s, 10);
  close(r.net_rx_bytes_per_session_s, 40);
  assert.equal(r.net_bytes_per_request, null);
  const shrink = rates([{
    n: 2,
    seconds: 5,
    disk_growth_bytes: -50,
    net_rx_bytes: 0,
    net_tx_bytes: 0,
  }]);
  assert.equal(shrink.disk_bytes_per_session_s, 0);
  // HTTP: 1,000 requests in 10 s on 2 connections: 50 req/s per connection; 96 B in, 8 KB out.
  const http = rates([{
    n: 2,
    seconds: 10,
    disk_growth_bytes: 0,
    net_rx_bytes: 96_000,
    net_tx_bytes: 8_192_000,
    requests: 1000,
  }]);
  assert.deepEqual(http.net_bytes_per_request, { rx: 96, tx: 8192 });
  close(http.requests_per_s_per_user!, 50);
});

Deno.test("a projection carries its interval, extrapolation and the level to measure next", () => {
  // 1,000 users measured up to 8: 125× → measure max(16, min(32, 1000/20 = 50)) = 32.
  // cores: ceil(30 × 1.5) = 45, interval ceil(27 × 1.5) = 41 .. ceil(33 × 1.5) = 50.
  // RAM: 20 GB × 1.5 + 1 GB = 31 GB; nodes by CPU ceil(45 / 8) = 6, by RAM ceil(30 / 31) = 1.
  const p = project({
    target: 1000,
    cpu: { value: 30, low: 27, high: 33 },
    memory: { value: 20 * GB, low: 18 * GB, high: 22 * GB },
    rates: rates([{
      n: 8,
      seconds: 10,
      disk_growth_bytes: 80 * MB,
      net_rx_bytes: 0,
      net_tx_bytes: 0,
    }]),
    session_s: 60,
    highest: 8,
  }, inputs);
  assert.equal(p.extrapolation_factor, 125);
  assert.equal(p.required_cores, 45);
  assert.deepEqual(p.interval.cores, [41, 50]);
  assert.equal(p.required_ram_bytes, 31 * GB);
  assert.deepEqual(p.nodes, { count: 6, cores: 8, memory_gb: 32, limited_by: "cpu" });
  assert.deepEqual(p.interval.nodes, [6, 7]);
  close(p.uncertainty, 0.1);
  assert.equal(p.recommended_next_level, 32);
  // disk: 1 MB per session-second × 60 s = 60 MB per session; × 1000 × 7 × 2 + 20 GB.
  assert.equal(p.required_disk_bytes, 60 * MB * 1000 * 14 + 20 * GB);
  const near = project({
    ...p,
    target: 16,
    cpu: { value: 1, low: 0.95, high: 1.05 },
    memory: { value: GB, low: GB, high: GB },
    rates: rates([]),
    session_s: 0,
    highest: 8,
  }, inputs);
  assert.equal(near.recommended_next_level, null, "2× and a narrow interval: nothing to add");
  assert.deepEqual([1, 2, 3, 5, 7, 10, 20, 33, 50].map(niceLevel), [1, 2, 3, 6, 8, 12, 24, 48, 64]);
});
