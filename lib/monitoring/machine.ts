/**
 * This machine and this process, sampled cheaply enough to run every second: CPU, memory, the
 * process's own CPU and resident memory, and the free space of the data directory's filesystem.
 */
import os from "node:os";
import fs from "node:fs";
import process from "node:process";
import { errorMessage, type Logger } from "../core/log.ts";

export interface MachineSample {
  /** Machine CPU busy over the interval, 0–100 (all cores). */
  cpu_percent: number;
  memory_percent: number;
  memory_used_bytes: number;
  memory_total_bytes: number;
  /** CPU this process used over the interval, in % of one core. */
  process_cpu_percent: number;
  process_rss_bytes: number;
  /** Free and total bytes of the filesystem of the data directory (null if unknown). */
  disk_free_bytes: number | null;
  disk_total_bytes: number | null;
}

export interface MachineProbe {
  /** A sample covering the time since the previous call (the first covers process start-up). */
  sample(): MachineSample;
}

function cpuTimes(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const { times } of os.cpus()) {
    const all = times.user + times.nice + times.sys + times.idle + times.irq;
    total += all;
    busy += all - times.idle;
  }
  return { busy, total };
}

const round1 = (v: number) => Math.round(v * 10) / 10;

/**
 * CPU busy % over the interval comes from per-core times, memory in use is total − available. No
 * child processes and no /proc reads: only Deno and node:os calls (~0.1 ms a sample).
 */
export function createMachineProbe(options: { dataDir: string; log: Logger }): MachineProbe {
  let lastCpu = cpuTimes();
  let lastProc = process.cpuUsage();
  let lastAt = performance.now();
  let diskWarned = false;
  return {
    sample() {
      const cpu = cpuTimes();
      const proc = process.cpuUsage();
      const now = performance.now();
      const dTotal = cpu.total - lastCpu.total;
      const cpuPercent = dTotal > 0 ? (100 * (cpu.busy - lastCpu.busy)) / dTotal : 0;
      const procMicros = proc.user + proc.system - lastProc.user - lastProc.system;
      const elapsedMs = Math.max(1, now - lastAt);
      lastCpu = cpu;
      lastProc = proc;
      lastAt = now;
      const mem = Deno.systemMemoryInfo();
      const used = mem.total - mem.available;
      let diskFree: number | null = null;
      let diskTotal: number | null = null;
      try {
        const st = fs.statfsSync(options.dataDir);
        diskFree = st.bavail * st.bsize;
        diskTotal = st.blocks * st.bsize;
      } catch (err) {
        if (!diskWarned) {
          diskWarned = true;
          options.log.warn("cannot read the free disk space", { error: errorMessage(err) });
        }
      }
      return {
        cpu_percent: round1(Math.min(100, Math.max(0, cpuPercent))),
        memory_percent: round1((100 * used) / mem.total),
        memory_used_bytes: used,
        memory_total_bytes: mem.total,
        process_cpu_percent: round1(procMicros / 10 / elapsedMs),
        process_rss_bytes: Deno.memoryUsage().rss,
        disk_free_bytes: diskFree,
        disk_total_bytes: diskTotal,
      };
    },
  };
}
