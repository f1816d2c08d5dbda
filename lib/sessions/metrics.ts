/**
 * The live sessions of this process as shared metrics (summed over every process by
 * `lib/monitoring/cluster.ts`), under the names `lib/monitoring/series.ts` reads.
 */
import type { Metrics } from "../monitoring/metrics.ts";
import type { LiveSession, SessionHost } from "./host.ts";

interface Totals {
  captured: number;
  sent: number;
  dropped: number;
}

/**
 * Values are read from the sessions' own counters when metrics are collected (once a second and at
 * each scrape), so the frame path gains no work; the totals of ended sessions are kept so the
 * counters never go down.
 */
export function watchSessions(metrics: Metrics, host: SessionHost): () => void {
  const live = new Set<LiveSession>();
  const ended: Totals = { captured: 0, sent: 0, dropped: 0 };

  /** The sessions' current metrics, read once per collection. */
  let cache: { at: number; list: ReturnType<LiveSession["snapshot"]>["metrics"][] } | null = null;
  const current = () => {
    const now = Date.now();
    if (!cache || now - cache.at > 100) {
      cache = { at: now, list: [...live].map((s) => s.snapshot().metrics) };
    }
    return cache.list;
  };
  const total = (pick: (m: ReturnType<typeof current>[number]) => number, base: number) =>
    current().reduce((sum, m) => sum + pick(m), base);

  metrics.gauge("shared", {
    name: "streamplay_sessions_active",
    help: "Live browser sessions",
    collect() {
      this.set(live.size);
    },
  });
  metrics.gauge("shared", {
    name: "streamplay_session_viewers",
    help: "Viewers connected to live sessions",
    collect() {
      this.set(total((m) => m.viewer_count, 0));
    },
  });
  metrics.counter("shared", {
    name: "streamplay_session_frames_captured_total",
    help: "Screencast frames received from the sessions' browsers",
    collect() {
      this.reset();
      this.inc(total((m) => m.frames_captured, ended.captured));
    },
  });
  metrics.counter("shared", {
    name: "streamplay_session_frames_sent_total",
    help: "Frames sent to session viewers",
    collect() {
      this.reset();
      this.inc(total((m) => m.frames_sent, ended.sent));
    },
  });
  metrics.counter("shared", {
    name: "streamplay_session_frames_dropped_total",
    help: "Frames slow viewers skipped (they got the newest frame instead)",
    collect() {
      this.reset();
      this.inc(total((m) => m.dropped_frames, ended.dropped));
    },
  });
  metrics.gauge("shared", {
    name: "streamplay_session_buffer_health_ratio",
    help: "Share of frames offered to viewers that were sent, worst live session (0 to 1)",
    aggregator: "min",
    collect() {
      this.reset();
      const list = current();
      if (list.length > 0) this.set(Math.min(...list.map((m) => m.buffer_health)) / 100);
    },
  });

  return host.onStart((session) => {
    live.add(session);
    cache = null;
    session.subscribe({
      frame() {},
      end() {
        const m = session.snapshot().metrics;
        ended.captured += m.frames_captured;
        ended.sent += m.frames_sent;
        ended.dropped += m.dropped_frames;
        live.delete(session);
        cache = null;
      },
    });
  });
}
