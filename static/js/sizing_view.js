// The sizing report of a benchmark (result.sizing) as tables and charts: per-level figures,
// the fitted models drawn over the measured points with their hold-out check, projections with
// how far they extrapolate, warnings, and the formulas with the inputs used.
import { el, fmtBytes, fmtNumber } from "./api.js";
import { fitChart } from "./charts.js";

const LABEL = { cpu: "CPU (cores)", memory: "Memory", disk: "Disk growth", network: "Network" };

export function predict(m, n) {
  return m.kind === "linear" ? m.a + m.b * n : m.a * n ** m.b;
}

/** A value of a resource in its unit. */
export function fmtResource(name, v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (name === "cpu") return fmtNumber(v, Math.abs(v) < 10 ? 2 : 1);
  if (name === "network") return `${fmtBytes(v)}/s`;
  return fmtBytes(v);
}

const pct = (v) => (v === null || v === undefined ? "–" : `${v >= 0 ? "+" : ""}${v.toFixed(1)} %`);

function table(head, rows, attrs = {}) {
  return el(
    "table",
    { class: "compact", ...attrs },
    el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c))))),
  );
}

function modelText(name, m) {
  const c = m.chosen;
  const f = (v) => fmtResource(name, v);
  return c.kind === "linear" ? `${f(c.a)} + ${f(c.b)} · n` : `${f(c.a)} · n^${c.b.toFixed(2)}`;
}

/** Renders `sizing` into `root`. */
export function renderSizing(root, sizing) {
  const s = sizing;
  const parts = [el("h3", {}, "Sizing")];
  parts.push(
    el(
      "p",
      { class: "muted" },
      s.basis === "system"
        ? `Cost of a session: the machine's CPU and memory net of the idle baseline${
          s.baseline
            ? ` (${fmtNumber(s.baseline.cpu_cores, 2)} cores, ${
              fmtBytes(s.baseline.mem_used_bytes)
            } before the load)`
            : " (none sampled)"
        }.`
        : "Cost of a session: the job's own browser processes (CPU time, PSS memory).",
    ),
  );

  parts.push(
    el("h4", {}, "Per level"),
    table(
      [
        "users",
        "cores",
        "cores / user",
        "memory",
        "memory / user",
        "browsers (PSS)",
        "disk growth",
        "net in",
        "net out",
      ],
      s.levels.map((l) => [
        String(l.concurrency),
        fmtNumber(l.per_session.cpu_cores * l.concurrency, 2),
        fmtNumber(l.per_session.cpu_cores, 3),
        fmtBytes(l.per_session.mem_bytes * l.concurrency),
        fmtBytes(l.per_session.mem_bytes),
        l.proc_mem_bytes === null ? "–" : fmtBytes(l.proc_mem_bytes),
        fmtBytes(l.disk_growth_bytes),
        `${fmtBytes(l.net_rx_bytes_per_s)}/s`,
        `${fmtBytes(l.net_tx_bytes_per_s)}/s` + (l.saturated ? " · CPU saturated" : ""),
      ]),
      { id: "sizing-levels" },
    ),
  );

  if (s.models) {
    parts.push(
      el("h4", {}, "Models of cost(n)"),
      table(
        ["resource", "chosen", "R²", "other model", "super-linear", "hold-out (highest level)"],
        Object.entries(s.models).map(([name, m]) => {
          const other = m.chosen.kind === "linear" ? m.power : m.linear;
          const v = m.validation;
          return [
            LABEL[name],
            `${m.chosen.kind}: ${modelText(name, m)}`,
            m.chosen.r2.toFixed(3),
            other ? `${other.kind} R² ${other.r2.toFixed(3)}` : "–",
            m.super_linear ? `yes (exponent ${m.power.b.toFixed(2)})` : "no",
            v
              ? `n=${v.held_out}: predicted ${fmtResource(name, v.predicted)}, measured ${
                fmtResource(name, v.measured)
              } (${pct(v.error_pct)})`
              : "needs 3 levels",
          ];
        }),
        { id: "sizing-models" },
      ),
    );
    const grid = el("div", { class: "grid two", id: "sizing-curves" });
    parts.push(grid);
    queueMicrotask(() => {
      for (const [name, m] of Object.entries(s.models)) {
        const box = el("div", { class: "card", dataset: { resource: name } });
        grid.append(box);
        const maxN = Math.max(...m.points.map((p) => p.n)) * 1.5;
        const curves = [{ label: `${m.chosen.kind} (chosen)`, f: (n) => predict(m.chosen, n) }];
        const other = m.chosen.kind === "linear" ? m.power : m.linear;
        if (other) curves.push({ label: other.kind, f: (n) => predict(other, n), dashed: true });
        fitChart(box, {
          title: `${LABEL[name]}: measured and fitted`,
          measured: [{ label: "measured", points: m.points }],
          curves,
          maxN,
          format: (v) => fmtResource(name, v),
        });
      }
    });
  }

  const cpuErr = s.models?.cpu?.validation?.error_pct;
  const memErr = s.models?.memory?.validation?.error_pct;
  const trust = s.models
    ? (cpuErr !== undefined && memErr !== undefined
      ? `hold-out error: CPU ${pct(cpuErr)}, memory ${pct(memErr)}`
      : "no hold-out check (add a third level)")
    : "one level: assumes cost in proportion to users";
  parts.push(
    el("h4", {}, "Projection"),
    table(
      ["target users", "cores", "RAM", "disk", "nodes", "trust"],
      s.projections.map((p) => [
        fmtNumber(p.target),
        fmtNumber(p.required_cores),
        fmtBytes(p.required_ram_bytes),
        fmtBytes(p.required_disk_bytes),
        `${p.nodes.count} × ${p.nodes.cores} cores / ${p.nodes.memory_gb} GB (${p.nodes.limited_by})`,
        trust +
        (p.times_highest_level > 10
          ? ` · ${p.times_highest_level}× the highest level measured`
          : ""),
      ]),
      { id: "sizing-projections" },
    ),
  );
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
      el("summary", { class: "muted" }, "Formulas and inputs"),
      el(
        "dl",
        { class: "props" },
        Object.entries(s.formulas).flatMap((
          [k, f],
        ) => [el("dt", {}, k), el("dd", { class: "mono" }, f)]),
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
