/**
 * `deno task bench:http` — requests per second of the `http-bench` engine (in its sandboxed Worker)
 * against nginx serving a 1 KB file, beside wrk and autocannon on the same server in the same run.
 */
import { parseArgs } from "node:util";
import * as hdr from "hdr-histogram-js";
import { createSandbox } from "../lib/jobs/sandbox.ts";
import { createLogger } from "../lib/core/log.ts";
import { loadConfig } from "../lib/core/config.ts";
import { openJobEgress } from "../lib/jobs/job_type.ts";
import { createUrlPolicy } from "../lib/security/url_policy.ts";
import { freePort } from "../lib/core/redis.ts";
import { httpBenchJob, HttpBenchParams } from "../workers/http-bench.ts";
import type { LoadResult } from "../lib/load/http.ts";
import {
  benchReport,
  benchTempDir,
  ensurePeers,
  percentile,
  ROOT,
  round,
  undoOnInterrupt,
} from "./common.ts";

interface Figure {
  rps: number;
  p50: number;
  p99: number;
}

async function startNginx(): Promise<{ url: string; stop(): Promise<void> }> {
  const dir = await benchTempDir("bench-nginx-");
  // nginx's worker runs as an unprivileged user when started as root: it must read the file.
  await Deno.chmod(dir, 0o755);
  await Deno.mkdir(`${dir}/html`, { mode: 0o755 });
  await Deno.writeTextFile(`${dir}/html/1k.txt`, "x".repeat(1024), { mode: 0o644 });
  const port = freePort();
  await Deno.writeTextFile(
    `${dir}/nginx.conf`,
    `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  server { listen 127.0.0.1:${port}; root ${dir}/html; }
}
`,
  );
  const child = new Deno.Command("nginx", {
    args: ["-c", `${dir}/nginx.conf`, "-p", dir],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  undoOnInterrupt(() => child.kill("SIGTERM"));
  const url = `http://127.0.0.1:${port}/1k.txt`;
  let status = 0;
  for (let i = 0; i < 100 && status === 0; i++) {
    try {
      const res = await fetch(url);
      await res.body?.cancel();
      status = res.status;
    } catch {
      await new Promise((r) => setTimeout(r, 50)); // not up yet
    }
  }
  if (status !== 200) {
    child.kill("SIGQUIT");
    await child.status;
    throw new Error(`nginx answers ${status || "nothing"} for ${url}`);
  }
  return {
    url,
    async stop() {
      child.kill("SIGQUIT");
      await child.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/**
 * Each tool gets 32 connections for 10 s, rounds alternating between tools. wrk comes from Debian,
 * autocannon from npm (on Node).
 */
async function streamplay(url: string, seconds: number): Promise<Figure> {
  const sandbox = createSandbox({ log: createLogger({ level: "warn" }), warmPerProfile: 0 });
  const params = HttpBenchParams.parse({
    url,
    concurrency: 32,
    duration_s: seconds,
    baseline_s: 0,
  });
  const config = loadConfig({});
  const opened = await openJobEgress(createUrlPolicy(config), httpBenchJob, params);
  if (!opened.ok) throw new Error(opened.reason);
  const spec = httpBenchJob.sandbox(params, { config, artifactDir: null, egress: opened.egress });
  try {
    const r = await sandbox.run(
      spec,
      { id: "bench", params, attempt: 1, artifact_dir: null },
      () => {},
    ).done;
    if (!r.ok) throw new Error(r.error);
    const res = r.result as LoadResult;
    if (res.errors.total > 0) {
      throw new Error(`streamplay saw errors: ${JSON.stringify(res.errors)}`);
    }
    return { rps: res.rps, p50: res.latency_ms.p50, p99: res.latency_ms.p99 };
  } finally {
    await sandbox.close();
  }
}

async function wrk(url: string, seconds: number): Promise<Figure> {
  const { stdout, success } = await new Deno.Command("wrk", {
    args: ["-t2", "-c32", `-d${seconds}s`, "--latency", url],
    stdout: "piped",
    stderr: "null",
  }).output();
  if (!success) throw new Error("wrk failed (apt-get install wrk)");
  const text = new TextDecoder().decode(stdout);
  const ms = (label: string) => {
    const m = new RegExp(`${label}%\\s+([\\d.]+)(us|ms|s)`).exec(text);
    if (!m) return NaN;
    const v = Number(m[1]);
    return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
  };
  return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1]), p50: ms("50"), p99: ms("99") };
}

async function autocannon(url: string, seconds: number): Promise<Figure> {
  await ensurePeers();
  const { stdout, success } = await new Deno.Command("node", {
    args: [
      "node_modules/autocannon/autocannon.js",
      "-c",
      "32",
      "-d",
      String(seconds),
      "--json",
      url,
    ],
    cwd: `${ROOT}bench/peers`,
    stdout: "piped",
    stderr: "null",
  }).output();
  if (!success) throw new Error("autocannon failed");
  const r = JSON.parse(new TextDecoder().decode(stdout));
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99 };
}

/** The cost of recording one latency in the histogram. */
function histogramCost(): number {
  const h = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
  });
  const n = 2_000_000;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) h.recordValue(200 + (i % 4000));
  return ((performance.now() - t0) * 1e6) / n;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seconds: { type: "string", default: "10" },
      rounds: { type: "string", default: "2" },
      json: { type: "string" },
    },
  });
  const report = benchReport("http");
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const nginx = await startNginx();
  const runs: Record<string, Figure[]> = { streamplay: [], wrk: [], autocannon: [] };
  try {
    console.log(
      `target: nginx 1 KB file at ${nginx.url}; 32 connections, ${seconds} s per run, ${rounds} rounds`,
    );
    for (let r = 0; r < rounds; r++) {
      runs.streamplay!.push(await streamplay(nginx.url, seconds));
      runs.wrk!.push(await wrk(nginx.url, seconds));
      runs.autocannon!.push(await autocannon(nginx.url, seconds));
      console.log(
        `  round ${r + 1}: ` +
          Object.entries(runs).map(([k, v]) => `${k} ${v[r]!.rps.toFixed(0)} req/s`).join(", "),
      );
    }
  } finally {
    await nginx.stop();
  }
  const median = (xs: Figure[]): Figure => {
    const by = (k: keyof Figure) => percentile(xs.map((x) => x[k]).sort((a, b) => a - b), 50);
    return { rps: by("rps"), p50: by("p50"), p99: by("p99") };
  };
  const ours = median(runs.streamplay!);
  const w = median(runs.wrk!);
  const ac = median(runs.autocannon!);
  const peers = [["wrk (C, 2 threads)", w], ["autocannon (Node)", ac]] as const;
  for (const [name, peer] of peers) {
    const target = name.startsWith("autocannon");
    report.add({
      metric: `HTTP load, 32 connections, nginx 1 KB file, ${seconds} s: req/s (median of rounds)`,
      ours: round(ours.rps, 0),
      peer: round(peer.rps, 0),
      peer_name: name,
      unit: "req/s",
      target: target ? "≥ 1.0× autocannon" : null,
      met: target ? ours.rps >= peer.rps : null,
    });
    report.add({
      metric: `ratio to ${name.split(" ")[0]}`,
      ours: round(ours.rps / peer.rps),
      unit: "×",
    });
  }
  for (const p of ["p50", "p99"] as const) {
    for (const [name, peer] of peers) {
      report.add({
        metric: `latency ${p}`,
        ours: round(ours[p], 3),
        peer: round(peer[p], 3),
        peer_name: name,
        unit: "ms",
      });
    }
  }
  const rps = (f: Figure) => `${f.rps.toLocaleString("en-US", { maximumFractionDigits: 0 })} req/s`;
  for (const [r, figure] of runs.streamplay!.entries()) {
    report.add({
      metric: `round ${r + 1} of ${rounds}`,
      ours: round(figure.rps, 0),
      peer: `wrk ${rps(runs.wrk![r]!)}, autocannon ${rps(runs.autocannon![r]!)}`,
      unit: "req/s",
    });
  }
  report.add({
    metric: "histogram cost per recorded latency",
    ours: round(histogramCost(), 0),
    unit: "ns",
  });
  report.print();
  await report.write();
  Deno.exit(0);
}
