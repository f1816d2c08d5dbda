/**
 * Video settings shared by recording and live streaming: the quality profiles, the codecs and
 * their encoders (hardware ones found by a real trial encode, software ones as the fallback),
 * and the ffmpeg arguments that encode a profile with a codec.
 */

export const CODECS = ["h264", "h265", "vp9", "vp8", "av1"] as const;
export type Codec = typeof CODECS[number];

export const PROFILE_NAMES = [
  "ultra_low_latency",
  "low_bandwidth",
  "medium",
  "high",
  "ultra_high",
  "local_high",
  "local_4k",
  "studio",
  "lossless",
] as const;
export type ProfileName = typeof PROFILE_NAMES[number];

export interface QualityProfile {
  name: ProfileName;
  description: string;
  /** Target bitrate; null for lossless (quality-driven). */
  bitrate_kbps: number | null;
  /** Constant rate factor for quality-driven encodes (and the profile's quality floor). */
  crf: number;
  width: number;
  height: number;
  fps: number;
  /** Seconds between keyframes (also the HLS/DASH segment length). */
  keyframe_s: number;
  low_latency: boolean;
}

/** The profile table (the reference product's bitrates and CRFs; sizes and rates are ours). */
export const PROFILES: Record<ProfileName, QualityProfile> = {
  ultra_low_latency: {
    name: "ultra_low_latency",
    description: "Real-time monitoring: smallest delay, short segments",
    bitrate_kbps: 1000,
    crf: 30,
    width: 1280,
    height: 720,
    fps: 30,
    keyframe_s: 0.5,
    low_latency: true,
  },
  low_bandwidth: {
    name: "low_bandwidth",
    description: "Slow connections: 500 kbps",
    bitrate_kbps: 500,
    crf: 28,
    width: 854,
    height: 480,
    fps: 15,
    keyframe_s: 2,
    low_latency: false,
  },
  medium: {
    name: "medium",
    description: "Balanced: 1.5 Mbps (default)",
    bitrate_kbps: 1500,
    crf: 23,
    width: 1280,
    height: 720,
    fps: 30,
    keyframe_s: 2,
    low_latency: false,
  },
  high: {
    name: "high",
    description: "High quality: 3 Mbps",
    bitrate_kbps: 3000,
    crf: 20,
    width: 1920,
    height: 1080,
    fps: 30,
    keyframe_s: 2,
    low_latency: false,
  },
  ultra_high: {
    name: "ultra_high",
    description: "Maximum for the internet: 6 Mbps",
    bitrate_kbps: 6000,
    crf: 18,
    width: 1920,
    height: 1080,
    fps: 60,
    keyframe_s: 2,
    low_latency: false,
  },
  local_high: {
    name: "local_high",
    description: "Localhost / LAN: 12 Mbps",
    bitrate_kbps: 12000,
    crf: 16,
    width: 1920,
    height: 1080,
    fps: 60,
    keyframe_s: 2,
    low_latency: false,
  },
  local_4k: {
    name: "local_4k",
    description: "4K on localhost: 25 Mbps",
    bitrate_kbps: 25000,
    crf: 16,
    width: 3840,
    height: 2160,
    fps: 30,
    keyframe_s: 2,
    low_latency: false,
  },
  studio: {
    name: "studio",
    description: "Near-lossless production quality: 50 Mbps",
    bitrate_kbps: 50000,
    crf: 12,
    width: 2560,
    height: 1440,
    fps: 60,
    keyframe_s: 2,
    low_latency: false,
  },
  lossless: {
    name: "lossless",
    description: "Archival: mathematically lossless (CRF 0), large files",
    bitrate_kbps: null,
    crf: 0,
    width: 1920,
    height: 1080,
    fps: 30,
    keyframe_s: 2,
    low_latency: false,
  },
};

export const DEFAULT_PROFILE: ProfileName = "medium";

/** Encoders per codec, in order of preference: hardware first, software last. */
export const ENCODERS: Record<Codec, { hardware: string[]; software: string[] }> = {
  h264: { hardware: ["h264_nvenc", "h264_qsv", "h264_vaapi"], software: ["libx264"] },
  h265: { hardware: ["hevc_nvenc", "hevc_qsv", "hevc_vaapi"], software: ["libx265"] },
  vp9: { hardware: ["vp9_qsv", "vp9_vaapi"], software: ["libvpx-vp9"] },
  vp8: { hardware: ["vp8_vaapi"], software: ["libvpx"] },
  av1: { hardware: ["av1_nvenc", "av1_qsv", "av1_vaapi"], software: ["libsvtav1", "libaom-av1"] },
};

/** Containers each codec can be written in, per delivery. */
export const FILE_CONTAINER: Record<Codec, "mp4" | "webm"> = {
  h264: "mp4",
  h265: "mp4",
  av1: "mp4",
  vp8: "webm",
  vp9: "webm",
};

/**
 * Muxer arguments for a video file that stays playable when the process writing it dies: a
 * fragmented MP4 (an empty `moov` up front, then a self-contained fragment at least every second)
 * or a WebM with one-second clusters, each packet handed to the file as soon as it is muxed. A
 * crash loses at most the last second; the rest plays as it is.
 */
export function progressiveFileMuxArgs(container: "mp4" | "webm", file: string): string[] {
  const muxer = container === "mp4"
    ? [
      "-f",
      "mp4",
      "-movflags",
      "+frag_keyframe+empty_moov+default_base_moof",
      "-frag_duration",
      "1000000",
    ]
    : ["-f", "webm", "-cluster_time_limit", "1000"];
  return [...muxer, "-flush_packets", "1", "-y", file];
}

const VAAPI_DEVICE = "/dev/dri/renderD128";

export interface EncoderInfo {
  codec: Codec;
  encoder: string;
  hardware: boolean;
}

export type EncoderTable = Record<Codec, EncoderInfo[]>;

async function ffmpegOk(
  ffmpeg: string,
  args: string[],
  timeoutMs = 15_000,
  signal?: AbortSignal,
): Promise<boolean> {
  try {
    const child = new Deno.Command(ffmpeg, {
      args: ["-hide_banner", "-loglevel", "error", ...args],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const kill = () => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    };
    const timer = setTimeout(kill, timeoutMs);
    signal?.addEventListener("abort", kill, { once: true });
    const status = await child.status;
    clearTimeout(timer);
    signal?.removeEventListener("abort", kill);
    return status.success;
  } catch {
    return false;
  }
}

/** Encoder names this ffmpeg build lists (one quick `ffmpeg -encoders`, no trial). */
export async function listedEncoders(ffmpeg: string): Promise<Set<string>> {
  try {
    const { stdout } = await new Deno.Command(ffmpeg, {
      args: ["-hide_banner", "-encoders"],
      stdout: "piped",
      stderr: "null",
    }).output();
    const names = new Set<string>();
    for (const line of new TextDecoder().decode(stdout).split("\n")) {
      const m = /^\s*V[A-Z.]{5}\s+(\S+)/.exec(line);
      if (m) names.add(m[1]!);
    }
    return names;
  } catch {
    return new Set();
  }
}

/** A tiny real encode with one encoder: does it work on this machine? */
function trialArgs(encoder: string): string[] {
  const input = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10", "-frames:v", "3"];
  if (encoder.endsWith("_vaapi")) {
    return [
      "-vaapi_device",
      VAAPI_DEVICE,
      ...input,
      "-vf",
      "format=nv12,hwupload",
      "-c:v",
      encoder,
      "-f",
      "null",
      "-",
    ];
  }
  return [...input, "-c:v", encoder, "-f", "null", "-"];
}

/**
 * Finds the encoders that really work here, per codec, hardware ones first. Each candidate the
 * ffmpeg build lists is tried with a short encode; a missing GPU or driver just fails its trial.
 */
export async function detectEncoders(
  ffmpeg = "ffmpeg",
  signal?: AbortSignal,
): Promise<EncoderTable> {
  const listed = await listedEncoders(ffmpeg);
  const table = {} as EncoderTable;
  await Promise.all(CODECS.map(async (codec) => {
    const found: EncoderInfo[] = [];
    const { hardware, software } = ENCODERS[codec];
    for (const [names, isHw] of [[hardware, true], [software, false]] as const) {
      for (const encoder of names) {
        if (!listed.has(encoder) || signal?.aborted) continue;
        if (await ffmpegOk(ffmpeg, trialArgs(encoder), undefined, signal)) {
          found.push({ codec, encoder, hardware: isHw });
          // One working software encoder is enough (the next, e.g. libaom, is a slow fallback).
          if (!isHw) break;
        }
      }
    }
    table[codec] = found;
  }));
  return table;
}

/** Detection run once per process: `ready` settles with the table, `current()` is null until. */
export interface EncoderDetection {
  ready: Promise<EncoderTable>;
  current(): EncoderTable | null;
  /** Ends the trial encodes still running (at shutdown) and waits for them. */
  close(): Promise<void>;
}

/** Starts `detectEncoders()` in the background (a few seconds of trial encodes at start-up). */
export function startEncoderDetection(ffmpeg = "ffmpeg"): EncoderDetection {
  let table: EncoderTable | null = null;
  const abort = new AbortController();
  const ready = detectEncoders(ffmpeg, abort.signal).then((t) => (table = t));
  return {
    ready,
    current: () => table,
    async close() {
      abort.abort();
      await ready.catch(() => {});
    },
  };
}

export interface OutputSettings {
  width: number;
  height: number;
  fps: number;
}

/** A profile's size and rate with the caller's overrides; sizes are made even for the encoders. */
export function outputSettings(
  profile: QualityProfile,
  overrides: { width?: number | undefined; height?: number | undefined; fps?: number | undefined } =
    {},
): OutputSettings {
  const even = (n: number) => Math.max(2, Math.round(n / 2) * 2);
  return {
    width: even(overrides.width ?? profile.width),
    height: even(overrides.height ?? profile.height),
    fps: overrides.fps ?? profile.fps,
  };
}

/** How an encode departs from its profile for a use (live delivery). */
export interface EncodeOptions {
  /** Live delivery: no frame lookahead and no B-frames (zero-latency tuning), whatever the
   * profile, so a frame leaves the encoder as soon as it is coded. */
  live?: boolean;
  /** Keyframe interval in seconds instead of the profile's (a live stream's segment length). */
  keyframe_s?: number;
}

/**
 * ffmpeg arguments that encode with `encoder` at the profile's rate control: average bitrate
 * held by a VBV buffer when the profile has a bitrate, quality-driven (CRF) otherwise; keyframes
 * every `keyframe_s`; no B-frames and zero-latency tuning for low-latency profiles and for live
 * encodes.
 */
export function encoderArgs(
  encoder: string,
  profile: QualityProfile,
  out: OutputSettings,
  options: EncodeOptions = {},
): string[] {
  const zeroLatency = profile.low_latency || options.live === true;
  const gop = Math.max(1, Math.round((options.keyframe_s ?? profile.keyframe_s) * out.fps));
  const kbps = profile.bitrate_kbps;
  const vbv = kbps === null
    ? []
    : ["-b:v", `${kbps}k`, "-maxrate", `${Math.round(kbps * 1.2)}k`, "-bufsize", `${kbps * 2}k`];
  const gopArgs = ["-g", String(gop), "-keyint_min", String(gop)];
  const lossless = kbps === null;
  switch (encoder) {
    case "libx264":
      return [
        "-c:v",
        "libx264",
        // superfast without macroblock-tree rate control: on a page that keeps moving (720p25,
        // 1.5 Mbps) the same SSIM as veryfast with it (0.855 / 0.857) for 0.36 core instead of
        // 0.48 (bench:record); zerolatency turns mbtree off already. Lossless is ultrafast:
        // there entropy coding of ~250 Mbps dominates, 0.6 core instead of 2.3 for 9 % more bytes.
        "-preset",
        profile.low_latency || lossless ? "ultrafast" : "superfast",
        ...(zeroLatency ? ["-tune", "zerolatency"] : ["-x264-params", "mbtree=0"]),
        ...(lossless ? ["-qp", "0"] : vbv),
        ...gopArgs,
        "-sc_threshold",
        "0",
        "-bf",
        zeroLatency ? "0" : "2",
        "-pix_fmt",
        lossless ? "yuv444p" : "yuv420p",
      ];
    case "libx265":
      return [
        "-c:v",
        "libx265",
        "-preset",
        profile.low_latency ? "ultrafast" : "veryfast",
        ...(zeroLatency ? ["-tune", "zerolatency"] : []),
        ...(lossless ? [] : vbv),
        "-x265-params",
        [
          `keyint=${gop}`,
          `min-keyint=${gop}`,
          "scenecut=0",
          "log-level=error",
          ...(lossless ? ["lossless=1"] : []),
          ...(zeroLatency ? ["bframes=0"] : []),
        ].join(":"),
        "-pix_fmt",
        "yuv420p",
        "-tag:v",
        "hvc1",
      ];
    case "libvpx-vp9":
      return [
        "-c:v",
        "libvpx-vp9",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-row-mt",
        "1",
        ...(zeroLatency ? ["-lag-in-frames", "0"] : []),
        ...(lossless ? ["-lossless", "1"] : vbv),
        ...gopArgs,
        "-pix_fmt",
        "yuv420p",
      ];
    case "libvpx":
      return [
        "-c:v",
        "libvpx",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        ...(zeroLatency ? ["-lag-in-frames", "0"] : []),
        ...(lossless ? ["-crf", "4", "-b:v", "100M"] : vbv),
        ...gopArgs,
        "-pix_fmt",
        "yuv420p",
      ];
    case "libsvtav1":
      return [
        "-c:v",
        "libsvtav1",
        "-preset",
        "12",
        ...(lossless ? ["-crf", "0"] : ["-b:v", `${kbps}k`]),
        ...gopArgs,
        "-pix_fmt",
        "yuv420p",
      ];
    case "libaom-av1":
      return [
        "-c:v",
        "libaom-av1",
        "-usage",
        "realtime",
        "-cpu-used",
        "8",
        ...(zeroLatency ? ["-lag-in-frames", "0"] : []),
        ...(lossless ? ["-crf", "0"] : vbv),
        ...gopArgs,
        "-pix_fmt",
        "yuv420p",
      ];
    default: {
      // Hardware encoders: bitrate control and the keyframe interval, nothing vendor-tuned.
      const hw = encoder.endsWith("_nvenc")
        ? ["-preset", "p1", "-tune", profile.low_latency ? "ull" : "ll"]
        : [];
      return ["-c:v", encoder, ...hw, ...(lossless ? ["-qp", "0"] : vbv), ...gopArgs];
    }
  }
}

/** Global ffmpeg input options a hardware encoder needs before `-i`. */
export function encoderInputArgs(encoder: string): string[] {
  return encoder.endsWith("_vaapi") ? ["-vaapi_device", VAAPI_DEVICE] : [];
}

/** The filter a hardware encoder needs at the end of the chain (upload to the GPU). */
export function encoderFilter(encoder: string): string | null {
  return encoder.endsWith("_vaapi") ? "format=nv12,hwupload" : null;
}
