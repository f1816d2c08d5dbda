/**
 * `browser-bench`: real-browser load on one site — N virtual users in Chromium (or a sweep of
 * `levels`) repeating a scenario, with screenshots, web vitals, errors by kind, and a sizing
 * report.
 */
import { fileURLToPath } from "node:url";
import { z } from "@hono/zod-openapi";
import type { JobType } from "../lib/jobs/job_type.ts";
import { NO_PERMISSIONS } from "../lib/jobs/sandbox.ts";
import { PLAYWRIGHT_ENV_READS } from "../lib/core/playwright.ts";
import { Scenario, scenarioUrls, stepUrl } from "../lib/load/scenario.ts";
import {
  buildSizingReport,
  capacityFields,
  checkCapacity,
  type LevelInfo,
  levelsOf,
  type SweepRecord,
} from "../lib/capacity/report.ts";
import type { LevelResult } from "../lib/load/browser.ts";
import { thresholdsField } from "../lib/load/thresholds.ts";

export const MAX_BROWSER_USERS = 200;
/** Seconds between levels, so one level's teardown stays out of the next one's figures. */
export const SETTLE_S = 2;

function isRegExp(source: string): boolean {
  try {
    new RegExp(source);
    return true;
  } catch {
    return false;
  }
}

const host = z.string().min(1).max(253).regex(
  /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)$/,
  "must be a host name or IP address (no scheme, port or path)",
);

export const BrowserBenchParams = z.object({
  url: z.string().max(8192).openapi({ example: "http://127.0.0.1:8080/" }),
  concurrency: z.number().int().min(1).max(MAX_BROWSER_USERS).optional()
    .openapi({ description: "Virtual users (default 1); or give `levels` for a sweep." }),
  duration_s: z.number().min(2).max(3600).default(30)
    .openapi({ description: "How long each level runs, ramp included." }),
  ramp_s: z.number().min(0).max(3600).default(0)
    .openapi({ description: "Users start evenly over this many seconds." }),
  scenario: Scenario,
  screenshot_every_s: z.number().min(0).max(3600).default(10)
    .openapi({ description: "Periodic screenshot of every user's page (0: none)." }),
  screenshot_quality: z.number().int().min(1).max(100).default(60)
    .openapi({ description: "JPEG quality of screenshots." }),
  browser_per_user: z.boolean().default(false)
    .openapi({ description: "A browser per user instead of a browser context per user." }),
  step_timeout_ms: z.number().int().min(100).max(600_000).default(15_000),
  viewport: z.object({
    width: z.number().int().min(100).max(7680),
    height: z.number().int().min(100).max(4320),
  }).strict().default({ width: 1280, height: 720 }),
  allow_hosts: z.array(host).max(50).default([])
    .openapi({
      description: "Other hosts the pages may load from (CDNs, APIs); each is checked by the " +
        "URL policy. Everything else the browser asks for is blocked.",
    }),
  error_screenshots: z.number().int().min(0).max(500).default(20)
    .openapi({
      description: "Distinct errors that get a screenshot, taken the first time each happens.",
    }),
  ignore_errors: z.array(
    z.string().min(1).max(500).refine(isRegExp, "must be a valid regular expression"),
  ).max(50).default([]).openapi({
    description: "Known errors to leave out of the counts: regular expressions matched against " +
      `each error's message (a request error's names its URL), e.g. ["learn\\\\.json"]. ` +
      "They are counted apart, as `errors.ignored`.",
  }),
  resource_basis: z.enum(["process", "system"]).default("process")
    .openapi({
      description: "What a session costs in the sizing report: the browsers' processes plus " +
        "the platform process that drives them (process), or the whole machine's use net of " +
        "the idle baseline (system, which counts everything else running there too).",
    }),
  thresholds: thresholdsField("browser"),
  ...capacityFields(MAX_BROWSER_USERS),
}).strict().superRefine((p, ctx) => {
  checkCapacity(p, ctx);
  if (p.ramp_s >= p.duration_s) {
    ctx.addIssue({ code: "custom", path: ["ramp_s"], message: "must be shorter than duration_s" });
  }
  p.scenario.forEach((step, i) => {
    if (step.action !== "goto" || step.url === undefined) return;
    try {
      const url = new URL(stepUrl(step, p.url));
      if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error();
    } catch {
      ctx.addIssue({
        code: "custom",
        path: ["scenario", i, "url"],
        message: "must be an http(s) URL, absolute or relative to url",
      });
    }
  });
}).openapi("BrowserBenchParams");

export type BrowserBenchParams = z.infer<typeof BrowserBenchParams>;

/** Users per level: `levels`, or `concurrency` (default 1). */
export const browserLevels = (p: BrowserBenchParams) =>
  levelsOf({ ...p, concurrency: p.concurrency ?? 1 });

/** Every URL the job will open, by field path: the target, goto steps, extra hosts. */
export function browserUrls(p: BrowserBenchParams): Array<{ field: string; url: string }> {
  return [
    { field: "params.url", url: p.url },
    ...scenarioUrls(p.scenario, p.url),
    ...p.allow_hosts.map((h, i) => ({ field: `params.allow_hosts.${i}`, url: `http://${h}/` })),
  ];
}

/** What the pool tells the Worker once, before its job. */
export interface BrowserBenchInit {
  chromiumPath: string;
  /** The job's proxy (`socks5://127.0.0.1:<port>`): the browser's only way out. */
  proxy: string;
}

const NODE_MODULES = fileURLToPath(new URL("../node_modules/", import.meta.url));
const module = new URL("./browser-bench.worker.ts", import.meta.url);

/**
 * Its sandbox may read the project's node_modules and the Chromium executable, run that executable,
 * and write only to the job's artifact directory; it has no network permission (the browser talks
 * to it over a pipe). The browser itself reaches the network only through the job's proxy in the
 * pool process, which admits the hosts the URL policy approved when the job started, at the
 * addresses it checked (see lib/load/browser.ts).
 */
export const browserBenchJob: JobType<BrowserBenchParams> = {
  name: "browser-bench",
  summary: "Real-browser load with web vitals, screenshots and a sizing report.",
  params: BrowserBenchParams,
  defaultTimeoutS: (p) =>
    Math.ceil(p.baseline_s + browserLevels(p).length * (p.duration_s + SETTLE_S + 30) + 60),
  urls: browserUrls,
  egress: "proxy",
  sandbox: (_p, { config, artifactDir, egress }) => ({
    module,
    init: {
      chromiumPath: config.chromiumPath,
      proxy: egress.proxy!.url,
    } satisfies BrowserBenchInit,
    permissions: {
      ...NO_PERMISSIONS,
      read: [NODE_MODULES, config.chromiumPath, ...(artifactDir ? [artifactDir] : [])],
      write: artifactDir ? [artifactDir] : false,
      run: [config.chromiumPath],
      env: PLAYWRIGHT_ENV_READS,
      sys: ["homedir", "osRelease", "hostname", "cpus", "uid", "gid"],
    },
    jobsPerWorker: 1,
  }),
  artifacts: true,
  sample: true,
  sampleIntervalS: (p) => p.sample_interval_s,
  finish: (p, result, samples) => {
    const r = result as { sweep?: SweepRecord; levels?: LevelResult[] };
    if (!r.sweep) return result;
    const sizing = buildSizingReport(p, r.sweep, samples, {
      basis: p.resource_basis,
      info: (r.levels ?? []).map(levelInfo),
      sessionS: p.duration_s,
    });
    return { ...r, sizing };
  },
};

/** What a level's result tells the sizing report: page timings, and users that never ran. */
export function levelInfo(l: LevelResult): LevelInfo {
  return {
    concurrency: l.concurrency,
    timings: { "action p75": l.action_ms?.p75 ?? null, "LCP p75": l.lcp_ms?.p75 ?? null },
    shortfall: l.users_started < l.concurrency
      ? `only ${l.users_started} of ${l.concurrency} users started`
      : null,
  };
}
