/**
 * The live video streams of the sessions running in this process: one ffmpeg (`encoder.ts`) per
 * stream, fed the session's frames at a constant frame rate, delivering HLS, DASH or RTMP.
 */
import { join } from "node:path";
import type { Logger } from "../core/log.ts";
import { errorMessage } from "../core/log.ts";
import type { ControlReply } from "../sessions/store.ts";
import type { LiveSession, SessionHost } from "../sessions/host.ts";
import type { UrlPolicy } from "../security/url_policy.ts";
import { hostOf, pinnedPolicy } from "../security/egress.ts";
import { startSocksProxy } from "../security/socks_proxy.ts";
import { type Encoder, type EncoderExit, startEncoder } from "../video/encoder.ts";
import {
  type EncoderDetection,
  type EncoderInfo,
  type OutputSettings,
  outputSettings,
  PROFILES,
  type QualityProfile,
} from "../video/codecs.ts";
import {
  cacheControl,
  dashUsesMp4,
  isSegment,
  type LiveTiming,
  liveTiming,
  MAIN_FILE,
  MEDIA_FILE,
  mediaType,
  muxArgs,
  rtmpPolicyUrl,
  type RtmpTarget,
  rtmpTarget,
  StreamRequest,
} from "./options.ts";
import type {
  StreamHealth,
  StreamMetrics,
  StreamState,
  StreamStatus,
  StreamStore,
} from "./store.ts";
import { describeZodError } from "../http/errors.ts";

/** How long starting a stream waits for its first output before answering anyway. */
const READY_TIMEOUT_MS = 10_000;
/** A speed below this (frames encoded per frame due) is "below real time". */
const SLOW_SPEED = 0.9;
/** Grace after (re)starting ffmpeg before its speed counts toward health. */
const WARMUP_MS = 3_000;
const POLL_MS = 15;
/** Distinct players counted at most (a bound on memory whatever clients send). */
const MAX_CLIENTS = 100_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface LiveStream {
  readonly id: string;
  readonly sessionId: string;
  status(): StreamStatus;
  /**
   * A file of the stream for `client` (a player's identity), or null when there is none.
   * `msn`: an HLS player's `_HLS_msn`, the playlist is answered once that segment is listed.
   */
  serve(file: string, client: string, msn?: number): Promise<Response | null>;
  /** Stops ffmpeg, removes the files, and answers the final status. */
  stop(reason: string): Promise<StreamStatus>;
}

export interface StreamHost {
  get(id: string): LiveStream | undefined;
  list(): LiveStream[];
  /** Calls `listener` with the final status of each stream that stops. */
  onStop(listener: (final: StreamStatus) => void): () => void;
  close(): Promise<void>;
}

export interface StreamHostOptions {
  dataDir: string;
  /** Streams at once in this process; more get a 429. */
  maxStreams: number;
  log: Logger;
  sessions: SessionHost;
  store: StreamStore;
  policy: UrlPolicy;
  encoders: EncoderDetection;
  /** This process's base URL as clients reach it. */
  publicUrl(): string;
}

/** Stream ids are capabilities (anyone with the media URL can watch): 80 random bits. */
export function newStreamId(): string {
  const rand = crypto.getRandomValues(new Uint8Array(16));
  let tail = "";
  for (const b of rand) tail += (b % 32).toString(32);
  return `str_${Date.now().toString(36)}${tail}`;
}

interface Sample {
  at: number;
  encoded: number;
  written: number;
  dropped: number;
  backlog: number;
  bytes: number;
}

const fail = (status: number, error: string): ControlReply => ({ ok: false, status, error });

/** An RTMP push's target, pinned to a checked address, and what to close when it ends. */
interface RtmpPush {
  target: RtmpTarget;
  close(): Promise<void>;
}

class Stream implements LiveStream {
  readonly id = newStreamId();
  readonly sessionId: string;
  readonly profile: QualityProfile;
  readonly output: OutputSettings;
  readonly timing: LiveTiming;
  readonly dir: string;
  readonly startedAt = Date.now();
  state: StreamState = "active";
  health: StreamHealth = "healthy";
  reason: string | null = null;
  encoder!: Encoder;
  encoderStarted = 0;
  generation = 0;
  restarts = 0;
  /** Encoded bytes and frames of earlier ffmpeg generations (the counters restart with it). */
  base = { bytes: 0, frames: 0, in: 0, repeated: 0, dropped: 0 };
  samples: Sample[] = [];
  /** Segment files seen in the directory, with their sizes. */
  segments = new Map<string, number>();
  segmentBytes = 0;
  clients = new Map<string, number>();
  bytesServed = 0;
  segmentsServed = 0;
  requestsServed = 0;
  stopping: Promise<StreamStatus> | undefined;
  unsubscribe: () => void;
  /** An RTMP push keeps its session from ending idle while it runs (HTTP players touch it). */
  release: () => void = () => {};
  tick: ReturnType<typeof setInterval> | undefined;

  constructor(
    readonly host: HostContext,
    readonly session: LiveSession,
    readonly request: StreamRequest,
    readonly encoderInfo: EncoderInfo,
    readonly rtmp: RtmpPush | undefined,
  ) {
    this.sessionId = session.id;
    this.profile = PROFILES[request.quality];
    this.output = outputSettings(this.profile, {
      width: request.width,
      height: request.height,
      fps: request.frame_rate,
    });
    this.timing = liveTiming(this.profile, request.protocol);
    this.dir = join(host.dataDir, this.id);
    if (request.rtmp_key) host.log.addSecret(request.rtmp_key);
    if (session.snapshot().state === "paused") this.state = "paused";
    this.unsubscribe = session.subscribe({
      frame: (f) => this.encoder?.push(f.jpeg),
      state: (s) => {
        const next = s.state === "paused" ? "paused" : "active";
        if (this.state !== "stopped" && this.state !== next) {
          this.state = next;
          this.publish();
        }
      },
      end: (e) => void this.stop(`the session ended (${e.reason ?? e.state})`),
    });
    if (!this.isHttp) this.release = session.hold();
  }

  /** A lifecycle event of the stream in the session's history (and the dashboard's feed). */
  change(action: string) {
    return { type: "content_change", kind: "stream", action, entity_id: this.id };
  }

  get isHttp() {
    return this.request.protocol !== "rtmp";
  }

  async start(): Promise<void> {
    if (this.isHttp) await Deno.mkdir(this.dir, { recursive: true });
    this.launch();
    this.tick = setInterval(() => this.everySecond(), 1000);
  }

  /** Starts an ffmpeg generation and feeds it the newest frame at once. */
  launch() {
    const { request } = this;
    const encoder = startEncoder({
      encoder: this.encoderInfo.encoder,
      profile: this.profile,
      output: this.output,
      encode: { live: true, keyframe_s: this.timing.segment_s },
      muxArgs: muxArgs({
        protocol: request.protocol,
        codec: request.codec,
        timing: this.timing,
        output: this.output,
        generation: this.generation,
        rtmpTarget: this.rtmp?.target,
        timeUrl: `${this.host.publicUrl()}/streams/time`,
      }),
      log: this.host.log.child({ stream: this.id }),
      cwd: this.isHttp ? this.dir : undefined,
      secrets: request.rtmp_key ? [request.rtmp_key] : [],
    });
    this.encoder = encoder;
    this.encoderStarted = Date.now();
    this.samples = [];
    const latest = this.session.lastFrame;
    if (latest) encoder.push(latest.jpeg);
    encoder.exited.then((exit) => this.exited(encoder, exit)).catch((err) =>
      this.host.log.warn("stream exit not handled", { stream: this.id, error: errorMessage(err) })
    );
  }

  /** ffmpeg ended: fine when we stopped it; otherwise restart once, then give up. */
  exited(encoder: Encoder, exit: EncoderExit) {
    if (this.stopping || encoder !== this.encoder) return;
    const why = exit.error ?? `ffmpeg exited with code ${exit.code}`;
    if (this.restarts >= 1) {
      this.health = "unhealthy";
      this.stop(`ffmpeg exited again after a restart: ${why}`);
      return;
    }
    this.restarts++;
    const stats = encoder.stats();
    this.base.bytes += this.request.protocol === "rtmp" ? stats.output_bytes : 0;
    this.base.frames += stats.encoded_frames;
    this.base.in += stats.frames_in;
    this.base.repeated += stats.frames_repeated;
    this.base.dropped += stats.frames_dropped;
    this.health = "unhealthy";
    this.reason = `ffmpeg exited (${why}); restarted`;
    this.session.emit({ ...this.change("restarted"), error: why });
    this.host.log.warn("stream encoder restarted", { stream: this.id, error: why });
    this.generation++;
    this.launch();
    this.publish();
  }

  /**
   * Waits until the stream has output (HLS/DASH: the playlist or manifest; RTMP: encoded frames,
   * which ffmpeg only writes once connected); the reason when it stopped instead.
   */
  async ready(): Promise<string | null> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    const main = this.isHttp
      ? join(this.dir, MAIN_FILE[this.request.protocol as "hls" | "dash"])
      : "";
    while (Date.now() < deadline) {
      if (this.stopping) return (await this.stopping).reason;
      if (this.isHttp ? await exists(main) : this.encoder.stats().encoded_frames > 0) return null;
      await sleep(50);
    }
    return null;
  }

  everySecond() {
    try {
      this.sample();
      this.publish();
    } catch (err) {
      this.host.log.warn("stream tick failed", { stream: this.id, error: errorMessage(err) });
    }
  }

  sample() {
    const now = Date.now();
    const s = this.encoder.stats();
    if (this.isHttp) this.scanSegments();
    this.samples.push({
      at: now,
      encoded: s.encoded_frames,
      written: s.frames_written,
      dropped: s.frames_dropped,
      backlog: s.backlog_frames,
      bytes: this.encodedBytes(),
    });
    while (this.samples.length > 6) this.samples.shift();
    const windowMs = this.viewerWindowMs();
    for (const [client, seen] of this.clients) {
      if (now - seen > windowMs) this.clients.delete(client);
    }
    const next = this.judge();
    if (next.health !== this.health || (next.reason !== this.reason && next.health !== "healthy")) {
      if (next.health !== this.health) {
        this.session.emit({ ...this.change("health"), health: next.health, reason: next.reason });
      }
      this.health = next.health;
      this.reason = next.reason;
    }
  }

  /** Health from the last seconds: restarting, below real time, a growing backlog, drops. */
  judge(): { health: StreamHealth; reason: string | null } {
    const m = this.metrics();
    const settled = Date.now() - this.encoderStarted >= WARMUP_MS;
    if (this.restarts > 0 && this.encoder.stats().encoded_frames === 0) {
      return { health: "unhealthy", reason: this.reason };
    }
    if (!settled || this.samples.length < 3) return { health: "healthy", reason: null };
    const first = this.samples[0]!;
    const last = this.samples.at(-1)!;
    if (m.encoder_speed < SLOW_SPEED) {
      return {
        health: "degraded",
        reason: `the encoder runs below real time (${m.encoder_speed}x)`,
      };
    }
    if (last.backlog > first.backlog && last.backlog >= Math.max(2, this.output.fps / 4)) {
      return {
        health: "degraded",
        reason: `the frame backlog grows (${last.backlog} frames waiting)`,
      };
    }
    if (last.dropped > first.dropped) {
      return {
        health: "degraded",
        reason: `${last.dropped - first.dropped} frames dropped in the last ${
          Math.round((last.at - first.at) / 1000)
        } s`,
      };
    }
    return { health: "healthy", reason: null };
  }

  /** New finished segments in the directory (HLS and DASH name them once complete). */
  scanSegments() {
    let entries: Iterable<Deno.DirEntry>;
    try {
      entries = Deno.readDirSync(this.dir);
    } catch {
      return;
    }
    for (const entry of entries) {
      if (!entry.isFile || !isSegment(entry.name) || !MEDIA_FILE.test(entry.name)) continue;
      if (this.segments.has(entry.name)) continue;
      try {
        const size = Deno.statSync(join(this.dir, entry.name)).size;
        this.segments.set(entry.name, size);
        this.segmentBytes += size;
      } catch { /* deleted meanwhile */ }
    }
    // Forget names ffmpeg deleted long ago, keep the recent ones (the window and a margin).
    const keep = this.timing.window_segments * 4;
    if (this.segments.size > keep) {
      for (const name of [...this.segments.keys()].slice(0, this.segments.size - keep)) {
        this.segments.delete(name);
      }
    }
  }

  encodedBytes(): number {
    return this.isHttp ? this.segmentBytes : this.base.bytes + this.encoder.stats().output_bytes;
  }

  viewerWindowMs(): number {
    return Math.max(5, (this.timing.window_segments + 2) * this.timing.segment_s) * 1000;
  }

  metrics(): StreamMetrics {
    const s = this.encoder.stats();
    const last = this.samples.at(-1);
    const rate = (span: number, pick: (x: Sample) => number) => {
      if (!last) return 0;
      const from = this.samples.find((x) => last.at - x.at <= span * 1000) ?? last;
      const dt = (last.at - from.at) / 1000;
      return dt > 0 ? (pick(last) - pick(from)) / dt : 0;
    };
    const fps = rate(2, (x) => x.encoded);
    const written = rate(5, (x) => x.written);
    const dropped = rate(5, (x) => x.dropped);
    const encodedRate = rate(3, (x) => x.encoded);
    const speed = this.samples.length >= 2 ? encodedRate / this.output.fps : s.speed;
    const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
    return {
      current_fps: round(fps, 1),
      current_bitrate: Math.round(rate(5, (x) => x.bytes) * 8),
      frames_sent: this.base.frames + s.encoded_frames,
      bytes_sent: this.isHttp ? this.bytesServed : this.encodedBytes(),
      viewer_count: this.isHttp ? this.clients.size : null,
      buffer_health: written + dropped > 0 ? round(100 * written / (written + dropped), 1) : 100,
      dropped_frames: this.base.dropped + s.frames_dropped,
      encoder_speed: round(speed),
      frames_in: this.base.in + s.frames_in,
      frames_repeated: this.base.repeated + s.frames_repeated,
      backlog_frames: s.backlog_frames,
      bytes_encoded: this.encodedBytes(),
      segments_served: this.segmentsServed,
      requests_served: this.requestsServed,
      restarts: this.restarts,
    };
  }

  status(): StreamStatus {
    const node = this.host.publicUrl();
    const base = `${node}/streams/${this.id}`;
    const { protocol } = this.request;
    const urls: Partial<StreamStatus> = protocol === "hls"
      ? { hls_url: `${base}/${MAIN_FILE.hls}` }
      : protocol === "dash"
      ? { dash_url: `${base}/${MAIN_FILE.dash}` }
      : {
        rtmp_url: this.request.rtmp_url!,
        ...(this.request.rtmp_key ? { rtmp_key: "***" } : {}),
      };
    return {
      stream_id: this.id,
      session_id: this.sessionId,
      protocol,
      quality: this.request.quality,
      codec: this.request.codec,
      encoder: this.encoderInfo.encoder,
      hardware: this.encoderInfo.hardware,
      width: this.output.width,
      height: this.output.height,
      frame_rate: this.output.fps,
      segment_seconds: this.isHttp ? this.timing.segment_s : null,
      target_latency_seconds: this.isHttp ? this.timing.target_latency_s : null,
      state: this.state,
      health: this.health,
      reason: this.reason,
      node,
      started_at: new Date(this.startedAt).toISOString(),
      uptime_seconds: Math.round((Date.now() - this.startedAt) / 1000),
      ...urls,
      player_url: `${node}/player/${this.id}`,
      stream_url: urls.hls_url ?? urls.dash_url ?? urls.rtmp_url!,
      metrics: this.metrics(),
      updated_at: new Date().toISOString(),
    };
  }

  publish() {
    this.host.store.publish(this.status()).catch((err) =>
      this.host.log.debug("stream status not published", { error: errorMessage(err) })
    );
  }

  stop(reason: string): Promise<StreamStatus> {
    return this.stopping ??= (async () => {
      this.unsubscribe();
      this.release();
      clearInterval(this.tick);
      // An RTMP push ends cleanly; HLS/DASH files are removed at once, so ffmpeg need not finish.
      await (this.isHttp ? this.encoder.abort() : this.encoder.stop()).catch(() => {});
      await this.rtmp?.close();
      if (this.isHttp) {
        this.scanSegments();
        await Deno.remove(this.dir, { recursive: true }).catch(() => {});
      }
      this.state = "stopped";
      this.reason = reason;
      const final = this.status();
      this.session.emit({
        ...this.change(this.health === "unhealthy" ? "failed" : "ended"),
        reason,
        metrics: final.metrics,
      });
      this.host.stopped(this, final);
      await this.host.store.publish(final).catch(() => {});
      this.host.log.info("stream stopped", { stream: this.id, reason });
      return final;
    })();
  }

  // ---- HTTP delivery ----

  async serve(file: string, client: string, msn?: number): Promise<Response | null> {
    if (!this.isHttp || !MEDIA_FILE.test(file) || this.stopping) return null;
    const path = join(this.dir, file);
    if (file === MAIN_FILE.hls) return this.servePlaylist(path, msn);
    if (file === MAIN_FILE.dash) return this.serveManifest(path);
    const segment = isSegment(file);
    const growing = segment && this.request.protocol === "dash" &&
      dashUsesMp4(this.request.codec);
    // A segment of the live edge (DASH) or the first playlist may not be there yet: wait a bit.
    const waitMs = growing ? (this.timing.segment_s * 2 + 1) * 1000 : 0;
    const body = await this.open(path, growing, Date.now() + waitMs);
    if (!body) return null;
    this.session.touch();
    this.requestsServed++;
    if (segment) {
      this.segmentsServed++;
      if (this.clients.size < MAX_CLIENTS || this.clients.has(client)) {
        this.clients.set(client, Date.now());
      }
    }
    const counted = body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform: (chunk, controller) => {
          this.bytesServed += chunk.length;
          controller.enqueue(chunk);
        },
      }),
    );
    return new Response(counted, { headers: mediaHeaders(file) });
  }

  /**
   * The DASH manifest on the pacer's clock: ffmpeg dates the stream (`availabilityStartTime`)
   * from when its muxer started, a moment after the first frame it was fed; players compute
   * the live edge and their latency from that date, so it is set to when the first frame
   * arrived, which is media time zero.
   */
  async serveManifest(path: string): Promise<Response | null> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let text: string | null = null;
    while (text === null && Date.now() < deadline && !this.stopping) {
      text = await Deno.readTextFile(path).catch(() => null);
      if (text === null) await sleep(50);
    }
    if (text === null) return null;
    const { uptime_seconds } = this.encoder.stats();
    const zero = new Date(Date.now() - uptime_seconds * 1000).toISOString();
    const body = new TextEncoder().encode(
      text.replace(/availabilityStartTime="[^"]*"/, `availabilityStartTime="${zero}"`),
    );
    this.session.touch();
    this.requestsServed++;
    this.bytesServed += body.length;
    return new Response(body, { headers: mediaHeaders(MAIN_FILE.dash) });
  }

  /**
   * The HLS playlist with LL-HLS blocking reload: it says the server can block
   * (`EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES`), and a player asking for the next segment
   * (`_HLS_msn`) gets the playlist as soon as ffmpeg lists that segment instead of polling for it.
   */
  async servePlaylist(path: string, msn?: number): Promise<Response | null> {
    const asked = msn ?? -1;
    const deadline = Date.now() +
      (msn === undefined ? READY_TIMEOUT_MS : 3_000 * Math.ceil(this.timing.segment_s));
    let text: string | null = null;
    for (;;) {
      text = await Deno.readTextFile(path).catch(() => text);
      if (text !== null) {
        const last = lastSequence(text);
        if (asked > last + 2) {
          return Response.json(
            { error: `_HLS_msn ${asked} is beyond the next segments (the last is ${last})` },
            { status: 400, headers: { "access-control-allow-origin": "*" } },
          );
        }
        if (last >= asked) break;
      }
      if (Date.now() >= deadline || this.stopping) break;
      await sleep(POLL_MS);
    }
    if (text === null) return null;
    const body = new TextEncoder().encode(
      text.replace(
        /^(#EXT-X-TARGETDURATION:.*)$/m,
        "$1\n#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES",
      ),
    );
    this.session.touch();
    this.requestsServed++;
    this.bytesServed += body.length;
    return new Response(body, { headers: mediaHeaders(MAIN_FILE.hls) });
  }

  /**
   * The file's bytes as a stream. A growing DASH segment (`<name>.tmp` while ffmpeg writes it,
   * renamed when complete) is read as it grows until it is complete.
   */
  async open(
    path: string,
    growing: boolean,
    deadline: number,
  ): Promise<ReadableStream<Uint8Array> | null> {
    let file: Deno.FsFile | null = null;
    let complete = false;
    while (!file) {
      try {
        file = await Deno.open(path);
        complete = true;
      } catch { /* not (yet) there */ }
      if (!file && growing) {
        try {
          file = await Deno.open(`${path}.tmp`);
        } catch { /* not started yet */ }
      }
      if (file) break;
      if (Date.now() >= deadline || this.stopping) return null;
      await sleep(growing ? POLL_MS : 50);
    }
    if (complete) return file.readable;
    const f = file;
    const buffer = new Uint8Array(64 * 1024);
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        for (;;) {
          const n = await f.read(buffer);
          if (n !== null && n > 0) {
            controller.enqueue(buffer.slice(0, n));
            return;
          }
          if (complete || Date.now() >= deadline || this.stopping) {
            f.close();
            controller.close();
            return;
          }
          // Renamed: complete; read what is left, then end.
          if (await exists(path)) complete = true;
          else await sleep(POLL_MS);
        }
      },
      cancel: () => f.close(),
    });
  }
}

function mediaHeaders(file: string): HeadersInit {
  return {
    "content-type": mediaType(file),
    "cache-control": cacheControl(file),
    "access-control-allow-origin": "*",
  };
}

/** The media sequence number of the last segment an HLS playlist lists (-1: none yet). */
function lastSequence(playlist: string): number {
  const first = Number(/^#EXT-X-MEDIA-SEQUENCE:(\d+)/m.exec(playlist)?.[1] ?? 0);
  const count = playlist.split("\n").filter((l) => l.trim() && !l.startsWith("#")).length;
  return first + count - 1;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

interface HostContext {
  dataDir: string;
  log: Logger;
  store: StreamStore;
  publicUrl(): string;
  /** The stream stopped: no longer listed, its final status to the listeners. */
  stopped(stream: Stream, final: StreamStatus): void;
}

/**
 * Starts serving video streams for the sessions of `options.sessions`: registers the
 * `stream_start` / `stream_stop` control ops and removes directories left by a previous run.
 *
 * - HLS or DASH go into a directory of its own under `<data dir>/streams/<stream id>/`, served over
 *   HTTP by this process (`serve()`, see `routes/streams.ts`); a DASH segment in progress is served
 *   while ffmpeg writes it (chunked CMAF), which is what makes low-latency DASH low;
 * - RTMP is pushed to the caller's server with the key kept secret.
 *
 * Each stream keeps its metrics (encoder speed and backlog, bytes and players served, distinct
 * viewers in the last window) and health (below real time or a growing backlog → degraded; ffmpeg
 * exited → unhealthy, restarted once, then the stream stops with the reason), publishes its status
 * to Redis every second and its lifecycle to the session job's events. Streams start and stop
 * through session control requests (`stream_start`, `stream_stop`), so the API reaches them
 * wherever the session runs; a session's end ends its streams.
 */
export async function createStreamHost(options: StreamHostOptions): Promise<StreamHost> {
  const streams = new Map<string, Stream>();
  const stopListeners = new Set<(final: StreamStatus) => void>();
  const dataDir = join(options.dataDir, "streams");
  await Deno.mkdir(dataDir, { recursive: true });
  const context: HostContext = {
    dataDir,
    log: options.log,
    store: options.store,
    publicUrl: options.publicUrl,
    stopped(stream, final) {
      streams.delete(stream.id);
      for (const listener of stopListeners) {
        try {
          listener(final);
        } catch (err) {
          options.log.warn("stream stop listener failed", { error: errorMessage(err) });
        }
      }
    },
  };

  // Directories of streams no process runs any more (a crash or kill -9 left them).
  const active = new Set((await options.store.active().catch(() => [])).map((s) => s.stream_id));
  for await (const entry of Deno.readDir(dataDir)) {
    if (entry.isDirectory && !active.has(entry.name)) {
      await Deno.remove(join(dataDir, entry.name), { recursive: true }).catch(() => {});
    }
  }

  /** The push target on the checked addresses: ffmpeg, restarts included, reaches only those. */
  const pinRtmp = (
    request: StreamRequest,
    checked: { url: URL; addresses: string[] } | undefined,
  ): RtmpPush | undefined => {
    if (!request.rtmp_url || !checked) return undefined;
    const proxy = /^rtmps:/i.test(request.rtmp_url)
      ? startSocksProxy({
        policy: pinnedPolicy(new Map([[hostOf(checked.url), checked.addresses]])),
      })
      : undefined;
    return {
      target: rtmpTarget(request.rtmp_url, request.rtmp_key, {
        address: checked.addresses[0]!,
        httpProxy: proxy?.httpUrl ?? null,
      }),
      close: async () => await proxy?.close(),
    };
  };

  const start = async (
    session: LiveSession,
    args: Record<string, unknown>,
  ): Promise<ControlReply> => {
    const parsed = StreamRequest.safeParse(args);
    if (!parsed.success) return fail(400, describeZodError(parsed.error).error);
    const request = parsed.data;
    let checked: { url: URL; addresses: string[] } | undefined;
    if (request.rtmp_url) {
      const verdict = await options.policy.check(rtmpPolicyUrl(request.rtmp_url));
      if (!verdict.ok) {
        return fail(400, `rtmp_url: ${request.rtmp_url} is refused: ${verdict.reason}`);
      }
      checked = verdict;
    }
    const table = await options.encoders.ready;
    const encoder = table[request.codec][0];
    if (!encoder) {
      return fail(
        400,
        `codec: the installed ffmpeg has no working ${request.codec} encoder ` +
          `(GET /api/health lists the usable ones)`,
      );
    }
    // Checked and taken with no await in between: concurrent starts cannot both pass.
    if (streams.size >= options.maxStreams) {
      return fail(
        429,
        `This process already encodes ${streams.size} streams (STREAMPLAY_MAX_STREAMS); ` +
          `stop one or try later`,
      );
    }
    const stream = new Stream(context, session, request, encoder, pinRtmp(request, checked));
    streams.set(stream.id, stream);
    try {
      await stream.start();
    } catch (err) {
      await stream.stop(`could not start: ${errorMessage(err)}`);
      return fail(500, `The stream could not start: ${errorMessage(err)}`);
    }
    session.emit({
      ...stream.change("started"),
      protocol: request.protocol,
      quality: request.quality,
      codec: request.codec,
      encoder: encoder.encoder,
      width: stream.output.width,
      height: stream.output.height,
      frame_rate: stream.output.fps,
    });
    options.log.info("stream started", {
      stream: stream.id,
      session: session.id,
      protocol: request.protocol,
      codec: request.codec,
      encoder: encoder.encoder,
    });
    const problem = await stream.ready();
    if (problem) return fail(502, `ffmpeg could not start the stream: ${problem}`);
    const status = stream.status();
    stream.publish();
    return { ok: true, status: 201, data: status };
  };

  options.sessions.handle("stream_start", start);
  options.sessions.handle("stream_stop", async (session, args) => {
    const stream = streams.get(String(args.stream_id));
    if (!stream || stream.sessionId !== session.id) return fail(404, "No active stream");
    return { ok: true, status: 200, data: await stream.stop("stopped") };
  });

  return {
    get: (id) => streams.get(id),
    list: () => [...streams.values()],
    onStop(listener) {
      stopListeners.add(listener);
      return () => void stopListeners.delete(listener);
    },
    async close() {
      await Promise.all([...streams.values()].map((s) => s.stop("the server is stopping")));
    },
  };
}
