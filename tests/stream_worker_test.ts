/**
 * A stream of a session on a worker process (`--role=worker`), tokens on: the worker encodes and
 * serves it (its URLs point there, media need no token), the API redirects to it, and stopping
 * through the API reaches it through Redis.
 */
import assert from "node:assert/strict";
import { api, freePort, startRedis, startServer, tempDir, uniquePrefix } from "./helpers.ts";
import { startPages } from "./session_helpers.ts";
import { ffmpegWithout, probe } from "./stream_helpers.ts";

const OPERATOR = "operator-token-1";
const VIEWER = "viewer-token-1";

Deno.test("a stream on a worker process: served there, redirected to, stopped remotely", async (t) => {
  await using redis = await startRedis();
  await using pages = startPages();
  await using bin = await tempDir();
  await using workerTmp = await tempDir();
  const shared = {
    REDIS_URL: redis.url,
    STREAMPLAY_REDIS_PREFIX: uniquePrefix(),
    STREAMPLAY_TOKENS: `ops:${OPERATOR}:operator,watch:${VIEWER}:viewer`,
  };
  await using server = await startServer({ env: { ...shared, STREAMPLAY_CONCURRENCY: "0" } });
  const workerPort = freePort();
  const worker = `http://127.0.0.1:${workerPort}`;
  // The worker's ffmpeg is a build without libx265. (Its sessions get their own TMPDIR: Deno
  // refuses a Worker write access where an executable it may run lives.)
  const path = `${await ffmpegWithout("libx265", bin.path)}:${Deno.env.get("PATH")}`;
  await using _worker = await startServer({
    role: "worker",
    port: workerPort,
    env: { ...shared, PATH: path, TMPDIR: workerTmp.path },
  });
  const base = server.url;
  const as = { token: OPERATOR };
  const session = await api(base, "/api/sessions", {
    method: "POST",
    json: { url: `${pages.url}/anim` },
    ...as,
  });
  assert.equal(session.status, 201, JSON.stringify(session.body));
  assert.equal(session.body.node, worker);
  let stream = { stream_id: "", stream_url: "", player_url: "", node: "" };

  await t.step("the worker encodes and serves the stream; its URLs point there", async () => {
    const viewerTry = await api(base, `/api/sessions/${session.body.id}/stream`, {
      method: "POST",
      json: { protocol: "hls" },
      token: VIEWER,
    });
    assert.equal(viewerTry.status, 403);
    const res = await api(base, `/api/sessions/${session.body.id}/stream`, {
      method: "POST",
      json: { protocol: "hls", width: 320, height: 180 },
      ...as,
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    stream = res.body;
    assert.equal(stream.node, worker);
    assert.equal(stream.stream_url, `${worker}/streams/${stream.stream_id}/playlist.m3u8`);
    assert.equal(stream.player_url, `${worker}/player/${stream.stream_id}`);
    assert.deepEqual(await probe(stream.stream_url), { codec: "h264", width: 320, height: 180 });
    const player = await fetch(stream.player_url);
    assert.equal(player.status, 200);
    assert.match(await player.text(), /player\.js/);
    const hlsJs = await fetch(`${worker}/vendor/hls.mjs`);
    assert.equal(hlsJs.status, 200);
    await hlsJs.body?.cancel();
    const { body } = await api(base, `/api/streams/${stream.stream_id}`, { token: VIEWER });
    assert.equal(body.active, true);
    assert.equal(body.status.node, worker);
    assert.equal((await api(base, `/api/streams/${stream.stream_id}`)).status, 401);
  });

  await t.step("the API sends players to the worker", async () => {
    const res = await fetch(`${base}/streams/${stream.stream_id}/playlist.m3u8`, {
      redirect: "manual",
    });
    assert.equal(res.status, 307);
    assert.equal(res.headers.get("location"), stream.stream_url);
    await res.body?.cancel();
    assert.deepEqual(
      await probe(`${base}/streams/${stream.stream_id}/playlist.m3u8`),
      { codec: "h264", width: 320, height: 180 },
    );
  });

  await t.step("a codec the worker's ffmpeg cannot encode is a 400 naming it", async () => {
    const res = await api(base, `/api/sessions/${session.body.id}/stream`, {
      method: "POST",
      json: { protocol: "hls", codec: "h265" },
      ...as,
    });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.match(res.body.error, /^codec: the installed ffmpeg has no working h265 encoder/);
  });

  await t.step("stopping through the API reaches the worker", async () => {
    assert.equal(
      (await api(base, `/api/streams/${stream.stream_id}`, { method: "DELETE", token: VIEWER }))
        .status,
      403,
    );
    const res = await api(base, `/api/streams/${stream.stream_id}`, { method: "DELETE", ...as });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.success, true);
    assert.ok(res.body.info.metrics.bytes_sent > 0);
    assert.equal((await fetch(stream.stream_url)).status, 404);
    assert.equal((await api(base, `/api/streams/${stream.stream_id}`, as)).status, 404);
  });
});
