/**
 * DuckDB schema, as an ordered list of migrations. A migration is never edited once released;
 * a change is a new entry at the end. `openHistory` applies the ones not yet recorded in
 * `schema_migrations`, each in its own transaction.
 */

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: "jobs, job events and metric samples",
    sql: `
      CREATE TABLE jobs (
        id VARCHAR PRIMARY KEY,
        type VARCHAR,
        status VARCHAR,
        params JSON,
        result JSON,
        error VARCHAR,
        attempts INTEGER,
        max_attempts INTEGER,
        timeout_s DOUBLE,
        created_at TIMESTAMPTZ,
        started_at TIMESTAMPTZ,
        finished_at TIMESTAMPTZ,
        worker VARCHAR
      );
      -- One row per event; seq is the Redis stream id as ms * 10^6 + sequence.
      -- The event is stored as written; its common fields are virtual columns.
      CREATE TABLE job_events (
        job_id VARCHAR NOT NULL,
        seq BIGINT NOT NULL,
        data VARCHAR NOT NULL,
        ts TIMESTAMPTZ GENERATED ALWAYS AS (to_timestamp((data->>'ts')::DOUBLE / 1000)) VIRTUAL,
        type VARCHAR GENERATED ALWAYS AS (data->>'type') VIRTUAL,
        level VARCHAR GENERATED ALWAYS AS (data->>'level') VIRTUAL,
        message VARCHAR GENERATED ALWAYS AS (data->>'message') VIRTUAL
      );
      CREATE TABLE metric_samples (
        job_id VARCHAR NOT NULL,
        seq BIGINT NOT NULL,
        ts TIMESTAMPTZ NOT NULL,
        cpu_cores DOUBLE,
        mem_used_bytes BIGINT,
        proc_mem_bytes BIGINT,
        disk_bytes BIGINT,
        net_rx_bytes BIGINT,
        net_tx_bytes BIGINT,
        data JSON
      );
    `,
  },
  {
    version: 10,
    name: "platform samples",
    sql: `
      -- One row per series per sampling interval (STREAMPLAY_METRICS_INTERVAL_S), narrow so new
      -- series need no migration; pruned after STREAMPLAY_METRICS_RETENTION_DAYS.
      CREATE TABLE platform_samples (
        ts TIMESTAMPTZ NOT NULL,
        series VARCHAR NOT NULL,
        value DOUBLE
      );
    `,
  },
  {
    version: 11,
    name: "anomaly alerts",
    sql: `
      CREATE TABLE anomaly_alerts (
        id VARCHAR PRIMARY KEY,
        series VARCHAR NOT NULL,
        unit VARCHAR,
        direction VARCHAR NOT NULL,
        value DOUBLE,
        peak DOUBLE,
        baseline DOUBLE,
        expected_low DOUBLE,
        expected_high DOUBLE,
        z DOUBLE,
        since TIMESTAMPTZ NOT NULL,
        detected_at TIMESTAMPTZ NOT NULL,
        resolved_at TIMESTAMPTZ,
        message VARCHAR
      );
    `,
  },
  {
    version: 40,
    name: "recordings, their timelines, and deleted recording ids",
    sql: `
      -- One row per recording, kept from its "recording" events (the latest by seq wins).
      CREATE TABLE recordings (
        id VARCHAR PRIMARY KEY,
        session_id VARCHAR NOT NULL,
        seq BIGINT NOT NULL,
        state VARCHAR NOT NULL,
        reason VARCHAR,
        source VARCHAR,
        replay_of VARCHAR,
        codec VARCHAR,
        encoder VARCHAR,
        hardware BOOLEAN,
        quality VARCHAR,
        container VARCHAR,
        width INTEGER,
        height INTEGER,
        fps DOUBLE,
        node VARCHAR,
        start_url VARCHAR,
        viewport JSON,
        from_first_load BOOLEAN,
        started_at TIMESTAMPTZ NOT NULL,
        video_started_at TIMESTAMPTZ,
        stopped_at TIMESTAMPTZ,
        duration_seconds DOUBLE,
        frame_count BIGINT,
        file_size_bytes BIGINT,
        storage_bytes BIGINT,
        screenshots INTEGER,
        stats JSON,
        -- When this process last heard of it.
        updated_at TIMESTAMPTZ NOT NULL
      );
      -- The session events of each recording (its timeline), without embedded images.
      CREATE TABLE recording_events (
        recording_id VARCHAR NOT NULL,
        seq BIGINT NOT NULL,
        data VARCHAR NOT NULL,
        PRIMARY KEY (recording_id, seq)
      );
      -- Deleted recordings: late events about them are not stored again.
      CREATE TABLE recording_tombstones (
        id VARCHAR PRIMARY KEY,
        deleted_at TIMESTAMPTZ NOT NULL
      );
    `,
  },
  {
    version: 41,
    name: "job events keep their type in a column",
    sql: `
      -- The type is stored from the stream entry; the generated ts/level/message columns are
      -- gone because DuckDB evaluated them (four JSON parses) for every inserted row.
      CREATE TABLE job_events_41 (
        job_id VARCHAR NOT NULL,
        seq BIGINT NOT NULL,
        type VARCHAR NOT NULL,
        data VARCHAR NOT NULL
      );
      INSERT INTO job_events_41
        SELECT job_id, seq, coalesce(data->>'type', ''), data FROM job_events ORDER BY seq;
      DROP TABLE job_events;
      ALTER TABLE job_events_41 RENAME TO job_events;
    `,
  },
  {
    version: 42,
    name: "committed offsets of event streams",
    sql: `
      -- The last stream entry the history writer committed, written in the same transaction as
      -- the entries' rows: a restart reads on from there, so every entry is stored exactly once.
      CREATE TABLE stream_offsets (
        stream VARCHAR PRIMARY KEY,
        seq BIGINT NOT NULL
      );
    `,
  },
];
