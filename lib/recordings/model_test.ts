/**
 * Recording basics without a server: ids and paths, ages, the video size a profile gives a
 * viewport, the crash-safe muxer arguments, and the DuckDB projections of `recordings` and
 * `recording_events` (latest wins, replays harmless, deletions stick, images not copied).
 */
import assert from "node:assert/strict";
import {
  isRecordingId,
  newRecordingId,
  parseAge,
  recordingOutput,
  recordingPaths,
} from "./model.ts";
import { PROFILES, progressiveFileMuxArgs } from "../video/codecs.ts";
import { openHistory, type StreamEntry } from "../history/store.ts";
import { RECORDING_PROJECTIONS } from "./catalog.ts";
import { tempDir } from "../../tests/helpers.ts";

Deno.test("recording ids are checked before any path is built from them", () => {
  const id = newRecordingId();
  assert.ok(isRecordingId(id), id);
  assert.equal(recordingPaths("/data", id).video("mp4"), `/data/recordings/${id}/video.mp4`);
  assert.equal(recordingPaths("/data", id).shot(3), `/data/recordings/${id}/shots/3.jpg`);
  for (
    const bad of [
      "",
      "..",
      "../etc",
      "rec_../../../etc",
      `${id}/..`,
      `${id}\0`,
      "REC_0AB",
      id + "x",
    ]
  ) {
    assert.equal(isRecordingId(bad), false, bad);
    assert.throws(() => recordingPaths("/data", bad), /is not a recording id/);
  }
  assert.throws(() => recordingPaths("/data", id).shot(0), /screenshot number/);
  assert.throws(() => recordingPaths("/data", id).shot(1.5), /screenshot number/);
});

Deno.test("ages like 7d are read as milliseconds; anything else is refused", () => {
  assert.equal(parseAge("45s"), 45_000);
  assert.equal(parseAge("30m"), 1_800_000);
  assert.equal(parseAge("12h"), 43_200_000);
  assert.equal(parseAge("7d"), 604_800_000);
  assert.equal(parseAge("2w"), 1_209_600_000);
  assert.equal(parseAge(" 1.5h "), 5_400_000);
  for (const bad of ["", "7", "d", "7 days", "-1d", "1y", "7d2h"]) {
    assert.equal(parseAge(bad), null, bad);
  }
});

Deno.test("the video keeps the viewport, shrunk to fit the profile, unless a size is asked for", () => {
  const hd = { width: 1280, height: 720 };
  assert.deepEqual(recordingOutput(PROFILES.medium, hd, {}), { width: 1280, height: 720, fps: 30 });
  assert.deepEqual(recordingOutput(PROFILES.low_bandwidth, hd, {}), {
    width: 854,
    height: 480,
    fps: 15,
  });
  assert.deepEqual(recordingOutput(PROFILES.medium, { width: 1920, height: 1080 }, { fps: 25 }), {
    width: 1280,
    height: 720,
    fps: 25,
  });
  assert.deepEqual(recordingOutput(PROFILES.high, { width: 800, height: 600 }, {}), {
    width: 800,
    height: 600,
    fps: 30,
  });
  assert.deepEqual(recordingOutput(PROFILES.medium, hd, { width: 640 }), {
    width: 640,
    height: 360,
    fps: 30,
  });
  assert.deepEqual(recordingOutput(PROFILES.medium, hd, { width: 320, height: 320 }), {
    width: 320,
    height: 320,
    fps: 30,
  });
});

Deno.test("files are muxed so that a crash leaves them playable", () => {
  const mp4 = progressiveFileMuxArgs("mp4", "/r/video.mp4");
  assert.ok(mp4.includes("+frag_keyframe+empty_moov+default_base_moof"));
  assert.equal(mp4.at(-1), "/r/video.mp4");
  const webm = progressiveFileMuxArgs("webm", "/r/video.webm");
  assert.deepEqual(webm.slice(0, 4), ["-f", "webm", "-cluster_time_limit", "1000"]);
  for (const args of [mp4, webm]) assert.ok(args.join(" ").includes("-flush_packets 1"));
});

Deno.test("the recordings tables follow the events: latest state wins, deleted stays deleted", async () => {
  await using dir = await tempDir();
  await using history = await openHistory(`${dir.path}/h.duckdb`, {
    projections: RECORDING_PROJECTIONS,
  });
  let seq = 1_000_000n;
  const entry = (jobId: string, body: Record<string, unknown>): StreamEntry => ({
    seq: seq++,
    jobId,
    type: String(body.type),
    json: JSON.stringify({ ts: 1_700_000_000_000, ...body }),
  });
  const meta = (id: string, state: string, frames: number) => ({
    type: "recording",
    recording_id: id,
    session_id: "job_s",
    state,
    reason: null,
    source: "session",
    replay_of: null,
    codec: "h264",
    encoder: "libx264",
    hardware: false,
    quality: "medium",
    container: "mp4",
    width: 1280,
    height: 720,
    fps: 10,
    node: "http://127.0.0.1:8000",
    start_url: "http://127.0.0.1:8080/",
    viewport: { width: 1280, height: 720 },
    from_first_load: false,
    started_at: 1_700_000_000_000,
    video_started_at: 1_700_000_000_100,
    stopped_at: state === "recording" ? null : 1_700_000_010_000,
    duration_seconds: frames / 10,
    frame_count: frames,
    file_size_bytes: frames * 1000,
    storage_bytes: frames * 1100,
    screenshots: 1,
    stats: { frames_written: frames },
  });
  const a = "rec_0000000000000000a";
  const b = "rec_0000000000000000b";
  const started = entry("job_s", meta(a, "recording", 0));
  const error = entry("job_s", {
    type: "page_error",
    message: "boom",
    image_base64: "AAAA",
    recording_id: a,
    recording_t_ms: 1234,
    recording_screenshot: 1,
  });
  const unrelated = entry("job_s", { type: "console", message: "not recorded" });
  const done = entry("job_s", meta(a, "completed", 100));
  const other = entry("job_s", meta(b, "completed", 5));
  // Two states of one recording in one batch, then an older one replayed after a crash.
  await history.applyEvents([started, error, unrelated, done, other]);
  await history.applyEvents([started], { replay: true });
  const rows = await history.query<Record<string, unknown>>(
    "SELECT id, state, frame_count, epoch_ms(stopped_at) AS stopped FROM recordings ORDER BY id",
  );
  assert.deepEqual(rows, [
    { id: a, state: "completed", frame_count: 100, stopped: 1_700_000_010_000 },
    { id: b, state: "completed", frame_count: 5, stopped: 1_700_000_010_000 },
  ]);
  await history.applyEvents([error], { replay: true });
  const timeline = await history.query<{ recording_id: string; data: string }>(
    "SELECT recording_id, data FROM recording_events",
  );
  assert.equal(timeline.length, 1, "once, whatever is replayed; unrelated events left out");
  const stored = JSON.parse(timeline[0]!.data);
  assert.equal(stored.message, "boom");
  assert.equal(stored.recording_t_ms, 1234);
  assert.equal("image_base64" in stored, false, "images are not copied into timelines");

  await history.execute(`INSERT INTO recording_tombstones VALUES ($1, now())`, [b]);
  await history.execute(`DELETE FROM recordings WHERE id = $1`, [b]);
  await history.applyEvents([entry("job_s", meta(b, "incomplete", 7))]);
  const left = await history.query<{ id: string }>("SELECT id FROM recordings");
  assert.deepEqual(left.map((r) => r.id), [a], "a late event does not bring a deleted one back");
});
