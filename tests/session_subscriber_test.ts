/**
 * The frame subscriber interface, in-process: what recording and video streaming build on. A
 * subscriber attached when a session starts gets every captured frame in order (the same bytes
 * viewers get, with decodable metadata), the session's state changes, and the end.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../lib/core/config.ts";
import { createLogger } from "../lib/core/log.ts";
import { startPlatform } from "../lib/platform.ts";
import type { LiveFrame } from "../lib/sessions/host.ts";
import type { SessionSnapshot } from "../lib/sessions/protocol.ts";
import { api, tempDir, waitFor } from "./helpers.ts";
import { openViewer, startPages } from "./session_helpers.ts";
import { parts } from "../main.ts";

Deno.test("a frame subscriber gets every frame in order, state changes and the end", async () => {
  await using pages = startPages();
  await using dir = await tempDir();
  const config = loadConfig({ PORT: "0", STREAMPLAY_DATA_DIR: dir.path });
  await using platform = await startPlatform(config, {
    role: "all",
    parts,
    log: createLogger({ level: "warn" }),
    version: "test",
  });
  const base = `http://127.0.0.1:${platform.address!.port}`;
  const frames: LiveFrame[] = [];
  const states: SessionSnapshot[] = [];
  let ended: { state: string; reason: string | null } | undefined;
  platform.sessions!.onStart((session) => {
    session.subscribe({
      frame: (f) => frames.push(f),
      state: (s) => states.push(s),
      end: (e) => (ended = e),
    });
  });

  const created = await api(base, "/api/sessions", {
    method: "POST",
    json: { url: `${pages.url}/anim`, max_fps: 60 },
  });
  assert.equal(created.status, 201);
  const viewer = await openViewer(created.body.ws_url);
  await waitFor(() => frames.length >= 20 && viewer.frames.length >= 5, { what: "frames" });
  const seqs = frames.map((f) => f.header.seq);
  assert.deepEqual(seqs, seqs.map((_, i) => seqs[0]! + i), "every frame, in order");
  const last = frames.at(-1)!;
  assert.deepEqual([...last.jpeg.subarray(0, 2)], [0xff, 0xd8], "a JPEG");
  assert.equal(last.header.w, 1280);
  assert.ok(Math.abs(last.ts - Date.now()) < 60_000);
  const byViewer = viewer.frames.at(-1)!;
  const same = frames.find((f) => f.header.seq === byViewer.seq)!;
  assert.deepEqual(same.header, byViewer, "viewers get the same frames");
  assert.ok(states.some((s) => s.state === "active" && s.title === "animated"));

  assert.equal(
    (await api(base, `/api/sessions/${created.body.id}`, { method: "DELETE" })).status,
    200,
  );
  assert.deepEqual(ended, { state: "stopped", reason: "deleted" });
  await viewer.closed;
});
