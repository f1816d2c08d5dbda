/**
 * The capacity formulas against values computed by hand (the arithmetic is in the comments).
 */
import assert from "node:assert/strict";
import {
  fitLinear,
  fitModels,
  fitPower,
  footprint,
  holdOut,
  predict,
  project,
  r2Of,
  type SizingInputs,
} from "./projection.ts";

const MB = 1024 ** 2;
const GB = 1024 ** 3;
const close = (actual: number, expected: number, eps = 1e-9) =>
  assert.ok(Math.abs(actual - expected) <= eps, `${actual} ≠ ${expected}`);

const inputs: SizingInputs = {
  safety_factor: 1.5,
  baseline_os_mb: 1024,
  baseline_storage_gb: 20,
  retention_days: 7,
  sessions_per_day: 2,
  node_shape: { cores: 8, memory_gb: 32 },
};

Deno.test("footprint divides net use by concurrency and disk growth by sessions", () => {
  // 1.2 cores / 4 = 0.3; 600 MB / 4 = 150 MB; 30 MB / 4 sessions = 7.5 MB;
  // 7.5 MB per 60 s session = 7.5 MB / (1/60 h) = 450 MB per hour.
  const f = footprint({
    avgCoresNet: 1.2,
    avgMemNetBytes: 600 * MB,
    diskGrowthBytes: 30 * MB,
    concurrency: 4,
    sessions: 4,
    sessionSeconds: 60,
  });
  close(f.cpu_per_session, 0.3);
  close(f.mem_per_session_bytes, 150 * MB);
  close(f.disk_per_session_bytes, 7.5 * MB);
  close(f.disk_per_session_hour_bytes, 450 * MB, 1e-3);
});

Deno.test("projection applies the cores, RAM, disk and node formulas", () => {
  const p = project({ cpu_cores: 0.3, mem_bytes: 150 * MB, disk_bytes: 7.5 * MB }, 100, inputs);
  // cores: ceil(0.3 × 100 × 1.5) = ceil(45) = 45
  assert.equal(p.required_cores, 45);
  // RAM: 150 MB × 100 × 1.5 + 1024 MB = 22,500 MB + 1,024 MB = 23,524 MB
  assert.equal(p.required_ram_bytes, 23_524 * MB);
  // disk: 7.5 MB × 100 × 7 days × 2 sessions/day + 20 GB = 10,500 MB + 20 GB
  assert.equal(p.required_disk_bytes, 10_500 * MB + 20 * GB);
  // nodes of 8 cores / 32 GB: by CPU ceil(45 / 8) = 6; by RAM ceil(22,500 / (32,768 − 1,024)) = 1
  assert.deepEqual(p.nodes, { count: 6, cores: 8, memory_gb: 32, limited_by: "cpu" });
});

Deno.test("projection rounds cores up and can be limited by memory", () => {
  // cores: ceil(0.01 × 10 × 1.5) = ceil(0.15) = 1; RAM per node 4 GB − 1 GB = 3,072 MB;
  // RAM load 400 MB × 10 × 1.5 = 6,000 MB → ceil(6,000 / 3,072) = 2 nodes, CPU needs 1.
  const p = project({ cpu_cores: 0.01, mem_bytes: 400 * MB, disk_bytes: 0 }, 10, {
    ...inputs,
    node_shape: { cores: 2, memory_gb: 4 },
  });
  assert.equal(p.required_cores, 1);
  assert.equal(p.required_ram_bytes, 7_024 * MB);
  assert.equal(p.required_disk_bytes, 20 * GB);
  assert.deepEqual(p.nodes, { count: 2, cores: 2, memory_gb: 4, limited_by: "memory" });
});

Deno.test("projection refuses a node shape with no memory left after the OS", () => {
  assert.throws(
    () =>
      project({ cpu_cores: 1, mem_bytes: 1, disk_bytes: 0 }, 1, {
        ...inputs,
        node_shape: { cores: 4, memory_gb: 1 },
      }),
    /node memory must exceed baseline_os_mb/,
  );
});

Deno.test("linear fit matches the least-squares line and its R²", () => {
  // (1,1) (2,3) (3,2): mean x 2, mean y 2; Sxy = 1, Sxx = 2 → b = 0.5, a = 2 − 0.5·2 = 1.
  // Fitted 1.5, 2, 2.5 → SSE = 0.25 + 1 + 0.25 = 1.5; SST = 1 + 1 + 0 = 2 → R² = 0.25.
  const m = fitLinear([{ n: 1, y: 1 }, { n: 2, y: 3 }, { n: 3, y: 2 }])!;
  close(m.a, 1);
  close(m.b, 0.5);
  close(m.r2, 0.25);
  close(predict(m, 10), 6);
});

Deno.test("power fit recovers y = 3·n^1.5 and flags it super-linear", () => {
  // 3·1^1.5 = 3, 3·4^1.5 = 24, 3·9^1.5 = 81
  const points = [{ n: 1, y: 3 }, { n: 4, y: 24 }, { n: 9, y: 81 }];
  const p = fitPower(points)!;
  close(p.a, 3, 1e-9);
  close(p.b, 1.5, 1e-9);
  close(p.r2, 1, 1e-9);
  const fit = fitModels(points)!;
  assert.equal(fit.chosen.kind, "power");
  assert.ok(fit.linear.r2 < 1);
  assert.equal(fit.super_linear, true);
});

Deno.test("a fixed cost plus a per-session cost picks the linear model, not super-linear", () => {
  // y = 100 + 50·n exactly
  const fit = fitModels([1, 2, 4, 8].map((n) => ({ n, y: 100 + 50 * n })))!;
  assert.equal(fit.chosen.kind, "linear");
  close(fit.chosen.a, 100, 1e-9);
  close(fit.chosen.b, 50, 1e-9);
  assert.ok(fit.power!.b < 1, "the power exponent of a line with an intercept is below 1");
  assert.equal(fit.super_linear, false);
});

Deno.test("power model is skipped when a value is not positive; ties go to linear", () => {
  assert.equal(fitPower([{ n: 1, y: 0 }, { n: 2, y: 1 }]), null);
  // (1,2) (2,4) (4,8): both y = 2n (linear) and y = 2·n^1 (power) fit exactly → linear.
  const fit = fitModels([{ n: 1, y: 2 }, { n: 2, y: 4 }, { n: 4, y: 8 }])!;
  assert.equal(fit.chosen.kind, "linear");
  assert.equal(fit.super_linear, false);
  assert.equal(fitModels([{ n: 3, y: 1 }, { n: 3, y: 2 }]), null, "one level cannot be fitted");
});

Deno.test("R² of a constant series is 1 for an exact fit", () => {
  close(r2Of({ kind: "linear", a: 5, b: 0 }, [{ n: 1, y: 5 }, { n: 2, y: 5 }]), 1);
  close(r2Of({ kind: "linear", a: 4, b: 0 }, [{ n: 1, y: 5 }, { n: 2, y: 5 }]), 0);
});

Deno.test("hold-out validation predicts the highest level from the others", () => {
  // Fit on (1,150) (2,200) (4,300): y = 100 + 50n exactly → predicts 500 at n = 8.
  // Measured 520 → error (500 − 520) / 520 = −3.846 %.
  const v = holdOut([{ n: 1, y: 150 }, { n: 2, y: 200 }, { n: 4, y: 300 }, { n: 8, y: 520 }])!;
  assert.equal(v.held_out, 8);
  assert.equal(v.model, "linear");
  close(v.predicted, 500, 1e-9);
  assert.equal(v.measured, 520);
  close(v.error_pct!, -3.846153846, 1e-6);
  assert.equal(holdOut([{ n: 1, y: 1 }, { n: 2, y: 2 }]), null, "two levels leave one to fit");
});
