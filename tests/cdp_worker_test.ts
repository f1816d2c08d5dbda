/**
 * CDP clients of a session that a separate worker process runs, with tokens on: the API's
 * `/cdp` passes the client on to the worker (with its token), the session's `cdp_url` points at
 * the worker, which checks tokens itself, and a client leaving ends the session it opened.
 */
import assert from "node:assert/strict";
import { loadPlaywright } from "../lib/core/playwright.ts";
import { api, freePort, startRedis, startServer, uniquePrefix, waitFor } from "./helpers.ts";
import { type Json, startPages } from "./session_helpers.ts";

const OPERATOR = "operator-token-1";

const { chromium } = await loadPlaywright();

Deno.test("CDP clients of a session on a worker process", async (t) => {
  await using redis = await startRedis();
  await using pages = startPages();
  const shared = {
    REDIS_URL: redis.url,
    STREAMPLAY_REDIS_PREFIX: uniquePrefix(),
    STREAMPLAY_TOKENS: `ops:${OPERATOR}:operator`,
  };
  await using server = await startServer({ env: { ...shared, STREAMPLAY_CONCURRENCY: "0" } });
  const workerPort = freePort();
  await using _worker = await startServer({ role: "worker", port: workerPort, env: shared });
  const base = server.url;
  const get = (path: string) => api(base, path, { token: OPERATOR });
  let session: Json;

  await t.step("the API's /cdp reaches a session the worker runs", async () => {
    const browser = await chromium.connectOverCDP(
      `${base.replace(/^http/, "ws")}/cdp?token=${OPERATOR}`,
    );
    [session] = (await get("/api/sessions")).body.sessions;
    assert.equal(session.node, `http://127.0.0.1:${workerPort}`);
    assert.equal(session.cdp_url, `ws://127.0.0.1:${workerPort}/cdp/${session.id}`);
    const page = await browser.contexts()[0]!.newPage();
    await page.goto(`${pages.url}/`);
    await page.click("#b");
    assert.equal(await page.title(), "clicked");

    const direct = await chromium.connectOverCDP(`${session.cdp_url}?token=${OPERATOR}`);
    const urls = direct.contexts()[0]!.pages().map((p) => p.url());
    assert.ok(urls.includes(`${pages.url}/`), `the worker serves it too: ${urls}`);
    await direct.close();
    const anonymous = await fetch(session.cdp_url.replace(/^ws/, "http"), {
      headers: { upgrade: "websocket" },
    });
    assert.equal(anonymous.status, 401, "the worker checks tokens");
    await anonymous.body?.cancel();

    await browser.close();
    const ended = await waitFor(async () => {
      const { body } = await get(`/api/sessions/${session.id}`);
      return body.active ? null : body;
    }, { timeoutMs: 20_000, what: "the session to end" });
    assert.equal(ended.reason, "client_disconnected");
  });
});
