/**
 * Machine and job resource samples while jobs run: each tracked job gets a sample every
 * `intervalMs`, on its own timer and counters so jobs with different intervals do not disturb each
 * other. Everything under /proc is read through `lib/core/procfs.ts`.
 */
import {
  CLOCK_TICKS_PER_S,
  coresUsed,
  type CpuTimes,
  listProcesses,
  listThreads,
  parseMeminfo,
  parseNetDev,
  parseProcStat,
  parseSmapsPss,
  parseStatLines,
  type ProcessStat,
  processTree,
  readProcFiles,
} from "../core/procfs.ts";
import { errorMessage, type Logger } from "../core/log.ts";

/**
 * One sample holds:
 *
 * - machine: CPU cores used (sum of per-core busy fractions, from /proc/stat), memory in use
 *   (MemTotal − MemAvailable), network bytes in and out during the interval (/proc/net/dev,
 *   loopback left out);
 * - the job's own processes (set with `setProcesses`, e.g. its browsers) and all their descendants:
 *   CPU cores they used and their memory, PSS from /proc/<pid>/smaps_rollup where readable, else
 *   RSS;
 * - the platform process itself (this one: it runs the job's Worker, the load generator) and the
 *   busiest of its Worker threads;
 * - the processes a job measures without owning them (`targets`: pids, a process name or a cgroup,
 *   with their descendants; never this process or what it started unless named), e.g. the server an
 *   HTTP benchmark loads;
 * - the size on disk of the job's artifact directory.
 */
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
  /**
   * Cores' worth of time the job's processes spent waiting for a CPU (run-queue delay from
   * /proc/<pid>/schedstat): high beside `proc_cpu_cores` means they ran out of CPU.
   */
  proc_cpu_wait_cores?: number;
  /** This process (the platform: the job's Worker runs in it): CPU cores and PSS. */
  platform_cpu_cores?: number;
  platform_mem_bytes?: number;
  /** Cores used by the busiest Worker thread of this process (a JS thread tops out at 1). */
  worker_thread_cores?: number;
  /** The processes named by `targets` (present when the job names some). */
  target_count?: number;
  target_cpu_cores?: number;
  target_mem_bytes?: number;
  target_mem_kind?: "pss" | "rss";
  target_cpu_wait_cores?: number;
  /** Bytes on disk under the job's artifact directory (present when it has one). */
  disk_bytes?: number;
}

/** Processes a job measures but does not own: by pid, by name (`comm`), or by cgroup. */
export interface TargetSpec {
  pids?: number[] | undefined;
  process?: string | undefined;
  /** A cgroup directory under /sys/fs/cgroup; its member processes are measured. */
  cgroup?: string | undefined;
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
  target_cpu_cores_avg?: number;
  target_mem_avg_bytes?: number;
  platform_cpu_cores_avg?: number;
  platform_mem_avg_bytes?: number;
  disk_bytes?: number;
}

export interface TrackOptions {
  /** Sampling interval (default: the sampler's). */
  intervalMs?: number;
  /** Directory whose size on disk each sample reports. */
  artifactDir?: string | null;
  /** Processes to measure that the job does not own (never killed by the pool). */
  targets?: TargetSpec | null;
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
  if (values("target_mem_bytes").length) {
    summary.target_cpu_cores_avg = round(avg("target_cpu_cores"));
    summary.target_mem_avg_bytes = Math.round(avg("target_mem_bytes"));
  }
  if (values("platform_mem_bytes").length) {
    summary.platform_cpu_cores_avg = round(avg("platform_cpu_cores"));
    summary.platform_mem_avg_bytes = Math.round(avg("platform_mem_bytes"));
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

/** A set of processes as one reading saw them. */
interface Group {
  count: number;
  ticks: Map<number, number>;
  /** Run-queue delay of each process's main thread, ns. */
  waits: Map<number, number>;
  memBytes: number;
  kind: "pss" | "rss";
}

/** Counters carried from one sample to the next. */
interface Counters {
  at: number;
  cpu: CpuTimes[];
  net: { rx: number; tx: number };
  /** When the process list (and so the ticks) was read. */
  ticksAt: number;
  procs: Map<number, number>;
  target: Map<number, number>;
  platform: Map<number, number>;
  threads: Map<number, number>;
  procWaits: Map<number, number>;
  targetWaits: Map<number, number>;
}

interface MachineReading {
  at: number;
  ticksAt: number;
  cpu: CpuTimes[];
  net: { rx: number; tx: number };
  mem: { total: number; used: number };
  procs?: Group;
  target?: Group;
  platform: Group;
  /** Ticks of each Worker thread of this process. */
  threads: Map<number, number>;
}

const SELF = Deno.pid;

/**
 * The target processes and their descendants, never this process (the generator) nor what it
 * started, unless a child of it is named itself (a bench's own nginx).
 */
function targetTree(spec: TargetSpec, all: ProcessStat[], cgroupPids: number[]): ProcessStat[] {
  const roots = new Set<number>([...(spec.pids ?? []), ...cgroupPids]);
  if (spec.process) { for (const p of all) if (p.name === spec.process) roots.add(p.pid); }
  return processTree(roots, all, new Set([SELF]));
}

function group(tree: ProcessStat[], files: Map<string, string>): Group {
  // A process that exited since the listing has no smaps_rollup and no memory left to count;
  // when none is readable (no permission), RSS stands in for all of them.
  const pss = tree.map((p) => parseSmapsPss(files.get(`/proc/${p.pid}/smaps_rollup`) ?? ""));
  const anyPss = pss.some((v) => v !== null);
  const waits = new Map<number, number>();
  for (const p of tree) {
    const wait = Number((files.get(`/proc/${p.pid}/schedstat`) ?? "").split(" ")[1]);
    if (Number.isFinite(wait)) waits.set(p.pid, wait);
  }
  return {
    count: tree.length,
    ticks: new Map(tree.map((p) => [p.pid, p.cpuTicks])),
    waits,
    memBytes: tree.reduce((a, p, i) => a + (anyPss ? pss[i] ?? 0 : p.rssBytes), 0),
    kind: anyPss ? "pss" : "rss",
  };
}

async function read(roots: Set<number>, targets: TargetSpec | null): Promise<MachineReading> {
  const cgroupPids = targets?.cgroup
    ? (await readProcFiles([`${targets.cgroup}/cgroup.procs`])).get(
      `${targets.cgroup}/cgroup.procs`,
    )
      ?.split("\n").map(Number).filter((n) => Number.isInteger(n) && n > 1) ?? []
    : [];
  const [all, threads] = await Promise.all([
    roots.size || targets ? listProcesses() : Promise.resolve([]),
    listThreads(SELF),
  ]);
  const ticksAt = Date.now();
  const tree = roots.size ? processTree(roots, all) : [];
  const target = targets ? targetTree(targets, all, cgroupPids) : [];
  const paths = [
    "/proc/stat",
    "/proc/meminfo",
    "/proc/net/dev",
    `/proc/${SELF}/stat`,
    ...[SELF, ...tree.map((p) => p.pid), ...target.map((p) => p.pid)]
      .map((pid) => `/proc/${pid}/smaps_rollup`),
    ...[...tree, ...target].map((p) => `/proc/${p.pid}/schedstat`),
  ];
  const files = await readProcFiles(paths);
  const reading: MachineReading = {
    at: Date.now(),
    ticksAt,
    cpu: parseProcStat(files.get("/proc/stat") ?? ""),
    net: parseNetDev(files.get("/proc/net/dev") ?? ""),
    mem: parseMeminfo(files.get("/proc/meminfo") ?? ""),
    platform: group(parseStatLines(files.get(`/proc/${SELF}/stat`) ?? ""), files),
    threads: new Map(
      threads.filter((t) => t.name.startsWith("worker-")).map((t) => [t.pid, t.cpuTicks]),
    ),
  };
  if (roots.size) reading.procs = group(tree, files);
  if (targets) reading.target = group(target, files);
  return reading;
}

/**
 * Cores' worth of a per-process time counter between two readings (CPU ticks by default,
 * or nanoseconds), over the processes present in both.
 */
function coresOf(
  before: Map<number, number>,
  now: Map<number, number>,
  seconds: number,
  unitsPerSecond = CLOCK_TICKS_PER_S,
): number {
  let units = 0;
  for (const [pid, t] of now) {
    const b = before.get(pid);
    if (b !== undefined) units += Math.max(0, t - b);
  }
  return before.size ? round(units / unitsPerSecond / seconds) : 0;
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
  const tickSeconds = Math.max(0.001, (now.ticksAt - prev.ticksAt) / 1000);
  if (now.procs) {
    sample.proc_count = now.procs.count;
    sample.proc_cpu_cores = coresOf(prev.procs, now.procs.ticks, tickSeconds);
    sample.proc_cpu_wait_cores = coresOf(prev.procWaits, now.procs.waits, seconds, 1e9);
    sample.proc_mem_bytes = now.procs.memBytes;
    sample.proc_mem_kind = now.procs.kind;
  }
  if (now.target) {
    sample.target_count = now.target.count;
    sample.target_cpu_cores = coresOf(prev.target, now.target.ticks, tickSeconds);
    sample.target_cpu_wait_cores = coresOf(prev.targetWaits, now.target.waits, seconds, 1e9);
    sample.target_mem_bytes = now.target.memBytes;
    sample.target_mem_kind = now.target.kind;
  }
  sample.platform_cpu_cores = coresOf(prev.platform, now.platform.ticks, seconds);
  sample.platform_mem_bytes = now.platform.memBytes;
  let busiest = 0;
  for (const [tid, t] of now.threads) {
    const b = prev.threads.get(tid);
    if (b !== undefined) busiest = Math.max(busiest, (t - b) / CLOCK_TICKS_PER_S / tickSeconds);
  }
  sample.worker_thread_cores = round(Math.min(1, busiest));
  return sample;
}

const countersOf = (r: MachineReading): Counters => ({
  at: r.at,
  cpu: r.cpu,
  net: r.net,
  ticksAt: r.ticksAt,
  procs: r.procs?.ticks ?? new Map(),
  target: r.target?.ticks ?? new Map(),
  platform: r.platform.ticks,
  threads: r.threads,
  procWaits: r.procs?.waits ?? new Map(),
  targetWaits: r.target?.waits ?? new Map(),
});

export function createSampler(options: { log: Logger; intervalMs?: number }): Sampler {
  const defaultInterval = options.intervalMs ?? 1000;
  const stops = new Set<() => void>();

  return {
    track(_jobId, trackOptions, onSample) {
      const intervalMs = trackOptions.intervalMs ?? defaultInterval;
      const artifactDir = trackOptions.artifactDir ?? null;
      const targets = trackOptions.targets ?? null;
      const roots = new Set<number>();
      const samples: Sample[] = [];
      let prev: Promise<Counters | null> = read(roots, targets).then(countersOf, () => null);
      let stopped = false;
      let timer: ReturnType<typeof setTimeout> | undefined;

      // Each sample is scheduled from the end of the last one, never closer than half an
      // interval: a late sample on a busy machine does not make the next interval tiny.
      const tick = async () => {
        const began = Date.now();
        try {
          const [before, now, disk] = await Promise.all([
            prev,
            read(roots, targets),
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
      const before = countersOf(await read(none, null));
      await new Promise((r) => setTimeout(r, 200));
      return toSample(before, await read(none, null));
    },

    close() {
      for (const stop of [...stops]) stop();
    },
  };
}
