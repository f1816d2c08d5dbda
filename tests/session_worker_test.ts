/**
 * A session run by a separate worker process (`--role=worker`), tokens on: viewers connect to the
 * worker's own `ws_url` with their token, and REST control reaches the worker through Redis.
 */
import assert from "node:assert/strict";
import { api, freePort, startRedis, startServer, uniquePrefix, waitFor } from "./helpers.ts";
import { openViewer, startPages } from "./session_helpers.ts";

const OPERATOR = "operator-token-1";
const VIEWER = "viewer-token-1";

Deno.test("a session on a worker process: ws_url, tokens, remote control", async (t) => {
  await using redis = await startRedis();
  await using pages = startPages();
  const shared = {
    REDIS_URL: redis.url,
    STREAMPLAY_REDIS_PREFIX: uniquePrefix(),
    STREAMPLAY_TOKENS: `ops:${OPERATOR}:operator,watch:${VIEWER}:viewer`,
  };
  await using server = await startServer({ env: { ...shared, STREAMPLAY_CONCURRENCY: "0" } });
  const workerPort = freePort();
  await using _worker = await startServer({ role: "worker", port: workerPort, env: shared });
  const base = server.url;
  const as = { token: OPERATOR };
  let id = "";
  let wsUrl = "";

  await t.step("the API hands out a ws_url on the worker that runs the session", async () => {
    const res = await api(base, "/api/sessions", {
      method: "POST",
      json: { url: `${pages.url}/` },
      ...as,
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    id = res.body.id;
    wsUrl = res.body.ws_url;
    assert.equal(res.body.node, `http://127.0.0.1:${workerPort}`);
    assert.equal(wsUrl, `ws://127.0.0.1:${workerPort}/ws/sessions/${id}`);
    assert.equal(res.body.viewer_url, `${base}/?session=${id}`);
    const viewerPost = await api(base, "/api/sessions", {
      method: "POST",
      json: { url: `${pages.url}/` },
      token: VIEWER,
    });
    assert.equal(viewerPost.status, 403);
    const here = await api(base, `/ws/sessions/${id}?token=${OPERATOR}`, {
      headers: { upgrade: "websocket" },
    });
    assert.equal(here.status, 421, "the API process points elsewhere");
    assert.match(here.body.error, new RegExp(`connect to ws://127.0.0.1:${workerPort}/`));
  });

  await t.step(
    "the worker checks tokens: none is refused, a viewer token is view-only",
    async () => {
      const anonymous = await fetch(wsUrl.replace("ws:", "http:"), {
        headers: { upgrade: "websocket" },
      });
      assert.equal(anonymous.status, 401);
      await anonymous.body?.cancel();
      const watcher = await openViewer(`${wsUrl}?token=${VIEWER}`);
      assert.equal(watcher.messages[0].viewer.interactive, false);
      const refused = await watcher.request({ type: "key", action: "press", key: "a" });
      assert.match(refused.error, /view-only/);
      const driver = await openViewer(`${wsUrl}?token=${OPERATOR}`);
      assert.equal(driver.messages[0].viewer.interactive, true);
      await driver.waitFrames(1);
      assert.equal(
        (await driver.request({ type: "mouse", action: "click", x: 200, y: 150 })).type,
        "ack",
      );
      await waitFor(async () => {
        const { body } = await api(base, `/api/sessions/${id}`, as);
        return body.metrics.viewer_count === 2 && body.title === "clicked";
      }, { what: "the API to see the worker's viewers and page" });
      await watcher.close();
      await driver.close();
    },
  );

  await t.step("REST control reaches the worker through Redis", async () => {
    const nav = await api(base, `/api/sessions/${id}/navigate`, {
      method: "POST",
      json: { url: `${pages.url}/popup` },
      ...as,
    });
    assert.equal(nav.status, 200, JSON.stringify(nav.body));
    assert.equal(nav.body.url, `${pages.url}/popup`);
    const shot = await fetch(`${base}/api/sessions/${id}/screenshot`, {
      headers: { authorization: `Bearer ${VIEWER}` },
    });
    assert.equal(shot.status, 200);
    assert.equal(shot.headers.get("content-type"), "image/png");
    await shot.body?.cancel();
    const paused = await api(base, `/api/sessions/${id}/pause`, { method: "POST", ...as });
    assert.equal(paused.body.state, "paused");
    const done = await api(base, `/api/sessions/${id}`, { method: "DELETE", ...as });
    assert.equal(done.status, 200);
    assert.equal(done.body.state, "stopped");
    assert.equal(done.body.final.reason, "deleted");
    assert.ok(done.body.final.frames_captured > 0);
    assert.deepEqual((await api(base, "/api/sessions", as)).body.sessions, []);
  });
});
