/**
 * The recorder of the sessions running in this process (every process with a worker pool): it taps
 * a live session's frames into a video written as it goes, stamps the session's page events with
 * the recording's time, and saves a screenshot at every error.
 */
import type { Config } from "../core/config.ts";
import type { EventPublisher } from "../jobs/events.ts";
import type { Encoder } from "../video/encoder.ts";
import { startEncoder } from "../video/encoder.ts";
import type { RedisKeys } from "../core/keys.ts";
import { errorMessage, type Logger } from "../core/log.ts";
import { closeRedis, type Redis } from "../core/redis.ts";
import type { LiveFrame, LiveSession, SessionHost } from "../sessions/host.ts";
import type { ControlReply } from "../sessions/store.ts";
import { describeZodError } from "../http/errors.ts";
import {
  type Codec,
  detectEncoders,
  type EncoderInfo,
  ENCODERS,
  type EncoderTable,
  FILE_CONTAINER,
  listedEncoders,
  type OutputSettings,
  PROFILES,
  progressiveFileMuxArgs,
  type QualityProfile,
} from "../video/codecs.ts";
import {
  directoryBytes,
  isRecordingId,
  newRecordingId,
  readLocalMeta,
  RECORDING_LIVE_TTL_MS,
  type RecordingMeta,
  recordingOutput,
  type RecordingPaths,
  recordingPaths,
  recordingsRoot,
  RecordOptions,
  recordOptionsOf,
} from "./model.ts";

const HEARTBEAT_MS = 2_000;
/** How far behind real time ffmpeg may fall before frames are skipped. */
const MAX_BEHIND_S = 30;
const PROGRESS_EVERY_MS = 10_000;
const SWEEP_EVERY_MS = 24 * 3600_000;
/** Screenshots per recording (errors beyond share the last one). */
const MAX_SCREENSHOTS = 1_000;
/** How long an error right after a navigation waits for the new page's first frame. */
const PAINT_WAIT_MS = 3_000;
const DAY_MS = 86_400_000;

/** A recording request that cannot be served: `status` is the HTTP answer. */
export class RecordingRefused extends Error {
  override name = "RecordingRefused";
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export interface RecorderOptions {
  config: Config;
  log: Logger;
  host: SessionHost;
  events: EventPublisher;
  /** The command connection. */
  redis: Redis;
  /** A new subscriber connection (deletions). */
  connect: () => Redis;
  keys: RedisKeys;
  /** This process's base URL as clients reach it. */
  publicUrl(): string;
}

export interface Recorder {
  /** Starts recording a session of this process. Throws `RecordingRefused`. */
  start(session: LiveSession, options: RecordOptions): Promise<RecordingMeta>;
  /** Stops the session's recording; null when it has none. */
  stop(sessionId: string, reason: string): Promise<RecordingMeta | null>;
  /** Deletes the files of these recordings on this node; answers how many it had. */
  removeFiles(ids: string[]): Promise<number>;
  /** Finishes abandoned recordings, deletes deleted and expired ones (start, then daily). */
  sweep(): Promise<void>;
  close(): Promise<void>;
}

/** Page events that get a screenshot in a recording. */
function isError(event: Readonly<Record<string, unknown>>): boolean {
  switch (event.type) {
    case "page_error":
    case "failed_request":
    case "request_blocked":
    case "navigation_failed":
      return true;
    case "console":
      return event.level === "error";
    default:
      return false;
  }
}

/** Frames and seconds ffprobe reads from a video that may end mid-fragment. */
async function probeFrames(
  file: string,
  fps: number,
): Promise<{ frames: number; seconds: number }> {
  try {
    const { stdout } = await new Deno.Command("ffprobe", {
      args: [
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-count_packets",
        "-show_entries",
        "stream=nb_read_packets",
        "-of",
        "csv=p=0",
        file,
      ],
      stdout: "piped",
      stderr: "null",
    }).output();
    const frames = Number.parseInt(new TextDecoder().decode(stdout).trim(), 10) || 0;
    return { frames, seconds: frames / fps };
  } catch {
    return { frames: 0, seconds: 0 };
  }
}

interface Context {
  options: RecorderOptions;
  /** The encoder to use for a codec now (see `createRecorder`). */
  encoder(codec: Codec): Promise<EncoderInfo>;
  forget(recording: ActiveRecording): void;
  /** A recording being finished (awaited at close). */
  track(ending: Promise<RecordingMeta>): void;
}

class ActiveRecording {
  latest: LiveFrame | null = null;
  lastShot: { frame: LiveFrame; n: number } | null = null;
  /** When each tab last navigated: a frame of that tab captured before shows the page it left. */
  navigatedAt = new Map<string, number>();
  /** The screenshot of errors waiting for the first frame of the page they happened on. */
  waitingShot: { n: number; timer: ReturnType<typeof setTimeout> } | null = null;
  writes = new Set<Promise<unknown>>();
  encoder: Encoder | undefined;
  unsubscribe: () => void = () => {};
  timer: ReturnType<typeof setInterval> | undefined;
  progressAt = Date.now();
  ending: Promise<RecordingMeta> | undefined;
  sessionOver = false;
  /** A session being recorded does not end idle (see `LiveSession.hold`). */
  release: () => void;

  constructor(
    readonly meta: RecordingMeta,
    readonly paths: RecordingPaths,
    readonly session: LiveSession,
    readonly profile: QualityProfile,
    readonly out: OutputSettings,
    readonly ctx: Context,
  ) {
    // The page as it is now starts the video, even if it does not repaint for a while; and the
    // subscription is made at once, so that nothing the session does from now on is missed.
    this.latest = session.lastFrame;
    this.unsubscribe = session.subscribe({
      frame: (f) => this.frame(f),
      event: (e) => this.event(e),
      end: (final) => {
        this.sessionOver = true;
        this.stop(`the session ${final.state}`);
      },
    });
    session.trackInputs(true);
    this.release = session.hold();
  }

  get log() {
    return this.ctx.options.log;
  }

  /** Starts ffmpeg and the heartbeat; the caller has made the directory. */
  async begin(encoder: string) {
    const { options } = this.ctx;
    this.encoder = startEncoder({
      encoder,
      profile: this.profile,
      output: this.out,
      muxArgs: progressiveFileMuxArgs(this.meta.container, this.paths.video(this.meta.container)),
      log: options.log,
      // A slow machine delays the file rather than shortening it, so time in the video stays
      // real time; beyond half a minute behind, frames are skipped (counted in the stats) so
      // that stopping never waits long.
      maxBacklogS: MAX_BEHIND_S,
    });
    this.encoder.exited.then((exit) => {
      if (!this.ending) this.stop(exit.error ? `ffmpeg stopped: ${exit.error}` : "ffmpeg stopped");
    });
    if (this.latest) this.push(this.latest);
    await this.saveMeta();
    this.heartbeat();
    this.timer = setInterval(() => this.heartbeat(), HEARTBEAT_MS);
    this.emit();
  }

  push(frame: LiveFrame) {
    this.meta.video_started_at ??= Date.now();
    this.encoder!.push(frame.jpeg);
  }

  frame(frame: LiveFrame) {
    this.latest = frame;
    if (this.encoder && !this.ending) this.push(frame);
    if (this.waitingShot && this.isPainted(frame)) this.takeWaitingShot(frame);
  }

  /** Whether a frame shows the page its tab is on now (captured after its last navigation). */
  isPainted(frame: LiveFrame): boolean {
    return frame.ts >= (this.navigatedAt.get(frame.header.tab) ?? 0);
  }

  event(event: Readonly<Record<string, unknown>>): Record<string, unknown> | void {
    if (this.ending) return;
    const ts = typeof event.ts === "number" ? event.ts : Date.now();
    const zero = this.meta.video_started_at ?? ts;
    const extra: Record<string, unknown> = {
      recording_id: this.meta.recording_id,
      recording_t_ms: Math.max(0, ts - zero),
    };
    if (event.type === "navigation" && typeof event.tab === "string") {
      this.navigatedAt.set(event.tab, ts);
    }
    if (isError(event)) {
      const n = this.screenshot();
      if (n !== null) extra.recording_screenshot = n;
    }
    return extra;
  }

  /**
   * The screenshot number for an error now: the frame on screen, saved once. Right after a
   * navigation (a reload that 404s at once) the frame on screen is still the page that was left:
   * the screenshot is then the first frame of the new page, or the latest after PAINT_WAIT_MS.
   */
  screenshot(): number | null {
    if (this.waitingShot) return this.waitingShot.n;
    const frame = this.latest && this.isPainted(this.latest) ? this.latest : null;
    if (frame && this.lastShot?.frame === frame) return this.lastShot.n;
    if (this.meta.screenshots >= MAX_SCREENSHOTS) return this.lastShot?.n ?? null;
    const n = ++this.meta.screenshots;
    if (frame) {
      this.lastShot = { frame, n };
      this.saveShot(n, frame);
    } else {
      const timer = setTimeout(() => {
        // Nothing painted since: the page on screen is what there is.
        this.navigatedAt.clear();
        if (this.latest) this.takeWaitingShot(this.latest);
      }, PAINT_WAIT_MS);
      this.waitingShot = { n, timer };
    }
    return n;
  }

  takeWaitingShot(frame: LiveFrame) {
    const waiting = this.waitingShot;
    if (!waiting) return;
    clearTimeout(waiting.timer);
    this.waitingShot = null;
    this.lastShot = { frame, n: waiting.n };
    this.saveShot(waiting.n, frame);
  }

  saveShot(n: number, frame: LiveFrame) {
    const write = Deno.writeFile(this.paths.shot(n), frame.jpeg).catch((err) =>
      this.log.warn("recording screenshot not saved", {
        recording: this.meta.recording_id,
        error: errorMessage(err),
      })
    );
    this.writes.add(write);
    write.finally(() => this.writes.delete(write));
  }

  heartbeat() {
    const { redis, keys } = this.ctx.options;
    redis.set(keys.recordingLive(this.meta.recording_id), "1", "PX", RECORDING_LIVE_TTL_MS)
      .catch(() => {});
    if (Date.now() - this.progressAt >= PROGRESS_EVERY_MS) {
      this.progressAt = Date.now();
      this.update();
      this.emit();
    }
  }

  /** Refreshes the figures from the encoder. */
  update() {
    const s = this.encoder?.stats();
    if (!s) return;
    this.meta.frame_count = s.frames_written;
    this.meta.duration_seconds = Math.round((s.frames_written / this.meta.fps) * 1000) / 1000;
    this.meta.file_size_bytes = s.output_bytes;
    this.meta.stats = {
      frames_in: s.frames_in,
      frames_written: s.frames_written,
      frames_repeated: s.frames_repeated,
      frames_dropped: s.frames_dropped,
      backlog_frames: s.backlog_frames,
      speed: s.speed,
      bitrate_kbps: s.bitrate_kbps,
    };
  }

  emit() {
    this.ctx.options.events.publish(this.meta.session_id, { type: "recording", ...this.meta });
  }

  saveMeta() {
    return Deno.writeTextFile(this.paths.meta, JSON.stringify(this.meta, null, 1));
  }

  stop(reason: string): Promise<RecordingMeta> {
    if (this.ending) return this.ending;
    this.ending = this.finish(reason);
    this.ctx.track(this.ending);
    return this.ending;
  }

  async finish(reason: string): Promise<RecordingMeta> {
    this.meta.stopped_at = Date.now();
    this.unsubscribe();
    this.release();
    clearInterval(this.timer);
    if (this.latest) this.takeWaitingShot(this.latest);
    clearTimeout(this.waitingShot?.timer);
    if (!this.sessionOver) this.session.trackInputs(false);
    const { redis, keys } = this.ctx.options;
    const result = this.encoder ? await this.encoder.stop() : null;
    await Promise.all(this.writes);
    if (this.latest) {
      await Deno.writeFile(this.paths.final, this.latest.jpeg).catch(() => {});
    }
    this.update();
    const written = result?.frames_written ?? 0;
    const video = this.paths.video(this.meta.container);
    this.meta.file_size_bytes = await Deno.stat(video).then((s) => s.size, () => 0);
    this.meta.storage_bytes = await directoryBytes(this.paths.dir);
    if (written === 0) {
      this.meta.state = "failed";
      this.meta.reason = result?.error ?? "no frame was captured";
    } else if (result?.error) {
      this.meta.state = "incomplete";
      this.meta.reason = `ffmpeg stopped: ${result.error}`;
    } else {
      this.meta.state = "completed";
      this.meta.reason = reason;
    }
    await this.saveMeta().catch(() => {});
    this.emit();
    await redis.del(keys.recordingLive(this.meta.recording_id)).catch(() => {});
    this.ctx.forget(this);
    return this.meta;
  }
}

/**
 * Each captured frame goes to a paced ffmpeg (`lib/video/encoder.ts`: constant frame rate, the last
 * frame repeated while the page is idle) that writes the video as it goes
 * (`progressiveFileMuxArgs`: fragmented MP4 or WebM), so the file plays even if this process dies
 * mid-way. Each page event of the session gets the recording's id and its time in the video
 * (`recording_id`, `recording_t_ms`) before it is stored: those events are the recording's
 * timeline, which the history writer copies into DuckDB (`catalog.ts`). At every error (`isError`)
 * the frame on screen is saved as a screenshot and linked from the event (`recording_screenshot`);
 * right after a navigation, the first frame of the new page. While a session is recorded its Worker
 * reports every input with the element it is aimed at.
 *
 * State: a `recording` event on the session's job at the start, every 10 s and at the end (the
 * metadata, upserted into the `recordings` table); a Redis key refreshed every 2 s while it records
 * (when it expires, the API marks the recording `incomplete`); `meta.json` beside the files.
 *
 * Files stay on this node, which serves them (`files.ts`, `routes/recordings.ts`). At start the
 * recorder finishes what a previous process here left recording (marked `incomplete`, with the
 * frames and duration ffprobe reads from the partial file). It deletes the files of recordings
 * deleted through the API (a pub/sub message, and the set of deleted ids for nodes that were down)
 * and, at start and daily, those older than STREAMPLAY_RECORDING_RETENTION_DAYS.
 */
export function createRecorder(options: RecorderOptions): Recorder {
  const { config, log, host, redis, keys } = options;
  const root = recordingsRoot(config.dataDir);
  const bySession = new Map<string, ActiveRecording>();
  const ending = new Set<Promise<RecordingMeta>>();
  let detected: EncoderTable | undefined;
  let detecting: Promise<void> | undefined;
  let listed: Promise<Set<string>> | undefined;
  let closed = false;
  let subscriber: Redis | undefined;

  const context: Context = {
    options,
    // Hardware encoders are found by trial encodes (seconds of CPU), run once in the background
    // from the first recording on; until they are known, and for codecs no trial confirmed, the
    // software encoder this ffmpeg lists records (if it cannot, ffmpeg says why and the
    // recording ends failed with that reason).
    async encoder(codec) {
      detecting ??= detectEncoders().then((table) => {
        detected = table;
      }, (err) => {
        log.warn("encoder detection failed; software encoders record", {
          error: errorMessage(err),
        });
      });
      const found = detected?.[codec][0];
      if (found) return found;
      const names = await (listed ??= listedEncoders("ffmpeg"));
      const { software } = ENCODERS[codec];
      return {
        codec,
        encoder: software.find((e) => names.has(e)) ?? software[0]!,
        hardware: false,
      };
    },
    forget: (recording) => {
      if (bySession.get(recording.meta.session_id) === recording) {
        bySession.delete(recording.meta.session_id);
      }
    },
    track: (done) => {
      ending.add(done);
      done.catch(() => {}).finally(() => ending.delete(done));
    },
  };

  const start = async (session: LiveSession, opts: RecordOptions): Promise<RecordingMeta> => {
    if (closed) throw new RecordingRefused(503, "This node is shutting down");
    const current = bySession.get(session.id);
    if (current) {
      throw new RecordingRefused(
        409,
        `Session ${session.id} is already being recorded (${current.meta.recording_id})`,
      );
    }
    const snapshot = session.snapshot();
    if (snapshot.state === "stopped" || snapshot.state === "failed") {
      throw new RecordingRefused(409, `Session ${session.id} has ended (${snapshot.state})`);
    }
    const profile = PROFILES[opts.quality];
    const out = recordingOutput(profile, snapshot.viewport, opts);
    const id = newRecordingId();
    const paths = recordingPaths(config.dataDir, id);
    const replay = (session.params as { replay?: { recording_id?: string } }).replay;
    const meta: RecordingMeta = {
      recording_id: id,
      session_id: session.id,
      state: "recording",
      reason: null,
      source: replay ? "replay" : "session",
      replay_of: replay?.recording_id ?? null,
      codec: opts.codec,
      encoder: "",
      hardware: false,
      quality: opts.quality,
      container: FILE_CONTAINER[opts.codec],
      width: out.width,
      height: out.height,
      fps: out.fps,
      node: options.publicUrl(),
      start_url: snapshot.url || session.params.url,
      viewport: { ...snapshot.viewport },
      from_first_load: snapshot.state === "starting",
      started_at: Date.now(),
      video_started_at: null,
      stopped_at: null,
      duration_seconds: 0,
      frame_count: 0,
      file_size_bytes: 0,
      storage_bytes: 0,
      screenshots: 0,
      stats: null,
    };
    const recording = new ActiveRecording(meta, paths, session, profile, out, context);
    bySession.set(session.id, recording);
    try {
      await Deno.mkdir(paths.shots, { recursive: true });
      const choice = await context.encoder(opts.codec);
      meta.encoder = choice.encoder;
      meta.hardware = choice.hardware;
      await recording.begin(choice.encoder);
    } catch (err) {
      recording.unsubscribe();
      recording.release();
      session.trackInputs(false);
      context.forget(recording);
      await Deno.remove(paths.dir, { recursive: true }).catch(() => {});
      throw err;
    }
    log.info("recording started", {
      recording: id,
      session: session.id,
      encoder: meta.encoder,
      size: `${out.width}x${out.height}@${out.fps}`,
    });
    return meta;
  };

  const stop = (sessionId: string, reason: string) =>
    bySession.get(sessionId)?.stop(reason) ?? Promise.resolve(null);

  const reply = async (work: () => Promise<RecordingMeta>, status: number) => {
    try {
      return { ok: true, status, data: await work() } satisfies ControlReply;
    } catch (err) {
      if (err instanceof RecordingRefused) {
        return { ok: false, status: err.status, error: err.message };
      }
      throw err;
    }
  };

  host.handle("record_start", (session, args) => {
    const parsed = RecordOptions.safeParse(args);
    if (!parsed.success) {
      return Promise.resolve({
        ok: false,
        status: 400,
        error: describeZodError(parsed.error).error,
      });
    }
    return reply(() => start(session, parsed.data), 201);
  });
  host.handle("record_stop", (session) =>
    reply(async () => {
      const meta = await stop(session.id, "stopped");
      if (!meta) throw new RecordingRefused(409, `Session ${session.id} is not being recorded`);
      return meta;
    }, 200));
  host.onStart((session) => {
    const opts = recordOptionsOf(session.params.record);
    if (!opts) return;
    start(session, opts).catch((err) => {
      log.warn("the session's recording could not start", {
        session: session.id,
        error: errorMessage(err),
      });
      options.events.publish(session.id, {
        type: "log",
        level: "warn",
        message: `The recording could not start: ${errorMessage(err)}`,
      });
    });
  });

  const localIds = async (): Promise<string[]> => {
    const ids: string[] = [];
    try {
      for await (const entry of Deno.readDir(root)) {
        if (entry.isDirectory && isRecordingId(entry.name)) ids.push(entry.name);
      }
    } catch { /* no recordings yet */ }
    return ids;
  };
  const recordingHere = (id: string) =>
    [...bySession.values()].some((r) => r.meta.recording_id === id);

  const removeFiles = async (ids: string[]) => {
    let removed = 0;
    for (const id of ids) {
      if (!isRecordingId(id) || recordingHere(id)) continue;
      try {
        await Deno.remove(recordingPaths(config.dataDir, id).dir, { recursive: true });
        removed++;
      } catch { /* not here */ }
    }
    return removed;
  };

  /** A recording a previous process here left unfinished: what its file holds, as incomplete. */
  const finishAbandoned = async (meta: RecordingMeta) => {
    const paths = recordingPaths(config.dataDir, meta.recording_id);
    const video = paths.video(meta.container);
    const { frames, seconds } = await probeFrames(video, meta.fps);
    const stat = await Deno.stat(video).catch(() => null);
    meta.state = frames > 0 ? "incomplete" : "failed";
    meta.reason = "the process recording it ended before the recording was stopped; " +
      (frames > 0 ? "the video holds what was written until then" : "no frame was written");
    meta.frame_count = frames;
    meta.duration_seconds = Math.round(seconds * 1000) / 1000;
    meta.file_size_bytes = stat?.size ?? 0;
    meta.storage_bytes = await directoryBytes(paths.dir);
    meta.stopped_at = stat?.mtime?.getTime() ?? Date.now();
    await Deno.writeTextFile(paths.meta, JSON.stringify(meta, null, 1));
    options.events.publish(meta.session_id, { type: "recording", ...meta });
    log.info("finished a recording left incomplete", { recording: meta.recording_id, frames });
  };

  let sweeping: Promise<void> | undefined;
  const sweep = () =>
    sweeping ??= (async () => {
      const ids = (await localIds()).filter((id) => !recordingHere(id));
      if (ids.length === 0) return;
      const deleted = await redis.zmscore(keys.recordingsDeleted, ...ids);
      const cutoff = config.recordingRetentionDays > 0
        ? Date.now() - config.recordingRetentionDays * DAY_MS
        : null;
      const remove: string[] = [];
      for (const [i, id] of ids.entries()) {
        if (deleted[i] !== null) {
          remove.push(id);
          continue;
        }
        const meta = await readLocalMeta(config.dataDir, id);
        if (!meta) continue;
        if (cutoff !== null && meta.started_at < cutoff) remove.push(id);
        else if (meta.state === "recording" && !(await redis.exists(keys.recordingLive(id)))) {
          await finishAbandoned(meta);
        }
      }
      if (remove.length) {
        log.info("deleting recordings here", { count: await removeFiles(remove) });
      }
    })().catch((err) => {
      log.warn("recordings sweep failed", { error: errorMessage(err) });
    }).finally(() => {
      sweeping = undefined;
    });

  const listen = async () => {
    subscriber = options.connect();
    subscriber.on("message", (_channel: string, text: string) => {
      try {
        const msg = JSON.parse(text) as { op?: string; ids?: unknown };
        if (msg.op === "delete" && Array.isArray(msg.ids)) {
          removeFiles(msg.ids.filter((id): id is string => typeof id === "string"));
        }
      } catch { /* not ours */ }
    });
    await subscriber.subscribe(keys.recordingsControl);
  };
  listen().catch((err) =>
    log.warn("cannot hear recording deletions", { error: errorMessage(err) })
  );
  sweep();
  const sweepTimer = setInterval(sweep, SWEEP_EVERY_MS);
  Deno.unrefTimer(sweepTimer);

  let closing: Promise<void> | undefined;
  return {
    start,
    stop,
    removeFiles,
    sweep,
    close: () =>
      closing ??= (async () => {
        closed = true;
        clearInterval(sweepTimer);
        await Promise.allSettled([
          ...[...bySession.keys()].map((id) => stop(id, "shutdown")),
          ...ending,
        ]);
        await sweeping;
        await detecting;
        if (subscriber) await closeRedis(subscriber);
      })(),
  };
}
