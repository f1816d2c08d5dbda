// The stream player (/player/:id): plays a stream's HLS (hls.js, or the browser's own) or DASH
// (dash.js), low-latency when its segments are short, beside the stream's live metrics and what the
// player measures (latency behind the live edge, buffer ahead).

import { el, fmtBytes, fmtNumber } from "./api.js";

const id = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() ?? "");
const statusUrl = `/streams/${encodeURIComponent(id)}/status`;
const video = document.getElementById("video");
/** This player's identity for the server's viewer count (same-origin requests only). */
const playbackId = crypto.randomUUID();
let player = null;

function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message;
  box.classList.remove("hidden");
}

/** Needs no token: the stream id in the URL is the capability, as for any player. */
async function readStatus() {
  const res = await fetch(statusUrl, { cache: "no-store" });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const why = body.status?.reason ? ` (${body.status.reason})` : "";
    throw new Error(`${body.error ?? `HTTP ${res.status}`}${why}`);
  }
  return body.status;
}

const sameOrigin = (url) => new URL(url, location.href).origin === location.origin;

/** Latency and buffer as the player sees them. */
function playerFigures() {
  const ahead = video.buffered.length
    ? video.buffered.end(video.buffered.length - 1) - video.currentTime
    : 0;
  let latency = null;
  if (player?.kind === "hls") latency = player.hls.latency;
  if (player?.kind === "dash") latency = player.dash.getCurrentLiveLatency();
  return { latency, ahead };
}

async function playHls(status) {
  const url = status.hls_url;
  const { default: Hls } = await import("/vendor/hls.mjs");
  if (!Hls.isSupported()) {
    if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = url;
      return;
    }
    throw new Error("This browser cannot play HLS (no Media Source Extensions)");
  }
  const hls = new Hls({
    // Close to the live edge (the playlist blocks until the next segment: LL-HLS reload),
    // catching up when late.
    lowLatencyMode: true,
    liveSyncDuration: status.target_latency_seconds,
    liveMaxLatencyDuration: status.target_latency_seconds + status.segment_seconds * 4,
    maxLiveSyncPlaybackRate: 1.2,
    // A stall moves the target back by a quarter segment (hls.js: a second), up to a segment.
    liveSyncOnStallIncrease: status.segment_seconds / 4,
    backBufferLength: 10,
    enableWorker: true,
    xhrSetup: (xhr, target) => {
      if (sameOrigin(target)) xhr.setRequestHeader("X-Playback-Session-Id", playbackId);
    },
  });
  hls.on(Hls.Events.ERROR, (_e, data) => {
    if (data.fatal) showError(`Playback error: ${data.details}`);
  });
  hls.loadSource(url);
  hls.attachMedia(video);
  player = { kind: "hls", hls };
}

async function playDash(status) {
  const { MediaPlayer } = await import("/vendor/dash.mjs");
  const dash = MediaPlayer().create();
  dash.updateSettings({
    debug: { logLevel: 1 },
    streaming: {
      delay: { liveDelay: status.target_latency_seconds },
      liveCatchup: { enabled: true, maxDrift: 1, playbackRate: { min: -0.2, max: 0.2 } },
      utcSynchronization: {
        defaultTimingSource: {
          scheme: "urn:mpeg:dash:utc:http-xsdate:2014",
          value: new URL("/streams/time", status.dash_url).href,
        },
      },
    },
  });
  dash.addRequestInterceptor((request) => {
    if (sameOrigin(request.url)) {
      request.headers = { ...request.headers, "X-Playback-Session-Id": playbackId };
    }
    return Promise.resolve(request);
  });
  dash.on(MediaPlayer.events.ERROR, (e) => showError(`Playback error: ${e.error?.message ?? e}`));
  dash.initialize(video, status.dash_url, true);
  player = { kind: "dash", dash };
}

function row(dl, label, value) {
  dl.append(el("dt", {}, label), el("dd", {}, value));
}

function render(status) {
  const m = status.metrics;
  const mine = playerFigures();
  const dl = document.getElementById("metrics");
  dl.replaceChildren();
  row(dl, "State", el("span", { class: `status ${status.state}` }, status.state));
  row(dl, "Health", el("span", { class: `status ${status.health}` }, status.health));
  if (status.reason) row(dl, "Why", status.reason);
  row(dl, "fps", fmtNumber(m.current_fps, 1));
  row(dl, "Bitrate", `${fmtNumber(m.current_bitrate / 1000)} kbit/s`);
  row(dl, "Viewers", m.viewer_count ?? "counted by the RTMP server");
  row(dl, "Frames sent", fmtNumber(m.frames_sent));
  row(dl, "Bytes sent", fmtBytes(m.bytes_sent));
  row(dl, "Buffer health", `${fmtNumber(m.buffer_health, 1)} %`);
  row(dl, "Dropped frames", fmtNumber(m.dropped_frames));
  row(dl, "Encoder speed", `${fmtNumber(m.encoder_speed, 2)}×`);
  if (player) {
    row(dl, "Player latency", mine.latency === null ? "–" : `${fmtNumber(mine.latency, 2)} s`);
    row(dl, "Buffered ahead", `${fmtNumber(mine.ahead, 2)} s`);
  }
  const info = document.getElementById("info");
  info.replaceChildren();
  row(info, "Protocol", status.protocol.toUpperCase());
  row(info, "Codec", `${status.codec} (${status.encoder}${status.hardware ? ", hardware" : ""})`);
  row(info, "Video", `${status.width}×${status.height} @ ${status.frame_rate} fps`);
  row(info, "Quality", status.quality);
  row(info, "Session", status.session_id);
  row(info, "URL", el("span", { class: "mono url", title: status.stream_url }, status.stream_url));
  document.getElementById("title").textContent =
    ` · ${status.protocol.toUpperCase()} ${status.codec} ${status.width}×${status.height}`;
}

async function main() {
  let status;
  try {
    status = await readStatus();
  } catch (err) {
    showError(`Stream ${id}: ${err.message}`);
    return;
  }
  render(status);
  try {
    if (status.protocol === "hls") await playHls(status);
    else if (status.protocol === "dash") await playDash(status);
    else {
      video.classList.add("hidden");
      document.getElementById("note").textContent =
        `This stream is pushed over RTMP to ${status.rtmp_url}; watch it there.`;
    }
  } catch (err) {
    showError(err.message);
  }
  const timer = setInterval(async () => {
    try {
      render(await readStatus());
    } catch (err) {
      clearInterval(timer);
      showError(`The stream has ended: ${err.message}`);
      player?.hls?.destroy();
      player?.dash?.reset();
    }
  }, 1000);
}

main();
