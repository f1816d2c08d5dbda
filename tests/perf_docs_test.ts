/**
 * The performance tables cannot drift: docs/performance.md is what `deno task perf:docs` makes of
 * docs/perf/*.json, and the file a bench writes with `--json` is what that script reads.
 */
import assert from "node:assert/strict";
import { loadReports, PERF_DOC, renderPerformance } from "../bench/perf_docs.ts";
import { benchReport } from "../bench/common.ts";
import { tempDir } from "./helpers.ts";

Deno.test("docs/performance.md is what deno task perf:docs generates from docs/perf/*.json", async () => {
  const doc = await Deno.readTextFile(PERF_DOC);
  const generated = renderPerformance(doc, await loadReports());
  assert.ok(
    generated === doc,
    "docs/performance.md differs from its JSON: run deno task perf:docs",
  );
});

Deno.test("a bench's --json file fills its table and the summary", async () => {
  await using dir = await tempDir();
  const report = benchReport("queue", ["--rounds", "3", "--json", `${dir.path}/queue.json`]);
  report.add({
    metric: "no-op jobs",
    ours: 10444,
    peer: 9394,
    peer_name: "BullMQ 5",
    unit: "jobs/s",
    target: "≥ 1.0× BullMQ",
    met: true,
  });
  report.add({ metric: "ratio", ours: 1.11, unit: "×" });
  await report.write();
  const reports = await loadReports(new URL(`file://${dir.path}/`));
  const doc =
    "<!-- perf:summary -->\n<!-- /perf:summary -->\n<!-- perf:queue -->\n<!-- /perf:queue -->";
  const out = renderPerformance(doc, reports);
  assert.match(out, /`deno task bench:queue --rounds 3` on \d{4}-\d\d-\d\d \(\d+ cores/);
  assert.match(
    out,
    /\| no-op jobs +\| 10,444 jobs\/s +\| BullMQ 5: 9,394 jobs\/s +\| ≥ 1\.0× BullMQ +\| yes +\|/,
  );
  assert.match(out, /\| ratio +\| 1\.11× +\|/);
  assert.match(
    out,
    /\| no-op jobs +\| `deno task bench:queue` +\| 10,444 jobs\/s/,
    "in the summary",
  );
  assert.equal(renderPerformance(out, reports), out, "regenerating changes nothing");
});

Deno.test("perf:docs refuses a table without its JSON, a JSON without its table, a bad field", async () => {
  await using dir = await tempDir();
  assert.throws(
    () => renderPerformance("<!-- perf:video -->\n<!-- /perf:video -->", []),
    /docs\/perf\/video\.json is missing/,
  );
  const report = benchReport("http", ["--json", `${dir.path}/http.json`]);
  report.add({ metric: "req/s", ours: 1 });
  await report.write();
  const reports = await loadReports(new URL(`file://${dir.path}/`));
  assert.throws(() => renderPerformance("# nothing here", reports), /no place for http/);
  const json = JSON.parse(await Deno.readTextFile(`${dir.path}/http.json`));
  json.rows[0].met = "yes";
  await Deno.writeTextFile(`${dir.path}/http.json`, JSON.stringify(json));
  await assert.rejects(loadReports(new URL(`file://${dir.path}/`)), /http\.json: rows\.0\.met/);
});
