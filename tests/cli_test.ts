/** `deno task bench` as a user runs it: locally with --json, bad flags, and --submit to a server. */
import assert from "node:assert/strict";
import { ROOT_DIR, startServer, startTarget } from "./helpers.ts";

async function bench(args: string[], env: Record<string, string> = {}) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-P=cli", "cli/bench.ts", ...args],
    cwd: ROOT_DIR,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code, out: new TextDecoder().decode(stdout), err: new TextDecoder().decode(stderr) };
}

Deno.test("bench --mode http runs locally and prints a report, or JSON with --json", async () => {
  await using target = startTarget();
  const json = await bench([
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
  const result = JSON.parse(json.out);
  assert.ok(result.requests > 0);
  assert.equal(result.status_counts["200"], result.requests);
  assert.ok(result.latency_ms.p99 >= result.latency_ms.p50);
  assert.ok(result.resources.samples >= 1);
  const text = await bench(["--mode", "http", "--url", `${target.url}/`, "--requests", "300"]);
  assert.equal(text.code, 0, text.err);
  assert.match(text.out, /requests\s+300 /);
  assert.match(text.out, /latency ms\s+p50 /);
});

Deno.test("bench refuses bad flags with one line naming the flag", async () => {
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
  ];
  for (const [args, pattern] of cases) {
    const r = await bench(args);
    assert.equal(r.code, 2, args.join(" "));
    assert.match(r.err.trim().split("\n").at(-1)!, pattern, args.join(" "));
  }
});

Deno.test("bench --submit queues the job on a server and prints its result", async () => {
  await using target = startTarget();
  await using server = await startServer();
  const r = await bench([
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
