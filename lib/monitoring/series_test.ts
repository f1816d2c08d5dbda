/**
 * Series over live items (sessions, streams) are absent while none is live, so the end of the
 * last session is not read as a drop and alerted on.
 */
import assert from "node:assert/strict";
import { SERIES, type SeriesContext } from "./series.ts";

const context = (gauges: Record<string, number>): SeriesContext => ({
  machine: {} as SeriesContext["machine"],
  platform: {} as SeriesContext["platform"],
  gauge: (name) => gauges[name] ?? null,
  rate: () => null,
  histogram: () => null,
});
const value = (name: string, gauges: Record<string, number>) =>
  SERIES.find((s) => s.name === name)!.value(context(gauges));

Deno.test("buffer health is the worst live one's, and absent (not 0) when none is live", () => {
  // prom-client resets an unlabelled gauge to 0 when nothing sets it.
  assert.equal(
    value("session_buffer_health", {
      streamplay_sessions_active: 0,
      streamplay_session_buffer_health_ratio: 0,
    }),
    null,
  );
  assert.equal(
    value("session_buffer_health", {
      streamplay_sessions_active: 2,
      streamplay_session_buffer_health_ratio: 0.8,
    }),
    0.8,
  );
  assert.equal(
    value("stream_buffer_health", {
      streamplay_streams_active: 0,
      streamplay_stream_buffer_health_ratio: 0,
    }),
    null,
  );
  assert.equal(
    value("stream_buffer_health", {
      streamplay_streams_active: 1,
      streamplay_stream_buffer_health_ratio: 0.5,
    }),
    0.5,
  );
});
