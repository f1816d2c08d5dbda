/**
 * A function with a browser takes the context and page its Worker made ahead: the page is older
 * than the job, nothing the last function left is in it, and its proxy serves this job.
 */
import assert from "node:assert/strict";
import { api, startRedis, startServer, uniquePrefix, waitForJob } from "./helpers.ts";
import { startPages } from "./session_helpers.ts";

Deno.test("a page function takes a fresh page made ahead of it, with a proxy of its own", async (t) => {
  await using redis = await startRedis();
  await using pages = startPages();
  await using server = await startServer({
    env: {
      REDIS_URL: redis.url,
      STREAMPLAY_REDIS_PREFIX: uniquePrefix(),
      STREAMPLAY_DENY_HOSTS: "127.0.0.2",
    },
  });
  const base = server.url;
  const denied = `http://127.0.0.2:${new URL(pages.url).port}/`;
  const run = async (code: string, extra: Record<string, unknown> = {}) => {
    const params = { code, browser: true, params: { url: pages.url, denied }, ...extra };
    const res = await api(base, "/api/jobs", {
      method: "POST",
      json: { type: "function", params, max_attempts: 1 },
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const job = await waitForJob(base, res.body.id, undefined, { timeoutMs: 60_000 });
    assert.equal(job.status, "succeeded", job.error);
    return job;
  };
  const blockedEvents = async (id: string) =>
    (await api(base, `/api/jobs/${id}/events?type=request_blocked`)).body.events;
  // Reports when its blank page was made, then what the page holds and whether a denied host loads.
  const probe = `export default async ({ page, params }) => {
    const born = await page.evaluate(() => performance.timeOrigin);
    const size = await page.evaluate(() => ({ width: innerWidth, height: innerHeight }));
    await page.goto(params.url);
    const left = await page.evaluate(() => [document.cookie, localStorage.getItem("k")]);
    await page.evaluate(() => { document.cookie = "k=1; max-age=600"; localStorage.setItem("k", "1"); });
    const load = await page.goto(params.denied).then(() => "loaded", (e) => e.message);
    return { born, size, left, load };
  }`;

  const first = await run(probe);
  assert.deepEqual(first.result.left, ["", null]);
  // Chromium may try a refused connection more than once: each try is an event.
  const firstBlocked = (await blockedEvents(first.id)).length;
  assert.ok(firstBlocked >= 1, "the first job's own refusal");
  // The Worker makes the next context once a function ends; give it time to.
  await new Promise((r) => setTimeout(r, 1_000));

  const second = await run(probe);
  await t.step("the next function's page was made before its job started", () => {
    assert.ok(
      second.result.born < Date.parse(second.started_at),
      `page made at ${second.result.born}, job started at ${second.started_at}`,
    );
  });
  await t.step("it is a new context: no cookie or storage from the last function", () => {
    assert.deepEqual(second.result.left, ["", null]);
  });
  await t.step("its proxy applies the policy and reports to this job", async () => {
    assert.match(second.result.load, /ERR_SOCKS_CONNECTION_FAILED|ERR_PROXY/);
    const events = await blockedEvents(second.id);
    assert.ok(events.length >= 1, "the refusal is this job's event");
    for (const e of events) assert.equal(e.target, `127.0.0.2:${new URL(pages.url).port}`);
    assert.equal((await blockedEvents(first.id)).length, firstBlocked, "none on the last job");
  });

  await new Promise((r) => setTimeout(r, 1_000));
  await t.step("a function of another size gets a page made for it", async () => {
    const viewport = { width: 800, height: 600 };
    const other = await run(probe, { viewport });
    assert.deepEqual(other.result.size, viewport);
    assert.ok(other.result.born >= Date.parse(other.started_at), "made after the job started");
  });
});
