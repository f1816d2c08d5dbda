/**
 * Error screenshots of a recorded session right after a reload (a tall red page, then a green one
 * that throws and asks for a missing `learn.json`): the recording's and the session's screenshots
 * show the green page, not the one before it, and the 404 is in the recording's timeline.
 */
import assert from "node:assert/strict";
import jpeg from "jpeg-js";
import { api, startServer, waitFor } from "./helpers.ts";
import { type Json, openViewer } from "./session_helpers.ts";
import { act, waitForRecording } from "./recording_helpers.ts";

/** `/flip`: a tall red page scrolled to its bottom, then the green page, in turn. */
function startSite() {
  let flips = 0;
  const ac = new AbortController();
  const html = (text: string) =>
    new Response(text, { headers: { "content-type": "text/html; charset=utf-8" } });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/slow.css") {
        return new Promise((resolve) =>
          setTimeout(() => resolve(new Response("h1 { color: white }")), 2000)
        );
      }
      if (path !== "/flip") return new Response("not found", { status: 404 });
      return flips++ % 2 === 0
        ? html(
          `<!doctype html><title>red</title><body style="margin:0;background:#d00000">` +
            `<div style="height:6000px"></div><script>scrollTo(0, 4000)</script></body>`,
        )
        : html(
          `<!doctype html><title>green</title>` +
            `<script>fetch("/learn.json"); throw new Error("boom after the reload")</script>` +
            `<link rel="stylesheet" href="/slow.css">` +
            `<body style="margin:0;background:#00c000"><h1>Reloaded</h1></body>`,
        );
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    async [Symbol.asyncDispose]() {
      ac.abort();
      await server.finished;
    },
  };
}

/** The colour of the pixel in the middle of a JPEG. */
async function middle(res: Response): Promise<string> {
  assert.equal(res.status, 200);
  const image = jpeg.decode(new Uint8Array(await res.arrayBuffer()), {
    useTArray: true,
    formatAsRGBA: true,
  });
  const i = (Math.floor(image.height / 2) * image.width + Math.floor(image.width / 2)) * 4;
  const [r, g, b] = [image.data[i]!, image.data[i + 1]!, image.data[i + 2]!];
  return g > 150 && r < 80 && b < 80 ? "green" : r > 150 && g < 80 ? "red" : `rgb(${r},${g},${b})`;
}

Deno.test("error screenshots right after a reload show the new page", async () => {
  await using site = startSite();
  await using server = await startServer();
  const base = server.url;
  const created = await api(base, "/api/sessions", {
    method: "POST",
    json: { url: `${site.url}/flip`, record: { fps: 10, width: 640, height: 360 } },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body.id;
  const viewer = await openViewer(created.body.ws_url);
  try {
    await waitFor(() => viewer.frames.some((f) => f.sy >= 3000), { what: "the scrolled page" });
    await act(viewer, { type: "reload" });
    const isEvent = (type: string) => (m: Json) => m.type === "event" && m.event.type === type;
    const failed = (await viewer.next(isEvent("failed_request"), 20_000)).event;
    const thrown = (await viewer.next(isEvent("page_error"), 20_000)).event;
    assert.match(failed.url, /\/learn\.json$/);
    assert.equal(typeof failed.recording_screenshot, "number", JSON.stringify(failed));
    assert.equal(typeof thrown.screenshot, "number", JSON.stringify(thrown));

    // The session's screenshots are read from its stored events.
    const stored = await waitFor(async () => {
      const res = await fetch(`${base}${thrown.screenshot_url}`);
      if (res.status === 200) return res;
      await res.body?.cancel();
      return null;
    }, { what: "the page error's screenshot to be stored" });
    const session = await middle(stored);
    assert.equal(session, "green", "the session's page error screenshot");
    const stopped = await api(base, `/api/sessions/${id}/recording`, { method: "DELETE" });
    assert.equal(stopped.status, 200, JSON.stringify(stopped.body));
    const rec = stopped.body.recording_id;
    await waitForRecording(base, rec, "completed");
    const shot = `${base}/api/recordings/${rec}/screenshots/${failed.recording_screenshot}`;
    assert.equal(await middle(await fetch(shot)), "green", "the recording's 404 screenshot");

    // The failed request is in the recording's timeline, where it happened in the video.
    const { body } = await api(base, `/api/recordings/${rec}/timeline`);
    const entry = body.entries.find((e: Json) => e.type === "failed_request");
    assert.ok(entry, JSON.stringify(body.entries.map((e: Json) => e.type)));
    assert.match(entry.url, /\/learn\.json$/);
    assert.equal(entry.status, 404);
    assert.equal(entry.method, "GET");
    assert.equal(entry.screenshot, failed.recording_screenshot);
    const reload = body.entries.find((e: Json) => e.type === "input" && e.input.type === "reload");
    assert.ok(entry.t >= reload.t, `the 404 at ${entry.t} ms, after the reload at ${reload.t} ms`);
  } finally {
    await viewer.close();
    await api(base, `/api/sessions/${id}`, { method: "DELETE" });
  }
});
