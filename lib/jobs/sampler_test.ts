/**
 * The sampler measures processes a job names but does not own: a busy child found by pid and by
 * its process name, apart from this process (the platform, never its own target) and its busiest
 * Worker thread.
 */
import assert from "node:assert/strict";
import { createSampler, type Sample } from "./sampler.ts";
import { createLogger } from "../core/log.ts";

/** A CPU-bound child whose process name is `name` (a copy of sh under that name). */
async function busyChild(dir: string, name: string): Promise<Deno.ChildProcess> {
  await Deno.copyFile("/bin/sh", `${dir}/${name}`);
  await Deno.chmod(`${dir}/${name}`, 0o755);
  return new Deno.Command(`${dir}/${name}`, {
    args: ["-c", "while :; do :; done"],
    stdout: "null",
    stderr: "null",
  }).spawn();
}

async function track(targets: { pids?: number[]; process?: string }, ms: number) {
  const sampler = createSampler({ log: createLogger({ level: "error" }) });
  const samples: Sample[] = [];
  const tracking = sampler.track("t", { intervalMs: 500, targets }, (s) => samples.push(s));
  await new Promise((r) => setTimeout(r, ms));
  const summary = tracking.stop();
  sampler.close();
  return { samples, summary };
}

Deno.test("a named target is measured by pid or by name, never killed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "streamplay-sampler-" });
  const name = `sptgt${Math.floor(Math.random() * 1e6)}`;
  const child = await busyChild(dir, name);
  try {
    for (const targets of [{ pids: [child.pid] }, { process: name }]) {
      const { samples, summary } = await track(targets, 2600);
      assert.ok(samples.length >= 3, `${samples.length} samples`);
      const last = samples.at(-1)!;
      assert.equal(last.target_count, 1, JSON.stringify(targets));
      assert.ok(
        samples.some((s) => (s.target_cpu_cores ?? 0) > 0.01),
        `the busy child's CPU: ${samples.map((s) => s.target_cpu_cores).join(", ")}`,
      );
      assert.ok((last.target_mem_bytes ?? 0) > 0);
      assert.equal(typeof last.target_cpu_wait_cores, "number");
      assert.ok((last.platform_mem_bytes ?? 0) > 10 * 1024 * 1024, "this process's PSS");
      assert.equal(typeof last.platform_cpu_cores, "number");
      assert.equal(typeof last.worker_thread_cores, "number");
      assert.ok(summary.target_cpu_cores_avg! > 0);
    }
    const status = await Promise.race([
      child.status.then(() => "exited"),
      new Promise((r) => setTimeout(() => r("running"), 100)),
    ]);
    assert.equal(status, "running", "measuring a target never stops it");
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a target that matches nothing, or the generator itself, reads as no processes", async () => {
  for (const targets of [{ process: "no-such-proc-x" }, { pids: [Deno.pid] }]) {
    const { samples } = await track(targets, 1200);
    assert.ok(samples.length >= 1);
    assert.equal(samples.at(-1)!.target_count, 0, JSON.stringify(targets));
    assert.equal(samples.at(-1)!.target_cpu_cores, 0);
  }
});
