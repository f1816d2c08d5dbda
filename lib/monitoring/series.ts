/**
 * The platform series: named numbers computed every second from the machine sample, the Redis state
 * and the metrics, shown live on the dashboard, stored in `platform_samples`, and, for those with
 * `watch`, checked for anomalies.
 */
import { ConfigError } from "../core/config.ts";
import type { MachineSample } from "./machine.ts";
import type { PlatformState } from "./cluster.ts";

type Labels = Record<string, string | number>;

export interface HistogramWindow {
  count: number;
  mean: number | null;
  /** Estimated like Prometheus' histogram_quantile (linear within the bucket). */
  quantile(q: number): number | null;
}

/** What a series' value is computed from. */
export interface SeriesContext {
  machine: MachineSample;
  platform: PlatformState;
  /** The metric's value summed over its label sets (min/max for such aggregators); null if absent. */
  gauge(name: string): number | null;
  /** Per-second increase of a counter over the last `windowS` seconds; null if absent. */
  rate(name: string, windowS: number, where?: (labels: Labels) => boolean): number | null;
  /** The observations a histogram received over the last `windowS` seconds; null if absent. */
  histogram(name: string, windowS: number): HistogramWindow | null;
}

export interface Watch {
  /** Which deviation is an anomaly: a rise (`high`) or a drop (`low`). */
  direction: "high" | "low";
  /** Smallest scale used for the z-score, in the series' unit (so a flat line is not fragile). */
  minScale: number;
}

export interface SeriesSpec {
  name: string;
  unit: string;
  description: string;
  value(ctx: SeriesContext): number | null;
  watch?: Watch;
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
const JOB_COUNTS = "streamplay_jobs_total";
const jobRate = (ctx: SeriesContext, statuses: string[], windowS: number) =>
  ctx.rate(JOB_COUNTS, windowS, (l) => statuses.includes(String(l.status)));
/** A rate per live item (fps per session), null when none is live. */
const perItem = (rate: number | null, items: number | null, factor = 1) =>
  rate === null || !items ? null : (factor * rate) / items;
/** A figure of the live items (the worst one's), null when none is live: not a drop to 0. */
const whileLive = (value: number | null, items: number | null) => (items ? value : null);

/**
 * A series is null while it has no source (no job started in the window, no session running).
 * Sessions and streams are read from metrics registered in the `shared` registry (see
 * `lib/monitoring/metrics.ts`) by `lib/sessions/metrics.ts` and `lib/streams/metrics.ts`. These
 * names are the contract:
 *
 *   streamplay_sessions_active                 gauge    live sessions
 *   streamplay_session_viewers                 gauge    viewers connected, all sessions
 *   streamplay_session_frames_captured_total   counter  screencast frames received
 *   streamplay_session_frames_sent_total       counter  frames sent to viewers
 *   streamplay_session_frames_dropped_total    counter  frames a slow viewer skipped
 *   streamplay_session_buffer_health_ratio     gauge    worst session (aggregator "min"), 0–1
 *   streamplay_streams_active                  gauge    live video streams (label: protocol)
 *   streamplay_stream_frames_total             counter  frames encoded (label: protocol)
 *   streamplay_stream_bytes_total              counter  bytes produced (label: protocol)
 *   streamplay_stream_buffer_health_ratio      gauge    worst stream (aggregator "min"), 0–1
 */
export const SERIES: readonly SeriesSpec[] = [
  {
    name: "cpu_percent",
    unit: "%",
    description: "CPU busy on this machine, all cores",
    value: (c) => c.machine.cpu_percent,
    watch: { direction: "high", minScale: 5 },
  },
  {
    name: "memory_percent",
    unit: "%",
    description: "Memory in use on this machine",
    value: (c) => c.machine.memory_percent,
    watch: { direction: "high", minScale: 2 },
  },
  {
    name: "process_cpu_percent",
    unit: "% of a core",
    description: "CPU used by this streamplay process",
    value: (c) => c.machine.process_cpu_percent,
  },
  {
    name: "process_rss_bytes",
    unit: "bytes",
    description: "Resident memory of this streamplay process",
    value: (c) => c.machine.process_rss_bytes,
  },
  {
    name: "disk_free_bytes",
    unit: "bytes",
    description: "Free space on the filesystem of the data directory",
    value: (c) => c.machine.disk_free_bytes,
  },
  {
    name: "jobs_queued",
    unit: "jobs",
    description: "Jobs waiting in the queue, all types",
    value: (c) => sum(Object.values(c.platform.queues)),
  },
  {
    name: "jobs_retrying",
    unit: "jobs",
    description: "Jobs waiting out a retry backoff",
    value: (c) => c.platform.retrying,
  },
  {
    name: "jobs_running",
    unit: "jobs",
    description: "Jobs running now, all worker processes, sessions included",
    value: (c) => c.gauge("streamplay_jobs_running") ?? 0,
  },
  {
    name: "worker_slots",
    unit: "jobs",
    description: "Jobs the worker pools may run at once, their sessions' own slots included",
    value: (c) => sum(c.platform.reports.map((r) => r.slots ?? r.concurrency)),
  },
  {
    name: "worker_processes",
    unit: "processes",
    description: "Processes running a worker pool",
    value: (c) => c.platform.reports.filter((r) => (r.slots ?? r.concurrency) > 0).length,
  },
  {
    name: "jobs_started_per_s",
    unit: "jobs/s",
    description: "Job attempts started per second (last 5 s)",
    value: (c) => jobRate(c, ["running"], 5),
  },
  {
    name: "jobs_succeeded_per_s",
    unit: "jobs/s",
    description: "Jobs succeeded per second (last 5 s)",
    value: (c) => jobRate(c, ["succeeded"], 5),
  },
  {
    name: "jobs_failed_per_s",
    unit: "jobs/s",
    description: "Job attempts failed per second, retried or not (last 5 s)",
    value: (c) => jobRate(c, ["failed", "retrying"], 5),
  },
  {
    name: "job_failure_rate",
    unit: "failures/s",
    description: "Job attempts failed per second over the last minute",
    value: (c) => jobRate(c, ["failed", "retrying"], 60),
    watch: { direction: "high", minScale: 0.05 },
  },
  {
    name: "queue_wait_s",
    unit: "s",
    description: "Mean queue wait of the jobs started in the last 10 s",
    value: (c) => c.histogram("streamplay_job_queue_wait_seconds", 10)?.mean ?? null,
    watch: { direction: "high", minScale: 0.5 },
  },
  {
    name: "queue_wait_p95_s",
    unit: "s",
    description: "95th percentile queue wait of the jobs started in the last 10 s",
    value: (c) => c.histogram("streamplay_job_queue_wait_seconds", 10)?.quantile(0.95) ?? null,
  },
  {
    name: "run_time_s",
    unit: "s",
    description: "Mean run time of the attempts that ended in the last 10 s",
    value: (c) => c.histogram("streamplay_job_run_seconds", 10)?.mean ?? null,
  },
  {
    name: "run_time_p95_s",
    unit: "s",
    description: "95th percentile run time of the attempts that ended in the last 10 s",
    value: (c) => c.histogram("streamplay_job_run_seconds", 10)?.quantile(0.95) ?? null,
  },
  {
    name: "http_requests_per_s",
    unit: "req/s",
    description: "HTTP requests this process answered per second (last 5 s)",
    value: (c) => c.rate("streamplay_http_requests_total", 5),
  },
  {
    name: "http_errors_per_s",
    unit: "req/s",
    description: "HTTP 5xx answers per second (last 5 s)",
    value: (c) =>
      c.rate("streamplay_http_requests_total", 5, (l) => String(l.status).startsWith("5")),
  },
  {
    name: "sessions_active",
    unit: "sessions",
    description: "Live browser sessions",
    value: (c) => c.gauge("streamplay_sessions_active"),
  },
  {
    name: "session_viewers",
    unit: "viewers",
    description: "Viewers connected to live sessions",
    value: (c) => c.gauge("streamplay_session_viewers"),
  },
  {
    name: "session_fps",
    unit: "fps",
    description: "Frames captured per second per live session (last 5 s)",
    value: (c) =>
      perItem(
        c.rate("streamplay_session_frames_captured_total", 5),
        c.gauge("streamplay_sessions_active"),
      ),
    watch: { direction: "low", minScale: 3 },
  },
  {
    name: "frames_sent_per_s",
    unit: "frames/s",
    description: "Frames sent to session viewers per second (last 5 s)",
    value: (c) => c.rate("streamplay_session_frames_sent_total", 5),
  },
  {
    name: "frames_dropped_per_s",
    unit: "frames/s",
    description: "Frames slow viewers skipped per second (last 5 s)",
    value: (c) => c.rate("streamplay_session_frames_dropped_total", 5),
  },
  {
    name: "session_buffer_health",
    unit: "ratio",
    description: "Buffer health of the worst live session, 0–1",
    value: (c) =>
      whileLive(
        c.gauge("streamplay_session_buffer_health_ratio"),
        c.gauge("streamplay_sessions_active"),
      ),
    watch: { direction: "low", minScale: 0.1 },
  },
  {
    name: "streams_active",
    unit: "streams",
    description: "Live video streams (HLS, DASH, RTMP)",
    value: (c) => c.gauge("streamplay_streams_active"),
  },
  {
    name: "stream_fps",
    unit: "fps",
    description: "Frames encoded per second per live stream (last 5 s)",
    value: (c) =>
      perItem(c.rate("streamplay_stream_frames_total", 5), c.gauge("streamplay_streams_active")),
    watch: { direction: "low", minScale: 3 },
  },
  {
    name: "stream_bitrate_bps",
    unit: "bit/s",
    description: "Bitrate per live stream (last 5 s)",
    value: (c) =>
      perItem(c.rate("streamplay_stream_bytes_total", 5), c.gauge("streamplay_streams_active"), 8),
    watch: { direction: "low", minScale: 100_000 },
  },
  {
    name: "stream_buffer_health",
    unit: "ratio",
    description: "Buffer health of the worst live stream, 0–1",
    value: (c) =>
      whileLive(
        c.gauge("streamplay_stream_buffer_health_ratio"),
        c.gauge("streamplay_streams_active"),
      ),
    watch: { direction: "low", minScale: 0.1 },
  },
];

export const SERIES_NAMES: readonly string[] = SERIES.map((s) => s.name);
export const WATCHABLE_SERIES: readonly string[] = SERIES.filter((s) => s.watch).map((s) => s.name);

/** Start-up check of STREAMPLAY_ANOMALY_SERIES: every name must be a watched series. */
export function checkWatchedSeries(names: readonly string[]): void {
  for (const name of names) {
    if (!WATCHABLE_SERIES.includes(name)) {
      throw new ConfigError(
        `STREAMPLAY_ANOMALY_SERIES: "${name}" is not a watched series; use some of ${
          WATCHABLE_SERIES.join(", ")
        }`,
      );
    }
  }
}
