/**
 * The platform series as the API reads them: the catalog, and a stored time range downsampled
 * in DuckDB, checked first (known series, a range, a step giving at most 10 000 points).
 */
import { invalid } from "../core/errors.ts";
import type { Config } from "../core/config.ts";
import type { HistoryResult, Monitor } from "./monitor.ts";
import { SERIES, SERIES_NAMES } from "./series.ts";

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/;
const UNIT_S: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400 };
const MAX_POINTS = 10_000;
const MAX_SERIES = 50;

/** Seconds from "90", "30s", "5m", "1h", "7d"; null when it is not one. */
function parseDuration(text: string): number | null {
  const m = DURATION.exec(text.trim());
  return m ? Number(m[1]) * UNIT_S[m[2] ?? "s"]! : null;
}

type SeriesConfig = Pick<Config, "anomalySeries" | "metricsIntervalS" | "metricsRetentionDays">;

/** The series, their units, and whether anomaly detection watches each. */
export function seriesCatalog(config: SeriesConfig) {
  const watched = (name: string) =>
    config.anomalySeries.length === 0 || config.anomalySeries.includes(name);
  return {
    interval_s: config.metricsIntervalS,
    retention_days: config.metricsRetentionDays,
    series: SERIES.map((s) => ({
      name: s.name,
      unit: s.unit,
      description: s.description,
      watched: s.watch !== undefined && watched(s.name),
    })),
  };
}

/** What a history request asks: comma-separated series, an ISO range, a step ("5m"). */
export interface SeriesRequest {
  series: string;
  since?: string | undefined;
  until?: string | undefined;
  step?: string | undefined;
  agg: "avg" | "min" | "max";
}

/**
 * Stored series over a range (default: the last hour), one value per bucket of `step` (default:
 * about 300 points). 400 naming the field for an unknown series, an empty range or a bad step.
 */
export async function seriesHistory(
  deps: { monitor: Pick<Monitor, "history">; config: SeriesConfig },
  request: SeriesRequest,
): Promise<HistoryResult> {
  const series = [...new Set(request.series.split(",").map((s) => s.trim()).filter(Boolean))];
  const unknown = series.find((s) => !SERIES_NAMES.includes(s));
  if (unknown !== undefined || series.length === 0) {
    throw invalid(`series: "${unknown ?? ""}" is not a series; GET /api/metrics/series lists them`);
  }
  if (series.length > MAX_SERIES) throw invalid(`series: at most ${MAX_SERIES} series at once`);
  const untilMs = request.until ? Date.parse(request.until) : Date.now();
  const sinceMs = request.since ? Date.parse(request.since) : untilMs - 3_600_000;
  if (sinceMs >= untilMs) throw invalid("until: must be later than since");
  let stepS: number;
  if (request.step === undefined) {
    stepS = Math.max(deps.config.metricsIntervalS, Math.ceil((untilMs - sinceMs) / 1000 / 300));
  } else {
    const parsed = parseDuration(request.step);
    if (parsed === null || parsed < 1) {
      throw invalid(`step: "${request.step}" is not a duration of 1 s or more (e.g. 30s, 5m, 1h)`);
    }
    stepS = Math.round(parsed);
  }
  if ((untilMs - sinceMs) / 1000 / stepS > MAX_POINTS) {
    throw invalid(
      `step: ${stepS} s gives more than ${MAX_POINTS} points over this range; use a larger step`,
    );
  }
  return await deps.monitor.history({ series, sinceMs, untilMs, stepS, agg: request.agg });
}
