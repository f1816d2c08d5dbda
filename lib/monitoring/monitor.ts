/**
 * Monitoring in an API process, in one object the routes reach as `deps.monitor`: the series every
 * second, their storage, `/metrics`, stored history, anomalies and forecasts.
 */
import type { DuckDBValue } from "@duckdb/node-api";
import type { Config } from "../core/config.ts";
import type { History } from "../history/store.ts";
import { tsValue } from "../history/store.ts";
import type { Metrics, Snapshot } from "./metrics.ts";
import type { MachineProbe, MachineSample } from "./machine.ts";
import {
  type Cluster,
  createPlatformView,
  type PlatformState,
  type PlatformView,
  type Reporter,
} from "./cluster.ts";
import { createPressureGauge, type PressureGauge } from "./pressure.ts";
import { type AlertRecord, type Alerts, createAlerts, createWebhook } from "./alerts.ts";
import { createDashboardFeed, type DashboardFeed } from "./dashboard.ts";
import { parseEvent, seqToId } from "../jobs/events.ts";
import type { Runner } from "../jobs/runner.ts";
import type { EventHub } from "../jobs/events.ts";
import type { UrlPolicy } from "../security/url_policy.ts";
import { createDetector, type Detector } from "./anomaly.ts";
import { type HistogramWindow, SERIES, type SeriesContext, type SeriesSpec } from "./series.ts";
import { errorMessage, type Logger } from "../core/log.ts";

type Labels = Record<string, string | number>;
interface Family {
  aggregator: string;
  values: Array<{ labels: Labels; value: number; metricName?: string }>;
}
type Frame = Map<string, Family>;

export interface MetricsUpdate {
  type: "metrics_update";
  ts: string;
  values: Record<string, number | null>;
  queues: Record<string, number>;
  workers: Array<{
    id: string;
    host: string;
    role: string;
    /** Every slot of its pool, shared and own (sessions). */
    slots: number;
    /** Every job running there, sessions included. */
    running: number;
    cpu_percent: number;
    memory_percent: number;
  }>;
  pressure: unknown;
  alerts: AlertRecord[];
  redis: "ok" | "down";
  /** True when more changes happened than the feed sent (it showed a sample). */
  feed_sampled: boolean;
}

export interface HistoryQuery {
  series: string[];
  sinceMs: number;
  untilMs: number;
  stepS: number;
  agg: "avg" | "min" | "max";
}

export interface HistoryResult {
  since: string;
  until: string;
  step_s: number;
  agg: string;
  timestamps: string[];
  series: Record<string, Array<number | null>>;
}

export interface Forecast {
  kind: "disk" | "queue" | "memory";
  status: "ok" | "warning" | "unknown";
  message: string;
  /** Hours until the limit at the current rate; null when it is not approached. */
  eta_hours: number | null;
  current: number | null;
  rate_per_hour: number | null;
}

export interface Analytics {
  generated_at: string;
  anomalies: { active: AlertRecord[]; recent: AlertRecord[] };
  forecasts: Forecast[];
}

export interface Monitor {
  readonly platform: PlatformView;
  readonly pressure: PressureGauge;
  readonly alerts: Alerts;
  readonly feed: DashboardFeed;
  /** Starts the 1 s tick (this process's report, series, alerts, dashboard, samples). */
  start(): void;
  /** The latest `metrics_update` (null before the first tick or when not started). */
  latest(): MetricsUpdate | null;
  /** The Prometheus exposition, read fresh from Redis and DuckDB. */
  scrape(): Promise<{ text: string; contentType: string }>;
  history(q: HistoryQuery): Promise<HistoryResult>;
  analytics(): Promise<Analytics>;
  close(): Promise<void>;
}

const round = (v: number | null) =>
  v === null || !Number.isFinite(v) ? null : Math.round(v * 1000) / 1000;

function flatten(snapshots: Snapshot[]): Frame {
  const frame: Frame = new Map();
  for (const snapshot of snapshots) {
    for (const m of snapshot) frame.set(m.name, { aggregator: m.aggregator, values: m.values });
  }
  return frame;
}

function total(f: Family, metricName?: string, where?: (l: Labels) => boolean): number {
  let out = 0;
  for (const v of f.values) {
    if (metricName !== undefined && v.metricName !== metricName) continue;
    if (where && !where(v.labels)) continue;
    out += v.value;
  }
  return out;
}

/** Linear interpolation within the bucket, as Prometheus' histogram_quantile. */
export function bucketQuantile(buckets: Array<[number, number]>, q: number): number | null {
  const count = buckets[buckets.length - 1]?.[1] ?? 0;
  if (count <= 0) return null;
  const rank = q * count;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, c] of buckets) {
    if (c >= rank) {
      if (le === Infinity) return prevLe;
      return prevLe + (le - prevLe) * ((rank - prevCount) / Math.max(1e-12, c - prevCount));
    }
    prevLe = le;
    prevCount = c;
  }
  return prevLe;
}

/** The series context over a ring of frames (newest last). */
function seriesContext(
  ring: Array<{ at: number; frame: Frame }>,
  machine: MachineSample,
  platform: PlatformState,
): SeriesContext {
  const now = ring[ring.length - 1]!;
  const before = (windowS: number) => {
    const target = now.at - windowS * 1000 - 250;
    for (const r of ring) if (r.at >= target) return r === now ? null : r;
    return null;
  };
  return {
    machine,
    platform,
    gauge(name) {
      const f = now.frame.get(name);
      if (!f || f.values.length === 0) return null;
      if (f.aggregator === "min") return Math.min(...f.values.map((v) => v.value));
      if (f.aggregator === "max") return Math.max(...f.values.map((v) => v.value));
      return total(f);
    },
    rate(name, windowS, where) {
      const old = before(windowS);
      const a = now.frame.get(name);
      const b = old?.frame.get(name);
      if (!old || !a || !b) return null;
      return Math.max(0, total(a, undefined, where) - total(b, undefined, where)) /
        ((now.at - old.at) / 1000);
    },
    histogram(name, windowS): HistogramWindow | null {
      const old = before(windowS);
      const a = now.frame.get(name);
      const b = old?.frame.get(name);
      if (!old || !a || !b) return null;
      const count = total(a, `${name}_count`) - total(b, `${name}_count`);
      if (count <= 0) return { count: 0, mean: null, quantile: () => null };
      const sum = total(a, `${name}_sum`) - total(b, `${name}_sum`);
      const byLe = new Map<number, number>();
      const add = (f: Family, sign: number) => {
        for (const v of f.values) {
          if (v.metricName !== `${name}_bucket`) continue;
          const le = v.labels.le === "+Inf" ? Infinity : Number(v.labels.le);
          byLe.set(le, (byLe.get(le) ?? 0) + sign * v.value);
        }
      };
      add(a, 1);
      add(b, -1);
      const buckets = [...byLe.entries()].sort((x, y) => x[0] - y[0]);
      return { count, mean: sum / count, quantile: (q) => bucketQuantile(buckets, q) };
    },
  };
}

function fmtBytes(n: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = Math.abs(n);
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${n < 0 ? "−" : ""}${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}
const fmt = (n: number, digits = 1) => n.toLocaleString("en-US", { maximumFractionDigits: digits });

async function trends(history: History, names: string[], windowMs: number, now: number) {
  const params: DuckDBValue[] = [tsValue(now - windowMs)];
  const list = names.map((s) => (params.push(s), `$${params.length}`)).join(", ");
  const rows = await history.query<
    { series: string; span_s: number; slope: number | null; last: number | null }
  >(
    `SELECT series, epoch(max(ts)) - epoch(min(ts)) AS span_s,
       regr_slope(value, epoch(ts)) AS slope, arg_max(value, ts) AS last
     FROM platform_samples WHERE ts >= $1 AND series IN (${list}) GROUP BY series`,
    params,
  );
  return new Map(rows.map((r) => [r.series, r]));
}

/**
 * Forecasts from the stored trends (least-squares slope in DuckDB): when the data disk fills,
 * whether the queue grows faster than it drains, when memory reaches its limit.
 */
export async function forecasts(
  history: History,
  limits: { maxQueued: number; maxMemoryPercent: number },
  now = Date.now(),
): Promise<Forecast[]> {
  // A trend is extrapolated only from samples spanning a quarter of its window at least.
  const hourly = await trends(history, ["disk_free_bytes", "memory_percent"], 3_600_000, now);
  const recent = await trends(history, ["jobs_queued"], 15 * 60_000, now);
  const enough = (r: { span_s: number } | undefined, minS: number) =>
    r !== undefined && r.span_s >= minS;
  const unknown = (kind: Forecast["kind"], minutes: number): Forecast => ({
    kind,
    status: "unknown",
    message: `Not enough history yet: this forecast needs ${minutes} minutes of samples`,
    eta_hours: null,
    current: null,
    rate_per_hour: null,
  });
  const out: Forecast[] = [];

  const disk = hourly.get("disk_free_bytes");
  if (!enough(disk, 900) || disk!.last === null || disk!.slope === null) {
    out.push(unknown("disk", 15));
  } else {
    const perHour = disk!.slope * 3600;
    const eta = perHour < 0 ? disk!.last / -perHour : null;
    out.push({
      kind: "disk",
      status: eta !== null && eta < 24 ? "warning" : "ok",
      message: eta !== null
        ? `The disk holding the data directory fills in ${fmt(eta)} hours at this rate (${
          fmtBytes(disk!.last)
        } free, ${fmtBytes(perHour)}/hour)`
        : `Free disk space is steady or growing (${fmtBytes(disk!.last)} free)`,
      eta_hours: eta === null ? null : round(eta),
      current: disk!.last,
      rate_per_hour: round(perHour),
    });
  }

  const queue = recent.get("jobs_queued");
  if (!enough(queue, 240) || queue!.last === null || queue!.slope === null) {
    out.push(unknown("queue", 4));
  } else {
    const perMin = queue!.slope * 60;
    const last = queue!.last;
    const room = Math.max(0, limits.maxQueued - last);
    const growing = perMin > 0.05 && last > 0;
    const draining = perMin < -0.05 && last > 0;
    out.push({
      kind: "queue",
      status: growing ? "warning" : "ok",
      message: growing
        ? `The queue grows faster than it drains: +${fmt(perMin)} jobs/min, ${
          fmt(last, 0)
        } waiting; it reaches STREAMPLAY_MAX_QUEUED (${fmt(limits.maxQueued, 0)}) in ${
          fmt(room / perMin)
        } min`
        : draining
        ? `The queue drains at ${fmt(-perMin)} jobs/min: ${fmt(last, 0)} waiting, empty in ${
          fmt(last / -perMin)
        } min`
        : `The queue keeps up (${fmt(last, 0)} waiting)`,
      eta_hours: growing ? round(room / perMin / 60) : null,
      current: last,
      rate_per_hour: round(perMin * 60),
    });
  }

  const mem = hourly.get("memory_percent");
  if (!enough(mem, 900) || mem!.last === null || mem!.slope === null) {
    out.push(unknown("memory", 15));
  } else {
    const perHour = mem!.slope * 3600;
    const eta = perHour > 0.01 ? Math.max(0, limits.maxMemoryPercent - mem!.last) / perHour : null;
    out.push({
      kind: "memory",
      status: eta !== null && eta < 24 ? "warning" : "ok",
      message: eta !== null
        ? `Memory reaches STREAMPLAY_MAX_MEMORY_PERCENT (${limits.maxMemoryPercent}%) in ${
          fmt(eta)
        } hours at this rate (now ${fmt(mem!.last)}%, +${fmt(perHour, 2)}%/hour)`
        : `Memory use is steady (${fmt(mem!.last)}%)`,
      eta_hours: eta === null ? null : round(eta),
      current: mem!.last,
      rate_per_hour: round(perHour),
    });
  }
  return out;
}

/**
 * - `start()`: every second (the reporter's tick) it reads the platform from Redis, computes the
 *   series of `lib/monitoring/series.ts`, feeds the pressure gauge, the anomaly detectors and the
 *   dashboard (`metrics_update`), and every `STREAMPLAY_METRICS_INTERVAL_S` stores the series'
 *   averages in `platform_samples` (pruned after `STREAMPLAY_METRICS_RETENTION_DAYS`). Not started
 *   with `STREAMPLAY_MONITOR=false`: `/metrics` and `/api/pressure` still answer, reading Redis.
 * - `scrape()`: the `/metrics` text, read fresh; `history()`: stored series downsampled in DuckDB;
 *   `analytics()`: recent anomalies and forecasts from the stored trends.
 */
export function createMonitor(options: {
  config: Config;
  log: Logger;
  history: History;
  /** Live job events (the history writer), for the dashboard's feed. */
  hub: EventHub;
  metrics: Metrics;
  cluster: Cluster;
  reporter: Reporter;
  machine: MachineProbe;
  runner: Runner | undefined;
  policy: UrlPolicy;
  version: string;
}): Monitor {
  const { config, log, history, metrics, reporter, cluster, runner } = options;
  const selfId = reporter.id;
  const platform = createPlatformView({ cluster, metrics, selfId, runner });
  const pressure = createPressureGauge({
    config,
    cluster,
    runner,
    selfId,
    metrics,
    sampleMachine: () => reporter.latest() ?? options.machine.sample(),
  });
  if (config.alertWebhook) log.addSecret(config.alertWebhook);
  const alerts = createAlerts({
    history,
    log,
    metrics,
    webhook: config.alertWebhook
      ? createWebhook({
        url: config.alertWebhook,
        policy: options.policy,
        log,
        metrics,
        version: options.version,
      })
      : null,
  });
  const feed = createDashboardFeed({
    hub: options.hub,
    // The stream ids of the last day bound the scan (seq is the id's ms × 10⁶ + its sequence).
    stored: async (limit) => {
      const since = BigInt(Date.now() - 86_400_000) * 1_000_000n;
      const rows = await history.query<{ job_id: string; seq: string; data: string }>(
        `SELECT job_id, seq::VARCHAR AS seq, data FROM job_events
         WHERE seq > $1::BIGINT AND type IN ('status', 'content_change')
         ORDER BY seq DESC LIMIT $2`,
        [since.toString(), limit],
      );
      return rows.map((r) => parseEvent(seqToId(BigInt(r.seq)), r.job_id, r.data));
    },
  });
  metrics.gauge("local", {
    name: "streamplay_dashboard_clients",
    help: "WebSocket clients of the live dashboard",
    collect() {
      this.set(feed.clients());
    },
  });
  let started = false;
  const watched = SERIES.filter((s) =>
    s.watch && (config.anomalySeries.length === 0 || config.anomalySeries.includes(s.name))
  );
  const detectors = new Map<string, { spec: SeriesSpec; detector: Detector }>(
    watched.map((spec) => [spec.name, {
      spec,
      detector: createDetector({
        series: spec.name,
        direction: spec.watch!.direction,
        z: config.anomalyZ,
        minDurationS: config.anomalyMinDurationS,
        minScale: spec.watch!.minScale,
      }),
    }]),
  );
  const ring: Array<{ at: number; frame: Frame }> = [];
  let state: PlatformState | null = null;
  let latest: MetricsUpdate | null = null;
  const sums = new Map<string, { sum: number; n: number }>();
  let intervalStart = Date.now();
  let lastPrune = 0;
  let ticks = 0;

  const storeSamples = async (now: number) => {
    const rows = [...sums.entries()].filter(([, s]) => s.n > 0);
    sums.clear();
    intervalStart = now;
    if (rows.length === 0) return;
    try {
      await history.append("platform_samples", (a) => {
        const ts = tsValue(now);
        for (const [name, s] of rows) {
          a.appendTimestampTZ(ts);
          a.appendVarchar(name);
          a.appendDouble(s.sum / s.n);
          a.endRow();
        }
      });
      metrics.setHealth({ duckdbUp: true });
    } catch (err) {
      metrics.setHealth({ duckdbUp: false });
      log.warn("could not store platform samples", { error: errorMessage(err) });
    }
  };

  const prune = async (now: number) => {
    lastPrune = now;
    const cutoff = tsValue(now - config.metricsRetentionDays * 86_400_000);
    try {
      await history.execute(`DELETE FROM platform_samples WHERE ts < $1`, [cutoff]);
      await history.execute(`DELETE FROM anomaly_alerts WHERE detected_at < $1`, [cutoff]);
    } catch (err) {
      log.warn("could not prune old platform samples", { error: errorMessage(err) });
    }
  };

  const detect = async (values: Record<string, number | null>, now: number) => {
    for (const [name, { spec, detector }] of detectors) {
      const v = values[name];
      if (v === null || v === undefined) continue;
      const event = detector.update(now, v);
      if (event?.kind === "alert") {
        const record = await alerts.open(event.anomaly, spec.unit);
        feed.broadcast({ type: "anomaly_alert", ...record });
      } else if (event?.kind === "resolved") {
        const record = await alerts.resolve(event.anomaly, event.resolved_at);
        if (record) feed.broadcast({ type: "anomaly_resolved", ...record });
      }
    }
  };

  const tick = async (machine: MachineSample) => {
    const now = Date.now();
    let shared: Snapshot | null = null;
    let redisUp = true;
    try {
      const snap = await platform.refresh();
      state = snap.state;
      shared = snap.shared;
      metrics.setHealth({ redisUp: true, redisLatencyS: snap.readS });
    } catch (err) {
      redisUp = false;
      metrics.setHealth({ redisUp: false });
      if (ticks % 30 === 0) log.warn("monitor cannot read Redis", { error: errorMessage(err) });
    }
    ticks++;
    const platformState = state ?? {
      at: now,
      jobCounts: [],
      queues: {},
      retrying: 0,
      dead: 0,
      reports: [],
    };
    const local = (await metrics.local.getMetricsAsJSON()) as unknown as Snapshot;
    ring.push({ at: now, frame: flatten(shared ? [local, shared] : [local]) });
    while (ring.length > 0 && now - ring[0]!.at > 61_000) ring.shift();
    const ctx = seriesContext(ring, machine, platformState);
    const values: Record<string, number | null> = {};
    for (const spec of SERIES) {
      let v: number | null = null;
      try {
        v = round(spec.value(ctx));
      } catch (err) {
        log.debug("series failed", { series: spec.name, error: errorMessage(err) });
      }
      values[spec.name] = v;
      if (v !== null) {
        const s = sums.get(spec.name) ?? { sum: 0, n: 0 };
        s.sum += v;
        s.n++;
        sums.set(spec.name, s);
      }
    }
    const p = pressure.update(machine, platformState);
    if (redisUp) await detect(values, now);
    latest = {
      type: "metrics_update",
      ts: new Date(now).toISOString(),
      values,
      queues: platformState.queues,
      workers: platformState.reports.map((r) => ({
        id: r.id,
        host: r.host,
        role: r.role,
        slots: r.slots ?? r.concurrency,
        running: r.jobs_running ?? r.running,
        cpu_percent: r.machine.cpu_percent,
        memory_percent: r.machine.memory_percent,
      })),
      pressure: p,
      alerts: alerts.active(),
      redis: redisUp ? "ok" : "down",
      feed_sampled: feed.takeSampled(),
    };
    feed.broadcast(latest as unknown as Record<string, unknown>);
    if (now - intervalStart >= config.metricsIntervalS * 1000) await storeSamples(now);
    if (now - lastPrune >= 3_600_000) await prune(now);
  };

  const dbBytes = async () => {
    let bytes = 0;
    for (const file of [config.dbPath, `${config.dbPath}.wal`]) {
      try {
        bytes += (await Deno.stat(file)).size;
      } catch {
        // no WAL right now, or the file is outside what this process may read
      }
    }
    return bytes || null;
  };

  const duckdbUp = () =>
    Promise.race([
      history.ping(),
      new Promise<boolean>((r) => setTimeout(() => r(false), 2_000)),
    ]);

  const scrape = async () => {
    let shared: Snapshot;
    let redisUp = true;
    let readS: number | null = null;
    try {
      const snap = await platform.refresh();
      shared = snap.shared;
      readS = snap.readS;
    } catch {
      redisUp = false;
      shared = await metrics.sharedSnapshot();
    }
    const [duckOk, bytes] = await Promise.all([duckdbUp(), dbBytes()]);
    metrics.setHealth({ redisUp, redisLatencyS: readS, duckdbUp: duckOk, duckdbBytes: bytes });
    return await metrics.render(shared);
  };

  const history_ = async (q: HistoryQuery): Promise<HistoryResult> => {
    const params: DuckDBValue[] = [q.stepS, tsValue(q.sinceMs), tsValue(q.untilMs)];
    const names = q.series.map((s) => (params.push(s), `$${params.length}`)).join(", ");
    const rows = await history.query<{ t: number; series: string; v: number | null }>(
      `SELECT epoch_ms(time_bucket(to_seconds($1::BIGINT), ts, $2::TIMESTAMPTZ)) AS t, series,
         ${q.agg}(value) AS v
       FROM platform_samples WHERE ts >= $2 AND ts < $3 AND series IN (${names})
       GROUP BY ALL ORDER BY t`,
      params,
    );
    const stepMs = q.stepS * 1000;
    const n = Math.ceil((q.untilMs - q.sinceMs) / stepMs);
    const series: Record<string, Array<number | null>> = {};
    for (const s of q.series) series[s] = new Array(n).fill(null);
    for (const r of rows) {
      const i = Math.round((r.t - q.sinceMs) / stepMs);
      const column = series[r.series];
      if (column && i >= 0 && i < n) column[i] = round(r.v);
    }
    return {
      since: new Date(q.sinceMs).toISOString(),
      until: new Date(q.untilMs).toISOString(),
      step_s: q.stepS,
      agg: q.agg,
      timestamps: Array.from(
        { length: n },
        (_, i) => new Date(q.sinceMs + i * stepMs).toISOString(),
      ),
      series,
    };
  };

  let closing: Promise<void> | undefined;
  return {
    platform,
    pressure,
    alerts,
    feed,
    start() {
      if (started) return;
      started = true;
      // The first prune runs a minute after start, out of the way of start-up.
      lastPrune = Date.now() - 3_600_000 + 60_000;
      reporter.start(1_000, tick);
    },
    latest: () => latest,
    scrape,
    history: history_,
    async analytics() {
      const [recent, f] = await Promise.all([
        alerts.recent(Date.now() - 86_400_000, 100),
        forecasts(history, config),
      ]);
      return {
        generated_at: new Date().toISOString(),
        anomalies: { active: alerts.active(), recent },
        forecasts: f,
      };
    },
    close: () =>
      closing ??= (async () => {
        if (started) {
          await reporter.stop();
          await storeSamples(Date.now());
        }
        feed.close();
        await alerts.drain(2_000);
      })(),
  };
}
