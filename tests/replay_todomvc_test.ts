/**
 * Recording and replaying a TodoMVC-like app (tests/fixtures/todomvc.html): the timeline names each
 * checkbox by what it is, not its position; a click beside the app is on nothing; a replay on a
 * copy with a renamed field id reports the missing field once, with the steps it missed.
 */
import assert from "node:assert/strict";
import { api, startServer, waitForJob } from "./helpers.ts";
import { type Json, openViewer } from "./session_helpers.ts";
import { act, recordingOf, waitForRecording } from "./recording_helpers.ts";

const FIXTURE = new URL("./fixtures/todomvc.html", import.meta.url);

/** Serves the app at `/`; `rename()` serves it with the field's id renamed. */
export async function startTodoApp() {
  const original = await Deno.readTextFile(FIXTURE);
  let page = original;
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) =>
      new URL(req.url).pathname === "/"
        ? new Response(page, { headers: { "content-type": "text/html; charset=utf-8" } })
        : new Response("not found", { status: 404 }),
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    rename() {
      page = original.replace('id="new-todo"', 'id="new-todo-field"');
    },
    async [Symbol.asyncDispose]() {
      ac.abort();
      await server.finished;
    },
  };
}

// Where things are at the default 1280×720 viewport: the app is the 550 px column at x 365.
const FIELD = { x: 640, y: 110 };
/** The second todo's checkbox (the list starts at y 140, each todo is 59 px high). */
const SECOND_TOGGLE = { x: 389, y: 229 };
const BESIDE_THE_APP = { x: 100, y: 400 };

Deno.test("replay of a todo app: stable selectors, nothing, grouped divergences", async (t) => {
  await using app = await startTodoApp();
  await using server = await startServer();
  const base = server.url;
  let recording: Json;
  let inputs: Json[] = [];

  await t.step("record adding two todos, ticking the second, a click beside", async () => {
    const created = await api(base, "/api/sessions", {
      method: "POST",
      json: { url: app.url, record: { fps: 5, width: 640, height: 360 } },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const viewer = await openViewer(created.body.ws_url);
    const logged = (text: string) =>
      viewer.next((m) =>
        m.type === "event" && m.event.type === "console" && m.event.message === text
      );
    await act(viewer, { type: "mouse", action: "click", ...FIELD });
    for (const title of ["buy milk", "walk dog"]) {
      await act(viewer, { type: "text", text: title });
      await act(viewer, { type: "key", action: "press", key: "Enter" });
      await logged(`added ${title}`);
    }
    await act(viewer, { type: "mouse", action: "click", ...SECOND_TOGGLE });
    await logged("toggled walk dog: true");
    await act(viewer, { type: "mouse", action: "click", ...BESIDE_THE_APP });
    await api(base, `/api/sessions/${created.body.id}`, { method: "DELETE" });
    await viewer.closed;
    const found = await recordingOf(base, created.body.id);
    recording = await waitForRecording(base, found.recording_id, "completed");
    const { body } = await api(base, `/api/recordings/${recording.recording_id}/timeline`);
    inputs = body.entries.filter((e: Json) => e.type === "input" && e.input.action !== "move");
    assert.equal(inputs.length, 7, JSON.stringify(inputs));
  });

  await t.step("the checkbox is named by its class within its todo, not its place", () => {
    const tick = inputs[5];
    assert.deepEqual([tick.input.x, tick.input.y], [SECOND_TOGGLE.x, SECOND_TOGGLE.y]);
    assert.equal(tick.target.tag, "input");
    assert.equal(tick.target.selector, 'div.view:has-text("walk dog") input.toggle');
    assert.equal(inputs[0].target.selector, "#new-todo");
    assert.equal(inputs[1].target.selector, "#new-todo");
  });

  await t.step("a click beside the app is on nothing, at the point", () => {
    const beside = inputs[6];
    assert.deepEqual(beside.target, {
      selector: null,
      tag: "nothing",
      box: { ...BESIDE_THE_APP, width: 0, height: 0 },
    });
  });

  await t.step("a replay with the field renamed reports it once with its count", async () => {
    app.rename();
    const started = await api(base, `/api/recordings/${recording.recording_id}/replay`, {
      method: "POST",
      json: { speed: "max", start_delay_ms: 0 },
    });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const job = await waitForJob(base, started.body.replay_id, undefined, { timeoutMs: 60_000 });
    assert.equal(job.status, "succeeded", job.error);
    const report = job.result.replay;
    const missing = report.divergences.filter((d: Json) => d.kind === "element_not_found");
    assert.equal(missing.length, 1, JSON.stringify(report.divergences, null, 1));
    assert.equal(missing[0].selector, "#new-todo");
    // The click that focused the field, then each title and Enter typed into it.
    assert.equal(missing[0].count, 5);
    assert.equal(missing[0].step, 0);
    assert.equal(missing[0].last_step, 4);
    assert.ok(missing[0].last_t >= missing[0].t);
    assert.equal(report.steps_replayed, 7, "every step was still sent");
    const events = await api(
      base,
      `/api/jobs/${started.body.replay_id}/events?type=replay_divergence`,
    );
    assert.equal(events.body.events.length, report.divergences.length, "each shown live once");
  });
});
