/**
 * The viewer protocol's corners on a real server, Chromium and WebSocket: `ref` echoes, wheel
 * scrolling under the pointer, back, forward, reload, and viewport resizing.
 */
import assert from "node:assert/strict";
import { api, startServer, waitFor } from "./helpers.ts";
import { type Json, openViewer } from "./session_helpers.ts";

/** `/a` and `/b`, tall pages that log their size when resized; hits counted per path. */
function startSite() {
  const hits = new Map<string, number>();
  const ac = new AbortController();
  const page = (name: string) =>
    `<!doctype html><title>${name}</title><body style="margin:0">` +
    `<div style="height:6000px;background:linear-gradient(#fff,#06c)">${name}</div>` +
    `<script>addEventListener("resize", () => console.log("size " + innerWidth + "x" + innerHeight))` +
    `</script></body>`;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => {
      const path = new URL(req.url).pathname;
      hits.set(path, (hits.get(path) ?? 0) + 1);
      return path === "/a" || path === "/b"
        ? new Response(page(path.slice(1)), { headers: { "content-type": "text/html" } })
        : new Response("not found", { status: 404 });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    hits: (path: string) => hits.get(path) ?? 0,
    async [Symbol.asyncDispose]() {
      ac.abort();
      await server.finished;
    },
  };
}

Deno.test("session input: ping with a ref, wheel, back and forward, reload, viewport", async (t) => {
  await using site = startSite();
  await using server = await startServer();
  const base = server.url;
  const created = await api(base, "/api/sessions", {
    method: "POST",
    json: { url: `${site.url}/a` },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body.id;
  const viewer = await openViewer(created.body.ws_url);
  const ack = async (message: Record<string, unknown>) => {
    const reply = await viewer.request(message);
    assert.equal(reply.type, "ack", JSON.stringify(reply));
    return reply;
  };
  const session = async (): Promise<Json> => (await api(base, `/api/sessions/${id}`)).body;
  const navigated = (url: string, after: number) =>
    viewer.next((m) =>
      m.type === "event" && m.event.type === "navigation" && m.event.url === url &&
      m.event.ts >= after
    );

  try {
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

    await t.step("the wheel scrolls the page: frames show the new scroll offset", async () => {
      await viewer.waitFrames(1);
      assert.equal(viewer.frames.at(-1)!.sy, 0);
      await ack({ type: "wheel", x: 400, y: 300, dx: 0, dy: 900 });
      await waitFor(() => viewer.frames.some((f) => f.sy >= 800), {
        what: "a frame scrolled by the wheel",
      });
    });

    await t.step("back and forward walk the history", async () => {
      const start = Date.now();
      await ack({ type: "navigate", url: `${site.url}/b` });
      await navigated(`${site.url}/b`, start);
      const back = Date.now();
      await ack({ type: "back" });
      await navigated(`${site.url}/a`, back);
      const forward = Date.now();
      await ack({ type: "forward" });
      await navigated(`${site.url}/b`, forward);
      await waitFor(async () => (await session()).url === `${site.url}/b`, {
        what: "the session's page to be /b again",
      });
    });

    await t.step("reload loads the page again from the server", async () => {
      const before = site.hits("/b");
      const at = Date.now();
      await ack({ type: "reload" });
      await navigated(`${site.url}/b`, at);
      assert.equal(site.hits("/b"), before + 1);
    });

    await t.step("a viewport message resizes the page and its frames", async () => {
      await ack({ type: "viewport", width: 800, height: 600 });
      await viewer.next((m) =>
        m.type === "event" && m.event.type === "console" && m.event.message === "size 800x600"
      );
      await waitFor(() => viewer.frames.some((f) => f.w === 800 && f.h === 600), {
        what: "an 800×600 frame",
      });
      await waitFor(async () => {
        const { viewport } = await session();
        return viewport.width === 800 && viewport.height === 600;
      }, { what: "the session's viewport to say 800×600" });
    });
  } finally {
    await viewer.close();
    await api(base, `/api/sessions/${id}`, { method: "DELETE" });
  }
});
