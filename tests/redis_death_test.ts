/**
 * The embedded Redis of a real server dies: it is started again on its own data and jobs go on.
 */
import assert from "node:assert/strict";
import { api, startServer, waitFor, waitForJob } from "./helpers.ts";
import { listProcesses } from "../lib/core/procfs.ts";

/** The pid of the redis-server the server process runs. */
async function redisOf(serverPid: number): Promise<number | undefined> {
  return (await listProcesses()).find((p) => p.ppid === serverPid && p.name === "redis-server")
    ?.pid;
}

function signal(pid: number, sig: Deno.Signal) {
  Deno.kill(pid, sig);
}

Deno.test("a killed embedded Redis is restarted and jobs continue", async () => {
  await using server = await startServer({ env: { STREAMPLAY_CONCURRENCY: "2" } });
  const base = server.url;
  const first = await waitFor(() => redisOf(server.process.pid), { what: "redis-server" });
  const before = await api(base, "/api/jobs", { method: "POST", json: { type: "noop" } });
  assert.equal((await waitForJob(base, before.body.id)).status, "succeeded");

  signal(first, "SIGKILL");
  const second = await waitFor(async () => {
    const pid = await redisOf(server.process.pid);
    return pid !== undefined && pid !== first ? pid : undefined;
  }, { timeoutMs: 20_000, what: "a new redis-server" });
  assert.notEqual(second, first);
  await waitFor(async () => (await api(base, "/api/health")).status === 200, {
    timeoutMs: 20_000,
    what: "health to recover",
  });
  const after = await api(base, "/api/jobs", { method: "POST", json: { type: "noop" } });
  assert.equal(after.status, 202, JSON.stringify(after.body));
  assert.equal((await waitForJob(base, after.body.id)).status, "succeeded");
  // The data survived: the job from before the kill is still known.
  assert.equal((await api(base, `/api/jobs/${before.body.id}`)).body.status, "succeeded");
  assert.match(server.output(), /embedded redis-server died/);
  assert.match(server.output(), /embedded redis-server restarted/);
});
