/**
 * `deno task bench:video`: live video streaming of sessions, from one run — glass-to-glass latency,
 * encoder cost per codec, our pipeline against plain ffmpeg, and how many 720p H.264 streams this
 * machine sustains.
 */
import { join } from "node:path";
import type { Page } from "playwright";
import { loadConfig } from "../lib/core/config.ts";
import { createLogger } from "../lib/core/log.ts";
import { startPlatform } from "../lib/platform.ts";
import { CLOCK_TICKS_PER_S, readStats } from "../lib/core/procfs.ts";
import { startEncoder } from "../lib/video/encoder.ts";
import {
  type Codec,
  CODECS,
  detectEncoders,
  encoderArgs,
  outputSettings,
  PROFILES,
} from "../lib/video/codecs.ts";
import { liveTiming, muxArgs } from "../lib/streams/options.ts";
import { CHROMIUM_ARGS, loadPlaywright } from "../lib/core/playwright.ts";
import {
  benchReport,
  benchTempDir,
  CHROMIUM,
  fixed,
  loadAverage,
  percentile,
  printTable,
  round as roundTo,
  sleep,
} from "./common.ts";
import { colourGridPage } from "./pages.ts";
import { parts } from "../main.ts";

/** BENCH_SECONDS (default 10) sets each measuring window. */
const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 10);
const FPS = 30;
const WIDTH = 1280;
const HEIGHT = 720;
const BITS = 36;
const BLOCK = 24;
// ---- the pages ----

/**
 * The wall clock as BITS blocks (twice: a frame counts only if both rows agree), redrawn 30 times
 * a second; only the blocks change, so the page itself costs Chromium little.
 */
const CLOCK_PAGE = `<!doctype html><html><head><title>clock</title></head>
<body style="margin:0;background:#777;overflow:hidden"><canvas id="c" width="${WIDTH}" height="${HEIGHT}"></canvas><script>
const c = document.getElementById("c").getContext("2d");
function draw() {
  const t = Date.now() % ${2 ** BITS};
  for (let i = 0; i < ${BITS}; i++) {
    c.fillStyle = Math.floor(t / 2 ** (${BITS - 1} - i)) % 2 ? "#fff" : "#000";
    c.fillRect(16 + i * ${BLOCK}, 16, ${BLOCK}, ${BLOCK});
    c.fillRect(16 + i * ${BLOCK}, 16 + ${BLOCK * 2}, ${BLOCK}, ${BLOCK});
  }
}
setInterval(draw, ${Math.round(1000 / FPS)});
</script></body></html>`;

const ANIMATED_PAGE = colourGridPage(WIDTH);

const pageServer = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
  const body = new URL(req.url).pathname === "/clock" ? CLOCK_PAGE : ANIMATED_PAGE;
  return new Response(body, { headers: { "content-type": "text/html" } });
});
const PAGES = `http://127.0.0.1:${pageServer.addr.port}`;

/** Reads the clock blocks of a gray frame (one byte per pixel); null when the rows disagree. */
function decodeClock(gray: Uint8Array, width: number, height: number): number | null {
  const sx = width / WIDTH;
  const sy = height / HEIGHT;
  const row = (r: number) => {
    let n = 0;
    for (let i = 0; i < BITS; i++) {
      const x = Math.round((16 + i * BLOCK + BLOCK / 2) * sx);
      const y = Math.round((16 + r * BLOCK + BLOCK / 2) * sy);
      n = n * 2 + (gray[y * width + x]! > 128 ? 1 : 0);
    }
    return n;
  };
  const a = row(0);
  return a === row(2) ? a : null;
}

// ---- CPU accounting ----

/** CPU seconds (user + system) used so far by each pid (0 for one that has ended). */
async function cpuSeconds(pids: number[]): Promise<number[]> {
  const ticks = new Map((await readStats(pids)).map((s) => [s.pid, s.cpuTicks]));
  return pids.map((p) => (ticks.get(p) ?? 0) / CLOCK_TICKS_PER_S);
}

// ---- the platform and frames ----

const dataDir = await benchTempDir("streamplay-bench-video-");
const config = loadConfig({
  PORT: "0",
  STREAMPLAY_DATA_DIR: dataDir,
  STREAMPLAY_MAX_STREAMS: "8",
});
const log = createLogger({ level: "error" });
const platform = await startPlatform(config, { role: "all", parts, log, version: "bench" });
const base = platform.publicUrl;
const { chromium } = await loadPlaywright();
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });

async function api(path: string, method = "GET", json?: unknown) {
  const res = await fetch(base + path, {
    method,
    headers: json ? { "content-type": "application/json" } : {},
    body: json ? JSON.stringify(json) : undefined,
  });
  const body = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

async function startSession(url: string): Promise<string> {
  const s = await api("/api/sessions", "POST", {
    url,
    viewport: { width: WIDTH, height: HEIGHT },
    max_fps: FPS,
  });
  return s.id;
}

const report = benchReport("video");
console.log(
  `bench:video  ${WIDTH}×${HEIGHT} @ ${FPS} fps, ${SECONDS} s windows, ` +
    `${navigator.hardwareConcurrency} cores, load average ${loadAverage()}`,
);

/**
 * Screencast JPEGs of the animated page, captured from a real session.
 *
 * The frames for parts 2–4: 2,000 nodes changing colour every frame, 1280×720, q60. CPU comes from
 * /proc/<pid>/stat.
 */
async function captureFrames(count: number): Promise<Uint8Array[]> {
  const frames: Uint8Array[] = [];
  const stop = platform.sessions!.onStart((session) => {
    session.subscribe({ frame: (f) => frames.length < count && frames.push(f.jpeg.slice()) });
  });
  const id = await startSession(`${PAGES}/animated`);
  const deadline = Date.now() + 60_000;
  while (frames.length < count && Date.now() < deadline) await sleep(100);
  stop();
  await api(`/api/sessions/${id}`, "DELETE");
  if (frames.length < count) throw new Error(`only ${frames.length} frames captured`);
  return frames;
}

/** Screencast frames of the animated page, and the same frames over and over in a file for the
 * longest plain-ffmpeg run (image2pipe cannot loop a file). Set by the encoding part. */
let frames: Uint8Array[] = [];
const framesFile = join(dataDir, "frames.mjpeg");

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const table = await detectEncoders();
const medium = PROFILES.medium;
const out720 = outputSettings(medium, { width: WIDTH, height: HEIGHT, fps: FPS });

// ---- 2, 3, 4: encoding cost ----

interface Run {
  /** CPU cores of ffmpeg. */
  ffmpeg: number;
  /** CPU cores of this process (the pacer and frame hand-off) above its idle. */
  feeder: number;
  speed: number;
  dropped: number;
}

/** Our pipeline: frames pushed at FPS through startEncoder with a stream's arguments. */
async function pipeline(
  codec: Codec,
  seconds: number,
  count = 1,
): Promise<Run[]> {
  const encoder = table[codec][0]!.encoder;
  const timing = liveTiming(medium);
  const dirs = await Promise.all(
    Array.from({ length: count }, () => Deno.makeTempDir({ dir: dataDir })),
  );
  const protocol = codec === "vp8" || codec === "vp9" ? "dash" : "hls";
  const encoders = dirs.map((dir) =>
    startEncoder({
      encoder,
      profile: medium,
      output: out720,
      encode: { live: true, keyframe_s: timing.segment_s },
      muxArgs: muxArgs({ protocol, codec, timing, output: out720, generation: 0 }),
      log,
      cwd: dir,
    })
  );
  let i = 0;
  const feed = setInterval(() => {
    const frame = frames[i++ % frames.length]!;
    for (const e of encoders) e.push(frame);
  }, 1000 / FPS);
  await sleep(2_000);
  const pids = [...encoders.map((e) => e.pid), Deno.pid];
  const before = await cpuSeconds(pids);
  const dropped0 = encoders.map((e) => e.stats().frames_dropped);
  const encoded0 = encoders.map((e) => e.stats().encoded_frames);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const wall = (performance.now() - t0) / 1000;
  const after = await cpuSeconds(pids);
  const runs = encoders.map((e, k) => ({
    ffmpeg: (after[k]! - before[k]!) / wall,
    feeder: (after.at(-1)! - before.at(-1)!) / wall / count,
    speed: (e.stats().encoded_frames - encoded0[k]!) / wall / FPS,
    dropped: e.stats().frames_dropped - dropped0[k]!,
  }));
  clearInterval(feed);
  await Promise.all(encoders.map((e) => e.abort()));
  await Promise.all(dirs.map((d) => Deno.remove(d, { recursive: true })));
  return runs;
}

/** Plain ffmpeg on the frames file with the same encoder settings (from `-i` to the muxer). */
function plainCommand(codec: Codec, seconds: number, paced: boolean, cwd: string) {
  const encoder = table[codec][0]!.encoder;
  const timing = liveTiming(medium);
  const protocol = codec === "vp8" || codec === "vp9" ? "dash" : "hls";
  return new Deno.Command("ffmpeg", {
    args: [
      "-hide_banner",
      "-loglevel",
      "error",
      "-nostats",
      ...(paced ? ["-re"] : []),
      "-f",
      "image2pipe",
      "-c:v",
      "mjpeg",
      "-framerate",
      String(FPS),
      "-i",
      framesFile,
      "-t",
      String(seconds),
      ...encoderArgs(encoder, medium, out720, { live: true, keyframe_s: timing.segment_s }),
      ...(paced
        ? muxArgs({ protocol, codec, timing, output: out720, generation: 0 })
        : ["-f", "null", "-"]),
    ],
    cwd,
    stdout: "null",
    stderr: "inherit",
  });
}

/** Plain ffmpeg reading the frames at FPS (-re): its CPU cores over a window. */
async function plainFfmpeg(codec: Codec, seconds: number): Promise<number> {
  const dir = await Deno.makeTempDir({ dir: dataDir });
  const child = plainCommand(codec, seconds + 3, true, dir).spawn();
  await sleep(2_000);
  const [before] = await cpuSeconds([child.pid]);
  const t1 = performance.now();
  await sleep(seconds * 1000);
  const [after] = await cpuSeconds([child.pid]);
  const cores = (after! - before!) / ((performance.now() - t1) / 1000);
  await child.status;
  await Deno.remove(dir, { recursive: true });
  return cores;
}

/** The real-time factor: how much faster than real time plain ffmpeg encodes the frames. */
async function realTimeFactor(codec: Codec, seconds: number): Promise<number> {
  const dir = await Deno.makeTempDir({ dir: dataDir });
  const t0 = performance.now();
  await plainCommand(codec, seconds, false, dir).output();
  const wall = (performance.now() - t0) / 1000;
  await Deno.remove(dir, { recursive: true });
  return seconds / wall;
}

/**
 * Parts 2–4; returns the report.
 *
 * 2. Encoder cost per codec at 720p30 with the `medium` profile: the cores ffmpeg uses fed in real
 * time through `lib/video/encoder.ts` (live settings, DASH muxing), and its real-time factor (the
 * same encode as fast as it goes, plain ffmpeg on the same frames). 3. streamplay's pipeline
 * (frames pushed through `startEncoder` with a stream's exact arguments: the pacer, the pipe,
 * ffmpeg decoding, scaling, encoding and writing HLS) against plain ffmpeg reading the same JPEG
 * frames from a file at the same rate and writing HLS with the same encoder settings: CPU of each,
 * alternated, in the same run. 4. How many simultaneous 720p H.264 streams this machine sustains:
 * estimated from (3), then run for real (every stream at ≥ 0.95× real time, no frames dropped).
 */
async function encodingPart(): Promise<() => void> {
  console.log("  capturing screencast frames of the animated page…");
  frames = await captureFrames(FPS * 5);
  await Deno.writeFile(
    framesFile,
    concat(Array.from({ length: (SECONDS + 4) * FPS }, (_, i) => frames[i % frames.length]!)),
  );
  const jpegKb = frames.reduce((a, f) => a + f.length, 0) / frames.length / 1024;
  const idle = await (async () => {
    const [a] = await cpuSeconds([Deno.pid]);
    await sleep(2_000);
    const [b] = await cpuSeconds([Deno.pid]);
    return (b! - a!) / 2;
  })();

  console.log("  encoder cost per codec…");
  const perCodec: string[][] = [[
    "codec",
    "encoder",
    "cores at 720p30 (ours)",
    "real-time factor (plain ffmpeg, unpaced)",
    "speed fed live",
  ]];
  const costs = new Map<Codec, number>();
  for (const codec of CODECS) {
    if (!table[codec][0]) continue;
    const seconds = Math.max(4, Math.round(SECONDS / 2));
    const [run] = await pipeline(codec, seconds);
    const factor = await realTimeFactor(codec, seconds);
    costs.set(codec, run!.ffmpeg);
    perCodec.push([
      codec,
      table[codec][0]!.encoder,
      fixed(run!.ffmpeg),
      `${fixed(factor)}×`,
      `${fixed(run!.speed)}×`,
    ]);
  }

  console.log("  pipeline vs plain ffmpeg (H.264 HLS)…");
  const ours: number[] = [];
  const plain: number[] = [];
  for (let round = 0; round < 2; round++) {
    const [run] = await pipeline("h264", SECONDS);
    ours.push(run!.ffmpeg + Math.max(0, run!.feeder - idle));
    plain.push(await plainFfmpeg("h264", SECONDS));
  }
  const oursCores = ours.reduce((a, b) => a + b) / ours.length;
  const plainCores = plain.reduce((a, b) => a + b) / plain.length;
  const ratio = oursCores / plainCores;

  console.log("  simultaneous 720p H.264 streams…");
  const perStream = costs.get("h264") ?? oursCores;
  let sustained = Math.max(1, Math.floor(navigator.hardwareConcurrency * 0.9 / perStream));
  let sustainedRuns: Run[] = [];
  for (; sustained >= 1; sustained--) {
    sustainedRuns = await pipeline("h264", Math.max(5, Math.round(SECONDS / 2)), sustained);
    if (sustainedRuns.every((r) => r.speed >= 0.95 && r.dropped === 0)) break;
  }

  return () => {
    console.log(
      `\nencoder cost per stream, 720p30 medium (frames: screencast JPEGs, ${
        fixed(jpegKb, 0)
      } KB avg)`,
    );
    printTable(perCodec);
    for (const [codec, encoder, cores, factor, speed] of perCodec.slice(1)) {
      report.add({
        metric: `${codec} (${encoder}), 720p30 \`medium\` fed live: encoder CPU`,
        ours: roundTo(Number(cores)),
        peer: `real-time factor ${factor} unpaced; speed fed live ${speed}`,
        unit: "cores",
      });
    }
    report.add({
      metric: "CPU of a 720p30 H.264 HLS stream, frames in to segments out",
      ours: roundTo(oursCores),
      peer: roundTo(plainCores),
      peer_name: "plain ffmpeg on the same frames",
      unit: "cores",
      target: "≤ 1.15× plain ffmpeg",
      met: ratio <= 1.15,
    });
    report.add({ metric: "ratio to plain ffmpeg", ours: roundTo(ratio), unit: "×" });
    report.add({
      metric: "simultaneous 720p30 H.264 streams sustained",
      ours: sustained,
      peer: sustainedRuns.map((r) => `${fixed(r.speed)}×`).join(", "),
      peer_name: "speeds",
    });
    printTable([
      ["H.264 720p30 HLS, same frames", "CPU cores", "runs"],
      [
        "streamplay pipeline (pacer + pipe + ffmpeg)",
        fixed(oursCores),
        ours.map((c) => fixed(c)).join(", "),
      ],
      ["plain ffmpeg (-re from a file)", fixed(plainCores), plain.map((c) => fixed(c)).join(", ")],
      ["ratio", `${fixed(ratio)}×`, `target ≤ 1.15×: ${ratio <= 1.15 ? "met" : "NOT met"}`],
    ]);
    console.log(
      `\nsimultaneous 720p30 H.264 streams sustained here: ${sustained} ` +
        `(speeds ${sustainedRuns.map((r) => `${fixed(r.speed)}×`).join(", ")}, ` +
        `dropped ${sustainedRuns.reduce((a, r) => a + r.dropped, 0)}; ` +
        `estimate from ${
          fixed(perStream)
        } core per stream on ${navigator.hardwareConcurrency} cores)`,
    );
  };
}

// ---- 1: glass-to-glass latency ----

interface Latency {
  label: string;
  player: number[];
  edge: number[];
  stalls: number;
}

/**
 * The age of the frame on screen in the player page: the clock it shows, decoded from the video
 * element, against the page's own clock at that moment (null before playback or unreadable).
 */
function screenAge(page: Page): Promise<number | null> {
  return page.evaluate(({ WIDTH, HEIGHT, BITS, BLOCK }) => {
    // deno-lint-ignore no-explicit-any
    const v = (globalThis as any).document.querySelector("video");
    if (!v || !v.videoWidth || v.paused) return null;
    // deno-lint-ignore no-explicit-any
    const g = (globalThis as any).__clockCanvas ??= (globalThis as any).document
      .createElement("canvas").getContext("2d", { willReadFrequently: true });
    g.canvas.width = v.videoWidth;
    g.canvas.height = v.videoHeight;
    g.drawImage(v, 0, 0);
    const sx = v.videoWidth / WIDTH;
    const sy = v.videoHeight / HEIGHT;
    const row = (r: number) => {
      let n = 0;
      for (let i = 0; i < BITS; i++) {
        const d = g.getImageData(
          Math.round((16 + i * BLOCK + BLOCK / 2) * sx),
          Math.round((16 + r * BLOCK + BLOCK / 2) * sy),
          1,
          1,
        ).data;
        n = n * 2 + (d[0] + d[1] + d[2] > 384 ? 1 : 0);
      }
      return n;
    };
    const now = Date.now();
    const a = row(0);
    return a === row(2) ? (now % 2 ** BITS - a + 2 ** BITS) % 2 ** BITS : null;
  }, { WIDTH, HEIGHT, BITS, BLOCK });
}

/** Decodes the last frame of a segment with ffmpeg (gray) and reads its clock. */
async function segmentClock(url: string): Promise<number | null> {
  const { stdout, success } = await new Deno.Command("ffmpeg", {
    args: [
      "-loglevel",
      "error",
      "-i",
      url,
      "-vf",
      "format=gray",
      "-f",
      "rawvideo",
      "pipe:1",
    ],
    stdout: "piped",
    stderr: "null",
  }).output();
  const size = WIDTH * HEIGHT;
  if (!success || stdout.length < size) return null;
  return decodeClock(stdout.subarray(stdout.length - size), WIDTH, HEIGHT);
}

/**
 * Follows an HLS playlist as a low-latency player does (blocking reload: each request returns
 * when the next segment is listed); the last frame of each new segment, against when it was
 * listed, gives the live edge's age: the newest frame any client could have.
 */
async function watchEdge(playlistUrl: string, until: number): Promise<number[]> {
  const decoding: Array<Promise<number | null>> = [];
  let next = -1;
  while (Date.now() < until) {
    const url = next < 0 ? playlistUrl : `${playlistUrl}?_HLS_msn=${next}`;
    const text = await (await fetch(url)).text();
    const listedAt = Date.now();
    const first = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(text)?.[1] ?? 0);
    const uris = text.split("\n").filter((l) => l && !l.startsWith("#"));
    const last = first + uris.length - 1;
    if (next >= 0 && last >= next && uris.length) {
      const segment = new URL(uris.at(-1)!, playlistUrl).href;
      decoding.push(
        segmentClock(segment).then((clock) =>
          clock === null ? null : (listedAt % 2 ** BITS - clock + 2 ** BITS) % 2 ** BITS
        ),
      );
    }
    next = last + 1;
  }
  return (await Promise.all(decoding)).filter((a): a is number => a !== null);
}

async function latency(
  sessionId: string,
  protocol: "hls" | "dash",
  quality: "medium" | "ultra_low_latency",
): Promise<Latency> {
  const stream = await api(`/api/sessions/${sessionId}/stream`, "POST", {
    protocol,
    quality,
    codec: "h264",
    width: WIDTH,
    height: HEIGHT,
    frame_rate: FPS,
  });
  const page = await browser.newPage();
  await page.goto(stream.player_url);
  const startBy = Date.now() + 30_000;
  while ((await screenAge(page)) === null && Date.now() < startBy) await sleep(200);
  await sleep(4_000);
  const until = Date.now() + SECONDS * 1000;
  const edge = protocol === "hls" ? watchEdge(stream.stream_url, until) : Promise.resolve([]);
  const player: number[] = [];
  let stalls = 0;
  let lastTime = -1;
  while (Date.now() < until) {
    const ms = await screenAge(page);
    if (ms !== null) player.push(ms);
    const t = await page.evaluate(() =>
      // deno-lint-ignore no-explicit-any
      (globalThis as any).document.querySelector("video").currentTime as number
    );
    if (t === lastTime) stalls++;
    lastTime = t;
    await sleep(250);
  }
  await page.close();
  await api(`/api/streams/${stream.stream_id}`, "DELETE");
  const label = `${protocol.toUpperCase()} ${quality} (${stream.segment_seconds} s segments)`;
  return { label, player, edge: await edge, stalls };
}

/**
 * Part 1; returns the report.
 *
 * A page draws the wall clock (ms) as a row of black and white blocks; a session streams it; the
 * app's own player page (hls.js / dash.js) plays the stream in a second headless Chromium, and
 * every 250 ms the frame on screen is read back from the video element (canvas readback) and
 * decoded: latency = now − drawn time. For HLS also the live edge: each new segment, decoded by
 * ffmpeg as soon as the playlist lists it, gives the newest frame any client could have. HLS
 * default (`medium`), HLS `ultra_low_latency`, DASH `medium` and DASH `ultra_low_latency`, H.264
 * 720p30.
 */
async function latencyPart(): Promise<() => void> {
  console.log("  glass-to-glass latency…");
  const clockSession = await startSession(`${PAGES}/clock`);
  const latencies: Latency[] = [];
  for (
    const [protocol, quality] of [
      ["hls", "medium"],
      ["hls", "ultra_low_latency"],
      ["dash", "medium"],
      ["dash", "ultra_low_latency"],
    ] as const
  ) {
    latencies.push(await latency(clockSession, protocol, quality));
  }
  await api(`/api/sessions/${clockSession}`, "DELETE");

  return () => {
    const TARGETS: Record<string, [number, string]> = {
      "HLS medium": [3000, "≤ 3 s"],
      "HLS ultra_low_latency": [1500, "≤ 1.5 s"],
    };
    const REFERENCE: Record<string, string> = {
      HLS: "~2–3 s (claimed)",
      DASH: "< 1 s (claimed)",
    };
    const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
    const s = (ms: number) => `${fixed(ms / 1000)} s`;
    const rows = [[
      "glass-to-glass (player on screen)",
      "p50",
      "p95",
      "live edge p50 (ffmpeg)",
      "samples",
      "stalled samples",
      "reference product",
      "target",
    ]];
    for (const l of latencies) {
      const key = l.label.replace(/ \(.*/, "");
      const p50 = percentile(sorted(l.player), 50);
      const target = TARGETS[key];
      const edge = l.edge.length ? percentile(sorted(l.edge), 50) / 1000 : null;
      report.add({
        metric: `glass-to-glass latency p50, ${l.label}, the app's player`,
        ours: roundTo(p50 / 1000),
        peer: REFERENCE[key.split(" ")[0]!]!,
        peer_name: "reference product",
        unit: "s",
        target: target ? target[1] : null,
        met: target ? p50 <= target[0] : null,
      });
      report.add({
        metric: `${l.label}: p95; live edge p50 (ffmpeg)`,
        ours: `${s(percentile(sorted(l.player), 95))}; ${edge === null ? "–" : `${fixed(edge)} s`}`,
      });
      rows.push([
        l.label,
        s(p50),
        s(percentile(sorted(l.player), 95)),
        l.edge.length ? s(percentile(sorted(l.edge), 50)) : "–",
        String(l.player.length),
        String(l.stalls),
        REFERENCE[key.split(" ")[0]!]!,
        target ? `${target[1]}: ${p50 <= target[0] ? "met" : "NOT met"}` : "–",
      ]);
    }
    printTable(rows);
  };
}

const PARTS = (Deno.env.get("BENCH_PARTS") ?? "latency,encoding").split(",");
const reports: Array<() => void> = [];
if (PARTS.includes("latency")) reports.push(await latencyPart());
if (PARTS.includes("encoding")) reports.push(await encodingPart());
// The load average is printed before and after: on a shared machine the figures are only as quiet
// as it was.
const loadAfter = loadAverage();

await browser.close();
await platform.close();
await pageServer.shutdown();
await Deno.remove(dataDir, { recursive: true });

for (const print of reports) print();
console.log(`\nload average after: ${loadAfter}`);
await report.write();
