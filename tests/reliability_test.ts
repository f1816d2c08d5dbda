/**
 * No job lost, none left running: real server and worker processes on a shared redis-server,
 * killed, stopped and restarted the way machines fail.
 */
import assert from "node:assert/strict";
import { listProcesses } from "../lib/core/procfs.ts";
import {
  api,
  startRedis,
  startServer,
  tempDir,
  uniquePrefix,
  waitFor,
  waitForJob,
} from "./helpers.ts";

const sharedEnv = (url: string, prefix: string) => ({
  REDIS_URL: url,
  STREAMPLAY_REDIS_PREFIX: prefix,
  STREAMPLAY_LEASE_S: "2",
});

Deno.test("a worker killed with SIGKILL mid-job: another worker runs the job again and it succeeds", async () => {
  await using redis = await startRedis();
  const env = sharedEnv(redis.url, uniquePrefix());
  await using apiServer = await startServer({ env: { ...env, STREAMPLAY_CONCURRENCY: "0" } });
  const base = apiServer.url;
  // Disposed after its SIGKILL too: that removes its data directory.
  await using first = await startServer({ role: "worker", env });
  const { body } = await api(base, "/api/jobs", {
    method: "POST",
    json: { type: "noop", params: { sleep_ms: 4_000 } },
  });
  const running = await waitForJob(base, body.id, ["running"]);
  await first.stop("SIGKILL");
  await using second = await startServer({ role: "worker", env });
  const done = await waitForJob(base, body.id, undefined, { timeoutMs: 30_000 });
  assert.equal(done.status, "succeeded");
  assert.equal(done.attempts, 2);
  assert.notEqual(done.worker, running.worker, "run again by the other worker");
  // History (DuckDB) settles to the same answer: nothing left running.
  const stored = await waitFor(async () => {
    const j = (await api(base, `/api/jobs?type=noop`)).body.jobs[0];
    return j?.status === "succeeded" ? j : null;
  }, { what: "the final status in DuckDB" });
  assert.equal(stored.error, null);
  assert.deepEqual((await api(base, "/api/jobs?status=running")).body.jobs, []);
  void second;
});

Deno.test("SIGTERM on a worker puts its unfinished job back on the queue for another", async () => {
  await using redis = await startRedis();
  const env = sharedEnv(redis.url, uniquePrefix());
  await using apiServer = await startServer({ env: { ...env, STREAMPLAY_CONCURRENCY: "0" } });
  const base = apiServer.url;
  await using first = await startServer({
    role: "worker",
    env: { ...env, STREAMPLAY_SHUTDOWN_GRACE_S: "1" },
  });
  const { body } = await api(base, "/api/jobs", {
    method: "POST",
    json: { type: "noop", params: { sleep_ms: 5_000 } },
  });
  await waitForJob(base, body.id, ["running"]);
  const stopped = Date.now();
  const status = await first.stop("SIGTERM");
  assert.equal(status.code, 0);
  assert.ok(Date.now() - stopped < 8_000, "stops within the grace period plus a little");
  const back = await waitForJob(base, body.id, ["queued"]);
  assert.equal(back.attempts, 0, "putting it back costs no attempt");
  await using second = await startServer({ role: "worker", env });
  const done = await waitForJob(base, body.id, undefined, { timeoutMs: 30_000 });
  assert.equal(done.status, "succeeded");
  assert.equal(done.attempts, 1);
  void second;
});

Deno.test("redis-server restarted with jobs queued: none is lost", async () => {
  await using redis = await startRedis();
  const env = sharedEnv(redis.url, uniquePrefix());
  await using apiServer = await startServer({ env: { ...env, STREAMPLAY_CONCURRENCY: "0" } });
  const base = apiServer.url;
  const ids: string[] = [];
  for (let i = 0; i < 20; i++) {
    const { body } = await api(base, "/api/jobs", { method: "POST", json: { type: "noop" } });
    ids.push(body.id);
  }
  await redis.restart();
  await waitFor(async () => (await api(base, "/api/health")).status === 200, { what: "reconnect" });
  await using worker = await startServer({ role: "worker", env });
  for (const id of ids) assert.equal((await waitForJob(base, id)).status, "succeeded");
  void worker;
});

Deno.test("with Redis down, new jobs get 503 and history reads keep working", async () => {
  await using redis = await startRedis();
  const env = sharedEnv(redis.url, uniquePrefix());
  await using server = await startServer({ env });
  const base = server.url;
  const { body } = await api(base, "/api/jobs", { method: "POST", json: { type: "noop" } });
  await waitForJob(base, body.id);
  await waitFor(
    async () =>
      (await api(base, "/api/jobs")).body.jobs.some((j: { id: string; status: string }) =>
        j.id === body.id && j.status === "succeeded"
      ),
    { what: "the job in DuckDB" },
  );
  await redis.close();

  const refused = await api(base, "/api/jobs", { method: "POST", json: { type: "noop" } });
  assert.equal(refused.status, 503);
  assert.match(refused.body.error, /Redis is unreachable/);
  assert.equal(refused.headers.get("retry-after"), "5");
  const list = await api(base, "/api/jobs");
  assert.equal(list.status, 200);
  assert.ok(list.body.jobs.some((j: { id: string }) => j.id === body.id));
  const one = await api(base, `/api/jobs/${body.id}`);
  assert.equal(one.status, 200);
  assert.equal(one.body.status, "succeeded");
  const health = await api(base, "/api/health");
  assert.equal(health.status, 503);
  assert.equal(health.body.redis, "down");
  assert.equal(health.body.duckdb, "ok");

  await redis.restart();
  const accepted = await waitFor(async () => {
    const r = await api(base, "/api/jobs", { method: "POST", json: { type: "noop" } });
    return r.status === 202 ? r.body : null;
  }, { what: "accepting jobs again" });
  assert.equal((await waitForJob(base, accepted.id)).status, "succeeded");
});

Deno.test("a restarted server shows the same history and stats", async () => {
  await using dataDir = await tempDir("streamplay-restart-");
  const first = await startServer({ dataDir: dataDir.path });
  const ids: string[] = [];
  for (const params of [{}, { fail: true, fatal: true }, { logs: 2 }]) {
    const { body } = await api(first.url, "/api/jobs", {
      method: "POST",
      json: { type: "noop", params },
    });
    ids.push(body.id);
  }
  for (const id of ids) await waitForJob(first.url, id);
  const before = await waitFor(async () => {
    const list = await api(first.url, "/api/jobs?limit=100");
    const finished = list.body.jobs.filter((j: { status: string }) =>
      ["succeeded", "failed"].includes(j.status)
    );
    return finished.length === 3 ? list.body : null;
  }, { what: "three finished jobs in DuckDB" });
  const statsBefore = (await api(first.url, "/api/stats")).body;
  const logsBefore = (await api(first.url, `/api/jobs/${ids[2]}/logs`)).body;
  await first.stop();

  await using second = await startServer({ dataDir: dataDir.path });
  assert.deepEqual((await api(second.url, "/api/jobs?limit=100")).body, before);
  assert.deepEqual((await api(second.url, "/api/stats")).body, statsBefore);
  assert.deepEqual((await api(second.url, `/api/jobs/${ids[2]}/logs`)).body, logsBefore);
});

/** The pid of the child of `parent` whose command is `name`, if there is one. */
async function childNamed(parent: number, name: string): Promise<number | undefined> {
  return (await listProcesses()).find((p) => p.ppid === parent && p.name === name)?.pid;
}

/** Whether `pid` is a live process (a zombie nobody reaped has ended). */
async function alive(pid: number): Promise<boolean> {
  const p = (await listProcesses()).find((p) => p.pid === pid);
  return p !== undefined && p.state !== "Z";
}

Deno.test("a server killed with SIGKILL takes its embedded redis-server with it; a restart has the queued jobs", async () => {
  await using dataDir = await tempDir("streamplay-crash-");
  // No REDIS_URL: the server runs its own redis-server. No slots, so the job stays queued.
  const first = await startServer({
    dataDir: dataDir.path,
    env: { STREAMPLAY_CONCURRENCY: "0" },
  });
  let redisPid: number | undefined;
  try {
    const { body } = await api(first.url, "/api/jobs", { method: "POST", json: { type: "noop" } });
    redisPid = await waitFor(() => childNamed(first.process.pid, "redis-server"), {
      what: "the embedded redis-server",
    });
    await first.stop("SIGKILL");
    await waitFor(async () => !(await alive(redisPid!)) || undefined, {
      timeoutMs: 10_000,
      what: "redis-server to end with the server",
    });

    await using second = await startServer({ dataDir: dataDir.path });
    const done = await waitForJob(second.url, body.id, undefined, { timeoutMs: 30_000 });
    assert.equal(done.status, "succeeded", "the job queued before the crash ran after the restart");
  } finally {
    await first.stop("SIGKILL");
    if (redisPid && await alive(redisPid)) Deno.kill(redisPid, "SIGKILL");
  }
});
