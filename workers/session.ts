/**
 * `session`: a live, interactive browser session. Its Worker holds one Chromium shared by every
 * session of the process and one browser context per session, and applies viewers' input; its
 * companion (`lib/sessions/host.ts`) captures the CDP screencast and serves the viewers. Sessions
 * have their own slots (STREAMPLAY_MAX_SESSIONS), are asked to stop rather than killed, and are
 * never retried: a session that restarted would not be the same session.
 */
import { z } from "@hono/zod-openapi";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { JobType } from "../lib/jobs/job_type.ts";
import type { Config } from "../lib/core/config.ts";
import { NO_PERMISSIONS, type SandboxSpec } from "../lib/jobs/sandbox.ts";
import { PLAYWRIGHT_ENV_READS } from "../lib/core/playwright.ts";
import { killProcessTree, listProcesses, readProcFiles } from "../lib/core/procfs.ts";
import { RecordParam } from "../lib/recordings/model.ts";

export const SessionParams = z.object({
  url: z.string().min(1).max(8192).openapi({ example: "http://127.0.0.1:8080/" }),
  viewport: z.object({
    width: z.number().int().min(200).max(3840).default(1280),
    height: z.number().int().min(200).max(2160).default(720),
  }).strict().default({ width: 1280, height: 720 }),
  quality: z.number().int().min(1).max(100).default(60)
    .openapi({ description: "JPEG quality of the frames (1..100)." }),
  max_fps: z.number().int().min(1).max(60).default(30)
    .openapi({ description: "Most frames per second captured (Chromium renders up to 60)." }),
  idle_timeout_s: z.number().int().min(1).max(86_400).default(300)
    .openapi({ description: "The session ends after this long without viewers or input." }),
  max_duration_s: z.number().int().min(5).max(86_400).default(3600)
    .openapi({ description: "The session ends after this long in any case." }),
  record: RecordParam,
}).strict().openapi("SessionParams");

export type SessionParams = z.infer<typeof SessionParams>;

/** Plain data the session Worker gets once. */
export interface SessionInit {
  chromium: string;
  /** Child environment for Chromium (the Worker itself reads no environment). */
  env: Record<string, string>;
  /** Where Playwright keeps browser profiles and artifacts (`sessionTempDir`). */
  tmpDir: string;
}

/** How long a stopping session may take before its Worker is terminated. */
export const SESSION_STOP_GRACE_MS = 10_000;

const module = new URL("./session.worker.ts", import.meta.url);
const NODE_MODULES = fileURLToPath(new URL("../node_modules/", import.meta.url));

function tempDir(): string {
  return Deno.env.get("TMPDIR") || Deno.env.get("TMP") || Deno.env.get("TEMP") || "/tmp";
}

let ownTempDir: string | undefined;

/**
 * The session Worker's own directory for Playwright's browser profiles and artifacts, one per
 * process (a pid alone may repeat across containers sharing a machine's /tmp). Playwright removes
 * a profile when its browser closes, but not when its Worker is terminated; the Worker closes its
 * browser in its teardown, and `endSessionBrowsers` removes what is left at shutdown. Chromium's
 * own TMPDIR stays the system's: its singleton socket path must stay short.
 */
export function sessionTempDir(): string {
  return ownTempDir ??= sessionTempPrefix(Deno.pid) + crypto.randomUUID().slice(0, 8);
}

/** What the `sessionTempDir` of process `pid` starts with (for a test cleaning up after a kill). */
export function sessionTempPrefix(pid: number): string {
  return join(tempDir(), `streamplay-sessions-${pid}-`);
}

/**
 * At shutdown, once the session Workers are terminated: a browser still running then was not
 * closed by its Worker's teardown, and would outlive the Worker until this process exits, writing
 * into its profile. It is killed (a child of this process whose profile is in `sessionTempDir`;
 * other browsers of the process, such as a test's, are not touched), then the directory is
 * removed.
 */
export async function endSessionBrowsers(): Promise<void> {
  const own = sessionTempDir();
  const children = (await listProcesses()).filter((p) => p.ppid === Deno.pid);
  const cmdlines = await readProcFiles(children.map((p) => `/proc/${p.pid}/cmdline`));
  const browsers = children.filter((p) =>
    cmdlines.get(`/proc/${p.pid}/cmdline`)?.includes(`--user-data-dir=${own}/`)
  );
  await killProcessTree(browsers.map((p) => p.pid), Deno.pid);
  await Deno.remove(own, { recursive: true }).catch(() => {});
}

/** Every session of a process shares this profile, hence one Worker and one browser. */
export function sessionSandbox(config: Config): SandboxSpec {
  const tmp = tempDir();
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
  urls: (p: { url: string }) => [{ field: "url", url: p.url }],
  sandbox: (_p: unknown, { config }: { config: Config }) => sessionSandbox(config),
  artifacts: false,
  sample: false,
  slots: (config: Config) => config.maxSessions,
  stopGraceMs: SESSION_STOP_GRACE_MS,
} satisfies Partial<JobType<{ url: string; max_duration_s: number }>>;

export const sessionJob: JobType<SessionParams> = {
  name: "session",
  summary: "A live browser session streamed to viewers, who may drive it.",
  params: SessionParams,
  ...SESSION_JOB_BASE,
};
