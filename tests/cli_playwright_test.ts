/**
 * `deno task cli bench --mode playwright` as a user runs it from their own directory: a local
 * sweep, JSON, a scenario file relative to that directory, browser thresholds, and bad flags.
 */
import assert from "node:assert/strict";
import { tempDir } from "./helpers.ts";
import { runCliTask } from "./cli_helpers.ts";
import { servePages } from "../bench/pages.ts";

/** Runs the CLI from `cwd` (a temp dir); removes the artifact directory a local run prints. */
async function bench(args: string[], cwd?: string) {
  await using own = cwd ? null : await tempDir();
  const r = await runCliTask(["bench", ...args], cwd ?? own!.path);
  const dir = /^artifacts: (\/tmp\/streamplay-bench-\S+)$/m.exec(r.err)?.[1];
  if (dir) await Deno.remove(dir, { recursive: true });
  return r;
}

Deno.test("bench --mode playwright runs a sweep locally and prints vitals and the sizing", async () => {
  const site = servePages();
  try {
    const text = await bench([
      "--mode",
      "playwright",
      "--url",
      `${site.url}/simple`,
      "--sweep",
      "1,2",
      "--duration",
      "3",
      "--baseline",
      "1",
      "--screenshot-every",
      "1",
      "--target",
      "10,1000",
      "--node",
      "4x16",
    ]);
    assert.equal(text.code, 0, text.err);
    assert.match(text.err, /artifacts: \/\S+/);
    assert.match(text.err, /level 2\/2 \(2\) \[#+-*\]/, "a progress bar per level");
    assert.match(text.out, /users iterations\s+visits\s+LCP p75/);
    assert.match(text.out, /Sized: the browsers' processes \(CPU, PSS\) plus the platform process/);
    assert.match(text.out, /^\s+1 .*(healthy|saturated|generator_bound)/m);
    assert.match(text.out, /^\s+2 .*(healthy|saturated|generator_bound)/m);
    assert.match(text.out, /Verdict: (About \d+.* of 4c\/16GB for 1,000 users|No projection)/);

    const json = await bench([
      "--mode",
      "playwright",
      "--url",
      `${site.url}/simple`,
      "--concurrency",
      "1",
      "--duration",
      "6",
      "--baseline",
      "0",
      "--json",
    ]);
    assert.equal(json.code, 0, json.err);
    const r = JSON.parse(json.out);
    assert.equal(r.levels.length, 1);
    assert.ok(r.fcp_ms.count >= 1);
    assert.equal(r.sizing.levels.length, 1);
    assert.equal(typeof r.sizing.verdict, "string");
    assert.ok(r.resources.proc_mem_max_bytes > 0, "the browser's memory is sampled");
  } finally {
    await site.close();
  }
});

Deno.test("bench --mode playwright refuses bad flags with one line naming the flag", async () => {
  const url = "http://127.0.0.1:9/";
  const cases: Array<[string[], RegExp]> = [
    [["--url", url, "--sweep", "2,1"], /^--sweep: must be greater than/],
    [["--url", url, "--sweep", "1,x"], /^--sweep must be a comma-separated list/],
    [["--url", url, "--node", "big"], /^--node must look like 8x32/],
    [
      ["--url", url, "--scenario", "missing.json"],
      /^--scenario: cannot read missing.json: no such/,
    ],
    [["--url", url, "--scenario", "/etc/hostname"], /^--scenario: cannot read .*current directory/],
    [["--url", url, "--threshold", "errors<1%"], /^--threshold: .*browser-bench counts errors/],
    [["--url", url, "--concurrency", "0"], /^--concurrency: /],
  ];
  for (const [args, pattern] of cases) {
    const r = await bench(["--mode", "playwright", ...args]);
    assert.equal(r.code, 2, args.join(" "));
    assert.match(r.err.trim().split("\n").at(-1)!, pattern, args.join(" "));
  }
});

Deno.test("bench --mode playwright reads --scenario from the caller's directory and checks thresholds", async () => {
  await using home = await tempDir();
  await Deno.mkdir(`${home.path}/plans`);
  await Deno.writeTextFile(
    `${home.path}/plans/steps.json`,
    JSON.stringify([{ action: "goto" }, { action: "wait", ms: 200 }]),
  );
  const site = servePages();
  try {
    const args = [
      "--mode",
      "playwright",
      "--url",
      `${site.url}/simple`,
      "--scenario",
      "plans/steps.json",
      "--duration",
      "6",
      "--baseline",
      "0",
      "--screenshot-every",
      "0",
      "--json",
    ];
    const met = await bench(
      [...args, "--threshold", "fcp<60s", "--threshold", "iterations>=1"],
      home.path,
    );
    assert.equal(met.code, 0, met.err);
    const r = JSON.parse(met.out);
    assert.deepEqual(r.levels[0].steps.failed, 0);
    assert.ok(r.iterations >= 1);
    assert.equal(r.thresholds.passed, true, JSON.stringify(r.thresholds));
    const fcp = r.thresholds.results[0];
    assert.ok(fcp.value > 0 && fcp.value < 60_000 && fcp.unit === "ms", JSON.stringify(fcp));

    const crossed = await bench([...args, "--threshold", "iterations>=1000000"], home.path);
    assert.equal(crossed.code, 99, crossed.err);
    assert.match(
      crossed.err,
      /1 of 1 threshold crossed: iterations>=1000000 \(measured \d+ at 1\)/,
    );
  } finally {
    await site.close();
  }
});
