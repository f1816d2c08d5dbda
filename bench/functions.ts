/**
 * `deno task bench:functions` — invoke → result through the REST API for a warm browserless
 * function against a bare Worker's round trip, and for a function that opens a local page against
 * plain Playwright's `newContext()` + `goto`, in the same run.
 */
import { parseArgs } from "node:util";
import { loadConfig } from "../lib/core/config.ts";
import { createLogger } from "../lib/core/log.ts";
import { startPlatform } from "../lib/platform.ts";
import { CHROMIUM_ARGS, loadPlaywright } from "../lib/core/playwright.ts";
import { parts } from "../main.ts";
import { startBenchRedis } from "./queue.ts";
import {
  benchReport,
  benchTempDir,
  CHROMIUM,
  loadAverage,
  percentile,
  round,
  undoOnInterrupt,
} from "./common.ts";

/**
 *   deno task bench:functions [--runs 300] [--browser-runs 30] [--json <path>]
 *
 * Invocations go through `POST /api/functions/:name/invoke?wait=30`.
 */
const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "300" },
    "browser-runs": { type: "string", default: "30" },
    json: { type: "string" },
  },
});
const runs = Number(values.runs);
const browserRuns = Number(values["browser-runs"]);

const p50 = (ms: number[]) => percentile(ms.toSorted((a, b) => a - b), 50);

/** Each of `n` calls timed; with `gapMs`, each starts that long after the last one ended. */
async function timed(n: number, once: () => Promise<void>, gapMs = 0): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
    const started = performance.now();
    await once();
    out.push(performance.now() - started);
  }
  return out;
}

/**
 * Page functions arrive this far apart: a function Worker makes the context and page for the next
 * function once one ends, which takes Chromium about 150 ms (see `makeSpare`).
 */
const BROWSER_GAP_MS = 500;

/** A bare Deno Worker (no permissions) answering each message: the floor of a sandboxed call. */
async function workerRoundTrip(n: number): Promise<number[]> {
  const worker = new Worker(
    `data:text/javascript,${encodeURIComponent("onmessage = (e) => postMessage(e.data);")}`,
    { type: "module", deno: { permissions: "none" } },
  );
  const ask = (data: unknown) =>
    new Promise<void>((resolve) => {
      worker.onmessage = () => resolve();
      worker.postMessage(data);
    });
  await timed(100, () => ask({ params: { n: 1 } }));
  const times = await timed(n, () => ask({ params: { n: 1 } }));
  worker.terminate();
  return times;
}

/** Each phase of plain Playwright's page opening, in ms per run. */
interface Phases {
  total: number[];
  newContext: number[];
  newPage: number[];
  goto: number[];
}

/**
 * Plain Playwright on a launched Chromium: a new context, a page, goto, title, close; timed in
 * all and by phase (what a function's page costs before any of the platform's own work), each
 * run `BROWSER_GAP_MS` after the last as the functions are.
 */
async function playwrightOpen(url: string, n: number): Promise<Phases> {
  const { chromium } = await loadPlaywright();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const phases: Phases = { total: [], newContext: [], newPage: [], goto: [] };
  const once = async (record: boolean) => {
    const t0 = performance.now();
    const context = await browser.newContext();
    const t1 = performance.now();
    const page = await context.newPage();
    const t2 = performance.now();
    await page.goto(url);
    const t3 = performance.now();
    await page.title();
    await context.close();
    if (!record) return;
    phases.total.push(performance.now() - t0);
    phases.newContext.push(t1 - t0);
    phases.newPage.push(t2 - t1);
    phases.goto.push(t3 - t2);
  };
  try {
    for (let i = 0; i < 5; i++) await once(false);
    for (let i = 0; i < n; i++) {
      await new Promise((resolve) => setTimeout(resolve, BROWSER_GAP_MS));
      await once(true);
    }
    return phases;
  } finally {
    await browser.close();
  }
}

function startPage() {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    () =>
      new Response("<!doctype html><title>bench page</title><p>hello", {
        headers: { "content-type": "text/html" },
      }),
  );
  return { url: `http://127.0.0.1:${server.addr.port}/`, close: () => ac.abort() };
}

const redis = await startBenchRedis();
undoOnInterrupt(() => redis.close());
const dataDir = await benchTempDir("bench-functions-");
const platform = await startPlatform(
  loadConfig({
    REDIS_URL: redis.url,
    PORT: "0",
    STREAMPLAY_DATA_DIR: dataDir,
    STREAMPLAY_REDIS_PREFIX: `bench-${crypto.randomUUID().slice(0, 6)}`,
    STREAMPLAY_LOG_LEVEL: "warn",
    STREAMPLAY_MONITOR: "false",
  }),
  { role: "all", parts, log: createLogger({ level: "warn" }), version: "bench" },
);
const page = startPage();
const report = benchReport("functions");
const loadBefore = loadAverage();
try {
  const base = platform.publicUrl;
  const call = async (path: string, method: string, body: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const json = await res.json();
    if (!res.ok || (json.status && json.status !== "succeeded")) {
      throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json).slice(0, 300)}`);
    }
    return json;
  };
  await call("/api/functions/echo", "PUT", {
    code: "export default ({ params }) => params",
    browser: false,
  });
  await call("/api/functions/open", "PUT", {
    code: "export default async ({ page, params }) => { await page.goto(params.url); " +
      "return await page.title(); }",
  });
  const invoke = (name: string, params: unknown) => () =>
    call(`/api/functions/${name}/invoke?wait=30`, "POST", { params }).then(() => {});

  await timed(50, invoke("echo", { n: 1 }));
  const warm = await timed(runs, invoke("echo", { n: 1 }));
  const bare = await workerRoundTrip(runs);
  report.add({
    metric: "invoke → result, warm browserless function (p50)",
    ours: round(p50(warm)),
    peer: round(p50(bare), 3),
    peer_name: "bare Deno Worker round trip",
    unit: "ms",
    target: "≤ 5 ms",
    met: p50(warm) <= 5,
  });

  const open = invoke("open", { url: page.url });
  await timed(5, open, BROWSER_GAP_MS);
  const opened = await timed(browserRuns, open, BROWSER_GAP_MS);
  const backToBack = await timed(browserRuns, open);
  const plain = await playwrightOpen(page.url, browserRuns);
  report.add({
    metric: `invoke → result, function opening a local page, calls ${BROWSER_GAP_MS} ms ` +
      "apart (p50)",
    ours: round(p50(opened)),
    peer: round(p50(plain.total), 3),
    peer_name: "Playwright newContext()+goto",
    unit: "ms",
    target: "≤ 150 ms",
    met: p50(opened) <= 150,
  });
  report.add({
    metric: "the same, back to back: each call waits for the context made after the last (p50)",
    ours: round(p50(backToBack)),
    peer: round(p50(plain.total), 3),
    peer_name: "Playwright newContext()+goto",
    unit: "ms",
    target: null,
    met: null,
  });
  report.add({
    metric: "for reference, plain Playwright by phase: newContext() / newPage() / goto (p50)",
    ours: `${round(p50(plain.newContext), 1)} / ${round(p50(plain.newPage), 1)} / ` +
      `${round(p50(plain.goto), 1)}`,
    peer: null,
    peer_name: "",
    unit: "ms",
    target: null,
    met: null,
  });
} finally {
  page.close();
  await platform.close();
  await redis.close();
  await Deno.remove(dataDir, { recursive: true }).catch(() => {});
}

report.print();
console.log(`\nload average before: ${loadBefore}; runs: ${runs}, browser runs: ${browserRuns}`);
await report.write();
