/**
 * `deno task bench:record`: what recording a 720p session at 25 fps costs, per codec and quality
 * profile, on a page with continuous animation, against plain ffmpeg and end to end. Targets: h264
 * `medium` ≤ 0.5 core and within ±20 % of 1,500 kbps; no growing backlog for h264 and vp8.
 */
import { CHROMIUM_ARGS, loadPlaywright } from "../lib/core/playwright.ts";
import { startEncoder } from "../lib/video/encoder.ts";
import { CLOCK_TICKS_PER_S, readStats } from "../lib/core/procfs.ts";
import { loadConfig } from "../lib/core/config.ts";
import { createLogger } from "../lib/core/log.ts";
import { startPlatform } from "../lib/platform.ts";
import {
  type Codec,
  CODECS,
  detectEncoders,
  encoderArgs,
  FILE_CONTAINER,
  outputSettings,
  type ProfileName,
  PROFILES,
  progressiveFileMuxArgs,
} from "../lib/video/codecs.ts";
import {
  benchReport,
  benchTempDir,
  CHROMIUM,
  fixed,
  loadAverage,
  printTable,
  round,
  sleep,
} from "./common.ts";
import { colourGridPage } from "./pages.ts";
import { parts } from "../main.ts";

/**
 * BENCH_SECONDS (default 10) sets each run; BENCH_CODECS and BENCH_PROFILES (comma lists) narrow
 * the table.
 */
const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 10);
const CAPTURE_S = 4;
const FPS = 25;
const WIDTH = 1280;
const HEIGHT = 720;
const NODES = 2000;
const list = <T extends string>(name: string, all: readonly T[]) =>
  (Deno.env.get(name)?.split(",").map((s) => s.trim()).filter(Boolean) as T[] | undefined) ??
    [...all];
const CODEC_LIST = list<Codec>("BENCH_CODECS", CODECS);
const PROFILE_LIST = list<ProfileName>("BENCH_PROFILES", [
  "low_bandwidth",
  "medium",
  "high",
  "lossless",
]);
const log = createLogger({ level: "warn" });

const PAGE = colourGridPage(WIDTH, NODES);

/**
 * The live session's page: a full-window canvas animation (moving, colour-shifting discs over a
 * gradient, and a clock), hard to encode but light enough to render that the encoder is not
 * starved by the page itself on two cores.
 */
const LIVE_PAGE = `<!doctype html><html><head><title>canvas</title></head>
<body style="margin:0;overflow:hidden"><canvas id="c" width="${WIDTH}" height="${HEIGHT}"></canvas>
<script>
const c = document.getElementById("c").getContext("2d");
function frame(t) {
  const g = c.createLinearGradient(0, 0, ${WIDTH}, ${HEIGHT});
  g.addColorStop(0, "hsl(" + (t / 20 % 360) + ",60%,30%)");
  g.addColorStop(1, "hsl(" + ((t / 20 + 180) % 360) + ",60%,30%)");
  c.fillStyle = g;
  c.fillRect(0, 0, ${WIDTH}, ${HEIGHT});
  for (let i = 0; i < 150; i++) {
    c.fillStyle = "hsl(" + ((t / 10 + i * 13) % 360) + ",80%,55%)";
    c.beginPath();
    c.arc((i * 97 + t / 5) % ${WIDTH}, (i * 53 + t / 7 * (i % 3 + 1)) % ${HEIGHT}, 10 + i % 25, 0, 7);
    c.fill();
  }
  c.fillStyle = "#fff";
  c.font = "48px sans-serif";
  c.fillText(new Date().toISOString(), 40, 80);
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);
</script></body></html>`;

const pageServer = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  (req) =>
    new Response(new URL(req.url).pathname === "/live" ? LIVE_PAGE : PAGE, {
      headers: { "content-type": "text/html" },
    }),
);
const PAGE_URL = `http://127.0.0.1:${pageServer.addr.port}/`;

/** CPU seconds (user + system) a process has used so far. */
async function cpuSeconds(pid: number): Promise<number> {
  const [stat] = await readStats([pid]);
  return (stat?.cpuTicks ?? 0) / CLOCK_TICKS_PER_S;
}

// ---- 1. capture ----

interface Captured {
  jpeg: Uint8Array;
}

/**
 * The animation's frames 1/25 s apart, drawn at set times and taken as JPEG q60 (the
 * screencast's encoding), so the input does not depend on how busy the machine is.
 *
 * 4 s of animation of a 2,000-node page that changes colour continuously (1280×720), whatever the
 * machine's load; then the browser is closed so it does not compete with the encoders.
 */
async function capture(): Promise<Captured[]> {
  const { chromium } = await loadPlaywright();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage({ viewport: { width: WIDTH, height: HEIGHT } });
    await page.goto(`${PAGE_URL}?still`);
    const frames: Captured[] = [];
    for (let i = 0; i < CAPTURE_S * FPS; i++) {
      await page.evaluate(`draw(${(i * 1000) / FPS})`);
      const jpeg = await page.screenshot({ type: "jpeg", quality: 60 });
      frames.push({ jpeg: new Uint8Array(jpeg) });
    }
    return frames;
  } finally {
    await browser.close();
  }
}

// ---- 2. the recorder's encoder on the captured frames ----

interface Row {
  codec: Codec;
  profile: ProfileName;
  encoder: string;
  cores: number;
  mbPerMin: number;
  kbps: number;
  target: number | null;
  backlogMax: number;
  backlogEnd: number;
  dropped: number;
  speed: number;
}

/**
 * A page that animates at least as fast as the video: a new captured frame every 1/25 s (the
 * captured ones in turn), for `seconds`.
 */
async function feed(frames: Captured[], push: (jpeg: Uint8Array) => void, seconds: number) {
  const start = performance.now();
  for (let i = 0; i < seconds * FPS; i++) {
    const wait = start + (i * 1000) / FPS - performance.now();
    if (wait > 1) await sleep(wait);
    push(frames[i % frames.length]!.jpeg);
  }
}

/**
 * A new captured frame every 1/25 s (continuous animation) goes to the recorder's encoder exactly
 * as a recording runs it (`startEncoder`, 1280×720 at 25 fps, the profile's rate control, the
 * crash-safe file muxer). Measured: ffmpeg's CPU (user + system time from /proc over the run), MB
 * per minute of video, the achieved bitrate against the profile's, and the pacer's backlog (frames
 * owed to ffmpeg, sampled every 250 ms) and dropped frames, which say whether encoding kept up with
 * real time on this machine.
 */
async function recordRun(
  frames: Captured[],
  codec: Codec,
  profileName: ProfileName,
  encoder: string,
  dir: string,
): Promise<Row> {
  const profile = PROFILES[profileName];
  const output = outputSettings(profile, { width: WIDTH, height: HEIGHT, fps: FPS });
  const file = `${dir}/${codec}-${profileName}.${FILE_CONTAINER[codec]}`;
  const enc = startEncoder({
    encoder,
    profile,
    output,
    muxArgs: progressiveFileMuxArgs(FILE_CONTAINER[codec], file),
    log,
    // A recording never drops frames (it finishes late instead); here the backlog is capped at
    // 2 s like a live stream's, so an encoder that cannot keep up shows dropped frames rather
    // than holding the run up while it catches up.
    maxBacklogS: 2,
  });
  // One second to start up, then the measured window.
  const warm = feed(frames, (j) => enc.push(j), SECONDS + 1);
  await sleep(1000);
  const cpu0 = await cpuSeconds(enc.pid);
  const t0 = performance.now();
  const backlog: number[] = [];
  const sampler = setInterval(() => backlog.push(enc.stats().backlog_frames), 250);
  await warm;
  const cpu1 = await cpuSeconds(enc.pid);
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  const result = await enc.stop();
  const bytes = (await Deno.stat(file)).size;
  const videoS = result.frames_written / FPS;
  return {
    codec,
    profile: profileName,
    encoder,
    cores: (cpu1 - cpu0) / seconds,
    mbPerMin: bytes / (1024 * 1024) / (videoS / 60),
    kbps: (bytes * 8) / videoS / 1000,
    target: profile.bitrate_kbps,
    backlogMax: Math.max(0, ...backlog),
    backlogEnd: backlog.at(-1) ?? 0,
    dropped: result.frames_dropped,
    speed: result.speed,
  };
}

// ---- 3. peer: plain ffmpeg on the same frames ----

/**
 * The peer: plain ffmpeg with the same encoder arguments reading the same JPEG stream at 25 fps
 * (`-re`, no platform), for each codec's `medium` row.
 */
async function plainFfmpeg(
  frames: Captured[],
  codec: Codec,
  encoder: string,
  dir: string,
): Promise<{ cores: number; kbps: number }> {
  const profile = PROFILES.medium;
  const output = outputSettings(profile, { width: WIDTH, height: HEIGHT, fps: FPS });
  // The same frames as a 25 fps JPEG stream, long enough for the window.
  const input = `${dir}/input.mjpeg`;
  const count = Math.ceil((SECONDS + 1) * FPS);
  const file = await Deno.open(input, { write: true, create: true, truncate: true });
  for (let i = 0; i < count; i++) await file.write(frames[i % frames.length]!.jpeg);
  file.close();
  const out = `${dir}/peer-${codec}.${FILE_CONTAINER[codec]}`;
  const child = new Deno.Command("ffmpeg", {
    args: [
      "-hide_banner",
      "-loglevel",
      "error",
      "-re",
      "-f",
      "image2pipe",
      "-c:v",
      "mjpeg",
      "-framerate",
      String(FPS),
      "-i",
      input,
      "-vf",
      `scale=${output.width}:${output.height}`,
      ...encoderArgs(encoder, profile, output),
      ...progressiveFileMuxArgs(FILE_CONTAINER[codec], out),
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await sleep(1000);
  const cpu0 = await cpuSeconds(child.pid);
  const t0 = performance.now();
  await sleep(SECONDS * 1000 - 200);
  const cpu1 = await cpuSeconds(child.pid);
  const seconds = (performance.now() - t0) / 1000;
  await child.status;
  const bytes = (await Deno.stat(out)).size;
  return { cores: (cpu1 - cpu0) / seconds, kbps: (bytes * 8) / (count / FPS) / 1000 };
}

// ---- 4. end to end: a real session recorded ----

/** The Chromium processes below this one. */
async function chromiumTree(): Promise<number[]> {
  const { stdout } = await new Deno.Command("ps", {
    args: ["-e", "-o", "pid=,ppid=,comm="],
    stdout: "piped",
  }).output();
  const rows = new TextDecoder().decode(stdout).trim().split("\n").map((l) =>
    l.trim().split(/\s+/)
  );
  const out: number[] = [];
  const visit = (parent: number) => {
    for (const [pid, ppid, comm] of rows) {
      if (Number(ppid) !== parent) continue;
      if (comm === "chromium") out.push(Number(pid));
      visit(Number(pid));
    }
  };
  visit(Deno.pid);
  return out;
}

async function cpuOf(pids: number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) {
    const used = await cpuSeconds(pid);
    if (Number.isFinite(used)) total += used;
  }
  return total;
}

/**
 * A real session (the platform in this process) on a canvas animation, recorded with h264 `medium`
 * at 720p25 while Chromium renders it: ffmpeg's and Chromium's CPU, the encoding speed, and how
 * long the stop took (a file behind real time finishes late).
 */
async function endToEnd(): Promise<
  { cores: number; chromium: number; stopS: number; speed: number }
> {
  const dataDir = await benchTempDir("bench-record-");
  const config = loadConfig({
    PORT: "0",
    STREAMPLAY_DATA_DIR: dataDir,
    STREAMPLAY_CONCURRENCY: "1",
  });
  try {
    await using platform = await startPlatform(config, {
      role: "all",
      parts,
      log,
      version: "bench",
    });
    const base = `http://127.0.0.1:${platform.address!.port}`;
    const call = (method: string, path: string, body?: unknown) =>
      fetch(base + path, {
        method,
        headers: body ? { "content-type": "application/json" } : {},
        body: body ? JSON.stringify(body) : undefined,
      }).then((r) => r.json());
    const session = await call("POST", "/api/sessions", { url: `${PAGE_URL}live`, max_fps: 30 });
    const recording = await call("POST", `/api/sessions/${session.id}/recording`, {
      codec: "h264",
      quality: "medium",
      fps: FPS,
      width: WIDTH,
      height: HEIGHT,
    });
    const { stdout } = await new Deno.Command("ps", {
      args: ["-o", "pid=,args=", "--ppid", String(Deno.pid)],
      stdout: "piped",
    }).output();
    const line = new TextDecoder().decode(stdout).split("\n").find((l) =>
      l.includes(recording.recording_id)
    );
    const pid = Number(line?.trim().split(/\s+/)[0]);
    await sleep(1000);
    const browser = await chromiumTree();
    const cpu0 = await cpuSeconds(pid);
    const browser0 = await cpuOf(browser);
    const t0 = performance.now();
    await sleep(SECONDS * 1000);
    const cpu1 = await cpuSeconds(pid);
    const browser1 = await cpuOf(browser);
    const seconds = (performance.now() - t0) / 1000;
    // A file that fell behind real time is finished only once ffmpeg caught up: the stop shows it.
    const asked = performance.now();
    const stopped = await call("DELETE", `/api/sessions/${session.id}/recording`);
    const stopS = (performance.now() - asked) / 1000;
    await call("DELETE", `/api/sessions/${session.id}`);
    return {
      cores: (cpu1 - cpu0) / seconds,
      chromium: (browser1 - browser0) / seconds,
      stopS,
      speed: stopped.stats?.speed ?? 0,
    };
  } finally {
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
}

// ---- run ----

const report = benchReport("record");
console.log(
  `bench:record — ${WIDTH}×${HEIGHT} at ${FPS} fps, ${SECONDS} s per run, load average ` +
    `${loadAverage()} on ${navigator.hardwareConcurrency} cores`,
);
const frames = await capture();
console.log(
  `${frames.length} frames of animation, JPEG q60, ${
    (frames.reduce((a, f) => a + f.jpeg.length, 0) / frames.length / 1024).toFixed(0)
  } KB each`,
);
const table = await detectEncoders();
const dir = await benchTempDir("bench-record-");
const rows: Row[] = [];
const peers = new Map<Codec, { cores: number; kbps: number }>();
try {
  for (const codec of CODEC_LIST) {
    const encoder = table[codec][0]?.encoder;
    if (!encoder) {
      console.log(`${codec}: no working encoder here, skipped`);
      continue;
    }
    for (const profile of PROFILE_LIST) {
      const row = await recordRun(frames, codec, profile, encoder, dir);
      rows.push(row);
      console.error(`  ${codec} ${profile}: ${fixed(row.cores)} cores, ${fixed(row.kbps, 0)} kbps`);
    }
    if (PROFILE_LIST.includes("medium")) {
      peers.set(codec, await plainFfmpeg(frames, codec, encoder, dir));
    }
  }
} finally {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
const e2e = CODEC_LIST.includes("h264") ? await endToEnd() : null;
await pageServer.shutdown();

/** Fell behind real time: frames had to be dropped, or the run ended a second or more behind. */
const growing = (r: Row) => r.dropped > 0 || r.backlogEnd >= FPS;
printTable([
  [
    "codec",
    "profile",
    "encoder",
    "cores",
    "plain ffmpeg",
    "MB/min",
    "kbps",
    "target kbps",
    "vs target",
    "backlog max/end",
    "dropped",
    "keeps up",
  ],
  ...rows.map((r) => [
    r.codec,
    r.profile,
    r.encoder,
    fixed(r.cores),
    r.profile === "medium" && peers.has(r.codec) ? fixed(peers.get(r.codec)!.cores) : "",
    fixed(r.mbPerMin, 1),
    fixed(r.kbps, 0),
    r.target === null ? "CRF 0" : String(r.target),
    r.target === null
      ? ""
      : `${r.kbps >= r.target ? "+" : ""}${fixed((r.kbps / r.target - 1) * 100, 0)} %`,
    `${r.backlogMax}/${r.backlogEnd}`,
    String(r.dropped),
    growing(r) ? "no (backlog grows)" : "yes",
  ]),
]);
if (e2e) {
  console.log(
    `\nend to end (a live session on a canvas animation recorded with h264 medium at 720p25): ` +
      `ffmpeg ${fixed(e2e.cores)} cores, Chromium ${fixed(e2e.chromium)} cores, encoding speed ${
        fixed(e2e.speed)
      }× real time, the stop took ${fixed(e2e.stopS)} s (finishing the file)`,
  );
}

const h264 = rows.find((r) => r.codec === "h264" && r.profile === "medium");
const verdicts: string[] = [];
if (h264) {
  const within = Math.abs(h264.kbps / 1500 - 1) <= 0.2;
  verdicts.push(
    `h264 medium ≤ 0.5 core: ${fixed(h264.cores)} → ${h264.cores <= 0.5 ? "met" : "NOT met"}`,
    `h264 medium bitrate within ±20 % of 1500 kbps: ${fixed(h264.kbps, 0)} → ${
      within ? "met" : "NOT met"
    }`,
  );
}
for (const codec of ["h264", "vp8"] as const) {
  const mine = rows.filter((r) => r.codec === codec);
  if (mine.length === 0) continue;
  const bad = mine.filter(growing);
  verdicts.push(
    `${codec} at 720p keeps up with real time (no growing backlog): ${
      bad.length === 0 ? "met" : `NOT met (${bad.map((r) => r.profile).join(", ")})`
    }`,
  );
}
console.log(`\nTargets:\n  ${verdicts.join("\n  ")}`);
console.log(`load average at the end: ${loadAverage()}`);

for (const r of rows) {
  const name = `${r.codec} \`${r.profile}\``;
  const h264Medium = r.codec === "h264" && r.profile === "medium";
  const peer = r.profile === "medium" ? peers.get(r.codec) : undefined;
  report.add({
    metric: `${name} (${r.encoder}), 720p25: encoder CPU`,
    ours: round(r.cores),
    peer: peer ? round(peer.cores) : null,
    peer_name: peer ? "plain ffmpeg, same frames and arguments" : null,
    unit: "cores",
    target: h264Medium ? "≤ 0.5 core" : null,
    met: h264Medium ? r.cores <= 0.5 : null,
  });
  report.add({
    metric: `${name}: bitrate` +
      (r.target === null ? " (lossless)" : ` (profile ${r.target} kbps)`),
    ours: round(r.kbps, 0),
    unit: "kbps",
    target: h264Medium ? "within ±20 % of 1,500 kbps" : null,
    met: h264Medium ? Math.abs(r.kbps / 1500 - 1) <= 0.2 : null,
  });
}
for (const codec of CODEC_LIST) {
  const mine = rows.filter((r) => r.codec === codec);
  if (mine.length === 0) continue;
  const behind = mine.filter(growing).map((r) => r.profile);
  const target = codec === "h264" || codec === "vp8";
  report.add({
    metric: `${codec} at 720p25 keeps up with real time, every profile`,
    ours: behind.length === 0 ? "yes" : `no (${behind.join(", ")} fell behind)`,
    target: target ? "no growing backlog" : null,
    met: target ? behind.length === 0 : null,
  });
}
if (e2e) {
  const live = "live session recorded, h264 `medium` 720p25";
  report.add({ metric: `${live}: ffmpeg CPU`, ours: round(e2e.cores), unit: "cores" });
  report.add({ metric: `${live}: Chromium CPU`, ours: round(e2e.chromium), unit: "cores" });
  report.add({ metric: `${live}: encoding speed`, ours: round(e2e.speed), unit: "× real time" });
  report.add({ metric: `${live}: time the stop took`, ours: round(e2e.stopS), unit: "s" });
}
await report.write();
