/**
 * A recording made by a worker process on its own, for fragmented MP4 and WebM: the API redirects
 * to it for the file; killed mid-recording, the partial video plays and is marked incomplete with
 * its timeline; started again, the worker finishes the recording and serves it.
 */
import assert from "node:assert/strict";
import { api, freePort, startRedis, startServer, uniquePrefix, waitFor } from "./helpers.ts";
import { openViewer, startPages } from "./session_helpers.ts";
import { act, probe, recordingOf, waitForRecording } from "./recording_helpers.ts";
import { listProcesses, processTree } from "../lib/core/procfs.ts";
import { sessionTempPrefix } from "../lib/sessions/browser_profiles.ts";
import { dirname } from "node:path";

function kill(pid: number) {
  try {
    Deno.kill(pid, "SIGKILL");
  } catch { /* already gone */ }
}

/** The codecs of each container a recording is written in: fragmented MP4, and WebM. */
const CODECS = [
  { codec: "h264", container: "mp4", probed: "h264" },
  { codec: "vp9", container: "webm", probed: "vp9" },
];

for (const { codec, container, probed } of CODECS) {
  Deno.test(`a worker killed mid-recording leaves a playable partial ${container}, marked incomplete`, () =>
    crashMidRecording(codec, container, probed));
}

async function crashMidRecording(codec: string, container: string, probed: string) {
  await using pages = startPages();
  await using redis = await startRedis();
  const prefix = uniquePrefix();
  const shared = { REDIS_URL: redis.url, STREAMPLAY_REDIS_PREFIX: prefix };
  await using apiServer = await startServer({ env: { ...shared, STREAMPLAY_CONCURRENCY: "0" } });
  const workerPort = freePort();
  const workerDir = await Deno.makeTempDir({ prefix: "streamplay-worker-" });
  const workerEnv = {
    ...shared,
    STREAMPLAY_PUBLIC_URL: `http://127.0.0.1:${workerPort}`,
    STREAMPLAY_LEASE_S: "3",
  };
  const worker = await startServer({
    role: "worker",
    port: workerPort,
    dataDir: workerDir,
    env: workerEnv,
  });
  const base = apiServer.url;
  try {
    const created = await api(base, "/api/sessions", {
      method: "POST",
      json: { url: `${pages.url}/`, record: { codec, fps: 10 } },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.node, worker.url);
    const viewer = await openViewer(created.body.ws_url);
    await act(viewer, { type: "mouse", action: "click", x: 150, y: 150 });
    const recording = await recordingOf(base, created.body.id);
    assert.equal(recording.node, worker.url, "recorded where the session runs");
    const file = `${workerDir}/recordings/${recording.recording_id}/video.${container}`;
    // At least a few fragments written.
    await waitFor(async () => (await Deno.stat(file)).size > 20_000 || null, {
      timeoutMs: 30_000,
      what: "the video to grow",
    });
    await new Promise((r) => setTimeout(r, 2_500));

    const redirect = await fetch(`${base}/api/recordings/${recording.recording_id}/video?x=1`, {
      redirect: "manual",
    });
    assert.equal(redirect.status, 307, "the API sends players to the node that has the file");
    assert.equal(
      redirect.headers.get("location"),
      `${worker.url}/api/recordings/${recording.recording_id}/video?x=1`,
    );
    await redirect.body?.cancel();
    const growing = await fetch(`${base}/api/recordings/${recording.recording_id}/video`);
    assert.equal(growing.status, 200);
    assert.ok((await growing.arrayBuffer()).byteLength > 20_000);

    const tree = processTree([worker.process.pid], await listProcesses()).slice(1);
    const below = tree.map((p) => p.pid);
    const ffmpeg = tree.filter((p) => p.name === "ffmpeg").map((p) => p.pid);
    assert.equal(ffmpeg.length, 1, "one ffmpeg records");
    // The whole node at once (ffmpeg first: it gets no chance to finish the file), as when the
    // machine or its container dies.
    kill(ffmpeg[0]!);
    kill(worker.process.pid);
    for (const pid of below) kill(pid);
    await worker.stop("SIGKILL");

    const partial = await probe(file);
    assert.equal(partial.codec, probed);
    assert.ok(partial.frames >= 10, `${partial.frames} frames readable`);

    const marked = await waitForRecording(base, recording.recording_id, "incomplete", 30_000);
    assert.match(marked.reason, /crashed or was killed/);
    const { body } = await api(base, `/api/recordings/${recording.recording_id}/timeline`);
    assert.ok(
      body.entries.some((e: { type: string; target?: { selector: string } }) =>
        e.type === "input" && e.target?.selector === "#b"
      ),
      "the timeline up to the crash is kept",
    );
    await viewer.closed;

    // Started again on the same data, the worker finishes the recording from its file.
    await using again = await startServer({
      role: "worker",
      port: workerPort,
      dataDir: workerDir,
      env: workerEnv,
    });
    const finished = await waitFor(async () => {
      const { body } = await api(base, `/api/recordings/${recording.recording_id}`);
      return /ended before the recording was stopped/.test(body.reason) ? body : null;
    }, { timeoutMs: 30_000, what: "the worker to finish the recording from its file" });
    assert.equal(finished.state, "incomplete");
    assert.ok(Math.abs(finished.frame_count - partial.frames) <= 2, `${finished.frame_count}`);
    assert.equal(finished.duration_seconds, finished.frame_count / 10);
    const served = await fetch(`${base}/api/recordings/${recording.recording_id}/video`);
    assert.equal(served.status, 200);
    assert.deepEqual(new Uint8Array(await served.arrayBuffer()), await Deno.readFile(file));
    await again.stop();
  } finally {
    await worker.stop("SIGKILL");
    await Deno.remove(workerDir, { recursive: true }).catch(() => {});
    // What a killed server cannot remove itself: its session browser's temporary directory.
    const own = sessionTempPrefix(worker.process.pid);
    for await (const e of Deno.readDir(dirname(own))) {
      const path = `${dirname(own)}/${e.name}`;
      if (path.startsWith(own)) await Deno.remove(path, { recursive: true });
    }
  }
}
