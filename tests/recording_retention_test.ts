/**
 * Automatic retention: with STREAMPLAY_RECORDING_RETENTION_DAYS=7, a recording started 10 days ago
 * is deleted at server start (row and files), a recent one stays.
 */
import assert from "node:assert/strict";
import { api, startServer, tempDir, waitFor } from "./helpers.ts";
import { startPages } from "./session_helpers.ts";
import { recordingOf, waitForRecording } from "./recording_helpers.ts";
import { openHistory, tsValue } from "../lib/history/store.ts";

const DAY_MS = 86_400_000;

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("recordings past STREAMPLAY_RECORDING_RETENTION_DAYS are deleted on their own", async () => {
  await using pages = startPages();
  await using data = await tempDir("streamplay-retention-");
  const ids: string[] = [];
  {
    await using server = await startServer({ dataDir: data.path });
    for (let i = 0; i < 2; i++) {
      const created = await api(server.url, "/api/sessions", {
        method: "POST",
        json: { url: `${pages.url}/`, record: { fps: 5, width: 320, height: 180 } },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      await new Promise((r) => setTimeout(r, 1500));
      await api(server.url, `/api/sessions/${created.body.id}`, { method: "DELETE" });
      const found = await recordingOf(server.url, created.body.id);
      await waitForRecording(server.url, found.recording_id, "completed");
      ids.push(found.recording_id);
    }
  }
  const [old, recent] = ids as [string, string];
  const dir = (id: string) => `${data.path}/recordings/${id}`;
  assert.ok(await exists(`${dir(old)}/video.mp4`));

  // The first one started 10 days ago, as far as its row and its files know.
  const tenDaysAgo = Date.now() - 10 * DAY_MS;
  {
    await using history = await openHistory(`${data.path}/streamplay.duckdb`);
    await history.execute(`UPDATE recordings SET started_at = $1 WHERE id = $2`, [
      tsValue(tenDaysAgo),
      old,
    ]);
  }
  const meta = JSON.parse(await Deno.readTextFile(`${dir(old)}/meta.json`));
  await Deno.writeTextFile(
    `${dir(old)}/meta.json`,
    JSON.stringify({ ...meta, started_at: tenDaysAgo }),
  );

  await using server = await startServer({
    dataDir: data.path,
    env: { STREAMPLAY_RECORDING_RETENTION_DAYS: "7" },
  });
  // Both the API's sweep (the row, then the files) and the node's (the files) run at start.
  await waitFor(
    async () =>
      !(await exists(dir(old))) && (await api(server.url, `/api/recordings/${old}`)).status === 404,
    {
      timeoutMs: 30_000,
      what: "the old recording to be deleted",
    },
  );
  assert.equal((await api(server.url, `/api/recordings/${recent}`)).status, 200);
  assert.ok(await exists(`${dir(recent)}/video.mp4`), "the recent one is kept");
  const listed = (await api(server.url, "/api/recordings")).body.recordings;
  assert.deepEqual(listed.map((r: { recording_id: string }) => r.recording_id), [recent]);
});
