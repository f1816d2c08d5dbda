/**
 * `deno task bench` — run a benchmark from the command line.
 *
 *   deno task bench --mode http --url URL --concurrency 5 --duration 30
 *   deno task bench --mode http --url URL --requests 10000 --json
 *   deno task bench --mode http --url URL --submit [--server http://127.0.0.1:8000] [--token T]
 *
 * Locally the job runs in the same sandboxed Worker as on the server (network limited to the
 * target), with a live progress line on stderr and the report on stdout. `--submit` queues it
 * on a running server instead and follows its events.
 */
import { parseArgs } from "node:util";
import { loadConfig } from "../lib/config.ts";
import { createLogger } from "../lib/log.ts";
import { createSandbox } from "../lib/sandbox.ts";
import { createSampler } from "../lib/sampler.ts";
import { createUrlPolicy } from "../lib/url_policy.ts";
import { describeZodError } from "../lib/errors.ts";
import type { JobType } from "../lib/job_types.ts";
import { httpBenchJob } from "../workers/http-bench.ts";
import type { LoadResult } from "../lib/http_load.ts";
import type { ResourceSummary } from "../lib/sampler.ts";
import { formatBytes, formatNumber, progressBar } from "./format.ts";

const USAGE = `Usage: deno task bench --mode http --url URL [options]

  --mode http              load mode (http)
  --url URL                target URL (http or https)
  --concurrency N          connections (default 10)
  --duration S             seconds to run (default 10)
  --requests N             stop after N requests instead of a duration
  --method M               HTTP method (default GET)
  --header "Name: value"   request header (repeatable)
  --body TEXT              request body
  --timeout-ms N           per-request timeout (default 10000)
  --rate N                 cap on requests per second
  --ramp S                 open connections over S seconds
  --json                   print the result as JSON
  --submit                 queue it on a running server instead of running here
  --server URL             server for --submit (default $STREAMPLAY_URL or http://127.0.0.1:8000)
  --token T                API token for --submit (default $STREAMPLAY_TOKEN)
`;

/** Thrown for bad command-line input; printed as one line, exit code 2. */
class UsageError extends Error {}

export interface CliMode {
  type: JobType;
  /** Builds the job params from the parsed flags. */
  params(values: Record<string, unknown>): Record<string, unknown>;
  /** One progress line from a progress event. */
  progress(event: Record<string, unknown>): string;
  /** The human-readable report from the job's result. */
  report(result: Record<string, unknown>): string;
}

const num = (v: unknown, flag: string): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${flag} must be a number, got "${v}"`);
  return n;
};

export const httpMode: CliMode = {
  type: httpBenchJob,
  params(v) {
    const headers: Record<string, string> = {};
    for (const h of (v.header as string[] | undefined) ?? []) {
      const i = h.indexOf(":");
      if (i < 1) throw new UsageError(`--header must look like "Name: value", got "${h}"`);
      headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
    }
    const params: Record<string, unknown> = {
      url: v.url,
      method: ((v.method as string | undefined) ?? "GET").toUpperCase(),
      headers,
      concurrency: num(v.concurrency, "concurrency") ?? 10,
      timeout_ms: num(v["timeout-ms"], "timeout-ms") ?? 10_000,
      ramp_s: num(v.ramp, "ramp") ?? 0,
    };
    if (v.requests !== undefined) params.requests = num(v.requests, "requests");
    else params.duration_s = num(v.duration, "duration") ?? 10;
    if (v.rate !== undefined) params.rate = num(v.rate, "rate");
    if (v.body !== undefined) params.body = v.body;
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
    return `${progressBar(Number(e.value ?? 0))} ${formatNumber(s.requests)} req  ${
      formatNumber(s.rps)
    } req/s  p95 ${s.latency_ms.p95.toFixed(2)} ms  errors ${formatNumber(s.errors)}`;
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
    return lines.join("\n");
  },
};

/** Params whose flag is spelled differently. */
const FLAG_FOR_FIELD: Record<string, string> = {
  duration_s: "duration",
  ramp_s: "ramp",
  timeout_ms: "timeout-ms",
  headers: "header",
};

/** The modes this CLI knows, by --mode value. */
export const MODES: Record<string, CliMode> = { http: httpMode };

const isTty = Deno.stderr.isTerminal();
const encoder = new TextEncoder();
function showProgress(line: string) {
  Deno.stderr.writeSync(encoder.encode(isTty ? `\r\x1b[2K${line}` : `${line}\n`));
}

async function runLocally(mode: CliMode, params: unknown, json: boolean): Promise<number> {
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
  const spec = mode.type.sandbox(params, { config, artifactDir });
  const tracking = mode.type.sample ? sampler.track(id, () => {}) : null;
  const handle = sandbox.run(spec, { id, params, attempt: 1, artifact_dir: artifactDir }, (e) => {
    if (e.type === "progress" && !json) showProgress(mode.progress(e));
    if (e.type === "log" && (e.level === "warn" || e.level === "error")) {
      console.error(`\n${e.level}: ${e.message}`);
    }
  });
  const stop = () => handle.abort();
  Deno.addSignalListener("SIGINT", stop);
  try {
    const r = await handle.done;
    const summary = tracking?.stop();
    if (isTty && !json) Deno.stderr.writeSync(encoder.encode("\r\x1b[2K"));
    if (!r.ok) {
      console.error(`benchmark failed: ${r.error}`);
      return 1;
    }
    const result = {
      ...(r.result as Record<string, unknown>),
      ...(summary ? { resources: summary } : {}),
    };
    console.log(json ? JSON.stringify(result, null, 2) : mode.report(result));
    return 0;
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
    sampler.close();
    sandbox.close();
  }
}

async function submit(
  mode: CliMode,
  params: unknown,
  json: boolean,
  server: string,
  token: string | undefined,
): Promise<number> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${server}/api/jobs`, {
    method: "POST",
    headers,
    body: JSON.stringify({ type: mode.type.name, params }),
  });
  const job = await res.json();
  if (!res.ok) {
    console.error(`server refused the job (${res.status}): ${job.error}`);
    return res.status === 400 ? 2 : 1;
  }
  console.error(`queued ${job.id} on ${server} — ${server}/bench/jobs/${job.id}`);
  const wsUrl = new URL(`/ws/jobs/${job.id}`, server);
  wsUrl.protocol = wsUrl.protocol === "https:" ? "wss:" : "ws:";
  if (token) wsUrl.searchParams.set("token", token);
  let final: Record<string, unknown> | undefined;
  let result: Record<string, unknown> | undefined;
  await new Promise<void>((resolve) => {
    const ws = new WebSocket(wsUrl);
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
    console.error(
      `job ${job.id} ${final?.status ?? "lost"}${final?.error ? `: ${final.error}` : ""}`,
    );
    return 1;
  }
  console.log(json ? JSON.stringify(result, null, 2) : mode.report(result));
  return 0;
}

export async function main(args: string[]): Promise<number> {
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
        json: { type: "boolean", default: false },
        submit: { type: "boolean", default: false },
        server: { type: "string" },
        token: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    }).values;
  } catch (err) {
    console.error(`${(err as Error).message} (see --help)`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const mode = MODES[values.mode as string];
  if (!mode) {
    console.error(`--mode must be one of ${Object.keys(MODES).join(", ")}, got "${values.mode}"`);
    return 2;
  }
  if (!values.url) {
    console.error("--url is required (see --help)");
    return 2;
  }
  let params: unknown;
  try {
    const parsed = mode.type.params.safeParse(mode.params(values));
    if (!parsed.success) {
      const { details } = describeZodError(parsed.error);
      const first = details[0]!;
      const flag = FLAG_FOR_FIELD[first.field.split(".")[0]!] ?? first.field.replace(/_/g, "-");
      console.error(`--${flag}: ${first.message}`);
      return 2;
    }
    params = parsed.data;
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  }
  const json = values.json as boolean;
  if (values.submit) {
    const server = ((values.server as string | undefined) ?? Deno.env.get("STREAMPLAY_URL") ??
      "http://127.0.0.1:8000").replace(/\/+$/, "");
    return await submit(
      mode,
      params,
      json,
      server,
      (values.token as string | undefined) ?? Deno.env.get("STREAMPLAY_TOKEN"),
    );
  }
  const policy = createUrlPolicy(loadConfig());
  for (const { field, url } of mode.type.urls(params)) {
    const verdict = await policy.check(url);
    if (!verdict.ok) {
      console.error(`--${field.replace(/^params\./, "")} ${url} is refused: ${verdict.reason}`);
      return 2;
    }
  }
  return await runLocally(mode, params, json);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
