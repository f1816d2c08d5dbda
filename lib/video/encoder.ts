/**
 * One ffmpeg process fed a session's JPEG frames at a constant frame rate — the shared engine of
 * recordings (a growing MP4/WebM file) and live streams (HLS, DASH, RTMP).
 */
import { type Logger } from "../core/log.ts";
import {
  type EncodeOptions,
  encoderArgs,
  encoderFilter,
  encoderInputArgs,
  type OutputSettings,
  type QualityProfile,
} from "./codecs.ts";

export interface EncoderOptions {
  encoder: string;
  profile: QualityProfile;
  output: OutputSettings;
  /** Departures from the profile (live delivery, keyframe interval). */
  encode?: EncodeOptions;
  /** Muxer arguments and the target: e.g. `["-f", "mp4", "-movflags", "...", "out.mp4"]`. */
  muxArgs: string[];
  log: Logger;
  ffmpegPath?: string;
  /** Where ffmpeg runs (relative targets resolve here). */
  cwd?: string;
  /** Text that must never appear in logs or errors (an RTMP key in the target URL). */
  secrets?: string[];
  /** Seconds of frames owed before the oldest are skipped (default 2; Infinity: never). */
  maxBacklogS?: number;
}

export interface EncoderStats {
  frames_in: number;
  frames_written: number;
  frames_repeated: number;
  frames_dropped: number;
  bytes_in: number;
  /** Frames the pacer owes ffmpeg right now (0 when encoding keeps up). */
  backlog_frames: number;
  /** ffmpeg's own figures from -progress. */
  encoded_frames: number;
  encoder_fps: number;
  speed: number;
  bitrate_kbps: number;
  output_bytes: number;
  output_seconds: number;
  uptime_seconds: number;
}

export interface EncoderExit {
  code: number;
  /** Why ffmpeg ended, from its last error lines, when it failed. */
  error: string | null;
}

export interface Encoder {
  /** The ffmpeg process id (for resource accounting). */
  pid: number;
  /** Hands the latest frame (a JPEG) to the pacer; it is written at the next frame tick. */
  push(jpeg: Uint8Array): void;
  stats(): EncoderStats;
  /** Ends the input after the frame due now and waits until ffmpeg has finished the output. */
  stop(): Promise<EncoderStats & EncoderExit>;
  /** Ends ffmpeg at once, for output that is thrown away (a live stream's segments). */
  abort(): Promise<EncoderStats & EncoderExit>;
  /** Settles when ffmpeg exits, for any reason. */
  exited: Promise<EncoderExit>;
}

export function ffmpegCommandLine(options: EncoderOptions): string[] {
  const { encoder, profile, output } = options;
  const filters = [
    `scale=${output.width}:${output.height}:force_original_aspect_ratio=decrease`,
    `pad=${output.width}:${output.height}:(ow-iw)/2:(oh-ih)/2`,
    "setsar=1",
  ];
  const hw = encoderFilter(encoder);
  if (hw) filters.push(hw);
  return [
    "-hide_banner",
    "-loglevel",
    "error",
    "-nostats",
    "-progress",
    "pipe:2",
    ...encoderInputArgs(encoder),
    // The input is known (JPEGs): no probing, which would hold back the first ~2 s of frames.
    "-probesize",
    "32",
    "-analyzeduration",
    "0",
    "-f",
    "image2pipe",
    "-c:v",
    "mjpeg",
    "-framerate",
    String(output.fps),
    "-i",
    "pipe:0",
    "-vf",
    filters.join(","),
    "-r",
    String(output.fps),
    ...encoderArgs(encoder, profile, output, options.encode),
    ...options.muxArgs,
  ];
}

/**
 * Frames arrive whenever the page changes; the pacer writes exactly `fps` frames per second to
 * ffmpeg from the first frame on, repeating the last one while the page is idle, so time in the
 * video is real time. When ffmpeg falls behind (a slow start, a busy machine) the pacer catches up
 * through a backlog of up to two seconds; frames owed beyond that are skipped and counted
 * (`frames_dropped`) so the output stays live, and `backlog_frames` and `speed` say so. A file that
 * should keep real time through a slow spell (a recording) sets a larger `maxBacklogS`: the pacer
 * then owes those frames and writes them as fast as ffmpeg takes them.
 */
export function startEncoder(options: EncoderOptions): Encoder {
  const { output, log } = options;
  const mask = (text: string) => {
    let out = text;
    for (const s of options.secrets ?? []) if (s) out = out.replaceAll(s, "***");
    return out;
  };
  const child = new Deno.Command(options.ffmpegPath ?? "ffmpeg", {
    args: ffmpegCommandLine(options),
    cwd: options.cwd,
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  const created = performance.now();
  /** When the first frame arrived: the video's time zero. */
  let started = 0;
  const stats: EncoderStats = {
    frames_in: 0,
    frames_written: 0,
    frames_repeated: 0,
    frames_dropped: 0,
    bytes_in: 0,
    backlog_frames: 0,
    encoded_frames: 0,
    encoder_fps: 0,
    speed: 0,
    bitrate_kbps: 0,
    output_bytes: 0,
    output_seconds: 0,
    uptime_seconds: 0,
  };
  const errorLines: string[] = [];
  let latest: Uint8Array | null = null;
  let fresh = false;
  let closed = false;
  let stopped = false;
  let wake: (() => void) | null = null;

  // ffmpeg's -progress blocks (key=value lines) and its error lines both arrive on stderr.
  const readStderr = (async () => {
    let pending = "";
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        const eq = line.indexOf("=");
        const key = eq > 0 ? line.slice(0, eq) : "";
        const value = eq > 0 ? line.slice(eq + 1).trim() : "";
        if (key === "frame") stats.encoded_frames = Number(value) || 0;
        else if (key === "fps") stats.encoder_fps = Number(value) || 0;
        else if (key === "speed") stats.speed = Number(value.replace("x", "")) || 0;
        else if (key === "bitrate") stats.bitrate_kbps = Number(value.replace("kbits/s", "")) || 0;
        else if (key === "total_size") stats.output_bytes = Number(value) || 0;
        else if (key === "out_time_us") stats.output_seconds = (Number(value) || 0) / 1e6;
        else if (
          !["progress", "out_time_ms", "out_time", "dup_frames", "drop_frames"].includes(key) &&
          !/^stream_\d+_\d+_q$/.test(key) && line.trim()
        ) {
          errorLines.push(mask(line.trim()));
          if (errorLines.length > 20) errorLines.shift();
        }
      }
    }
  })().catch(() => {});

  let aborted = false;
  const exited: Promise<EncoderExit> = child.status.then(async (status) => {
    closed = true;
    wake?.();
    await readStderr;
    const error = status.success || aborted ? null : (errorLines.slice(-3).join(" | ") ||
      `ffmpeg exited with code ${status.code}`);
    if (error) log.warn("ffmpeg stopped", { code: status.code, error });
    return { code: status.code, error };
  });

  const periodMs = 1000 / output.fps;
  const maxBacklog = Math.max(2, Math.round(output.fps * (options.maxBacklogS ?? 2)));
  /** Frames due from the first frame up to now. */
  const due = () => Math.floor((performance.now() - started) / periodMs) + 1;

  const write = async (frame: Uint8Array, repeated: boolean) => {
    try {
      await writer.write(frame);
      stats.frames_written++;
      if (repeated) stats.frames_repeated++;
    } catch {
      closed = true;
    }
  };

  // The pacer: writes the frames owed since the first one, one at a time, sleeping when even.
  const pump = (async () => {
    while (!closed && !stopped) {
      if (!latest) {
        await new Promise<void>((r) => (wake = r));
        wake = null;
        continue;
      }
      let owed = due() - stats.frames_written - stats.frames_dropped;
      if (owed > maxBacklog) {
        stats.frames_dropped += owed - maxBacklog;
        owed = maxBacklog;
      }
      stats.backlog_frames = Math.max(0, owed - 1);
      if (owed <= 0) {
        const next = started + (stats.frames_written + stats.frames_dropped) * periodMs;
        await new Promise((r) => setTimeout(r, Math.max(1, next - performance.now())));
        continue;
      }
      const repeated = !fresh;
      fresh = false;
      await write(latest, repeated);
    }
  })();

  let stopping: Promise<EncoderStats & EncoderExit> | undefined;
  const final = (exit: EncoderExit) => ({
    ...stats,
    backlog_frames: 0,
    uptime_seconds: (performance.now() - (started || created)) / 1000,
    ...exit,
  });
  return {
    pid: child.pid,
    push(jpeg) {
      stats.frames_in++;
      stats.bytes_in += jpeg.length;
      if (!latest) started = performance.now();
      latest = jpeg;
      fresh = true;
      wake?.();
    },
    stats: () => ({
      ...stats,
      uptime_seconds: (performance.now() - (started || created)) / 1000,
    }),
    stop: () =>
      stopping ??= (async () => {
        // The frames due at this moment, so the video ends when it was stopped (counted now:
        // when ffmpeg is behind, the pacer's last write and these take longer than they last).
        const end = latest ? due() : 0;
        stopped = true;
        wake?.();
        await pump;
        if (!closed && latest) {
          for (let i = stats.frames_written + stats.frames_dropped; i < end && !closed; i++) {
            await write(latest, true);
          }
        }
        try {
          await writer.close();
        } catch { /* ffmpeg already gone */ }
        const timer = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch { /* gone */ }
        }, 15_000);
        const exit = await exited;
        clearTimeout(timer);
        return final(exit);
      })(),
    abort: () =>
      stopping ??= (async () => {
        stopped = true;
        aborted = true;
        wake?.();
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
        await pump;
        await writer.abort().catch(() => {});
        return final(await exited);
      })(),
    exited,
  };
}
