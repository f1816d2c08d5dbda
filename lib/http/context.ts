/**
 * What route files are given (`AppDeps` in the API process, `WorkerDeps` in a worker-only one),
 * and what a request carries through the Hono context (the caller, `principal`).
 */
import type { Config } from "../core/config.ts";
import type { Logger } from "../core/log.ts";
import type { Queue } from "../jobs/queue.ts";
import type { History } from "../history/store.ts";
import type { HistoryWriter } from "../history/writer.ts";
import type { JobTypes } from "../jobs/job_type.ts";
import type { UrlPolicy } from "../security/url_policy.ts";
import type { Principal } from "./auth.ts";
import type { Runner } from "../jobs/runner.ts";
import type { Metrics } from "../monitoring/metrics.ts";
import type { Monitor } from "../monitoring/monitor.ts";
import type { SessionDeps } from "../sessions/control.ts";
import type { RecordingCatalog } from "../recordings/catalog.ts";
import type { StreamDeps } from "../streams/manage.ts";
import type { EncoderDetection } from "../video/codecs.ts";

/** Recordings: their catalog in DuckDB, and how this process is reached (for file URLs). */
export interface RecordingDeps {
  catalog: RecordingCatalog;
  /** This process's base URL as clients reach it. */
  publicUrl(): string;
}

/** What the HTTP listener of any process has, a worker-only one included. */
export interface WorkerDeps {
  config: Config;
  log: Logger;
  sessions: SessionDeps;
  streams: StreamDeps;
  policy: UrlPolicy;
}

/** What the API process has. */
export interface AppDeps extends WorkerDeps {
  queue: Queue;
  history: History;
  /** Live events of this process and the not-yet-stored ones (the history writer). */
  hub: HistoryWriter;
  jobTypes: JobTypes;
  /** The local worker pool, when this process runs one. */
  runner?: Runner | undefined;
  recordings: RecordingDeps;
  /** Video encoders usable in this process. */
  encoders: EncoderDetection;
  version: string;
  metrics: Metrics;
  /** Pressure and admission, the dashboard feed, alerts, history of the platform series. */
  monitor: Monitor;
}

/** What a request carries through the Hono context: the authenticated caller. */
export type AppEnv = { Variables: { principal: Principal } };
