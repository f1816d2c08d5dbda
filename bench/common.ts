/**
 * Shared benchmark helpers: percentiles, the result table, the figures a bench writes with
 * `--json <path>` (read by `deno task perf:docs`), and the Node peers' install.
 */
import { type BenchJson, type BenchRow, ROW_HEADER, rowCells } from "./bench_json.ts";

export type { BenchRow };

export const ROOT = new URL("../", import.meta.url).pathname;

/** The Chromium the browser benchmarks start (Debian's, unless STREAMPLAY_CHROMIUM says). */
export const CHROMIUM = Deno.env.get("STREAMPLAY_CHROMIUM") ?? "/usr/bin/chromium";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The 1, 5 and 15 minute load averages, as `top` prints them. */
export const loadAverage = () => Deno.loadavg().map((l) => l.toFixed(2)).join(" ");

/** A figure with `digits` decimals, or "–" when it is not a number. */
export const fixed = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : "–");

const leftovers: Array<() => void> = [];

/**
 * Runs `undo` if the bench is stopped by SIGINT or SIGTERM, then exits (130, 143); a bench that ends
 * normally undoes its work itself. For what outlives the bench process unless removed: temporary
 * directories, and child processes that a signal sent to the bench alone does not reach.
 */
export function undoOnInterrupt(undo: () => void): void {
  if (leftovers.length === 0) {
    const stop = (code: number) => {
      // Last in, first out: a process goes before the directory it writes to.
      for (const fn of leftovers.toReversed()) {
        try {
          fn();
        } catch { /* already gone */ }
      }
      Deno.exit(code);
    };
    Deno.addSignalListener("SIGINT", () => stop(130));
    Deno.addSignalListener("SIGTERM", () => stop(143));
  }
  leftovers.push(undo);
}

/** A temporary directory that is removed if the bench is interrupted (see `undoOnInterrupt`). */
export async function benchTempDir(prefix: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix });
  undoOnInterrupt(() => Deno.removeSync(dir, { recursive: true }));
  return dir;
}

/** Value at percentile `p` (0–100) of an ascending array (nearest rank). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** Prints rows as an aligned plain-text table (first row is the header). */
export function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  const line = (r: string[]) => r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ");
  console.log("\n" + line(rows[0]!));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows.slice(1)) console.log(line(r));
}

/** Installs the Node peers (BullMQ, autocannon) under bench/peers once, from the lockfile. */
export async function ensurePeers(): Promise<void> {
  try {
    await Deno.stat(`${ROOT}bench/peers/node_modules/bullmq`);
    return;
  } catch { /* not installed yet */ }
  // `npm install` follows package-lock.json (npm ci refuses a lock without every platform's
  // optional packages, which this npm does not record).
  const { success } = await new Deno.Command("npm", {
    args: ["install", "--silent", "--no-audit", "--no-fund"],
    cwd: `${ROOT}bench/peers`,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!success) throw new Error("npm install in bench/peers failed");
}

/** `n` rounded to `digits` decimals (null when it is not a number, which JSON cannot hold). */
export const round = (n: number, digits = 2): number | null =>
  Number.isFinite(n) ? Number(n.toFixed(digits)) : null;

/** The value after `--json` (or in `--json=<path>`) in `args`. */
function jsonPath(args: readonly string[]): string | undefined {
  const i = args.indexOf("--json");
  if (i >= 0) return args[i + 1];
  return args.find((a) => a.startsWith("--json="))?.slice("--json=".length);
}

/** The command that reproduces this run: the BENCH_* variables set, the task, its arguments. */
function commandLine(name: string, args: readonly string[]): string {
  const env = Object.entries(Deno.env.toObject())
    .filter(([k]) => k.startsWith("BENCH_") || k === "DENO_USE_WRITEV")
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v} `);
  const rest = args.filter((a, i) => a !== "--json" && args[i - 1] !== "--json")
    .filter((a) => !a.startsWith("--json="));
  return [`${env.join("")}deno task bench:${name}`, ...rest].join(" ");
}

/**
 * A bench's figures: `add` them as they are measured, `print()` them as a table; `write()` puts
 * them, with the command, the date and the machine, at the `--json <path>` the command line names
 * (nothing without it). A bench that parses its arguments strictly declares
 * `json: { type: "string" }`.
 */
export function benchReport(name: string, args: readonly string[] = Deno.args) {
  const path = jsonPath(args);
  const started: Omit<BenchJson, "rows"> = {
    bench: name,
    command: commandLine(name, args),
    date: new Date().toISOString(),
    machine: {
      cores: navigator.hardwareConcurrency,
      memory_gb: Math.round(Deno.systemMemoryInfo().total / 1024 ** 3),
      load_before: round(Deno.loadavg()[0]!) ?? 0,
    },
  };
  const rows: BenchJson["rows"] = [];
  return {
    add(row: BenchRow): void {
      rows.push({
        metric: row.metric,
        ours: row.ours,
        peer: row.peer ?? null,
        peer_name: row.peer_name ?? null,
        unit: row.unit ?? null,
        target: row.target ?? null,
        met: row.met ?? null,
      });
    },
    print(): void {
      printTable([ROW_HEADER, ...rows.map(rowCells)]);
    },
    async write(): Promise<void> {
      if (!path) return;
      const report: BenchJson = { ...started, rows };
      await Deno.writeTextFile(path, JSON.stringify(report, null, 2) + "\n");
      console.log(`figures written to ${path}`);
    },
  };
}

/** Descriptors a process has open (through `sh`: Deno reads /proc only with every permission). */
export async function openDescriptors(pid: number): Promise<number> {
  const { stdout } = await new Deno.Command("sh", {
    args: ["-c", `ls /proc/${pid}/fd | wc -l`],
    stdout: "piped",
  }).output();
  return Number(new TextDecoder().decode(stdout).trim());
}
