/**
 * `streamplay stream` as a user runs it (installed, from another directory): start an HLS stream,
 * read its status, print its URL, play it in the first player on PATH, stop it; bad input is one
 * line, exit 2.
 */
import assert from "node:assert/strict";
import { api, startServer, tempDir, waitFor } from "./helpers.ts";
import { childPids } from "./stream_helpers.ts";
import { startPages } from "./session_helpers.ts";
import { installCli } from "./cli_helpers.ts";

Deno.test("streamplay stream: start, status, url, play in a player, stop", async (t) => {
  await using cli = await installCli();
  await using pages = startPages();
  await using server = await startServer();
  await using fake = await tempDir();
  const created = await api(server.url, "/api/sessions", {
    method: "POST",
    json: { url: `${pages.url}/anim`, max_fps: 10 },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const sessionId: string = created.body.id;
  const stream = (args: string[], env: Record<string, string> = {}) =>
    cli.run(["stream", "--server", server.url, ...args], { env });
  let streamId = "";
  let url = "";

  await t.step("bad input: one line and exit 2", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["start"], /^stream start needs a session id/],
      [["start", sessionId, "--fps", "many"], /^--fps must be a number/],
      [["start", sessionId, "--codec", "vp9"], /^cannot start a stream .*\(400\): codec: hls/],
      [["play", sessionId, "--player", "totem"], /^--player must be one of ffplay, mpv, vlc/],
      [["rewind", sessionId], /^unknown command "rewind"/],
    ];
    for (const [args, pattern] of cases) {
      const r = await stream(args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
      assert.match(r.err.trim(), pattern, args.join(" "));
    }
    const none = await stream(["status", sessionId]);
    assert.equal(none.code, 1);
    assert.match(none.err, new RegExp(`^no active stream for ${sessionId}`));
  });

  await t.step("start prints the stream, its URL and player page", async () => {
    const r = await stream(["start", sessionId, "--quality", "low_bandwidth"]);
    assert.equal(r.code, 0, r.err);
    const m = new RegExp(`^(str_\\S+)  session ${sessionId}  hls h264`).exec(r.out);
    assert.ok(m, r.out);
    streamId = m[1]!;
    assert.match(r.out, /url +http:\/\/127\.0\.0\.1:\d+\/streams\/str_\S+\.m3u8$/m);
  });

  await t.step("status and url, by session id or stream id", async () => {
    for (const name of [sessionId, streamId]) {
      const r = await stream(["status", name]);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /state +(active|starting), /);
    }
    const json = JSON.parse((await stream(["status", sessionId, "--json"])).out);
    assert.equal(json.status.stream_id, streamId);
    const r = await stream(["url", sessionId]);
    assert.equal(r.code, 0, r.err);
    url = r.out.trim();
    assert.equal(url, json.status.hls_url);
    const playlist = await fetch(url);
    assert.equal(playlist.status, 200);
    assert.match(await playlist.text(), /^#EXTM3U/);
  });

  await t.step("play runs the first player on PATH with the stream's URL", async () => {
    // A stand-in ffplay first on PATH: it writes down its arguments.
    await Deno.writeTextFile(
      `${fake.path}/ffplay`,
      `#!/bin/sh\nprintf '%s\\n' "$@" > "${fake.path}/args"\n`,
    );
    await Deno.chmod(`${fake.path}/ffplay`, 0o755);
    const path = `${fake.path}:${Deno.env.get("PATH")}`;
    const r = await stream(["play", sessionId, "--", "-fs"], { PATH: path });
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, new RegExp(`playing ${url} with ffplay`));
    assert.deepEqual((await Deno.readTextFile(`${fake.path}/args`)).trim().split("\n"), [
      "-fs",
      url,
    ]);
    const missing = await stream(["play", sessionId, "--player", "vlc"], { PATH: path });
    assert.equal(missing.code, 1);
    assert.match(missing.err, /vlc not found: install one .*open http:\/\/\S+\/player\/str_/);
  });

  await t.step("the real ffplay plays it: segments are pulled until it is closed", async () => {
    const served = async () =>
      (await api(server.url, `/api/streams/${streamId}`)).body.status.metrics.segments_served;
    const before = await served();
    // A live stream has no end, so ffplay plays until closed; the test closes it (SIGTERM).
    const child = new Deno.Command(cli.bin, {
      args: ["stream", "--server", server.url, "play", streamId, "--", "-loglevel", "error"],
      cwd: cli.home,
      env: { SDL_VIDEODRIVER: "dummy", SDL_AUDIODRIVER: "dummy" },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    try {
      await waitFor(async () => await served() > before, {
        timeoutMs: 30_000,
        what: "ffplay to fetch a segment of the stream",
      });
    } finally {
      for (const pid of await childPids(child.pid, "ffplay")) Deno.kill(pid, "SIGTERM");
    }
    const { code, stderr } = await child.output();
    const err = new TextDecoder().decode(stderr);
    assert.match(err, new RegExp(`playing ${url.replaceAll(".", "\\.")} with ffplay`));
    assert.doesNotMatch(err, /Failed to open/);
    assert.equal(code, 123, `the player's exit code (ffplay's on SIGTERM): ${err}`);
  });

  await t.step("stop prints the final totals; the stream is gone", async () => {
    const r = await stream(["stop", sessionId]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`^stopped ${streamId}`));
    const after = await stream(["url", streamId]);
    assert.equal(after.code, 1);
    assert.match(after.err, /no active stream/);
  });

  await api(server.url, `/api/sessions/${sessionId}`, { method: "DELETE" });
});
