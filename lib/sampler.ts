/**
 * Machine resource samples while jobs run: CPU cores used (sum of per-core load / 100), memory
 * in use, and network bytes in and out during the interval. One timer serves every tracked job;
 * each job receives the samples taken during its run and a summary at the end.
 */
import si from "systeminformation";
import { parseNetDev, readProcFiles } from "./procfs.ts";
import { errorMessage, type Logger } from "./log.ts";

export interface Sample {
  cpu_cores: number;
  cpu_percent: number;
  mem_used_bytes: number;
  mem_total_bytes: number;
  net_rx_bytes: number;
  net_tx_bytes: number;
  [field: string]: number;
}

export interface ResourceSummary {
  samples: number;
  cpu_cores_avg: number;
  cpu_cores_max: number;
  mem_used_avg_bytes: number;
  mem_used_max_bytes: number;
  net_rx_bytes: number;
  net_tx_bytes: number;
}

export interface Tracking {
  /** Stops sampling for this job and returns what its samples add up to. */
  stop(): ResourceSummary;
}

export interface Sampler {
  track(jobId: string, onSample: (sample: Sample) => void): Tracking;
  /** Takes one sample now (no job needed). */
  sample(): Promise<Sample>;
  close(): void;
}

export function summarize(samples: Sample[]): ResourceSummary {
  const n = samples.length;
  const sum = (k: keyof Sample) => samples.reduce((a, s) => a + (s[k] ?? 0), 0);
  const max = (k: keyof Sample) => samples.reduce((a, s) => Math.max(a, s[k] ?? 0), 0);
  const round = (v: number, d = 3) => Math.round(v * 10 ** d) / 10 ** d;
  return {
    samples: n,
    cpu_cores_avg: n ? round(sum("cpu_cores") / n) : 0,
    cpu_cores_max: round(max("cpu_cores")),
    mem_used_avg_bytes: n ? Math.round(sum("mem_used_bytes") / n) : 0,
    mem_used_max_bytes: max("mem_used_bytes"),
    net_rx_bytes: sum("net_rx_bytes"),
    net_tx_bytes: sum("net_tx_bytes"),
  };
}

export function createSampler(options: { log: Logger; intervalMs?: number }): Sampler {
  const intervalMs = options.intervalMs ?? 1000;
  const tracked = new Map<string, { onSample: (s: Sample) => void; samples: Sample[] }>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let lastNet: { rx: number; tx: number } | undefined;
  let busy = false;

  const readNet = async () => {
    const files = await readProcFiles(["/proc/net/dev"]);
    return parseNetDev(files.get("/proc/net/dev") ?? "");
  };

  const take = async (): Promise<Sample> => {
    const [load, mem, net] = await Promise.all([si.currentLoad(), si.mem(), readNet()]);
    const prev = lastNet ?? net;
    lastNet = net;
    const cores = load.cpus.reduce((a, c) => a + c.load, 0) / 100;
    return {
      cpu_cores: Math.round(cores * 1000) / 1000,
      cpu_percent: Math.round(load.currentLoad * 10) / 10,
      mem_used_bytes: mem.active,
      mem_total_bytes: mem.total,
      net_rx_bytes: Math.max(0, net.rx - prev.rx),
      net_tx_bytes: Math.max(0, net.tx - prev.tx),
    };
  };

  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      const s = await take();
      for (const t of tracked.values()) {
        t.samples.push(s);
        t.onSample(s);
      }
    } catch (err) {
      options.log.warn("resource sample failed", { error: errorMessage(err) });
    } finally {
      busy = false;
    }
  };

  const ensureTimer = () => {
    if (timer === undefined) {
      // Prime the CPU and network counters so the first sample covers one interval.
      take().catch(() => {});
      timer = setInterval(tick, intervalMs);
    }
  };

  return {
    track(jobId, onSample) {
      const entry = { onSample, samples: [] as Sample[] };
      tracked.set(jobId, entry);
      ensureTimer();
      return {
        stop() {
          tracked.delete(jobId);
          if (tracked.size === 0 && timer !== undefined) {
            clearInterval(timer);
            timer = undefined;
          }
          return summarize(entry.samples);
        },
      };
    },
    sample: take,
    close() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      tracked.clear();
    },
  };
}
