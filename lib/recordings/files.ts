/**
 * A recording's files over HTTP (its video and screenshots), with Range support so players seek.
 */
import parseRange from "range-parser";
import { notFound } from "../core/errors.ts";
import { findRecording, type RecordingCatalog, type RecordingView } from "./catalog.ts";
import { readLocalMeta, type RecordingMeta, recordingPaths, VIDEO_MIME } from "./model.ts";

const VIDEO_CACHE = "private, no-cache";
const SHOT_CACHE = "private, max-age=86400";

/** What a file request asks: its Range header, and whether it is a HEAD. */
export interface FileRequest {
  range: string | undefined;
  head: boolean;
}

/**
 * The file from this node, or the base URL of the node that has it.
 *
 * Files stay on the node that recorded them: a node answers the ones on its disk, and for the
 * others names the recording's node to redirect to (heavy bytes never go through Redis). Ids are
 * checked against the recording id pattern before any path is built from them.
 */
export type FileAnswer = { response: Response } | { node: string };

/** A screenshot number, or the last frame. */
export type ShotNumber = number | "final";

/** What the API process needs to find a recording's files. */
export interface RecordingFiles {
  config: { dataDir: string; publicUrl: string };
  recordings: { catalog: RecordingCatalog; publicUrl(): string };
}

/** The video of recording `id` (as an attachment with `download`). */
export async function recordingVideo(
  deps: RecordingFiles,
  id: string,
  request: FileRequest & { download: boolean },
): Promise<FileAnswer> {
  const recording = await findRecording(deps.recordings.catalog, id);
  const response = await videoResponse(deps.config.dataDir, recording, request);
  return response ? { response } : elsewhere(deps, recording, "video");
}

/** Screenshot `n` of recording `id` (the frame on screen at an error), or its last frame. */
export async function recordingScreenshot(
  deps: RecordingFiles,
  id: string,
  n: ShotNumber,
  request: FileRequest,
): Promise<FileAnswer> {
  const recording = await findRecording(deps.recordings.catalog, id);
  if (n !== "final" && n > recording.screenshots) {
    throw notFound(`Recording ${id} has no screenshot ${n}`);
  }
  const response = await shotResponse(deps.config.dataDir, id, n, request);
  return response ? { response } : elsewhere(deps, recording, `screenshot ${n}`);
}

/** The video of a recording this node made, from its disk (a worker has no DuckDB). */
export async function localVideo(
  dataDir: string,
  id: string,
  request: FileRequest & { download: boolean },
): Promise<Response> {
  const response = await videoResponse(dataDir, await localMeta(dataDir, id), request);
  if (!response) throw notFound(`Recording ${id} has no video here`);
  return response;
}

/** A screenshot of a recording this node made, from its disk. */
export async function localScreenshot(
  dataDir: string,
  id: string,
  n: ShotNumber,
  request: FileRequest,
): Promise<Response> {
  await localMeta(dataDir, id);
  const response = await shotResponse(dataDir, id, n, request);
  if (!response) throw notFound(`Recording ${id} has no screenshot ${n}`);
  return response;
}

async function localMeta(dataDir: string, id: string): Promise<RecordingMeta> {
  const meta = await readLocalMeta(dataDir, id);
  if (!meta) throw notFound(`No recording "${id}" on this node`);
  return meta;
}

function videoResponse(
  dataDir: string,
  recording: Pick<RecordingMeta, "recording_id" | "container">,
  request: FileRequest & { download: boolean },
): Promise<Response | null> {
  const { recording_id: id, container } = recording;
  return fileResponse(recordingPaths(dataDir, id).video(container), request, {
    type: VIDEO_MIME[container],
    download: request.download ? `${id}.${container}` : null,
    cache: VIDEO_CACHE,
  });
}

function shotResponse(
  dataDir: string,
  id: string,
  n: ShotNumber,
  request: FileRequest,
): Promise<Response | null> {
  const paths = recordingPaths(dataDir, id);
  return fileResponse(n === "final" ? paths.final : paths.shot(n), request, {
    type: "image/jpeg",
    download: null,
    cache: SHOT_CACHE,
  });
}

/** Where the file is when not here: the recording's node, unless that is this process. */
function elsewhere(deps: RecordingFiles, recording: RecordingView, what: string): FileAnswer {
  const here = [deps.recordings.publicUrl(), deps.config.publicUrl];
  if (recording.node && !here.includes(recording.node)) return { node: recording.node };
  throw notFound(
    `The ${what} of recording ${recording.recording_id} is not on this node any more`,
  );
}

/**
 * A file with Range support (one range: 206; unsatisfiable: 416; none, several or a malformed
 * header: the whole file). Null when the file is not here.
 */
async function fileResponse(
  path: string,
  request: FileRequest,
  options: { type: string; download: string | null; cache: string },
): Promise<Response | null> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch {
    return null;
  }
  // A recording in progress grows: what is served is what was there when it was opened.
  const size = (await file.stat()).size;
  const headers = new Headers({
    "Content-Type": options.type,
    "Accept-Ranges": "bytes",
    "Cache-Control": options.cache,
  });
  if (options.download) {
    headers.set("Content-Disposition", `attachment; filename="${options.download}"`);
  }
  let start = 0;
  let end = size - 1;
  let status = 200;
  const header = request.range;
  if (header) {
    const ranges = parseRange(size, header, { combine: true });
    if (ranges === -1) {
      file.close();
      headers.set("Content-Range", `bytes */${size}`);
      headers.set("Content-Type", "application/json");
      return new Response(
        JSON.stringify({ error: `range: ${header} is outside the file (${size} bytes)` }),
        { status: 416, headers },
      );
    }
    if (ranges !== -2 && ranges.type === "bytes" && ranges.length === 1) {
      start = ranges[0]!.start;
      end = ranges[0]!.end;
      status = 206;
      headers.set("Content-Range", `bytes ${start}-${end}/${size}`);
    }
  }
  headers.set("Content-Length", String(end - start + 1));
  if (request.head) {
    file.close();
    return new Response(null, { status, headers });
  }
  return new Response(fileStream(file, start, end - start + 1), { status, headers });
}

/** Reads `length` bytes of `file` from `start`, then closes it. */
function fileStream(file: Deno.FsFile, start: number, length: number): ReadableStream<Uint8Array> {
  let left = length;
  let positioned = false;
  const close = () => {
    try {
      file.close();
    } catch { /* closed */ }
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        if (!positioned) {
          await file.seek(start, Deno.SeekMode.Start);
          positioned = true;
        }
        const chunk = new Uint8Array(Math.min(256 * 1024, left));
        const n = left > 0 ? await file.read(chunk) : null;
        if (!n) {
          close();
          controller.close();
          return;
        }
        left -= n;
        controller.enqueue(chunk.subarray(0, n));
      } catch (err) {
        close();
        controller.error(err);
      }
    },
    cancel: close,
  });
}
