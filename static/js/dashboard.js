// /dashboard: live platform metrics over /ws/dashboard (KPIs, charts, feed, alerts), and stored
// history from /api/metrics/history for the chosen time range.
import { api, el, fmtBytes, fmtNumber, renderNav, wsUrl } from "./api.js";
import { lineChart } from "./charts.js";
import { CHARTS } from "./dashboard_charts.js";

renderNav();

const LIVE_SECONDS = 300;

const charts = CHARTS.map(({ id, title, series, ...options }) => ({
  series,
  chart: lineChart(document.getElementById(id), {
    title,
    series: series.map((s) => s[1]),
    maxPoints: LIVE_SECONDS,
    ...options,
  }),
}));
const ALL_SERIES = [...new Set(CHARTS.flatMap((c) => c.series.map((x) => x[0])))];
const scaled = (v, factor) => (v === null || v === undefined ? null : v * (factor ?? 1));

const KPIS = [
  ["cpu", "CPU", (v) => `${fmtNumber(v.cpu_percent, 1)}%`],
  ["memory", "Memory", (v) => `${fmtNumber(v.memory_percent, 1)}%`],
  ["queued", "Queued", (v) => fmtNumber(v.jobs_queued)],
  [
    "running",
    "Running / slots",
    (v) => `${fmtNumber(v.jobs_running)} / ${fmtNumber(v.worker_slots)}`,
  ],
  ["started", "Started/s", (v) => fmtNumber(v.jobs_started_per_s, 1)],
  ["failures", "Failures/s (1 min)", (v) => fmtNumber(v.job_failure_rate, 2)],
  [
    "wait",
    "Queue wait",
    (v) => v.queue_wait_s === null ? "–" : `${fmtNumber(v.queue_wait_s, 3)} s`,
  ],
  ["sessions", "Sessions", (v) => fmtNumber(v.sessions_active ?? 0)],
  ["viewers", "Viewers", (v) => fmtNumber(v.session_viewers ?? 0)],
  ["fps", "Session fps", (v) => v.session_fps === null ? "–" : fmtNumber(v.session_fps, 1)],
  ["disk", "Disk free", (v) => fmtBytes(v.disk_free_bytes)],
];
const RAW = {
  cpu: "cpu_percent",
  memory: "memory_percent",
  queued: "jobs_queued",
  running: "jobs_running",
  started: "jobs_started_per_s",
  failures: "job_failure_rate",
  wait: "queue_wait_s",
  sessions: "sessions_active",
  viewers: "session_viewers",
  fps: "session_fps",
  disk: "disk_free_bytes",
};

let live = true;

function showKpis(values) {
  document.getElementById("kpis").replaceChildren(...KPIS.map(([key, label, text]) =>
    el(
      "div",
      { class: "kpi", dataset: { kpi: key, value: String(values[RAW[key]] ?? "") } },
      el("div", { class: "v" }, text(values)),
      el("div", { class: "k" }, label),
    )
  ));
}

function showPressure(p) {
  const box = document.getElementById("pressure");
  box.className = `status ${p.is_available ? "ok" : "failed"}`;
  box.dataset.available = String(p.is_available);
  box.textContent = p.is_available ? "accepting work" : `refusing work: ${p.reason}`;
  box.title = p.message;
}

function alertCard(a) {
  return el(
    "div",
    {
      class: `alert-card ${a.resolved_at ? "resolved" : "active"}`,
      dataset: { alert: a.id, series: a.series },
    },
    el("strong", {}, a.resolved_at ? "Resolved: " : "Anomaly: "),
    a.message,
    a.resolved_at ? el("span", { class: "muted" }, ` (resolved ${timeOf(a.resolved_at)})`) : "",
  );
}

function showActiveAlerts(list) {
  const box = document.getElementById("alerts");
  const shown = new Set(
    [...box.querySelectorAll(".alert-card.active")].map((n) => n.dataset.alert),
  );
  for (const a of list) if (!shown.has(a.id)) box.prepend(alertCard(a));
}

function onAlert(a, resolved) {
  const box = document.getElementById("alerts");
  box.querySelector(`[data-alert="${a.id}"]`)?.remove();
  box.prepend(alertCard(a));
  if (resolved) {
    // Resolved alerts fade from the banner after a minute; they stay in the recent list.
    setTimeout(() => box.querySelector(`[data-alert="${a.id}"].resolved`)?.remove(), 60_000);
  }
  loadAnalytics();
}

const timeOf = (iso) => new Date(iso).toLocaleTimeString();

/** Changes shown, so one sent live and again among the recent ones is shown once. */
const shownChanges = new Set();

function addChange(c) {
  const key = `${c.job_id}|${c.id}|${c.action}|${c.ts}`;
  if (shownChanges.has(key)) return;
  shownChanges.add(key);
  const feed = document.getElementById("feed");
  const cls = c.action === "failed" ? "error" : c.action === "started" ? "" : "muted";
  const id = c.job_id
    ? el("a", { href: `/bench/jobs/${encodeURIComponent(c.job_id)}` }, c.id)
    : c.id;
  feed.prepend(
    el(
      "div",
      { class: `change ${cls}`, dataset: { kind: c.kind, action: c.action } },
      `${timeOf(c.ts)} ${c.kind} ${c.job_type ? `(${c.job_type}) ` : ""}${c.action} `,
      id,
      c.error ? ` — ${c.error}` : "",
    ),
  );
  while (feed.childElementCount > 200) feed.lastElementChild.remove();
}

function showWorkers(workers) {
  document.querySelector("#workers tbody").replaceChildren(...workers.map((w) =>
    el(
      "tr",
      {},
      el("td", { class: "mono" }, w.id),
      el("td", {}, w.role),
      el("td", {}, fmtNumber(w.slots)),
      el("td", {}, fmtNumber(w.running)),
      el("td", {}, `${fmtNumber(w.cpu_percent, 1)}%`),
      el("td", {}, `${fmtNumber(w.memory_percent, 1)}%`),
    )
  ));
}

function pushLive(update) {
  const ts = Date.parse(update.ts) / 1000;
  for (const { series, chart } of charts) {
    chart.push(ts, series.map(([name, , factor]) => scaled(update.values[name], factor)));
  }
}

function onUpdate(update) {
  showKpis(update.values);
  showPressure(update.pressure);
  showActiveAlerts(update.alerts);
  showWorkers(update.workers);
  document.getElementById("feed-note").textContent = update.feed_sampled
    ? "(busy: showing a sample)"
    : "";
  if (live) pushLive(update);
}

function connect() {
  const conn = document.getElementById("conn");
  const ws = new WebSocket(wsUrl("/ws/dashboard"));
  ws.onopen = () => {
    conn.className = "status ok";
    conn.textContent = "live";
  };
  ws.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    if (msg.type === "metrics_update") onUpdate(msg);
    else if (msg.type === "content_change") addChange(msg);
    else if (msg.type === "recent_changes") msg.changes.forEach(addChange);
    else if (msg.type === "anomaly_alert") onAlert(msg, false);
    else if (msg.type === "anomaly_resolved") onAlert(msg, true);
  };
  ws.onclose = () => {
    conn.className = "status failed";
    conn.textContent = "disconnected, retrying";
    setTimeout(connect, 2000);
  };
}

/** Loads stored history into the charts; `seed` keeps live mode (fills the last 5 min). */
async function loadHistory(sinceMs, untilMs, seed) {
  const q = new URLSearchParams({
    series: ALL_SERIES.join(","),
    since: new Date(sinceMs).toISOString(),
    until: new Date(untilMs).toISOString(),
  });
  const h = await api(`/api/metrics/history?${q}`);
  const xs = h.timestamps.map((t) => Date.parse(t) / 1000 + h.step_s / 2);
  for (const { series, chart } of charts) {
    const ys = series.map(([name, , factor]) => h.series[name].map((v) => scaled(v, factor)));
    if (seed) {
      // Only buckets with data, so live points continue the line.
      const keep = xs.map((_, i) => ys.some((y) => y[i] !== null));
      chart.set(xs.filter((_, i) => keep[i]), ...ys.map((y) => y.filter((_, i) => keep[i])));
    } else {
      chart.set(xs, ...ys);
    }
  }
  document.getElementById("kpis").dataset.range = seed ? "live" : `${h.since}/${h.until}`;
}

const RANGES = { "15m": 900, "1h": 3600, "6h": 21_600, "24h": 86_400, "7d": 604_800 };
const form = document.getElementById("range");
form.elements.range.addEventListener("change", () => {
  const custom = form.elements.range.value === "custom";
  for (const n of form.querySelectorAll(".custom")) n.classList.toggle("hidden", !custom);
});
form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const errorBox = document.getElementById("range-error");
  errorBox.textContent = "";
  const choice = form.elements.range.value;
  const now = Date.now();
  try {
    if (choice === "live") {
      live = true;
      await loadHistory(now - LIVE_SECONDS * 1000, now, true);
    } else {
      live = false;
      const since = choice === "custom"
        ? Date.parse(form.elements.since.value)
        : now - RANGES[choice] * 1000;
      const until = choice === "custom" ? Date.parse(form.elements.until.value) : now;
      if (Number.isNaN(since) || Number.isNaN(until)) throw new Error("Pick both since and until");
      await loadHistory(since, until, false);
    }
  } catch (err) {
    errorBox.textContent = err.message;
  }
});

async function loadAnalytics() {
  let a;
  try {
    a = await api("/api/analytics");
  } catch {
    return;
  }
  document.getElementById("forecasts").replaceChildren(...a.forecasts.map((f) =>
    el(
      "div",
      { class: "forecast", dataset: { kind: f.kind, status: f.status } },
      el("span", { class: `status ${f.status === "warning" ? "degraded" : f.status}` }, f.status),
      ` ${f.message}`,
    )
  ));
  const recent = document.getElementById("recent-alerts");
  if (a.anomalies.recent.length) recent.replaceChildren(...a.anomalies.recent.map(alertCard));
}

connect();
loadHistory(Date.now() - LIVE_SECONDS * 1000, Date.now(), true).catch(() => {});
loadAnalytics();
setInterval(loadAnalytics, 30_000);
