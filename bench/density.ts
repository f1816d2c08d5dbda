/**
 * `deno task bench:density` — memory (PSS of the browser process tree) and CPU per idle and per
 * active session, context-per-user vs browser-per-user, on a simple and a 2,000-node animated page,
 * with Playwright's default launch (the peer) and streamplay's tuned one (`lib/load/browser.ts`).
 */
import { parseArgs } from "node:util";
import type { Browser, BrowserContext, Page } from "playwright";
import { loadPlaywright } from "../lib/core/playwright.ts";
import { CONTEXT_OPTIONS, launchOptions } from "../lib/load/browser.ts";
import { fitLinear } from "../lib/capacity/projection.ts";
import { loadConfig } from "../lib/core/config.ts";
import {
  CLOCK_TICKS_PER_S,
  listProcesses,
  parseSmapsPss,
  processTree,
  readProcFiles,
} from "../lib/core/procfs.ts";
import { benchReport, loadAverage, printTable, round, sleep } from "./common.ts";
import { servePages } from "./pages.ts";

const TARGET_COMPLEX_MB = 80;
const TARGET_SIMPLE_MB = 50;
const TARGET_SESSIONS = 20;
/** Default Playwright on the complex page, as the issue measured it. */
const ISSUE_PEER = { context: 101, browser: 224 };

/**
 *   deno task bench:density [--levels 1,5,10,20] [--pages simple,complex]
 *                           [--models context,browser] [--settings playwright,streamplay]
 *
 * "Per added session" is the slope of a least-squares line through the levels. Idle: pages open and
 * left alone (their own animations run). Active: every session scrolls down and up in a loop.
 */
const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    levels: { type: "string", default: "1,5,10,20" },
    pages: { type: "string", default: "simple,complex" },
    models: { type: "string", default: "context,browser" },
    settings: { type: "string", default: "playwright,streamplay" },
    json: { type: "string" },
  },
});
const report = benchReport("density");
const list = (s: string) => s.split(",").map((x) => x.trim()).filter(Boolean);
const levels = list(args.levels).map(Number);
const MB = 1024 * 1024;
/** PSS of every process under this one (the browsers and their children), and their CPU ticks. */
async function measureTree(): Promise<{ pss: number; ticks: number; at: number }> {
  const tree = processTree([Deno.pid], await listProcesses()).filter((p) => p.pid !== Deno.pid);
  const at = Date.now();
  const files = await readProcFiles(tree.map((p) => `/proc/${p.pid}/smaps_rollup`));
  let pss = 0;
  for (const p of tree) {
    pss += parseSmapsPss(files.get(`/proc/${p.pid}/smaps_rollup`) ?? "") ?? p.rssBytes;
  }
  return { pss, ticks: tree.reduce((a, p) => a + p.cpuTicks, 0), at };
}

/** Average PSS and cores used over `ms`. */
async function window(ms: number): Promise<{ pssMb: number; cores: number }> {
  const first = await measureTree();
  const readings = [first.pss];
  const end = Date.now() + ms;
  let last = first;
  while (Date.now() < end) {
    await sleep(Math.min(700, Math.max(0, end - Date.now())));
    last = await measureTree();
    readings.push(last.pss);
  }
  const seconds = (last.at - first.at) / 1000;
  return {
    pssMb: readings.reduce((a, b) => a + b, 0) / readings.length / MB,
    cores: seconds > 0 ? Math.max(0, last.ticks - first.ticks) / CLOCK_TICKS_PER_S / seconds : 0,
  };
}

interface Session {
  browser: Browser | null;
  context: BrowserContext;
  page: Page;
}

interface Series {
  page: string;
  model: string;
  settings: string;
  points: Array<
    {
      n: number;
      idle: { pssMb: number; cores: number };
      active: { pssMb: number; cores: number };
      alive: number;
    }
  >;
}

const config = loadConfig();
const playwright = await loadPlaywright();
const site = servePages();
const series: Series[] = [];
console.log(
  `density: ${levels.join(", ")} sessions; ${navigator.hardwareConcurrency} cores; ` +
    `load average ${loadAverage()} at start`,
);

try {
  for (const pageName of list(args.pages)) {
    for (const model of list(args.models)) {
      for (const settings of list(args.settings)) {
        const options = launchOptions({
          executablePath: config.chromiumPath,
          tuned: settings === "streamplay",
        });
        const context = settings === "streamplay" ? CONTEXT_OPTIONS : {};
        const shared = model === "context" ? await playwright.chromium.launch(options) : null;
        const sessions: Session[] = [];
        const s: Series = { page: pageName, model, settings, points: [] };
        try {
          for (const n of levels) {
            while (sessions.length < n) {
              const browser = shared ?? await playwright.chromium.launch(options);
              const ctx = await browser.newContext(context);
              const page = await ctx.newPage();
              await page.goto(`${site.url}/${pageName}`, { waitUntil: "load", timeout: 60_000 });
              sessions.push({ browser: shared ? null : browser, context: ctx, page });
            }
            await sleep(2000);
            const idle = await window(3000);
            let active = true;
            const loops = sessions.map(async ({ page }) => {
              while (active) {
                await page.mouse.wheel(0, 400).catch(() => {});
                await sleep(300);
                await page.mouse.wheel(0, -400).catch(() => {});
                await sleep(300);
              }
            });
            await sleep(1000);
            const busy = await window(3000);
            active = false;
            await Promise.all(loops);
            const alive = (await Promise.all(
              sessions.map(({ page }) =>
                Promise.race([
                  page.evaluate("document.readyState").then(() => 1, () => 0),
                  sleep(10_000).then(() => 0),
                ])
              ),
            )).reduce((a: number, b) => a + b, 0);
            s.points.push({ n, idle, active: busy, alive });
            console.log(
              `  ${pageName}/${model}/${settings} ${n} sessions: idle ${
                idle.pssMb.toFixed(0)
              } MB ` +
                `${idle.cores.toFixed(2)} cores, active ${busy.pssMb.toFixed(0)} MB ` +
                `${busy.cores.toFixed(2)} cores, ${alive}/${n} alive`,
            );
          }
        } finally {
          for (const x of sessions) {
            await x.context.close().catch(() => {});
            await x.browser?.close().catch(() => {});
          }
          await shared?.close().catch(() => {});
        }
        series.push(s);
      }
    }
  }
} finally {
  await site.close();
}

const slope = (pts: Array<{ n: number; y: number }>) => fitLinear(pts)?.b ?? NaN;
const perAdded = (s: Series) => ({
  idleMb: slope(s.points.map((p) => ({ n: p.n, y: p.idle.pssMb }))),
  activeMb: slope(s.points.map((p) => ({ n: p.n, y: p.active.pssMb }))),
  idleCores: slope(s.points.map((p) => ({ n: p.n, y: p.idle.cores }))),
  activeCores: slope(s.points.map((p) => ({ n: p.n, y: p.active.cores }))),
});
const top = levels[levels.length - 1]!;
printTable([
  [
    "page",
    "model",
    "launch",
    `PSS @${levels[0]}`,
    `PSS @${top}`,
    "MB/added idle",
    "MB/added active",
    "cores/added idle",
    "cores/added active",
    `alive @${top}`,
  ],
  ...series.map((s) => {
    const a = perAdded(s);
    const first = s.points[0]!;
    const last = s.points[s.points.length - 1]!;
    return [
      s.page,
      s.model,
      s.settings,
      `${first.idle.pssMb.toFixed(0)} MB`,
      `${last.idle.pssMb.toFixed(0)} MB`,
      a.idleMb.toFixed(1),
      a.activeMb.toFixed(1),
      a.idleCores.toFixed(3),
      a.activeCores.toFixed(3),
      `${last.alive}/${last.n}`,
    ];
  }),
]);

const find = (page: string, model: string, settings: string) =>
  series.find((s) => s.page === page && s.model === model && s.settings === settings);
const verdict = (ok: boolean) => (ok ? "met" : "NOT met");
console.log("");
for (const model of ["context", "browser"] as const) {
  const peer = find("complex", model, "playwright");
  const ours = find("complex", model, "streamplay");
  if (peer && ours) {
    console.log(
      `complex page, a ${model} per user, MB per added session (idle): streamplay ` +
        `${perAdded(ours).idleMb.toFixed(1)} vs default Playwright ${
          perAdded(peer).idleMb.toFixed(1)
        } (issue's peer figure: ≈${ISSUE_PEER[model]} MB)`,
    );
  }
}
const complex = find("complex", "context", "streamplay");
const simple = find("simple", "context", "streamplay");
if (complex) {
  const mb = Math.max(perAdded(complex).idleMb, perAdded(complex).activeMb);
  console.log(
    `target ≤ ${TARGET_COMPLEX_MB} MB per added session on the complex page: ` +
      `${mb.toFixed(1)} MB — ${verdict(mb <= TARGET_COMPLEX_MB)}`,
  );
  const last = complex.points[complex.points.length - 1]!;
  console.log(
    `target ≥ ${TARGET_SESSIONS} concurrent sessions: ${last.alive} of ${last.n} alive on the ` +
      `complex page — ${verdict(last.alive >= TARGET_SESSIONS)}`,
  );
}
if (simple) {
  const mb = Math.max(perAdded(simple).idleMb, perAdded(simple).activeMb);
  console.log(
    `target ≤ ${TARGET_SIMPLE_MB} MB per added session on the simple page: ` +
      `${mb.toFixed(1)} MB — ${verdict(mb <= TARGET_SIMPLE_MB)}`,
  );
}
const saturated = series.filter((s) =>
  s.points.some((p) => p.active.cores >= navigator.hardwareConcurrency * 0.85)
);
if (saturated.length) {
  console.log(
    `the browsers used nearly all ${navigator.hardwareConcurrency} cores in ` +
      saturated.map((s) => `${s.page}/${s.model}/${s.settings}`).join(", ") +
      ": CPU per added session there is capped by the machine, not measured",
  );
}
console.log(
  `load average ${loadAverage()} at the end ` +
    "(other work on the machine adds noise to CPU figures, and a little to PSS through the " +
    "library pages Chromium processes share)",
);

const TARGETS: Record<string, number> = { complex: TARGET_COMPLEX_MB, simple: TARGET_SIMPLE_MB };
for (const ours of series.filter((s) => s.settings === "streamplay")) {
  const peer = find(ours.page, ours.model, "playwright");
  const page = ours.page === "complex" ? "2,000-node animated page" : "simple page";
  const limit = ours.model === "context" ? TARGETS[ours.page] : undefined;
  for (const phase of ["idle", "active"] as const) {
    const mb = perAdded(ours)[`${phase}Mb`];
    report.add({
      metric: `PSS per added session, a ${ours.model} per user, ${page}, ${phase}`,
      ours: round(mb, 1),
      peer: peer ? round(perAdded(peer)[`${phase}Mb`], 1) : null,
      peer_name: peer ? "default Playwright launch" : null,
      unit: "MB",
      target: limit === undefined ? null : `≤ ${limit} MB`,
      met: limit === undefined ? null : mb <= limit,
    });
  }
  const last = ours.points[ours.points.length - 1]!;
  const sessionsTarget = ours.page === "complex" && ours.model === "context";
  report.add({
    metric: `sessions alive at ${last.n}, a ${ours.model} per user, ${page}`,
    ours: `${last.alive} of ${last.n}`,
    target: sessionsTarget ? `≥ ${TARGET_SESSIONS}` : null,
    met: sessionsTarget ? last.alive >= TARGET_SESSIONS : null,
  });
}
await report.write();
