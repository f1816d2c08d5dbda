/**
 * Share links, with STREAMPLAY_TOKENS set and unset: a link's token reaches its one session and
 * nothing else, a viewer's link controls nothing, an operator's drives only its session, and an
 * expired link is a 401.
 */
import assert from "node:assert/strict";
import { createShareLinks } from "../lib/sessions/capability.ts";
import { connectRedis, waitReady } from "../lib/core/redis.ts";
import { api, startRedis, startServer, uniquePrefix } from "./helpers.ts";
import { openViewer, startPages } from "./session_helpers.ts";

const ADMIN = "share-test-admin-token";

for (const tokens of [false, true]) {
  Deno.test(`a share link holds one session and one role (tokens ${tokens ? "on" : "off"})`, async (t) => {
    await using pages = startPages();
    await using redis = await startRedis();
    const prefix = uniquePrefix();
    await using server = await startServer({
      env: {
        REDIS_URL: redis.url,
        STREAMPLAY_REDIS_PREFIX: prefix,
        ...(tokens ? { STREAMPLAY_TOKENS: `admin:${ADMIN}:admin` } : {}),
      },
    });
    const admin = tokens ? ADMIN : undefined;
    const call = (path: string, token?: string, init: { method?: string; json?: unknown } = {}) =>
      api(server.url, path, { ...init, token });
    const start = async () => {
      const res = await call("/api/sessions", admin, {
        method: "POST",
        json: { url: `${pages.url}/` },
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body as { id: string; ws_url: string };
    };
    const mine = await start();
    const other = await start();
    const share = (role: string, id = mine.id, token = admin) =>
      call(`/api/sessions/${id}/share`, token, {
        method: "POST",
        json: { role, expires_in_s: 600 },
      });

    await t.step("an operator mints a link with its page URL and expiry", async () => {
      const res = await share("viewer");
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.role, "viewer");
      assert.equal(res.body.session_id, mine.id);
      const url = new URL(res.body.url);
      assert.equal(url.searchParams.get("session"), mine.id);
      assert.equal(url.searchParams.get("token"), res.body.token);
      const left = Date.parse(res.body.expires_at) - Date.now();
      assert.ok(left > 590_000 && left <= 601_000, res.body.expires_at);
      const bad = await call(`/api/sessions/${mine.id}/share`, admin, {
        method: "POST",
        json: { role: "admin", expires_in_s: 10 },
      });
      assert.equal(bad.status, 400);
      assert.match(bad.body.error, /role|expires_in_s/);
      assert.equal((await share("viewer", "job_nosuchsession")).status, 404);
    });

    await t.step("a viewer's link reads its session and controls nothing", async () => {
      const viewer = (await share("viewer")).body.token as string;
      assert.equal((await call(`/api/sessions/${mine.id}`, viewer)).status, 200);
      assert.equal((await call(`/api/sessions/${mine.id}/screenshot`, viewer)).status, 200);
      const control: Array<[string, string, unknown?]> = [
        ["POST", `/api/sessions/${mine.id}/pause`],
        ["POST", `/api/sessions/${mine.id}/navigate`, { url: `${pages.url}/anim` }],
        ["POST", `/api/sessions/${mine.id}/recording`, {}],
        ["POST", `/api/sessions/${mine.id}/share`, { role: "viewer" }],
        ["DELETE", `/api/sessions/${mine.id}`],
      ];
      for (const [method, path, json] of control) {
        const res = await call(path, viewer, { method, json });
        assert.equal(res.status, 403, `${method} ${path}: ${JSON.stringify(res.body)}`);
      }
      for (
        const path of [`/api/sessions/${other.id}`, "/api/sessions", "/api/jobs", "/api/health"]
      ) {
        const res = await call(path, viewer);
        assert.equal(res.status, 403, `${path}: ${JSON.stringify(res.body)}`);
        assert.match(res.body.error, new RegExp(`for session ${mine.id} only`));
      }
      assert.equal((await call(`/api/sessions/${mine.id}`, admin)).body.state, "active");
    });

    await t.step("its viewer socket watches and refuses input", async () => {
      const viewer = (await share("viewer")).body.token as string;
      const url = new URL(mine.ws_url);
      url.searchParams.set("token", viewer);
      const seat = await openViewer(url.href);
      try {
        const hello = await seat.next((m) => m.type === "hello");
        assert.equal(hello.viewer.interactive, false);
        await seat.waitFrames(1);
        const reply = await seat.request({ type: "mouse", action: "down", x: 200, y: 150 });
        assert.equal(reply.type, "error");
        assert.match(reply.error, /view-only/);
      } finally {
        await seat.close();
      }
      const elsewhere = new URL(other.ws_url.replace(/^ws/, "http"));
      elsewhere.searchParams.set("token", viewer);
      const refused = await fetch(elsewhere);
      assert.equal(refused.status, 403);
      await refused.body?.cancel();
    });

    await t.step("an operator's link drives its session only, and makes no links", async () => {
      const operator = (await share("operator")).body.token as string;
      const paused = await call(`/api/sessions/${mine.id}/pause`, operator, { method: "POST" });
      assert.equal(paused.status, 200, JSON.stringify(paused.body));
      assert.equal(
        (await call(`/api/sessions/${mine.id}/resume`, operator, { method: "POST" })).status,
        200,
      );
      assert.equal(
        (await call(`/api/sessions/${other.id}/pause`, operator, { method: "POST" })).status,
        403,
      );
      assert.equal((await share("viewer", mine.id, operator)).status, 403);
    });

    await t.step("a forged or expired link is a 401", async () => {
      // A viewer's link made an operator's: the signature no longer matches.
      const [head, payload, signature] = ((await share("viewer")).body.token as string).split(".");
      const claims = JSON.parse(atob(payload!.replace(/-/g, "+").replace(/_/g, "/")));
      const raised = btoa(JSON.stringify({ ...claims, r: "operator" })).replace(/=+$/, "")
        .replace(/\+/g, "-").replace(/\//g, "_");
      const forged = await call(
        `/api/sessions/${mine.id}/pause`,
        `${head}.${raised}.${signature}`,
        {
          method: "POST",
        },
      );
      assert.equal(forged.status, 401);
      assert.match(forged.body.error, /not valid/);
      // Minted with this server's secret (it lives in their shared Redis), valid for 1 s.
      const conn = connectRedis(redis.url, "command");
      await waitReady(conn);
      try {
        const short = await createShareLinks({ redis: conn, prefix }).mint(mine.id, "viewer", 1);
        assert.equal((await call(`/api/sessions/${mine.id}`, short.token)).status, 200);
        await new Promise((r) => setTimeout(r, short.expiresAt.getTime() - Date.now() + 200));
        const expired = await call(`/api/sessions/${mine.id}`, short.token);
        assert.equal(expired.status, 401);
        assert.match(expired.body.error, /share link expired at/);
      } finally {
        conn.disconnect();
      }
    });

    await call(`/api/sessions/${mine.id}`, admin, { method: "DELETE" });
    await call(`/api/sessions/${other.id}`, admin, { method: "DELETE" });
  });
}
