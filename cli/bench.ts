/**
 * `streamplay bench` (also `deno task bench`): run a benchmark from the command line, locally in
 * the same sandboxed Worker as on the server, or queued on a running server with `--submit`.
 */
import { parseArgs } from "node:util";
import { loadConfig } from "../lib/core/config.ts";
import { createLogger } from "../lib/core/log.ts";
import { createSandbox } from "../lib/jobs/sandbox.ts";
import { createSampler, type Sample } from "../lib/jobs/sampler.ts";
import { createUrlPolicy } from "../lib/security/url_policy.ts";
import type { Egress } from "../lib/security/egress.ts";
import { describeZodError } from "../lib/http/errors.ts";
import { completeResult, type JobType, openJobEgress } from "../lib/jobs/job_type.ts";
import { browserBenchJob, httpBenchJob } from "./job_types.ts";
import type { LoadResult } from "../lib/load/http.ts";
import type { ResourceSummary } from "../lib/jobs/sampler.ts";
import { killProcessTree } from "../lib/core/procfs.ts";
import { PROCESSES_EVENT } from "../lib/jobs/worker_protocol.ts";
import type { BrowserBenchResult, LevelTick, Percentiles } from "../lib/load/browser.ts";
import { formatSizingReport, type SizingReport } from "../lib/capacity/report.ts";
import { formatBytes, formatNumber, progressBar } from "./format.ts";
import {
  browserSucceeded,
  httpSucceeded,
  THRESHOLD_METRICS,
  type ThresholdReport,
} from "../lib/load/thresholds.ts";
import { Client, EXIT, Failure, type Json, refuse, SERVER_OPTIONS, usageError } from "./client.ts";

export const BENCH_USAGE = `Usage: streamplay bench --mode http|playwright --url URL [options]

  streamplay bench --url http://127.0.0.1:8080/ --concurrency 5 --duration 30
  streamplay bench --url http://127.0.0.1:8080/ --requests 10000 --threshold "p95<200"
  streamplay bench --mode playwright --url URL --sweep 1,2,4,8 --target 10,100,1000

  --mode M                 http (raw HTTP load) or playwright (real Chromium users)
  --url URL                target URL (http or https)
  --concurrency N          connections / virtual users (default 10 / 1)
  --duration S             seconds to run, per level (default 10 / 30)
  --ramp S                 start connections or users over S seconds
  --threshold EXPR         an SLO the run must meet at every level (repeatable), e.g.
                           "p95<200" "errors<1%" "rps>=500" (http), "lcp<2500" "cls<0.1"
                           "lcp.p95<4s" "errors<1" (playwright); operators < <= > >=

 http mode
  --requests N             stop after N requests instead of a duration
  --method M               HTTP method (default GET)
  --header "Name: value"   request header (repeatable)
  --body TEXT              request body
  --timeout-ms N           per-request timeout (default 10000)
  --rate N                 cap on requests per second
  --target-pids 12,34      size the target server: these processes (and their children)
  --target-process NAME    size the target server: every process of this name (e.g. nginx)
  --target-cgroup PATH     size the target server: the processes of a cgroup

 playwright mode
  --scenario FILE          JSON list of steps, relative to the current directory
                           (default: open the URL, scroll, wait)
  --screenshot-every S     periodic screenshot of every user's page (default 10, 0: none)
  --screenshot-quality Q   JPEG quality 1-100 (default 60)
  --browser-per-user       a browser per user instead of a context per user
  --allow-host HOST        another host the pages may load from (repeatable)
  --basis process|system   sizing from the browsers plus the platform process (default), or
                           from the whole machine's use net of idle

 sizing (both modes)
  --sweep 1,2,4,8          run these concurrency levels in turn and fit models
  --target 10,100,1000     concurrencies to project to
  --safety-factor F        headroom multiplier (default 1.5)
  --node CxG               node shape, e.g. 8x32 for 8 cores / 32 GB
  --baseline S             idle seconds sampled before the load (default 3)
  --retention-days D       days artifacts are kept (default 7)
  --sessions-per-day N     sessions each user slot runs per day (default 1)

  --json                   print the result as JSON
  --submit                 queue it on a running server instead of running here
  --server URL             server for --submit (default $STREAMPLAY_URL or http://127.0.0.1:8000)
  --token T                API token for --submit (default $STREAMPLAY_TOKEN)

 threshold metrics
  http        ${THRESHOLD_METRICS.http.join(" ")}
              (latency in ms, or with s; errors a count, or with % a share of attempts)
  playwright  lcp fcp ttfb inp cls (p75; or .p50 .p95 .max: lcp.p95) errors iterations

 exit codes
  0 met every threshold · 1 could not run · 2 bad flags · 98 nothing succeeded (no
  response below 400, no completed iteration) · 99 a threshold was crossed
`;

export interface CliMode {
  type: JobType;
  /** Builds the job params from the parsed flags. */
  params(values: Record<string, unknown>): Record<string, unknown>;
  /** One progress line from a progress event. */
  progress(event: Record<string, unknown>): string;
  /** The human-readable report from the job's result. */
  report(result: Record<string, unknown>): string;
  /** What succeeded in the result (answers below 400, completed iterations), and its name. */
  succeeded(result: Record<string, unknown>): { count: number; what: string };
}

const num = (v: unknown, flag: string): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw usageError(`--${flag} must be a number, got "${v}"`);
  return n;
};

const numList = (v: unknown, flag: string): number[] | undefined => {
  if (v === undefined) return undefined;
  const list = String(v).split(",").map((x) => x.trim()).filter(Boolean).map(Number);
  if (list.length === 0 || list.some((n) => !Number.isFinite(n))) {
    throw usageError(`--${flag} must be a comma-separated list of numbers, got "${v}"`);
  }
  return list;
};

/** The sizing flags both modes accept, as params. */
function capacityParams(v: Record<string, unknown>): Record<string, unknown> {
  const p: Record<string, unknown> = {};
  const levels = numList(v.sweep, "sweep");
  if (levels) p.levels = levels;
  else if (v.concurrency !== undefined) p.concurrency = num(v.concurrency, "concurrency");
  const targets = numList(v.target, "target");
  if (targets) p.targets = targets;
  const map: Array<[string, string]> = [
    ["safety-factor", "safety_factor"],
    ["baseline", "baseline_s"],
    ["retention-days", "retention_days"],
    ["sessions-per-day", "sessions_per_day"],
  ];
  for (const [flag, field] of map) if (v[flag] !== undefined) p[field] = num(v[flag], flag);
  if (v.threshold !== undefined) p.thresholds = v.threshold;
  if (v.node !== undefined) {
    const m = /^(\d+(?:\.\d+)?)x(\d+(?:\.\d+)?)$/i.exec(String(v.node));
    if (!m) throw usageError(`--node must look like 8x32 (cores x GB), got "${v.node}"`);
    p.node_shape = { cores: Number(m[1]), memory_gb: Number(m[2]) };
  }
  return p;
}

/** The sizing report as text, when the result has one. */
function sizingText(r: Record<string, unknown>): string {
  const sizing = r.sizing as SizingReport | undefined;
  return sizing ? `\n${formatSizingReport(sizing)}` : "";
}

/** "level 2/4 [####------]" when the run has several levels. */
function levelBar(e: Record<string, unknown>, levels: number): string {
  const level = e.level as { index: number; concurrency: number; value: number } | undefined;
  if (!level || levels < 2) return "";
  return `level ${level.index + 1}/${levels} (${level.concurrency}) ${
    progressBar(level.value, 10)
  } `;
}

export const httpMode: CliMode = {
  type: httpBenchJob,
  params(v) {
    const headers: Record<string, string> = {};
    for (const h of (v.header as string[] | undefined) ?? []) {
      const i = h.indexOf(":");
      if (i < 1) throw usageError(`--header must look like "Name: value", got "${h}"`);
      headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
    }
    const params: Record<string, unknown> = {
      url: v.url,
      method: ((v.method as string | undefined) ?? "GET").toUpperCase(),
      headers,
      timeout_ms: num(v["timeout-ms"], "timeout-ms") ?? 10_000,
      ramp_s: num(v.ramp, "ramp") ?? 0,
      ...capacityParams(v),
    };
    if (v.requests !== undefined) params.requests = num(v.requests, "requests");
    else params.duration_s = num(v.duration, "duration") ?? 10;
    if (v.rate !== undefined) params.rate = num(v.rate, "rate");
    if (v.body !== undefined) params.body = v.body;
    const pids = numList(v["target-pids"], "target-pids");
    if (pids) params.target_pids = pids;
    if (v["target-process"] !== undefined) params.target_process = v["target-process"];
    if (v["target-cgroup"] !== undefined) params.target_cgroup = v["target-cgroup"];
    return params;
  },
  progress(e) {
    const s = e.stats as {
      requests: number;
      rps: number;
      errors: number;
      latency_ms: { p95: number };
    };
    if (!s) return String(e.text ?? "");
    return `${progressBar(Number(e.value ?? 0))} ${levelBar(e, levelCount)}${
      formatNumber(s.requests)
    } req  ${formatNumber(s.rps)} req/s  p95 ${s.latency_ms.p95.toFixed(2)} ms  errors ${
      formatNumber(s.errors)
    }`;
  },
  report(r) {
    const res = r as unknown as LoadResult & { resources?: ResourceSummary };
    const errs = Object.entries(res.errors).filter(([k, n]) => k !== "total" && n > 0)
      .map(([k, n]) => `${k} ${formatNumber(n)}`).join(", ");
    const lines = [
      `http-bench ${res.method} ${res.url}  ${res.concurrency} connections, ${
        res.duration_s.toFixed(1)
      } s`,
      `  requests     ${formatNumber(res.requests)}  (${formatNumber(res.rps, 1)} req/s)`,
      `  transferred  ${formatBytes(res.bytes)}  (${formatBytes(res.throughput_bytes_per_s)}/s)`,
      `  errors       ${formatNumber(res.errors.total ?? 0)}${errs ? `  (${errs})` : ""}`,
      `  status       ${
        Object.entries(res.status_counts).map(([k, n]) => `${k}: ${formatNumber(n)}`).join(", ") ||
        "–"
      }`,
      `  latency ms   ${
        (["p50", "p90", "p95", "p99", "max", "mean"] as const).map((p) =>
          `${p} ${res.latency_ms[p]}`
        ).join(
          "  ",
        )
      }`,
    ];
    if (res.resources) {
      const x = res.resources;
      lines.push(
        `  resources    CPU ${x.cpu_cores_avg} cores avg (max ${x.cpu_cores_max}) · memory ${
          formatBytes(x.mem_used_avg_bytes!)
        } avg · net in ${formatBytes(x.net_rx_bytes!)} / out ${formatBytes(x.net_tx_bytes!)}`,
      );
    }
    return lines.join("\n") + thresholdsText(r) + sizingText(r);
  },
  succeeded(r) {
    const res = r as unknown as LoadResult & { levels?: LoadResult[] };
    return { count: httpSucceeded(res.levels ?? [res]), what: "response below 400" };
  },
};

const ms = (p: Percentiles | null | undefined, digits = 0) => p ? `${p.p75.toFixed(digits)}` : "–";

export const playwrightMode: CliMode = {
  type: browserBenchJob,
  params(v) {
    const params: Record<string, unknown> = { url: v.url, ...capacityParams(v) };
    const map: Array<[string, string]> = [
      ["duration", "duration_s"],
      ["ramp", "ramp_s"],
      ["screenshot-every", "screenshot_every_s"],
      ["screenshot-quality", "screenshot_quality"],
    ];
    for (const [flag, field] of map) if (v[flag] !== undefined) params[field] = num(v[flag], flag);
    if (v["browser-per-user"]) params.browser_per_user = true;
    if (v["allow-host"]) params.allow_hosts = v["allow-host"];
    if (v.basis !== undefined) params.resource_basis = v.basis;
    if (v.scenario !== undefined) {
      params.scenario = readScenario(String(v.scenario));
    }
    return params;
  },
  progress(e) {
    const b = e.browser as LevelTick | undefined;
    if (!b) return String(e.text ?? "");
    const level = e.level as { concurrency: number } | undefined;
    const vital = (x: number | null, unit = " ms") =>
      x === null ? "–" : `${x < 10 ? x.toFixed(3) : Math.round(x)}${unit}`;
    return `${progressBar(Number(e.value ?? 0))} ${levelBar(e, levelCount)}${b.users_active}/${
      level?.concurrency ?? "?"
    } users  ${formatNumber(b.iterations)} iterations  LCP p75 ${vital(b.vitals.lcp_ms)}  ` +
      `errors ${formatNumber(b.errors)}`;
  },
  report(r) {
    const res = r as unknown as BrowserBenchResult & { resources?: ResourceSummary };
    const lines = [
      `browser-bench ${res.url}  ${
        res.browser_per_user ? "a browser per user" : "a browser context per user"
      }`,
      `${"users".padStart(6)} ${"iterations".padStart(10)} ${"visits".padStart(7)} ` +
      `${"LCP p75".padStart(8)} ${"FCP p75".padStart(8)} ${"TTFB p75".padStart(9)} ` +
      `${"CLS p75".padStart(8)} ${"INP p75".padStart(8)} ${"heap p75".padStart(9)} ` +
      `${"errors".padStart(7)}`,
    ];
    for (const l of res.levels) {
      lines.push(
        `${String(l.concurrency).padStart(6)} ${formatNumber(l.iterations).padStart(10)} ` +
          `${formatNumber(l.visits).padStart(7)} ${ms(l.lcp_ms).padStart(8)} ` +
          `${ms(l.fcp_ms).padStart(8)} ${ms(l.ttfb_ms, 1).padStart(9)} ` +
          `${ms(l.cls, 3).padStart(8)} ${ms(l.inp_ms).padStart(8)} ` +
          `${(l.js_heap_bytes ? formatBytes(l.js_heap_bytes.p75) : "–").padStart(9)} ` +
          `${formatNumber(l.errors.total).padStart(7)}`,
      );
    }
    lines.push("  (times in ms)");
    const kinds = Object.entries(res.errors).filter(([k, n]) => k !== "total" && n > 0)
      .map(([k, n]) => `${k} ${formatNumber(n)}`).join(", ");
    lines.push(`errors       ${formatNumber(res.errors.total)}${kinds ? `  (${kinds})` : ""}`);
    for (const e of res.error_log.slice(0, 10)) {
      lines.push(
        `  ${e.kind} ×${formatNumber(e.count)}: ${e.message}` +
          (e.screenshot ? `  [${e.screenshot}]` : ""),
      );
    }
    lines.push(`screenshots  ${formatNumber(res.screenshots)}`);
    return lines.join("\n") + thresholdsText(r) + sizingText(r);
  },
  succeeded(r) {
    const res = r as unknown as BrowserBenchResult;
    return { count: browserSucceeded(res.levels), what: "completed scenario iteration" };
  },
};

/** The steps in a JSON file, relative to the current directory. */
function readScenario(path: string): unknown {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (err) {
    const why = err instanceof Deno.errors.NotCapable
      ? "streamplay reads files only under the current directory; cd to where it is"
      : err instanceof Deno.errors.NotFound
      ? "no such file"
      : (err as Error).message;
    throw usageError(`--scenario: cannot read ${path}: ${why}`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw usageError(`--scenario: ${path} is not JSON (a list of steps)`);
  }
}

/** The thresholds' outcome as report lines, when the run had thresholds. */
function thresholdsText(r: Record<string, unknown>): string {
  const t = r.thresholds as ThresholdReport | undefined;
  if (!t) return "";
  const lines = t.results.map((x) =>
    `  ${x.ok ? "ok    " : "FAILED"} ${x.threshold.padEnd(16)} measured ${measured(x)}`
  );
  return `\nthresholds   ${t.passed ? "all met" : "crossed"}\n${lines.join("\n")}`;
}

const measured = (x: ThresholdReport["results"][number]) =>
  x.value === null
    ? "nothing (no measurement)"
    : `${formatNumber(x.value, Number.isInteger(x.value) ? 0 : 2)}${x.unit ? ` ${x.unit}` : ""}` +
      (x.concurrency === null ? "" : ` at ${x.concurrency}`);

/**
 * The exit code a finished run earns: 98 when nothing succeeded, 99 when a threshold was
 * crossed (each said on stderr), else 0.
 */
function verdict(mode: CliMode, result: Record<string, unknown>): number {
  const { count, what } = mode.succeeded(result);
  if (count === 0) {
    const errors = Object.entries(result.errors as Record<string, number>)
      .filter(([k, n]) => k !== "total" && n > 0).map(([k, n]) => `${k} ${formatNumber(n)}`);
    console.error(
      `nothing succeeded: not one ${what}` +
        (errors.length ? ` (errors: ${errors.join(", ")})` : ""),
    );
    return EXIT.nothingSucceeded;
  }
  const t = result.thresholds as ThresholdReport | undefined;
  if (t && !t.passed) {
    const crossed = t.results.filter((x) => !x.ok);
    console.error(
      `${crossed.length} of ${t.results.length} threshold${t.results.length === 1 ? "" : "s"} ` +
        `crossed: ${crossed.map((x) => `${x.threshold} (measured ${measured(x)})`).join(", ")}`,
    );
    return EXIT.thresholds;
  }
  return EXIT.ok;
}

/** Params whose flag is spelled differently. */
const FLAG_FOR_FIELD: Record<string, string> = {
  duration_s: "duration",
  ramp_s: "ramp",
  timeout_ms: "timeout-ms",
  headers: "header",
  levels: "sweep",
  targets: "target",
  baseline_s: "baseline",
  node_shape: "node",
  screenshot_every_s: "screenshot-every",
  allow_hosts: "allow-host",
  browser_per_user: "browser-per-user",
  resource_basis: "basis",
  thresholds: "threshold",
};

/** The modes this CLI knows, by --mode value. */
export const MODES: Record<string, CliMode> = {
  http: httpMode,
  playwright: playwrightMode,
  browser: playwrightMode,
};

/** Levels of the run being shown (for the per-level progress bar). */
let levelCount = 1;

const isTty = Deno.stderr.isTerminal();
const encoder = new TextEncoder();
function showProgress(line: string) {
  Deno.stderr.writeSync(encoder.encode(isTty ? `\r\x1b[2K${line}` : `${line}\n`));
}

async function runLocally(
  mode: CliMode,
  params: unknown,
  json: boolean,
  egress: Egress,
): Promise<number> {
  const config = loadConfig();
  const log = createLogger({ level: "warn" });
  const sandbox = createSandbox({ log, warmPerProfile: 0 });
  const sampler = createSampler({ log });
  const id = `cli_${Date.now().toString(36)}`;
  let artifactDir: string | null = null;
  if (mode.type.artifacts) {
    artifactDir = await Deno.realPath(await Deno.makeTempDir({ prefix: "streamplay-bench-" }));
    console.error(`artifacts: ${artifactDir}`);
  }
  const spec = mode.type.sandbox(params, { config, artifactDir, egress });
  const tracking = mode.type.sample
    ? sampler.track(id, {
      intervalMs: (mode.type.sampleIntervalS?.(params) ?? 1) * 1000,
      artifactDir,
      targets: mode.type.sampleTargets?.(params) ?? null,
    }, (_s: Sample) => {})
    : null;
  // The browsers the job starts: measured in the samples, killed if the run is interrupted.
  let processes: number[] = [];
  const handle = sandbox.run(spec, { id, params, attempt: 1, artifact_dir: artifactDir }, (e) => {
    if (e.type === PROCESSES_EVENT) {
      processes = Array.isArray(e.pids) ? e.pids.filter(Number.isInteger) : [];
      tracking?.setProcesses(processes);
    }
    if (e.type === "progress" && !json) showProgress(mode.progress(e));
    if (e.type === "log" && (e.level === "warn" || e.level === "error")) {
      console.error(`\n${e.level}: ${e.message}`);
    }
  });
  const stop = () => handle.abort();
  Deno.addSignalListener("SIGINT", stop);
  try {
    const r = await handle.done;
    if (isTty && !json) Deno.stderr.writeSync(encoder.encode("\r\x1b[2K"));
    if (!r.ok) {
      tracking?.stop();
      throw new Failure(`benchmark failed: ${r.error}`);
    }
    const result = completeResult(
      mode.type,
      params,
      r.result,
      tracking,
      (err) => console.error(`sizing report failed: ${(err as Error).message}`),
    ) as Record<string, unknown>;
    console.log(json ? JSON.stringify(result, null, 2) : mode.report(result));
    return verdict(mode, result);
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
    if (processes.length) await killProcessTree(processes, Deno.pid).catch(() => {});
    sampler.close();
    await sandbox.close();
    await egress.close();
  }
}

async function submit(mode: CliMode, params: unknown, json: boolean, client: Client) {
  const res = await client.call("POST", "/api/jobs", { type: mode.type.name, params });
  if (res.status !== 202) refuse("the server refused the job", res);
  const job = res.body;
  console.error(`queued ${job.id} on ${client.server} — ${client.server}/bench/jobs/${job.id}`);
  let final: Json;
  let result: Record<string, unknown> | undefined;
  await new Promise<void>((resolve) => {
    const ws = new WebSocket(client.wsUrl(`/ws/jobs/${job.id}`));
    ws.onmessage = (m) => {
      const e = JSON.parse(m.data);
      if (e.type === "progress" && !json) showProgress(mode.progress(e));
      if (e.type === "result") result = e.result;
      if (e.type === "status" && ["succeeded", "failed", "cancelled"].includes(e.status)) final = e;
    };
    ws.onclose = () => resolve();
    ws.onerror = () => resolve();
  });
  if (isTty && !json) Deno.stderr.writeSync(encoder.encode("\r\x1b[2K"));
  if (final?.status !== "succeeded" || !result) {
    throw new Failure(
      `job ${job.id} ${final?.status ?? "lost"}${final?.error ? `: ${final.error}` : ""}`,
    );
  }
  console.log(json ? JSON.stringify(result, null, 2) : mode.report(result));
  return verdict(mode, result);
}

/** The job params from the flags, checked by the job type's schema; errors name the flag. */
function paramsFrom(mode: CliMode, values: Record<string, unknown>): unknown {
  const parsed = mode.type.params.safeParse(mode.params(values));
  if (!parsed.success) {
    const first = describeZodError(parsed.error).details[0]!;
    const flag = FLAG_FOR_FIELD[first.field.split(".")[0]!] ?? first.field.replace(/_/g, "-");
    throw usageError(`--${flag}: ${first.message}`);
  }
  return parsed.data;
}

/**
 * Locally the job's network is limited to the target, with a live progress line on stderr and the
 * report on stdout; `--submit` follows the job's events. The exit code says whether it met its
 * thresholds (99 when one was crossed) and whether anything succeeded at all (98 when not).
 */
export async function benchCli(args: string[]): Promise<number> {
  let values: Record<string, unknown>;
  try {
    values = parseArgs({
      args,
      options: {
        mode: { type: "string", default: "http" },
        url: { type: "string" },
        concurrency: { type: "string" },
        duration: { type: "string" },
        requests: { type: "string" },
        method: { type: "string" },
        header: { type: "string", multiple: true },
        body: { type: "string" },
        "timeout-ms": { type: "string" },
        rate: { type: "string" },
        ramp: { type: "string" },
        "target-pids": { type: "string" },
        "target-process": { type: "string" },
        "target-cgroup": { type: "string" },
        threshold: { type: "string", multiple: true },
        scenario: { type: "string" },
        "screenshot-every": { type: "string" },
        "screenshot-quality": { type: "string" },
        "browser-per-user": { type: "boolean", default: false },
        "allow-host": { type: "string", multiple: true },
        basis: { type: "string" },
        sweep: { type: "string" },
        target: { type: "string" },
        "safety-factor": { type: "string" },
        node: { type: "string" },
        baseline: { type: "string" },
        "retention-days": { type: "string" },
        "sessions-per-day": { type: "string" },
        json: { type: "boolean", default: false },
        submit: { type: "boolean", default: false },
        ...SERVER_OPTIONS,
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    }).values;
  } catch (err) {
    throw usageError(`${(err as Error).message} (see streamplay bench --help)`);
  }
  if (values.help) {
    console.log(BENCH_USAGE);
    return EXIT.ok;
  }
  const mode = MODES[values.mode as string];
  if (!mode) {
    throw usageError(
      `--mode must be one of ${Object.keys(MODES).join(", ")}, got "${values.mode}"`,
    );
  }
  if (!values.url) throw usageError("--url is required (see streamplay bench --help)");
  const params = paramsFrom(mode, values);
  levelCount = (params as { levels?: number[] }).levels?.length ?? 1;
  const json = values.json as boolean;
  if (values.submit) {
    return await submit(
      mode,
      params,
      json,
      new Client(values as { server?: string; token?: string }),
    );
  }
  // The run connects to the addresses checked here, never to a new lookup of a name.
  const opened = await openJobEgress(createUrlPolicy(loadConfig()), mode.type, params);
  if (!opened.ok) throw usageError(opened.reason.replace(/^params\.(\S+): /, "--$1 "));
  return await runLocally(mode, params, json, opened.egress);
}
