/**
 * `streamplay bench` as a user runs it, installed and started from another directory: locally
 * with --json, bad flags, --submit to a server, and --help on every command.
 */
import assert from "node:assert/strict";
import { startServer, startTarget } from "./helpers.ts";
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
    [["--url", "http://127.0.0.1/", "--bogus"], /^Unknown option '--bogus'/],
  ];
  for (const [args, pattern] of cases) {
    const r = await cli.run(["bench", ...args]);
    assert.equal(r.code, 2, args.join(" "));
    assert.equal(r.err.trim().split("\n").length, 1, `one line, no stack: ${r.err}`);
    assert.match(r.err.trim(), pattern, args.join(" "));
  }
});

Deno.test("bench --submit queues the job on a server and prints its result", async () => {
  await using cli = await installCli();
  await using target = startTarget();
  await using server = await startServer();
  const r = await cli.run([
    "bench",
    "--mode",
    "http",
    "--url",
    `${target.url}/`,
    "--requests",
    "200",
    "--submit",
    "--server",
    server.url,
    "--json",
  ]);
  assert.equal(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out).requests, 200);
  assert.match(r.err, /queued job_\S+ on http:\/\/127\.0\.0\.1/);
});

Deno.test("streamplay and each of its commands answer --help; an unknown one is one line", async () => {
  await using cli = await installCli();
  const top = await cli.run(["--help"]);
  assert.equal(top.code, 0);
  assert.match(top.out, /^Usage: streamplay <command>/);
  for (const command of ["bench", "recordings"]) {
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
    'streamplay: unknown command "fly": use bench, recordings',
  );
});
