// The sizing report of a benchmark (result.sizing): the verdict, each level with its status and
// cost, the CPU and memory models with their 95 % band and points, the leave-one-level-out errors,
// the projections with their intervals, warnings and formulas.
import uPlot from "/vendor/uplot.js";
import { el, fmtBytes, fmtNumber } from "./api.js";

const LABEL = { cpu: "CPU (cores)", memory: "Memory", disk: "Disk growth", network: "Network" };
const STATUS = { healthy: "healthy", saturated: "saturated", generator_bound: "generator-bound" };

/** cost(n) of a model: a + b·n + c·n² (older reports: a power model a·n^b). */
export function predict(m, n) {
  return m.kind === "power" ? m.a * n ** m.b : m.a + m.b * n + (m.c ?? 0) * n * n;
}

/** A value of a resource in its unit. */
export function fmtResource(name, v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (name === "cpu") return fmtNumber(v, Math.abs(v) < 10 ? 2 : 1);
  if (name === "network") return `${fmtBytes(v)}/s`;
  return fmtBytes(v);
}

const pct = (v) => (v === null || v === undefined ? "–" : `${v >= 0 ? "+" : ""}${v.toFixed(1)} %`);
const ms = (v) => (v === null || v === undefined ? "–" : `${fmtNumber(v, v < 10 ? 2 : 0)} ms`);

function table(head, rows, attrs = {}) {
  return el(
    "table",
    { class: "compact", ...attrs },
    el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
    el(
      "tbody",
      {},
      rows.map((r) =>
        Array.isArray(r)
          ? el("tr", {}, r.map((c) => el("td", {}, c)))
          : el("tr", r.attrs, r.cells.map((c) => el("td", {}, c)))
      ),
    ),
  );
}

/** A model's formula with its signs: "1.2 GB + 40 MB · n", "164.2 KB − 23.5 KB · n". */
export function modelText(name, c) {
  const f = (v) => fmtResource(name, v);
  const term = (v, what) => `${v < 0 ? "−" : "+"} ${f(Math.abs(v))} · ${what}`;
  if (c.kind === "proportional") return `${f(c.b)} · n`;
  return `${f(c.a)} ${term(c.b, "n")}` + (c.kind === "quadratic" ? ` ${term(c.c, "n²")}` : "");
}

/** How many times the highest level a target is, as the report's warnings say it. */
export const fmtFactor = (v) => `${Number(v.toFixed(1))}×`;

const range = ([lo, hi], f) => `${f(lo)}–${f(hi)}`;

/**
 * One resource's chart: the chosen model and its band, the measured healthy levels, each level
 * as predicted from the others (held out), and the levels left out (saturated, generator-bound).
 */
function bandChart(container, name, model, levels) {
  const cost = (l) => (name === "cpu" ? l.cost?.cpu_cores : l.cost?.mem_bytes);
  const excluded = levels.filter((l) => l.status !== "healthy" && cost(l) !== undefined);
  const heldOut = new Map((model.validation?.levels ?? []).map((h) => [h.held_out, h.predicted]));
  const xs = [
    ...new Set([
      ...model.curve.map((p) => p.n),
      ...model.points.map((p) => p.n),
      ...excluded.map((l) => l.concurrency),
    ]),
  ].sort((a, b) => a - b);
  const at = (list, key) => {
    const m = new Map(list.map((p) => [p.n, p[key]]));
    return xs.map((n) => m.get(n) ?? null);
  };
  const data = [
    xs,
    at(model.curve, "value"),
    at(model.curve, "high"),
    at(model.curve, "low"),
    at(model.points, "y"),
    xs.map((n) => heldOut.get(n) ?? null),
    at(excluded.map((l) => ({ n: l.concurrency, y: cost(l) })), "y"),
  ];
  const fmt = (_u, v) => (v === null || v === undefined ? "–" : fmtResource(name, v));
  const line = (stroke, width, dash) => ({
    stroke,
    width,
    dash,
    points: { show: false },
    spanGaps: true,
    value: fmt,
  });
  const dots = (color, fill) => ({
    stroke: color,
    width: 0,
    points: { show: true, size: 9, fill: fill ?? color, stroke: color, width: 2 },
    paths: () => null,
    value: fmt,
  });
  const width = () => Math.max(300, container.clientWidth - 4);
  const plot = new uPlot(
    {
      title: `${LABEL[name]}: ${model.chosen.kind} model, ${
        model.interval === "prediction" ? "95 % prediction band" : "band from measurement noise"
      }`,
      width: width(),
      height: 240,
      series: [
        { label: "users" },
        { label: `${model.chosen.kind} model`, ...line("#4fa3ff", 2) },
        { label: "95 % high", ...line("#4fa3ff66", 1, [4, 4]) },
        { label: "95 % low", ...line("#4fa3ff66", 1, [4, 4]) },
        { label: "measured", ...dots("#3ecf8e") },
        { label: "held out (predicted from the others)", ...dots("#f5b74e", "transparent") },
        { label: "saturated / generator-bound (not fitted)", ...dots("#ff6b6b") },
      ],
      bands: [{ series: [2, 3], fill: "#4fa3ff22" }],
      axes: [
        { stroke: "#93a0b0", grid: { stroke: "#2b3440" }, label: "concurrent users" },
        {
          stroke: "#93a0b0",
          grid: { stroke: "#2b3440" },
          values: (_u, ticks) => ticks.map((t) => fmtResource(name, t)),
          size: 70,
        },
      ],
      scales: { x: { time: false } },
      legend: { live: true },
    },
    data,
    container,
  );
  new ResizeObserver(() => plot.setSize({ width: width(), height: 240 })).observe(container);
  container.classList.add("chart");
  container.dataset.points = String(model.points.length);
  container.dataset.heldOut = String(heldOut.size);
  container.dataset.excluded = String(excluded.length);
}

/** Renders `sizing` into `root`. */
export function renderSizing(root, sizing) {
  const s = sizing;
  const parts = [el("h3", {}, "Sizing")];
  if (!s.levels?.every((l) => l.status)) {
    parts.push(
      el("p", { class: "muted" }, "This report was made by an older version: run it again."),
    );
    root.replaceChildren(...parts);
    return;
  }
  parts.push(
    el("p", { id: "sizing-verdict", class: "verdict" }, s.verdict),
    el("p", { class: "muted" }, `Cost of a session: ${s.measured}.`),
  );

  const side = s.basis === "target" || s.basis === "none" ? "target" : "browsers";
  parts.push(
    el("h4", {}, "Per level"),
    table(
      [
        "users",
        "status",
        "cost: cores",
        "cost: memory",
        "memory / user",
        side === "target" ? "target (CPU, PSS)" : "browsers (CPU, PSS)",
        side === "target" ? "load generator" : "platform process",
        "generator thread, lag p99",
        "machine CPU",
        "CPU wait ÷ run",
        "timings",
      ],
      s.levels.map((l) => ({
        attrs: { dataset: { status: l.status }, title: l.reasons.join("; ") },
        cells: [
          String(l.concurrency),
          STATUS[l.status] + (l.reasons.length ? `: ${l.reasons.join("; ")}` : ""),
          l.cost ? fmtNumber(l.cost.cpu_cores, 2) : "–",
          l.cost ? fmtBytes(l.cost.mem_bytes) : "–",
          l.per_session ? fmtBytes(l.per_session.mem_bytes) : "–",
          l[side] ? `${fmtNumber(l[side].cpu_cores, 2)}, ${fmtBytes(l[side].mem_bytes)}` : "–",
          side === "target"
            ? `${fmtNumber(l.generator.cpu_cores, 2)}, ${fmtBytes(l.generator.mem_bytes)}`
            : l.platform
            ? `${fmtNumber(l.platform.cpu_cores, 2)}, ${fmtBytes(l.platform.mem_bytes)}`
            : "–",
          `${fmtNumber(l.generator.worker_thread_cores * 100, 0)} %, ${ms(l.generator.lag_p99_ms)}`,
          `${fmtNumber(l.machine.cpu_percent, 0)} %`,
          l.cpu_wait_ratio === null ? "–" : fmtNumber(l.cpu_wait_ratio, 2),
          Object.entries(l.timings).map(([k, v]) => `${k} ${ms(v)}`).join(", ") || "–",
        ],
      })),
      { id: "sizing-levels" },
    ),
  );

  if (s.models) {
    parts.push(
      el("h4", {}, `Models on the healthy levels (${s.healthy_levels.join(", ")})`),
      table(
        ["resource", "model", "why", "held out (leave-one-level-out)"],
        Object.entries(s.models).map(([name, m]) => [
          LABEL[name],
          `${m.chosen.kind}: ${modelText(name, m.chosen)}`,
          m.reason,
          m.validation
            ? m.validation.levels.map((h) =>
              `n=${h.held_out}: ${fmtResource(name, h.predicted)} vs ${
                fmtResource(name, h.measured)
              } (${pct(h.error_pct)})`
            ).join("; ")
            : "unvalidated: needs 4 healthy levels",
        ]),
        { id: "sizing-models" },
      ),
    );
    const grid = el("div", { class: "grid two", id: "sizing-curves" });
    parts.push(grid);
    queueMicrotask(() => {
      for (const [name, m] of Object.entries(s.models)) {
        const box = el("div", { class: "card", dataset: { resource: name } });
        grid.append(box);
        bandChart(box, name, m, s.levels);
      }
    });
  }
  if (s.rates) {
    const r = s.rates;
    parts.push(
      el(
        "p",
        { class: "muted", id: "sizing-rates" },
        `Rates: disk ${fmtBytes(r.disk_bytes_per_session_s)} per session-second; network in ${
          fmtBytes(r.net_rx_bytes_per_session_s)
        }, out ${fmtBytes(r.net_tx_bytes_per_session_s)} per session-second` +
          (r.net_bytes_per_request
            ? ` (${fmtBytes(r.net_bytes_per_request.rx)} in, ${
              fmtBytes(r.net_bytes_per_request.tx)
            } out per request)`
            : "") +
          ".",
      ),
    );
  }

  if (s.projections.length) {
    parts.push(
      el("h4", {}, `Projection (${Math.round(s.confidence * 100)} % intervals)`),
      table(
        [
          "target users",
          "cores",
          "RAM",
          "disk",
          "network in / out",
          "nodes",
          "extrapolation",
          "measure next",
        ],
        s.projections.map((p) => [
          fmtNumber(p.target),
          `${fmtNumber(p.required_cores)} (${range(p.interval.cores, fmtNumber)})`,
          `${fmtBytes(p.required_ram_bytes)} (${range(p.interval.ram_bytes, fmtBytes)})`,
          fmtBytes(p.required_disk_bytes),
          `${fmtBytes(p.network_bytes_per_s.rx)}/s / ${fmtBytes(p.network_bytes_per_s.tx)}/s`,
          `${p.nodes.count} (${
            range(p.interval.nodes, String)
          }) × ${p.nodes.cores} cores / ${p.nodes.memory_gb} GB (${p.nodes.limited_by})`,
          fmtFactor(p.extrapolation_factor),
          p.recommended_next_level === null ? "–" : `${p.recommended_next_level} users`,
        ]),
        { id: "sizing-projections" },
      ),
    );
  }
  if (s.warnings.length) {
    parts.push(
      el(
        "ul",
        { class: "warnings", id: "sizing-warnings" },
        s.warnings.map((w) => el("li", {}, w)),
      ),
    );
  }
  const i = s.inputs;
  parts.push(
    el(
      "details",
      {},
      el("summary", { class: "muted" }, "Formulas, thresholds and inputs"),
      el(
        "dl",
        { class: "props" },
        Object.entries(s.formulas).flatMap((
          [k, f],
        ) => [el("dt", {}, k), el("dd", { class: "mono" }, f)]),
        el("dt", {}, "thresholds"),
        el(
          "dd",
          { class: "mono" },
          Object.entries(s.thresholds).map(([k, v]) => `${k} ${v}`).join(", "),
        ),
        el("dt", {}, "inputs"),
        el(
          "dd",
          { class: "mono" },
          `safety_factor ${i.safety_factor}, baseline_os ${i.baseline_os_mb} MB, baseline_storage ${i.baseline_storage_gb} GB, retention_days ${i.retention_days}, sessions_per_day ${i.sessions_per_day}, node ${i.node_shape.cores} cores / ${i.node_shape.memory_gb} GB`,
        ),
      ),
    ),
  );
  root.replaceChildren(...parts);
}
