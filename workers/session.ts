/**
 * `session`: a live, interactive browser session; its Worker (`session.worker.ts`) drives the
 * browser, its companion (`lib/sessions/host.ts`) captures the screencast and serves the viewers.
 */
import { fileURLToPath } from "node:url";
import type { JobType } from "../lib/jobs/job_type.ts";
import type { Config } from "../lib/core/config.ts";
import { NO_PERMISSIONS, type SandboxSpec } from "../lib/jobs/sandbox.ts";
import { PLAYWRIGHT_ENV_READS } from "../lib/core/playwright.ts";
import { SESSION_STOP_GRACE_MS, SessionParams } from "../lib/sessions/params.ts";
import { sessionTempDir, systemTempDir } from "../lib/sessions/browser_profiles.ts";
import type { ProcessSpec } from "../lib/functions/process.ts";

/** Plain data the session Worker gets once. */
export interface SessionInit {
  chromium: string;
  /** Child environment for Chromium (the Worker itself reads no environment). */
  env: Record<string, string>;
  /** Where Playwright keeps browser profiles and artifacts (`sessionTempDir`). */
  tmpDir: string;
  /** How to start functions' processes, for a Worker that runs functions with a browser. */
  functions?: ProcessSpec;
}

const module = new URL("./session.worker.ts", import.meta.url);
const NODE_MODULES = fileURLToPath(new URL("../node_modules/", import.meta.url));

/** Every session of a process shares this profile, hence one Worker and one browser. */
export function sessionSandbox(config: Config): SandboxSpec {
  const tmp = systemTempDir();
  const own = sessionTempDir();
  return {
    module,
    permissions: {
      ...NO_PERMISSIONS,
      read: [NODE_MODULES, config.chromiumPath, own],
      write: [own],
      run: [config.chromiumPath],
      env: PLAYWRIGHT_ENV_READS,
      sys: ["homedir", "osRelease", "hostname", "cpus", "uid", "gid"],
    },
    init: {
      chromium: config.chromiumPath,
      env: { PATH: "/usr/local/bin:/usr/bin:/bin", HOME: tmp, TMPDIR: tmp },
      tmpDir: own,
    } satisfies SessionInit,
    jobsPerWorker: config.maxSessions,
  };
}

/**
 * What every job that drives a browser in the session Worker shares (`session`, `replay`): the
 * session sandbox, the session slots, a stop grace, a start URL and a maximum duration.
 */
export const SESSION_JOB_BASE = {
  defaultTimeoutS: (p: { max_duration_s: number }) => p.max_duration_s + 60,
  // A session may start blank (a CDP client's does): about:blank reaches nothing.
  urls: (p: { url: string }) => p.url === "about:blank" ? [] : [{ field: "url", url: p.url }],
  sandbox: (_p: unknown, { config }: { config: Config }) => sessionSandbox(config),
  artifacts: false,
  sample: false,
  slots: (config: Config) => config.maxSessions,
  stopGraceMs: SESSION_STOP_GRACE_MS,
} satisfies Partial<JobType<{ url: string; max_duration_s: number }>>;

/**
 * Sessions have their own slots (STREAMPLAY_MAX_SESSIONS), are asked to stop rather than killed,
 * and are never retried: a session that restarted would not be the same session.
 */
export const sessionJob: JobType<SessionParams> = {
  name: "session",
  summary: "A live browser session streamed to viewers, who may drive it.",
  params: SessionParams,
  ...SESSION_JOB_BASE,
};
