/**
 * Anomaly alerts: stored in DuckDB (`anomaly_alerts`), kept in memory while open, and POSTed to
 * `STREAMPLAY_ALERT_WEBHOOK` when set.
 */
import type { DuckDBValue } from "@duckdb/node-api";
import type { History } from "../history/store.ts";
import { tsValue } from "../history/store.ts";
import type { Anomaly } from "./anomaly.ts";
import type { UrlPolicy } from "../security/url_policy.ts";
import { fetchStatus, RefusedByPolicy } from "../security/egress.ts";
import type { Metrics } from "./metrics.ts";
import { errorMessage, type Logger } from "../core/log.ts";

export interface AlertRecord {
  id: string;
  series: string;
  unit: string;
  direction: "high" | "low";
  value: number;
  peak: number;
  baseline: number;
  expected_low: number;
  expected_high: number;
  z: number;
  since: string;
  detected_at: string;
  resolved_at: string | null;
  message: string;
}

export interface Alerts {
  /** Records a new anomaly: DuckDB, webhook; returns the alert as clients see it. */
  open(anomaly: Anomaly, unit: string): Promise<AlertRecord>;
  /** Marks the open alert of the series resolved; null when none was open. */
  resolve(anomaly: Anomaly, resolvedAt: number): Promise<AlertRecord | null>;
  /** Alerts open now. */
  active(): AlertRecord[];
  /** Alerts detected since `sinceMs`, newest first. */
  recent(sinceMs: number, limit: number): Promise<AlertRecord[]>;
  /** Waits (up to `ms`) for webhook deliveries in flight. */
  drain(ms: number): Promise<void>;
}

/** Formats a number for a sentence: 3 significant digits, thousands separators. */
function fmtValue(v: number, unit: string): string {
  const abs = Math.abs(v);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  const text = v.toLocaleString("en-US", { maximumFractionDigits: digits });
  return unit === "%" ? `${text}%` : `${text} ${unit}`;
}

function alertMessage(a: Anomaly, unit: string): string {
  const range = `${fmtValue(a.expected_low, unit)} to ${fmtValue(a.expected_high, unit)}`;
  return `${a.series} is ${fmtValue(a.value, unit)}, ${
    a.direction === "high" ? "above" : "below"
  } the expected ${range} (baseline ${fmtValue(a.baseline, unit)}), since ${
    new Date(a.since).toISOString()
  }`;
}

function alertId(ms: number): string {
  const rand = crypto.getRandomValues(new Uint8Array(6));
  let tail = "";
  for (const b of rand) tail += (b % 36).toString(36);
  return `alert_${ms.toString(36)}${tail}`;
}

const iso = (
  ms: unknown,
) => (ms === null || ms === undefined ? null : new Date(Number(ms)).toISOString());

export interface WebhookOptions {
  url: string;
  policy: UrlPolicy;
  log: Logger;
  metrics: Metrics;
  version: string;
  maxAttempts?: number;
  baseDelayMs?: number;
}

export interface Webhook {
  send(body: Record<string, unknown>): void;
  drain(ms: number): Promise<void>;
}

/**
 * Delivery never blocks the caller: a bounded queue, every attempt through a proxy applying the URL
 * policy (the address it checks is the one connected to, see lib/security/egress.ts), 5 s timeout,
 * no redirects followed, retries with exponential backoff on network errors, 408, 429 and 5xx;
 * failures are logged (with the webhook's origin only: its path is often a secret) and counted in
 * metrics.
 */
export function createWebhook(options: WebhookOptions): Webhook {
  const { url, policy, log } = options;
  const origin = new URL(url).origin;
  const maxAttempts = options.maxAttempts ?? 5;
  const baseDelay = options.baseDelayMs ?? 1_000;
  const deliveries = options.metrics.counter("local", {
    name: "streamplay_alert_webhook_deliveries_total",
    help: "Alert webhook deliveries by result (delivered, failed, dropped)",
    labelNames: ["result"],
  });
  const queue: string[] = [];
  let worker: Promise<void> | null = null;

  const attempt = async (payload: string): Promise<"ok" | "retry" | "give_up"> => {
    try {
      const status = await fetchStatus(policy, url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "user-agent": `streamplay/${options.version}`,
        },
        body: payload,
        redirect: "manual",
        signal: AbortSignal.timeout(5_000),
      });
      if (status >= 200 && status < 300) return "ok";
      const retry = status === 408 || status === 429 || status >= 500;
      log.warn("alert webhook answered an error", { origin, status, retry });
      return retry ? "retry" : "give_up";
    } catch (err) {
      if (err instanceof RefusedByPolicy) {
        log.warn("alert webhook refused by the URL policy", { origin, reason: err.message });
        return "give_up";
      }
      log.warn("alert webhook call failed", { origin, error: errorMessage(err) });
      return "retry";
    }
  };

  const run = async () => {
    while (queue.length > 0) {
      const payload = queue.shift()!;
      let result: "ok" | "retry" | "give_up" = "retry";
      for (let i = 0; i < maxAttempts && result === "retry"; i++) {
        if (i > 0) {
          const delay = Math.min(30_000, baseDelay * 2 ** (i - 1)) * (0.8 + 0.4 * Math.random());
          await new Promise((r) => setTimeout(r, delay));
        }
        result = await attempt(payload);
      }
      deliveries.inc({ result: result === "ok" ? "delivered" : "failed" });
      if (result !== "ok") log.error("alert webhook gave up on an alert", { origin });
    }
    worker = null;
  };

  return {
    send(body) {
      if (queue.length >= 100) {
        queue.shift();
        deliveries.inc({ result: "dropped" });
        log.warn("alert webhook backlog full; dropped the oldest alert", { origin });
      }
      queue.push(JSON.stringify(body));
      worker ??= run();
    },
    async drain(ms) {
      if (worker) await Promise.race([worker, new Promise((r) => setTimeout(r, ms))]);
    },
  };
}

export function createAlerts(options: {
  history: History;
  log: Logger;
  metrics: Metrics;
  webhook: Webhook | null;
}): Alerts {
  const { history, log, webhook } = options;
  const open = new Map<string, AlertRecord>();
  const raised = options.metrics.counter("local", {
    name: "streamplay_anomaly_alerts_total",
    help: "Anomaly alerts raised, by series",
    labelNames: ["series"],
  });
  options.metrics.gauge("local", {
    name: "streamplay_anomalies_active",
    help: "Anomaly alerts open now",
    collect() {
      this.set(open.size);
    },
  });

  const store = async (sql: string, params: DuckDBValue[]) => {
    try {
      await history.execute(sql, params);
    } catch (err) {
      log.error("could not store an anomaly alert", { error: errorMessage(err) });
    }
  };

  return {
    async open(a, unit) {
      const record: AlertRecord = {
        id: alertId(a.detected_at),
        series: a.series,
        unit,
        direction: a.direction,
        value: a.value,
        peak: a.peak,
        baseline: a.baseline,
        expected_low: a.expected_low,
        expected_high: a.expected_high,
        z: a.z,
        since: iso(a.since)!,
        detected_at: iso(a.detected_at)!,
        resolved_at: null,
        message: alertMessage(a, unit),
      };
      open.set(a.series, record);
      raised.inc({ series: a.series });
      log.warn("anomaly", { series: a.series, message: record.message });
      webhook?.send({ type: "anomaly_alert", ...record });
      await store(
        `INSERT INTO anomaly_alerts VALUES
           ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, $13)`,
        [
          record.id,
          a.series,
          unit,
          a.direction,
          a.value,
          a.peak,
          a.baseline,
          a.expected_low,
          a.expected_high,
          a.z,
          tsValue(a.since),
          tsValue(a.detected_at),
          record.message,
        ],
      );
      return record;
    },

    async resolve(a, resolvedAt) {
      const record = open.get(a.series);
      if (!record) return null;
      open.delete(a.series);
      const done = { ...record, peak: a.peak, resolved_at: iso(resolvedAt)! };
      webhook?.send({ type: "anomaly_resolved", ...done });
      await store(`UPDATE anomaly_alerts SET resolved_at = $1, peak = $2 WHERE id = $3`, [
        tsValue(resolvedAt),
        a.peak,
        record.id,
      ]);
      return done;
    },

    active: () => [...open.values()],

    async recent(sinceMs, limit) {
      const rows = await history.query<Record<string, unknown>>(
        `SELECT id, series, unit, direction, value, peak, baseline, expected_low, expected_high, z,
           epoch_ms(since) AS since, epoch_ms(detected_at) AS detected_at,
           epoch_ms(resolved_at) AS resolved_at, message
         FROM anomaly_alerts WHERE detected_at >= $1 ORDER BY detected_at DESC LIMIT $2`,
        [tsValue(sinceMs), limit],
      );
      return rows.map((r) => ({
        id: String(r.id),
        series: String(r.series),
        unit: String(r.unit ?? ""),
        direction: r.direction as "high" | "low",
        value: Number(r.value),
        peak: Number(r.peak),
        baseline: Number(r.baseline),
        expected_low: Number(r.expected_low),
        expected_high: Number(r.expected_high),
        z: Number(r.z),
        since: iso(r.since)!,
        detected_at: iso(r.detected_at)!,
        resolved_at: iso(r.resolved_at),
        message: String(r.message),
      }));
    },

    drain: (ms) => webhook?.drain(ms) ?? Promise.resolve(),
  };
}
