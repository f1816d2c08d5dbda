// /bench/history: the job history from DuckDB with filters and cursor paging.
import {
  api,
  cursorTable,
  el,
  fmtDuration,
  fmtNumber,
  fmtTime,
  jobDuration,
  renderNav,
  statusBadge,
  token,
} from "./api.js";

renderNav();
const form = document.getElementById("filters");
const tbody = document.querySelector("#jobs tbody");
const errorBox = document.getElementById("error");

function summary(job) {
  const r = job.result;
  if (job.error) return job.error;
  if (r?.requests !== undefined) {
    return `${fmtNumber(r.requests)} req · ${
      fmtNumber(r.rps, 1)
    } req/s · p95 ${r.latency_ms?.p95} ms`;
  }
  return r ? JSON.stringify(r).slice(0, 80) : "";
}

function query() {
  const q = new URLSearchParams();
  for (const name of ["type", "status", "limit"]) {
    if (form.elements[name].value) q.set(name, form.elements[name].value);
  }
  for (const name of ["since", "until"]) {
    const v = form.elements[name].value;
    if (v) q.set(name, new Date(v).toISOString());
  }
  return q;
}

const load = cursorTable({
  tbody,
  path: "/api/jobs",
  list: "jobs",
  query,
  row: (j) =>
    el(
      "tr",
      { dataset: { id: j.id }, onclick: () => (location.href = `/bench/jobs/${j.id}`) },
      el("td", {}, fmtTime(j.created_at)),
      el("td", {}, j.type),
      el("td", {}, statusBadge(j.status)),
      el("td", {}, fmtDuration(jobDuration(j))),
      el("td", { class: "mono" }, summary(j)),
      el("td", { class: "mono muted" }, el("a", { href: `/bench/jobs/${j.id}` }, j.id)),
    ),
  empty: "No jobs match.",
  columns: 6,
  onLoad() {
    const exportQ = query();
    exportQ.delete("limit");
    for (const format of ["csv", "parquet"]) {
      document.getElementById(`export-${format}`).onclick = (e) => {
        e.preventDefault();
        download(`/api/jobs/export?${exportQ}&format=${format}`, `streamplay-jobs.${format}`);
      };
    }
  },
});

async function download(path, name) {
  const res = await fetch(path, { headers: token() ? { authorization: `Bearer ${token()}` } : {} });
  if (!res.ok) {
    errorBox.textContent = (await res.json().catch(() => ({}))).error ?? `HTTP ${res.status}`;
    return;
  }
  const a = el("a", { href: URL.createObjectURL(await res.blob()), download: name });
  a.click();
  URL.revokeObjectURL(a.href);
}

api("/api/stats").then((s) => {
  const types = [...new Set(s.by_type_status.map((r) => r.type))];
  form.elements.type.append(...types.map((t) => el("option", {}, t)));
}).catch(() => {});
load();
