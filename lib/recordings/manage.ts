/**
 * What the recordings API does: start and stop a session's recording (a control op for the
 * process that runs the session), list, read one with a summary of its timeline, its timeline,
 * its replays, delete one, clean those older than an age.
 */
import { conflict, invalid } from "../core/errors.ts";
import { decodeCursor } from "../history/store.ts";
import { controlSession, type SessionLookup } from "../sessions/control.ts";
import {
  findRecording,
  type RecordingCatalog,
  type RecordingFilter,
  type RecordingView,
  recordingView,
  type TimelineEntry,
  type TimelineSummary,
} from "./catalog.ts";
import { parseAge, type RecordingMeta, type RecordOptions, toMb } from "./model.ts";

/** How long the session's process may take to start or finish the video file. */
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 60_000;

/** Starts recording session `sessionId`; 409 when it ended or already records. */
export async function startRecording(
  deps: SessionLookup,
  sessionId: string,
  options: RecordOptions,
): Promise<RecordingView> {
  const reply = await controlSession(deps, sessionId, "record_start", options, START_TIMEOUT_MS);
  return recordingView(reply.data as RecordingMeta);
}

/** Stops the recording of session `sessionId`; answers its duration, frames and size. */
export async function stopRecording(
  deps: SessionLookup,
  sessionId: string,
): Promise<RecordingView> {
  const reply = await controlSession(deps, sessionId, "record_stop", {}, STOP_TIMEOUT_MS);
  return recordingView(reply.data as RecordingMeta);
}

/** A page of recordings, newest first; 400 for a cursor this API did not hand out. */
export async function listRecordings(
  catalog: RecordingCatalog,
  filter: RecordingFilter,
): Promise<{ recordings: RecordingView[]; next_cursor: string | null }> {
  if (filter.cursor && !decodeCursor(filter.cursor)) {
    throw invalid("cursor: is not a cursor this API returned");
  }
  return await catalog.list(filter);
}

/** One recording with a summary of its timeline. */
export async function getRecording(
  catalog: RecordingCatalog,
  id: string,
): Promise<RecordingView & { timeline: TimelineSummary }> {
  const recording = await findRecording(catalog, id);
  return { ...recording, timeline: catalog.summarize(await catalog.timeline(id)) };
}

/** What happened while recording, in order, at its time in the video. */
export async function recordingTimeline(
  catalog: RecordingCatalog,
  id: string,
): Promise<{ recording_id: string; entries: TimelineEntry[] }> {
  await findRecording(catalog, id);
  return { recording_id: id, entries: await catalog.timeline(id) };
}

/** The replays of a recording, newest first, with their divergences. */
export async function recordingReplays(
  catalog: RecordingCatalog,
  id: string,
): Promise<Array<Record<string, unknown>>> {
  await findRecording(catalog, id);
  return await catalog.replays(id);
}

/** Deletes a recording everywhere; 409 while it still records. */
export async function deleteRecording(
  catalog: RecordingCatalog,
  id: string,
): Promise<{ deleted: string; removed_bytes: number }> {
  const recording = await findRecording(catalog, id);
  if (recording.state === "recording") {
    throw conflict(
      `Recording ${id} is still recording; stop it with DELETE ` +
        `/api/sessions/${recording.session_id}/recording first`,
    );
  }
  const { bytes } = await catalog.remove([id]);
  return { deleted: id, removed_bytes: bytes };
}

/**
 * Deletes the recordings that started longer ago than `olderThan` ("7d"); 400 for no age. A dry
 * run deletes nothing and answers what would go.
 */
export async function cleanRecordings(
  catalog: RecordingCatalog,
  olderThan: string,
  dryRun = false,
): Promise<{
  removed: number;
  removed_bytes: number;
  removed_mb: number;
  recording_ids: string[];
  dry_run: boolean;
}> {
  const ms = parseAge(olderThan);
  if (ms === null || ms <= 0) {
    throw invalid(
      `older_than: "${olderThan}" is not an age; use a number and a unit: 45s, 30m, 12h, ` +
        "7d or 2w",
    );
  }
  const { removed, bytes } = await catalog.clean(ms, { dryRun });
  return {
    removed: removed.length,
    removed_bytes: bytes,
    removed_mb: toMb(bytes),
    recording_ids: removed,
    dry_run: dryRun,
  };
}
