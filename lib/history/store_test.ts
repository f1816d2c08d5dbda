/**
 * DuckDB history files across schema versions: a file written before the job events' type became
 * a stored column opens with its events intact and filterable by type.
 */
import assert from "node:assert/strict";
import { DuckDBInstance } from "@duckdb/node-api";
import { openHistory } from "./store.ts";
import { MIGRATIONS } from "./migrations.ts";
import { tempDir } from "../../tests/helpers.ts";

Deno.test("a history file from before migration 41 keeps its job events", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/old.duckdb`;
  // The file as a release before migration 41 left it.
  {
    const instance = await DuckDBInstance.create(path);
    const con = await instance.connect();
    await con.run(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR,
      applied_at TIMESTAMPTZ DEFAULT current_timestamp)`);
    for (const m of MIGRATIONS.filter((m) => m.version < 41)) {
      await con.run(m.sql);
      await con.run("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [
        m.version,
        m.name,
      ]);
    }
    await con.run(`INSERT INTO job_events (job_id, seq, data) VALUES
      ('job_old', 1700000000000000001, '{"type":"status","status":"queued","ts":1700000000000}'),
      ('job_old', 1700000000000000002, '{"type":"log","level":"info","message":"hello","ts":1}'),
      ('job_old', 1700000000000000003, '{"type":"log","level":"warn","message":"again","ts":2}')`);
    con.closeSync();
    instance.closeSync();
  }

  await using history = await openHistory(path);
  const all = await history.events("job_old");
  assert.deepEqual(all.map((e) => e.type), ["status", "log", "log"]);
  const logs = await history.events("job_old", ["log"]);
  assert.deepEqual(logs.map((e) => (e as { message?: string }).message), ["hello", "again"]);
  assert.equal(logs[0]!.id, "1700000000000-2");
  const [version] = await history.query<{ v: number }>(
    "SELECT max(version)::INTEGER AS v FROM schema_migrations",
  );
  assert.ok(version!.v >= 41);
});
