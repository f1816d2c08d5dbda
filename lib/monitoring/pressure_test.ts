/** Availability from the numbers: full first, then CPU, then memory. */
import assert from "node:assert/strict";
import { judgePressure } from "./pressure.ts";

const limits = { maxCpuPercent: 90, maxMemoryPercent: 95, maxQueued: 10 };
const calm = { cpu: 20, memory: 40, running: 0, queued: 0, slots: 4 };

Deno.test("available while running + queued stay under the slots plus the queue limit", () => {
  const p = judgePressure({ ...calm, running: 4, queued: 9 }, limits, 0);
  assert.equal(p.is_available, true);
  assert.equal(p.reason, "");
  assert.equal(p.date, "1970-01-01T00:00:00.000Z");
  assert.deepEqual(
    [p.running, p.queued, p.max_concurrent, p.max_queued],
    [4, 9, 4, 10],
  );
});

Deno.test("full when running + queued reach the slots plus the queue limit", () => {
  const p = judgePressure({ ...calm, running: 4, queued: 10, cpu: 99 }, limits);
  assert.equal(p.is_available, false);
  assert.equal(p.reason, "full", "full wins over cpu");
  assert.equal(
    p.message,
    "The platform is full: 4 jobs running in 4 worker slots and 10 queued " +
      "(STREAMPLAY_MAX_QUEUED=10)",
  );
});

Deno.test("CPU and memory over their limits, CPU first", () => {
  const cpu = judgePressure({ ...calm, cpu: 90.5, memory: 99 }, limits);
  assert.equal(cpu.reason, "cpu");
  assert.equal(cpu.message, "CPU is at 90.5%, over STREAMPLAY_MAX_CPU_PERCENT=90");
  const mem = judgePressure({ ...calm, memory: 96 }, limits);
  assert.equal(mem.reason, "memory");
  assert.equal(mem.message, "Memory is at 96%, over STREAMPLAY_MAX_MEMORY_PERCENT=95");
  assert.equal(judgePressure({ ...calm, cpu: 90 }, limits).reason, "", "at the limit is not over");
});

Deno.test("a CPU limit of 100 never refuses; no worker slots still lets jobs queue", () => {
  const none = { ...limits, maxCpuPercent: 100 };
  assert.equal(judgePressure({ ...calm, cpu: 100 }, none).is_available, true);
  assert.equal(judgePressure({ ...calm, slots: 0, queued: 9 }, limits).is_available, true);
  assert.equal(judgePressure({ ...calm, slots: 0, queued: 10 }, limits).reason, "full");
});
