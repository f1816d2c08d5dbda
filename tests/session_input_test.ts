/**
 * The viewer protocol's corners against a real server, Chromium and WebSocket: every message
 * may carry a `ref` (a ping's comes back on its pong).
 */
import assert from "node:assert/strict";
import { api, startServer } from "./helpers.ts";
import { openViewer, startPages } from "./session_helpers.ts";

Deno.test("session input: ping with a ref", async (t) => {
  await using pages = startPages();
  await using server = await startServer();
  const created = await api(server.url, "/api/sessions", {
    method: "POST",
    json: { url: `${pages.url}/` },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const viewer = await openViewer(created.body.ws_url);

  await t.step("a ping may carry a ref, and its pong echoes it", async () => {
    viewer.send({ type: "ping", t: 42, ref: "p1" });
    viewer.send({ type: "ping", t: 43, ref: 7 });
    const pong = await viewer.next((m) => m.type === "pong" && m.t === 42);
    assert.equal(pong.ref, "p1");
    assert.equal(typeof pong.server_time, "number");
    assert.equal((await viewer.next((m) => m.type === "pong" && m.t === 43)).ref, 7);
    assert.ok(
      !viewer.messages.some((m) => m.type === "error"),
      JSON.stringify(viewer.messages.filter((m) => m.type === "error")),
    );
  });

  await viewer.close();
  await api(server.url, `/api/sessions/${created.body.id}`, { method: "DELETE" });
});
