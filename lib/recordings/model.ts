/**
 * Recording basics shared by the node that records (`recorder.ts`), the API (`catalog.ts`,
 * `routes/recordings.ts`) and the CLI: ids, options, file paths, metadata, and ages.
 */
import { z } from "@hono/zod-openapi";
import {
  type Codec,
  CODECS,
  DEFAULT_PROFILE,
  type OutputSettings,
  outputSettings,
  PROFILE_NAMES,
  type ProfileName,
  type QualityProfile,
} from "../video/codecs.ts";

/**
 * Recording ids are checked against this one strict pattern before any path is built from them, so
 * no request can reach outside the recordings directory.
 */
export const RECORDING_ID_PATTERN = /^rec_[0-9a-z]{17}$/;

/** A new recording id: `rec_` + time (base 36) + randomness, sortable by creation. */
export function newRecordingId(): string {
  const time = Date.now().toString(36).padStart(9, "0");
  let tail = "";
  for (const b of crypto.getRandomValues(new Uint8Array(8))) tail += (b % 36).toString(36);
  return `rec_${time}${tail}`;
}

export function isRecordingId(id: string): boolean {
  return RECORDING_ID_PATTERN.test(id);
}

export const RecordOptions = z.object({
  codec: z.enum(CODECS).default("h264")
    .openapi({ description: "h264, h265 and av1 are written as MP4, vp8 and vp9 as WebM." }),
  quality: z.enum(PROFILE_NAMES).default(DEFAULT_PROFILE)
    .openapi({ description: "Quality profile: bitrate (or CRF for lossless) and size bounds." }),
  fps: z.number().int().min(1).max(60).optional()
    .openapi({ description: "Frames per second of the video (default: the profile's)." }),
  width: z.number().int().min(64).max(3840).refine((n) => n % 2 === 0, {
    message: "must be even (video encoders need even sizes)",
  }).optional().openapi({
    description: "Video width (default: the session's viewport, shrunk to fit the profile).",
  }),
  height: z.number().int().min(64).max(2160).refine((n) => n % 2 === 0, {
    message: "must be even (video encoders need even sizes)",
  }).optional(),
}).strict().openapi("RecordOptions");

export type RecordOptions = z.infer<typeof RecordOptions>;

/** `record` of a session: true for the defaults, or the options. */
export const RecordParam = z.union([z.boolean(), RecordOptions]).optional()
  .openapi({ description: "Record the session from its start (true, or recording options)." });

/** The options `record` asks for, or null for no recording. */
export function recordOptionsOf(record: boolean | RecordOptions | undefined): RecordOptions | null {
  if (!record) return null;
  return record === true ? RecordOptions.parse({}) : record;
}

/**
 * The video's size and rate: the requested width and height (one of them alone keeps the
 * viewport's aspect), else the session's viewport shrunk to fit within the profile's size; the
 * requested fps, else the profile's.
 */
export function recordingOutput(
  profile: QualityProfile,
  viewport: { width: number; height: number },
  options: Pick<RecordOptions, "fps" | "width" | "height">,
): OutputSettings {
  const aspect = viewport.width / viewport.height;
  let width = options.width;
  let height = options.height;
  if (width === undefined && height !== undefined) width = height * aspect;
  else if (height === undefined && width !== undefined) height = width / aspect;
  else if (width === undefined || height === undefined) {
    const scale = Math.min(1, profile.width / viewport.width, profile.height / viewport.height);
    width = viewport.width * scale;
    height = viewport.height * scale;
  }
  return outputSettings(profile, { width, height, fps: options.fps });
}

/**
 * The recording process refreshes a Redis key every 2 s with this expiry: once it is gone (a few
 * missed beats), the recording counts as abandoned.
 */
export const RECORDING_LIVE_TTL_MS = 8_000;

export const RECORDING_STATES = ["recording", "completed", "incomplete", "failed"] as const;
export type RecordingState = typeof RECORDING_STATES[number];

/**
 * A recording's metadata: the body of its `recording` events and its DuckDB row.
 *
 * Both the body of the `recording` event and the DuckDB row.
 */
export interface RecordingMeta {
  recording_id: string;
  session_id: string;
  /** `incomplete`: the video holds what was written until the recording process died. */
  state: RecordingState;
  reason: string | null;
  /** What was recorded: a live session or a replay (of `replay_of`). */
  source: "session" | "replay";
  replay_of: string | null;
  codec: Codec;
  encoder: string;
  hardware: boolean;
  quality: ProfileName;
  container: "mp4" | "webm";
  width: number;
  height: number;
  fps: number;
  /** Base URL of the process that recorded it, which serves its files. */
  node: string;
  /** The page and viewport when it started (where a replay starts). */
  start_url: string;
  viewport: { width: number; height: number };
  /** It started with the session, before its first page load. */
  from_first_load: boolean;
  /** Milliseconds since the epoch. */
  started_at: number;
  /** When the first frame arrived: time zero of the video and of the timeline. */
  video_started_at: number | null;
  stopped_at: number | null;
  duration_seconds: number;
  frame_count: number;
  file_size_bytes: number;
  /** Video, screenshots and the last frame together. */
  storage_bytes: number;
  screenshots: number;
  /** Encoder figures: frames in, written, repeated, dropped, speed, bitrate. */
  stats: Record<string, number> | null;
}

export const VIDEO_MIME: Record<"mp4" | "webm", string> = {
  mp4: "video/mp4",
  webm: "video/webm",
};

export function recordingsRoot(dataDir: string): string {
  return `${dataDir}/recordings`;
}

export interface RecordingPaths {
  dir: string;
  meta: string;
  shots: string;
  final: string;
  video(container: "mp4" | "webm"): string;
  shot(n: number): string;
}

/**
 * The files of recording `id`; throws for anything that is not a recording id.
 *
 * `<data dir>/recordings/<id>/` holds `video.mp4|webm`, `shots/<n>.jpg` (the frame at each error),
 * `final.jpg` (the last frame) and `meta.json`.
 */
export function recordingPaths(dataDir: string, id: string): RecordingPaths {
  if (!isRecordingId(id)) throw new Error(`"${id}" is not a recording id`);
  const dir = `${recordingsRoot(dataDir)}/${id}`;
  return {
    dir,
    meta: `${dir}/meta.json`,
    shots: `${dir}/shots`,
    final: `${dir}/final.jpg`,
    video: (container) => `${dir}/video.${container}`,
    shot: (n) => {
      if (!Number.isInteger(n) || n < 1) throw new Error(`${n} is not a screenshot number`);
      return `${dir}/shots/${n}.jpg`;
    },
  };
}

/** The metadata this node keeps next to a recording's files, or null when it has none. */
export async function readLocalMeta(dataDir: string, id: string): Promise<RecordingMeta | null> {
  try {
    return JSON.parse(await Deno.readTextFile(recordingPaths(dataDir, id).meta)) as RecordingMeta;
  } catch {
    return null;
  }
}

/** Total size of the files under `dir` (0 when it does not exist). */
export async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  try {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) total += await directoryBytes(path);
      else if (entry.isFile) total += (await Deno.stat(path)).size;
    }
  } catch { /* gone */ }
  return total;
}

const UNITS: Record<string, number> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * "45s", "30m", "12h", "7d", "2w" → milliseconds; null for anything else.
 *
 * For `clean --older-than`.
 */
export function parseAge(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$/i.exec(text);
  if (!m) return null;
  const ms = Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
  return Number.isFinite(ms) ? ms : null;
}

export const MB = 1024 * 1024;

/** Bytes as megabytes with two decimals (the API's `*_mb` fields). */
export function toMb(bytes: number): number {
  return Math.round((bytes / MB) * 100) / 100;
}
