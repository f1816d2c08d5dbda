/**
 * Sessions at their limits on a real server and Chromium: a viewer that never reads stalls no one,
 * pages cannot reach DevTools, idle and max-duration ends, a killed browser fails the session and
 * frees its slot, and a stopped server leaves no browser or profile behind.
 */
import assert from "node:assert/strict";
import { listProcesses, readProcFiles, readStats } from "../lib/core/procfs.ts";
import { sessionTempPrefix } from "../lib/sessions/browser_profiles.ts";
import { api, requirePackages, startServer, waitFor } from "./helpers.ts";
import { type Json, openViewer, startPages } from "./session_helpers.ts";

/** Opens a WebSocket on a raw TCP connection and never reads from it. */
async function stuckViewer(port: number, path: string): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
      `Sec-WebSocket-Version: 13\r\n\r\n`,
  ));
  return conn;
}

/** The Chromium processes the server started (its direct children). */
async function browserPids(serverPid: number): Promise<number[]> {
  return (await listProcesses())
    .filter((p) => p.ppid === serverPid && p.name === "chromium")
    .map((p) => p.pid);
}

Deno.test("sessions at their limits: slow viewers, idle and max duration, browser crash", async (t) => {
  await using pages = startPages();
  await using server = await startServer({ env: { STREAMPLAY_MAX_SESSIONS: "2" } });
  const base = server.url;
  const start = async (json: Record<string, unknown>) => {
    const res = await api(base, "/api/sessions", { method: "POST", json });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };

  await t.step("a viewer that never reads does not stall another viewer", async () => {
    const session = await start({ url: `${pages.url}/noise`, quality: 90, max_fps: 60 });
    const stuck = await stuckViewer(server.port, `/ws/sessions/${session.id}`);
    const good = await openViewer(session.ws_url);
    try {
      // The stuck viewer's socket buffers fill up, then it skips frames.
      await waitFor(async () => {
        const { body } = await api(base, `/api/sessions/${session.id}`);
        return body.metrics.dropped_frames > 0;
      }, { timeoutMs: 30_000, what: "the stuck viewer to drop frames" });
      const metrics = async () => (await api(base, `/api/sessions/${session.id}`)).body.metrics;
      const before = { captured: (await metrics()).frames_captured, got: good.frames.length };
      await new Promise((r) => setTimeout(r, 3000));
      const after = { captured: (await metrics()).frames_captured, got: good.frames.length };
      const captured = after.captured - before.captured;
      const got = after.got - before.got;
      assert.ok(captured >= 10, `frames keep coming (${captured} in 3 s)`);
      assert.ok(got >= captured * 0.8, `the reading viewer got ${got} of ${captured} frames`);
      const mine = good.messages.filter((m: Json) => m.type === "stats").at(-1);
      const all = (await metrics()).dropped_frames;
      assert.ok(
        mine.you.dropped <= all / 10,
        `the reading viewer skipped ${mine.you.dropped} of ${all} dropped frames`,
      );
    } finally {
      stuck.close();
      await good.close();
      await api(base, `/api/sessions/${session.id}`, { method: "DELETE" });
    }
  });

  await t.step("pages cannot reach the browser's own DevTools port", async () => {
    const session = await start({ url: `${pages.url}/` });
    const viewer = await openViewer(session.ws_url);
    const [pid] = await browserPids(server.process.pid);
    requirePackages("procps");
    const { stdout } = await new Deno.Command("ps", {
      args: ["-o", "args=", "-p", String(pid)],
      stdout: "piped",
    }).output();
    const port = /--remote-debugging-port=(\d+)/.exec(new TextDecoder().decode(stdout))?.[1];
    assert.ok(port, "the browser listens for DevTools");
    for (const host of ["127.0.0.1", "localhost"]) {
      const r = await viewer.request({ type: "navigate", url: `http://${host}:${port}/json/list` });
      assert.equal(r.type, "error");
      await viewer.next((m: Json) =>
        m.type === "event" && m.event.type === "request_blocked" &&
        m.event.target === `${host}:${port}` && /DevTools/.test(m.event.reason)
      );
    }
    await viewer.close();
    await api(base, `/api/sessions/${session.id}`, { method: "DELETE" });
  });

  await t.step("idle timeout and max duration end sessions cleanly", async () => {
    const idle = await start({ url: `${pages.url}/`, idle_timeout_s: 2 });
    const long = await start({ url: `${pages.url}/anim`, max_duration_s: 5 });
    const watching = await openViewer(long.ws_url);
    const ended = (id: string) =>
      waitFor(async () => {
        const { body } = await api(base, `/api/sessions/${id}`);
        return body.active ? null : body;
      }, { timeoutMs: 20_000, what: `session ${id} to end` });
    const [byIdle, byDuration] = await Promise.all([ended(idle.id), ended(long.id)]);
    assert.equal(byIdle.state, "stopped");
    assert.equal(byIdle.reason, "idle_timeout");
    assert.ok(byIdle.uptime_seconds >= 2);
    assert.equal(byDuration.state, "stopped");
    assert.equal(byDuration.reason, "max_duration");
    const told = await watching.next((m: Json) => m.type === "ended");
    assert.deepEqual([told.state, told.reason], ["stopped", "max_duration"]);
    await watching.closed;
  });

  await t.step(
    "a killed browser fails the session, tells its viewers, frees the slot",
    async () => {
      const session = await start({ url: `${pages.url}/anim` });
      const viewer = await openViewer(session.ws_url);
      await viewer.waitFrames(1);
      const pids = await browserPids(server.process.pid);
      assert.equal(pids.length, 1, `one browser for the sessions (${pids})`);
      Deno.kill(pids[0]!, "SIGKILL");
      const ended = await viewer.next((m) => m.type === "ended");
      assert.equal(ended.state, "failed");
      assert.match(ended.reason, /browser process ended unexpectedly/);
      await viewer.closed;
      const { body } = await api(base, `/api/sessions/${session.id}`);
      assert.equal(body.state, "failed");
      assert.equal(body.health, "unhealthy");
      assert.match(body.reason, /browser process ended/);
      // Both slots are free again, and the next sessions get a new browser.
      const next = [await start({ url: `${pages.url}/` }), await start({ url: `${pages.url}/` })];
      const again = await openViewer(next[0].ws_url);
      await again.waitFrames(1);
      await again.close();
      for (const s of next) {
        assert.equal((await api(base, `/api/sessions/${s.id}`, { method: "DELETE" })).status, 200);
      }
    },
  );

  await t.step(
    "a server stopped with a session running ends its browser and leaves no profile behind",
    async () => {
      const session = await start({ url: `${pages.url}/anim` });
      const viewer = await openViewer(session.ws_url);
      await viewer.waitFrames(1);
      const browsers = await browserPids(server.process.pid);
      assert.equal(browsers.length, 1, `one browser for the sessions (${browsers})`);
      const cmdline = (await readProcFiles([`/proc/${browsers[0]}/cmdline`])).values().next().value;
      const profile = /--user-data-dir=([^\0]+)/.exec(cmdline ?? "")?.[1] ?? "";
      const own = profile.replace(/\/[^/]+$/, "");
      const prefix = sessionTempPrefix(server.process.pid);
      assert.ok(own.startsWith(prefix), `${own} is the server's own`);
      assert.match(own.slice(prefix.length), /^[0-9a-f]+$/);
      assert.ok((await Deno.stat(profile)).isDirectory, `the profile is there: ${profile}`);
      assert.equal((await server.stop()).code, 0);
      await viewer.closed;
      const running = (await readStats(browsers)).filter((p) => p.state !== "Z");
      assert.deepEqual(running, [], "the browser has ended with the server");
      await assert.rejects(Deno.stat(own), Deno.errors.NotFound, `${own} is gone`);
    },
  );
});
