/** The anomaly detector on synthetic series, one sample per second. */
import assert from "node:assert/strict";
import { createDetector, type DetectorEvent, type DetectorOptions } from "./anomaly.ts";

/** A small seeded PRNG so the noise is the same on every run. */
function noise(seed: number) {
  let s = seed;
  return () => {
    s = (s * 1664525 + 1013904223) % 4294967296;
    return s / 4294967296 - 0.5;
  };
}

function feed(options: DetectorOptions, values: number[], t0 = 1_000_000) {
  const d = createDetector(options);
  const events: Array<DetectorEvent & { at: number }> = [];
  values.forEach((v, i) => {
    const e = d.update(t0 + i * 1000, v);
    if (e) events.push({ ...e, at: i });
  });
  return { d, events };
}

const cpu: DetectorOptions = {
  series: "cpu_percent",
  direction: "high",
  z: 3.5,
  minDurationS: 5,
  minScale: 5,
};

Deno.test("a steady noisy series raises no alert", () => {
  const r = noise(1);
  const { events } = feed(cpu, Array.from({ length: 2000 }, () => 40 + 8 * r()));
  assert.deepEqual(events, []);
});

Deno.test("a blip shorter than the minimum duration is not an alert", () => {
  const r = noise(2);
  const values = Array.from({ length: 120 }, () => 20 + 4 * r());
  values[60] = 100;
  values[61] = 100;
  values[62] = 100;
  const { events } = feed(cpu, values);
  assert.deepEqual(events, []);
});

Deno.test("a sustained rise opens one alert after the minimum duration and resolves once", () => {
  const r = noise(3);
  const values = [
    ...Array.from({ length: 60 }, () => 20 + 4 * r()),
    ...Array.from({ length: 30 }, () => 90 + 4 * r()),
    ...Array.from({ length: 30 }, () => 20 + 4 * r()),
  ];
  const { events } = feed(cpu, values);
  assert.equal(events.length, 2, JSON.stringify(events));
  const [alert, resolved] = events;
  assert.equal(alert!.kind, "alert");
  assert.equal(alert!.at, 65, "alert after 5 s out of range");
  const a = alert!.anomaly;
  assert.equal(a.series, "cpu_percent");
  assert.equal(a.since, 1_000_000 + 60_000);
  assert.ok(a.value > 85 && a.z >= 3.5);
  assert.ok(Math.abs(a.baseline - 20) < 2, `baseline ${a.baseline}`);
  assert.ok(a.expected_low >= 0 && a.expected_high < 85, `${a.expected_low}–${a.expected_high}`);
  assert.equal(resolved!.kind, "resolved");
  assert.equal(resolved!.at, 95, "resolved after 5 s back in range");
  assert.ok(resolved!.anomaly.peak >= a.value);
});

Deno.test("a low-watched series alerts on drops, not on rises", () => {
  const r = noise(4);
  const fps: DetectorOptions = { ...cpu, series: "session_fps", direction: "low", minScale: 3 };
  const rise = feed(fps, [
    ...Array.from({ length: 40 }, () => 30 + 2 * r()),
    ...Array.from({ length: 20 }, () => 60),
  ]);
  assert.deepEqual(rise.events, []);
  const drop = feed(fps, [
    ...Array.from({ length: 40 }, () => 30 + 2 * r()),
    ...Array.from({ length: 20 }, () => 5),
  ]);
  assert.equal(drop.events.length, 1);
  assert.equal(drop.events[0]!.anomaly.direction, "low");
});

Deno.test("nothing is judged during the warm-up", () => {
  const { events, d } = feed(cpu, [10, 10, 10, 10, 10, 95, 95, 95, 95, 95, 95, 95, 95, 95]);
  assert.deepEqual(events, []);
  assert.equal(d.active(), null);
});

Deno.test("a flat-zero series alerts only beyond its minimum scale", () => {
  const rate: DetectorOptions = {
    series: "job_failure_rate",
    direction: "high",
    z: 3.5,
    minDurationS: 3,
    minScale: 0.05,
  };
  const small = feed(rate, [...Array(30).fill(0), ...Array(20).fill(0.1)]);
  assert.deepEqual(small.events, [], "0.1/s is within 3.5 × 0.05 of zero");
  const burst = feed(rate, [...Array(30).fill(0), ...Array(20).fill(0.5)]);
  assert.equal(burst.events.length, 1);
  assert.equal(burst.events[0]!.anomaly.expected_low, 0);
  assert.ok(Math.abs(burst.events[0]!.anomaly.expected_high - 0.175) < 1e-9);
});
