/** Thresholds: the grammar, its errors, and the check against real load runs on a local server. */
import assert from "node:assert/strict";
import { checkThresholds, httpFigures, httpSucceeded, parseThreshold } from "./thresholds.ts";
import { runHttpLoad } from "./http.ts";
import { freePort, startTarget } from "../../tests/helpers.ts";

Deno.test("thresholds parse with their units, and refuse what they cannot mean", () => {
  assert.deepEqual(parseThreshold("http", "p95<200"), {
    text: "p95<200",
    metric: "p95",
    op: "<",
    bound: 200,
    unit: "ms",
  });
  assert.equal(parseThreshold("http", " p99 <= 0.25s ").bound, 250);
  assert.deepEqual(
    [parseThreshold("http", "errors<1%").unit, parseThreshold("http", "errors<3").unit],
    ["%", ""],
  );
  assert.equal(parseThreshold("http", "rps>=500").op, ">=");
  assert.equal(parseThreshold("browser", "lcp.p95<4s").bound, 4000);
  assert.equal(parseThreshold("browser", "cls<0.1").unit, "");
  const refused: Array<[string, "http" | "browser", RegExp]> = [
    ["p95", "http", /is not a threshold: write METRIC<VALUE/],
    ["p96<200", "http", /unknown metric "p96"; use p50, p90/],
    ["lcp<2500", "http", /unknown metric "lcp"/],
    ["p95<5%", "http", /p95 is a time/],
    ["rps>10ms", "http", /rps takes no unit/],
    ["errors<1%", "browser", /browser-bench counts errors/],
    ["p95=200", "http", /operators < <= > >=/],
  ];
  for (const [text, kind, pattern] of refused) {
    assert.throws(() => parseThreshold(kind, text), pattern, text);
  }
});

Deno.test("a run against a slow server crosses a latency threshold and passes the others", async () => {
  await using target = startTarget();
  const r = await runHttpLoad({
    url: new URL(`${target.url}/slow?ms=60`),
    addresses: ["127.0.0.1"],
    method: "GET",
    headers: {},
    concurrency: 2,
    requests: 20,
    timeoutMs: 5_000,
    rampMs: 0,
  });
  const report = checkThresholds("http", ["p95<20", "p50>=50", "errors<1%", "errors<1"], [
    httpFigures(r),
  ]);
  assert.equal(report.passed, false);
  const [p95, p50, share, count] = report.results;
  assert.equal(p95!.ok, false);
  assert.ok(p95!.value! >= 60, `p95 measured ${p95!.value} ms`);
  assert.equal(p95!.concurrency, 2);
  assert.equal(p50!.ok, true);
  assert.deepEqual([share!.ok, share!.value, share!.unit], [true, 0, "%"]);
  assert.deepEqual([count!.ok, count!.value], [true, 0]);
  assert.equal(httpSucceeded([r]), 20);
});

Deno.test("a refused port: nothing succeeds, latency thresholds fail with no value", async () => {
  const r = await runHttpLoad({
    url: new URL(`http://127.0.0.1:${freePort()}/`),
    addresses: ["127.0.0.1"],
    method: "GET",
    headers: {},
    concurrency: 2,
    durationMs: 1000,
    timeoutMs: 1_000,
    rampMs: 0,
  });
  assert.equal(r.requests, 0);
  assert.ok(r.errors.connect > 0);
  assert.equal(httpSucceeded([r]), 0);
  const report = checkThresholds("http", ["p95<200", "errors<1%"], [httpFigures(r)]);
  assert.deepEqual(
    report.results.map((t) => [t.threshold, t.ok, t.value]),
    [["p95<200", false, null], ["errors<1%", false, 100]],
  );
});

Deno.test("the worst level decides: the highest value for <, the lowest for >", () => {
  const level = (concurrency: number, v: number) => ({ concurrency, value: () => v });
  const report = checkThresholds("http", ["p95<100", "rps>50"], [
    level(1, 40),
    level(2, 120),
    level(4, 90),
  ]);
  assert.deepEqual(
    report.results.map((t) => [t.ok, t.value, t.concurrency]),
    [[false, 120, 2], [false, 40, 1]],
  );
});
