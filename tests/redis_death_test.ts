/**
 * The embedded Redis of a real server dies: it is started again on its own data and jobs go on;
 * and a SIGTERM while Redis does not answer ends the server within its stop bound, with the job
 * result it could not write kept in the spool and written at the next start.
 */
import assert from "node:assert/strict";
import { api, startServer, tempDir, waitFor, waitForJob } from "./helpers.ts";
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

Deno.test("SIGTERM while Redis hangs ends within the bound; the result is kept and replayed", async () => {
  await using data = await tempDir("streamplay-spool-");
  const env = { STREAMPLAY_CONCURRENCY: "2", STREAMPLAY_STOP_TIMEOUT_S: "10" };
  await using server = await startServer({ dataDir: data.path, env });
  const base = server.url;
  const created = await api(base, "/api/jobs", {
    method: "POST",
    json: { type: "noop", params: { sleep_ms: 2_500, message: "kept" } },
  });
  assert.equal(created.status, 202);
  const id: string = created.body.id;
  await waitForJob(base, id, ["running"]);
  // Everything up to here is in the append-only file (fsync every second).
  await new Promise((r) => setTimeout(r, 1_500));
  const redis = (await redisOf(server.process.pid))!;
  signal(redis, "SIGSTOP");
  let status: Deno.CommandStatus;
  try {
    // The job ends while Redis does not answer: its result cannot be written.
    await new Promise((r) => setTimeout(r, 3_000));
    const t0 = performance.now();
    status = await server.stop("SIGTERM");
    const seconds = (performance.now() - t0) / 1000;
    assert.ok(seconds < 13, `stopped ${seconds.toFixed(1)} s after SIGTERM (bound 10 s)`);
  } finally {
    // The stopped redis-server has its parent-death SIGTERM pending: it shuts down cleanly.
    signal(redis, "SIGCONT");
  }
  await waitFor(async () => (await listProcesses()).every((p) => p.pid !== redis), {
    what: "the old redis-server to exit",
  });
  assert.notEqual(status.signal, "SIGKILL", server.output());
  assert.match(server.output(), new RegExp(`kept for the next start.*${id}`));

  await using again = await startServer({ dataDir: data.path, env });
  const done = await waitForJob(again.url, id);
  assert.equal(done.status, "succeeded", JSON.stringify(done));
  assert.equal(done.result.message, "kept");
  assert.match(again.output(), /wrote what the last run kept in its spool/);
  await assert.rejects(() => Deno.stat(`${data.path}/spool.ndjson`), Deno.errors.NotFound);
});
