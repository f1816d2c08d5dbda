/**
 * Monitoring against real server processes: `/metrics` through promtool, `/api/pressure` flipping,
 * one anomaly alert for a failure burst (dashboard WebSocket and webhook), tokens, stored history,
 * and a worker process reporting through Redis.
 */
import assert from "node:assert/strict";
import { api, requirePackages, startRedis, startServer, waitFor, waitForJob } from "./helpers.ts";
import { openViewer, startPages } from "./session_helpers.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the samples of a Prometheus text exposition. */
function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((s) =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  );
  return found.reduce((a, s) => a + s.value, 0);
}

async function scrape(base: string, token?: string): Promise<{ text: string; samples: Sample[] }> {
  const res = await fetch(`${base}/metrics`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  return { text, samples: parseMetrics(text) };
}

async function promtool(text: string): Promise<{ code: number; output: string }> {
  requirePackages("prometheus");
  const child = new Deno.Command("promtool", {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const dec = new TextDecoder();
  return { code, output: dec.decode(stdout) + dec.decode(stderr) };
}

const submit = (base: string, params: Record<string, unknown>, extra = {}, token?: string) =>
  api(base, "/api/jobs", { method: "POST", json: { type: "noop", params, ...extra }, token });

Deno.test("GET /metrics passes promtool and counts exactly the jobs and sessions that ran", async (t) => {
  await using server = await startServer({
    env: { STREAMPLAY_CONCURRENCY: "4", STREAMPLAY_MAX_SESSIONS: "2" },
  });
  await using pages = startPages();
  const base = server.url;
  const ids: string[] = [];
  let sessionFrames = 0;

  await t.step("a mix of jobs: successes, failures, a retry and a cancel", async () => {
    for (let i = 0; i < 4; i++) ids.push((await submit(base, {})).body.id);
    for (let i = 0; i < 2; i++) {
      ids.push((await submit(base, { fail: true, fatal: true }, { max_attempts: 1 })).body.id);
    }
    ids.push((await submit(base, { fail: true }, { max_attempts: 2 })).body.id);
    const long = (await submit(base, { sleep_ms: 60_000 })).body.id;
    await waitForJob(base, long, ["running"]);
    assert.equal((await api(base, `/api/jobs/${long}/cancel`, { method: "POST" })).status, 200);
    ids.push(long);
    for (const id of ids) await waitForJob(base, id);
  });

  await t.step("a live session with two viewers shows in the session metrics", async () => {
    const res = await api(base, "/api/sessions", {
      method: "POST",
      json: { url: `${pages.url}/anim`, max_fps: 10 },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const viewers = [await openViewer(res.body.ws_url), await openViewer(res.body.ws_url)];
    let ended: Awaited<ReturnType<typeof api>>;
    try {
      await Promise.all(viewers.map((v) => v.waitFrames(5, 15_000)));
      // Session figures reach the metrics with the session's snapshot (once a second).
      const live = await waitFor(async () => {
        const { samples } = await scrape(base);
        return value(samples, "streamplay_session_viewers") === 2 &&
            value(samples, "streamplay_session_frames_sent_total") >= 10
          ? samples
          : null;
      }, { what: "2 viewers and the frames they got in the metrics" });
      assert.equal(value(live, "streamplay_sessions_active"), 1);
      assert.ok(value(live, "streamplay_session_frames_captured_total") >= 5);
      const health = value(live, "streamplay_session_buffer_health_ratio");
      assert.ok(health > 0 && health <= 1, `buffer health ${health}`);
    } finally {
      // Ended even when an assertion failed, so the later steps do not wait for it.
      ended = await api(base, `/api/sessions/${res.body.id}`, { method: "DELETE" });
      for (const v of viewers) await v.close();
    }
    assert.equal(ended.status, 200);
    sessionFrames = ended.body.metrics.frames_captured;
    assert.ok(sessionFrames >= 5);
    await waitForJob(base, res.body.id);
  });

  await t.step("promtool accepts the exposition and the counters match", async () => {
    // The cancelled job's Worker ends a moment after its status does.
    const { text, samples } = await waitFor(async () => {
      const s = await scrape(base);
      return value(s.samples, "streamplay_jobs_running") === 0 ? s : null;
    }, { what: "no job running" });
    const checked = await promtool(text);
    assert.equal(checked.code, 0, checked.output);
    assert.equal(checked.output.trim(), "", "no lint findings");

    const jobs = (status: string) =>
      value(samples, "streamplay_jobs_total", { type: "noop", status });
    assert.equal(jobs("queued"), 9, "8 submitted + 1 put back after the retry backoff");
    assert.equal(jobs("running"), 9, "8 first attempts + 1 retry");
    assert.equal(jobs("succeeded"), 4);
    assert.equal(jobs("retrying"), 1);
    assert.equal(jobs("failed"), 3);
    assert.equal(jobs("cancelled"), 1);
    assert.equal(value(samples, "streamplay_queue_depth", { type: "noop" }), 0);
    assert.equal(value(samples, "streamplay_dead_letter_jobs"), 3);

    const wait = "streamplay_job_queue_wait_seconds_count";
    assert.equal(value(samples, wait, { type: "noop" }), 9);
    const run = (outcome: string) =>
      value(samples, "streamplay_job_run_seconds_count", { type: "noop", outcome });
    assert.equal(run("succeeded"), 4);
    assert.equal(run("failed"), 4, "2 fatal + 2 attempts of the retried job");
    assert.equal(run("cancelled"), 1);
    assert.ok(
      value(samples, "streamplay_job_run_seconds_bucket", { type: "noop", le: "+Inf" }) === 9,
    );

    assert.equal(
      value(samples, "streamplay_jobs_total", { type: "session", status: "succeeded" }),
      1,
    );
    assert.equal(value(samples, "streamplay_sessions_active"), 0);
    assert.equal(value(samples, "streamplay_session_viewers"), 0);
    assert.equal(
      value(samples, "streamplay_session_frames_captured_total"),
      sessionFrames,
      "an ended session's frames stay counted",
    );
    // Every slot: 4 shared, 2 for sessions, 2 for replays (as /api/health counts them).
    assert.equal(value(samples, "streamplay_worker_slots"), 8);
    assert.equal((await api(base, "/api/health")).body.workers.slots, 8);
    assert.equal(value(samples, "streamplay_worker_processes"), 1);
    assert.equal(value(samples, "streamplay_redis_up"), 1);
    assert.equal(value(samples, "streamplay_duckdb_up"), 1);
    assert.ok(value(samples, "process_cpu_seconds_total") > 0);
    assert.ok(value(samples, "process_resident_memory_bytes") > 10_000_000);

    const posts = value(samples, "streamplay_http_requests_total", {
      method: "POST",
      route: "/api/jobs",
      status: "202",
    });
    assert.equal(posts, 8);
    assert.ok(
      value(samples, "streamplay_http_requests_total", { route: "/api/jobs/:id" }) >= 9,
      "requests by route pattern",
    );
    const ids = samples.flatMap((s) => Object.values(s.labels)).filter((v) => /job_/.test(v));
    assert.deepEqual(ids, [], "no job id in any label");
  });
});

Deno.test("/api/pressure flips to 503 at the running limit and back when free", async (t) => {
  await using server = await startServer({
    env: { STREAMPLAY_CONCURRENCY: "2", STREAMPLAY_MAX_QUEUED: "0" },
  });
  const base = server.url;
  const plain = async () => {
    const res = await fetch(`${base}/api/pressure`, { headers: { accept: "text/plain" } });
    return { status: res.status, text: await res.text() };
  };

  await t.step("available: 200 OK for a load balancer, JSON for people", async () => {
    assert.deepEqual(await plain(), { status: 200, text: "OK" });
    const { status, body } = await api(base, "/api/pressure");
    assert.equal(status, 200);
    assert.equal(body.is_available, true);
    assert.equal(body.reason, "");
    assert.equal(body.max_concurrent, 2);
    assert.equal(body.max_queued, 0);
    assert.ok(body.cpu >= 0 && body.memory > 0);
  });

  const busy: string[] = [];
  await t.step("two long jobs fill the slots: 503 and new jobs get 429", async () => {
    for (let i = 0; i < 2; i++) {
      const r = await submit(base, { sleep_ms: 4_000 });
      assert.equal(r.status, 202);
      busy.push(r.body.id);
    }
    const refused = await waitFor(async () => {
      const p = await plain();
      return p.status === 503 ? p : null;
    }, { what: "pressure 503" });
    assert.match(refused.text, /^full: The platform is full: \d jobs running in 2 worker slots/);
    // Within a second the snapshot shows both running.
    const body = await waitFor(async () => {
      const r = await api(base, "/api/pressure");
      return r.body.running === 2 ? r.body : null;
    }, { what: "2 running" });
    assert.equal(body.is_available, false);
    assert.equal(body.reason, "full");
    assert.equal(body.queued, 0);
    const extra = await submit(base, {});
    assert.equal(extra.status, 429);
    assert.equal(extra.body.details.reason, "full");
    assert.match(extra.body.error, /full.*retry later/);
    assert.equal(extra.headers.get("retry-after"), "5");
  });

  await t.step("the jobs end: back to 200 and jobs are accepted", async () => {
    for (const id of busy) await waitForJob(base, id);
    await waitFor(async () => (await plain()).status === 200, { what: "pressure 200" });
    assert.equal((await submit(base, {})).status, 202);
    const m = await scrape(base);
    assert.equal(value(m.samples, "streamplay_rejected_total", { reason: "full" }), 1);
  });
});

Deno.test("a failure burst raises exactly one anomaly_alert, on the WebSocket and the webhook", async (t) => {
  const calls: Json[] = [];
  const hook = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    calls.push(await req.json());
    // The first delivery fails: the platform must retry it.
    return new Response(null, { status: calls.length === 1 ? 503 : 204 });
  });
  await using server = await startServer({
    env: {
      STREAMPLAY_CONCURRENCY: "4",
      STREAMPLAY_ANOMALY_MIN_DURATION_S: "2",
      STREAMPLAY_ANOMALY_SERIES: "job_failure_rate,queue_wait_s",
      STREAMPLAY_ALERT_WEBHOOK: `http://127.0.0.1:${hook.addr.port}/hooks/secret-path`,
      STREAMPLAY_METRICS_INTERVAL_S: "1",
    },
  });
  const base = server.url;
  const messages: Json[] = [];
  const ws = new WebSocket(`${base.replace("http", "ws")}/ws/dashboard`);
  ws.onmessage = (e) => messages.push(JSON.parse(e.data));
  const of = (type: string) => messages.filter((m) => m.type === type);

  try {
    await t.step("metrics_update arrives every second with the series", async () => {
      // The detector's warm-up is 10 samples (3 × the 2 s minimum duration, at least 10).
      await waitFor(() => of("metrics_update").length >= 11, {
        timeoutMs: 30_000,
        what: "11 metrics updates",
      });
      const updates = of("metrics_update");
      const last = updates[updates.length - 1];
      assert.ok("cpu_percent" in last.values && "job_failure_rate" in last.values);
      assert.equal(last.values.job_failure_rate, 0);
      const gaps = updates.slice(-5).map((u: Json, i: number, a: Json[]) =>
        i ? Date.parse(u.ts) - Date.parse(a[i - 1].ts) : 1000
      );
      assert.ok(gaps.every((g: number) => g > 500 && g < 2500), `gaps ${gaps}`);
      assert.deepEqual(of("anomaly_alert"), []);
    });

    const burst: string[] = [];
    await t.step(
      "20 jobs that fail on purpose give exactly one alert in bounded time",
      async () => {
        const started = Date.now();
        for (let i = 0; i < 20; i++) {
          const r = await submit(base, { fail: true, fatal: true, message: "boom" }, {
            max_attempts: 1,
          });
          burst.push(r.body.id);
        }
        const [alert] = await waitFor(
          () => of("anomaly_alert").length ? of("anomaly_alert") : null,
          {
            timeoutMs: 15_000,
            what: "an anomaly_alert",
          },
        );
        assert.ok(Date.now() - started < 15_000);
        assert.equal(alert.series, "job_failure_rate");
        assert.equal(alert.direction, "high");
        assert.ok(alert.value > alert.expected_high, JSON.stringify(alert));
        assert.equal(alert.expected_low, 0);
        assert.ok(Date.parse(alert.since) <= Date.parse(alert.detected_at));
        assert.match(alert.message, /^job_failure_rate is .* above the expected .* since /);
        // It stays open and is not raised again.
        await new Promise((r) => setTimeout(r, 4_000));
        assert.equal(of("anomaly_alert").length, 1);
        const latest = of("metrics_update").at(-1);
        assert.deepEqual(latest.alerts.map((a: Json) => a.id), [alert.id]);
      },
    );

    await t.step("the webhook got the alert, retried once after a failure", async () => {
      const alertId = of("anomaly_alert")[0].id;
      await waitFor(() => calls.length >= 2, { timeoutMs: 10_000, what: "the retried webhook" });
      assert.deepEqual(calls.map((c) => [c.type, c.id]), [
        ["anomaly_alert", alertId],
        ["anomaly_alert", alertId],
      ]);
      assert.doesNotMatch(server.output(), /secret-path/, "the webhook path is never logged");
    });

    await t.step("the feed showed the failures and analytics stores the alert", async () => {
      const failed = of("content_change").filter((c) => c.action === "failed");
      assert.ok(failed.length >= 1, "failed changes on the feed");
      assert.equal(failed[0].kind, "job");
      assert.ok(burst.includes(failed[0].id));
      assert.equal(failed[0].error, "boom");
      const { body } = await api(base, "/api/analytics");
      const id = of("anomaly_alert")[0].id;
      assert.deepEqual(body.anomalies.active.map((a: Json) => a.id), [id]);
      assert.ok(body.anomalies.recent.some((a: Json) => a.id === id), "stored in DuckDB");
      assert.equal(body.forecasts.length, 3);
      const m = await scrape(base);
      assert.equal(value(m.samples, "streamplay_anomaly_alerts_total"), 1);
      assert.equal(
        value(m.samples, "streamplay_alert_webhook_deliveries_total", { result: "delivered" }),
        1,
      );
    });
  } finally {
    ws.close();
    await hook.shutdown();
  }
});

Deno.test("tokens protect /metrics; pressure can be public; memory over its limit is a 503", async (t) => {
  const admin = "admin-token-1";
  const viewer = "viewer-token-1";
  await using server = await startServer({
    env: {
      STREAMPLAY_TOKENS: `ops:${admin}:admin,prom:${viewer}:viewer`,
      STREAMPLAY_PUBLIC_PRESSURE: "true",
      STREAMPLAY_MAX_MEMORY_PERCENT: "1",
      STREAMPLAY_METRICS_INTERVAL_S: "1",
    },
  });
  const base = server.url;

  await t.step("/metrics needs a token; a viewer's will do", async () => {
    assert.equal((await fetch(`${base}/metrics`).then((r) => (r.body?.cancel(), r))).status, 401);
    await scrape(base, viewer);
  });

  await t.step("/api/pressure answers without a token; the rest of /api does not", async () => {
    const { status, body } = await api(base, "/api/pressure");
    assert.equal(status, 200);
    assert.equal(body.reason, "memory");
    assert.match(body.message, /over STREAMPLAY_MAX_MEMORY_PERCENT=1$/);
    const plain = await fetch(`${base}/api/pressure`, { headers: { accept: "text/plain" } });
    assert.equal(plain.status, 503);
    assert.match(await plain.text(), /^memory: /);
    assert.equal((await api(base, "/api/jobs")).status, 401);
    assert.equal((await api(base, "/api/metrics/series")).status, 401);
  });

  await t.step("a new job is refused with 503 naming memory", async () => {
    const r = await submit(base, {}, {}, admin);
    assert.equal(r.status, 503);
    assert.equal(r.body.details.reason, "memory");
    assert.equal(r.headers.get("retry-after"), "10");
  });

  await t.step("the dashboard WebSocket needs a token too", async () => {
    const res = await fetch(`${base}/ws/dashboard`, { headers: { upgrade: "websocket" } });
    await res.body?.cancel();
    assert.equal(res.status, 401);
  });

  await t.step("history is stored and downsampled in DuckDB", async () => {
    const since = new Date(Date.now() - 60_000).toISOString();
    const body = await waitFor(async () => {
      const r = await api(
        base,
        `/api/metrics/history?series=memory_percent,jobs_queued&since=${since}&step=2s`,
        { token: viewer },
      );
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body.series.memory_percent.filter((v: number | null) => v !== null).length >= 2
        ? r.body
        : null;
    }, { what: "two stored buckets" });
    assert.equal(body.step_s, 2);
    assert.equal(body.timestamps.length, body.series.memory_percent.length);
    assert.equal(Date.parse(body.timestamps[1]) - Date.parse(body.timestamps[0]), 2000);
    assert.ok(body.series.memory_percent.some((v: number | null) => v !== null && v > 1));
    const catalog = await api(base, "/api/metrics/series", { token: viewer });
    const names = catalog.body.series.map((s: Json) => s.name);
    assert.ok(names.includes("job_failure_rate") && names.includes("stream_bitrate_bps"));
  });

  await t.step("bad history queries get a 400 naming the field", async () => {
    const bad = async (query: string, field: RegExp) => {
      const r = await api(base, `/api/metrics/history?${query}`, { token: viewer });
      assert.equal(r.status, 400, query);
      assert.match(r.body.error, field);
    };
    await bad("series=nope", /^series: "nope" is not a series/);
    await bad("", /^query\.series/);
    await bad("series=cpu_percent&since=yesterday", /^query\.since/);
    await bad(
      "series=cpu_percent&since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
      /^until: must be later than since/,
    );
    await bad("series=cpu_percent&step=0", /^step: "0" is not a duration/);
    await bad("series=cpu_percent&step=abc", /^step: "abc"/);
    await bad(
      "series=cpu_percent&since=2026-01-01T00:00:00Z&until=2026-01-08T00:00:00Z&step=1s",
      /^step: 1 s gives more than 10000 points/,
    );
    await bad("series=cpu_percent&agg=median", /^query\.agg/);
  });
});

Deno.test("a worker process on its own reports its slots and job metrics through Redis", async (t) => {
  await using redis = await startRedis();
  await using apiServer = await startServer({
    env: { REDIS_URL: redis.url, STREAMPLAY_CONCURRENCY: "0" },
  });
  const base = apiServer.url;
  const worker = await startServer({
    role: "worker",
    env: { REDIS_URL: redis.url, STREAMPLAY_CONCURRENCY: "3", STREAMPLAY_MAX_SESSIONS: "1" },
  });

  try {
    await t.step("its slots appear in /metrics and the pressure", async () => {
      await waitFor(async () => {
        const { samples } = await scrape(base);
        // 3 shared slots, 1 for sessions, 1 for replays.
        return value(samples, "streamplay_worker_slots") === 5 &&
          value(samples, "streamplay_worker_processes") === 1;
      }, { what: "the worker's report" });
      // The pressure follows within a second (it is judged on the monitor's tick); it counts
      // the shared slots, which queued jobs wait for.
      await waitFor(async () => (await api(base, "/api/pressure")).body.max_concurrent === 3, {
        what: "pressure with the worker's slots",
      });
    });

    await t.step("the jobs it runs are in the API's histograms", async () => {
      const ids = [];
      for (let i = 0; i < 5; i++) ids.push((await submit(base, {})).body.id);
      for (const id of ids) await waitForJob(base, id);
      await waitFor(async () => {
        const { samples } = await scrape(base);
        return value(samples, "streamplay_job_run_seconds_count", { outcome: "succeeded" }) === 5 &&
          value(samples, "streamplay_job_queue_wait_seconds_count") === 5;
      }, { what: "the worker's histograms" });
    });

    await t.step("when it stops, its slots go and its counts stay", async () => {
      await worker.stop();
      await waitFor(async () => {
        const { samples } = await scrape(base);
        return value(samples, "streamplay_worker_slots") === 0 ? samples : null;
      }, { what: "slots gone" });
      const { samples } = await scrape(base);
      assert.equal(
        value(samples, "streamplay_job_run_seconds_count", { outcome: "succeeded" }),
        5,
        "counters never go down",
      );
      await waitFor(async () => (await api(base, "/api/pressure")).body.max_concurrent === 0, {
        what: "pressure without the worker's slots",
      });
    });
  } finally {
    await worker[Symbol.asyncDispose]();
  }
});

Deno.test("a fresh server's /metrics has every job type's series at 0, so the first failure shows", async () => {
  await using server = await startServer();
  const { text, samples } = await scrape(server.url);
  const check = await promtool(text);
  assert.equal(check.code, 0, check.output);
  const types = ["noop", "http-bench", "browser-bench", "session", "replay", "function"];
  for (const type of types) {
    for (const status of ["queued", "running", "retrying", "succeeded", "failed", "cancelled"]) {
      const series = samples.filter((s) =>
        s.name === "streamplay_jobs_total" && s.labels.type === type && s.labels.status === status
      );
      assert.deepEqual(series.map((s) => s.value), [0], `jobs_total ${type} ${status}`);
    }
    for (const outcome of ["succeeded", "failed", "cancelled", "requeued"]) {
      const count = samples.filter((s) =>
        s.name === "streamplay_job_run_seconds_count" && s.labels.type === type &&
        s.labels.outcome === outcome
      );
      assert.deepEqual(count.map((s) => s.value), [0], `job_run_seconds ${type} ${outcome}`);
    }
    assert.deepEqual(
      samples.filter((s) => s.name === "streamplay_queue_depth" && s.labels.type === type)
        .map((s) => s.value),
      [0],
    );
    assert.equal(
      samples.filter((s) => s.name === "streamplay_jobs_running" && s.labels.type === type).length,
      1,
    );
  }
  // The first failure moves the series from 0 to 1, which increase() sees.
  const failed = await submit(server.url, { fail: true, fatal: true }, { max_attempts: 1 });
  await waitForJob(server.url, failed.body.id);
  const after = await waitFor(async () => {
    const { samples } = await scrape(server.url);
    return value(samples, "streamplay_jobs_total", { type: "noop", status: "failed" }) === 1
      ? samples
      : null;
  }, { what: "the failure counted" });
  assert.equal(
    value(after, "streamplay_job_run_seconds_count", { type: "noop", outcome: "failed" }),
    1,
  );
});
