/**
 * The sizing report from synthetic samples: windows pick the right samples, the idle baseline is
 * subtracted, models and hold-out come out as computed by hand, and the warnings say what they
 * should.
 */
import assert from "node:assert/strict";
import { buildSizingReport, type CapacityParams, samplesIn, type SweepRecord } from "./report.ts";
import type { Sample } from "../jobs/sampler.ts";

const MB = 1024 * 1024;
const GB = 1024 * MB;

const params: CapacityParams = {
  levels: [1, 2, 4],
  targets: [10, 100],
  safety_factor: 1.5,
  baseline_os_mb: 1024,
  baseline_storage_gb: 20,
  retention_days: 7,
  sessions_per_day: 1,
  node_shape: { cores: 8, memory_gb: 32 },
  baseline_s: 3,
  sample_interval_s: 1,
};

/** One sample per second from `from` to `to` (ms), each covering the second before it. */
function samples(from: number, to: number, cpu: number, mem: number, extra = {}): Sample[] {
  const out: Sample[] = [];
  for (let ts = from + 1000; ts <= to; ts += 1000) {
    out.push({
      ts,
      interval_s: 1,
      cpu_cores: cpu,
      cpu_percent: cpu / 8 * 100,
      cpu_count: 8,
      mem_used_bytes: mem,
      mem_total_bytes: 16 * GB,
      net_rx_bytes: 1000,
      net_tx_bytes: 500,
      ...extra,
    });
  }
  return out;
}

// Idle: 0.5 cores, 1 GB. Each user adds 0.2 cores and 150 MB; disk grows 1 MB per user-level.
const record: SweepRecord = {
  baseline: { from: 0, to: 3000 },
  levels: [
    { concurrency: 1, started: 3000, steady: 4000, ended: 9000 },
    { concurrency: 2, started: 10000, steady: 11000, ended: 16000 },
    { concurrency: 4, started: 17000, steady: 18000, ended: 23000 },
  ],
};
const all = [
  ...samples(0, 3000, 0.5, GB, { disk_bytes: 0 }),
  ...samples(3000, 4000, 3, 5 * GB, { disk_bytes: 0 }), // ramp: outside the measured window
  ...samples(4000, 9000, 0.7, GB + 150 * MB, { disk_bytes: 1 * MB }),
  ...samples(9000, 11000, 0.5, GB, { disk_bytes: 1 * MB }),
  ...samples(11000, 16000, 0.9, GB + 300 * MB, { disk_bytes: 3 * MB }),
  ...samples(16000, 18000, 0.5, GB, { disk_bytes: 3 * MB }),
  ...samples(18000, 23000, 1.3, GB + 600 * MB, { disk_bytes: 7 * MB }),
];

Deno.test("samples are picked by the interval they cover", () => {
  const picked = samplesIn(all, 4000, 9000);
  assert.deepEqual(picked.map((s) => s.ts), [5000, 6000, 7000, 8000, 9000]);
});

Deno.test("a sweep report subtracts the baseline and fits the per-user cost", () => {
  const r = buildSizingReport(params, record, all);
  assert.equal(r.basis, "system");
  assert.equal(r.baseline!.cpu_cores, 0.5);
  assert.deepEqual(
    r.levels.map((l) => Math.round(l.cpu_cores_net * 1000) / 1000),
    [0.2, 0.4, 0.8],
  );
  assert.deepEqual(r.levels.map((l) => l.mem_net_bytes), [150 * MB, 300 * MB, 600 * MB]);
  assert.deepEqual(r.levels.map((l) => l.disk_growth_bytes), [1 * MB, 2 * MB, 4 * MB]);
  for (const l of r.levels) {
    assert.ok(Math.abs(l.per_session.cpu_cores - 0.2) < 1e-9);
    assert.equal(l.per_session.mem_bytes, 150 * MB);
    assert.equal(l.net_rx_bytes_per_s, 1000);
  }
  const cpu = r.models!.cpu!;
  assert.ok(Math.abs(cpu.chosen.b - 0.2) < 1e-9, "0.2 cores per user");
  assert.ok(Math.abs(cpu.validation!.error_pct!) < 1e-6, "the line predicts 4 users exactly");
  assert.equal(cpu.super_linear, false);
  // 100 users: ceil(0.2 × 100 × 1.5) = 30 cores; 150 MB × 100 × 1.5 + 1 GB = 23,524 MB
  const p100 = r.projections.find((p) => p.target === 100)!;
  assert.equal(p100.source, "model");
  assert.equal(p100.required_cores, 30);
  assert.ok(Math.abs(p100.required_ram_bytes - 23_524 * MB) < 1024);
  assert.equal(p100.times_highest_level, 25);
  assert.ok(r.warnings.some((w) => w.startsWith("Target 100 is 25× the highest measured level")));
  assert.ok(!r.warnings.some((w) => w.startsWith("Target 10 is")), "10 is 2.5×: no warning");
  assert.deepEqual(r.footprint, {
    concurrency: 4,
    cpu_per_session: r.levels[2]!.per_session.cpu_cores,
    mem_per_session_bytes: 150 * MB,
    disk_per_session_bytes: 1 * MB,
    disk_per_session_hour_bytes: 1 * MB / (6 / 3600),
  });
});

Deno.test("one level projects from its footprint and says so", () => {
  const one = { ...record, levels: [record.levels[0]!] };
  const r = buildSizingReport({ ...params, levels: undefined, concurrency: 1 }, one, all);
  assert.equal(r.models, null);
  assert.equal(r.projections[0]!.source, "footprint");
  assert.ok(r.warnings.some((w) => w.startsWith("One level measured")));
});

Deno.test("a busy machine and a missing process basis are called out", () => {
  const busy = all.map((s) => ({ ...s, cpu_cores: s.cpu_cores + 5 }));
  const r = buildSizingReport(params, record, busy, "process");
  assert.ok(r.warnings.some((w) => w.startsWith("The job started no processes of its own")));
  const s = buildSizingReport(params, record, busy);
  assert.ok(s.warnings.some((w) => w.startsWith("The machine was busy before the load started")));
});
