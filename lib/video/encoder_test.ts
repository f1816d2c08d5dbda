/**
 * The shared encoder with the real ffmpeg: every codec in the table has a working encoder here,
 * the pacer turns irregular frames into a constant-rate video whose length is the wall time,
 * and ffprobe reads what it wrote.
 */
import assert from "node:assert/strict";
import { CODECS, detectEncoders, FILE_CONTAINER, outputSettings, PROFILES } from "./codecs.ts";
import { startEncoder } from "./encoder.ts";
import { createLogger } from "../core/log.ts";
import { tempDir } from "../../tests/helpers.ts";
import { probe } from "../../tests/recording_helpers.ts";

const log = createLogger({ level: "error" });

/** JPEG frames of a moving test pattern, as a browser's screencast would send them. */
async function testFrames(count: number): Promise<Uint8Array[]> {
  const { stdout } = await new Deno.Command("ffmpeg", {
    args: [
      "-loglevel",
      "error",
      "-f",
      "lavfi",
      "-i",
      "testsrc2=size=1280x720:rate=25",
      "-frames:v",
      String(count),
      "-f",
      "image2pipe",
      "-c:v",
      "mjpeg",
      "-q:v",
      "5",
      "pipe:1",
    ],
    stdout: "piped",
  }).output();
  const frames: Uint8Array[] = [];
  let start = 0;
  for (let i = 2; i < stdout.length - 1; i++) {
    if (stdout[i] === 0xff && stdout[i + 1] === 0xd8) {
      frames.push(stdout.subarray(start, i));
      start = i;
    }
  }
  frames.push(stdout.subarray(start));
  return frames;
}

const FFPROBE_NAME: Record<string, string> = {
  h264: "h264",
  h265: "hevc",
  vp9: "vp9",
  vp8: "vp8",
  av1: "av1",
};

Deno.test("every codec of the table has an encoder that works on this machine", async () => {
  const table = await detectEncoders();
  for (const codec of CODECS) {
    assert.ok(table[codec].length > 0, `no working encoder for ${codec}`);
    assert.ok(table[codec].some((e) => !e.hardware), `no software fallback for ${codec}`);
  }
});

Deno.test("frames at an irregular rate become a constant-rate video as long as the wall time", async () => {
  const frames = await testFrames(20);
  const table = await detectEncoders();
  await using dir = await tempDir();
  for (const codec of CODECS) {
    const encoder = table[codec].find((e) => !e.hardware)!.encoder;
    const out = outputSettings(PROFILES.medium, { width: 640, height: 360, fps: 10 });
    const file = `${dir.path}/out-${codec}.${FILE_CONTAINER[codec]}`;
    const enc = startEncoder({
      encoder,
      profile: PROFILES.medium,
      output: out,
      muxArgs: ["-f", FILE_CONTAINER[codec], "-y", file],
      log,
    });
    const t0 = performance.now();
    // A burst, then the page goes idle for a second, then a few more frames.
    for (const f of frames.slice(0, 10)) enc.push(f);
    await new Promise((r) => setTimeout(r, 1000));
    for (const f of frames.slice(10)) {
      enc.push(f);
      await new Promise((r) => setTimeout(r, 50));
    }
    const wall = (performance.now() - t0) / 1000;
    const result = await enc.stop();
    assert.equal(result.code, 0, `${codec}: ${result.error}`);
    assert.equal(result.frames_in, 20);
    assert.ok(result.frames_repeated > 0, `${codec}: the idle second is filled by repeats`);
    const p = await probe(file);
    assert.equal(p.codec, FFPROBE_NAME[codec], codec);
    assert.equal(p.width, 640);
    assert.equal(p.height, 360);
    assert.ok(
      Math.abs(p.duration - wall) / wall < 0.15,
      `${codec}: ${p.duration} s vs wall ${wall} s`,
    );
    assert.ok(
      Math.abs(p.frames - p.duration * 10) <= 2,
      `${codec}: ${p.frames} frames in ${p.duration} s`,
    );
  }
});
