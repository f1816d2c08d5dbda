/**
 * A short http-bench sweep on a real server against a static-file server in its own process: the
 * sizing report measures that target (named by pid) apart from the load generator and carries every
 * field an SRE reads; without a named target it says no cost was measured.
 */
import assert from "node:assert/strict";
import { api, ROOT_DIR, startServer, waitForJob } from "./helpers.ts";
import { THRESHOLDS } from "../lib/capacity/report.ts";

/** The static server as a child process (its own pid, like nginx would have). */
async function startStaticServer() {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net=127.0.0.1", "tests/fixtures/static_server.ts"],
    cwd: ROOT_DIR,
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  const port = Number(value?.trim());
  assert.ok(port > 0, `the static server printed its port: ${value}`);
  return {
    url: `http://127.0.0.1:${port}/index.html`,
    pid: child.pid,
    async [Symbol.asyncDispose]() {
      child.kill("SIGKILL");
      await child.status;
      await child.stdout.cancel().catch(() => {});
    },
  };
}

const LEVELS = [1, 2, 3, 4];

Deno.test("http-bench sizes the target server's processes with the full report", async (t) => {
  await using target = await startStaticServer();
  await using server = await startServer({ env: { STREAMPLAY_CONCURRENCY: "1" } });

  await t.step("a sweep with target_pids reports the target apart from the generator", async () => {
    const created = await api(server.url, "/api/jobs", {
      method: "POST",
      json: {
        type: "http-bench",
        params: {
          url: target.url,
          levels: LEVELS,
          duration_s: 2,
          baseline_s: 1,
          rate: 400,
          target_pids: [target.pid],
          targets: [10, 1000],
        },
      },
    });
    assert.equal(created.status, 202, JSON.stringify(created.body));
    const done = await waitForJob(server.url, created.body.id, undefined, { timeoutMs: 90_000 });
    assert.equal(done.status, "succeeded", done.error);
    const s = done.result.sizing;
    assert.equal(s.basis, "target");
    assert.equal(s.unit, "connections");
    assert.match(s.measured, /target server's processes/);
    assert.equal(s.confidence, 0.95);
    assert.equal(s.thresholds.cpu_wait_ratio, THRESHOLDS.cpu_wait_ratio);
    assert.deepEqual(s.levels.map((l: { concurrency: number }) => l.concurrency), LEVELS);
    for (const l of s.levels) {
      assert.ok(["healthy", "saturated", "generator_bound"].includes(l.status));
      assert.equal(l.status === "healthy", l.reasons.length === 0, l.reasons.join("; "));
      assert.equal(l.target.processes, 1, "the static server's one process");
      assert.ok(l.target.cpu_cores > 0, `the target worked at ${l.concurrency}`);
      assert.ok(l.target.mem_bytes > 1024 * 1024, "its PSS");
      assert.equal(l.cost.cpu_cores, l.target.cpu_cores);
      assert.equal(typeof l.generator.cpu_cores, "number");
      assert.equal(typeof l.generator.worker_thread_cores, "number");
      assert.equal(typeof l.generator.lag_p99_ms, "number");
      assert.equal(typeof l.machine.cpu_percent, "number");
      assert.ok("cpu_wait_ratio" in l);
      assert.ok(l.requests_per_s > 0);
      assert.equal(typeof l.timings["latency p50"], "number");
    }
    const byStatus = [...s.healthy_levels, ...s.saturated_levels, ...s.generator_bound_levels];
    assert.deepEqual(byStatus.sort((a: number, b: number) => a - b), LEVELS);
    assert.equal(s.highest_healthy_level, s.healthy_levels.at(-1) ?? null);
    assert.equal(s.validated, s.healthy_levels.length >= 4);
    assert.equal(typeof s.verdict, "string");
    if (s.healthy_levels.length === 0) {
      // A machine busy enough to starve the target: said, and nothing projected.
      assert.match(s.verdict, /^No projection: no level was healthy/);
      assert.deepEqual(s.projections, []);
      return;
    }
    for (const name of ["cpu", "memory"]) {
      const m = s.models[name];
      assert.ok(m.chosen.kind, `a ${name} model`);
      assert.equal(typeof m.reason, "string");
      assert.equal(m.curve.length, 25);
      assert.ok(["prediction", "measurement noise only"].includes(m.interval));
      if (s.validated) {
        assert.deepEqual(m.validation.levels.map((v: { held_out: number }) => v.held_out), LEVELS);
      } else assert.equal(m.validation, null);
    }
    assert.ok(s.rates.net_bytes_per_request.tx > 8192, "the 8 KB page per request");
    assert.deepEqual(s.projections.map((p: { target: number }) => p.target), [10, 1000]);
    for (const p of s.projections) {
      assert.ok(p.interval.cores[0] <= p.required_cores && p.required_cores <= p.interval.cores[1]);
      assert.ok(p.interval.nodes[0] <= p.nodes.count && p.nodes.count <= p.interval.nodes[1]);
      assert.ok(Math.abs(p.extrapolation_factor - p.target / s.highest_healthy_level) < 0.05);
      assert.ok("recommended_next_level" in p);
    }
    const far = s.projections.at(-1);
    assert.ok(far.recommended_next_level > s.highest_healthy_level, "1,000 is > 20× away");
    assert.match(s.verdict, /^About \d+/);
    assert.match(s.verdict, new RegExp(`measure ${far.recommended_next_level} connections`));
    if (!s.validated) assert.match(s.verdict, /unvalidated/);
  });

  await t.step("without a named target the report claims no resource cost", async () => {
    const created = await api(server.url, "/api/jobs", {
      method: "POST",
      json: {
        type: "http-bench",
        params: { url: target.url, levels: [1, 2], duration_s: 1, baseline_s: 0, rate: 200 },
      },
    });
    const done = await waitForJob(server.url, created.body.id, undefined, { timeoutMs: 60_000 });
    assert.equal(done.status, "succeeded", done.error);
    const s = done.result.sizing;
    assert.equal(s.basis, "none");
    assert.equal(s.models, null);
    assert.deepEqual(s.projections, []);
    assert.match(s.verdict, /^No resource cost was measured for the target/);
  });

  await t.step("a target that is not a cgroup path is refused naming the field", async () => {
    const r = await api(server.url, "/api/jobs", {
      method: "POST",
      json: {
        type: "http-bench",
        params: { url: target.url, target_cgroup: "/sys/fs/cgroup/../../etc" },
      },
    });
    assert.equal(r.status, 400);
    assert.match(r.body.error, /^params\.target_cgroup: must be a cgroup directory/);
  });
});
