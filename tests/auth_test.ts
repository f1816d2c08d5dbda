/**
 * Tokens and roles on a real server: 401 without or with a wrong token, 403 below the needed
 * role, ?token= for WebSockets only, and no token ever printed in the server's output.
 */
import assert from "node:assert/strict";
import { api, ROOT_DIR, startServer, waitForJob } from "./helpers.ts";

const ADMIN = "admin-token-7f3a9c";
const OPERATOR = "operator-token-2b8d41";
const VIEWER = "viewer-token-9e6c05";

Deno.test("with tokens on, every /api and /ws call needs a token of the right role", async (t) => {
  await using server = await startServer({
    env: {
      STREAMPLAY_TOKENS: `ann:${ADMIN}:admin,oli:${OPERATOR}:operator,vic:${VIEWER}:viewer`,
      STREAMPLAY_LOG_LEVEL: "debug",
    },
  });
  const base = server.url;
  let jobId = "";

  await t.step("no token or a wrong one is 401 with WWW-Authenticate", async () => {
    const none = await api(base, "/api/jobs");
    assert.equal(none.status, 401);
    assert.equal(none.headers.get("www-authenticate"), 'Bearer realm="streamplay"');
    assert.match(none.body.error, /valid token is required/);
    assert.equal((await api(base, "/api/health", { token: "not-a-real-token" })).status, 401);
    // ?token= is for WebSockets and pages, not for the REST API.
    assert.equal((await api(base, `/api/jobs?token=${VIEWER}`)).status, 401);
  });

  await t.step("viewers read, operators create and cancel, admins export and delete", async () => {
    assert.equal((await api(base, "/api/jobs", { token: VIEWER })).status, 200);
    const denied = await api(base, "/api/jobs", {
      method: "POST",
      token: VIEWER,
      json: { type: "noop" },
    });
    assert.equal(denied.status, 403);
    assert.match(denied.body.error, /needs the operator role; token "vic" has viewer/);
    const created = await api(base, "/api/jobs", {
      method: "POST",
      token: OPERATOR,
      json: { type: "noop" },
    });
    assert.equal(created.status, 202);
    jobId = created.body.id;
    await waitForJob(base, jobId, undefined, { token: VIEWER });
    assert.equal((await api(base, "/api/jobs/export", { token: OPERATOR })).status, 403);
    assert.equal((await api(base, "/api/jobs/export", { token: ADMIN })).status, 200);
    assert.equal(
      (await api(base, `/api/jobs/${jobId}`, { method: "DELETE", token: OPERATOR })).status,
      403,
    );
  });

  await t.step("WebSockets take ?token= and refuse without it", async () => {
    const refused = await fetch(`${base}/ws/jobs/${jobId}`, { headers: { upgrade: "websocket" } });
    assert.equal(refused.status, 401);
    await refused.body?.cancel();
    const ws = new WebSocket(`${base.replace("http", "ws")}/ws/jobs/${jobId}?token=${VIEWER}`);
    const events: Array<{ type: string }> = [];
    ws.onmessage = (e) => events.push(JSON.parse(e.data));
    await new Promise((r) => (ws.onclose = r));
    assert.ok(events.some((e) => e.type === "status"));
  });

  await t.step("pages load without a token (they carry no data)", async () => {
    const res = await fetch(`${base}/bench`);
    assert.equal(res.status, 200);
    await res.body?.cancel();
  });

  await server.stop();
  for (const secret of [ADMIN, OPERATOR, VIEWER]) {
    assert.ok(!server.output().includes(secret), "a token appeared in the server output");
  }
});

Deno.test("binding beyond loopback without tokens refuses to start with a clear message", async () => {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-P=server", "main.ts"],
    cwd: ROOT_DIR,
    env: { HOST: "0.0.0.0", PORT: "0", NO_COLOR: "1" },
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(code, 2);
  assert.match(
    new TextDecoder().decode(stderr),
    /HOST=0\.0\.0\.0 exposes the API .* set STREAMPLAY_TOKENS/,
  );
});
