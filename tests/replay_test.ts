/**
 * Replays on a real server and Chromium: the same page gives no divergence and can be watched and
 * recorded; a renamed button is reported as not found; a link leading elsewhere gives the
 * navigation, new and missing error, and visual divergences.
 */
import assert from "node:assert/strict";
import { api, startServer, waitForJob } from "./helpers.ts";
import { type Json, openViewer } from "./session_helpers.ts";
import { act, recordingOf, waitForRecording } from "./recording_helpers.ts";

/** The app the session drives: a button whose label the test can change, a field, a link. */
function startApp() {
  let label = "Save";
  let next = "/done";
  let background = "#fff";
  const page = () =>
    `<!doctype html><html><head><title>app</title><style>
body { margin: 0; font: 16px sans-serif; background: ${background}; }
.at { position: absolute; left: 100px; }
</style></head><body>
<button class="at" style="top: 100px; width: 200px; height: 60px"
  onclick="document.getElementById('out').textContent = 'saved'; console.log('saved')">${label}</button>
<input class="at" name="note" style="top: 200px; width: 300px; height: 40px">
<a class="at" href="${next}" style="top: 300px; font-size: 24px">Finish</a>
<p id="out" class="at" style="top: 400px"></p>
</body></html>`;
  const done = `<!doctype html><html><head><title>done</title></head>
<body style="margin:0;font:16px sans-serif"><h1>Done</h1>
<script>setTimeout(() => { throw new Error("error on the done page"); }, 100);</script></body></html>`;
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => {
      const path = new URL(req.url).pathname;
      const html = (body: string) =>
        new Response(body, { headers: { "content-type": "text/html; charset=utf-8" } });
      if (path === "/") return html(page());
      if (path === "/done") return html(done);
      if (path === "/elsewhere") {
        return html(
          `<!doctype html><title>elsewhere</title><body style="margin:0;background:#123">` +
            `<script>throw new Error("another error elsewhere")</script></body>`,
        );
      }
      return new Response(null, { status: 204 });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    rename(to: string) {
      label = to;
    },
    /** The link goes elsewhere (a page with another error) and the page looks different. */
    change() {
      next = "/elsewhere";
      background = "#222";
    },
    async [Symbol.asyncDispose]() {
      ac.abort();
      await server.finished;
    },
  };
}

async function replay(base: string, recordingId: string, options: Record<string, unknown>) {
  const res = await api(base, `/api/recordings/${recordingId}/replay`, {
    method: "POST",
    json: options,
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

Deno.test("replay: no divergence on the same page, the missing element on a changed one", async (t) => {
  await using app = startApp();
  await using server = await startServer();
  const base = server.url;
  let recording: Json;

  await t.step("record a session from its first page load", async () => {
    const created = await api(base, "/api/sessions", {
      method: "POST",
      json: { url: `${app.url}/`, record: { fps: 10, width: 640, height: 360 } },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const viewer = await openViewer(created.body.ws_url);
    await viewer.waitFrames(1);
    await act(viewer, { type: "mouse", action: "click", x: 200, y: 130 });
    await viewer.next((m) => m.type === "event" && m.event.message === "saved");
    await act(viewer, { type: "mouse", action: "click", x: 250, y: 220 });
    await act(viewer, { type: "text", text: "remember me" });
    await act(viewer, { type: "mouse", action: "click", x: 130, y: 315 });
    await viewer.next((m) => m.type === "event" && m.event.type === "page_error");
    await api(base, `/api/sessions/${created.body.id}`, { method: "DELETE" });
    const found = await recordingOf(base, created.body.id);
    recording = await waitForRecording(base, found.recording_id, "completed");
    assert.equal(recording.from_first_load, true);
    assert.equal(recording.start_url, `${app.url}/`);
    const { body } = await api(base, `/api/recordings/${recording.recording_id}/timeline`);
    const selectors = body.entries.filter((e: Json) => e.type === "input").map((e: Json) =>
      e.target?.selector
    );
    assert.deepEqual(selectors, [
      'role=button[name="Save"]',
      'input[name="note"]',
      'input[name="note"]',
      'role=link[name="Finish"]',
    ]);
    await viewer.closed;
  });

  await t.step("refused: an unknown recording, bad options", async () => {
    assert.equal(
      (await api(base, "/api/recordings/rec_0000000000000000a/replay", {
        method: "POST",
        json: {},
      }))
        .status,
      404,
    );
    const bad = await api(base, `/api/recordings/${recording.recording_id}/replay`, {
      method: "POST",
      json: { speed: 0 },
    });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /^speed: /);
  });

  await t.step("replayed on the same page as fast as it can: no divergence", async () => {
    const started = await replay(base, recording.recording_id, {
      speed: "max",
      visual_threshold: 0.05,
      start_delay_ms: 0,
    });
    assert.equal(started.steps, 4);
    const job = await waitForJob(base, started.replay_id, undefined, { timeoutMs: 60_000 });
    assert.equal(job.status, "succeeded", job.error);
    const report = job.result.replay;
    assert.deepEqual(report.divergences, []);
    assert.equal(report.ok, true);
    assert.equal(report.steps_replayed, 4);
    assert.equal(report.located_by_selector, 3, "the pointer steps found their elements");
    assert.deepEqual(report.navigations, { expected: 2, actual: 2 });
    assert.deepEqual(report.errors, { expected: 1, actual: 1 });
    assert.ok(report.visual_difference !== null && report.visual_difference <= 0.05);
    const listed = await api(base, `/api/recordings/${recording.recording_id}/replays`);
    assert.equal(listed.body.replays[0].replay_id, started.replay_id);
    assert.equal(listed.body.replays[0].report.ok, true);
  });

  await t.step(
    "a replay at the original timing is watched live (view-only) and recorded",
    async () => {
      const started = await replay(base, recording.recording_id, {
        speed: 1,
        start_delay_ms: 1_500,
        record: { fps: 5, width: 320, height: 180 },
      });
      assert.match(started.viewer_url, /\?session=job_.*&view=1$/);
      const session = await api(base, `/api/sessions/${started.replay_id}`);
      assert.equal(session.status, 200);
      assert.equal(session.body.active, true);
      const watcher = await openViewer(started.ws_url);
      assert.equal(watcher.messages[0].viewer.interactive, false, "replays are view-only");
      await watcher.waitFrames(2);
      const refused = await watcher.request({ type: "mouse", action: "click", x: 10, y: 10 });
      assert.equal(refused.type, "error");
      const job = await waitForJob(base, started.replay_id, undefined, { timeoutMs: 60_000 });
      assert.equal(job.status, "succeeded", job.error);
      assert.deepEqual(job.result.replay.divergences, []);
      assert.equal(job.result.reason, "replayed");
      await watcher.closed;
      const own = await recordingOf(base, started.replay_id);
      const done = await waitForRecording(base, own.recording_id, "completed");
      assert.equal(done.source, "replay");
      assert.equal(done.replay_of, recording.recording_id);
      const { body } = await api(base, `/api/recordings/${own.recording_id}/timeline`);
      assert.ok(
        body.entries.some((e: Json) => e.type === "input" && e.input.type === "text"),
        "the replay's own inputs are in its recording",
      );
    },
  );

  await t.step("on a page whose button was renamed, the missing element is reported", async () => {
    app.rename("Store");
    const started = await replay(base, recording.recording_id, {
      speed: "max",
      start_delay_ms: 0,
    });
    const job = await waitForJob(base, started.replay_id, undefined, { timeoutMs: 60_000 });
    assert.equal(job.status, "succeeded", job.error);
    const report = job.result.replay;
    assert.equal(report.ok, false);
    const missing = report.divergences.filter((d: Json) => d.kind === "element_not_found");
    assert.equal(missing.length, 1, JSON.stringify(report.divergences));
    assert.equal(missing[0].selector, 'role=button[name="Save"]');
    assert.equal(missing[0].step, 0);
    assert.match(missing[0].message, /recorded coordinates were used/);
    const events = await api(base, `/api/jobs/${started.replay_id}/events?type=replay_divergence`);
    assert.equal(events.body.events.length, report.divergences.length, "shown live as events");
  });

  await t.step(
    "where the link goes elsewhere: navigation, new and missing error, visual divergences",
    async () => {
      app.change();
      const started = await replay(base, recording.recording_id, {
        speed: "max",
        start_delay_ms: 0,
        visual_threshold: 0.05,
      });
      const job = await waitForJob(base, started.replay_id, undefined, { timeoutMs: 60_000 });
      assert.equal(job.status, "succeeded", job.error);
      const report = job.result.replay;
      const of = (kind: string) => report.divergences.filter((d: Json) => d.kind === kind);
      const [navigation] = of("navigation");
      assert.ok(navigation, JSON.stringify(report.divergences, null, 1));
      assert.equal(navigation.expected, `${app.url}/done`);
      assert.equal(navigation.actual, `${app.url}/elsewhere`);
      assert.deepEqual(
        of("new_error").map((d: Json) => d.actual),
        [{ type: "page_error", message: "another error elsewhere" }],
      );
      assert.deepEqual(
        of("missing_error").map((d: Json) => d.expected),
        [{ type: "page_error", message: "error on the done page" }],
      );
      const [visual] = of("visual");
      assert.ok(visual && visual.actual > 0.05, JSON.stringify(visual));
      assert.equal(report.visual_difference, visual.actual);
      assert.equal(report.ok, false);
    },
  );
});
