/**
 * What a crashed process left is removed at the next start: its session directory, and a
 * browser still using it; the directory of a process that is alive stays.
 */
import assert from "node:assert/strict";
import { removeOrphanSessionDirs, sessionTempPrefix } from "./browser_profiles.ts";

Deno.test("session directories of dead processes are removed with the browsers using them", async () => {
  const gone = new Deno.Command("true").spawn();
  const deadPid = gone.pid;
  await gone.status;
  const orphan = `${sessionTempPrefix(deadPid)}test${crypto.randomUUID().slice(0, 4)}`;
  const alive = `${sessionTempPrefix(Deno.pid)}test${crypto.randomUUID().slice(0, 4)}`;
  await Deno.mkdir(`${orphan}/profile`, { recursive: true });
  await Deno.mkdir(alive, { recursive: true });
  // Stands for a browser the crashed process left running on its profile.
  const browser = new Deno.Command("sh", {
    args: ["-c", "sleep 60", `--user-data-dir=${orphan}/profile`],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const removed = await removeOrphanSessionDirs();
    assert.ok(removed.includes(orphan), `removed ${JSON.stringify(removed)}`);
    await assert.rejects(() => Deno.stat(orphan), Deno.errors.NotFound);
    assert.equal((await Deno.stat(alive)).isDirectory, true, "a live process keeps its directory");
    const status = await browser.status;
    assert.equal(status.signal, "SIGKILL", "the browser on the orphan profile was stopped");
  } finally {
    try {
      browser.kill("SIGKILL");
    } catch { /* ended */ }
    await browser.status;
    await Deno.remove(alive, { recursive: true }).catch(() => {});
    await Deno.remove(orphan, { recursive: true }).catch(() => {});
  }
});
