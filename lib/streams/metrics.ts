/**
 * The video streams of this process as shared metrics (summed over every process by
 * `lib/monitoring/cluster.ts`), under the names `lib/monitoring/series.ts` reads.
 */
import type { Metrics } from "../monitoring/metrics.ts";
import type { StreamHost } from "./host.ts";
import type { StreamStatus } from "./store.ts";
import { type Protocol, PROTOCOLS } from "./options.ts";

/**
 * Values are read from the streams' own counters when metrics are collected (once a second and at
 * each scrape), so encoding gains no work; the totals of ended streams are kept so the counters
 * never go down.
 */
export function watchStreams(metrics: Metrics, host: StreamHost): () => void {
  const ended = new Map<Protocol, { frames: number; bytes: number }>(
    PROTOCOLS.map((p) => [p, { frames: 0, bytes: 0 }]),
  );

  /** The streams' current status, read once per collection. */
  let cache: { at: number; list: StreamStatus[] } | null = null;
  const current = () => {
    const now = Date.now();
    if (!cache || now - cache.at > 100) {
      cache = {
        at: now,
        list: host.list().map((s) => s.status()),
      };
    }
    return cache.list;
  };
  const perProtocol = (pick: (s: StreamStatus) => number, base?: (p: Protocol) => number) =>
    PROTOCOLS.map((protocol) => ({
      protocol,
      value: current().filter((s) => s.protocol === protocol).reduce(
        (sum, s) => sum + pick(s),
        base?.(protocol) ?? 0,
      ),
    }));

  metrics.gauge("shared", {
    name: "streamplay_streams_active",
    help: "Live video streams (HLS, DASH, RTMP)",
    labelNames: ["protocol"],
    collect() {
      for (const { protocol, value } of perProtocol(() => 1)) this.set({ protocol }, value);
    },
  });
  metrics.counter("shared", {
    name: "streamplay_stream_frames_total",
    help: "Frames encoded into live video streams",
    labelNames: ["protocol"],
    collect() {
      this.reset();
      for (
        const { protocol, value } of perProtocol(
          (s) => s.metrics.frames_sent,
          (p) => ended.get(p)!.frames,
        )
      ) this.inc({ protocol }, value);
    },
  });
  metrics.counter("shared", {
    name: "streamplay_stream_bytes_total",
    help: "Bytes of video encoded by live streams (segments, or the RTMP push)",
    labelNames: ["protocol"],
    collect() {
      this.reset();
      for (
        const { protocol, value } of perProtocol(
          (s) => s.metrics.bytes_encoded,
          (p) => ended.get(p)!.bytes,
        )
      ) this.inc({ protocol }, value);
    },
  });
  metrics.gauge("shared", {
    name: "streamplay_stream_buffer_health_ratio",
    help: "Share of frames due that reached the encoder in time, worst live stream (0 to 1)",
    aggregator: "min",
    collect() {
      this.reset();
      const list = current();
      if (list.length > 0) this.set(Math.min(...list.map((s) => s.metrics.buffer_health)) / 100);
    },
  });

  return host.onStop((final) => {
    const totals = ended.get(final.protocol)!;
    totals.frames += final.metrics.frames_sent;
    totals.bytes += final.metrics.bytes_encoded;
    cache = null;
  });
}
