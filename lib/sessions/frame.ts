/**
 * The frame wire format: every screencast frame is one binary WebSocket message, `[u32
 * little-endian header length][header JSON, UTF-8][JPEG bytes]`. No dependencies: tests and the
 * bench decode it too.
 */

/** Screencast metadata sent with each frame, so clients map coordinates exactly. */
export interface FrameHeader {
  /** Frame number in this session, from 1. */
  seq: number;
  /** Capture time (Chromium's screencast timestamp), ms since the epoch. */
  ts: number;
  /** Device (viewport) size in CSS pixels the image shows. */
  w: number;
  h: number;
  /** Top offset of the image in CSS pixels, page scale factor, scroll offsets. */
  ot: number;
  ps: number;
  sx: number;
  sy: number;
  /** The tab the frame shows. */
  tab: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Length of the bytes a base64 string decodes to. */
function decodedLength(b64: string): number {
  const pad = b64.endsWith("==") ? 2 : b64.endsWith("=") ? 1 : 0;
  return (b64.length / 4) * 3 - pad;
}

type Base64Target = Uint8Array & { setFromBase64(b64: string): { read: number; written: number } };

/**
 * Builds a frame message from the header and the JPEG as CDP delivers it (base64), one copy.
 *
 * Built once in the pool process that serves the session's viewers (`screencast.ts`, straight from
 * CDP's base64) and sent unchanged to every viewer and frame subscriber.
 */
export function encodeFrame(header: FrameHeader, jpegBase64: string): Uint8Array<ArrayBuffer> {
  const head = encoder.encode(JSON.stringify(header));
  const out = new Uint8Array(4 + head.length + decodedLength(jpegBase64));
  new DataView(out.buffer).setUint32(0, head.length, true);
  out.set(head, 4);
  (out.subarray(4 + head.length) as Base64Target).setFromBase64(jpegBase64);
  return out;
}

/** Splits a frame message into its header and JPEG bytes (a view, not a copy). */
export function decodeFrame(message: Uint8Array): { header: FrameHeader; jpeg: Uint8Array } {
  if (message.length < 4) throw new Error("frame message shorter than its length prefix");
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  const length = view.getUint32(0, true);
  if (4 + length > message.length) throw new Error("frame header runs past the message");
  const header = JSON.parse(decoder.decode(message.subarray(4, 4 + length))) as FrameHeader;
  return { header, jpeg: message.subarray(4 + length) };
}
