/**
 * Real-browser load for the `browser-bench` Worker: virtual users on Chromium through Playwright,
 * each repeating a scenario until its level ends, with screenshots, web vitals, navigation timing,
 * JS heap, requests and bytes, and errors grouped by kind.
 */
import type { Browser, BrowserContext, ConsoleMessage, Page, Request } from "playwright";
import { quantile } from "simple-statistics";
import { CHROMIUM_ARGS, type Playwright } from "../core/playwright.ts";
import { type Step, stepUrl } from "./scenario.ts";
import type { SweepRecord } from "../capacity/report.ts";

/** Features Playwright 1.65 disables; a later --disable-features replaces its list, so we repeat it. */
const PLAYWRIGHT_DISABLED_FEATURES = [
  "AvoidUnnecessaryBeforeUnloadCheckSync",
  "DestroyProfileOnBrowserClose",
  "HttpsUpgrades",
  "HttpsFirstBalancedModeAutoEnable",
  "LensOverlay",
  "MediaRouter",
  "PaintHolding",
  "ThirdPartyStoragePartitioning",
  "AvoidCorsURLLoaderRestartOnRedirect",
  "TcpPortRandomizationWin",
  "OptimizationHints",
  "NetworkTimeServiceQuerying",
  "AimEnabled",
  "PreconnectToSearch",
];
const PLAYWRIGHT_ENABLED_FEATURES = [
  "CDPScreenshotNewSurface",
  "SkipListAccountsWithoutGaiaCookies",
];

/**
 * Chromium features that cost memory per context or per browser and do nothing headless.
 *
 * Launch tuning (measured by `deno task bench:density`): Chromium 156's headless mode opens a WebUI
 * omnibox popup renderer for every window, about 50 MB per browser context; those features, the
 * spare renderer, and the separate GPU and network processes (`launchOptions`) are turned off.
 */
export const DENSITY_DISABLED_FEATURES = [
  "WebUIOmniboxPopup",
  "WebUIOmniboxFullPopup",
  "WebUIOmniboxAimPopup",
  "SpareRendererForSitePerProcess",
];

export interface LaunchSettings {
  executablePath: string;
  /** The proxy every connection goes through (`socks5://…`). Omit to allow everything. */
  proxy?: string;
  /** false: Playwright's default launch (with only --no-sandbox), for comparison. */
  tuned?: boolean;
}

/**
 * Launch options for a load browser.
 *
 * What the browser may reach: only the hosts the URL policy approved for the job, at the addresses
 * it checked. Chromium is a child process Deno cannot restrict, so every connection it makes,
 * loopback included, goes through the job's SOCKS proxy in the pool process (see
 * lib/security/egress.ts), which resolves nothing: it connects approved hosts to their checked
 * addresses and refuses the rest, redirects and IP addresses included. Playwright's request
 * interception (`route`) is not used: it does not see redirect hops (Playwright continues them
 * itself) and it turns off the HTTP cache, which would make every simulated visit heavier than a
 * real one. WebRTC may not send UDP outside the proxy; service workers are blocked
 * (`CONTEXT_OPTIONS`).
 */
export function launchOptions(s: LaunchSettings) {
  const args = s.tuned === false ? ["--no-sandbox"] : [
    ...CHROMIUM_ARGS,
    `--disable-features=${
      [...PLAYWRIGHT_DISABLED_FEATURES, ...DENSITY_DISABLED_FEATURES].join(",")
    }`,
    `--enable-features=${[...PLAYWRIGHT_ENABLED_FEATURES, "NetworkServiceInProcess"].join(",")}`,
    "--in-process-gpu",
    "--enable-precise-memory-info",
  ];
  args.push("--force-webrtc-ip-handling-policy=disable_non_proxied_udp");
  return {
    executablePath: s.executablePath,
    args,
    // "<-loopback>": loopback goes through the proxy too (Chromium bypasses it by default).
    ...(s.proxy ? { proxy: { server: s.proxy, bypass: "<-loopback>" } } : {}),
  };
}

export const CONTEXT_OPTIONS = {
  viewport: { width: 1280, height: 720 },
  serviceWorkers: "block" as const,
};

/** The pid of a launched browser's main process (Chromium reports its own processes). */
export async function browserPid(browser: Browser): Promise<number | null> {
  const cdp = await browser.newBrowserCDPSession();
  try {
    const info = await cdp.send("SystemInfo.getProcessInfo") as {
      processInfo: Array<{ type: string; id: number }>;
    };
    return info.processInfo.find((p) => p.type === "browser")?.id ?? null;
  } finally {
    await cdp.detach().catch(() => {});
  }
}

// ---- measurements ----

export interface Percentiles {
  count: number;
  p50: number;
  p75: number;
  p95: number;
  max: number;
}

/** p50, p75, p95 and max of a list (null when empty). */
export function percentiles(values: number[], digits = 1): Percentiles | null {
  if (values.length === 0) return null;
  const r = (v: number) => Math.round(v * 10 ** digits) / 10 ** digits;
  const [p50, p75, p95] = quantile(values, [0.5, 0.75, 0.95]) as number[];
  return {
    count: values.length,
    p50: r(p50!),
    p75: r(p75!),
    p95: r(p95!),
    max: r(Math.max(...values)),
  };
}

/** What the injected script reports for one document. */
interface Visit {
  id: string;
  url: string;
  lcp: number | null;
  fcp: number | null;
  cls: number | null;
  ttfb: number | null;
  inp: number | null;
  dcl: number | null;
  load: number | null;
  heap: number | null;
  requests: number;
  bytes: number;
}

export interface PageFigures {
  visits: number;
  lcp_ms: Percentiles | null;
  fcp_ms: Percentiles | null;
  cls: Percentiles | null;
  ttfb_ms: Percentiles | null;
  inp_ms: Percentiles | null;
  dom_content_loaded_ms: Percentiles | null;
  load_ms: Percentiles | null;
  js_heap_bytes: Percentiles | null;
  requests: Percentiles | null;
  bytes: Percentiles | null;
}

function figures(visits: Visit[]): PageFigures {
  const pick = (k: keyof Visit) =>
    visits.map((v) => v[k]).filter((x): x is number => typeof x === "number");
  return {
    visits: visits.length,
    lcp_ms: percentiles(pick("lcp")),
    fcp_ms: percentiles(pick("fcp")),
    cls: percentiles(pick("cls"), 4),
    ttfb_ms: percentiles(pick("ttfb")),
    inp_ms: percentiles(pick("inp")),
    dom_content_loaded_ms: percentiles(pick("dcl")),
    load_ms: percentiles(pick("load")),
    js_heap_bytes: percentiles(pick("heap"), 0),
    requests: percentiles(pick("requests"), 0),
    bytes: percentiles(pick("bytes"), 0),
  };
}

const pageKey = (url: string) => {
  try {
    const u = new URL(url);
    return u.origin + u.pathname;
  } catch {
    return url;
  }
};

export const ERROR_KINDS = [
  "console",
  "page",
  "request",
  "http",
  "blocked",
  "timeout",
  "step",
  "crash",
] as const;
export type ErrorKind = typeof ERROR_KINDS[number];

/**
 * One error of a run however often it happened: errors of the same kind whose message and page
 * are the same once normalised (`errorKey`) are one group.
 */
export interface ErrorGroup {
  kind: ErrorKind;
  /** The first occurrence's message. */
  message: string;
  /** The page it happened on (origin and path). */
  url: string;
  count: number;
  first_ts: string;
  last_ts: string;
  /** The levels (users) it happened at. */
  levels: number[];
  /** The first occurrence's screenshot (artifact path, relative to the artifact dir). */
  screenshot: string | null;
}

/** Errors by kind, `total` of them, and `ignored`: those matching `ignore_errors` (not counted). */
export type ErrorCounts = Record<ErrorKind, number> & { total: number; ignored: number };

export const ERROR_COUNT_KEYS = [...ERROR_KINDS, "total", "ignored"] as const;

const noErrors = (): ErrorCounts =>
  Object.fromEntries(ERROR_COUNT_KEYS.map((k) => [k, 0])) as ErrorCounts;

/**
 * What makes two errors the same: their kind, their message and page with what varies between
 * occurrences left out (query strings, fragments, long numbers, hex ids, line and column).
 */
export function errorKey(kind: ErrorKind, message: string, url: string): string {
  const normal = (s: string) =>
    s.replace(/[?#][^\s"'()]*/g, "")
      .replace(/:\d+:\d+\b/g, "")
      .replace(/\b[0-9a-f]*\d[0-9a-f]*\b/gi, (m) => (m.length >= 4 ? "#" : m))
      .replace(/\s+/g, " ")
      .trim();
  return `${kind}\u0000${normal(message)}\u0000${normal(pageKey(url))}`;
}

/**
 * Chromium's console line for a request that failed ("Failed to load resource: the server
 * responded with a status of 404"): the `http` or `request` error of that request, counted once.
 */
const REQUEST_ECHO = /^Failed to load resource: /;

export interface LevelResult extends PageFigures {
  concurrency: number;
  users_started: number;
  /** How long each step that acts on the page took (goto, click, type, ...; not waits). */
  action_ms: Percentiles | null;
  duration_s: number;
  iterations: number;
  steps: { ok: number; failed: number };
  requests_total: number;
  errors: ErrorCounts;
  screenshots: number;
  pages: Record<string, PageFigures>;
}

/** What a `browser-bench` job answers (before the pool adds its sizing and resources). */
export interface BrowserBenchResult {
  url: string;
  browser_per_user: boolean;
  /** The highest level's figures repeated at the top. */
  concurrency: number;
  iterations: number;
  lcp_ms: LevelResult["lcp_ms"];
  fcp_ms: LevelResult["fcp_ms"];
  cls: LevelResult["cls"];
  ttfb_ms: LevelResult["ttfb_ms"];
  inp_ms: LevelResult["inp_ms"];
  levels: LevelResult[];
  errors: ErrorCounts;
  /** Each distinct error once, with its count, first and last time, and a screenshot. */
  error_log: ErrorGroup[];
  screenshots: number;
  sweep: SweepRecord;
}

export interface LevelTick {
  elapsed_s: number;
  users_active: number;
  iterations: number;
  page_visits: number;
  /** Errors counted in the run so far, every level (what its result's `errors.total` will say). */
  errors: number;
  /** p75 of each vital so far in this level. */
  vitals: {
    lcp_ms: number | null;
    fcp_ms: number | null;
    ttfb_ms: number | null;
    cls: number | null;
    inp_ms: number | null;
  };
}

export interface BrowserLoadOptions {
  playwright: Playwright;
  launch: LaunchSettings;
  browserPerUser: boolean;
  url: string;
  scenario: Step[];
  /** Where screenshots go (`screenshots/`, `errors/`); null: none are taken. */
  artifactDir: string | null;
  screenshotEveryS: number;
  screenshotQuality: number;
  stepTimeoutMs: number;
  viewport: { width: number; height: number };
  /** Error screenshots for the whole run (one per error group); later groups get none. */
  maxErrorScreenshots: number;
  /** Error groups kept for the whole run; errors of later groups are only counted. */
  maxErrorGroups?: number;
  /** Errors whose message matches one of these are left out of the counts (but counted apart). */
  ignoreErrors?: RegExp[];
  /** The vitals script to inject (the web-vitals IIFE source). */
  webVitalsSource: string;
  /** Called whenever the set of browser main processes changes. */
  onProcesses?(pids: number[]): void;
  /** An error unlike any before it in the run (the first of its group). */
  onNewError?(group: ErrorGroup): void;
}

export interface LevelOptions {
  index: number;
  concurrency: number;
  durationMs: number;
  rampMs: number;
  signal: AbortSignal;
  /** Called once every user has opened its page. */
  onSteady?(): void;
  /** Called when the level's time is up, before the users' pages close. */
  onStop?(): void;
  /** Called every second. */
  onTick?(tick: LevelTick): void;
}

export interface BrowserLoad {
  runLevel(o: LevelOptions): Promise<LevelResult>;
  /** Every error group kept so far, in the order they first happened. */
  errors(): ErrorGroup[];
  close(): Promise<void>;
}

/** The web-vitals library's browser build, to inject with `vitalsScript`. */
export function readWebVitals(): Promise<string> {
  return Deno.readTextFile(
    new URL("../../node_modules/web-vitals/dist/web-vitals.iife.js", import.meta.url),
  );
}

/** The script run in every page: web vitals, navigation timing, heap, requests and bytes. */
export function vitalsScript(webVitalsSource: string): string {
  return `(() => {
  if (window.top !== window || window.__spVitals) return;
  const wv = (function () { ${webVitalsSource}; return webVitals; })();
  const id = Math.random().toString(36).slice(2) + Date.now().toString(36);
  const v = {};
  const set = (m) => { v[m.name] = m.value; };
  const all = { reportAllChanges: true };
  wv.onLCP(set, all); wv.onFCP(set, all); wv.onCLS(set, all); wv.onTTFB(set, all); wv.onINP(set, all);
  try { performance.setResourceTimingBufferSize(5000); } catch {}
  const snap = () => {
    const nav = performance.getEntriesByType("navigation")[0];
    const res = performance.getEntriesByType("resource");
    let bytes = nav ? nav.transferSize || 0 : 0;
    for (const r of res) bytes += r.transferSize || 0;
    return {
      id, url: location.href,
      lcp: v.LCP ?? null, fcp: v.FCP ?? null, cls: v.CLS ?? null, ttfb: v.TTFB ?? null,
      inp: v.INP ?? null,
      dcl: nav ? nav.domContentLoadedEventEnd : null,
      load: nav && nav.loadEventEnd > 0 ? nav.loadEventEnd : null,
      heap: performance.memory ? performance.memory.usedJSHeapSize : null,
      requests: res.length + (nav ? 1 : 0), bytes,
    };
  };
  // Documents left by in-page navigation (a clicked link) hand their record to the next
  // document of the same origin through sessionStorage; the runner drains them with the rest.
  const KEY = "__streamplay_visits";
  let prev = [];
  try { prev = JSON.parse(sessionStorage.getItem(KEY) || "[]"); sessionStorage.removeItem(KEY); }
  catch {}
  addEventListener("pagehide", () => {
    try { sessionStorage.setItem(KEY, JSON.stringify(prev.concat([snap()]).slice(-50))); } catch {}
  }, true);
  Object.defineProperty(window, "__spVitals", {
    value: () => { const out = prev.concat([snap()]); prev = []; return JSON.stringify(out); },
  });
})();`;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });

function classify(err: unknown): ErrorKind {
  const e = err as { name?: string; message?: string };
  if (e?.name === "TimeoutError") return "timeout";
  if (/ERR_PROXY_CONNECTION_FAILED|ERR_TUNNEL_CONNECTION_FAILED|ERR_SOCKS/.test(e?.message ?? "")) {
    return "blocked";
  }
  if (/crash/i.test(e?.message ?? "")) return "crash";
  return "step";
}

const firstLine = (s: string) => s.split("\n")[0]!.slice(0, 500);

/**
 * Starts a load run; browsers start with the first level and close with `close()`.
 *
 * Sessions: one browser shared by the users of a run, one browser context per user (default), or
 * one browser per user (`browserPerUser`). Web vitals come from the `web-vitals` library injected
 * into every page. Errors are grouped (the same error on every visit is one group with a count and
 * a screenshot taken the first time); a failed request counts once (not again for Chromium's
 * console line about it); known errors are left out by pattern; refused requests count as kind
 * `blocked`.
 */
export function createBrowserLoad(o: BrowserLoadOptions): BrowserLoad {
  const { chromium } = o.playwright;
  const script = vitalsScript(o.webVitalsSource);
  const groups = new Map<string, ErrorGroup>();
  const maxGroups = o.maxErrorGroups ?? 200;
  const ignore = o.ignoreErrors ?? [];
  const pids = new Set<number>();
  let shared: Promise<Browser> | null = null;
  let errorShots = 0;
  let shotSeq = 0;
  let closed = false;
  /** Errors counted by the levels that ended. */
  let earlierErrors = 0;

  const publishPids = () => o.onProcesses?.([...pids]);

  const launch = async (): Promise<Browser> => {
    const browser = await chromium.launch(launchOptions(o.launch));
    const pid = await browserPid(browser).catch(() => null);
    if (pid !== null) {
      pids.add(pid);
      publishPids();
      browser.on("disconnected", () => {
        pids.delete(pid);
        publishPids();
      });
    }
    return browser;
  };

  const writeShot = async (dir: string, name: string, page: Page): Promise<string | null> => {
    if (!o.artifactDir) return null;
    const bytes = await page.screenshot({
      type: "jpeg",
      quality: o.screenshotQuality,
      timeout: 5_000,
      animations: "allow",
    });
    await Deno.mkdir(`${o.artifactDir}/${dir}`, { recursive: true });
    const rel = `${dir}/${name}.jpg`;
    await Deno.writeFile(`${o.artifactDir}/${rel}`, bytes);
    return rel;
  };

  return {
    errors: () => [...groups.values()].map((g) => ({ ...g, levels: [...g.levels] })),

    async runLevel(lv) {
      const started = Date.now();
      const stop = new AbortController();
      const onOuterAbort = () => stop.abort();
      lv.signal.addEventListener("abort", onOuterAbort, { once: true });
      const deadline = setTimeout(() => stop.abort(), lv.durationMs);
      stop.signal.addEventListener("abort", () => lv.onStop?.(), { once: true });

      const visits = new Map<string, Visit>();
      /** Error screenshots being taken, with the user whose page they capture. */
      const writes = new Map<Promise<unknown>, number>();
      /** Until the user's error screenshots are taken: its page stays where the error was. */
      const shotsTaken = (user: number) =>
        Promise.all([...writes].filter(([, u]) => u === user).map(([w]) => w));
      const errors = noErrors();
      let usersStarted = 0;
      let usersActive = 0;
      let iterations = 0;
      let stepsOk = 0;
      let stepsFailed = 0;
      let requests = 0;
      let screenshots = 0;
      const actionMs: number[] = [];

      /** Takes the page's visit records (documents left since the last call, and this one). */
      const collect = async (page: Page) => {
        if (page.isClosed()) return;
        const json = await page.evaluate("window.__spVitals ? window.__spVitals() : '[]'")
          .catch(() => "[]");
        try {
          for (const v of JSON.parse(String(json)) as Visit[]) {
            if (typeof v.id === "string" && /^https?:/.test(v.url)) visits.set(v.id, v);
          }
        } catch { /* not ours */ }
      };

      const error = (kind: ErrorKind, text: string, page: Page | null, user: number) => {
        if (stop.signal.aborted && kind !== "console" && kind !== "page") return;
        const message = firstLine(text);
        if (ignore.some((pattern) => pattern.test(message))) {
          errors.ignored++;
          return;
        }
        errors[kind]++;
        errors.total++;
        const url = page?.url() ?? "";
        const key = errorKey(kind, message, url);
        const ts = new Date().toISOString();
        const known = groups.get(key);
        if (known) {
          known.count++;
          known.last_ts = ts;
          if (!known.levels.includes(lv.concurrency)) known.levels.push(lv.concurrency);
          return;
        }
        if (groups.size >= maxGroups) return;
        const group: ErrorGroup = {
          kind,
          message,
          url: pageKey(url),
          count: 1,
          first_ts: ts,
          last_ts: ts,
          levels: [lv.concurrency],
          screenshot: null,
        };
        groups.set(key, group);
        o.onNewError?.(group);
        if (page && o.artifactDir && errorShots < o.maxErrorScreenshots && !page.isClosed()) {
          errorShots++;
          const name = `${String(++shotSeq).padStart(4, "0")}-${kind}-u${user}`;
          const write = writeShot("errors", name, page).then((rel) => {
            group.screenshot = rel;
          }, () => {});
          writes.set(write, user);
          write.finally(() => writes.delete(write));
        }
      };

      const runStep = async (page: Page, step: Step, user: number) => {
        switch (step.action) {
          case "goto":
            await collect(page);
            await page.goto(stepUrl(step, o.url), { waitUntil: "load" });
            break;
          case "click":
            await page.click(step.selector);
            break;
          case "type":
            await page.locator(step.selector).first().pressSequentially(step.text);
            break;
          case "scroll":
            if (step.to === "top") await page.evaluate("scrollTo(0, 0)");
            else if (step.to === "bottom") {
              await page.evaluate("scrollTo(0, document.documentElement.scrollHeight)");
            } else await page.mouse.wheel(0, step.by ?? 600);
            break;
          case "wait":
            if (step.ms !== undefined) await sleep(step.ms, stop.signal);
            else await page.locator(step.selector!).first().waitFor({ state: "visible" });
            break;
          case "screenshot": {
            const name = `l${lv.index + 1}-u${user}-${step.name ?? "step"}-${++shotSeq}`;
            if (await writeShot("screenshots", name, page)) screenshots++;
            break;
          }
          case "hover":
            await page.hover(step.selector);
            break;
          case "press":
            if (step.selector) await page.press(step.selector, step.key);
            else await page.keyboard.press(step.key);
            break;
        }
      };

      const user = async (i: number) => {
        await sleep(lv.concurrency > 1 ? lv.rampMs * i / lv.concurrency : 0, stop.signal);
        if (stop.signal.aborted) return;
        let own: Browser | null = null;
        let context: BrowserContext | null = null;
        let timer: ReturnType<typeof setInterval> | undefined;
        let active = false;
        try {
          const browser = o.browserPerUser ? (own = await launch()) : await (shared ??= launch());
          context = await browser.newContext({ ...CONTEXT_OPTIONS, viewport: o.viewport });
          context.setDefaultTimeout(o.stepTimeoutMs);
          context.setDefaultNavigationTimeout(o.stepTimeoutMs);
          await context.addInitScript({ content: script });
          const page = await context.newPage();
          page.on("console", (m: ConsoleMessage) => {
            // The browser's own favicon probe is not part of the page.
            if (
              m.type() === "error" && !m.location().url.endsWith("/favicon.ico") &&
              !REQUEST_ECHO.test(m.text())
            ) {
              error("console", m.text(), page, i);
            }
          });
          page.on("pageerror", (e: Error) => error("page", e.message, page, i));
          page.on("request", () => requests++);
          page.on("requestfailed", (r: Request) => {
            const text = r.failure()?.errorText ?? "failed";
            if (text === "net::ERR_ABORTED") return;
            const kind = /PROXY|TUNNEL|SOCKS/.test(text) ? "blocked" : "request";
            error(kind, `${text} ${r.method()} ${r.url()}`, page, i);
          });
          page.on("response", (r) => {
            // The browser's own favicon probe is not part of the page.
            if (r.status() >= 400 && !r.url().endsWith("/favicon.ico")) {
              error("http", `HTTP ${r.status()} ${r.request().method()} ${r.url()}`, page, i);
            }
          });
          page.on("crash", () => error("crash", "the page crashed", page, i));
          usersStarted++;
          usersActive++;
          active = true;
          if (usersStarted === lv.concurrency) lv.onSteady?.();
          if (o.artifactDir && o.screenshotEveryS > 0) {
            let busy = false;
            let n = 0;
            timer = setInterval(() => {
              if (busy || stop.signal.aborted || page.isClosed()) return;
              busy = true;
              writeShot(
                "screenshots",
                `l${lv.index + 1}-u${i}-${String(++n).padStart(4, "0")}`,
                page,
              )
                .then((rel) => rel && screenshots++, () => {})
                .finally(() => (busy = false));
            }, o.screenshotEveryS * 1000);
          }
          if (o.scenario[0]?.action !== "goto") {
            await page.goto(o.url, { waitUntil: "load" }).catch((err) => {
              if (!stop.signal.aborted) error(classify(err), String(err?.message ?? err), page, i);
            });
          }
          while (!stop.signal.aborted) {
            let completed = true;
            for (const step of o.scenario) {
              if (stop.signal.aborted) {
                completed = false;
                break;
              }
              try {
                await shotsTaken(i);
                const began = performance.now();
                await runStep(page, step, i);
                if (step.action !== "wait" && step.action !== "screenshot") {
                  actionMs.push(performance.now() - began);
                }
                stepsOk++;
              } catch (err) {
                completed = false;
                if (stop.signal.aborted || page.isClosed()) break;
                stepsFailed++;
                error(classify(err), `${step.action}: ${(err as Error)?.message ?? err}`, page, i);
                await sleep(500, stop.signal);
                break;
              }
            }
            if (completed) iterations++;
          }
          await collect(page);
        } catch (err) {
          if (!stop.signal.aborted) {
            error(classify(err), String((err as Error)?.message ?? err), null, i);
          }
        } finally {
          clearInterval(timer);
          if (active) usersActive--;
          // Error screenshots still being taken need the page open.
          await Promise.all([...writes.keys()]);
          await context?.close().catch(() => {});
          await own?.close().catch(() => {});
        }
      };

      const tick = setInterval(() => {
        const vs = [...visits.values()];
        const p75 = (k: keyof Visit) => {
          const xs = vs.map((v) => v[k]).filter((x): x is number => typeof x === "number");
          return xs.length ? Math.round(quantile(xs, 0.75) * 1000) / 1000 : null;
        };
        lv.onTick?.({
          elapsed_s: Math.round((Date.now() - started) / 100) / 10,
          users_active: usersActive,
          iterations,
          page_visits: vs.length,
          errors: earlierErrors + errors.total,
          vitals: {
            lcp_ms: p75("lcp"),
            fcp_ms: p75("fcp"),
            ttfb_ms: p75("ttfb"),
            cls: p75("cls"),
            inp_ms: p75("inp"),
          },
        });
      }, 1000);

      try {
        // The ramp spreads the users from when their shared browser is up: started with the
        // first user, a slow launch would let every user whose time had come start at once.
        if (!o.browserPerUser) await (shared ??= launch()).catch(() => {/* each user says */});
        await Promise.all(Array.from({ length: lv.concurrency }, (_, i) => user(i)));
        await Promise.all([...writes.keys()]);
      } finally {
        clearTimeout(deadline);
        clearInterval(tick);
        lv.signal.removeEventListener("abort", onOuterAbort);
      }
      if (lv.signal.aborted) throw lv.signal.reason;
      earlierErrors += errors.total;

      const all = [...visits.values()];
      const byPage = new Map<string, Visit[]>();
      for (const v of all) {
        const key = pageKey(v.url);
        byPage.set(key, [...(byPage.get(key) ?? []), v]);
      }
      return {
        concurrency: lv.concurrency,
        users_started: usersStarted,
        action_ms: percentiles(actionMs),
        duration_s: Math.round((Date.now() - started) / 100) / 10,
        iterations,
        steps: { ok: stepsOk, failed: stepsFailed },
        requests_total: requests,
        errors,
        screenshots,
        ...figures(all),
        pages: Object.fromEntries([...byPage].map(([k, v]) => [k, figures(v)])),
      };
    },

    async close() {
      if (closed) return;
      closed = true;
      if (shared) await (await shared.catch(() => null))?.close().catch(() => {});
      pids.clear();
      publishPids();
    },
  };
}
