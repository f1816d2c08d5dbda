// /recordings: every recording from DuckDB, newest first, with filters and cursor paging.
import { api, el, fmtBytes, fmtDuration, fmtTime, recordingBadge, renderNav } from "./api.js";

renderNav();
const form = document.getElementById("filters");
const tbody = document.querySelector("#recordings tbody");
const errorBox = document.getElementById("error");
const cursors = [null];
let page = 0;
let next = null;

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

async function load() {
  errorBox.textContent = "";
  const q = query();
  if (cursors[page]) q.set("cursor", cursors[page]);
  let res;
  try {
    res = await api(`/api/recordings?${q}`);
  } catch (e) {
    errorBox.textContent = e.message;
    return;
  }
  next = res.next_cursor;
  const open = (r) => (location.href = `/recordings/${r.recording_id}`);
  tbody.replaceChildren(...res.recordings.map((r) =>
    el(
      "tr",
      { dataset: { id: r.recording_id }, onclick: () => open(r) },
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
    )
  ));
  if (res.recordings.length === 0) {
    tbody.replaceChildren(
      el("tr", {}, el("td", { colspan: 8, class: "muted" }, "No recordings match.")),
    );
  }
  document.getElementById("prev").disabled = page === 0;
  document.getElementById("next").disabled = !next;
  document.getElementById("page-info").textContent = `page ${page + 1}`;
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  cursors.length = 1;
  page = 0;
  load();
});
document.getElementById("next").onclick = () => {
  cursors[page + 1] = next;
  page++;
  load();
};
document.getElementById("prev").onclick = () => {
  page = Math.max(0, page - 1);
  load();
};
load();
