/**
 * The metrics window of one live session: totals since it started, and fps, bitrate, capture
 * latency and buffer health over the last seconds, moved on once a second (`everySecond`).
 */
import type { SessionMetrics, SessionSnapshot } from "./protocol.ts";

const WINDOW_S = 5;
const SAMPLE_EVERY_S = 5;

/** What the session's host side counted, for its final stats. */
export interface HostTotals {
  frames_captured: number;
  jpeg_bytes: number;
  frames_sent: number;
  bytes_sent: number;
  dropped_frames: number;
}

function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** How a session fares, from its metrics: what viewers get and how late. */
export function healthOf(metrics: SessionMetrics, failed: boolean): SessionSnapshot["health"] {
  const p95 = metrics.latency_ms.p95 ?? 0;
  return failed || metrics.buffer_health < 50 || p95 > 1000
    ? "unhealthy"
    : metrics.buffer_health < 90 || p95 > 250
    ? "degraded"
    : "healthy";
}

export class MetricsWindow {
  private framesCaptured = 0;
  private jpegBytes = 0;
  private framesSent = 0;
  private bytesSent = 0;
  private framesDropped = 0;
  private readonly captures: Array<[at: number, bytes: number]> = [];
  private readonly latencies: Array<[at: number, ms: number]> = [];
  /** Frames sent and dropped per second, this second first. */
  private readonly buckets: Array<{ sent: number; dropped: number }> = [{ sent: 0, dropped: 0 }];
  private ticks = 0;

  /** A frame captured at `ts` (ms since the epoch) arrived here, its JPEG `jpegBytes` long. */
  captured(ts: number, jpegBytes: number) {
    const now = Date.now();
    this.framesCaptured++;
    this.jpegBytes += jpegBytes;
    this.captures.push([now, jpegBytes]);
    this.latencies.push([now, now - ts]);
  }

  /** A viewer was sent a frame message `bytes` long. */
  sent(bytes: number) {
    this.framesSent++;
    this.bytesSent += bytes;
    this.buckets[0]!.sent++;
  }

  /** A busy viewer skipped a frame. */
  dropped() {
    this.framesDropped++;
    this.buckets[0]!.dropped++;
  }

  /**
   * Moves the window on by a second: the metrics now and, every few seconds, the `sample` event
   * that keeps them in the job's history.
   */
  everySecond(viewerCount: number): {
    metrics: SessionMetrics;
    sample: Record<string, unknown> | null;
  } {
    this.ticks++;
    const since = Date.now() - WINDOW_S * 1000;
    while (this.captures.length && this.captures[0]![0] < since) this.captures.shift();
    while (this.latencies.length && this.latencies[0]![0] < since) this.latencies.shift();
    this.buckets.unshift({ sent: 0, dropped: 0 });
    if (this.buckets.length > WINDOW_S) this.buckets.pop();
    const metrics = this.metrics(viewerCount);
    if (this.ticks % SAMPLE_EVERY_S !== 0) return { metrics, sample: null };
    return {
      metrics,
      sample: {
        type: "sample",
        fps: metrics.current_fps,
        bitrate_bps: metrics.current_bitrate,
        viewers: metrics.viewer_count,
        frames_captured: metrics.frames_captured,
        frames_sent: metrics.frames_sent,
        bytes_sent: metrics.bytes_sent,
        dropped_frames: metrics.dropped_frames,
        buffer_health: metrics.buffer_health,
        latency_p50_ms: metrics.latency_ms.p50,
      },
    };
  }

  metrics(viewerCount: number): SessionMetrics {
    const now = Date.now();
    const recent = this.captures.filter(([at]) => at >= now - 2000);
    const bytes = recent.reduce((a, [, b]) => a + b, 0);
    const offered = this.buckets.reduce((a, b) => a + b.sent + b.dropped, 0);
    const sent = this.buckets.reduce((a, b) => a + b.sent, 0);
    const latencies = this.latencies.map(([, ms]) => ms).sort((a, b) => a - b);
    return {
      current_fps: Math.round(recent.length / 2 * 10) / 10,
      current_bitrate: Math.round(bytes * 8 / 2),
      frames_captured: this.framesCaptured,
      frames_sent: this.framesSent,
      bytes_sent: this.bytesSent,
      viewer_count: viewerCount,
      dropped_frames: this.framesDropped,
      buffer_health: offered === 0 ? 100 : Math.round(sent / offered * 1000) / 10,
      latency_ms: { p50: percentile(latencies, 0.5), p95: percentile(latencies, 0.95) },
    };
  }

  totals(): HostTotals {
    return {
      frames_captured: this.framesCaptured,
      jpeg_bytes: this.jpegBytes,
      frames_sent: this.framesSent,
      bytes_sent: this.bytesSent,
      dropped_frames: this.framesDropped,
    };
  }
}
