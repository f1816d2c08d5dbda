/**
 * Reads files under /proc and /sys. Deno only lets a process read those with --allow-all, so the
 * reads go through one `tail` child per call (the same way systeminformation reads them), which
 * needs only `--allow-run=tail`.
 */

/** Reads several files in one child process; a file that cannot be read is absent. */
export async function readProcFiles(paths: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (paths.length === 0) return out;
  const { stdout } = await new Deno.Command("tail", {
    args: ["-v", "-n", "+1", "--", ...paths],
    stdout: "piped",
    stderr: "null",
  }).output();
  const text = new TextDecoder().decode(stdout);
  const re = /^==> (.+) <==$/gm;
  const marks: Array<{ path: string; start: number; end: number }> = [];
  for (let m = re.exec(text); m; m = re.exec(text)) {
    marks.push({ path: m[1]!, start: m.index + m[0].length + 1, end: m.index });
  }
  marks.forEach((mark, i) => {
    const next = marks[i + 1];
    out.set(mark.path, text.slice(mark.start, next ? next.end : text.length).replace(/\n+$/, "\n"));
  });
  return out;
}

/**
 * Sums received and sent bytes over the interfaces in /proc/net/dev text, loopback left out: its
 * traffic never leaves the machine (no link carries it) and counts every byte twice, in and out.
 */
export function parseNetDev(text: string): { rx: number; tx: number } {
  let rx = 0;
  let tx = 0;
  for (const line of text.split("\n").slice(2)) {
    const [name, rest] = line.split(":");
    if (!rest || name?.trim() === "lo") continue;
    const cols = rest.trim().split(/\s+/).map(Number);
    rx += cols[0] ?? 0;
    tx += cols[8] ?? 0;
  }
  return { rx, tx };
}

/** Busy and total jiffies of one CPU line of /proc/stat. */
export interface CpuTimes {
  busy: number;
  total: number;
}

/** Per-core CPU times from /proc/stat text (`cpu0`, `cpu1`, ...; the `cpu` sum line is left out). */
export function parseProcStat(text: string): CpuTimes[] {
  const cores: CpuTimes[] = [];
  for (const line of text.split("\n")) {
    const m = /^cpu\d+\s+(.*)$/.exec(line);
    if (!m) continue;
    const v = m[1]!.trim().split(/\s+/).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already in user/nice)
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    const total = v.slice(0, 8).reduce((a, b) => a + (b || 0), 0);
    cores.push({ busy: total - idle, total });
  }
  return cores;
}

/** Cores in use between two /proc/stat readings: the sum of each core's busy fraction. */
export function coresUsed(before: CpuTimes[], after: CpuTimes[]): number {
  let cores = 0;
  after.forEach((a, i) => {
    const b = before[i];
    if (!b) return;
    const total = a.total - b.total;
    if (total > 0) cores += Math.max(0, Math.min(1, (a.busy - b.busy) / total));
  });
  return cores;
}

/** Total and used memory in bytes from /proc/meminfo text (used = MemTotal − MemAvailable). */
export function parseMeminfo(text: string): { total: number; used: number } {
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? 0);
  const total = kb("MemTotal") * 1024;
  const available = kb("MemAvailable") * 1024;
  return { total, used: Math.max(0, total - available) };
}

/** One process as /proc/<pid>/stat describes it. */
export interface ProcessStat {
  pid: number;
  ppid: number;
  /** The command name (at most 15 characters). */
  name: string;
  /** R running, S sleeping, Z zombie (ended, not yet reaped), ... */
  state: string;
  /** utime + stime, in clock ticks (1/100 s on Linux). */
  cpuTicks: number;
  /** User and system (kernel) time apart, in clock ticks. */
  userTicks: number;
  systemTicks: number;
  /** Page faults served without disk I/O, since the process started. */
  minorFaults: number;
  rssBytes: number;
}

const PAGE_SIZE = 4096;
export const CLOCK_TICKS_PER_S = 100;

/** The stat of each of `pids` that is alive, from /proc/<pid>/stat read in one go. */
export async function readStats(pids: number[]): Promise<ProcessStat[]> {
  const files = await readProcFiles(pids.map((p) => `/proc/${p}/stat`));
  return parseStatLines([...files.values()].join("\n"));
}

/** Parses /proc/<pid>/stat lines (one per process); the command name may hold spaces. */
export function parseStatLines(text: string): ProcessStat[] {
  const out: ProcessStat[] = [];
  for (const line of text.split("\n")) {
    const close = line.lastIndexOf(")");
    if (close < 0) continue;
    const pid = Number(line.slice(0, line.indexOf(" ")));
    // Fields after the name: state(3) ppid(4) ... minflt(10) ... utime(14) stime(15) ... rss(24).
    const f = line.slice(close + 2).split(" ");
    const ppid = Number(f[1]);
    if (!Number.isInteger(pid) || !Number.isInteger(ppid)) continue;
    const userTicks = Number(f[11] ?? 0);
    const systemTicks = Number(f[12] ?? 0);
    out.push({
      pid,
      ppid,
      name: line.slice(line.indexOf("(") + 1, close),
      state: f[0] ?? "",
      cpuTicks: userTicks + systemTicks,
      userTicks,
      systemTicks,
      minorFaults: Number(f[7] ?? 0),
      rssBytes: Number(f[21] ?? 0) * PAGE_SIZE,
    });
  }
  return out;
}

/**
 * Every process on the machine (pid, parent, CPU ticks, RSS), read in one `sh` child: the shell
 * expands `/proc/[0-9]*` (Deno may not list /proc) and `tail` prints each stat line. A process
 * that exits meanwhile is simply absent.
 */
export async function listProcesses(): Promise<ProcessStat[]> {
  const { stdout } = await new Deno.Command("sh", {
    args: ["-c", "cd /proc && exec tail -q -n 1 [0-9]*/stat"],
    stdout: "piped",
    stderr: "null",
  }).output();
  return parseStatLines(new TextDecoder().decode(stdout));
}

/**
 * The threads of process `pid` (their stat lines: `name` is the thread's name, `pid` its id), read
 * the way `listProcesses` reads processes. Deno names a Worker's thread `worker-<n>`.
 */
export async function listThreads(pid: number): Promise<ProcessStat[]> {
  const { stdout } = await new Deno.Command("sh", {
    args: ["-c", `cd /proc/${Math.trunc(pid)}/task && exec tail -q -n 1 [0-9]*/stat`],
    stdout: "piped",
    stderr: "null",
  }).output();
  return parseStatLines(new TextDecoder().decode(stdout));
}

/**
 * The given processes and all their descendants, from a process list; the walk never enters the
 * processes in `skip` (nor, through them, their descendants).
 */
export function processTree(
  roots: Iterable<number>,
  all: ProcessStat[],
  skip: ReadonlySet<number> = new Set(),
): ProcessStat[] {
  const children = new Map<number, ProcessStat[]>();
  const byPid = new Map<number, ProcessStat>();
  for (const p of all) {
    byPid.set(p.pid, p);
    let list = children.get(p.ppid);
    if (!list) children.set(p.ppid, list = []);
    list.push(p);
  }
  const out: ProcessStat[] = [];
  const seen = new Set<number>();
  const stack = [...roots].map((pid) => byPid.get(pid)).filter((p) => p !== undefined);
  while (stack.length) {
    const p = stack.pop()!;
    if (seen.has(p.pid) || skip.has(p.pid)) continue;
    seen.add(p.pid);
    out.push(p);
    stack.push(...(children.get(p.pid) ?? []));
  }
  return out;
}

/** Proportional set size in bytes from /proc/<pid>/smaps_rollup text, or null. */
export function parseSmapsPss(text: string): number | null {
  const m = /^Pss:\s+(\d+) kB/m.exec(text);
  return m ? Number(m[1]) * 1024 : null;
}

/** Sends SIGKILL to the given processes through one `sh` child (Deno.kill needs full --allow-run). */
export async function killProcesses(pids: number[]): Promise<void> {
  const list = pids.filter((p) => Number.isInteger(p) && p > 1);
  if (list.length === 0) return;
  await new Deno.Command("sh", {
    args: ["-c", `kill -9 ${list.join(" ")} 2>/dev/null; exit 0`],
    stdout: "null",
    stderr: "null",
  }).output();
}

/**
 * Kills the given processes and all their descendants (e.g. a browser whose owner is gone), and
 * waits until they have ended (a zombie has), at most 2 s. Only roots that are children of
 * `parent` count, so a recycled pid never hits a stranger.
 */
export async function killProcessTree(roots: number[], parent: number): Promise<void> {
  if (roots.length === 0) return;
  const all = await listProcesses();
  const owned = roots.filter((pid) => all.some((p) => p.pid === pid && p.ppid === parent));
  const tree = processTree(owned, all).map((p) => p.pid);
  await killProcesses(tree);
  for (const deadline = Date.now() + 2_000; Date.now() < deadline;) {
    if ((await readStats(tree)).every((p) => p.state === "Z")) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}
