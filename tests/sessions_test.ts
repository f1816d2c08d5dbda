/**
 * Live sessions on a real server, Chromium and WebSockets: the REST API, frames, input reaching the
 * page, view-only viewers, malformed messages, the URL policy, tabs and popups, page errors with
 * screenshots, pause, limits, final stats, 404s, and the events stored in history.
 */
import assert from "node:assert/strict";
import { api, startServer, waitFor } from "./helpers.ts";
import { type Json, openViewer, startPages, type Viewer } from "./session_helpers.ts";

const isEvent = (type: string, match: (e: Json) => boolean = () => true) => (m: Json) =>
  m.type === "event" && m.event.type === type && match(m.event);

Deno.test("sessions: API, viewers, input, policy, events and limits", async (t) => {
  await using pages = startPages();
  // A host the policy denies, listening so that a leak would show as a hit.
  let secretHits = 0;
  const secretAbort = new AbortController();
  const secret = Deno.serve(
    { hostname: "127.0.0.2", port: 0, signal: secretAbort.signal, onListen() {} },
    () => {
      secretHits++;
      return new Response("secret");
    },
  );
  await using server = await startServer({
    env: { STREAMPLAY_MAX_SESSIONS: "2", STREAMPLAY_DENY_HOSTS: "127.0.0.2" },
  });
  const base = server.url;
  let id = "";
  let wsUrl = "";
  let v1!: Viewer;
  let v2!: Viewer;
  const title = async () => (await api(base, `/api/sessions/${id}`)).body.title;

  await t.step("POST /api/sessions refuses bad input with a 400 naming the field", async () => {
    const bad: Array<[unknown, RegExp]> = [
      [{}, /^url: /],
      [{ url: `${pages.url}/`, viewport: { width: 10, height: 720 } }, /^viewport\.width: /],
      [{ url: `${pages.url}/`, quality: 101 }, /^quality: /],
      [{ url: `${pages.url}/`, colour: "red" }, /colour/],
      [{ url: "ftp://127.0.0.1/" }, /^url: .*only http and https/],
      [{ url: "http://127.0.0.2/" }, /^url: .*deny-list/],
    ];
    for (const [json, error] of bad) {
      const res = await api(base, "/api/sessions", { method: "POST", json });
      assert.equal(res.status, 400, JSON.stringify(json));
      assert.match(res.body.error, error);
    }
  });

  await t.step("POST /api/sessions starts the browser and hands out its ws_url", async () => {
    const res = await api(base, "/api/sessions", {
      method: "POST",
      json: { url: `${pages.url}/`, quality: 70 },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    id = res.body.id;
    wsUrl = res.body.ws_url;
    assert.equal(res.headers.get("location"), `/api/sessions/${id}`);
    assert.equal(res.body.state, "active");
    assert.equal(res.body.active, true);
    assert.equal(wsUrl, `ws://127.0.0.1:${server.port}/ws/sessions/${id}`);
    assert.equal(res.body.viewer_url, `${base}/?session=${id}`);
    assert.deepEqual(res.body.viewport, { width: 1280, height: 720 });
    assert.equal(res.body.options.quality, 70);
    assert.ok("current_fps" in res.body.metrics && "buffer_health" in res.body.metrics);
    await waitFor(async () => (await title()) === "start", { what: "the page title" });
    const list = await api(base, "/api/sessions");
    assert.deepEqual(list.body.sessions.map((s: Json) => s.id), [id]);
    const job = await api(base, `/api/jobs/${id}`);
    assert.equal(job.body.type, "session");
    assert.equal(job.body.status, "running");
  });

  await t.step("a viewer gets frames as binary messages with screencast metadata", async () => {
    v1 = await openViewer(wsUrl);
    const hello = v1.messages[0];
    assert.equal(hello.viewer.interactive, true);
    assert.equal(hello.session.id, id);
    await v1.waitFrames(1);
    const frame = v1.frames[0]!;
    assert.equal(frame.w, 1280);
    assert.equal(frame.h, 720);
    assert.equal(frame.tab, "t1");
    assert.ok(Math.abs(frame.ts - Date.now()) < 60_000, "timestamp is wall-clock ms");
  });

  await t.step("a click reaches the button inside the remote page", async () => {
    const ack = await v1.request({ type: "mouse", action: "click", x: 200, y: 150 });
    assert.equal(ack.type, "ack", JSON.stringify(ack));
    await v1.next(isEvent("console", (e) => e.message === "button clicked"));
    await waitFor(async () => (await title()) === "clicked", { what: "the title to change" });
  });

  await t.step("typing, Backspace, arrows and Enter arrive in the focused input", async () => {
    assert.equal(
      (await v1.request({ type: "mouse", action: "click", x: 250, y: 320 })).type,
      "ack",
    );
    for (
      const m of [
        { type: "text", text: "hellx" },
        { type: "key", action: "press", key: "Backspace" },
        { type: "key", action: "press", key: "o" },
        { type: "key", action: "press", key: "ArrowLeft" },
        { type: "key", action: "press", key: "ArrowRight" },
        { type: "key", action: "press", key: "Enter" },
      ]
    ) {
      assert.equal((await v1.request(m)).type, "ack", JSON.stringify(m));
    }
    await v1.next(isEvent("console", (e) => e.message === "typed:hello"));
  });

  await t.step(
    "copy hands the selection back; Tab and paste move it to the next field",
    async () => {
      await v1.request({ type: "key", action: "down", key: "Control" });
      await v1.request({ type: "key", action: "press", key: "a" });
      const copied = v1.next((m) => m.type === "clipboard");
      await v1.request({ type: "key", action: "press", key: "c" });
      await v1.request({ type: "key", action: "up", key: "Control" });
      assert.equal((await copied).text, "hello");
      await v1.request({ type: "key", action: "press", key: "Tab" });
      await v1.request({ type: "key", action: "press", key: "Control+v" });
      await v1.next(isEvent("console", (e) => e.message === "field2:hello"));
    },
  );

  await t.step("a second viewer counts; a view-only viewer's input is refused", async () => {
    v2 = await openViewer(`${wsUrl}?mode=view`);
    assert.equal(v2.messages[0].viewer.interactive, false);
    await waitFor(async () => {
      const { body } = await api(base, `/api/sessions/${id}`);
      return body.metrics.viewer_count === 2;
    }, { what: "viewer_count 2" });
    await v1.next((m) => m.type === "stats" && m.metrics.viewer_count === 2);
    const refused = await v2.request({ type: "mouse", action: "click", x: 200, y: 150 });
    assert.equal(refused.type, "error");
    assert.match(refused.error, /view-only/);
    v2.send({ type: "tabs", ref: "list" });
    const listed = await v2.next((m) => m.type === "tabs" && m.ref === "list");
    assert.equal(listed.tabs.length, 1, "view-only viewers may still list tabs");
  });

  await t.step("malformed messages get an error; the session keeps running", async () => {
    const before = v1.messages.length;
    v1.send("not json at all");
    v1.send({ type: "warp", ref: "w" });
    v1.send({ type: "mouse", action: "click", x: "left", y: 1, ref: "x" });
    v1.send({ type: "key", action: "press", key: "NoSuchKey", ref: "k" });
    v1.socket.send(new Uint8Array([1, 2, 3]));
    await v1.next((m) => m.type === "error" && /not valid JSON/.test(m.error));
    await v1.next((m) => m.type === "error" && m.ref === "w" && /^type: /.test(m.error));
    await v1.next((m) => m.type === "error" && m.ref === "x" && /^x: /.test(m.error));
    await v1.next((m) => m.type === "error" && m.ref === "k" && /NoSuchKey/.test(m.error));
    await v1.next((m) => m.type === "error" && /binary/.test(m.error));
    assert.ok(v1.messages.length > before);
    assert.equal((await v1.request({ type: "mouse", action: "move", x: 5, y: 5 })).type, "ack");
    assert.equal((await api(base, `/api/sessions/${id}`)).body.state, "active");
  });

  await t.step("navigation follows the URL policy (REST and WebSocket)", async () => {
    const ok = await api(base, `/api/sessions/${id}/navigate`, {
      method: "POST",
      json: { url: `${pages.url}/popup` },
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.url, `${pages.url}/popup`);
    assert.equal(ok.body.status, 200);
    const denied = await api(base, `/api/sessions/${id}/navigate`, {
      method: "POST",
      json: { url: "http://127.0.0.2:1/" },
    });
    assert.equal(denied.status, 400);
    assert.match(denied.body.error, /^url: .*deny-list/);
    const file = await v1.request({ type: "navigate", url: "file:///etc/passwd" });
    assert.equal(file.type, "error");
    assert.match(file.error, /only http and https/);
    assert.equal((await v1.request({ type: "back" })).type, "ack");
    await waitFor(async () => (await title()) === "start", { what: "back at the start page" });
  });

  await t.step(
    "what the browser loads is checked: a redirect to a denied host is blocked",
    async () => {
      const target = `http://127.0.0.2:${secret.addr.port}/secret`;
      const r = await v1.request({
        type: "navigate",
        url: `${pages.url}/redirect?to=${encodeURIComponent(target)}`,
      });
      assert.equal(r.type, "error", "the navigation fails");
      const blocked = await v1.next(
        isEvent("request_blocked", (e) => e.target === `127.0.0.2:${secret.addr.port}`),
      );
      assert.match(blocked.event.reason, /deny-list/);
      assert.equal(secretHits, 0);
      assert.equal(pages.hits("/redirect"), 1, "the allowed first hop was loaded");
      const back = await v1.request({ type: "navigate", url: `${pages.url}/` });
      assert.equal(back.type, "ack", back.error);
    },
  );

  await t.step("a target=_blank link opens a tab; tabs switch and close", async () => {
    assert.equal(
      (await v1.request({ type: "mouse", action: "click", x: 110, y: 508 })).type,
      "ack",
    );
    const opened = await v1.next((m) =>
      m.type === "state" && m.session.tabs.length === 2 &&
      m.session.tabs.find((t: Json) => t.active)?.url === `${pages.url}/popup`
    );
    const popup = opened.session.tabs.find((t: Json) => t.active).id;
    await waitFor(() => v1.frames.at(-1)?.tab === popup, { what: "frames of the popup tab" });
    assert.equal((await v1.request({ type: "tab", action: "switch", tab: "t1" })).type, "ack");
    await v1.next((m) =>
      m.type === "state" && m.session.tabs.find((t: Json) => t.active)?.id === "t1"
    );
    assert.equal((await v1.request({ type: "tab", action: "close", tab: popup })).type, "ack");
    await v1.next((m) => m.type === "state" && m.session.tabs.length === 1);
    const missing = await v1.request({ type: "tab", action: "switch", tab: "t99" });
    assert.match(missing.error, /no tab "t99"/);
  });

  await t.step("a page error is an event with a linked screenshot", async () => {
    await v1.request({ type: "mouse", action: "click", x: 550, y: 125 });
    const { event } = await v1.next(isEvent("page_error"));
    assert.match(event.message, /boom from the test page/);
    assert.equal(event.screenshot_url, `/api/sessions/${id}/screenshots/1`);
    assert.equal(event.image_base64, undefined, "viewers get the link, not the bytes");
    const shot = await waitFor(async () => {
      const res = await fetch(base + event.screenshot_url);
      if (res.status !== 200) {
        await res.body?.cancel();
        return null;
      }
      return res;
    }, { what: "the stored screenshot" });
    assert.equal(shot.headers.get("content-type"), "image/jpeg");
    const bytes = new Uint8Array(await shot.arrayBuffer());
    assert.deepEqual([...bytes.subarray(0, 2)], [0xff, 0xd8]);
    const none = await api(base, `/api/sessions/${id}/screenshots/7`);
    assert.equal(none.status, 404);
  });

  await t.step("pause stops the stream and refuses input; resume restarts it", async () => {
    const paused = await api(base, `/api/sessions/${id}/pause`, { method: "POST" });
    assert.equal(paused.status, 200);
    assert.equal(paused.body.state, "paused");
    const refused = await v1.request({ type: "mouse", action: "click", x: 1, y: 1 });
    assert.match(refused.error, /paused/);
    const resumed = await api(base, `/api/sessions/${id}/resume`, { method: "POST" });
    assert.equal(resumed.body.state, "active");
    assert.equal((await v1.request({ type: "mouse", action: "click", x: 1, y: 1 })).type, "ack");
  });

  await t.step("GET /api/sessions/:id/screenshot answers a PNG", async () => {
    const res = await fetch(`${base}/api/sessions/${id}/screenshot`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "image/png");
    const bytes = new Uint8Array(await res.arrayBuffer());
    assert.deepEqual([...bytes.subarray(1, 4)], [0x50, 0x4e, 0x47]);
  });

  let second = "";
  await t.step("when every slot is taken, POST answers 429 with Retry-After", async () => {
    const ok = await api(base, "/api/sessions", {
      method: "POST",
      json: { url: `${pages.url}/anim` },
    });
    assert.equal(ok.status, 201);
    second = ok.body.id;
    const full = await api(base, "/api/sessions", {
      method: "POST",
      json: { url: `${pages.url}/` },
    });
    assert.equal(full.status, 429);
    assert.match(full.body.error, /STREAMPLAY_MAX_SESSIONS/);
    assert.ok(Number(full.headers.get("retry-after")) > 0);
  });

  await t.step(
    "DELETE ends a session with final stats; viewers are told; the slot frees",
    async () => {
      const res = await api(base, `/api/sessions/${id}`, { method: "DELETE" });
      assert.equal(res.status, 200);
      assert.equal(res.body.state, "stopped");
      assert.equal(res.body.active, false);
      assert.equal(res.body.final.reason, "deleted");
      assert.ok(res.body.final.frames_captured > 0);
      assert.ok(res.body.final.frames_sent > 0);
      assert.ok(res.body.final.viewers_max >= 2);
      assert.ok(res.body.final.console_messages >= 4);
      const ended = await v1.next((m) => m.type === "ended");
      assert.equal(ended.state, "stopped");
      await v1.closed;
      await v2.closed;
      const again = await api(base, `/api/sessions/${id}`, { method: "DELETE" });
      assert.equal(again.status, 200, "DELETE of an ended session answers its final stats");
      const third = await api(base, "/api/sessions", {
        method: "POST",
        json: { url: `${pages.url}/` },
      });
      assert.equal(third.status, 201);
      for (const s of [second, third.body.id]) {
        assert.equal((await api(base, `/api/sessions/${s}`, { method: "DELETE" })).status, 200);
      }
      assert.deepEqual((await api(base, "/api/sessions")).body.sessions, []);
    },
  );

  await t.step("unknown or ended sessions answer 404 / 409", async () => {
    assert.equal((await api(base, "/api/sessions/job_nope")).status, 404);
    assert.equal((await api(base, "/api/sessions/job_nope", { method: "DELETE" })).status, 404);
    const nav = await api(base, "/api/sessions/job_nope/navigate", {
      method: "POST",
      json: { url: `${pages.url}/` },
    });
    assert.equal(nav.status, 404);
    const ws = await api(base, "/ws/sessions/job_nope", {
      headers: { upgrade: "websocket", connection: "upgrade" },
    });
    assert.equal(ws.status, 404);
    assert.match(ws.body.error, /job_nope/);
    const ended = await api(base, `/api/sessions/${id}/pause`, { method: "POST" });
    assert.equal(ended.status, 409);
    const noop = await api(base, "/api/jobs", { method: "POST", json: { type: "noop" } });
    assert.equal((await api(base, `/api/sessions/${noop.body.id}`)).status, 404);
  });

  await t.step("the session's events and final state are in the job history", async () => {
    const stored = await waitFor(async () => {
      const { body } = await api(base, "/api/jobs?type=session&status=succeeded");
      return body.jobs.find((j: Json) => j.id === id);
    }, { what: "the session in DuckDB" });
    assert.equal(stored.result.reason, "deleted");
    const { body } = await api(
      base,
      `/api/jobs/${id}/events?type=console,navigation,page_error,viewer,session,tab`,
    );
    const types = new Set(body.events.map((e: Json) => e.type));
    for (const type of ["console", "navigation", "page_error", "viewer", "session", "tab"]) {
      assert.ok(types.has(type), `${type} events stored`);
    }
    const error = body.events.find((e: Json) => e.type === "page_error" && e.screenshot === 1);
    assert.ok(error.image_base64.length > 100, "the screenshot is stored with the event");
    const last = body.events.filter((e: Json) => e.type === "session").at(-1);
    assert.equal(last.state, "stopped");
  });

  secretAbort.abort();
  await secret.finished;
});
