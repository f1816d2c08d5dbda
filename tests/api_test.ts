/**
 * The REST contract against a real server process (embedded redis-server, DuckDB file in a temp
 * dir), as a curl user would see it: every endpoint, the bad-input cases, and the live job
 * WebSocket.
 */
import assert from "node:assert/strict";
import { api, startServer, startTarget, waitFor, waitForJob } from "./helpers.ts";

Deno.test("REST API and job WebSocket", async (t) => {
  await using server = await startServer({ env: { STREAMPLAY_CONCURRENCY: "4" } });
  await using target = startTarget();
  const base = server.url;

  await t.step("GET /api/health reports redis and duckdb ok", async () => {
    const { status, body } = await api(base, "/api/health");
    assert.equal(status, 200);
    assert.equal(body.status, "ok");
    assert.equal(body.redis, "ok");
    assert.equal(body.duckdb, "ok");
    assert.match(body.version, /^\d+\.\d+\.\d+/);
  });

  await t.step("POST /api/jobs queues a job that runs and stores its result", async () => {
    const created = await api(base, "/api/jobs", {
      method: "POST",
      json: { type: "noop", params: { logs: 3 } },
    });
    assert.equal(created.status, 202);
    assert.equal(created.body.status, "queued");
    assert.equal(created.headers.get("location"), `/api/jobs/${created.body.id}`);
    const done = await waitForJob(base, created.body.id);
    assert.equal(done.status, "succeeded");
    assert.equal(done.result.ok, true);
    assert.ok(Math.abs(done.result.started_ms - Date.parse(done.started_at)) < 5_000);
    assert.equal(done.attempts, 1);
    assert.ok(done.started_at && done.finished_at && done.worker);
    const logs = await api(base, `/api/jobs/${created.body.id}/logs`);
    assert.equal(logs.status, 200);
    assert.deepEqual(logs.body.logs.map((l: { message: string }) => l.message), [
      "log line 1 of 3",
      "log line 2 of 3",
      "log line 3 of 3",
    ]);
  });

  await t.step(
    "http-bench runs against a local target and reports latency and resources",
    async () => {
      const created = await api(base, "/api/jobs", {
        method: "POST",
        json: {
          type: "http-bench",
          params: { url: `${target.url}/`, concurrency: 4, duration_s: 2 },
        },
      });
      assert.equal(created.status, 202);
      const done = await waitForJob(base, created.body.id);
      assert.equal(done.status, "succeeded", done.error);
      const r = done.result;
      assert.ok(r.requests > 100, `requests ${r.requests}`);
      assert.equal(r.status_counts["200"], r.requests);
      assert.equal(r.errors.total, 0);
      for (const p of ["p50", "p90", "p95", "p99", "max", "mean"]) {
        assert.ok(
          r.latency_ms[p] > 0,
          p,
        );
      }
      assert.ok(r.latency_ms.p50 <= r.latency_ms.p99 && r.latency_ms.p99 <= r.latency_ms.max);
      assert.ok(r.resources.samples >= 1, "resource samples taken");
      assert.ok(r.resources.cpu_cores_avg > 0);
      const samples = await waitFor(async () => {
        const s = await api(base, `/api/jobs/${created.body.id}/samples`);
        return s.body.samples.length >= 1 ? s.body.samples : null;
      }, { what: "samples in DuckDB" });
      assert.ok(samples[0].mem_used_bytes > 0);
      const events = await api(base, `/api/jobs/${created.body.id}/events?type=progress`);
      assert.ok(events.body.events.length >= 1, "one progress event per second");
      assert.ok(events.body.events.every((e: { value: number }) => e.value >= 0 && e.value <= 1));
    },
  );

  await t.step("GET /api/jobs lists newest first with filters and a cursor", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { body } = await api(base, "/api/jobs", {
        method: "POST",
        json: { type: "noop", params: {} },
      });
      ids.push(body.id);
    }
    for (const id of ids) await waitForJob(base, id);
    const seen: string[] = [];
    let cursor: string | null = null;
    await waitFor(async () => {
      const { body } = await api(base, "/api/jobs?type=noop&status=succeeded&limit=100");
      return ids.every((id) => body.jobs.some((j: { id: string }) => j.id === id));
    }, { what: "jobs in DuckDB" });
    do {
      const page: { body: { jobs: { id: string }[]; next_cursor: string | null } } = await api(
        base,
        `/api/jobs?type=noop&limit=2${cursor ? `&cursor=${cursor}` : ""}`,
      );
      assert.ok(page.body.jobs.length <= 2);
      seen.push(...page.body.jobs.map((j) => j.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    assert.equal(new Set(seen).size, seen.length, "no job twice across pages");
    const newestFirst = ids.slice().reverse();
    assert.deepEqual(seen.filter((id) => ids.includes(id)), newestFirst);
    const none = await api(
      base,
      `/api/jobs?type=noop&since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z`,
    );
    assert.deepEqual(none.body.jobs, []);
    const failedOnly = await api(base, "/api/jobs?status=failed");
    assert.ok(failedOnly.body.jobs.every((j: { status: string }) => j.status === "failed"));
  });

  await t.step("cancel stops a running job's Worker; cancel again is 409", async () => {
    const { body } = await api(base, "/api/jobs", {
      method: "POST",
      json: { type: "noop", params: { sleep_ms: 60_000 } },
    });
    await waitForJob(base, body.id, ["running"]);
    const cancelled = await api(base, `/api/jobs/${body.id}/cancel`, { method: "POST" });
    assert.equal(cancelled.status, 200);
    assert.equal(cancelled.body.status, "cancelled");
    const again = await api(base, `/api/jobs/${body.id}/cancel`, { method: "POST" });
    assert.equal(again.status, 409);
    assert.match(again.body.error, /already ended: cancelled/);
    // The slot is free again: a new job runs.
    const next = await api(base, "/api/jobs", {
      method: "POST",
      json: { type: "noop", params: {} },
    });
    assert.equal((await waitForJob(base, next.body.id)).status, "succeeded");
    assert.equal((await api(base, "/api/jobs/job_nope/cancel", { method: "POST" })).status, 404);
  });

  await t.step("a job over its timeout_s is terminated and fails with error timeout", async () => {
    const { body } = await api(base, "/api/jobs", {
      method: "POST",
      json: { type: "noop", params: { sleep_ms: 30_000 }, timeout_s: 1 },
    });
    const done = await waitForJob(base, body.id);
    assert.equal(done.status, "failed");
    assert.equal(done.error, "timeout");
  });

  await t.step(
    "a failing job is retried with backoff, then fails; fatal errors are not retried",
    async () => {
      const { body } = await api(base, "/api/jobs", {
        method: "POST",
        json: { type: "noop", params: { fail: true, message: "boom" }, max_attempts: 2 },
      });
      const done = await waitForJob(base, body.id);
      assert.equal(done.status, "failed");
      assert.equal(done.attempts, 2);
      assert.equal(done.error, "boom");
      const statuses = (await api(base, `/api/jobs/${body.id}/events?type=status`)).body.events
        .map((e: { status: string }) => e.status);
      assert.deepEqual(statuses, ["queued", "running", "retrying", "queued", "running", "failed"]);
      const fatal = await api(base, "/api/jobs", {
        method: "POST",
        json: { type: "noop", params: { fail: true, fatal: true }, max_attempts: 3 },
      });
      const f = await waitForJob(base, fatal.body.id);
      assert.equal(f.status, "failed");
      assert.equal(f.attempts, 1);
    },
  );

  await t.step("GET /ws/jobs/:id sends the history, then live events, then closes", async () => {
    const { body } = await api(base, "/api/jobs", {
      method: "POST",
      json: { type: "noop", params: { sleep_ms: 1500, logs: 2 } },
    });
    const ws = new WebSocket(`${base.replace("http", "ws")}/ws/jobs/${body.id}`);
    const received: { type: string; status?: string; id: string }[] = [];
    const closed = new Promise<number>((resolve) => (ws.onclose = (e) => resolve(e.code)));
    ws.onmessage = (e) => received.push(JSON.parse(e.data));
    assert.equal(await closed, 1000);
    const statuses = received.filter((e) => e.type === "status").map((e) => e.status);
    assert.deepEqual(statuses, ["queued", "running", "succeeded"]);
    assert.equal(received.filter((e) => e.type === "log").length, 2);
    assert.ok(received.some((e) => e.type === "result"));
    const ids = received.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, "no event twice");
    // A late viewer of a finished job gets the same events and a close.
    const late = new WebSocket(`${base.replace("http", "ws")}/ws/jobs/${body.id}`);
    const lateEvents: unknown[] = [];
    late.onmessage = (e) => lateEvents.push(JSON.parse(e.data));
    await new Promise((r) => (late.onclose = r));
    assert.equal(lateEvents.length, received.length);
    const unknown = await fetch(`${base}/ws/jobs/job_missing`, {
      headers: { upgrade: "websocket" },
    });
    assert.equal(unknown.status, 404);
    await unknown.body?.cancel();
  });

  await t.step("GET /api/stats counts by type and status with duration percentiles", async () => {
    const stats = await waitFor(async () => {
      const { body } = await api(base, "/api/stats");
      const noopDone = body.by_type_status.find((r: { type: string; status: string }) =>
        r.type === "noop" && r.status === "succeeded"
      );
      // 1 + 5 + 1 + 1 noop jobs succeeded in the steps above
      return noopDone?.count === 8 &&
          body.by_type_status.some((r: { type: string }) => r.type === "http-bench")
        ? body
        : null;
    }, { what: "stats to count every finished job" });
    const d = stats.duration_by_type.find((r: { type: string }) => r.type === "noop");
    assert.ok(d.p50_s >= 0 && d.p95_s >= d.p50_s);
    assert.ok(stats.per_day[0].day.match(/^\d{4}-\d{2}-\d{2}$/));
    assert.equal(
      stats.total,
      stats.by_type_status.reduce((a: number, r: { count: number }) => a + r.count, 0),
    );
  });

  await t.step("GET /api/jobs/export downloads CSV and Parquet", async () => {
    const csv = await fetch(`${base}/api/jobs/export?format=csv&type=noop`);
    assert.equal(csv.status, 200);
    assert.match(
      csv.headers.get("content-disposition")!,
      /attachment; filename="streamplay-jobs-.*\.csv"/,
    );
    const lines = (await csv.text()).trim().split("\n");
    assert.match(lines[0]!, /^id,type,status,params,result,error,attempts/);
    assert.ok(lines.slice(1).every((l) => l.includes(",noop,")));
    const parquet = await fetch(`${base}/api/jobs/export?format=parquet`);
    assert.equal(parquet.status, 200);
    const bytes = new Uint8Array(await parquet.arrayBuffer());
    assert.equal(new TextDecoder().decode(bytes.subarray(0, 4)), "PAR1");
    const bad = await api(base, "/api/jobs/export?format=xlsx");
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /format/);
  });

  await t.step("DELETE /api/jobs/:id removes a finished job; a running one is 409", async () => {
    const { body } = await api(base, "/api/jobs", {
      method: "POST",
      json: { type: "noop", params: {} },
    });
    await waitForJob(base, body.id);
    const del = await api(base, `/api/jobs/${body.id}`, { method: "DELETE" });
    assert.equal(del.status, 200);
    assert.equal((await api(base, `/api/jobs/${body.id}`)).status, 404);
    const running = await api(base, "/api/jobs", {
      method: "POST",
      json: { type: "noop", params: { sleep_ms: 10_000 } },
    });
    await waitForJob(base, running.body.id, ["running"]);
    assert.equal(
      (await api(base, `/api/jobs/${running.body.id}`, { method: "DELETE" })).status,
      409,
    );
    await api(base, `/api/jobs/${running.body.id}/cancel`, { method: "POST" });
  });

  await t.step("bad input gets a 4xx naming the field, never a 500", async () => {
    const post = (body: string | unknown, headers: Record<string, string> = {}) =>
      api(base, "/api/jobs", {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
    const cases: Array<[string, string | unknown, number, RegExp]> = [
      ["invalid JSON", "{not json", 400, /JSON/i],
      ["missing type", { params: {} }, 400, /^type/],
      [
        "unknown type",
        { type: "mine-bitcoin" },
        400,
        /^type: unknown job type "mine-bitcoin"; use one of noop, http-bench/,
      ],
      [
        "wrong type of field",
        { type: "http-bench", params: { url: "http://127.0.0.1/", concurrency: "ten" } },
        400,
        /^params\.concurrency/,
      ],
      [
        "out of range",
        { type: "http-bench", params: { url: "http://127.0.0.1/", concurrency: 5000 } },
        400,
        /^params\.concurrency/,
      ],
      [
        "zero duration",
        { type: "http-bench", params: { url: "http://127.0.0.1/", duration_s: 0 } },
        400,
        /^params\.duration_s/,
      ],
      [
        "unknown param",
        { type: "http-bench", params: { url: "http://127.0.0.1/", turbo: true } },
        400,
        /^params/,
      ],
      [
        "header injection",
        {
          type: "http-bench",
          params: { url: "http://127.0.0.1/", headers: { "X-A": "1\r\nHost: evil" } },
        },
        400,
        /^params\.headers\.X-A/,
      ],
      [
        "metadata address",
        { type: "http-bench", params: { url: "http://169.254.169.254/latest/meta-data/" } },
        400,
        /^params\.url: .* is refused: .*link-local or cloud metadata/,
      ],
      [
        "ftp scheme",
        { type: "http-bench", params: { url: "ftp://127.0.0.1/" } },
        400,
        /^params\.url: .*only http and https/,
      ],
      ["not a URL", { type: "http-bench", params: { url: "127.0.0.1" } }, 400, /^params\.url/],
      ["max_attempts out of range", { type: "noop", max_attempts: 0 }, 400, /^max_attempts/],
      ["unknown top-level field", { type: "noop", priority: 9 }, 400, /priority|Unrecognized/],
    ];
    for (const [name, body, status, pattern] of cases) {
      const res = await post(body);
      assert.equal(res.status, status, `${name}: ${JSON.stringify(res.body)}`);
      assert.match(res.body.error, pattern, name);
    }
    const huge = await post({ type: "noop", params: { message: "x".repeat(1_100_000) } });
    assert.equal(huge.status, 413);
    assert.match(huge.body.error, /1 MB/);
    const queries: Array<[string, RegExp]> = [
      ["/api/jobs?limit=0", /^query\.limit/],
      ["/api/jobs?limit=abc", /^query\.limit/],
      ["/api/jobs?status=bogus", /^query\.status/],
      ["/api/jobs?since=yesterday", /^query\.since/],
      ["/api/jobs?cursor=%%%", /^cursor/],
      ["/api/jobs?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", /^until/],
    ];
    for (const [path, pattern] of queries) {
      const res = await api(base, path);
      assert.equal(res.status, 400, path);
      assert.match(res.body.error, pattern, path);
    }
    const missing = await api(base, "/api/jobs/job_doesnotexist");
    assert.equal(missing.status, 404);
    assert.match(missing.body.error, /No job with id "job_doesnotexist"/);
    for (const sub of ["logs", "events", "samples"]) {
      assert.equal((await api(base, `/api/jobs/job_doesnotexist/${sub}`)).status, 404, sub);
    }
    assert.equal((await api(base, "/api/jobs/job_doesnotexist", { method: "DELETE" })).status, 404);
    const wrongType = await api(base, "/api/jobs", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: "type=noop",
    });
    assert.equal(wrongType.status, 415);
    assert.match(wrongType.body.error, /Content-Type: application\/json/);
    const route = await api(base, "/api/nothing-here");
    assert.equal(route.status, 404);
    assert.ok(!server.output().includes("request failed"), "no 500 was logged");
  });

  await t.step("OpenAPI document and docs page", async () => {
    const { status, body } = await api(base, "/openapi.json");
    assert.equal(status, 200);
    assert.equal(body.openapi, "3.1.0");
    for (
      const path of [
        "/api/jobs",
        "/api/jobs/{id}",
        "/api/jobs/{id}/cancel",
        "/api/health",
        "/api/stats",
      ]
    ) {
      assert.ok(body.paths[path], `documented: ${path}`);
    }
    assert.ok(body.components.schemas.HttpBenchParams, "job params schemas are documented");
    const docs = await fetch(`${base}/docs`);
    assert.equal(docs.status, 200);
    assert.match(await docs.text(), /swagger-ui/);
  });
});
