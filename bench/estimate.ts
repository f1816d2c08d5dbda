/**
 * `deno task bench:estimate` — whether the sizing report can be trusted (repeatability, accuracy,
 * honesty), from one run; each sweep runs in the sandboxed Worker and is sampled as the worker pool
 * samples jobs.
 */
import { parseArgs } from "node:util";
import { median } from "simple-statistics";
import { loadConfig } from "../lib/core/config.ts";
import { createLogger } from "../lib/core/log.ts";
import { createSandbox } from "../lib/jobs/sandbox.ts";
import { createSampler, type Sample } from "../lib/jobs/sampler.ts";
import { killProcessTree, readProcFiles, readStats } from "../lib/core/procfs.ts";
import { completeResult, type JobType, openJobEgress } from "../lib/jobs/job_type.ts";
import { createUrlPolicy } from "../lib/security/url_policy.ts";
import {
  buildSizingReport,
  type LevelInfo,
  samplesIn,
  type SizingReport,
  type SweepRecord,
} from "../lib/capacity/report.ts";
import {
  fitResource,
  predict,
  project,
  type Projection,
  rates,
} from "../lib/capacity/projection.ts";
import { PROCESSES_EVENT } from "../lib/jobs/worker_protocol.ts";
import {
  browserBenchJob,
  BrowserBenchParams,
  levelInfo as browserInfo,
} from "../workers/browser-bench.ts";
import { httpBenchJob, HttpBenchParams, levelInfo as httpInfo } from "../workers/http-bench.ts";
import { benchReport, benchTempDir, loadAverage, printTable, undoOnInterrupt } from "./common.ts";
import { servePages } from "./pages.ts";

const REPEAT_PCT = 15;
const ACCURACY_PCT = 15;
const HONESTY_PCT = 20;
const LEVELS = [1, 2, 4, 8, 12, 16];
const FIT_ON = [1, 2, 4, 8];
const TARGET = 1000;

/**
 *   deno task bench:estimate [--duration 12] [--repeat 3] [--json out.json] [--record dir]
 *                            [--only browser,saturation,http] [--from dir]
 *
 * `--record dir` keeps each run's samples and windows; `--from dir` reports recorded runs again
 * instead of running them (lib/capacity/fixtures holds some).
 */
const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    duration: { type: "string", default: "12" },
    repeat: { type: "string", default: "3" },
    baseline: { type: "string", default: "3" },
    json: { type: "string" },
    record: { type: "string" },
    from: { type: "string" },
    only: { type: "string", default: "browser,saturation,http" },
  },
});
const report = benchReport("estimate");
const duration = Number(args.duration);

const config = loadConfig();
const log = createLogger({ level: "warn" });
const site = servePages();
const sandbox = createSandbox({ log, warmPerProfile: 0 });
const sampler = createSampler({ log });
const MB = 1024 ** 2;

interface Run {
  name: string;
  params: BrowserBenchParams | HttpBenchParams;
  record: SweepRecord;
  samples: Sample[];
  info: LevelInfo[];
  sizing: SizingReport;
  loadBefore: string;
  /** http: what this bench read from /proc on its own (see `watchProc`). */
  procReadings?: ProcReading[];
}

/** Runs one job in its sandbox as the worker pool would, sampling it; returns its report. */
async function run(
  name: string,
  type: JobType,
  params: BrowserBenchParams | HttpBenchParams,
  info: (l: never) => LevelInfo,
): Promise<Run> {
  if (args.from) return replay(name, params);
  const loadBefore = loadAverage();
  console.log(`\n${name}: load average ${loadBefore} before the run`);
  const artifactDir = type.artifacts
    ? await Deno.realPath(await benchTempDir("bench-estimate-"))
    : null;
  const tracking = sampler.track(name, {
    intervalMs: 1000,
    artifactDir,
    targets: type.sampleTargets?.(params) ?? null,
  }, () => {});
  let processes: number[] = [];
  const opened = await openJobEgress(createUrlPolicy(config), type, params);
  if (!opened.ok) throw new Error(opened.reason);
  const handle = sandbox.run(
    type.sandbox(params, { config, artifactDir, egress: opened.egress }),
    { id: name, params, attempt: 1, artifact_dir: artifactDir },
    (e) => {
      if (e.type === PROCESSES_EVENT) {
        processes = (e.pids as number[]) ?? [];
        tracking.setProcesses(processes);
      } else if (e.type === "log" && e.level !== "info") console.log(`  ${e.message}`);
    },
  );
  const outcome = await handle.done;
  await opened.egress.close();
  const samples = tracking.samples();
  await killProcessTree(processes, Deno.pid).catch(() => {});
  if (artifactDir) await Deno.remove(artifactDir, { recursive: true }).catch(() => {});
  if (!outcome.ok) {
    tracking.stop();
    throw new Error(`${name} failed: ${outcome.error}`);
  }
  const result = completeResult(type, params, outcome.result, tracking, (err) => {
    throw err;
  }) as { sweep: SweepRecord; levels: never[]; sizing: SizingReport };
  const r: Run = {
    name,
    params,
    record: result.sweep,
    samples,
    info: result.levels.map(info),
    sizing: result.sizing,
    loadBefore,
  };
  show(r);
  if (args.record) {
    await Deno.mkdir(args.record, { recursive: true });
    await Deno.writeTextFile(
      `${args.record}/${name}.json`,
      JSON.stringify({
        name,
        params,
        record: r.record,
        info: r.info,
        samples,
        machine: { cores: navigator.hardwareConcurrency, load_before: loadBefore },
      }),
    );
  }
  return r;
}

/** A run recorded by `--record`, read back from `--from` and reported anew. */
async function replay(name: string, params: BrowserBenchParams | HttpBenchParams): Promise<Run> {
  const f = JSON.parse(await Deno.readTextFile(`${args.from}/${name}.json`));
  const basis = "resource_basis" in params ? params.resource_basis : "target";
  const r: Run = {
    name,
    params: f.params,
    record: f.record,
    samples: f.samples,
    info: f.info,
    sizing: buildSizingReport(f.params, f.record, f.samples, {
      basis,
      unit: basis === "target" ? "connections" : "users",
      info: f.info,
      sessionS: f.params.duration_s,
    }),
    loadBefore: f.machine.load_before,
    procReadings: f.proc,
  };
  console.log(`\n${name} (recorded): load average ${r.loadBefore} before the run`);
  show(r);
  return r;
}

function show(r: Run): void {
  for (const l of r.sizing.levels) {
    console.log(
      `  ${String(l.concurrency).padStart(3)}: cost ${l.cost?.cpu_cores.toFixed(2) ?? "–"} cores ` +
        `${((l.cost?.mem_bytes ?? 0) / MB).toFixed(0)} MB, machine ` +
        `${l.machine.cpu_percent.toFixed(0)} % CPU, wait ${l.cpu_wait_ratio ?? "–"}, ` +
        `${l.status}${l.reasons.length ? ` (${l.reasons.join("; ")})` : ""}`,
    );
  }
  console.log(`  verdict: ${r.sizing.verdict}`);
}

/**
 * A sweep of `page`. Users start spread over `ramp_s` (about one pass of their scenario), so they
 * do not load and click in lockstep as no real users do; the level's measurement starts once all
 * have started, `ramp_s` into the level, so the level lasts that much longer.
 */
const browserParams = (
  page: string,
  levels: number[],
  { scenario, ramp_s = 0 }: { scenario?: unknown; ramp_s?: number } = {},
) =>
  BrowserBenchParams.parse({
    url: `${site.url}/${page}`,
    levels,
    duration_s: duration + ramp_s,
    ramp_s,
    baseline_s: Number(args.baseline),
    screenshot_every_s: 5,
    targets: [10, 100, TARGET],
    ...(scenario ? { scenario } : {}),
  });

/**
 * Each virtual user adds two items, completes one, flips the filters and clears, pausing a second
 * after each thing it does as a person would (think time). Without the pauses one user kept about
 * three quarters of a core busy and two cores held fewer than four users.
 */
const PAUSE = { action: "wait", ms: 1000 } as const;
const TODO_SCENARIO = [
  { action: "goto" },
  PAUSE,
  { action: "type", selector: "#new-todo", text: "measure the app" },
  { action: "press", selector: "#new-todo", key: "Enter" },
  PAUSE,
  { action: "type", selector: "#new-todo", text: "size the servers" },
  { action: "press", selector: "#new-todo", key: "Enter" },
  PAUSE,
  { action: "click", selector: ".todo-list li .toggle" },
  PAUSE,
  { action: "click", selector: "a[data-filter=active]" },
  PAUSE,
  { action: "click", selector: "a[data-filter=completed]" },
  PAUSE,
  { action: "click", selector: "a[data-filter=all]" },
  PAUSE,
  { action: "click", selector: ".clear-completed" },
  PAUSE,
];

/** The sizing report of a run refitted on some of its levels only. */
function refit(r: Run, levels: number[]): SizingReport {
  const record = {
    ...r.record,
    levels: r.record.levels.filter((l) => levels.includes(l.concurrency)),
  };
  return buildSizingReport({ ...r.params, levels }, record, r.samples, {
    basis: r.sizing.basis,
    unit: r.sizing.unit,
    info: r.info.filter((i) => levels.includes(i.concurrency)),
    sessionS: duration,
  });
}

interface Accuracy {
  level: number;
  /** The levels the models were fitted on. */
  fitOn: number[];
  cpu: { predicted: number; measured: number; error: number; proposal: number };
  mem: { predicted: number; measured: number; error: number; proposal: number };
}

/**
 * Fit on 1, 2, 4, 8; predict the highest healthy level of 16 and 12. Where both saturate (on
 * the 2-core development box the simple page's action latency doubles at 12), the highest fitted
 * level is held out instead: fit on 1, 2, 4, predict 8. Fewer than four healthy levels: null.
 */
function accuracy(r: Run): Accuracy | null {
  const healthy = (n: number) =>
    r.sizing.levels.find((l) => l.concurrency === n && l.status === "healthy" && l.cost);
  let check = [16, 12].map(healthy).find((l) => l !== undefined);
  let fitOn = FIT_ON;
  if (!check) {
    const fitted = FIT_ON.filter((n) => healthy(n));
    if (fitted.length < FIT_ON.length) return null;
    check = healthy(fitted.at(-1)!);
    fitOn = fitted.slice(0, -1);
  }
  const fit = refit(r, fitOn);
  const top = fit.levels.find((l) => l.concurrency === fitOn.at(-1));
  if (!check?.cost || !fit.models?.cpu || !fit.models.memory || !top?.per_session) return null;
  const n = check.concurrency;
  const err = (p: number, m: number) => (p - m) / m * 100;
  const cpuP = Math.max(0, predict(fit.models.cpu.chosen, n));
  const memP = Math.max(0, predict(fit.models.memory.chosen, n));
  return {
    level: n,
    fitOn,
    cpu: {
      predicted: cpuP,
      measured: check.cost.cpu_cores,
      error: err(cpuP, check.cost.cpu_cores),
      proposal: err(top.per_session.cpu_cores * n, check.cost.cpu_cores),
    },
    mem: {
      predicted: memP,
      measured: check.cost.mem_bytes,
      error: err(memP, check.cost.mem_bytes),
      proposal: err(top.per_session.mem_bytes * n, check.cost.mem_bytes),
    },
  };
}

interface Row {
  metric: string;
  ours: number | string | null;
  peer: number | string | null;
  peer_name: string;
  unit: string;
  target: string;
  met: boolean | null;
}
const rows: Row[] = [];
const pct = (v: number | null | undefined) =>
  v === null || v === undefined || !Number.isFinite(v)
    ? "–"
    : `${v >= 0 ? "+" : ""}${v.toFixed(1)} %`;
const round1 = (v: number) => Math.round(v * 10) / 10;

/** Largest deviation from the median, in % of it. */
const spread = (xs: number[]) => {
  const m = median(xs);
  return m === 0 ? 0 : Math.max(...xs.map((x) => Math.abs(x - m) / m * 100));
};

// ---- nginx: a static-file server as the http-bench target ----

async function startNginx(): Promise<{ url: string; master: number; stop(): Promise<void> }> {
  const dir = await benchTempDir("bench-estimate-nginx-");
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  await Deno.mkdir(`${dir}/www`);
  await Deno.writeTextFile(`${dir}/www/index.html`, "x".repeat(8192));
  await Deno.writeTextFile(
    `${dir}/nginx.conf`,
    `daemon off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 1024; }
http { access_log off; server { listen 127.0.0.1:${port}; root ${dir}/www; } }`,
  );
  const child = new Deno.Command("nginx", {
    args: ["-c", `${dir}/nginx.conf`, "-p", dir],
    stdout: "null",
    stderr: "null",
  }).spawn();
  undoOnInterrupt(() => child.kill("SIGKILL"));
  for (let i = 0; i < 50; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/index.html`).then(async (r) => {
      await r.body?.cancel();
      return r.ok;
    }, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: `http://127.0.0.1:${port}/index.html`,
    master: child.pid,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

interface ProcReading {
  at: number;
  ticks: number;
  pss: number;
}

/** What /proc says nginx used, read by this bench on its own every 250 ms. */
function watchProc(master: number) {
  const readings: ProcReading[] = [];
  let on = true;
  const loop = (async () => {
    while (on) {
      const { stdout } = await new Deno.Command("sh", {
        args: ["-c", `cat /proc/${master}/task/*/children`],
        stdout: "piped",
        stderr: "null",
      }).output();
      const pids = [master, ...new TextDecoder().decode(stdout).trim().split(/\s+/).map(Number)]
        .filter((p) => p > 1);
      const stats = await readStats(pids);
      const files = await readProcFiles(pids.map((p) => `/proc/${p}/smaps_rollup`));
      const pss = [...files.values()].reduce(
        (a, t) => a + Number(/^Pss:\s+(\d+)/m.exec(t)?.[1] ?? 0) * 1024,
        0,
      );
      readings.push({ at: Date.now(), ticks: stats.reduce((a, p) => a + p.cpuTicks, 0), pss });
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  return {
    readings,
    async stop() {
      on = false;
      await loop;
    },
  };
}

/** Cores and mean PSS between two times, from the /proc readings inside them. */
function between(readings: ProcReading[], from: number, to: number) {
  const inside = readings.filter((r) => r.at >= from && r.at <= to);
  const a = inside[0];
  const b = inside[inside.length - 1];
  if (!a || !b || b.at === a.at) return null;
  return {
    cores: (b.ticks - a.ticks) / 100 / ((b.at - a.at) / 1000),
    pss: inside.reduce((s, r) => s + r.pss, 0) / inside.length,
  };
}

/**
 * Repeatability and accuracy: the simple page swept `repeat` times, the TodoMVC app once.
 *
 * - repeatability: the same browser-bench sweep 3× on the simple page; the 1,000-user projection of
 *   cores, memory and nodes each within ±15 % of their median (peer: the proposal's single-level
 *   rule, per-session cost at the top level × 1,000, on the same runs);
 * - accuracy: models fitted on 1, 2, 4 and 8 users predict a measured 16-user level (12 where 16
 *   saturates), CPU and memory within 15 %, on the simple page and on a script-heavy TodoMVC-style
 *   app (peer: the proposal's rule, per-session cost at 8 × the level).
 */
async function browserSweeps(): Promise<void> {
  const simple: Run[] = [];
  for (let i = 1; i <= Number(args.repeat); i++) {
    simple.push(
      await run(
        `simple-${i}`,
        browserBenchJob,
        browserParams("simple", LEVELS, { ramp_s: 1 }),
        browserInfo,
      ),
    );
  }
  const todo = await run(
    "todo",
    browserBenchJob,
    browserParams("todo", LEVELS, { scenario: TODO_SCENARIO, ramp_s: 8 }),
    browserInfo,
  );

  // Repeatability.
  const proj = simple.map((r) => r.sizing.projections.find((p) => p.target === TARGET));
  const proposal = simple.map((r) => {
    const top = r.sizing.levels.filter((l) => l.status === "healthy" && l.per_session).pop();
    const sf = r.params.safety_factor;
    return top?.per_session
      ? {
        cores: Math.ceil(top.per_session.cpu_cores * TARGET * sf),
        mem: top.per_session.mem_bytes * TARGET * sf,
      }
      : null;
  });
  console.log("\nRepeatability: the 1,000-user projection of each simple-page run");
  printTable([
    [
      "run",
      "load avg before",
      "healthy levels",
      "cores",
      "RAM",
      "nodes",
      "proposal cores",
      "proposal RAM",
    ],
    ...simple.map((r, i) => [
      r.name,
      r.loadBefore,
      r.sizing.healthy_levels.join(","),
      proj[i] ? `${proj[i]!.required_cores} (${proj[i]!.interval.cores.join("–")})` : "–",
      proj[i] ? `${(proj[i]!.required_ram_bytes / 1024 ** 3).toFixed(1)} GB` : "–",
      proj[i] ? `${proj[i]!.nodes.count} (${proj[i]!.interval.nodes.join("–")})` : "–",
      proposal[i] ? String(proposal[i]!.cores) : "–",
      proposal[i] ? `${(proposal[i]!.mem / 1024 ** 3).toFixed(1)} GB` : "–",
    ]),
  ]);
  const complete = proj.every((p) => p) && proj.length >= 2;
  const proposalComplete = proposal.every((p) => p) && proposal.length >= 2;
  for (
    const [what, ours, peer] of [
      [
        "cores",
        (p: NonNullable<typeof proj[0]>) => p.required_cores,
        (p: { cores: number }) => p.cores,
      ],
      [
        "memory",
        (p: NonNullable<typeof proj[0]>) => p.required_ram_bytes,
        (p: { mem: number }) => p.mem,
      ],
      ["nodes", (p: NonNullable<typeof proj[0]>) => p.nodes.count, null],
    ] as const
  ) {
    const s = complete ? spread(proj.map((p) => ours(p!))) : null;
    const peerS = proposalComplete && peer
      ? spread(proposal.map((p) => (peer as (x: { cores: number; mem: number }) => number)(p!)))
      : null;
    rows.push({
      metric: `repeatability: ${TARGET}-user ${what}, largest deviation from the median of ` +
        `${simple.length} runs`,
      ours: s === null ? null : round1(s),
      peer: peerS === null ? null : round1(peerS),
      peer_name: "proposal rule (per-session cost at the top level × 1,000), same runs",
      unit: "%",
      target: `≤ ${REPEAT_PCT}`,
      met: s === null ? false : s <= REPEAT_PCT,
    });
  }

  // Accuracy.
  console.log(
    "\nAccuracy: models fitted on 1, 2, 4, 8 users predict a measured 16 or 12 " +
      "(where both saturate: fitted on 1, 2, 4, they predict 8)",
  );
  const acc: Array<[string, Accuracy | null]> = [
    ...simple.map((r) => [r.name, accuracy(r)] as [string, Accuracy | null]),
    ["todo", accuracy(todo)],
  ];
  printTable([
    [
      "run",
      "level",
      "CPU predicted",
      "CPU measured",
      "error",
      "proposal",
      "memory predicted",
      "memory measured",
      "error",
      "proposal",
    ],
    ...acc.map(([name, a]) =>
      a
        ? [
          name,
          `${a.level} (fit ${a.fitOn.join(", ")})`,
          `${a.cpu.predicted.toFixed(2)} cores`,
          `${a.cpu.measured.toFixed(2)} cores`,
          pct(a.cpu.error),
          pct(a.cpu.proposal),
          `${(a.mem.predicted / MB).toFixed(0)} MB`,
          `${(a.mem.measured / MB).toFixed(0)} MB`,
          pct(a.mem.error),
          pct(a.mem.proposal),
        ]
        : [name, "fewer than 4 healthy levels", "–", "–", "–", "–", "–", "–", "–", "–"]
    ),
  ]);
  const pages: Array<[string, Array<Accuracy | null>]> = [
    ["simple page", acc.filter(([n]) => n.startsWith("simple")).map(([, a]) => a)],
    ["TodoMVC app", [acc.find(([n]) => n === "todo")![1]]],
  ];
  for (const [page, list] of pages) {
    for (const res of ["cpu", "mem"] as const) {
      const errs = list.filter((a) => a !== null).map((a) => a[res].error);
      const peers = list.filter((a) => a !== null).map((a) => a[res].proposal);
      const worst = errs.length ? errs.reduce((a, b) => (Math.abs(b) > Math.abs(a) ? b : a)) : null;
      const peerWorst = peers.length
        ? peers.reduce((a, b) => (Math.abs(b) > Math.abs(a) ? b : a))
        : null;
      const held = [...new Set(list.filter((a) => a !== null).map((a) => a.level))].join("/");
      rows.push({
        metric: `accuracy: ${page}, ${res === "cpu" ? "CPU" : "memory"} at the held-out ` +
          `level${held ? ` (${held} users)` : ""}, worst of ${errs.length} run` +
          `${errs.length === 1 ? "" : "s"}`,
        ours: worst === null ? null : round1(worst),
        peer: peerWorst === null ? null : round1(peerWorst),
        peer_name: "proposal rule (per-session cost at the top fitted level × level)",
        unit: "% error",
        target: `±${ACCURACY_PCT}`,
        met: worst === null
          ? false
          : Math.abs(worst) <= ACCURACY_PCT && errs.length === list.length,
      });
    }
  }
  diagnostic(simple, todo);
}

/** Per-second cost (browsers + platform) of some levels of a run, whatever their status. */
function rawSeries(r: Run, levels: number[]) {
  return r.record.levels.filter((w) => levels.includes(w.concurrency)).map((w) => {
    const s = samplesIn(r.samples, w.steady, w.ended);
    return {
      n: w.concurrency,
      cpu: s.map((x) => (x.proc_cpu_cores ?? 0) + (x.platform_cpu_cores ?? 0)),
      mem: s.map((x) => (x.proc_mem_bytes ?? 0) + (x.platform_mem_bytes ?? 0)),
    };
  });
}

/**
 * The same runs fitted on every level, saturated or not: not the report's answer (it refuses
 * those levels), but what the models make of this machine's figures when it is too busy for a
 * healthy level. Printed apart, with no target claimed.
 */
function diagnostic(simple: Run[], todo: Run): void {
  const fit = (r: Run, levels: number[]) => {
    const series = rawSeries(r, levels);
    const cpu = fitResource("cpu", series.map((x) => ({ n: x.n, values: x.cpu })));
    const mem = fitResource("memory", series.map((x) => ({ n: x.n, values: x.mem })));
    return cpu && mem ? { cpu, mem } : null;
  };
  const accuracyOf = (r: Run) => {
    const m = fit(r, FIT_ON);
    const [check] = rawSeries(r, [16]);
    if (!m || !check?.cpu.length) return null;
    const err = (p: number, xs: number[]) => (p - median(xs)) / median(xs) * 100;
    return {
      cpu: err(m.cpu.at(16).value, check.cpu),
      mem: err(m.mem.at(16).value, check.mem),
    };
  };
  const projections = simple.map((r) => {
    const m = fit(r, LEVELS);
    return m
      ? project({
        target: TARGET,
        cpu: m.cpu.at(TARGET),
        memory: m.mem.at(TARGET),
        rates: rates([]),
        session_s: 0,
        highest: 16,
      }, r.params)
      : null;
  });
  console.log(
    "\nDiagnostic (NOT the report's answer): the same runs fitted on every level, saturated or not",
  );
  printTable([
    [
      "run",
      "CPU @16 error (fit 1,2,4,8)",
      "memory @16 error",
      "1,000 users: cores",
      "RAM",
      "nodes",
    ],
    ...[...simple, todo].map((r) => {
      const a = accuracyOf(r);
      const p = projections[simple.indexOf(r)];
      return [
        r.name,
        pct(a?.cpu),
        pct(a?.mem),
        p ? String(p.required_cores) : "–",
        p ? `${(p.required_ram_bytes / 1024 ** 3).toFixed(1)} GB` : "–",
        p ? String(p.nodes.count) : "–",
      ];
    }),
  ]);
  const ok = projections.filter((p) => p !== null);
  if (ok.length >= 2) {
    for (
      const [what, get] of [
        ["cores", (p: Projection) => p.required_cores],
        ["memory", (p: Projection) => p.required_ram_bytes],
        ["nodes", (p: Projection) => p.nodes.count],
      ] as const
    ) {
      rows.push({
        metric: `diagnostic, every level fitted: ${TARGET}-user ${what}, largest deviation ` +
          "from the median",
        ours: round1(spread(ok.map(get))),
        peer: null,
        peer_name: "",
        unit: "%",
        target: "none (not the report's answer)",
        met: null,
      });
    }
  }
}

/**
 * Honesty: a sweep whose top level (24 users of the animated page) cannot fit this machine.
 *
 * The run must say that its top level saturates.
 */
async function saturation(): Promise<void> {
  const saturating = await run(
    "complex-saturating",
    browserBenchJob,
    browserParams("complex", [1, 4, 24]),
    browserInfo,
  );
  // Honesty: saturation.
  const top = saturating.sizing.levels[saturating.sizing.levels.length - 1];
  const named = top !== undefined && top.status !== "healthy" &&
    saturating.sizing.verdict.includes(String(top.concurrency));
  rows.push({
    metric: `honesty: the saturating run's top level (${top?.concurrency ?? "–"} users of the ` +
      "animated page) is marked saturated and named in the verdict",
    ours: top
      ? `${top.status}; highest healthy level ${saturating.sizing.highest_healthy_level ?? "none"}`
      : null,
    peer: top ? `${top.machine.cpu_percent.toFixed(0)} % CPU, wait ${top.cpu_wait_ratio}` : null,
    peer_name: "machine CPU and the browsers' run-queue wait at that level",
    unit: "",
    target: "saturated, named",
    met: named,
  });
}

/**
 * Honesty: nginx serving a static file, sized by its own processes and checked against /proc.
 *
 * The report must give the server's own cost within 20 % of what /proc says its processes used.
 */
async function httpTarget(): Promise<void> {
  const params = (url: string, master: number) =>
    HttpBenchParams.parse({
      url,
      levels: [1, 2, 4, 8],
      duration_s: 6,
      baseline_s: 2,
      target_pids: [master],
    });
  let http: Run;
  let readings: ProcReading[];
  if (args.from) {
    http = await run("http-nginx", httpBenchJob, params("http://127.0.0.1/", 2), httpInfo);
    readings = http.procReadings ?? [];
  } else {
    const nginx = await startNginx();
    const proc = watchProc(nginx.master);
    try {
      http = await run("http-nginx", httpBenchJob, params(nginx.url, nginx.master), httpInfo);
    } finally {
      await proc.stop();
      await nginx.stop();
    }
    readings = proc.readings;
    if (args.record) {
      const file = `${args.record}/http-nginx.json`;
      const f = JSON.parse(await Deno.readTextFile(file));
      await Deno.writeTextFile(file, JSON.stringify({ ...f, proc: readings }));
    }
  }

  // Honesty: nginx's cost.
  console.log("\nHonesty: nginx's cost as the report sizes it and as /proc says");
  const cmp = http.record.levels.map((w) => {
    const l = http.sizing.levels.find((x) => x.concurrency === w.concurrency);
    const p = between(readings, w.steady, w.ended);
    return { n: w.concurrency, l, p };
  });
  printTable([
    [
      "connections",
      "report: target cores",
      "/proc cores",
      "error",
      "report: target PSS",
      "/proc PSS",
      "error",
      "generator cores",
      "machine cores",
      "status",
    ],
    ...cmp.map(({ n, l, p }) => [
      String(n),
      l?.target ? l.target.cpu_cores.toFixed(2) : "–",
      p ? p.cores.toFixed(2) : "–",
      l?.target && p ? pct((l.target.cpu_cores - p.cores) / p.cores * 100) : "–",
      l?.target ? `${(l.target.mem_bytes / MB).toFixed(1)} MB` : "–",
      p ? `${(p.pss / MB).toFixed(1)} MB` : "–",
      l?.target && p ? pct((l.target.mem_bytes - p.pss) / p.pss * 100) : "–",
      l ? l.generator.cpu_cores.toFixed(2) : "–",
      l ? l.machine.cpu_cores.toFixed(2) : "–",
      l?.status ?? "–",
    ]),
  ]);
  for (const res of ["cores", "PSS"] as const) {
    const errs = cmp.filter((c) => c.l?.target && c.p).map(({ l, p }) =>
      res === "cores"
        ? (l!.target!.cpu_cores - p!.cores) / p!.cores * 100
        : (l!.target!.mem_bytes - p!.pss) / p!.pss * 100
    );
    const worst = errs.length ? errs.reduce((a, b) => (Math.abs(b) > Math.abs(a) ? b : a)) : null;
    rows.push({
      metric: `honesty: nginx ${res} in the report against /proc, worst of ${errs.length} levels`,
      ours: worst === null ? null : round1(worst),
      peer: res === "cores"
        ? round1(median(cmp.map((c) => c.l?.machine.cpu_cores ?? 0)))
        : round1(median(cmp.map((c) => (c.l?.machine.mem_net_bytes ?? 0) / MB))),
      peer_name: res === "cores"
        ? "machine cores (what a machine-wide report sized), median of the levels"
        : "machine memory net of idle, MB (what a machine-wide report sized)",
      unit: "% error",
      target: `±${HONESTY_PCT}`,
      met: worst === null ? false : Math.abs(worst) <= HONESTY_PCT && errs.length === cmp.length,
    });
  }
}

const SECTIONS: Record<string, () => Promise<void>> = {
  browser: browserSweeps,
  saturation,
  http: httpTarget,
};

try {
  console.log(
    `estimate: levels ${LEVELS.join(", ")} (fit on ${FIT_ON.join(", ")}), ${duration} s each; ` +
      `${navigator.hardwareConcurrency} cores; load average ${loadAverage()} at start`,
  );
  for (const name of args.only.split(",")) {
    const section = SECTIONS[name.trim()];
    if (!section) throw new Error(`--only: unknown section "${name}" (browser, saturation, http)`);
    await section();
  }

  console.log("\nResults");
  printTable([
    ["metric", "ours", "peer", "peer", "target", "met"],
    ...rows.map((r) => [
      r.metric,
      r.ours === null ? "–" : `${r.ours}${r.unit.startsWith("%") ? " %" : ""}`,
      r.peer === null ? "–" : `${r.peer}`,
      r.peer_name,
      r.target,
      r.met === null ? "–" : r.met ? "met" : "NOT met",
    ]),
  ]);
  console.log(`load average ${loadAverage()} at the end (other work on the machine adds noise)`);
  for (const row of rows) report.add(row);
  await report.write();
} finally {
  sampler.close();
  await sandbox.close();
  await site.close();
}
