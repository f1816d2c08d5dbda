/**
 * `deno task bench:metrics` — what monitoring costs: CPU at rest with monitoring off, on, and on
 * with 100 dashboards and scrapes; and no-op job throughput with and without it.
 */
import { parseArgs } from "node:util";
import { loadConfig } from "../lib/core/config.ts";
import { createLogger } from "../lib/core/log.ts";
import { type Platform, startPlatform } from "../lib/platform.ts";
import { freePort } from "../lib/core/redis.ts";
import { CLOCK_TICKS_PER_S, readStats } from "../lib/core/procfs.ts";
import { measureThroughput, startBenchRedis } from "./queue.ts";
import {
  benchReport,
  benchTempDir,
  percentile,
  ROOT,
  round,
  sleep,
  undoOnInterrupt,
} from "./common.ts";
import { parts } from "../main.ts";

/** CPU seconds (user + system) used so far by the processes of `pids`, together. */
async function cpuSeconds(pids: number[]): Promise<number> {
  const stats = await readStats(pids);
  return stats.reduce((sum, s) => sum + s.cpuTicks, 0) / CLOCK_TICKS_PER_S;
}

async function childPids(pid: number): Promise<number[]> {
  const { stdout } = await new Deno.Command("pgrep", { args: ["-P", String(pid)], stdout: "piped" })
    .output();
  return new TextDecoder().decode(stdout).split("\n").filter(Boolean).map(Number);
}

/** The dashboard clients, in their own process; they stop and report when stdin closes. */
interface ClientStats {
  connected: number;
  messages: number;
  bytes: number;
  types: Record<string, number>;
}

/**
 * The dashboard clients run in a separate process (this file with `clients <url> <n>`), as they
 * would on other machines, so their own cost is not counted as the server's.
 */
async function runClients(url: string, n: number): Promise<void> {
  const stats: ClientStats = { connected: 0, messages: 0, bytes: 0, types: {} };
  const sockets: WebSocket[] = [];
  await Promise.all(Array.from({ length: n }, () =>
    new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(url);
      sockets.push(ws);
      ws.onopen = () => {
        stats.connected++;
        resolve();
      };
      ws.onerror = () => reject(new Error(`dashboard client could not connect to ${url}`));
      ws.onmessage = (e) => {
        const text = e.data as string;
        stats.messages++;
        stats.bytes += text.length;
        // Every message starts with {"type":"<type>"; no need to parse it.
        const type = text.slice(9, text.indexOf('"', 9));
        stats.types[type] = (stats.types[type] ?? 0) + 1;
      };
    })));
  console.log("connected");
  for await (const _ of Deno.stdin.readable) { /* until the parent closes stdin */ }
  for (const ws of sockets) ws.close();
  console.log(JSON.stringify(stats));
}

interface Clients {
  stop(): Promise<ClientStats>;
}

/**
 * Starts `n` dashboard clients in a child process at the lowest CPU priority: on a real
 * deployment they are other machines, so here they should take as little from the server as
 * the scheduler allows.
 */
async function startClients(baseUrl: string, n: number): Promise<Clients> {
  const wsUrl = baseUrl.replace("http", "ws") + "/ws/dashboard";
  const child = new Deno.Command("nice", {
    args: [
      "-n",
      "19",
      Deno.execPath(),
      "run",
      "-P=bench",
      "bench/metrics.ts",
      "clients",
      wsUrl,
      String(n),
    ],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  const nextLine = async () => {
    while (!buffered.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error("the dashboard clients exited early");
      buffered += value;
    }
    const i = buffered.indexOf("\n");
    const line = buffered.slice(0, i);
    buffered = buffered.slice(i + 1);
    return line;
  };
  if ((await nextLine()) !== "connected") throw new Error("dashboard clients did not connect");
  return {
    async stop() {
      await child.stdin.close();
      const stats = JSON.parse(await nextLine()) as ClientStats;
      await child.status;
      return stats;
    },
  };
}

/** Scrapes /metrics every `everyMs`, like Prometheus. */
function startScraper(baseUrl: string, everyMs: number): { stop(): Promise<number> } {
  let scrapes = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const res = await fetch(`${baseUrl}/metrics`);
      await res.text();
      if (res.ok) scrapes++;
      for (let waited = 0; waited < everyMs && !stopped; waited += 100) await sleep(100);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return scrapes;
    },
  };
}

/** `deno task start` in a child process; resolves when it printed "ready". */
async function startServerProcess(env: Record<string, string>) {
  const dataDir = await benchTempDir("bench-metrics-");
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-P=server", "main.ts"],
    cwd: ROOT,
    env: {
      PORT: String(port),
      STREAMPLAY_DATA_DIR: dataDir,
      STREAMPLAY_CONCURRENCY: "4",
      STREAMPLAY_LOG_LEVEL: "warn",
      NO_COLOR: "1",
      ...env,
    },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  undoOnInterrupt(() => child.kill("SIGKILL"));
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes(" ready\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`server did not start: ${out}`);
    out += value;
  }
  reader.read().then(function drain(r): unknown {
    return r.done ? undefined : reader.read().then(drain);
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    },
  };
}

interface RestResult {
  server: number;
  redis: number;
  clients?: ClientStats;
  scrapes?: number;
}

/**
 * Server and Redis CPU (% of one core) at rest over `seconds`.
 *
 * Three ways over `--rest-s` seconds: monitoring off (STREAMPLAY_MONITOR=false), monitoring on, and
 * monitoring on with 100 dashboard clients connected and /metrics scraped every 5 s. Target: the
 * third minus the first ≤ 2 % of one core.
 */
async function measureRest(
  monitor: boolean,
  clients: number,
  seconds: number,
): Promise<RestResult> {
  const server = await startServerProcess({ STREAMPLAY_MONITOR: String(monitor) });
  try {
    const c = clients > 0 ? await startClients(server.url, clients) : undefined;
    const scraper = clients > 0 ? startScraper(server.url, 5_000) : undefined;
    await sleep(5_000);
    const redisPids = await childPids(server.pid);
    const s0 = await cpuSeconds([server.pid]);
    const r0 = await cpuSeconds(redisPids);
    await sleep(seconds * 1000);
    const s1 = await cpuSeconds([server.pid]);
    const r1 = await cpuSeconds(redisPids);
    const scrapes = await scraper?.stop();
    const stats = await c?.stop();
    return {
      server: (100 * (s1 - s0)) / seconds,
      redis: (100 * (r1 - r0)) / seconds,
      ...(stats ? { clients: stats } : {}),
      ...(scrapes !== undefined ? { scrapes } : {}),
    };
  } finally {
    await server.stop();
  }
}

/** The platform in this process with its API on a free port (as `deno task start`). */
async function startApiPlatform(redisUrl: string, monitor: boolean) {
  const dataDir = await benchTempDir("bench-data-");
  const config = loadConfig({
    REDIS_URL: redisUrl,
    PORT: "0",
    STREAMPLAY_DATA_DIR: dataDir,
    STREAMPLAY_REDIS_PREFIX: `bench-${crypto.randomUUID().slice(0, 6)}`,
    STREAMPLAY_CONCURRENCY: "50",
    STREAMPLAY_LOG_LEVEL: "warn",
    STREAMPLAY_MONITOR: String(monitor),
  });
  const platform: Platform = await startPlatform(config, {
    role: "all",
    parts,
    log: createLogger({ level: "warn" }),
    version: "bench",
  });
  return {
    platform,
    url: `http://127.0.0.1:${platform.address!.port}`,
    async close() {
      await platform.close();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    },
  };
}

/**
 * The driver of `bench/queue.ts`, without monitoring and with monitoring + 100 dashboard clients +
 * scrapes, alternating rounds in the same run. Target: no effect beyond the noise (the spread of
 * the rounds without monitoring).
 */
async function throughputRound(redisUrl: string, jobs: number, monitored: boolean) {
  const p = await startApiPlatform(redisUrl, monitored);
  try {
    await measureThroughput(p.platform, 2000); // warm-up
    const clients = monitored ? await startClients(p.url, 100) : undefined;
    const scraper = monitored ? startScraper(p.url, 5_000) : undefined;
    const result = await measureThroughput(p.platform, jobs);
    await scraper?.stop();
    const stats = await clients?.stop();
    return { jobs_per_s: result.jobs_per_s, clients: stats };
  } finally {
    await p.close();
  }
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      jobs: { type: "string", default: "20000" },
      rounds: { type: "string", default: "3" },
      "rest-s": { type: "string", default: "20" },
      json: { type: "string" },
    },
  });
  if (positionals[0] === "clients") {
    await runClients(positionals[1]!, Number(positionals[2] ?? 100));
    Deno.exit(0);
  }
  const report = benchReport("metrics");
  const restS = Number(values["rest-s"]);
  const jobs = Number(values.jobs);
  const rounds = Number(values.rounds);
  console.log(
    `monitoring cost: ${restS} s at rest per case; ${rounds} rounds of ${jobs} no-op jobs ` +
      `each way; load average at start ${Deno.loadavg()[0]} on ` +
      `${navigator.hardwareConcurrency} cores (a busy machine makes every figure noisier)`,
  );

  const off = await measureRest(false, 0, restS);
  console.log(
    `  at rest, monitoring off: server ${off.server.toFixed(2)} %, redis ${off.redis.toFixed(2)} %`,
  );
  const on = await measureRest(true, 0, restS);
  console.log(
    `  at rest, monitoring on: server ${on.server.toFixed(2)} %, redis ${on.redis.toFixed(2)} %`,
  );
  const full = await measureRest(true, 100, restS);
  console.log(
    `  at rest, monitoring on + 100 dashboards + scrapes: server ${full.server.toFixed(2)} %, ` +
      `redis ${
        full.redis.toFixed(2)
      } % (${full.clients?.messages} messages to ${full.clients?.connected} clients, ${full.scrapes} scrapes)`,
  );

  const redis = await startBenchRedis();
  const without: number[] = [];
  const withMon: number[] = [];
  try {
    // Alternating which goes first, so warm-up and background noise hit both alike.
    for (let r = 0; r < rounds; r++) {
      let w: Awaited<ReturnType<typeof throughputRound>>;
      if (r % 2 === 0) {
        without.push((await throughputRound(redis.url, jobs, false)).jobs_per_s);
        w = await throughputRound(redis.url, jobs, true);
      } else {
        w = await throughputRound(redis.url, jobs, true);
        without.push((await throughputRound(redis.url, jobs, false)).jobs_per_s);
      }
      withMon.push(w.jobs_per_s);
      console.log(
        `  round ${r + 1}: without ${without[r]!.toFixed(0)} jobs/s, with ${
          withMon[r]!.toFixed(0)
        } jobs/s (${w.clients?.types.metrics_update ?? 0} metrics_update, ${
          w.clients?.types.content_change ?? 0
        } content_change received)`,
      );
    }
  } finally {
    await redis.close();
    await Deno.remove(redis.dir, { recursive: true }).catch(() => {});
  }

  const total = (x: RestResult) => x.server + x.redis;
  const cost = total(full) - total(off);
  const median = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);
  const mWithout = median(without);
  const mWith = median(withMon);
  const noise = (Math.max(...without) - Math.min(...without)) / mWithout;
  const allowed = Math.max(0.05, noise);
  const drop = 1 - mWith / mWithout;
  const peerName = "monitoring off";
  report.add({
    metric: "CPU at rest, server + Redis, monitoring on with 100 dashboards and a scrape every 5 s",
    ours: round(total(full)),
    peer: round(total(off)),
    peer_name: peerName,
    unit: "% of one core",
    target: "difference ≤ 2 %",
    met: cost <= 2,
  });
  report.add({ metric: "difference", ours: round(cost), unit: "% of one core" });
  report.add({
    metric: "CPU at rest, server + Redis, monitoring on, no client",
    ours: round(total(on)),
    peer: round(total(off)),
    peer_name: peerName,
    unit: "% of one core",
  });
  report.add({
    metric: `no-op job throughput with monitoring, dashboards and scrapes (median of ${rounds})`,
    ours: round(mWith, 0),
    peer: round(mWithout, 0),
    peer_name: peerName,
    unit: "jobs/s",
    target: `within the noise (${(allowed * 100).toFixed(1)} %)`,
    met: drop <= allowed,
  });
  report.add({ metric: "throughput change", ours: round(-drop * 100, 1), unit: "%" });
  report.print();
  await report.write();
  Deno.exit(0);
}
