/**
 * RTMP: a session's stream pushed to a local nginx-rtmp is read back by ffprobe with the codec and
 * size asked; the stream key stays secret (masked, never returned or logged); an unreachable server
 * is a 502 with ffmpeg's reason.
 */
import assert from "node:assert/strict";
import { api, freePort, startServer, tempDir, waitFor } from "./helpers.ts";
import { startPages } from "./session_helpers.ts";
import { probe, startNginx } from "./stream_helpers.ts";

Deno.test("RTMP push to nginx: ffprobe reads it back, the key stays secret", async (t) => {
  await using dir = await tempDir();
  await using nginx = await startNginx(dir.path);
  await using pages = startPages();
  await using server = await startServer();
  const base = server.url;
  const session = await api(base, "/api/sessions", {
    method: "POST",
    json: { url: `${pages.url}/anim` },
  });
  assert.equal(session.status, 201, JSON.stringify(session.body));
  const key = `key-${crypto.randomUUID()}`;
  let id = "";

  await t.step("the push reaches nginx and ffprobe reads H.264 at the size asked", async () => {
    const res = await api(base, `/api/sessions/${session.body.id}/stream`, {
      method: "POST",
      json: {
        protocol: "rtmp",
        rtmp_url: nginx.rtmpUrl,
        rtmp_key: key,
        quality: "medium",
        width: 640,
        height: 360,
      },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    id = res.body.stream_id;
    assert.equal(res.body.rtmp_url, nginx.rtmpUrl);
    assert.equal(res.body.stream_url, nginx.rtmpUrl);
    assert.equal(res.body.rtmp_key, "***");
    assert.equal(res.body.hls_url, undefined);
    assert.ok(!JSON.stringify(res.body).includes(key));
    assert.deepEqual(await probe(`${nginx.rtmpUrl}/${key}`), {
      codec: "h264",
      width: 640,
      height: 360,
    });
    const { body } = await api(base, `/api/streams/${id}`);
    assert.equal(body.status.metrics.viewer_count, null, "nginx counts its own viewers");
    assert.ok(!JSON.stringify(body).includes(key));
    await waitFor(
      async () => (await api(base, `/api/streams/${id}`)).body.status.metrics.bytes_sent > 0,
      {
        what: "bytes pushed",
      },
    );
  });

  await t.step("stopping ends the push with the bytes sent", async () => {
    const res = await api(base, `/api/streams/${id}`, { method: "DELETE" });
    assert.equal(res.status, 200);
    assert.ok(res.body.info.metrics.bytes_sent > 10_000, JSON.stringify(res.body.info.metrics));
    assert.ok(res.body.info.metrics.frames_sent > 0);
    assert.equal(res.body.info.rtmp_key, "***");
    const line = await waitFor(
      async () => (await nginx.log()).split("\n").find((l) => l.includes("PUBLISH")),
      {
        what: "nginx to log the publisher",
      },
    );
    assert.match(line, new RegExp(`PUBLISH "live" "${key}"`));
  });

  await t.step("a server that cannot be reached is a 502 with the reason", async () => {
    const res = await api(base, `/api/sessions/${session.body.id}/stream`, {
      method: "POST",
      json: {
        protocol: "rtmp",
        rtmp_url: `rtmp://127.0.0.1:${freePort()}/live`,
        rtmp_key: key,
        width: 320,
        height: 180,
      },
    });
    assert.equal(res.status, 502, JSON.stringify(res.body));
    assert.match(res.body.error, /^ffmpeg could not start the stream: .*(refused|Connection)/i);
    assert.ok(!res.body.error.includes(key));
    assert.deepEqual((await api(base, "/api/streams")).body.streams, []);
  });

  await t.step("the key never reached a log line", () => {
    assert.ok(server.output().includes("stream started"), "the server logs streams");
    assert.ok(!server.output().includes(key));
  });
});
