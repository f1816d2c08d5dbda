/**
 * Named functions over the REST API on a real server: versions, checks at upload, roles,
 * invocation with and without waiting, logs, artifacts, events over the WebSocket, retries,
 * cancel; and schedules that run each tick once with two platform processes on one Redis.
 */
import assert from "node:assert/strict";
import { api, startRedis, startServer, uniquePrefix, waitFor, waitForJob } from "./helpers.ts";

const TOKENS = {
  viewer: "viewer-token-1",
  operator: "operator-token-1",
  admin: "admin-token-1",
};

Deno.test("functions: versions, checks, roles, invoke, logs, artifacts, retries, cancel", async (t) => {
  await using server = await startServer({
    env: {
      STREAMPLAY_TOKENS: Object.entries(TOKENS).map(([role, token]) => `${role}:${token}:${role}`)
        .join(","),
    },
  });
  const base = server.url;
  const as = (role: keyof typeof TOKENS, path: string, init: Parameters<typeof api>[2] = {}) =>
    api(base, path, { ...init, token: TOKENS[role] });
  const put = (name: string, json: unknown, role: keyof typeof TOKENS = "operator") =>
    as(role, `/api/functions/${name}`, { method: "PUT", json });

  await t.step("PUT refuses a syntax error with a 400 naming the line", async () => {
    const res = await put("broken", {
      code: "export default async () => {\n  const x = 1;\n  return x +;\n};\n",
      browser: false,
    });
    assert.equal(res.status, 400);
    assert.match(res.body.error, /^code: line 3, column 13: Expression expected/);
  });

  await t.step(
    "PUT refuses a module without a default export, a bad schedule or name",
    async () => {
      const noDefault = await put("nodefault", { code: "export const f = () => 1;" });
      assert.equal(noDefault.status, 400);
      assert.match(noDefault.body.error, /^code: the module has no default export/);
      const schedule = await put("sched", {
        code: "export default () => 1",
        schedule: "61 * * * *",
      });
      assert.equal(schedule.status, 400);
      assert.match(schedule.body.error, /^schedule: .*minute/);
      const name = await put("-bad", { code: "export default () => 1" });
      assert.equal(name.status, 400);
      assert.match(name.body.error, /^name: must be 1-63/);
    },
  );

  await t.step("viewers read, operators store and invoke, admins delete", async () => {
    const code = "export default () => 1";
    assert.equal((await put("roles", { code, browser: false }, "viewer")).status, 403);
    assert.equal((await put("roles", { code, browser: false })).status, 201);
    assert.equal((await as("viewer", "/api/functions/roles")).status, 200);
    assert.equal(
      (await as("viewer", "/api/functions/roles/invoke", { method: "POST" })).status,
      403,
    );
    assert.equal((await as("operator", "/api/functions/roles", { method: "DELETE" })).status, 403);
    assert.equal((await as("admin", "/api/functions/roles", { method: "DELETE" })).status, 200);
    assert.equal((await as("viewer", "/api/functions/roles")).status, 404);
    assert.equal((await as("admin", "/api/functions/roles", { method: "DELETE" })).status, 404);
  });

  const greet = `interface Params { name: string }
export default async ({ params, log, artifacts }: { params: Params; log: (m: string) => void;
  artifacts: { save(name: string, data: string): Promise<void> } }) => {
  console.log("greeting", params.name);
  log("saving the card");
  await artifacts.save("card.txt", \`Hello, \${params.name}!\`);
  return { greeting: \`Hello, \${params.name}!\`, version: VERSION };
};
const VERSION: number = 1;
`;

  await t.step("each PUT stores a new version; GET lists them newest first", async () => {
    const v1 = await put("greet", { code: greet, browser: false, timeout_s: 20 });
    assert.equal(v1.status, 201, JSON.stringify(v1.body));
    assert.equal(v1.body.version, 1);
    assert.equal(v1.body.code, greet);
    const v2 = await put("greet", {
      code: greet.replace("VERSION: number = 1", "VERSION: number = 2"),
      browser: false,
      timeout_s: 20,
    });
    assert.equal(v2.body.version, 2);
    const list = await as("viewer", "/api/functions");
    assert.equal(list.status, 200);
    assert.deepEqual(
      list.body.functions.map((f: { name: string; version: number }) => [f.name, f.version]),
      [["greet", 2]],
    );
    const versions = await as("viewer", "/api/functions/greet");
    assert.deepEqual(versions.body.versions.map((v: { version: number }) => v.version), [2, 1]);
  });

  let runId = "";
  await t.step(
    "invoke ?wait= answers the result inline; its logs and artifact are the job's",
    async () => {
      const res = await as("operator", "/api/functions/greet/invoke?wait=30", {
        method: "POST",
        json: { params: { name: "Ada" } },
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.status, "succeeded");
      assert.deepEqual(res.body.result, { greeting: "Hello, Ada!", version: 2 });
      assert.deepEqual(res.body.params.function, { name: "greet", version: 2 });
      runId = res.body.id;
      const logs = await waitFor(async () => {
        const { body } = await as("viewer", `/api/jobs/${runId}/logs`);
        return body.logs.length === 2 ? body.logs : null;
      }, { what: "the run's two log lines" });
      assert.deepEqual(logs.map((l: { message: string }) => l.message), [
        "greeting Ada",
        "saving the card",
      ]);
      const { body } = await as("viewer", `/api/jobs/${runId}/artifacts`);
      assert.deepEqual(body.artifacts.map((a: { path: string }) => a.path), ["files/card.txt"]);
      const card = await fetch(`${base}${body.artifacts[0].url}`, {
        headers: { authorization: `Bearer ${TOKENS.viewer}` },
      });
      assert.equal(await card.text(), "Hello, Ada!");
    },
  );

  await t.step(
    "invoke without a wait answers 202; a version can be named; unknown is 404",
    async () => {
      const res = await as("operator", "/api/functions/greet/invoke", {
        method: "POST",
        json: { params: { name: "Grace" }, version: 1 },
      });
      assert.equal(res.status, 202);
      assert.equal(res.body.status, "queued");
      const job = await waitForJob(base, res.body.id, undefined, { token: TOKENS.viewer });
      assert.deepEqual(job.result, { greeting: "Hello, Grace!", version: 1 });
      const missing = await as("operator", "/api/functions/nope/invoke", { method: "POST" });
      assert.equal(missing.status, 404);
      const noVersion = await as("operator", "/api/functions/greet/invoke", {
        method: "POST",
        json: { version: 9 },
      });
      assert.equal(noVersion.status, 404);
      assert.match(noVersion.body.error, /has no version 9/);
    },
  );

  await t.step("a run's events come over the job WebSocket up to its final status", async () => {
    const ws = new WebSocket(
      `${base.replace("http", "ws")}/ws/jobs/${runId}?token=${TOKENS.viewer}`,
    );
    const types: string[] = [];
    await new Promise<void>((resolve, reject) => {
      ws.onmessage = (e) => types.push(JSON.parse(e.data).type);
      ws.onclose = () => resolve();
      ws.onerror = () => reject(new Error("WebSocket failed"));
    });
    assert.ok(types.includes("log"), types.join());
    assert.ok(types.includes("artifact"), types.join());
    assert.equal(types.at(-1), "status");
  });

  await t.step("an artifact named out of its directory is refused to the function", async () => {
    await put("escape", {
      code: `export default async ({ artifacts }) => {
        try { await artifacts.save("../escape.txt", "x"); } catch (e) { return e.message; }
      }`,
      browser: false,
    });
    const res = await as("operator", "/api/functions/escape/invoke?wait=30", { method: "POST" });
    assert.match(res.body.result, /artifact name "\.\.\/escape\.txt" must be 1-128 of/);
    const { body } = await as("viewer", `/api/jobs/${res.body.id}/artifacts`);
    assert.deepEqual(body.artifacts, []);
  });

  await t.step("a function that throws is retried up to max_attempts", async () => {
    await put("flaky", {
      code: `export default () => { throw new Error("not today"); }`,
      browser: false,
    });
    const res = await as("operator", "/api/functions/flaky/invoke", {
      method: "POST",
      json: { max_attempts: 2 },
    });
    const job = await waitForJob(base, res.body.id, undefined, {
      token: TOKENS.viewer,
      timeoutMs: 30_000,
    });
    assert.equal(job.status, "failed");
    assert.equal(job.attempts, 2);
    assert.match(job.error, /^Error: not today\n\s+at default \(function\.ts:1:/);
  });

  await t.step("a running function is cancelled at once", async () => {
    await put("sleeper", {
      code: `export default () => new Promise((r) => setTimeout(r, 60_000))`,
      browser: false,
    });
    const res = await as("operator", "/api/functions/sleeper/invoke", { method: "POST" });
    await waitForJob(base, res.body.id, ["running"], { token: TOKENS.viewer });
    const started = Date.now();
    const cancel = await as("operator", `/api/jobs/${res.body.id}/cancel`, { method: "POST" });
    assert.equal(cancel.status, 200);
    const job = await waitForJob(base, res.body.id, undefined, { token: TOKENS.viewer });
    assert.equal(job.status, "cancelled");
    assert.ok(Date.now() - started < 10_000);
  });
});

Deno.test("a scheduled function runs each tick once across two platform processes", async () => {
  await using redis = await startRedis();
  const env = { REDIS_URL: redis.url, STREAMPLAY_REDIS_PREFIX: uniquePrefix() };
  await using api1 = await startServer({ env });
  await using worker = await startServer({ env, role: "worker" });
  assert.ok(worker.output().includes("worker pool started"));
  const base = api1.url;
  const res = await api(base, "/api/functions/every-second", {
    method: "PUT",
    json: {
      code: "export default () => new Date().toISOString()",
      browser: false,
      schedule: "* * * * * *",
    },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const setAt = Date.parse(res.body.created_at);
  await new Promise((r) => setTimeout(r, 5_000));
  assert.equal((await api(base, "/api/functions/every-second", { method: "DELETE" })).status, 200);
  const deletedAt = Date.now();
  await new Promise((r) => setTimeout(r, 1_500));
  const runs = await waitFor(async () => {
    const { body } = await api(base, "/api/jobs?type=function&limit=100");
    const jobs = body.jobs as Array<
      { status: string; worker: string; params: { function: { tick: string } } }
    >;
    return jobs.length > 0 && jobs.every((j) => j.status === "succeeded") ? jobs : null;
  }, { what: "the scheduled runs to finish" });
  const ticks = runs.map((j) => j.params.function.tick).sort();
  assert.equal(new Set(ticks).size, ticks.length, `a tick ran twice: ${ticks.join(" ")}`);
  assert.ok(ticks.length >= 4, `${ticks.length} runs in 5 s`);
  for (const tick of ticks) {
    assert.ok(Date.parse(tick) > setAt && Date.parse(tick) <= deletedAt, `${tick} out of range`);
  }
  for (let i = 1; i < ticks.length; i++) {
    assert.equal(Date.parse(ticks[i]!) - Date.parse(ticks[i - 1]!), 1000, "a tick was skipped");
  }
});
