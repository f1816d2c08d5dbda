/**
 * What a sandboxed job can and cannot reach, checked by a probe job running under the exact
 * permission profiles the platform grants (real Deno Workers, real sockets and files).
 */
import assert from "node:assert/strict";
import { artifactPermissions, createSandbox, NO_PERMISSIONS, type SandboxSpec } from "./sandbox.ts";
import { createLogger } from "../core/log.ts";
import { httpBenchJob } from "../../workers/http-bench.ts";
import { loadConfig } from "../core/config.ts";
import { openJobEgress } from "./job_type.ts";
import { createUrlPolicy } from "../security/url_policy.ts";
import { HttpBenchParams } from "../../workers/http-bench.ts";
import { startTarget, tempDir, waitFor } from "../../tests/helpers.ts";

const PROBE = new URL("../../tests/fixtures/probe.worker.ts", import.meta.url);

async function probe(spec: SandboxSpec, actions: unknown[]) {
  const sandbox = createSandbox({ log: createLogger({ level: "error" }), warmPerProfile: 0 });
  try {
    const r = await sandbox.run(
      { ...spec, module: PROBE },
      { id: "probe", params: { actions }, attempt: 1, artifact_dir: null },
      () => {},
    ).done;
    assert.ok(r.ok, `probe failed: ${!r.ok && r.error}`);
    return r.result as Array<{ ok: boolean; error?: string }>;
  } finally {
    await sandbox.close();
  }
}

Deno.test("an http-bench job reaches its target's checked address and nothing else", async () => {
  await using target = startTarget();
  await using other = startTarget();
  await using dir = await tempDir();
  const secret = `${dir.path}/secret.txt`;
  await Deno.writeTextFile(secret, "token");
  const params = HttpBenchParams.parse({ url: `http://localhost:${target.port}/` });
  const config = loadConfig({});
  const opened = await openJobEgress(createUrlPolicy(config), httpBenchJob, params);
  assert.ok(opened.ok);
  const spec = httpBenchJob.sandbox(params, { config, artifactDir: null, egress: opened.egress });
  const [toTarget, byName, toOther, readSecret, readEtc, writeTmp, env, run] = await probe(spec, [
    { do: "connect", hostname: "127.0.0.1", port: target.port },
    // The name itself is not reachable: the Worker cannot look it up again.
    { do: "connect", hostname: "localhost", port: target.port },
    { do: "connect", hostname: "127.0.0.1", port: other.port },
    { do: "read", path: secret },
    { do: "read", path: "/etc/hostname" },
    { do: "write", path: `${dir.path}/x` },
    { do: "env", name: "STREAMPLAY_TOKENS" },
    { do: "run", cmd: "true" },
  ]);
  assert.deepEqual(toTarget, { ok: true });
  assert.deepEqual(byName, { ok: false, error: "NotCapable" });
  assert.deepEqual(toOther, { ok: false, error: "NotCapable" });
  assert.deepEqual(readSecret, { ok: false, error: "NotCapable" });
  assert.deepEqual(readEtc, { ok: false, error: "NotCapable" });
  assert.deepEqual(writeTmp, { ok: false, error: "NotCapable" });
  assert.deepEqual(env, { ok: false, error: "NotCapable" });
  assert.deepEqual(run, { ok: false, error: "NotCapable" });
});

Deno.test("a job with an artifact directory reads and writes there and nowhere else", async () => {
  await using base = await tempDir();
  const artifacts = `${base.path}/artifacts/job_1`;
  await Deno.mkdir(artifacts, { recursive: true });
  const outside = `${base.path}/outside.txt`;
  await Deno.writeTextFile(outside, "not yours");
  const results = await probe(
    { module: PROBE, permissions: artifactPermissions(artifacts), jobsPerWorker: 1 },
    [
      { do: "write", path: `${artifacts}/shot.jpg` },
      { do: "read", path: `${artifacts}/shot.jpg` },
      { do: "read", path: outside },
      { do: "read", path: `${artifacts}/../../outside.txt` },
      { do: "write", path: `${base.path}/artifacts/job_2.txt` },
      { do: "connect", hostname: "127.0.0.1", port: 1 },
    ],
  );
  assert.deepEqual(results.map((r) => r.ok), [true, true, false, false, false, false]);
  assert.ok(results.slice(2).every((r) => r.error === "NotCapable"));
});

Deno.test("closing the sandbox lets every Worker tear down first, for a bounded time", async () => {
  await using dir = await tempDir();
  const sandbox = createSandbox({ log: createLogger({ level: "error" }), warmPerProfile: 2 });
  const spec = (teardown: Record<string, unknown>): SandboxSpec => ({
    module: PROBE,
    permissions: { ...NO_PERMISSIONS, write: [dir.path] },
    init: { teardown },
    jobsPerWorker: 1,
  });
  await sandbox.prewarm(spec({ write: `${dir.path}/torn-down` }));
  await sandbox.prewarm(spec({ hang: true }));
  assert.equal(sandbox.stats().workers, 2);
  const started = performance.now();
  await sandbox.close(500);
  const took = performance.now() - started;
  assert.equal(await Deno.readTextFile(`${dir.path}/torn-down`), "torn down");
  assert.ok(took >= 450 && took < 5_000, `waited for the hung teardown, up to 500 ms: ${took} ms`);
  assert.equal(sandbox.stats().workers, 0);
});

Deno.test("an idle Worker the pool lets go tears down first", async () => {
  await using dir = await tempDir();
  const sandbox = createSandbox({ log: createLogger({ level: "error" }), warmPerProfile: 0 });
  try {
    const marker = `${dir.path}/torn-down`;
    const r = await sandbox.run(
      {
        module: PROBE,
        permissions: { ...NO_PERMISSIONS, write: [dir.path] },
        init: { teardown: { write: marker } },
        jobsPerWorker: 1,
      },
      { id: "probe", params: { actions: [] }, attempt: 1, artifact_dir: null },
      () => {},
    ).done;
    assert.ok(r.ok);
    assert.equal(sandbox.stats().workers, 0, "no idle Worker is kept");
    await waitFor(() => Deno.readTextFile(marker).catch(() => undefined), {
      timeoutMs: 5_000,
      what: "the teardown of the Worker let go",
    });
  } finally {
    await sandbox.close();
  }
});
