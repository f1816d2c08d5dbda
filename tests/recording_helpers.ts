/**
 * Helpers for the recording tests: ffprobe of a video file (what a real player reads), driving
 * a session through its viewer WebSocket, and waiting for a recording's state.
 */
import { api, waitFor } from "./helpers.ts";
import type { Viewer } from "./session_helpers.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

export interface Probe {
  codec: string;
  width: number;
  height: number;
  frames: number;
  duration: number;
}

/** ffprobe's view of a video: codec, size, frames decoded and duration (NaN when unknown). */
export async function probe(file: string): Promise<Probe> {
  const { stdout, stderr, success } = await new Deno.Command("ffprobe", {
    args: [
      "-v",
      "error",
      "-select_streams",
      "v:0",
      "-count_frames",
      "-show_entries",
      "stream=codec_name,width,height,nb_read_frames:format=duration",
      "-of",
      "json",
      file,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const j = JSON.parse(new TextDecoder().decode(stdout) || "{}");
  const s = j.streams?.[0];
  if (!s) {
    throw new Error(`ffprobe cannot read ${file}: ${new TextDecoder().decode(stderr)} ${success}`);
  }
  return {
    codec: s.codec_name,
    width: Number(s.width),
    height: Number(s.height),
    frames: Number(s.nb_read_frames),
    duration: Number(j.format?.duration),
  };
}

export const FFPROBE_CODEC: Record<string, string> = {
  h264: "h264",
  h265: "hevc",
  vp9: "vp9",
  vp8: "vp8",
  av1: "av1",
};

/** Downloads a recording's video through the API into `dir`; answers the file path. */
export async function downloadVideo(base: string, recording: Json, dir: string): Promise<string> {
  const res = await fetch(`${base}/api/recordings/${recording.recording_id}/video`);
  if (res.status !== 200) throw new Error(`video: HTTP ${res.status} ${await res.text()}`);
  const file = `${dir}/${recording.recording_id}.${recording.container}`;
  await Deno.writeFile(file, new Uint8Array(await res.arrayBuffer()));
  return file;
}

/** Sends input and waits for its ack. */
export async function act(viewer: Viewer, message: Record<string, unknown>) {
  const reply = await viewer.request(message, 20_000);
  if (reply.type !== "ack") throw new Error(`input refused: ${JSON.stringify(reply)}`);
  return reply;
}

/** Waits until the recording's row says `state` (it is stored through the event stream). */
export async function waitForRecording(
  base: string,
  id: string,
  state: string,
  timeoutMs = 20_000,
) {
  let seen = "";
  try {
    return await waitFor(async () => {
      const { status, body } = await api(base, `/api/recordings/${id}`);
      seen = `${status} ${body?.state ?? ""} ${body?.reason ?? body?.error ?? ""}`;
      return status === 200 && body.state === state ? body : null;
    }, { timeoutMs, what: `recording ${id} to be ${state}` });
  } catch (err) {
    throw new Error(`${(err as Error).message} (last seen: ${seen})`);
  }
}

/** The one recording of a session, once it is stored. */
export function recordingOf(base: string, sessionId: string, timeoutMs = 20_000) {
  return waitFor(async () => {
    const { body } = await api(base, `/api/recordings?session_id=${sessionId}`);
    return body?.recordings?.[0] ?? null;
  }, { timeoutMs, what: `a recording of session ${sessionId}` });
}
