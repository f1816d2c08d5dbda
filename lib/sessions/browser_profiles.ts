/**
 * Where the session Worker's Playwright keeps browser profiles (a directory of this process's
 * own), the clean-up at shutdown of a browser its Worker's teardown did not close, and at start
 * of what a crashed process left.
 */
import { join } from "node:path";
import {
  killProcesses,
  killProcessTree,
  listProcesses,
  processTree,
  readProcFiles,
} from "../core/procfs.ts";

export function systemTempDir(): string {
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
  return join(systemTempDir(), `streamplay-sessions-${pid}-`);
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

/**
 * At start: the session directories of processes that are gone (a crash, a SIGKILL) are removed,
 * after the browsers still using them are killed. A directory whose process is alive, this one's
 * or another's sharing the temp dir, is left alone. Answers the directories removed.
 */
export async function removeOrphanSessionDirs(): Promise<string[]> {
  const base = systemTempDir();
  const candidates: Array<{ path: string; pid: number }> = [];
  for await (const entry of Deno.readDir(base)) {
    const m = /^streamplay-sessions-(\d+)-/.exec(entry.name);
    if (m && entry.isDirectory) {
      candidates.push({ path: join(base, entry.name), pid: Number(m[1]) });
    }
  }
  if (candidates.length === 0) return [];
  const processes = await listProcesses();
  const alive = new Set(processes.map((p) => p.pid));
  const orphans = candidates.filter((c) => c.pid !== Deno.pid && !alive.has(c.pid));
  if (orphans.length === 0) return [];
  const cmdlines = await readProcFiles(processes.map((p) => `/proc/${p.pid}/cmdline`));
  const users = processes.filter((p) => {
    const cmdline = cmdlines.get(`/proc/${p.pid}/cmdline`) ?? "";
    return orphans.some((o) => cmdline.includes(`--user-data-dir=${o.path}/`));
  });
  // Orphans: their parent is gone, so they are matched by the profile they use, not by parent.
  await killProcesses(processTree(users.map((p) => p.pid), processes).map((p) => p.pid));
  const removed: string[] = [];
  for (const o of orphans) {
    try {
      await Deno.remove(o.path, { recursive: true });
      removed.push(o.path);
    } catch {
      // Removed by another process starting at the same time, or not ours to remove.
    }
  }
  return removed;
}
