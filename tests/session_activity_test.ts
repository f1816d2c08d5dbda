/**
 * What keeps a session from ending idle (5 s timeout): a read HLS stream, an RTMP push and a
 * recording keep it alive, an unread stream does not; once each stops, the session ends idle too.
 */
import assert from "node:assert/strict";
import { api, startServer, tempDir, waitFor } from "./helpers.ts";
import { type Json, startPages } from "./session_helpers.ts";
import { startNginx } from "./stream_helpers.ts";

const IDLE_S = 5;
const VIDEO = { quality: "low_bandwidth", width: 320, height: 180, frame_rate: 5 };

Deno.test("session activity: stream players, an RTMP push and a recording keep it alive", async (t) => {
  await using dir = await tempDir();
  await using nginx = await startNginx(dir.path);
  await using pages = startPages();
  await using server = await startServer({ env: { STREAMPLAY_MAX_SESSIONS: "4" } });
  const base = server.url;
  const start = async (extra: Record<string, unknown> = {}) => {
    const res = await api(base, "/api/sessions", {
      method: "POST",
      json: { url: `${pages.url}/`, idle_timeout_s: IDLE_S, max_fps: 5, ...extra },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body.id as string;
  };
  const stream = async (sessionId: string, json: Record<string, unknown>) => {
    const res = await api(base, `/api/sessions/${sessionId}/stream`, { method: "POST", json });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };
  const session = async (id: string): Promise<Json> =>
    (await api(base, `/api/sessions/${id}`)).body;
  const ended = (id: string) =>
    waitFor(async () => {
      const s = await session(id);
      return s.active ? null : s;
    }, { timeoutMs: 30_000, what: `session ${id} to end` });

  // The trial encodes run once at start-up; streams start quickly after them.
  await waitFor(async () => (await api(base, "/api/health")).body.encoders, {
    timeoutMs: 60_000,
    what: "encoder detection",
  });
  const read = await start();
  const hls = await stream(read, { protocol: "hls", ...VIDEO });

  // A player: the playlist and its newest segment, once a second, as hls.js does live.
  let reading = true;
  const player = (async () => {
    while (reading) {
      const res = await fetch(hls.hls_url);
      const playlist = await res.text();
      const last = playlist.split("\n").filter((l) => l && !l.startsWith("#")).at(-1);
      if (last) await (await fetch(new URL(last, hls.hls_url))).arrayBuffer();
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();

  const unread = await start();
  await stream(unread, { protocol: "hls", ...VIDEO });
  const pushing = await start();
  const rtmp = await stream(pushing, {
    protocol: "rtmp",
    rtmp_url: nginx.rtmpUrl,
    rtmp_key: "activity",
    ...VIDEO,
  });
  const recorded = await start({ record: { fps: 5, width: 320, height: 180 } });

  try {
    await t.step("without a reader, a session with an HLS stream ends idle", async () => {
      const s = await ended(unread);
      assert.equal(s.reason, "idle_timeout");
    });

    await t.step("a reader, an RTMP push and a recording outlive the idle timeout", async () => {
      await new Promise((r) => setTimeout(r, (IDLE_S + 4) * 1000));
      for (const [what, id] of [["HLS read", read], ["RTMP", pushing], ["recorded", recorded]]) {
        const s = await session(id!);
        assert.equal(s.active, true, `${what}: ${s.state} ${s.reason}`);
        assert.ok(s.uptime_seconds > IDLE_S + 3, `${what}: up ${s.uptime_seconds} s`);
      }
    });

    await t.step("each ends idle once its activity stops", async () => {
      reading = false;
      await player;
      const stopped = await api(base, `/api/streams/${rtmp.stream_id}`, { method: "DELETE" });
      assert.equal(stopped.status, 200, JSON.stringify(stopped.body));
      const rec = await api(base, `/api/sessions/${recorded}/recording`, { method: "DELETE" });
      assert.equal(rec.status, 200, JSON.stringify(rec.body));
      for (const id of [read, pushing, recorded]) {
        assert.equal((await ended(id)).reason, "idle_timeout");
      }
    });
  } finally {
    reading = false;
    await player.catch(() => {});
    for (const id of [read, unread, pushing, recorded]) {
      await api(base, `/api/sessions/${id}`, { method: "DELETE" });
    }
  }
});
