// Home: the live session launcher, the active sessions to join, the live view of one session
// (?session=<id>, view-only with &view=1), health and counts at a glance, and the latest jobs.
// A tab holding a share link's token shows that session's view and nothing else.
import { api, el, fmtDuration, fmtNumber, fmtTime, renderNav, statusBadge, token } from "./api.js";
import { openSessionView, shareOf } from "./session_view.js";

renderNav();

const params = new URLSearchParams(location.search);
const share = shareOf(token());
const sessionId = share?.session ?? params.get("session");

// ---- live sessions ----

const form = document.getElementById("launch");
form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const data = new FormData(form);
  const number = (name) => Number(data.get(name));
  let url = String(data.get("url") ?? "").trim();
  if (url && !/^[a-z][a-z0-9+.-]*:/i.test(url)) url = `https://${url}`;
  const errorBox = document.getElementById("launch-error");
  errorBox.textContent = "";
  const button = document.getElementById("launch-start");
  button.disabled = true;
  button.textContent = "Starting…";
  try {
    const session = await api("/api/sessions", {
      method: "POST",
      json: {
        url,
        viewport: { width: number("width"), height: number("height") },
        quality: number("quality"),
        max_fps: number("max_fps"),
        idle_timeout_s: number("idle_timeout_s"),
        max_duration_s: number("max_duration_s"),
        record: data.get("record") === "on",
      },
    });
    location.href = `/?session=${encodeURIComponent(session.id)}`;
  } catch (err) {
    errorBox.textContent = err.message;
  } finally {
    button.disabled = false;
    button.textContent = "Start session";
  }
});

async function listSessions() {
  let sessions = [];
  try {
    ({ sessions } = await api("/api/sessions"));
  } catch {
    return;
  }
  document.getElementById("sessions-empty").classList.toggle("hidden", sessions.length > 0);
  document.querySelector("#sessions tbody").replaceChildren(...sessions.map((s) =>
    el(
      "tr",
      { dataset: { id: s.id } },
      el(
        "td",
        { class: "ellipsis", title: s.url },
        s.opened_over_cdp
          ? el("span", {
            class: "status cdp",
            title: "Driven by a CDP client (Playwright, Puppeteer)",
          }, "CDP")
          : "",
        s.opened_over_cdp ? " " : "",
        s.title || s.url,
      ),
      el("td", {}, statusBadge(s.state)),
      el("td", {}, fmtNumber(s.metrics.viewer_count)),
      el("td", {}, fmtNumber(s.metrics.current_fps, 1)),
      el("td", {}, fmtDuration(s.uptime_seconds)),
      el(
        "td",
        {},
        el("a", { href: `/?session=${encodeURIComponent(s.id)}` }, "Join"),
        " · ",
        el("a", { href: `/?session=${encodeURIComponent(s.id)}&view=1` }, "Watch"),
        " · ",
        el("a", {
          href: "#",
          onclick: async (e) => {
            e.preventDefault();
            await api(`/api/sessions/${s.id}`, { method: "DELETE" }).catch(() => {});
            listSessions();
          },
        }, "Stop"),
      ),
    )
  ));
}

if (share) {
  const viewer = document.getElementById("viewer");
  for (const part of document.querySelector("main").children) {
    part.classList.toggle("hidden", part !== viewer);
  }
  openSessionView(viewer, sessionId, { viewOnly: share.role === "viewer", share });
} else if (sessionId) {
  document.getElementById("launcher").classList.add("hidden");
  const viewer = document.getElementById("viewer");
  viewer.classList.remove("hidden");
  openSessionView(viewer, sessionId, { viewOnly: params.get("view") === "1" });
} else {
  listSessions();
  setInterval(listSessions, 3000);
}

// ---- at a glance ----

async function glance() {
  const box = document.getElementById("glance");
  const kpi = (k, v) =>
    el("div", { class: "kpi" }, el("div", { class: "v" }, v), el("div", { class: "k" }, k));
  try {
    const [health, stats, live] = await Promise.all([
      api("/api/health").catch((e) => e.body),
      api("/api/stats"),
      api("/api/sessions").catch(() => ({ sessions: [] })),
    ]);
    const count = (status) =>
      stats.by_type_status.filter((r) => r.status === status).reduce((a, r) => a + r.count, 0);
    box.replaceChildren(
      kpi("platform", health?.status ?? "unknown"),
      kpi("jobs", fmtNumber(stats.total)),
      kpi("running", fmtNumber(count("running"))),
      kpi("succeeded", fmtNumber(count("succeeded"))),
      kpi("failed", fmtNumber(count("failed"))),
      kpi("live sessions", fmtNumber(live.sessions.length)),
      health?.workers
        ? kpi("jobs running / slots", `${health.workers.running}/${health.workers.slots}`)
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
if (!share) {
  glance();
  setInterval(glance, 5000);
}
