/**
 * Poison strings against a real server: a lone UTF-16 surrogate in a job's params, and a page
 * that logs and throws one, in a browser-bench and in a recorded session. Everything reaches the
 * DuckDB file with U+FFFD in place of the bad character, and other jobs' history is not delayed.
 */
import assert from "node:assert/strict";
import { api, startServer, tempDir, waitFor, waitForJob } from "./helpers.ts";
import { openViewer } from "./session_helpers.ts";
import { openHistory } from "../lib/history/store.ts";
import { RECORDING_PROJECTIONS } from "../lib/recordings/catalog.ts";

/** A page that logs and throws a lone low surrogate as it loads, then twice a second. */
const POISON_PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>poison</title></head>
<body><h1>poison</h1><script>
const poison = () => { console.error('err \\udc00'); throw new Error('err \\udc00'); };
setTimeout(poison, 0);
setInterval(poison, 500);
</script></body></html>`;

Deno.test("poison strings are stored with U+FFFD and delay no other job", async (t) => {
  const ac = new AbortController();
  const site = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    () => new Response(POISON_PAGE, { headers: { "content-type": "text/html; charset=utf-8" } }),
  );
  const pageUrl = `http://127.0.0.1:${site.addr.port}/`;
  await using data = await tempDir("streamplay-poison-");
  const server = await startServer({ dataDir: data.path, env: { STREAMPLAY_CONCURRENCY: "4" } });
  const base = server.url;
  const ids: Record<string, string> = {};
  try {
    await t.step("a lone surrogate in params: 202, and the job runs", async () => {
      // The exact body of the report: JSON text with an escaped lone surrogate.
      const res = await fetch(`${base}/api/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"type":"noop","params":{"message":"\\ud800"}}',
      });
      assert.equal(res.status, 202);
      ids.noop = (await res.json()).id;
      const done = await waitForJob(base, ids.noop!);
      assert.equal(done.status, "succeeded");
      assert.equal(done.result.message, "\uFFFD");
    });

    await t.step("a browser-bench on a page that throws one succeeds", async () => {
      const created = await api(base, "/api/jobs", {
        method: "POST",
        json: {
          type: "browser-bench",
          params: {
            url: pageUrl,
            concurrency: 1,
            duration_s: 5,
            baseline_s: 0,
            screenshot_every_s: 0,
            scenario: [{ action: "goto" }, { action: "wait", ms: 2500 }],
          },
        },
      });
      assert.equal(created.status, 202, JSON.stringify(created.body));
      ids.bench = created.body.id;
      const done = await waitForJob(base, ids.bench!, undefined, { timeoutMs: 60_000 });
      assert.equal(done.status, "succeeded", done.error);
    });

    await t.step("a recorded session of that page records its errors", async () => {
      const created = await api(base, "/api/sessions", { method: "POST", json: { url: pageUrl } });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      ids.session = created.body.id;
      const viewer = await openViewer(created.body.ws_url);
      const rec = await api(base, `/api/sessions/${ids.session}/recording`, {
        method: "POST",
        json: { fps: 5 },
      });
      assert.equal(rec.status, 201, JSON.stringify(rec.body));
      ids.recording = rec.body.recording_id;
      await viewer.next((m) => m.type === "event" && m.event.type === "page_error", 20_000);
      await new Promise((r) => setTimeout(r, 1_500));
      const stopped = await api(base, `/api/sessions/${ids.session}/recording`, {
        method: "DELETE",
      });
      assert.equal(stopped.status, 200, JSON.stringify(stopped.body));
      await viewer.close();
      assert.equal(
        (await api(base, `/api/sessions/${ids.session}`, { method: "DELETE" })).status,
        200,
      );
      await waitForJob(base, ids.session!, undefined, { timeoutMs: 30_000 });
    });

    await t.step("twenty other jobs reach history at once", async () => {
      const started = performance.now();
      const others: string[] = [];
      for (let i = 0; i < 20; i++) {
        const res = await api(base, "/api/jobs", { method: "POST", json: { type: "noop" } });
        others.push(res.body.id);
      }
      await waitFor(async () => {
        const { body } = await api(base, "/api/jobs?type=noop&limit=100");
        const stored = new Set(
          body.jobs.filter((j: { status: string }) => j.status === "succeeded")
            .map((j: { id: string }) => j.id),
        );
        return others.every((id) => stored.has(id));
      }, { timeoutMs: 20_000, what: "the other jobs in history" });
      const ms = performance.now() - started;
      assert.ok(ms < 10_000, `20 jobs took ${ms.toFixed(0)} ms to reach history`);
    });
  } finally {
    await server.stop();
    ac.abort();
    await site.finished;
  }

  assert.doesNotMatch(server.output(), /history write failed|DuckDB refused|surrogate/);
  await using history = await openHistory(`${data.path}/streamplay.duckdb`, {
    projections: RECORDING_PROJECTIONS,
  });
  const noop = await history.getJob(ids.noop!);
  assert.equal((noop!.params as { message: string }).message, "\uFFFD");
  assert.equal((noop!.result as { message: string }).message, "\uFFFD");
  const noopEvents = await history.events(ids.noop!);
  assert.ok(noopEvents.some((e) => e.type === "status" && e.status === "queued"));

  const bench = await history.getJob(ids.bench!);
  assert.ok(bench!.result, "the browser-bench result is stored");
  assert.match(JSON.stringify(bench!.result), /err \uFFFD/);

  const sessionEvents = await history.events(ids.session!, ["console", "page_error"]);
  assert.ok(
    sessionEvents.some((e) => e.type === "console" && /err \uFFFD/.test(String(e.message))),
  );
  assert.ok(
    sessionEvents.some((e) => e.type === "page_error" && /err \uFFFD/.test(String(e.message))),
  );
  const timeline = await history.query<{ data: string }>(
    `SELECT data FROM recording_events WHERE recording_id = $1`,
    [ids.recording!],
  );
  assert.ok(
    timeline.some((r) => /page_error/.test(r.data) && /err \uFFFD/.test(r.data)),
    "the recording's timeline holds the page error",
  );
});
