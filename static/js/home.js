// Home: health and counts at a glance, and the latest jobs.
import { api, el, fmtNumber, fmtTime, renderNav, statusBadge } from "./api.js";

renderNav();

async function glance() {
  const box = document.getElementById("glance");
  const kpi = (k, v) =>
    el("div", { class: "kpi" }, el("div", { class: "v" }, v), el("div", { class: "k" }, k));
  try {
    const [health, stats] = await Promise.all([
      api("/api/health").catch((e) => e.body),
      api("/api/stats"),
    ]);
    const count = (status) =>
      stats.by_type_status.filter((r) => r.status === status).reduce((a, r) => a + r.count, 0);
    box.replaceChildren(
      kpi("platform", health?.status ?? "unknown"),
      kpi("jobs", fmtNumber(stats.total)),
      kpi("running", fmtNumber(count("running"))),
      kpi("succeeded", fmtNumber(count("succeeded"))),
      kpi("failed", fmtNumber(count("failed"))),
      health?.workers
        ? kpi("worker slots", `${health.workers.running}/${health.workers.concurrency}`)
        : "",
    );
  } catch (e) {
    box.replaceChildren(el("div", { class: "banner" }, e.message));
  }
  const { jobs } = await api("/api/jobs?limit=8").catch(() => ({ jobs: [] }));
  document.querySelector("#recent tbody").replaceChildren(...jobs.map((j) =>
    el(
      "tr",
      { onclick: () => (location.href = `/bench/jobs/${j.id}`) },
      el("td", {}, fmtTime(j.created_at)),
      el("td", {}, j.type),
      el("td", {}, statusBadge(j.status)),
      el("td", { class: "mono muted" }, j.id),
    )
  ));
}
glance();
setInterval(glance, 5000);
