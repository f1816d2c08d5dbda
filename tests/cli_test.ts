/**
 * `streamplay bench` as a user runs it, installed and started from another directory: locally
 * with --json, bad flags, thresholds that pass or are crossed (exit 99), a target that answers
 * nothing (exit 98), and --submit to a server whose job result carries the thresholds.
 */
import assert from "node:assert/strict";
import { api, freePort, startServer, startTarget, waitForJob } from "./helpers.ts";
import { installCli } from "./cli_helpers.ts";

Deno.test("bench --mode http runs locally and prints a report, or JSON with --json", async () => {
  await using cli = await installCli();
  await using target = startTarget();
  const json = await cli.run([
    "bench",
    "--mode",
    "http",
    "--url",
    `${target.url}/`,
    "--concurrency",
    "2",
    "--duration",
    "1",
    "--json",
  ]);
  assert.equal(json.code, 0, json.err);
  assert.doesNotMatch(json.err, /experimental feature/, "no warning on every call");
  const result = JSON.parse(json.out);
  assert.ok(result.requests > 0);
  assert.equal(result.status_counts["200"], result.requests);
  assert.ok(result.latency_ms.p99 >= result.latency_ms.p50);
  assert.ok(result.resources.samples >= 1);
  assert.equal(result.thresholds, undefined, "no thresholds asked, none reported");
  const text = await cli.run(["bench", "--url", `${target.url}/`, "--requests", "300"]);
  assert.equal(text.code, 0, text.err);
  assert.match(text.out, /requests\s+300 /);
  assert.match(text.out, /latency ms\s+p50 /);
});

Deno.test("bench refuses bad flags with one line naming the flag", async () => {
  await using cli = await installCli();
  const cases: Array<[string[], RegExp]> = [
    [["--mode", "http", "--url", "http://127.0.0.1/", "--concurrency", "0"], /^--concurrency: /],
    [
      ["--mode", "http", "--url", "http://127.0.0.1/", "--duration", "abc"],
      /^--duration must be a number/,
    ],
    [["--mode", "carrier-pigeon", "--url", "http://127.0.0.1/"], /^--mode must be one of/],
    [["--mode", "http"], /^--url is required/],
    [["--mode", "http", "--url", "http://169.254.169.254/"], /refused: .*metadata/],
    [
      ["--mode", "http", "--url", "http://127.0.0.1/", "--header", "nocolon"],
      /^--header must look like/,
    ],
    [
      ["--url", "http://127.0.0.1/", "--threshold", "p95<200", "--threshold", "p96<200"],
      /^--threshold: "p96<200": unknown metric "p96"; use p50, p90, p95/,
    ],
    [["--url", "http://127.0.0.1/", "--threshold", "p95=200"], /^--threshold: .*not a threshold/],
    [["--url", "http://127.0.0.1/", "--bogus"], /^Unknown option '--bogus'/],
  ];
  for (const [args, pattern] of cases) {
    const r = await cli.run(["bench", ...args]);
    assert.equal(r.code, 2, args.join(" "));
    assert.equal(r.err.trim().split("\n").length, 1, `one line, no stack: ${r.err}`);
    assert.match(r.err.trim(), pattern, args.join(" "));
  }
});

Deno.test("bench exits 98 when nothing succeeded: a refused port is not a passing run", async () => {
  await using cli = await installCli();
  const r = await cli.run([
    "bench",
    "--url",
    `http://127.0.0.1:${freePort()}/`,
    "--duration",
    "1",
    "--baseline",
    "0",
  ]);
  assert.equal(r.code, 98, r.err);
  assert.match(r.out, /requests\s+0 /);
  assert.match(r.err, /nothing succeeded: not one response below 400 \(errors: connect \d+\)/);
  const budget = await cli.run([
    "bench",
    "--url",
    `http://127.0.0.1:${freePort()}/`,
    "--requests",
    "50",
    "--baseline",
    "0",
    "--json",
  ]);
  assert.equal(budget.code, 98, budget.err);
  assert.equal(JSON.parse(budget.out).errors.connect, 50);
});

Deno.test("bench exits 99 when a threshold is crossed and prints which, with the value", async () => {
  await using cli = await installCli();
  await using target = startTarget();
  const r = await cli.run([
    "bench",
    "--url",
    `${target.url}/slow?ms=40`,
    "--requests",
    "40",
    "--concurrency",
    "4",
    "--baseline",
    "0",
    "--threshold",
    "p95<10",
    "--threshold",
    "errors<1%",
  ]);
  assert.equal(r.code, 99, r.err);
  assert.match(r.out, /thresholds\s+crossed/);
  assert.match(r.out, /FAILED p95<10\s+measured \d+(\.\d+)? ms at 4/);
  assert.match(r.out, /ok\s+errors<1%\s+measured 0 %/);
  assert.match(r.err, /1 of 2 thresholds crossed: p95<10 \(measured \d+(\.\d+)? ms at 4\)/);

  const met = await cli.run([
    "bench",
    "--url",
    `${target.url}/`,
    "--requests",
    "200",
    "--baseline",
    "0",
    "--threshold",
    "p99<5s",
    "--threshold",
    "errors<1",
    "--json",
  ]);
  assert.equal(met.code, 0, met.err);
  const { thresholds } = JSON.parse(met.out);
  assert.equal(thresholds.passed, true);
  assert.deepEqual(thresholds.results.map((t: { threshold: string }) => t.threshold), [
    "p99<5s",
    "errors<1",
  ]);
});

Deno.test("bench --submit: the job's result says which thresholds held, the CLI exits 99", async () => {
  await using cli = await installCli();
  await using target = startTarget();
  await using server = await startServer();
  const r = await cli.run([
    "bench",
    "--url",
    `${target.url}/`,
    "--requests",
    "200",
    "--threshold",
    "p95<60000",
    "--threshold",
    "rps>100000000",
    "--submit",
    "--server",
    server.url,
    "--json",
  ]);
  assert.equal(r.code, 99, r.err);
  assert.match(r.err, /queued (job_\S+) on http:\/\/127\.0\.0\.1/);
  const id = /queued (job_\S+)/.exec(r.err)![1]!;
  const job = await waitForJob(server.url, id);
  assert.equal(job.status, "succeeded");
  assert.equal(job.result.requests, 200);
  assert.equal(job.result.thresholds.passed, false);
  const [p95, rps] = job.result.thresholds.results;
  assert.equal(p95.ok, true);
  assert.equal(rps.ok, false);
  assert.ok(rps.value > 0 && rps.unit === "req/s", JSON.stringify(rps));

  const bad = await api(server.url, "/api/jobs", {
    method: "POST",
    json: { type: "http-bench", params: { url: `${target.url}/`, thresholds: ["p95<200", "x"] } },
  });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error, /^params\.thresholds\.1: "x" is not a threshold/);
});

Deno.test("streamplay and each of its commands answer --help; an unknown one is one line", async () => {
  await using cli = await installCli();
  const top = await cli.run(["--help"]);
  assert.equal(top.code, 0);
  assert.match(top.out, /^Usage: streamplay <command>/);
  for (const command of ["bench", "recordings", "stream"]) {
    assert.match(top.out, new RegExp(`^  ${command} `, "m"));
    const r = await cli.run([command, "--help"]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`^Usage: streamplay ${command} `));
    assert.equal(r.err, "", "no warning, no noise");
  }
  const none = await cli.run([]);
  assert.equal(none.code, 2);
  const unknown = await cli.run(["fly"]);
  assert.equal(unknown.code, 2);
  assert.equal(
    unknown.err.trim(),
    'streamplay: unknown command "fly": use bench, recordings, stream',
  );
});
