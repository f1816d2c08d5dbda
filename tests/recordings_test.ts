/**
 * Recordings on a real server, Chromium, ffmpeg and ffprobe: a constant-rate video as long as the
 * wall time with a timeline of selectors, text and error screenshots, every codec, Range, refused
 * ids, list filters, and the installed CLI (list, download, delete, clean) from another directory.
 */
import assert from "node:assert/strict";
import { api, startServer, tempDir, waitFor } from "./helpers.ts";
import { installCli } from "./cli_helpers.ts";
import { type Json, openViewer, startPages } from "./session_helpers.ts";
import { act, downloadVideo, FFPROBE_CODEC, probe, waitForRecording } from "./recording_helpers.ts";
import { CODECS } from "../lib/video/codecs.ts";

Deno.test("recordings: video, timeline, codecs, Range, ids, list, CLI and clean", async (t) => {
  await using installed = await installCli();
  const cli = (args: string[], server: string, cwd: string) =>
    installed.run(["recordings", ...args, "--server", server], { cwd });
  await using pages = startPages();
  await using dir = await tempDir();
  await using server = await startServer();
  const base = server.url;
  const created = await api(base, "/api/sessions", {
    method: "POST",
    json: { url: `${pages.url}/` },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const sessionId: string = created.body.id;
  const viewer = await openViewer(created.body.ws_url);
  let recording: Json;
  let file = "";

  await t.step("bad recording options are refused with a 400 naming the field", async () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ codec: "mpeg2" }, /^codec: /],
      [{ quality: "ultra" }, /^quality: /],
      [{ fps: 0 }, /^fps: /],
      [{ width: 641 }, /^width: must be even/],
      [{ colour: "red" }, /colour/],
    ];
    for (const [json, error] of bad) {
      const res = await api(base, `/api/sessions/${sessionId}/recording`, { method: "POST", json });
      assert.equal(res.status, 400, JSON.stringify(json));
      assert.match(res.body.error, error);
    }
    const none = await api(base, "/api/sessions/job_nope/recording", { method: "POST", json: {} });
    assert.equal(none.status, 404);
    const idle = await api(base, `/api/sessions/${sessionId}/recording`, { method: "DELETE" });
    assert.equal(idle.status, 409);
    assert.match(idle.body.error, /not being recorded/);
  });

  await t.step("a recorded session: ffprobe reads a video as long as the wall time", async () => {
    const started = await api(base, `/api/sessions/${sessionId}/recording`, {
      method: "POST",
      json: { codec: "h264", fps: 10 },
    });
    // Wall time: from the recording's start (it has started when the POST answers) to asking it
    // to stop (finishing the file comes after).
    const t0 = performance.now();
    assert.equal(started.status, 201, JSON.stringify(started.body));
    assert.equal(started.body.state, "recording");
    assert.equal(started.body.container, "mp4");
    assert.deepEqual([started.body.width, started.body.height], [1280, 720]);
    const again = await api(base, `/api/sessions/${sessionId}/recording`, {
      method: "POST",
      json: {},
    });
    assert.equal(again.status, 409, "one recording at a time");
    await act(viewer, { type: "mouse", action: "click", x: 150, y: 150 });
    await act(viewer, { type: "mouse", action: "click", x: 200, y: 320 });
    await act(viewer, { type: "text", text: "hello recording" });
    await act(viewer, { type: "key", action: "press", key: "Enter" });
    await act(viewer, { type: "mouse", action: "click", x: 550, y: 120 });
    await viewer.next((m) => m.type === "event" && m.event.type === "page_error");
    await new Promise((r) => setTimeout(r, 2_500));
    const wall = (performance.now() - t0) / 1000;
    const stopped = await api(base, `/api/sessions/${sessionId}/recording`, { method: "DELETE" });
    assert.equal(stopped.status, 200, JSON.stringify(stopped.body));
    recording = stopped.body;
    assert.equal(recording.state, "completed");
    assert.equal(recording.recording_id, started.body.recording_id);
    assert.ok(recording.file_size_mb > 0 && recording.frame_count > 0);
    file = await downloadVideo(base, recording, dir.path);
    const p = await probe(file);
    assert.equal(p.codec, "h264");
    assert.deepEqual([p.width, p.height], [1280, 720]);
    assert.ok(
      Math.abs(p.duration - wall) / wall <= 0.1,
      `${p.duration} s of video, ${wall} s wall (${JSON.stringify(recording.stats)})`,
    );
    assert.ok(Math.abs(p.frames - 10 * p.duration) <= 1, `${p.frames} frames in ${p.duration} s`);
    assert.equal(p.frames, recording.frame_count);
  });

  await t.step(
    "its timeline: the click with a selector, the typed text, the error's screenshot",
    async () => {
      const { body } = await api(base, `/api/recordings/${recording.recording_id}/timeline`);
      const entries: Json[] = body.entries;
      const click = entries.find((e) =>
        e.type === "input" && e.input.action === "click" && e.target?.selector === "#b"
      );
      assert.ok(click, `the click on the button, named by its id: ${JSON.stringify(entries)}`);
      assert.deepEqual([click.input.x, click.input.y], [150, 150]);
      assert.equal(click.target.text, "Click me");
      const typed = entries.find((e) => e.type === "input" && e.input.type === "text");
      assert.equal(typed.input.text, "hello recording");
      assert.equal(typed.target.selector, "#i1");
      const error = entries.find((e) => e.type === "page_error");
      assert.match(error.message, /boom from the test page/);
      assert.ok(error.screenshot_url, "the error links its screenshot");
      assert.ok(entries.some((e) => e.type === "console" && e.message === "typed:hello recording"));
      const times = entries.map((e) => e.t);
      assert.deepEqual(times, [...times].sort((a, b) => a - b), "in video order");
      assert.ok(error.t > click.t && error.t < recording.duration_seconds);
      const shot = await fetch(base + error.screenshot_url);
      assert.equal(shot.status, 200);
      assert.equal(shot.headers.get("content-type"), "image/jpeg");
      assert.deepEqual([...new Uint8Array(await shot.arrayBuffer()).subarray(0, 2)], [0xff, 0xd8]);
      const one = await api(base, `/api/recordings/${recording.recording_id}`);
      assert.equal(one.body.timeline.page_errors, 1);
      assert.equal(one.body.timeline.errors_with_screenshot >= 1, true);
      assert.equal(one.body.timeline.first_error.message, "boom from the test page");
      assert.ok(one.body.timeline.clicks >= 3);
    },
  );

  await t.step("the video is served with Range: 206 and the right bytes", async () => {
    const whole = await Deno.readFile(file);
    const url = `${base}/api/recordings/${recording.recording_id}/video`;
    const part = await fetch(url, { headers: { range: "bytes=100-1099" } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get("content-range"), `bytes 100-1099/${whole.length}`);
    assert.equal(part.headers.get("content-length"), "1000");
    assert.deepEqual(new Uint8Array(await part.arrayBuffer()), whole.subarray(100, 1100));
    const tail = await fetch(url, { headers: { range: "bytes=-64" } });
    assert.equal(tail.status, 206);
    assert.deepEqual(new Uint8Array(await tail.arrayBuffer()), whole.subarray(whole.length - 64));
    const outside = await fetch(url, { headers: { range: `bytes=${whole.length + 10}-` } });
    assert.equal(outside.status, 416);
    assert.equal(outside.headers.get("content-range"), `bytes */${whole.length}`);
    await outside.body?.cancel();
    const full = await fetch(`${url}?download=1`);
    assert.equal(full.headers.get("accept-ranges"), "bytes");
    assert.match(full.headers.get("content-disposition")!, /attachment; filename="rec_.*\.mp4"/);
    assert.equal((await full.arrayBuffer()).byteLength, whole.length);
  });

  await t.step("ids that try to leave the recordings directory get 400 or 404", async () => {
    for (
      const path of [
        "/api/recordings/..%2F..%2Fstreamplay.duckdb/video",
        "/api/recordings/%2Fetc%2Fpasswd",
        "/api/recordings/rec_..%2F..%2F..%2Fx/timeline",
        "/api/recordings/..%2F/screenshots/1",
        `/api/recordings/${recording.recording_id}/screenshots/..%2F..%2Fmeta.json`,
        `/api/recordings/${recording.recording_id}/screenshots/-1`,
      ]
    ) {
      const res = await fetch(base + path);
      assert.equal(res.status, 400, path);
      const body = await res.json();
      assert.match(body.error, /^(id|n): /, path);
    }
    for (const path of ["/api/recordings/../../etc/passwd/video", "/api/recordings/rec_/video"]) {
      const res = await fetch(base + path);
      assert.ok(res.status === 404 || res.status === 400, `${path}: ${res.status}`);
      await res.body?.cancel();
    }
    const unknown = await api(base, "/api/recordings/rec_0000000000000000a/video");
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.error, /No recording/);
    const noShot = await api(base, `/api/recordings/${recording.recording_id}/screenshots/999`);
    assert.equal(noShot.status, 404);
  });

  await t.step("every codec of the table gives a file ffprobe reads", async () => {
    for (const codec of CODECS) {
      const started = await api(base, `/api/sessions/${sessionId}/recording`, {
        method: "POST",
        json: { codec, quality: "low_bandwidth", fps: 10, width: 320, height: 180 },
      });
      assert.equal(started.status, 201, `${codec}: ${JSON.stringify(started.body)}`);
      await act(viewer, { type: "mouse", action: "click", x: 150, y: 150 });
      await new Promise((r) => setTimeout(r, 1_500));
      const stopped = await api(base, `/api/sessions/${sessionId}/recording`, {
        method: "DELETE",
      });
      assert.equal(stopped.body.state, "completed", `${codec}: ${stopped.body.reason}`);
      assert.equal(stopped.body.container, codec === "vp8" || codec === "vp9" ? "webm" : "mp4");
      const p = await probe(await downloadVideo(base, stopped.body, dir.path));
      assert.equal(p.codec, FFPROBE_CODEC[codec], codec);
      assert.deepEqual([p.width, p.height], [320, 180], codec);
      assert.ok(p.frames >= 10, `${codec}: ${p.frames} frames`);
    }
  });

  await t.step(
    "the list filters by session, pages with a cursor and refuses bad input",
    async () => {
      const all = await api(base, `/api/recordings?session_id=${sessionId}`);
      assert.equal(all.body.recordings.length, 1 + CODECS.length);
      const first = await api(base, `/api/recordings?session_id=${sessionId}&limit=4`);
      assert.equal(first.body.recordings.length, 4);
      const second = await api(
        base,
        `/api/recordings?session_id=${sessionId}&limit=4&cursor=${first.body.next_cursor}`,
      );
      const ids = [...first.body.recordings, ...second.body.recordings].map((r: Json) =>
        r.recording_id
      );
      assert.deepEqual(ids, all.body.recordings.map((r: Json) => r.recording_id));
      assert.equal(second.body.next_cursor, null);
      const other = await api(base, "/api/recordings?session_id=job_other");
      assert.deepEqual(other.body.recordings, []);
      assert.equal((await api(base, "/api/recordings?limit=0")).status, 400);
      assert.equal((await api(base, "/api/recordings?cursor=zzz")).status, 400);
      assert.equal((await api(base, "/api/recordings?state=paused")).status, 400);
    },
  );

  await t.step(
    "CLI: list, download, delete; clean --older-than removes only older ones",
    async () => {
      const listed = await cli(["list", "--session-id", sessionId], base, dir.path);
      assert.equal(listed.code, 0, listed.err);
      assert.match(listed.out, new RegExp(recording.recording_id));
      assert.match(listed.out, /completed\s+h264\s+medium\s+1280x720@10/);
      const downloaded = await cli(
        ["download", recording.recording_id, "-o", "copy.mp4"],
        base,
        dir.path,
      );
      assert.equal(downloaded.code, 0, downloaded.err);
      assert.deepEqual(await Deno.readFile(`${dir.path}/copy.mp4`), await Deno.readFile(file));
      const piped = await cli(["download", recording.recording_id, "-o", "-"], base, dir.path);
      assert.equal(piped.code, 0, piped.err);
      assert.deepEqual(piped.bytes, await Deno.readFile(file));
      const unwritable: Array<[string, RegExp]> = [
        ["/nonexistent/dir/x.mp4", /^cannot write \/nonexistent\/dir\/x\.mp4: streamplay writes /],
        ["missing/x.mp4", /^cannot write missing\/x\.mp4: its directory does not exist$/],
      ];
      for (const [output, pattern] of unwritable) {
        const r = await cli(["download", recording.recording_id, "-o", output], base, dir.path);
        assert.equal(r.code, 1, r.err);
        assert.equal(r.err.trim().split("\n").length, 1, `one line, no stack: ${r.err}`);
        assert.match(r.err.trim(), pattern);
      }

      // An older recording and a newer one, at least 3 s apart.
      const older = (await api(base, `/api/recordings?session_id=${sessionId}&limit=1`)).body
        .recordings[0];
      await new Promise((r) => setTimeout(r, 3_000));
      await api(base, `/api/sessions/${sessionId}/recording`, { method: "POST", json: { fps: 5 } });
      await new Promise((r) => setTimeout(r, 500));
      const newer = (await api(base, `/api/sessions/${sessionId}/recording`, { method: "DELETE" }))
        .body;
      await waitForRecording(base, newer.recording_id, "completed");
      const age = (r: Json) => (Date.now() - Date.parse(r.started_at)) / 1000;
      assert.ok(age(older) - age(newer) >= 2.5);
      const cut = Math.round((age(older) + age(newer)) / 2);
      const dry = await cli(["clean", "--older-than", `${cut}s`, "--dry-run"], base, dir.path);
      assert.equal(dry.code, 0, dry.err);
      assert.match(dry.out, new RegExp(`would remove ${1 + CODECS.length} recordings .*nothing`));
      assert.match(dry.out, new RegExp(`^  ${recording.recording_id}$`, "m"));
      assert.doesNotMatch(dry.out, new RegExp(newer.recording_id));
      const kept = (await api(base, `/api/recordings?session_id=${sessionId}`)).body.recordings;
      assert.equal(kept.length, 2 + CODECS.length, "a dry run removes nothing");
      const bad = await cli(["clean", "--older-than", "soon"], base, dir.path);
      assert.equal(bad.code, 2);
      assert.match(bad.err, /older_than: "soon" is not an age/);
      const huge = await api(base, "/api/recordings/clean", {
        method: "POST",
        json: { older_than: "9999999999999999d" },
      });
      assert.equal(huge.status, 400, JSON.stringify(huge.body));
      assert.match(huge.body.error, /^older_than: .* beyond/);
      const cleaned = await cli(["clean", "--older-than", `${cut}s`], base, dir.path);
      assert.equal(cleaned.code, 0, cleaned.err);
      assert.match(cleaned.out, new RegExp(`removed ${1 + CODECS.length} recordings`));
      const left = (await api(base, `/api/recordings?session_id=${sessionId}`)).body.recordings;
      assert.deepEqual(left.map((r: Json) => r.recording_id), [newer.recording_id]);
      const gone = await api(base, `/api/recordings/${recording.recording_id}/video`);
      assert.equal(gone.status, 404);
      await waitFor(async () => {
        try {
          await Deno.stat(`${server.dataDir}/recordings/${recording.recording_id}`);
          return false;
        } catch {
          return true;
        }
      }, { what: "the files of the cleaned recording to be gone" });

      const deleted = await cli(["delete", newer.recording_id], base, dir.path);
      assert.equal(deleted.code, 0, deleted.err);
      assert.match(deleted.out, new RegExp(`deleted ${newer.recording_id}`));
      const missing = await cli(["delete", newer.recording_id], base, dir.path);
      assert.equal(missing.code, 1);
      assert.match(missing.err, /404/);
      const empty = await cli(["list", "--session-id", sessionId], base, dir.path);
      assert.match(empty.out, /No recordings/);
    },
  );

  await t.step("stopping a session stops its recording (started without a body)", async () => {
    const started = await api(base, `/api/sessions/${sessionId}/recording`, { method: "POST" });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    assert.deepEqual([started.body.codec, started.body.quality], ["h264", "medium"]);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await api(base, `/api/sessions/${sessionId}`, { method: "DELETE" })).status, 200);
    const { body } = await api(base, `/api/recordings?session_id=${sessionId}`);
    const last = await waitForRecording(base, body.recordings[0].recording_id, "completed");
    assert.match(last.reason, /session stopped/);
    await viewer.closed;
  });
});
