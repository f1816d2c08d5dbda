/**
 * `deno task bench:estimate` — how well the sizing report predicts: a `browser-bench` sweep at
 * 1, 2, 4 and 8 users on a local page (in its sandboxed Worker, sampled as the worker pool
 * samples jobs), the models fitted on 1, 2 and 4 predict 8, and 8 is measured. Prints the
 * prediction error for CPU and memory on both bases (the machine net of idle, and the browsers'
 * own processes) beside the peer: the proposal's single-level rule (the per-session cost at 4
 * users × 8). Target: error ≤ 15 % for CPU and memory.
 *
 *   deno task bench:estimate [--duration 20] [--page simple|complex] [--baseline 5]
 */
import { parseArgs } from "node:util";
import { loadConfig } from "../lib/core/config.ts";
import { createLogger } from "../lib/core/log.ts";
import { createSandbox } from "../lib/jobs/sandbox.ts";
import { createSampler } from "../lib/jobs/sampler.ts";
import { killProcessTree } from "../lib/core/procfs.ts";
import {
  buildSizingReport,
  type ResourceBasis,
  samplesIn,
  type SweepRecord,
} from "../lib/capacity/report.ts";
import { fitModels, holdOut, predict } from "../lib/capacity/projection.ts";
import { PROCESSES_EVENT } from "../lib/jobs/worker_protocol.ts";
import { browserBenchJob, BrowserBenchParams } from "../workers/browser-bench.ts";
import { benchTempDir, loadAverage, printTable } from "./common.ts";
import { servePages } from "./pages.ts";

const TARGET_PCT = 15;
const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    duration: { type: "string", default: "20" },
    page: { type: "string", default: "simple" },
    baseline: { type: "string", default: "5" },
  },
});

const config = loadConfig();
const log = createLogger({ level: "warn" });
const site = servePages();
const artifactDir = await Deno.realPath(await benchTempDir("bench-estimate-"));
const params = BrowserBenchParams.parse({
  url: `${site.url}/${args.page}`,
  levels: [1, 2, 4, 8],
  duration_s: Number(args.duration),
  baseline_s: Number(args.baseline),
  screenshot_every_s: 5,
});
console.log(
  `estimate: ${params.url}, levels ${params.levels!.join(", ")}, ${params.duration_s} s each; ` +
    `load average ${loadAverage()} at start`,
);

const sandbox = createSandbox({ log, warmPerProfile: 0 });
const sampler = createSampler({ log });
const tracking = sampler.track("estimate", { intervalMs: 1000, artifactDir }, () => {});
let processes: number[] = [];
const handle = sandbox.run(
  browserBenchJob.sandbox(params, { config, artifactDir }),
  { id: "estimate", params, attempt: 1, artifact_dir: artifactDir },
  (e) => {
    if (e.type === PROCESSES_EVENT) {
      processes = (e.pids as number[]) ?? [];
      tracking.setProcesses(processes);
    } else if (e.type === "log") console.log(`  ${e.message}`);
  },
);
const outcome = await handle.done;
const samples = tracking.samples();
tracking.stop();
await killProcessTree(processes, Deno.pid).catch(() => {});
sampler.close();
await sandbox.close();
await site.close();
await Deno.remove(artifactDir, { recursive: true }).catch(() => {});
if (!outcome.ok) {
  console.error(`the sweep failed: ${outcome.error}`);
  Deno.exit(1);
}
const record = (outcome.result as { sweep: SweepRecord }).sweep;

const rows: string[][] = [[
  "resource",
  "basis",
  "model (1,2,4)",
  "predicted @8",
  "measured @8",
  "error",
  "proposal: per-session @4 × 8",
  "error",
]];
const errors: Record<string, number | null> = {};
const fmt = (name: string, v: number) =>
  name === "cpu" ? `${v.toFixed(3)} cores` : `${(v / 1024 / 1024).toFixed(0)} MB`;
const pct = (v: number | null) => (v === null ? "n/a" : `${v >= 0 ? "+" : ""}${v.toFixed(1)} %`);
for (const basis of ["system", "process"] as ResourceBasis[]) {
  const report = buildSizingReport(params, record, samples, basis);
  for (const name of ["cpu", "memory"] as const) {
    const points = report.models?.[name]?.points ?? [];
    const v = holdOut(points);
    const four = points.find((p) => p.n === 4);
    const eight = points.find((p) => p.n === 8);
    const fit = fitModels(points.filter((p) => p.n !== 8));
    if (!v || !four || !eight || !fit) {
      rows.push([name, basis, "–", "–", "–", "–", "–", "–"]);
      continue;
    }
    const proposal = four.y / 4 * 8;
    const proposalErr = eight.y === 0 ? null : (proposal - eight.y) / Math.abs(eight.y) * 100;
    errors[`${name}/${basis}`] = v.error_pct;
    errors[`${name}/${basis}/proposal`] = proposalErr;
    const c = fit.chosen;
    const other = c.kind === "linear" ? fit.power : fit.linear;
    console.log(
      `${name} (${basis}) measured: ${points.map((p) => `${p.n}: ${fmt(name, p.y)}`).join(", ")}` +
        `; fit on 1, 2, 4: ${c.kind} R² ${c.r2.toFixed(3)}` +
        (other ? `, ${other.kind} R² ${other.r2.toFixed(3)}` : ""),
    );
    rows.push([
      name,
      basis,
      c.kind === "linear"
        ? `linear ${fmt(name, c.a)} + ${fmt(name, c.b)}·n`
        : `power ${fmt(name, c.a)}·n^${c.b.toFixed(2)}`,
      fmt(name, predict(c, 8)),
      fmt(name, eight.y),
      pct(v.error_pct),
      fmt(name, proposal),
      pct(proposalErr),
    ]);
  }
  if (basis === "system") {
    const levels = report.levels.map((l) =>
      `${l.concurrency}: ${l.cpu_cores.toFixed(2)} cores (net ${l.cpu_cores_net.toFixed(2)})` +
      (l.saturated ? " saturated" : "")
    );
    console.log(`machine CPU per level: ${levels.join(", ")}`);
    console.log(
      `idle baseline: ${report.baseline?.cpu_cores.toFixed(2) ?? "–"} cores, ` +
        `${((report.baseline?.mem_used_bytes ?? 0) / 1024 ** 3).toFixed(2)} GB`,
    );
    for (const w of report.warnings.filter((w) => !/Target \d+ is/.test(w))) {
      console.log(`  warning: ${w}`);
    }
  }
}
printTable(rows);

// What drives the error, from this run's own numbers.
const sys = buildSizingReport(params, record, samples, "system");
const proc = buildSizingReport(params, record, samples, "process");
const base = record.baseline ? samplesIn(samples, record.baseline.from, record.baseline.to) : [];
const baseCpu = base.map((x) => x.cpu_cores);
const spread = baseCpu.length ? Math.max(...baseCpu) - Math.min(...baseCpu) : 0;
const intercept = proc.models?.memory?.linear.a ?? 0;
console.log("\nWhat drives the error:");
console.log(
  `  - other work on the machine: during the idle baseline the machine's CPU moved between ` +
    `${Math.min(...baseCpu).toFixed(2)} and ${Math.max(...baseCpu).toFixed(2)} cores ` +
    `(a ${spread.toFixed(2)}-core swing); the system basis sees all of it, the process basis ` +
    "only the job's browsers.",
);
const cores = samples[0]?.cpu_count ?? navigator.hardwareConcurrency;
const idle = sys.baseline?.cpu_cores ?? 0;
if (idle >= cores * 0.5) {
  console.log(
    `  - a busy machine: ${idle.toFixed(2)} of ${cores} cores were in use before the load ` +
      "started, so the load competed for what was left; the machine figures cannot see it, and " +
      "the browsers' own CPU is what they got, not what they would take on a quiet machine.",
  );
}
const saturated = sys.levels.filter((l) => l.saturated).map((l) => l.concurrency);
if (saturated.length) {
  console.log(
    `  - saturation: the machine's CPU was at ≥ 90 % at ${saturated.join(", ")} users, so ` +
      "machine CPU there is capped and flattens the curve.",
  );
}
console.log(
  `  - fixed cost: the browser and its helper processes cost ${
    (intercept / 1024 / 1024).toFixed(0)
  } MB before the first session (the memory model's intercept); the proposal's rule divides ` +
    "it among one level's sessions and multiplies it again, which over-predicts memory.",
);

console.log("");
for (const name of ["cpu", "memory"]) {
  for (const basis of ["system", "process"]) {
    const e = errors[`${name}/${basis}`];
    console.log(
      `${name} prediction error (${basis} basis): ${pct(e ?? null)} — target ≤ ${TARGET_PCT} %: ` +
        `${e !== null && e !== undefined && Math.abs(e) <= TARGET_PCT ? "met" : "NOT met"} ` +
        `(proposal rule: ${pct(errors[`${name}/${basis}/proposal`] ?? null)})`,
    );
  }
}
console.log(
  `load average ${loadAverage()} at the end; ` +
    "machine figures include everything else running on this machine",
);
