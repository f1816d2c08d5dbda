// /recordings: every recording from DuckDB, newest first, with filters and cursor paging.
import {
  cursorTable,
  el,
  fmtBytes,
  fmtDuration,
  fmtTime,
  recordingBadge,
  renderNav,
} from "./api.js";

renderNav();
const form = document.getElementById("filters");
const tbody = document.querySelector("#recordings tbody");

const params = new URLSearchParams(location.search);
if (params.get("session_id")) form.elements.session_id.value = params.get("session_id");

function query() {
  const q = new URLSearchParams();
  for (const name of ["session_id", "state", "limit"]) {
    const v = form.elements[name].value.trim();
    if (v) q.set(name, v);
  }
  if (form.elements.since.value) q.set("since", new Date(form.elements.since.value).toISOString());
  return q;
}

const load = cursorTable({
  tbody,
  path: "/api/recordings",
  list: "recordings",
  query,
  row: (r) =>
    el(
      "tr",
      {
        dataset: { id: r.recording_id },
        onclick: () => (location.href = `/recordings/${r.recording_id}`),
      },
      el("td", {}, el("a", { href: `/recordings/${r.recording_id}` }, fmtTime(r.started_at))),
      el("td", {}, recordingBadge(r.state), r.source === "replay" ? " replay" : ""),
      el("td", {}, `${r.codec} ${r.quality} · ${r.width}×${r.height} @ ${r.fps} fps`),
      el("td", {}, fmtDuration(r.duration_seconds)),
      el("td", {}, fmtBytes(r.file_size_bytes)),
      el(
        "td",
        {},
        r.screenshots ? `${r.screenshots} screenshot${r.screenshots > 1 ? "s" : ""}` : "–",
      ),
      el("td", { class: "ellipsis", title: r.start_url }, r.start_url),
      el("td", { class: "mono muted" }, r.session_id),
    ),
  empty: "No recordings match.",
  columns: 8,
});
load();
