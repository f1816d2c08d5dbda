// /bench/compare?a=ID&b=ID: two benchmark runs side by side — their setup, the highest level's
// figures, resource use, the per-session footprint and the projections, with the change from A
// to B (green where B is better), and each resource's measured points and chosen model overlaid.
import { api, el, fmtBytes, fmtNumber, fmtTime, renderNav } from "./api.js";
import { fitChart } from "./charts.js";
import { fmtResource, predict } from "./sizing_view.js";

renderNav();
const q = new URLSearchParams(location.search);
const errorBox = document.getElementById("error");

const last = (r) => r?.levels?.[r.levels.length - 1] ?? r;
const users = (j) => j.params?.levels?.join(", ") ?? String(j.params?.concurrency ?? "–");

/** Rows: [label, get(job) → number|string|null, format, lowerIsBetter]. */
function rows(type) {
  const sz = (j) => j.result?.sizing;
  // Per session at the highest healthy level; disk per session from the projections' rate.
  const fp = (j) => sz(j)?.levels?.findLast((l) => l.status === "healthy")?.per_session;
  const common = [
    [
      "CPU cores (avg, machine)",
      (j) => j.result?.resources?.cpu_cores_avg,
      (v) => fmtNumber(v, 2),
      true,
    ],
    ["Memory used (avg, machine)", (j) => j.result?.resources?.mem_used_avg_bytes, fmtBytes, true],
    ["Job processes memory (max)", (j) => j.result?.resources?.proc_mem_max_bytes, fmtBytes, true],
    ["CPU per session", (j) => fp(j)?.cpu_cores, (v) => fmtNumber(v, 3), true],
    ["Memory per session", (j) => fp(j)?.mem_bytes, fmtBytes, true],
    ["Disk per session", (j) => sz(j)?.projections?.[0]?.per_session.disk_bytes, fmtBytes, true],
    [
      "CPU held-out error % (max)",
      (j) => sz(j)?.models?.cpu?.validation?.max_abs_error_pct,
      (v) => fmtNumber(v, 1),
      null,
    ],
    [
      "Memory held-out error % (max)",
      (j) => sz(j)?.models?.memory?.validation?.max_abs_error_pct,
      (v) => fmtNumber(v, 1),
      null,
    ],
  ];
  const targets = (j) => sz(j)?.projections ?? [];
  const projection = [10, 100, 1000].flatMap((t) => [
    [
      `${fmtNumber(t)} users: cores`,
      (j) => targets(j).find((p) => p.target === t)?.required_cores,
      fmtNumber,
      true,
    ],
    [
      `${fmtNumber(t)} users: RAM`,
      (j) => targets(j).find((p) => p.target === t)?.required_ram_bytes,
      fmtBytes,
      true,
    ],
    [
      `${fmtNumber(t)} users: nodes`,
      (j) => targets(j).find((p) => p.target === t)?.nodes.count,
      fmtNumber,
      true,
    ],
  ]);
  const load = type === "browser-bench"
    ? [
      ["Iterations (highest level)", (j) => last(j.result)?.iterations, fmtNumber, false],
      ["LCP p75 ms", (j) => last(j.result)?.lcp_ms?.p75, fmtNumber, true],
      ["FCP p75 ms", (j) => last(j.result)?.fcp_ms?.p75, fmtNumber, true],
      ["TTFB p75 ms", (j) => last(j.result)?.ttfb_ms?.p75, (v) => fmtNumber(v, 1), true],
      ["CLS p75", (j) => last(j.result)?.cls?.p75, (v) => fmtNumber(v, 3), true],
      ["INP p75 ms", (j) => last(j.result)?.inp_ms?.p75, fmtNumber, true],
      ["JS heap p75", (j) => last(j.result)?.js_heap_bytes?.p75, fmtBytes, true],
      ["Errors", (j) => j.result?.errors?.total, fmtNumber, true],
    ]
    : [
      ["Requests/s", (j) => last(j.result)?.rps, (v) => fmtNumber(v, 1), false],
      ["Latency p50 ms", (j) => last(j.result)?.latency_ms?.p50, (v) => fmtNumber(v, 2), true],
      ["Latency p95 ms", (j) => last(j.result)?.latency_ms?.p95, (v) => fmtNumber(v, 2), true],
      ["Latency p99 ms", (j) => last(j.result)?.latency_ms?.p99, (v) => fmtNumber(v, 2), true],
      ["Errors", (j) => last(j.result)?.errors?.total, fmtNumber, true],
    ];
  return [...load, ...common, ...projection];
}

function change(a, b, lowerIsBetter) {
  if (typeof a !== "number" || typeof b !== "number" || a === 0) return el("span", {}, "");
  const pct = (b - a) / Math.abs(a) * 100;
  const cls = lowerIsBetter === null || Math.abs(pct) < 1
    ? ""
    : (pct < 0) === lowerIsBetter
    ? "better"
    : "worse";
  return el("span", { class: cls }, `${pct >= 0 ? "+" : ""}${pct.toFixed(1)} %`);
}

async function main() {
  const ids = [q.get("a"), q.get("b")];
  if (!ids[0] || !ids[1]) throw new Error("Give two runs: /bench/compare?a=<job id>&b=<job id>");
  const [a, b] = await Promise.all(ids.map((id) => api(`/api/jobs/${encodeURIComponent(id)}`)));
  if (a.type !== b.type) throw new Error(`Cannot compare a ${a.type} run with a ${b.type} run`);
  const head = (j, tag) =>
    el(
      "div",
      { class: "head" },
      el("a", { href: `/bench/jobs/${j.id}` }, `${tag}: ${j.id}`),
      el("div", {}, `${fmtTime(j.created_at)} · ${users(j)} users · ${j.status}`),
      el("div", { class: "mono" }, j.params?.url ?? ""),
      j.params?.browser_per_user ? el("div", {}, "a browser per user") : null,
    );
  const cells = [el("div"), head(a, "A"), head(b, "B"), el("div", { class: "head" }, "B vs A")];
  for (const [label, get, fmt, lower] of rows(a.type)) {
    const va = get(a);
    const vb = get(b);
    if (va === undefined && vb === undefined) continue;
    const show = (v) => (v === undefined || v === null ? "–" : fmt(v));
    cells.push(
      el("div", { class: "muted" }, label),
      el("div", { class: "mono", dataset: { run: "a" } }, show(va)),
      el("div", { class: "mono", dataset: { run: "b" } }, show(vb)),
      change(va, vb, lower),
    );
  }
  document.getElementById("compare-table").replaceChildren(...cells);

  const curves = document.getElementById("compare-curves");
  const ma = a.result?.sizing?.models ?? {};
  const mb = b.result?.sizing?.models ?? {};
  for (const name of ["cpu", "memory"]) {
    if (!ma[name] || !mb[name]) continue;
    const box = el("div", { class: "card", dataset: { resource: name } });
    curves.append(box);
    const all = [...ma[name].points, ...mb[name].points];
    fitChart(box, {
      title: `${name}: measured and chosen model, A and B (dashed)`,
      measured: [{ label: "A measured", points: ma[name].points }, {
        label: "B measured",
        points: mb[name].points,
      }],
      curves: [
        { label: `A ${ma[name].chosen.kind}`, f: (n) => predict(ma[name].chosen, n) },
        { label: `B ${mb[name].chosen.kind}`, f: (n) => predict(mb[name].chosen, n), dashed: true },
      ],
      maxN: Math.max(...all.map((p) => p.n)) * 1.5,
      format: (v) => fmtResource(name, v),
    });
  }
}

main().catch((e) => {
  errorBox.textContent = e.message;
  errorBox.classList.remove("hidden");
});
