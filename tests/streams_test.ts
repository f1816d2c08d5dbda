/**
 * Video streams of a live session on a real server, Chromium and ffmpeg, read by real clients: HLS
 * and DASH over HTTP with their headers and window, low-latency DASH, player counts, stop, a
 * degraded or restarted encoder, the session's end ending its streams, and 400s for bad input.
 */
import assert from "node:assert/strict";
import { api, startServer, tempDir, waitFor } from "./helpers.ts";
import { type Json, startPages } from "./session_helpers.ts";
import { childPids, probe } from "./stream_helpers.ts";

/** The ffmpeg of a stream: the server's ffmpeg child working in the stream's directory. */
async function ffmpegOf(serverPid: number, streamId: string): Promise<number | undefined> {
  for (const pid of await childPids(serverPid, "ffmpeg")) {
    const { stdout } = await new Deno.Command("readlink", {
      args: [`/proc/${pid}/cwd`],
      stdout: "piped",
    }).output();
    if (new TextDecoder().decode(stdout).trim().endsWith(`/${streamId}`)) return pid;
  }
  return undefined;
}

async function fetchBytes(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers });
  const body = new Uint8Array(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, body };
}

/** Segment URIs of an HLS media playlist, absolute. */
function segmentsOf(playlist: string, url: string): string[] {
  return playlist.split("\n").filter((l) => l && !l.startsWith("#")).map((l) =>
    new URL(l, url).href
  );
}

Deno.test("video streams: HLS and DASH to real clients, totals, health, limits, bad input", async (t) => {
  await using pages = startPages();
  await using server = await startServer({ env: { STREAMPLAY_MAX_STREAMS: "2" } });
  const base = server.url;
  const created = await api(base, "/api/sessions", {
    method: "POST",
    json: { url: `${pages.url}/anim`, max_fps: 30 },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const sessionId = created.body.id;
  const start = (json: Record<string, unknown>) =>
    api(base, `/api/sessions/${sessionId}/stream`, { method: "POST", json });
  const status = async (id: string) => (await api(base, `/api/streams/${id}`)).body;
  let hls: Json;

  await t.step("bad input gets a 400 that says why", async () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ protocol: "rtmp" }, /^rtmp_url: is required for protocol rtmp/],
      [{ protocol: "hls", codec: "vp9" }, /^codec: hls cannot carry vp9 .*use dash/],
      [{ protocol: "dash", codec: "mpeg2" }, /^codec: /],
      [
        { protocol: "rtmp", codec: "h265", rtmp_url: "rtmp://127.0.0.1/live" },
        /^codec: rtmp cannot carry h265 \(it carries h264\)/,
      ],
      [{ width: 1281 }, /^width: must be even/],
      [{ height: 719 }, /^height: must be even/],
      [{ width: 20 }, /^width: must be at least 64/],
      [{ height: 4000 }, /^height: must be at most 2160/],
      [{ frame_rate: 0 }, /^frame_rate: must be from 1 to 60 frames per second/],
      [{ frame_rate: 61 }, /^frame_rate: must be from 1 to 60 frames per second/],
      [{ frame_rate: 29.97 }, /^frame_rate: /],
      [{ quality: "4k" }, /^quality: /],
      [{ protocol: "webrtc" }, /^protocol: /],
      [{ protocol: "rtmp", rtmp_url: "http://127.0.0.1/live" }, /^rtmp_url: must be an rtmp/],
      [{ protocol: "hls", rtmp_key: "k" }, /^rtmp_key: is only for protocol rtmp/],
      [
        { protocol: "rtmp", rtmp_url: "rtmp://169.254.169.254/live" },
        /^rtmp_url: .* is refused: .*metadata/,
      ],
      [{ colour: "red" }, /colour/],
    ];
    for (const [json, error] of bad) {
      const res = await start(json);
      assert.equal(res.status, 400, JSON.stringify(json));
      assert.match(res.body.error, error, JSON.stringify(json));
    }
    const unknown = await api(base, "/api/sessions/job_nope/stream", { method: "POST", json: {} });
    assert.equal(unknown.status, 404);
    const missing = await api(base, "/api/streams/str_nope");
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.body, { active: false, error: "No active stream" });
    assert.equal((await api(base, "/api/streams/str_nope", { method: "DELETE" })).status, 404);
    assert.equal((await fetch(`${base}/streams/str_nope/playlist.m3u8`)).status, 404);
    assert.deepEqual((await api(base, "/api/streams")).body, { streams: [] });
  });

  await t.step("health lists the encoders that work; the profiles are listed", async () => {
    const health = await waitFor(async () => {
      const { body } = await api(base, "/api/health");
      return body.encoders ? body : null;
    }, { what: "encoder detection" });
    assert.equal(health.encoders.h264.at(-1).encoder, "libx264");
    for (const codec of ["h264", "h265", "vp9", "vp8", "av1"]) {
      assert.ok(health.encoders[codec].length > 0, codec);
    }
    const { body } = await api(base, "/api/stream-profiles");
    assert.equal(body.default, "medium");
    assert.equal(body.profiles.length, 9);
    const low = body.profiles.find((p: Json) => p.name === "low_bandwidth");
    assert.equal(low.bitrate_kbps, 500);
    assert.equal(low.crf, 28);
    assert.deepEqual(body.protocols.rtmp, ["h264"]);
  });

  await t.step(
    "HLS: ffprobe reads the playlist over HTTP with the codec and size asked",
    async () => {
      const res = await start({
        protocol: "hls",
        codec: "h264",
        quality: "medium",
        width: 640,
        height: 360,
        frame_rate: 25,
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      hls = res.body;
      assert.match(hls.stream_id, /^str_/);
      assert.equal(res.headers.get("location"), `/api/streams/${hls.stream_id}`);
      assert.equal(hls.session_id, sessionId);
      assert.equal(hls.status, "active");
      assert.equal(hls.hls_url, `${base}/streams/${hls.stream_id}/playlist.m3u8`);
      assert.equal(hls.stream_url, hls.hls_url);
      assert.equal(hls.player_url, `${base}/player/${hls.stream_id}`);
      assert.equal(hls.dash_url, undefined);
      assert.deepEqual([hls.codec, hls.width, hls.height, hls.frame_rate], ["h264", 640, 360, 25]);
      assert.deepEqual(await probe(hls.stream_url), { codec: "h264", width: 640, height: 360 });

      const playlist = await fetchBytes(hls.hls_url);
      assert.equal(playlist.headers.get("content-type"), "application/vnd.apple.mpegurl");
      assert.equal(playlist.headers.get("cache-control"), "no-cache");
      const text = new TextDecoder().decode(playlist.body);
      assert.match(text, /#EXT-X-TARGETDURATION:1\n/);
      const segment = await fetchBytes(segmentsOf(text, hls.hls_url)[0]!);
      assert.equal(segment.status, 200);
      assert.equal(segment.headers.get("content-type"), "video/mp2t");
      assert.match(segment.headers.get("cache-control")!, /immutable/);
      assert.equal(segment.body[0], 0x47, "MPEG-TS sync byte");
      const list = (await api(base, "/api/streams")).body.streams;
      assert.deepEqual(list.map((s: Json) => s.stream_id), [hls.stream_id]);
      await waitFor(async () => {
        const text = await (await fetch(`${base}/metrics`)).text();
        return /^streamplay_streams_active\{protocol="hls"\} 1$/m.test(text) &&
          /^streamplay_stream_frames_total\{protocol="hls"\} [1-9]/m.test(text);
      }, { what: "the stream in /metrics" });
    },
  );

  await t.step("HLS keeps a sliding window: old segments leave the list and the disk", async () => {
    const first = `${base}/streams/${hls.stream_id}/seg_00000.ts`;
    const text = await waitFor(async () => {
      const t = new TextDecoder().decode((await fetchBytes(hls.hls_url)).body);
      const seq = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(t)?.[1]);
      return seq >= 9 ? t : null;
    }, { timeoutMs: 30_000, what: "the window to slide" });
    assert.ok(segmentsOf(text, hls.hls_url).length <= 6);
    assert.equal((await fetchBytes(first)).status, 404);
    const files = [...Deno.readDirSync(`${server.dataDir}/streams/${hls.stream_id}`)];
    assert.ok(files.length <= 10, `${files.length} files on disk`);
  });

  await t.step("LL-HLS blocking reload: the playlist waits for the segment asked", async () => {
    const text = new TextDecoder().decode((await fetchBytes(hls.hls_url)).body);
    assert.match(text, /^#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES$/m);
    const first = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(text)![1]);
    const next = first + segmentsOf(text, hls.hls_url).length;
    const t0 = performance.now();
    const blocked = new TextDecoder().decode(
      (await fetchBytes(`${hls.hls_url}?_HLS_msn=${next}`)).body,
    );
    const waited = performance.now() - t0;
    const after = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(blocked)![1]);
    assert.ok(after + segmentsOf(blocked, hls.hls_url).length - 1 >= next, "lists the segment");
    assert.ok(waited < 3_000, `${waited} ms`);
    const tooFar = await fetchBytes(`${hls.hls_url}?_HLS_msn=${next + 10}`);
    assert.equal(tooFar.status, 400);
  });

  await t.step("viewer_count counts the distinct players fetching segments", async () => {
    await waitFor(async () => (await status(hls.stream_id)).status.metrics.viewer_count === 0, {
      timeoutMs: 20_000,
      what: "earlier clients to leave the window",
    });
    const text = new TextDecoder().decode((await fetchBytes(hls.hls_url)).body);
    const seg = segmentsOf(text, hls.hls_url).at(-1)!;
    for (const player of ["player-a", "player-b", "player-a"]) {
      assert.equal((await fetchBytes(seg, { "x-playback-session-id": player })).status, 200);
    }
    await fetchBytes(hls.hls_url, { "x-playback-session-id": "player-c" });
    const { status: s } = await status(hls.stream_id);
    assert.equal(s.metrics.viewer_count, 2, "playlist-only clients are not viewers");
    assert.ok(s.metrics.current_fps > 5, JSON.stringify(s.metrics));
    assert.ok(s.metrics.current_bitrate > 0);
    assert.ok(s.metrics.encoder_speed > 0.2);
  });

  await t.step("stopping answers the totals served and removes the segments", async () => {
    const before = (await status(hls.stream_id)).status.metrics;
    const text = new TextDecoder().decode((await fetchBytes(hls.hls_url)).body);
    let downloaded = text.length;
    for (const seg of segmentsOf(text, hls.hls_url).slice(-2)) {
      downloaded += (await fetchBytes(seg)).body.length;
    }
    const res = await api(base, `/api/streams/${hls.stream_id}`, { method: "DELETE" });
    assert.equal(res.status, 200);
    assert.equal(res.body.success, true);
    const m = res.body.info.metrics;
    assert.equal(res.body.info.state, "stopped");
    assert.equal(m.bytes_sent, before.bytes_sent + downloaded);
    assert.equal(m.requests_served, before.requests_served + 3);
    assert.equal(m.segments_served, before.segments_served + 2);
    const uptime = (Date.now() - Date.parse(res.body.info.started_at)) / 1000;
    assert.ok(
      m.frames_sent > uptime * 25 * 0.3 && m.frames_sent <= uptime * 25 + 25,
      `${m.frames_sent} frames in ${uptime} s at 25 fps`,
    );
    assert.ok(m.bytes_encoded > 0);
    await assert.rejects(Deno.stat(`${server.dataDir}/streams/${hls.stream_id}`));
    const gone = await api(base, `/api/streams/${hls.stream_id}`);
    assert.equal(gone.status, 404);
    assert.equal(gone.body.error, "No active stream");
    assert.equal(gone.body.status.reason, "stopped");
    assert.equal((await fetchBytes(hls.hls_url)).status, 404);
    assert.equal(await ffmpegOf(server.process.pid, hls.stream_id), undefined);
  });

  await t.step(
    "DASH: the manifest names VP9 WebM segments; ffprobe reads them with the profile's size",
    async () => {
      const res = await start({ protocol: "dash", codec: "vp9", quality: "low_bandwidth" });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const dash = res.body;
      assert.equal(dash.stream_url, `${base}/streams/${dash.stream_id}/manifest.mpd`);
      assert.equal(dash.dash_url, dash.stream_url);
      assert.deepEqual([dash.width, dash.height, dash.frame_rate], [854, 480, 15]);
      const mpd = await fetchBytes(dash.dash_url);
      assert.equal(mpd.headers.get("content-type"), "application/dash+xml");
      const xml = new TextDecoder().decode(mpd.body);
      assert.match(xml, /type="dynamic"/);
      assert.match(xml, /<SegmentTemplate [^>]*media="seg_\$Number%05d\$\.webm"/);
      try {
        await waitFor(async () => {
          const init = await fetchBytes(`${base}/streams/${dash.stream_id}/init.webm`);
          return init.status === 200 && init.headers.get("content-type") === "video/webm";
        }, { what: "the init segment" });
        // ffprobe is given what a DASH client fetches (the init segment and the first media
        // segment the manifest names), not the live manifest: on a loaded machine VP9 runs behind
        // the manifest's wall-clock timeline and ffprobe then waits at its live edge for good.
        // dash.js plays the manifest itself in stream_player_test.ts.
        const manifest = new TextDecoder().decode((await fetchBytes(dash.dash_url)).body);
        const first = Number(/startNumber="(\d+)"/.exec(manifest)?.[1] ?? 1);
        const segmentUrl = `${base}/streams/${dash.stream_id}/seg_${
          String(first).padStart(5, "0")
        }.webm`;
        await waitFor(async () => (await fetchBytes(segmentUrl)).status === 200, {
          timeoutMs: 30_000,
          what: "the first media segment",
        });
        await using dir = await tempDir();
        const file = `${dir.path}/first.webm`;
        const init = await fetchBytes(`${base}/streams/${dash.stream_id}/init.webm`);
        const segment = await fetchBytes(segmentUrl);
        await Deno.writeFile(file, new Uint8Array([...init.body, ...segment.body]));
        assert.deepEqual(await probe(file), { codec: "vp9", width: 854, height: 480 });
      } finally {
        // Ended in any case, so a failure here does not hold a stream slot for the next steps.
        assert.equal(
          (await api(base, `/api/streams/${dash.stream_id}`, { method: "DELETE" })).status,
          200,
        );
      }
    },
  );

  let ll: Json;
  await t.step("low-latency DASH serves a segment while ffmpeg still writes it", async () => {
    const res = await start({
      protocol: "dash",
      codec: "h264",
      quality: "ultra_low_latency",
      width: 320,
      height: 180,
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    ll = res.body;
    assert.equal(ll.segment_seconds, 0.5);
    const xml = new TextDecoder().decode((await fetchBytes(ll.dash_url)).body);
    assert.match(xml, /availabilityTimeOffset=/);
    assert.match(xml, /<UTCTiming [^>]*value="[^"]*\/streams\/time"/);
    const zero = Date.parse(/availabilityStartTime="([^"]+)"/.exec(xml)![1]!);
    assert.ok(Math.abs(zero - Date.parse(ll.started_at)) < 3_000, "dated by the first frame");
    assert.deepEqual(await probe(ll.stream_url), { codec: "h264", width: 320, height: 180 });
    const dir = `${server.dataDir}/streams/${ll.stream_id}`;
    // The segment ffmpeg is writing now, fetched as it grows: complete when ffmpeg closes it.
    const partial = await waitFor(
      () => [...Deno.readDirSync(dir)].find((e) => e.name.endsWith(".m4s.tmp"))?.name,
      {
        what: "a segment in progress",
      },
    );
    const name = partial.replace(/\.tmp$/, "");
    const t0 = performance.now();
    const res2 = await fetchBytes(`${base}/streams/${ll.stream_id}/${name}`);
    const took = performance.now() - t0;
    assert.equal(res2.status, 200);
    assert.equal(res2.headers.get("content-length"), null, "sent as it is written");
    const size = await waitFor(() => {
      try {
        return Deno.statSync(`${dir}/${name}`).size;
      } catch {
        return 0;
      }
    }, { what: "the finished segment" });
    assert.equal(res2.body.length, size, "the whole segment once complete");
    assert.ok(took < 3_000, `${took} ms`);
  });

  await t.step("a stalled encoder is degraded, and healthy again once it catches up", async () => {
    const pid = (await ffmpegOf(server.process.pid, ll.stream_id))!;
    assert.ok(pid, "the stream's ffmpeg");
    await waitFor(async () => (await status(ll.stream_id)).status.health === "healthy", {
      timeoutMs: 20_000,
      what: "a healthy start",
    });
    Deno.kill(pid, "SIGSTOP");
    try {
      const s = await waitFor(async () => {
        const { status: st } = await status(ll.stream_id);
        return st.health === "degraded" ? st : null;
      }, { what: "degraded" });
      assert.match(s.reason, /below real time|backlog/);
    } finally {
      Deno.kill(pid, "SIGCONT");
    }
    await waitFor(async () => (await status(ll.stream_id)).status.health === "healthy", {
      timeoutMs: 20_000,
      what: "healthy again",
    });
  });

  await t.step(
    "a killed ffmpeg is restarted once; killed again, the stream stops with why",
    async () => {
      const first = (await ffmpegOf(server.process.pid, ll.stream_id))!;
      Deno.kill(first, "SIGKILL");
      const second = await waitFor(async () => {
        const pid = await ffmpegOf(server.process.pid, ll.stream_id);
        return pid && pid !== first ? pid : null;
      }, { what: "a new ffmpeg" });
      const restarted = await waitFor(async () => {
        const { status: s } = await status(ll.stream_id);
        return s?.metrics.restarts === 1 ? s : null;
      }, { what: "the restart in the status" });
      assert.equal(restarted.state, "active");
      // The status answers at once; the job's events reach the store a moment later.
      await waitFor(async () => {
        const events = (await api(base, `/api/jobs/${sessionId}/events`)).body;
        return JSON.stringify(events).includes('"action":"restarted"');
      }, { what: "the restart in the session's events" });
      // The restarted ffmpeg writes new segments under new names.
      await waitFor(() =>
        [...Deno.readDirSync(`${server.dataDir}/streams/${ll.stream_id}`)]
          .some((e) => /^seg1_\d+\.m4s$/.test(e.name)), { what: "segments after the restart" });
      Deno.kill(second, "SIGKILL");
      const gone = await waitFor(async () => {
        const res = await api(base, `/api/streams/${ll.stream_id}`);
        return res.status === 404 ? res.body : null;
      }, { what: "the stream to stop" });
      assert.equal(gone.status.state, "stopped");
      assert.equal(gone.status.health, "unhealthy");
      assert.match(gone.status.reason, /^ffmpeg exited again after a restart/);
      await assert.rejects(Deno.stat(`${server.dataDir}/streams/${ll.stream_id}`));
    },
  );

  await t.step(
    "STREAMPLAY_MAX_STREAMS streams at once, then 429; ending the session ends them",
    async () => {
      const small = { protocol: "hls", width: 320, height: 180 };
      const a = await start(small);
      const b = await start(small);
      assert.deepEqual([a.status, b.status], [201, 201]);
      const c = await start(small);
      assert.equal(c.status, 429);
      assert.match(c.body.error, /STREAMPLAY_MAX_STREAMS/);
      assert.ok(Number(c.headers.get("retry-after")) > 0, "a 429 says when to try again");
      assert.equal(
        (await api(base, `/api/sessions/${sessionId}`, { method: "DELETE" })).status,
        200,
      );
      for (const s of [a.body, b.body]) {
        const gone = await waitFor(async () => {
          const res = await api(base, `/api/streams/${s.stream_id}`);
          return res.status === 404 ? res.body : null;
        }, { what: "the stream to end with its session" });
        assert.match(gone.status.reason, /^the session ended/);
        await assert.rejects(Deno.stat(`${server.dataDir}/streams/${s.stream_id}`));
      }
      assert.deepEqual(await childPids(server.process.pid, "ffmpeg"), []);
      assert.deepEqual((await api(base, "/api/streams")).body, { streams: [] });
    },
  );
});
