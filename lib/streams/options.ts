/**
 * What a live video stream of a session can be asked for (`StreamRequest`) and what each delivery
 * becomes (segments, files, MIME types, cache headers, ffmpeg muxer arguments). Video settings come
 * from `lib/video/`, shared with recordings.
 */
import { z } from "@hono/zod-openapi";
import {
  type Codec,
  CODECS,
  DEFAULT_PROFILE,
  type OutputSettings,
  PROFILE_NAMES,
  type QualityProfile,
} from "../video/codecs.ts";

export const PROTOCOLS = ["hls", "dash", "rtmp"] as const;
export type Protocol = typeof PROTOCOLS[number];

/**
 * Codecs each protocol carries: HLS in MPEG-TS (H.264) or fragmented MP4 (H.265, AV1); DASH in
 * fragmented MP4 or WebM (VP8, VP9); RTMP in FLV, which carries H.264 only (the enhanced-RTMP
 * codecs need ffmpeg 6.1 and a server that accepts them).
 */
export const PROTOCOL_CODECS: Record<Protocol, readonly Codec[]> = {
  hls: ["h264", "h265", "av1"],
  dash: ["h264", "h265", "av1", "vp9", "vp8"],
  rtmp: ["h264"],
};

export const MIN_FRAME_RATE = 1;
export const MAX_FRAME_RATE = 60;

/**
 * Validated at the edge and documented in the OpenAPI schema, with the rules across fields: which
 * codecs each protocol carries, RTMP needs a target, even sizes, a frame rate in range.
 */
export const StreamRequest = z.object({
  protocol: z.enum(PROTOCOLS).default("hls"),
  quality: z.enum(PROFILE_NAMES).default(DEFAULT_PROFILE)
    .openapi({ description: "A quality profile (GET /api/stream-profiles)." }),
  codec: z.enum(CODECS).default("h264"),
  width: z.number().int().min(64, "must be at least 64 pixels")
    .max(3840, "must be at most 3840 pixels").optional()
    .openapi({ description: "Video width (even); the profile's by default." }),
  height: z.number().int().min(64, "must be at least 64 pixels")
    .max(2160, "must be at most 2160 pixels").optional()
    .openapi({ description: "Video height (even); the profile's by default." }),
  frame_rate: z.number().int()
    .min(MIN_FRAME_RATE, `must be from ${MIN_FRAME_RATE} to ${MAX_FRAME_RATE} frames per second`)
    .max(MAX_FRAME_RATE, `must be from ${MIN_FRAME_RATE} to ${MAX_FRAME_RATE} frames per second`)
    .optional()
    .openapi({ description: "Frames per second of the video; the profile's by default." }),
  rtmp_url: z.string().min(1).max(2048).optional()
    .openapi({ description: "RTMP target (rtmp:// or rtmps://), required for protocol rtmp." }),
  rtmp_key: z.string().min(1).max(512).optional()
    .openapi({ description: "Stream key appended to rtmp_url; a secret, never logged or shown." }),
}).strict().superRefine((r, ctx) => {
  for (const field of ["width", "height"] as const) {
    const v = r[field];
    if (v !== undefined && v % 2 !== 0) {
      ctx.addIssue({
        code: "custom",
        path: [field],
        message: `must be even (4:2:0 video has chroma at half size), got ${v}`,
      });
    }
  }
  if (!PROTOCOL_CODECS[r.protocol].includes(r.codec)) {
    const others = PROTOCOLS.filter((p) => PROTOCOL_CODECS[p].includes(r.codec));
    ctx.addIssue({
      code: "custom",
      path: ["codec"],
      message: `${r.protocol} cannot carry ${r.codec} (it carries ${
        PROTOCOL_CODECS[r.protocol].join(", ")
      }); use ${others.join(" or ")} for ${r.codec}`,
    });
  }
  if (r.protocol === "rtmp") {
    if (!r.rtmp_url) {
      ctx.addIssue({
        code: "custom",
        path: ["rtmp_url"],
        message: "is required for protocol rtmp (e.g. rtmp://live.example.com/app)",
      });
    } else if (!/^rtmps?:\/\/[^/]/i.test(r.rtmp_url)) {
      ctx.addIssue({
        code: "custom",
        path: ["rtmp_url"],
        message: "must be an rtmp:// or rtmps:// URL",
      });
    }
  } else {
    for (const field of ["rtmp_url", "rtmp_key"] as const) {
      if (r[field] !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: [field],
          message: `is only for protocol rtmp, not ${r.protocol}`,
        });
      }
    }
  }
}).openapi("StreamRequest");

export type StreamRequest = z.infer<typeof StreamRequest>;

/** The HTTP URL whose host the URL policy checks for an RTMP target (same host and port). */
export function rtmpPolicyUrl(rtmpUrl: string): string {
  const url = new URL(rtmpUrl);
  const port = url.port || (url.protocol === "rtmps:" ? "443" : "1935");
  return `http://${url.hostname}:${port}/`;
}

/** Where ffmpeg pushes an RTMP stream, and the protocol options that go with it. */
export interface RtmpTarget {
  /** What ffmpeg opens: the URL with the key as its last path segment. */
  url: string;
  /** ffmpeg options placed before `url`. */
  args: string[];
}

/**
 * Where ffmpeg pushes an RTMP stream, reaching only an address the URL policy checked (left to
 * itself, ffmpeg would look the name up again): plain RTMP connects to `address`, the name kept
 * in the tcUrl; RTMPS goes through `httpProxy` (HTTP CONNECT to the name), a proxy that connects
 * to that address, so TLS keeps the name for SNI and the certificate check.
 */
export function rtmpTarget(
  rtmpUrl: string,
  key: string | undefined,
  via: { address: string; httpProxy: string | null },
): RtmpTarget {
  const url = key ? `${rtmpUrl.replace(/\/+$/, "")}/${key}` : rtmpUrl;
  if (via.httpProxy) return { url, args: ["-http_proxy", via.httpProxy] };
  const parsed = new URL(rtmpUrl);
  const port = Number(parsed.port || (parsed.protocol === "rtmps:" ? 443 : 1935));
  const [, scheme, user, rest] = /^(rtmps?:\/\/)([^/@]*@)?[^/]*(.*)$/i.exec(url)!;
  const address = via.address.includes(":") ? `[${via.address}]` : via.address;
  // ffmpeg's own tcUrl is scheme://host:port/app, the app being the path up to its last segment.
  const app = rest!.replace(/^\//, "").split("/").slice(0, -1).join("/");
  return {
    url: `${scheme}${user ?? ""}${address}:${port}${rest}`,
    args: ["-rtmp_tcurl", `${scheme}${parsed.hostname}:${port}/${app}`],
  };
}

/** The file a player opens first, per protocol delivered over HTTP. */
export const MAIN_FILE = { hls: "playlist.m3u8", dash: "manifest.mpd" } as const;

/** Names ffmpeg writes in a stream's directory (and the only ones served from it). */
export const MEDIA_FILE =
  /^(playlist\.m3u8|manifest\.mpd|init\d*\.(mp4|webm)|seg\d*_\d{5,}\.(ts|m4s|webm))$/;

const MIME: Record<string, string> = {
  m3u8: "application/vnd.apple.mpegurl",
  mpd: "application/dash+xml",
  ts: "video/mp2t",
  m4s: "video/iso.segment",
  mp4: "video/mp4",
  webm: "video/webm",
};

/** MIME type of a media file by its extension. */
export function mediaType(file: string): string {
  return MIME[file.slice(file.lastIndexOf(".") + 1)] ?? "application/octet-stream";
}

/** Playlists and manifests change with every segment; segments never change once written. */
export function cacheControl(file: string): string {
  return /\.(m3u8|mpd)$/.test(file) ? "no-cache" : "public, max-age=60, immutable";
}

/** Is this file a media segment (what counts a viewer and is measured as served media)? */
export function isSegment(file: string): boolean {
  return file.startsWith("seg");
}

/** A live delivery's timing: segment length, playlist window, and the player's distance. */
export interface LiveTiming {
  segment_s: number;
  window_segments: number;
  /**
   * How far behind the live edge a player should stay, in seconds (hls.js `liveSyncDuration`,
   * dash.js `liveDelay` and the manifest's ServiceDescription): HLS players hold 1.5 segments
   * (1.25 for low-latency profiles, whose segments are short), DASH players read segments while
   * they are written (chunked CMAF).
   */
  target_latency_s: number;
}

/**
 * Segments of 1 s (0.5 s for low-latency profiles: the profile's keyframe interval), a window
 * of 6 segments, keyframes at every segment start.
 */
export function liveTiming(profile: QualityProfile, protocol: Protocol = "hls"): LiveTiming {
  const segment = Math.min(1, profile.keyframe_s);
  return {
    segment_s: segment,
    window_segments: 6,
    target_latency_s: protocol === "dash"
      ? (profile.low_latency ? 0.7 : 1.2)
      : segment * (profile.low_latency ? 1.25 : 1.5),
  };
}

/** DASH segments of this codec are fragmented MP4 (CMAF) rather than WebM. */
export function dashUsesMp4(codec: Codec): boolean {
  return codec !== "vp8" && codec !== "vp9";
}

export interface MuxOptions {
  protocol: Protocol;
  codec: Codec;
  timing: LiveTiming;
  output: OutputSettings;
  /** 0 for the first ffmpeg of a stream, 1 after a restart: new file names, continued list. */
  generation: number;
  /** RTMP: where to push (with the key). */
  rtmpTarget?: RtmpTarget;
  /** DASH: the clock players synchronise with (absolute URL). */
  timeUrl?: string;
}

/** ffmpeg muxer arguments and target for a delivery (paths relative to the stream directory). */
export function muxArgs(o: MuxOptions): string[] {
  const gen = o.generation === 0 ? "" : String(o.generation);
  const seg = String(o.timing.segment_s);
  if (o.protocol === "rtmp") {
    const { args, url } = o.rtmpTarget!;
    return ["-f", "flv", "-flvflags", "no_duration_filesize", ...args, url];
  }
  if (o.protocol === "hls") {
    const mp4 = o.codec !== "h264";
    const flags = [
      "delete_segments",
      "temp_file",
      "independent_segments",
      ...(o.generation > 0 ? ["append_list", "discont_start"] : []),
    ];
    return [
      "-f",
      "hls",
      "-hls_time",
      seg,
      "-hls_list_size",
      String(o.timing.window_segments),
      "-hls_delete_threshold",
      "2",
      "-hls_flags",
      flags.join("+"),
      "-hls_segment_type",
      mp4 ? "fmp4" : "mpegts",
      ...(mp4 ? ["-hls_fmp4_init_filename", `init${gen}.mp4`] : []),
      "-hls_segment_filename",
      `seg${gen}_%05d.${mp4 ? "m4s" : "ts"}`,
      MAIN_FILE.hls,
    ];
  }
  const mp4 = dashUsesMp4(o.codec);
  const ext = mp4 ? "m4s" : "webm";
  return [
    "-f",
    "dash",
    "-seg_duration",
    seg,
    "-window_size",
    String(o.timing.window_segments),
    "-extra_window_size",
    "3",
    "-use_template",
    "1",
    "-use_timeline",
    "0",
    "-dash_segment_type",
    mp4 ? "mp4" : "webm",
    "-init_seg_name",
    `init${gen}.${mp4 ? "mp4" : "webm"}`,
    "-media_seg_name",
    `seg${gen}_$Number%05d$.${ext}`,
    // Chunked CMAF: every frame is a fragment, readable while its segment is still written.
    ...(mp4 ? ["-streaming", "1", "-ldash", "1", "-frag_type", "every_frame"] : []),
    ...(mp4 ? ["-format_options", "movflags=cmaf"] : []),
    "-target_latency",
    String(o.timing.target_latency_s),
    ...(o.timeUrl ? ["-utc_timing_url", o.timeUrl] : []),
    MAIN_FILE.dash,
  ];
}
