// The view of one job, shared by /bench (live) and /bench/jobs/:id (stored, then live): status,
// progress, KPIs, charts, result (error screenshots, sizing report) and logs.
import {
  el,
  fmtBytes,
  fmtDuration,
  fmtNumber,
  fmtTime,
  jobDuration,
  statusBadge,
  token,
} from "./api.js";
import { lineChart } from "./charts.js";
import { renderSizing } from "./sizing_view.js";

/** An artifact as an object URL (fetched with the token: an <img> cannot send it). */
export async function artifactUrl(jobId, path) {
  const headers = token() ? { authorization: `Bearer ${token()}` } : {};
  const res = await fetch(`/api/jobs/${encodeURIComponent(jobId)}/artifacts/${path}`, { headers });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return URL.createObjectURL(await res.blob());
}

const p75 = (p) => (p ? fmtNumber(p.p75, p.p75 < 10 ? 3 : 0) : "–");

/** "12 (http 6, console 6) · 56 ignored": the total, by kind, and what `ignore_errors` left out. */
function errorSummary(errors = {}) {
  const kinds = Object.entries(errors)
    .filter(([k, v]) => k !== "total" && k !== "ignored" && v > 0)
    .map(([k, v]) => `${k} ${fmtNumber(v)}`).join(", ");
  return `${fmtNumber(errors.total)}${kinds ? ` (${kinds})` : ""}` +
    (errors.ignored ? ` · ${fmtNumber(errors.ignored)} ignored` : "");
}

export function createJobView(root) {
  root.replaceChildren(
    el(
      "div",
      { class: "card" },
      el(
        "div",
        { class: "row", style: "justify-content: space-between" },
        el("h3", { id: "jv-title" }, "Job"),
        el("span", { id: "jv-status" }),
      ),
      el("div", { class: "progress" }, el("div", { id: "jv-progress" })),
      el("div", { id: "jv-progress-text", class: "muted", style: "margin-top:6px" }, ""),
      el("div", { id: "jv-levels", class: "levels", style: "margin-top:10px" }),
      el("div", { id: "jv-kpis", class: "kpis", style: "margin-top:10px" }),
    ),
    el(
      "div",
      { class: "grid two", style: "margin-top:14px" },
      el("div", { class: "card", dataset: { for: "http" } }, el("div", { id: "jv-chart-rps" })),
      el("div", { class: "card", dataset: { for: "http" } }, el("div", { id: "jv-chart-latency" })),
      el(
        "div",
        { class: "card hidden", dataset: { for: "browser" } },
        el("div", { id: "jv-chart-vitals" }),
      ),
      el(
        "div",
        { class: "card hidden", dataset: { for: "browser" } },
        el("div", { id: "jv-chart-users" }),
      ),
      el("div", { class: "card" }, el("div", { id: "jv-chart-cpu" })),
      el("div", { class: "card" }, el("div", { id: "jv-chart-mem" })),
      el("div", { class: "card" }, el("div", { id: "jv-chart-net" })),
    ),
    el("div", { id: "jv-result", class: "card hidden", style: "margin-top:14px" }),
    el("div", { id: "jv-sizing", class: "card hidden", style: "margin-top:14px" }),
    el("div", { id: "jv-errors", class: "card hidden", style: "margin-top:14px" }),
    el(
      "div",
      { class: "card", style: "margin-top:14px" },
      el("h3", {}, "Log"),
      el("div", { id: "jv-log", class: "log mono" }),
    ),
  );
  const $ = (id) => root.querySelector(`#${id}`);
  const charts = {
    rps: lineChart($("jv-chart-rps"), { title: "Throughput (req/s)", series: ["req/s"] }),
    latency: lineChart($("jv-chart-latency"), {
      title: "Latency (ms)",
      series: ["p50", "p95", "p99"],
      unit: "",
    }),
    vitals: lineChart($("jv-chart-vitals"), {
      title: "Web vitals p75 (ms)",
      series: ["LCP", "FCP", "TTFB", "INP"],
    }),
    users: lineChart($("jv-chart-users"), {
      title: "Users and scenario iterations",
      series: ["active users", "iterations"],
    }),
    cpu: lineChart($("jv-chart-cpu"), {
      title: "CPU cores used",
      series: ["machine", "job processes"],
    }),
    mem: lineChart($("jv-chart-mem"), {
      title: "Memory used (GB)",
      series: ["machine", "job processes"],
    }),
    net: lineChart($("jv-chart-net"), { title: "Network (KB/s)", series: ["in", "out"] }),
  };
  let job = null;
  let levels = [];

  /** A bar per sweep level, filled from progress events. */
  const showLevels = (list) => {
    levels = list;
    $("jv-levels").replaceChildren(
      ...(list.length > 1 ? list : []).map((n, i) =>
        el(
          "div",
          { class: "level", dataset: { level: String(i) } },
          el("span", { class: "muted" }, `level ${i + 1}: ${n} ${isBrowser() ? "users" : "conn."}`),
          el("div", { class: "progress" }, el("div")),
        )
      ),
    );
  };
  const fillLevel = (index, value) => {
    $("jv-levels").querySelectorAll(".level").forEach((node, i) => {
      const v = i < index ? 1 : i === index ? value : 0;
      node.querySelector(".progress > div").style.width = `${Math.round(v * 100)}%`;
      node.dataset.done = String(v >= 1);
    });
  };
  const isBrowser = () => job?.type === "browser-bench";

  const kpi = (k, v) =>
    el(
      "div",
      { class: "kpi", dataset: { kpi: k } },
      el("div", { class: "v" }, v),
      el("div", { class: "k" }, k),
    );

  const showStatus = (status) => {
    $("jv-status").replaceChildren(statusBadge(status));
    root.dataset.status = status;
  };

  const showResult = (result) => {
    if (!result || typeof result !== "object") return;
    const box = $("jv-result");
    box.classList.remove("hidden");
    const rows = [];
    if (result.requests !== undefined) {
      rows.push(
        ["Requests", fmtNumber(result.requests)],
        ["Throughput", `${fmtNumber(result.rps, 1)} req/s`],
        ["Transferred", `${fmtBytes(result.bytes)} (${fmtBytes(result.throughput_bytes_per_s)}/s)`],
        [
          "Errors",
          `${fmtNumber(result.errors?.total)} ${
            JSON.stringify(
              Object.fromEntries(
                Object.entries(result.errors ?? {}).filter(([k, v]) => k !== "total" && v > 0),
              ),
            )
          }`,
        ],
        [
          "Status codes",
          Object.entries(result.status_counts ?? {}).map(([k, v]) => `${k}: ${fmtNumber(v)}`).join(
            ", ",
          ) || "–",
        ],
        [
          "Latency (ms)",
          ["p50", "p90", "p95", "p99", "max", "mean"].map((p) => `${p} ${result.latency_ms?.[p]}`)
            .join(" · "),
        ],
      );
    }
    if (result.levels && result.browser_per_user !== undefined) {
      const last = result.levels[result.levels.length - 1];
      rows.push(
        ["Sessions", result.browser_per_user ? "a browser per user" : "a browser context per user"],
        [
          "Iterations",
          result.levels.map((l) => `${l.concurrency} users: ${l.iterations}`).join(" · "),
        ],
        [
          "Web vitals p75",
          `LCP ${p75(last?.lcp_ms)} ms · FCP ${p75(last?.fcp_ms)} ms · TTFB ${
            p75(last?.ttfb_ms)
          } ms · CLS ${p75(last?.cls)} · INP ${p75(last?.inp_ms)} ms`,
        ],
        ["Errors", errorSummary(result.errors)],
        ["Screenshots", fmtNumber(result.screenshots)],
      );
      // The headline says what the result says (not the last progress tick's count).
      $("jv-kpis").replaceChildren(
        kpi("users", fmtNumber(last?.concurrency)),
        kpi("iterations", fmtNumber(result.levels.reduce((a, l) => a + l.iterations, 0))),
        kpi("LCP p75 ms", last?.lcp_ms ? fmtNumber(last.lcp_ms.p75) : "–"),
        kpi("errors", fmtNumber(result.errors?.total)),
      );
    }
    if (result.resources) {
      const r = result.resources;
      rows.push(
        ["CPU cores", `avg ${r.cpu_cores_avg} · max ${r.cpu_cores_max}`],
        ["Memory", `avg ${fmtBytes(r.mem_used_avg_bytes)} · max ${fmtBytes(r.mem_used_max_bytes)}`],
        ["Network", `in ${fmtBytes(r.net_rx_bytes)} · out ${fmtBytes(r.net_tx_bytes)}`],
      );
      if (r.proc_mem_max_bytes !== undefined) {
        rows.push([
          "Job processes",
          `CPU avg ${r.proc_cpu_cores_avg} cores · memory avg ${
            fmtBytes(r.proc_mem_avg_bytes)
          } · max ${fmtBytes(r.proc_mem_max_bytes)}`,
        ]);
      }
    }
    if (rows.length === 0) rows.push(["Result", JSON.stringify(result)]);
    box.replaceChildren(
      el("h3", {}, "Result"),
      el(
        "dl",
        { class: "props", id: "jv-result-props" },
        rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { class: "mono" }, v)]),
      ),
    );
    if (result.requests !== undefined) {
      $("jv-kpis").replaceChildren(
        kpi("requests", fmtNumber(result.requests)),
        kpi("req/s", fmtNumber(result.rps, 1)),
        kpi("p95 ms", result.latency_ms?.p95),
        kpi("errors", fmtNumber(result.errors?.total)),
      );
    }
    if (result.levels?.length > 1 || result.browser_per_user !== undefined) showLevelTable(result);
    if (result.error_log) showErrors(result.error_log);
    if (result.sizing) {
      $("jv-sizing").classList.remove("hidden");
      renderSizing($("jv-sizing"), result.sizing);
    }
  };

  /** Each level's own figures (a sweep, or a browser run). */
  const showLevelTable = (result) => {
    const browser = result.browser_per_user !== undefined;
    const head = browser
      ? [
        "users",
        "iterations",
        "visits",
        "LCP p75",
        "FCP p75",
        "TTFB p75",
        "CLS p75",
        "INP p75",
        "JS heap p75",
        "requests",
        "errors",
      ]
      : ["connections", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors"];
    const rows = result.levels.map((l) =>
      browser
        ? [
          l.concurrency,
          fmtNumber(l.iterations),
          fmtNumber(l.visits),
          p75(l.lcp_ms),
          p75(l.fcp_ms),
          p75(l.ttfb_ms),
          p75(l.cls),
          p75(l.inp_ms),
          l.js_heap_bytes ? fmtBytes(l.js_heap_bytes.p75) : "–",
          fmtNumber(l.requests_total),
          fmtNumber(l.errors.total),
        ]
        : [
          l.concurrency,
          fmtNumber(l.requests),
          fmtNumber(l.rps, 1),
          l.latency_ms.p50,
          l.latency_ms.p95,
          l.latency_ms.p99,
          fmtNumber(l.errors.total),
        ]
    );
    $("jv-result").append(
      el("h4", {}, "Per level" + (browser ? " (times in ms)" : "")),
      el(
        "table",
        { class: "compact", id: "jv-level-table" },
        el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
        el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, String(c)))))),
      ),
    );
  };

  /**
   * Each distinct error once, with how often and when it happened and the screenshot of the
   * first time; collapsed when there are many. (Results before grouping hold one entry per
   * occurrence: each counts once.)
   */
  let shownErrors = "";
  const showErrors = (groups) => {
    const box = $("jv-errors");
    const key = JSON.stringify(groups.map((g) => [g.count, g.last_ts, g.screenshot]));
    if (groups.length === 0 || key === shownErrors) return;
    shownErrors = key;
    box.classList.remove("hidden");
    const occurrences = groups.reduce((a, g) => a + (g.count ?? 1), 0);
    const list = el("div", { class: "shots", id: "jv-error-shots" });
    const details = el(
      "details",
      { id: "jv-error-groups", open: groups.length <= 3 },
      el(
        "summary",
        {},
        el("h3", { style: "display:inline" }, "Errors"),
        ` ${fmtNumber(groups.length)} distinct, ${fmtNumber(occurrences)} in all`,
      ),
      list,
    );
    box.replaceChildren(details);
    for (const g of groups) {
      const count = g.count ?? 1;
      const first = g.first_ts ?? g.ts;
      const last = g.last_ts ?? first;
      const when = count > 1
        ? `first ${new Date(first).toLocaleTimeString()}, last ${
          new Date(last).toLocaleTimeString()
        }`
        : new Date(first).toLocaleTimeString();
      const levels = g.levels ?? (g.level ? [g.level] : []);
      const item = el(
        "figure",
        { class: "shot", dataset: { kind: g.kind, count: String(count) } },
        el(
          "figcaption",
          {},
          el("span", { class: "status failed" }, g.kind),
          el("strong", { class: "count" }, ` ×${fmtNumber(count)}`),
          ` · ${when}` + (levels.length ? ` · at ${levels.join(", ")} users` : ""),
          el("div", { class: "mono" }, g.message),
          g.url ? el("div", { class: "muted mono" }, g.url) : null,
        ),
      );
      list.append(item);
      if (g.screenshot && job) {
        artifactUrl(job.id, g.screenshot).then((src) => {
          const link = el(
            "a",
            { href: src, target: "_blank", title: g.screenshot },
            el("img", { src, alt: `${g.kind} error screenshot`, loading: "lazy" }),
          );
          item.prepend(link);
        }).catch(() => {});
      }
    }
  };

  const appendLog = (e) => {
    const log = $("jv-log");
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.append(
      el(
        "div",
        { class: e.level },
        `${new Date(e.ts).toLocaleTimeString()} ${e.level.padEnd(5)} ${e.message}`,
      ),
    );
    if (atBottom) log.scrollTop = log.scrollHeight;
  };

  return {
    setJob(j) {
      const first = job === null;
      job = j;
      for (const card of root.querySelectorAll("[data-for]")) {
        card.classList.toggle(
          "hidden",
          card.dataset.for !== (j.type === "browser-bench" ? "browser" : "http"),
        );
      }
      if (first) showLevels(j.params?.levels ?? []);
      $("jv-title").replaceChildren(`${j.type} · `, el("span", { class: "mono" }, j.id));
      showStatus(j.status);
      const url = j.params?.url ? ` · ${j.params.method ?? "GET"} ${j.params.url}` : "";
      $("jv-progress-text").textContent = `created ${fmtTime(j.created_at)}${url}` +
        (j.finished_at ? ` · ran ${fmtDuration(jobDuration(j))}` : "");
      if (j.status === "succeeded") {
        $("jv-progress").style.width = "100%";
        fillLevel(levels.length, 0);
        showResult(j.result);
      }
      if (j.error) $("jv-progress-text").textContent += ` · error: ${j.error}`;
    },
    /** Applies one job event (from the WebSocket or from stored history). */
    onEvent(e) {
      const ts = Date.parse(e.ts) / 1000;
      if (e.type === "status") {
        showStatus(e.status);
        if (e.error) $("jv-progress-text").textContent = `${e.status}: ${e.error}`;
      } else if (e.type === "progress") {
        $("jv-progress").style.width = `${Math.round(e.value * 100)}%`;
        $("jv-progress-text").textContent = e.text;
        if (e.level) fillLevel(e.level.index, e.level.value);
        const b = e.browser;
        if (b) {
          charts.vitals.push(ts, [
            b.vitals.lcp_ms,
            b.vitals.fcp_ms,
            b.vitals.ttfb_ms,
            b.vitals.inp_ms,
          ]);
          charts.users.push(ts, [b.users_active, b.iterations]);
          $("jv-kpis").replaceChildren(
            kpi("users", fmtNumber(b.users_active)),
            kpi("iterations", fmtNumber(b.iterations)),
            kpi("LCP p75 ms", b.vitals.lcp_ms === null ? "–" : fmtNumber(b.vitals.lcp_ms)),
            kpi("errors", fmtNumber(b.errors)),
          );
        }
        const s = e.stats;
        if (s) {
          charts.rps.push(ts, [s.rps]);
          charts.latency.push(ts, [s.latency_ms.p50, s.latency_ms.p95, s.latency_ms.p99]);
          $("jv-kpis").replaceChildren(
            kpi("requests", fmtNumber(s.requests)),
            kpi("req/s", fmtNumber(s.rps)),
            kpi("p95 ms", s.latency_ms.p95.toFixed(2)),
            kpi("errors", fmtNumber(s.errors)),
          );
        }
      } else if (e.type === "sample") {
        charts.cpu.push(ts, [e.cpu_cores, e.proc_cpu_cores ?? null]);
        charts.mem.push(ts, [
          e.mem_used_bytes / 1e9,
          e.proc_mem_bytes === undefined ? null : e.proc_mem_bytes / 1e9,
        ]);
        const seconds = e.interval_s || 1;
        charts.net.push(ts, [e.net_rx_bytes / 1024 / seconds, e.net_tx_bytes / 1024 / seconds]);
      } else if (e.type === "log") {
        appendLog(e);
      } else if (e.type === "result") {
        $("jv-progress").style.width = "100%";
        showResult(e.result);
      }
    },
    get job() {
      return job;
    },
  };
}
