/**
 * Machine and job resource samples while jobs run. Each tracked job gets a sample every
 * `intervalMs` (its own timer and counters, so jobs with different intervals do not disturb each
 * other) holding:
 *
 * - machine: CPU cores used (sum of per-core busy fractions, from /proc/stat), memory in use
 *   (MemTotal − MemAvailable), network bytes in and out during the interval (/proc/net/dev);
 * - the job's own processes (set with `setProcesses`, e.g. its browsers) and all their
 *   descendants: CPU cores they used and their memory, PSS from /proc/<pid>/smaps_rollup where
 *   readable, else RSS;
 * - the size on disk of the job's artifact directory.
 *
 * Everything under /proc is read through `lib/core/procfs.ts` (one child process per read).
 */
import {
  CLOCK_TICKS_PER_S,
  coresUsed,
  type CpuTimes,
  listProcesses,
  parseMeminfo,
  parseNetDev,
  parseProcStat,
  parseSmapsPss,
  processTree,
  readProcFiles,
} from "../core/procfs.ts";
import { errorMessage, type Logger } from "../core/log.ts";

export interface Sample {
  /** Epoch milliseconds when the sample was taken. */
  ts: number;
  /** Seconds the interval counters (CPU, network) cover. */
  interval_s: number;
  cpu_cores: number;
  cpu_percent: number;
  /** Cores the machine has. */
  cpu_count: number;
  mem_used_bytes: number;
  mem_total_bytes: number;
  net_rx_bytes: number;
  net_tx_bytes: number;
  /** The job's processes (present once the job named some). */
  proc_count?: number;
  proc_cpu_cores?: number;
  proc_mem_bytes?: number;
  proc_mem_kind?: "pss" | "rss";
  /** Bytes on disk under the job's artifact directory (present when it has one). */
  disk_bytes?: number;
}

export interface ResourceSummary {
  samples: number;
  cpu_cores_avg: number;
  cpu_cores_max: number;
  mem_used_avg_bytes: number;
  mem_used_max_bytes: number;
  net_rx_bytes: number;
  net_tx_bytes: number;
  proc_cpu_cores_avg?: number;
  proc_mem_avg_bytes?: number;
  proc_mem_max_bytes?: number;
  disk_bytes?: number;
}

export interface TrackOptions {
  /** Sampling interval (default: the sampler's). */
  intervalMs?: number;
  /** Directory whose size on disk each sample reports. */
  artifactDir?: string | null;
}

export interface Tracking {
  /** The job's own processes; they and their descendants are measured from the next sample. */
  setProcesses(pids: number[]): void;
  /** The job's process ids as last set. */
  processes(): number[];
  /** Samples taken so far. */
  samples(): Sample[];
  /** Stops sampling for this job and returns what its samples add up to. */
  stop(): ResourceSummary;
}

export interface Sampler {
  track(jobId: string, options: TrackOptions, onSample: (sample: Sample) => void): Tracking;
  /** Takes one machine sample now (no job needed); CPU and network cover the last 200 ms. */
  sample(): Promise<Sample>;
  close(): void;
}

const round = (v: number, d = 3) => Math.round(v * 10 ** d) / 10 ** d;

export function summarize(samples: Sample[]): ResourceSummary {
  const n = samples.length;
  const values = (k: keyof Sample) =>
    samples.map((s) => s[k]).filter((v): v is number => typeof v === "number");
  const avg = (k: keyof Sample) => {
    const v = values(k);
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : 0;
  };
  const max = (k: keyof Sample) => values(k).reduce((a, b) => Math.max(a, b), 0);
  const sum = (k: keyof Sample) => values(k).reduce((a, b) => a + b, 0);
  const summary: ResourceSummary = {
    samples: n,
    cpu_cores_avg: round(avg("cpu_cores")),
    cpu_cores_max: round(max("cpu_cores")),
    mem_used_avg_bytes: Math.round(avg("mem_used_bytes")),
    mem_used_max_bytes: max("mem_used_bytes"),
    net_rx_bytes: sum("net_rx_bytes"),
    net_tx_bytes: sum("net_tx_bytes"),
  };
  if (values("proc_mem_bytes").length) {
    summary.proc_cpu_cores_avg = round(avg("proc_cpu_cores"));
    summary.proc_mem_avg_bytes = Math.round(avg("proc_mem_bytes"));
    summary.proc_mem_max_bytes = max("proc_mem_bytes");
  }
  const disk = values("disk_bytes");
  if (disk.length) summary.disk_bytes = disk[disk.length - 1]!;
  return summary;
}

/**
 * Bytes allocated on disk under `dir` (0 when it does not exist). Entries whose name starts with
 * a dot (a job's temporary browser profiles) are not artifacts and are left out.
 */
export async function diskUsage(dir: string): Promise<number> {
  let total = 0;
  const walk = async (path: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(path));
    } catch {
      return;
    }
    await Promise.all(
      entries.filter((e) => !e.name.startsWith(".")).map(async (e) => {
        const full = `${path}/${e.name}`;
        if (e.isDirectory) return await walk(full);
        try {
          const info = await Deno.lstat(full);
          total += info.blocks !== null ? info.blocks * 512 : info.size;
        } catch { /* removed meanwhile */ }
      }),
    );
  };
  await walk(dir);
  return total;
}

/** Counters carried from one sample to the next. */
interface Counters {
  at: number;
  cpu: CpuTimes[];
  net: { rx: number; tx: number };
  ticks: Map<number, number>;
  ticksAt: number;
}

interface MachineReading {
  at: number;
  cpu: CpuTimes[];
  net: { rx: number; tx: number };
  mem: { total: number; used: number };
  procs?: {
    count: number;
    ticks: Map<number, number>;
    /** When the process list (and so the ticks) was read. */
    at: number;
    memBytes: number;
    kind: "pss" | "rss";
  };
}

async function read(roots: Set<number>): Promise<MachineReading> {
  const paths = ["/proc/stat", "/proc/meminfo", "/proc/net/dev"];
  const tree = roots.size ? processTree(roots, await listProcesses()) : [];
  const ticksAt = Date.now();
  for (const p of tree) paths.push(`/proc/${p.pid}/smaps_rollup`);
  const files = await readProcFiles(paths);
  const reading: MachineReading = {
    at: Date.now(),
    cpu: parseProcStat(files.get("/proc/stat") ?? ""),
    net: parseNetDev(files.get("/proc/net/dev") ?? ""),
    mem: parseMeminfo(files.get("/proc/meminfo") ?? ""),
  };
  if (roots.size) {
    // A process that exited since the listing has no smaps_rollup and no memory left to count;
    // when none is readable (no permission), RSS stands in for all of them.
    const pss = tree.map((p) => parseSmapsPss(files.get(`/proc/${p.pid}/smaps_rollup`) ?? ""));
    const anyPss = pss.some((v) => v !== null);
    reading.procs = {
      count: tree.length,
      ticks: new Map(tree.map((p) => [p.pid, p.cpuTicks])),
      at: ticksAt,
      memBytes: tree.reduce((a, p, i) => a + (anyPss ? pss[i] ?? 0 : p.rssBytes), 0),
      kind: anyPss ? "pss" : "rss",
    };
  }
  return reading;
}

function toSample(prev: Counters, now: MachineReading): Sample {
  const seconds = Math.max(0.001, (now.at - prev.at) / 1000);
  const cores = coresUsed(prev.cpu, now.cpu);
  const sample: Sample = {
    ts: now.at,
    interval_s: round(seconds),
    cpu_cores: round(cores),
    cpu_percent: round(now.cpu.length ? cores / now.cpu.length * 100 : 0, 1),
    cpu_count: now.cpu.length,
    mem_used_bytes: now.mem.used,
    mem_total_bytes: now.mem.total,
    net_rx_bytes: Math.max(0, now.net.rx - prev.net.rx),
    net_tx_bytes: Math.max(0, now.net.tx - prev.net.tx),
  };
  if (now.procs) {
    let ticks = 0;
    for (const [pid, t] of now.procs.ticks) {
      const before = prev.ticks.get(pid);
      if (before !== undefined) ticks += Math.max(0, t - before);
    }
    const tickSeconds = Math.max(0.001, (now.procs.at - prev.ticksAt) / 1000);
    sample.proc_count = now.procs.count;
    sample.proc_cpu_cores = prev.ticks.size ? round(ticks / CLOCK_TICKS_PER_S / tickSeconds) : 0;
    sample.proc_mem_bytes = now.procs.memBytes;
    sample.proc_mem_kind = now.procs.kind;
  }
  return sample;
}

const countersOf = (r: MachineReading): Counters => ({
  at: r.at,
  cpu: r.cpu,
  net: r.net,
  ticks: r.procs?.ticks ?? new Map(),
  ticksAt: r.procs?.at ?? r.at,
});

export function createSampler(options: { log: Logger; intervalMs?: number }): Sampler {
  const defaultInterval = options.intervalMs ?? 1000;
  const stops = new Set<() => void>();

  return {
    track(_jobId, trackOptions, onSample) {
      const intervalMs = trackOptions.intervalMs ?? defaultInterval;
      const artifactDir = trackOptions.artifactDir ?? null;
      const roots = new Set<number>();
      const samples: Sample[] = [];
      let prev: Promise<Counters | null> = read(roots).then(countersOf, () => null);
      let stopped = false;
      let timer: ReturnType<typeof setTimeout> | undefined;

      // Each sample is scheduled from the end of the last one, never closer than half an
      // interval: a late sample on a busy machine does not make the next interval tiny.
      const tick = async () => {
        const began = Date.now();
        try {
          const [before, now, disk] = await Promise.all([
            prev,
            read(roots),
            artifactDir === null ? Promise.resolve(undefined) : diskUsage(artifactDir),
          ]);
          prev = Promise.resolve(countersOf(now));
          if (before === null || stopped) return;
          const sample = toSample(before, now);
          if (disk !== undefined) sample.disk_bytes = disk;
          samples.push(sample);
          onSample(sample);
        } catch (err) {
          options.log.warn("resource sample failed", { error: errorMessage(err) });
        } finally {
          if (!stopped) {
            const spent = Date.now() - began;
            timer = setTimeout(tick, Math.max(intervalMs / 2, intervalMs - spent));
          }
        }
      };
      timer = setTimeout(tick, intervalMs);
      const stop = () => {
        stopped = true;
        clearTimeout(timer);
        stops.delete(stop);
      };
      stops.add(stop);

      return {
        setProcesses(pids) {
          roots.clear();
          for (const pid of pids) if (Number.isInteger(pid) && pid > 1) roots.add(pid);
        },
        processes: () => [...roots],
        samples: () => [...samples],
        stop() {
          stop();
          return summarize(samples);
        },
      };
    },

    async sample() {
      const none = new Set<number>();
      const before = countersOf(await read(none));
      await new Promise((r) => setTimeout(r, 200));
      return toSample(before, await read(none));
    },

    close() {
      for (const stop of [...stops]) stop();
    },
  };
}
