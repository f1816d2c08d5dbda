// The dashboard's charts: each one's element, title, the series it plots (series name, label,
// scale factor) and how its values read. Its own module so tests can draw them as the page does.
import { fmtSeconds } from "./charts.js";

export const CHARTS = [
  {
    id: "chart-queue",
    title: "Queue depth (jobs)",
    series: [["jobs_queued", "queued"], ["jobs_retrying", "retrying"]],
  },
  {
    id: "chart-throughput",
    title: "Throughput (jobs/s)",
    series: [
      ["jobs_started_per_s", "started"],
      ["jobs_succeeded_per_s", "succeeded"],
      ["jobs_failed_per_s", "failed"],
    ],
  },
  {
    id: "chart-times",
    title: "Wait and run time",
    series: [
      ["queue_wait_s", "wait"],
      ["queue_wait_p95_s", "wait p95"],
      ["run_time_s", "run"],
      ["run_time_p95_s", "run p95"],
    ],
    format: fmtSeconds,
  },
  {
    id: "chart-running",
    title: "Running jobs",
    series: [["jobs_running", "running"], ["worker_slots", "slots"]],
  },
  {
    id: "chart-machine",
    title: "CPU and memory (%)",
    series: [
      ["cpu_percent", "CPU"],
      ["memory_percent", "memory"],
      ["process_cpu_percent", "streamplay CPU (% of a core)"],
    ],
  },
  {
    id: "chart-sessions",
    title: "Sessions and viewers",
    series: [
      ["sessions_active", "sessions"],
      ["session_viewers", "viewers"],
      ["streams_active", "streams"],
    ],
  },
  {
    id: "chart-streams",
    title: "Frame rate (fps, left) and bitrate (Mbit/s, right)",
    series: [
      ["session_fps", "session fps"],
      ["stream_fps", "stream fps"],
      ["stream_bitrate_bps", "stream Mbit/s", 1e-6],
    ],
    right: { series: ["stream Mbit/s"] },
  },
];
