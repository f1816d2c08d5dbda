/**
 * Loading Playwright under Deno's permissions, and the Chromium launch flags that work here.
 */
import fs from "node:fs";
import os from "node:os";
import process from "node:process";

export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-dev-shm-usage",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
];

/** Env names Deno's own node compat reads when Playwright spawns Chromium. */
export const PLAYWRIGHT_ENV_READS = ["TMPDIR", "TMP", "TEMP", "NODE_V8_COVERAGE"];

let patched = false;
/**
 * At import Playwright probes `/proc/sys/fs/binfmt_misc/WSLInterop` with `fs.existsSync`, which
 * Deno refuses without --allow-all; the probe is made to answer "absent" instead of throwing.
 */
function tolerateProcProbes() {
  if (patched) return;
  patched = true;
  const original = fs.existsSync;
  (fs as { existsSync: typeof fs.existsSync }).existsSync = (path) => {
    try {
      return original(path);
    } catch {
      return false;
    }
  };
}

export type Playwright = typeof import("playwright");

/**
 * Imports Playwright; `env` replaces process.env first (for Workers without env access), and
 * `tmpDir` becomes the temporary directory Playwright puts browser profiles in (for Workers that
 * may write only there).
 *
 * In a sandboxed Worker without env access, the small plain object the pool passes in replaces
 * `process.env`, so Playwright never reads the host's environment (tokens, keys). Deno's
 * `os.tmpdir()` reads the real TMPDIR, hence `tmpDir`.
 */
export async function loadPlaywright(
  env?: Record<string, string>,
  options: { tmpDir?: string } = {},
): Promise<Playwright> {
  tolerateProcProbes();
  if (env) (process as { env: Record<string, string> }).env = { ...env };
  if (options.tmpDir) {
    const dir = options.tmpDir;
    (os as { tmpdir: () => string }).tmpdir = () => dir;
  }
  return await import("playwright");
}
