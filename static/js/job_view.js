// The view of one job, shared by /bench (live) and /bench/jobs/:id (stored, then live):
// status, progress, KPIs, charts (throughput, latency, CPU, memory), result and logs.
import { el, fmtBytes, fmtDuration, fmtNumber, fmtTime, jobDuration, statusBadge } from "./api.js";
import { lineChart } from "./charts.js";

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
      el("div", { id: "jv-kpis", class: "kpis", style: "margin-top:10px" }),
    ),
    el(
      "div",
      { class: "grid two", style: "margin-top:14px" },
      el("div", { class: "card" }, el("div", { id: "jv-chart-rps" })),
      el("div", { class: "card" }, el("div", { id: "jv-chart-latency" })),
      el("div", { class: "card" }, el("div", { id: "jv-chart-cpu" })),
      el("div", { class: "card" }, el("div", { id: "jv-chart-mem" })),
    ),
    el("div", { id: "jv-result", class: "card hidden", style: "margin-top:14px" }),
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
    cpu: lineChart($("jv-chart-cpu"), { title: "CPU cores used", series: ["cores"] }),
    mem: lineChart($("jv-chart-mem"), { title: "Memory used (GB)", series: ["GB"] }),
  };
  let job = null;

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
    if (result.resources) {
      const r = result.resources;
      rows.push(
        ["CPU cores", `avg ${r.cpu_cores_avg} · max ${r.cpu_cores_max}`],
        ["Memory", `avg ${fmtBytes(r.mem_used_avg_bytes)} · max ${fmtBytes(r.mem_used_max_bytes)}`],
        ["Network", `in ${fmtBytes(r.net_rx_bytes)} · out ${fmtBytes(r.net_tx_bytes)}`],
      );
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
      job = j;
      $("jv-title").replaceChildren(`${j.type} · `, el("span", { class: "mono" }, j.id));
      showStatus(j.status);
      const url = j.params?.url ? ` · ${j.params.method ?? "GET"} ${j.params.url}` : "";
      $("jv-progress-text").textContent = `created ${fmtTime(j.created_at)}${url}` +
        (j.finished_at ? ` · ran ${fmtDuration(jobDuration(j))}` : "");
      if (j.status === "succeeded") {
        $("jv-progress").style.width = "100%";
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
        charts.cpu.push(ts, [e.cpu_cores]);
        charts.mem.push(ts, [e.mem_used_bytes / 1e9]);
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
