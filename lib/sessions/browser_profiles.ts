/**
 * Where the session Worker's Playwright keeps browser profiles (a directory of this process's
 * own), and the clean-up at shutdown of a browser its Worker's teardown did not close.
 */
import { join } from "node:path";
import { killProcessTree, listProcesses, readProcFiles } from "../core/procfs.ts";

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
