/**
 * `deno task soak`: the leak gate. Live sessions start and end in a loop against a real server
 * process, and its RSS, Chromium processes, open descriptors and temporary entries are printed.
 * Target: flat after warm-up, and nothing left once the server has stopped.
 */
import { listProcesses, processTree, readProcFiles, readStats } from "../lib/core/procfs.ts";
import {
  fixed,
  loadAverage,
  openDescriptors,
  printTable,
  ROOT,
  sleep,
  undoOnInterrupt,
} from "./common.ts";

/**
 * Sessions in all (SOAK_SESSIONS, default 500); each has a viewer that waits for its first frames.
 */
const SESSIONS = Number(Deno.env.get("SOAK_SESSIONS") ?? 500);
/** Sessions alive at once (SOAK_PARALLEL, default 2). */
const PARALLEL = Number(Deno.env.get("SOAK_PARALLEL") ?? 2);
/** Sessions between two printed lines (SOAK_EVERY, default 25). */
const EVERY = Number(Deno.env.get("SOAK_EVERY") ?? 25);
/** Sessions before the baseline the end is compared with (SOAK_WARMUP, default 50). */
const WARMUP = Math.min(Number(Deno.env.get("SOAK_WARMUP") ?? 50), SESSIONS);

const PAGE = `<!doctype html><html><head><title>soak</title></head><body>
<h1 id="t">0</h1><script>let n = 0; setInterval(() => { t.textContent = ++n; }, 50);</script>
</body></html>`;

/** The server's own data directory and temporary directory (its TMPDIR, and its browsers'). */
const soakDir = await Deno.makeTempDir({ prefix: "streamplay-soak-" });
const dataDir = `${soakDir}/data`;
const tmpDir = `${soakDir}/tmp`;
await Deno.mkdir(tmpDir, { recursive: true });

/**
 * Every entry under the server's temporary directory (walked), apart from those under the HOME
 * the session browsers share (`.cache`, `.config`: made once, reused by every browser), which are
 * counted on their own.
 */
async function tempEntries(): Promise<{ own: string[]; shared: number }> {
  const own: string[] = [];
  let shared = 0;
  const walk = async (dir: string, rel: string) => {
    try {
      for await (const e of Deno.readDir(dir)) {
        const path = rel ? `${rel}/${e.name}` : e.name;
        if (/^\.(cache|config)(\/|$)/.test(path)) shared++;
        else own.push(path);
        if (e.isDirectory) await walk(`${dir}/${e.name}`, path);
      }
    } catch { /* removed meanwhile */ }
  };
  await walk(tmpDir, "");
  return { own, shared };
}

const pages = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  () => new Response(PAGE, { headers: { "content-type": "text/html" } }),
);
const pageUrl = `http://127.0.0.1:${pages.addr.port}/`;

// The deno on PATH (the soak permission set allows running it by name).
const server = new Deno.Command("deno", {
  args: ["run", "-P=server", "main.ts"],
  cwd: ROOT,
  env: {
    HOST: "127.0.0.1",
    PORT: "0",
    STREAMPLAY_DATA_DIR: dataDir,
    STREAMPLAY_MAX_SESSIONS: String(PARALLEL),
    STREAMPLAY_LOG_LEVEL: "warn",
    TMPDIR: tmpDir,
    NO_COLOR: "1",
  },
  stdout: "piped",
  stderr: "inherit",
}).spawn();
undoOnInterrupt(() => {
  server.kill("SIGKILL");
  Deno.removeSync(soakDir, { recursive: true });
});
/** The server's address, from the UI line it prints once ready (it picked a free port). */
const base = await (async () => {
  const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!/UI:\s+\S+/.test(out)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the server did not start:\n${out}`);
    out += value;
  }
  reader.releaseLock();
  server.stdout.cancel().catch(() => {});
  return /UI:\s+(http:\/\/[^/\s]+)/.exec(out)![1]!;
})();

// ---- what the server holds ----

interface Reading {
  sessions: number;
  rssMb: number;
  chromium: number;
  fds: number;
  temp: number;
}

async function read(sessions: number): Promise<Reading> {
  const [stat] = await readStats([server.pid]);
  const chromium = processTree([server.pid], await listProcesses())
    .filter((p) => p.name.startsWith("chrom")).length;
  return {
    sessions,
    rssMb: (stat?.rssBytes ?? NaN) / 1024 / 1024,
    chromium,
    fds: await openDescriptors(server.pid),
    temp: (await tempEntries()).own.length,
  };
}

// ---- the loop ----

let started = 0;
let done = 0;
let failed = 0;
const readings: Reading[] = [await read(0)];
const row = (r: Reading) => [
  String(r.sessions),
  fixed(r.rssMb, 0),
  String(r.chromium),
  String(r.fds),
  String(r.temp),
];
console.log(
  `soak — ${SESSIONS} sessions, ${PARALLEL} at a time, a line every ${EVERY}; ` +
    `load average ${loadAverage()}`,
);
console.log("sessions  RSS MB  chromium  fds  temp entries");
const print = (r: Reading) =>
  console.log(row(r).map((c, i) => c.padEnd([8, 6, 8, 3, 12][i]!)).join("  "));
print(readings[0]!);

async function oneSession(): Promise<void> {
  const res = await fetch(`${base}/api/sessions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ url: pageUrl }),
  });
  const body = await res.json();
  if (res.status === 429) {
    await sleep(200);
    return oneSession();
  }
  if (res.status !== 201) throw new Error(`POST /api/sessions: ${res.status} ${body.error}`);
  const viewer = new WebSocket(body.ws_url);
  viewer.binaryType = "arraybuffer";
  let frames = 0;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no frame within 30 s")), 30_000);
    viewer.onmessage = (e) => {
      if (typeof e.data !== "string" && ++frames === 3) {
        clearTimeout(timer);
        resolve();
      }
    };
    viewer.onerror = () => {
      clearTimeout(timer);
      reject(new Error("viewer connection failed"));
    };
  });
  const closed = new Promise((r) => viewer.onclose = r);
  await (await fetch(`${base}/api/sessions/${body.id}`, { method: "DELETE" })).body?.cancel();
  await closed;
  for (let i = 0; i < 300; i++) {
    const job = await (await fetch(`${base}/api/jobs/${body.id}`)).json();
    if (["succeeded", "failed", "cancelled"].includes(job.status)) return;
    await sleep(100);
  }
  throw new Error(`session ${body.id} did not end`);
}

const t0 = performance.now();
await Promise.all(Array.from({ length: PARALLEL }, async () => {
  while (started < SESSIONS) {
    started++;
    try {
      await oneSession();
    } catch (err) {
      failed++;
      console.error(`  a session failed: ${(err as Error).message}`);
    }
    done++;
    if (done % EVERY === 0) {
      const r = await read(done);
      readings.push(r);
      print(r);
    }
  }
}));
const minutes = (performance.now() - t0) / 60_000;

// ---- after stop: what is left (processes using its directories, temporary entries) ----

server.kill("SIGTERM");
const status = await server.status;
await sleep(500);
const everyone = await listProcesses();
const cmdlines = await readProcFiles(everyone.map((p) => `/proc/${p.pid}/cmdline`));
const leftProcesses = everyone.filter((p) =>
  cmdlines.get(`/proc/${p.pid}/cmdline`)?.includes(soakDir)
);
const { own: tempLeft, shared: sharedLeft } = await tempEntries();
await Deno.remove(soakDir, { recursive: true });
await pages.shutdown();

const warm = readings.find((r) => r.sessions >= WARMUP) ?? readings[0]!;
const last = readings.at(-1)!;
printTable([
  ["", `after warm-up (${warm.sessions})`, `end (${last.sessions})`, "change"],
  [
    "server RSS (MB)",
    fixed(warm.rssMb, 0),
    fixed(last.rssMb, 0),
    fixed(last.rssMb - warm.rssMb, 0),
  ],
  [
    "Chromium processes",
    String(warm.chromium),
    String(last.chromium),
    String(last.chromium - warm.chromium),
  ],
  ["open descriptors", String(warm.fds), String(last.fds), String(last.fds - warm.fds)],
  ["temp entries", String(warm.temp), String(last.temp), String(last.temp - warm.temp)],
]);
console.log(
  `\n${done} sessions in ${fixed(minutes, 1)} min (${failed} failed); server exit code ` +
    `${status.code}; after stop: ${leftProcesses.length} processes of the server left, ` +
    `${tempLeft.length} temp entries left${
      tempLeft.length ? ` (${tempLeft.slice(0, 10).join(", ")})` : ""
    } (and ${sharedLeft} in the browsers' shared HOME: .cache, .config)`,
);
console.log(`load average ${loadAverage()}`);
if (leftProcesses.length || tempLeft.length || failed) Deno.exitCode = 1;
