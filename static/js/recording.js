// /recordings/:id: one recording — its video, the timeline beside it (a click seeks the video
// to that moment; the entry being played is highlighted), the errors with the frame on screen at
// each, download, delete, and replay (which opens the replay live).
import {
  api,
  el,
  fmtBytes,
  fmtDuration,
  fmtNumber,
  fmtTime,
  recordingBadge,
  renderNav,
  statusBadge,
  token,
} from "./api.js";
import { describeEvent } from "./session_view.js";

renderNav();
const id = decodeURIComponent(location.pathname.split("/").pop());
const video = document.getElementById("video");
const errorBox = document.getElementById("error");
let rows = [];

const fail = (message) => {
  errorBox.textContent = message;
  errorBox.classList.remove("hidden");
};

/** A media URL the browser loads itself (<video>, <img>): the token goes in the query. */
function media(path) {
  const url = new URL(path, location.href);
  if (token()) url.searchParams.set("token", token());
  return url.pathname + url.search;
}

const clock = (t) => {
  const m = Math.floor(t / 60);
  return `${m}:${(t % 60).toFixed(1).padStart(4, "0")}`;
};

const seek = (t) => {
  video.currentTime = t;
  video.focus();
};

function showProps(r) {
  document.title = `Recording ${r.recording_id} · streamplay`;
  document.getElementById("title").replaceChildren(`Recording `, recordingBadge(r.state));
  const prop = (k, v) => [el("dt", {}, k), el("dd", {}, v)];
  document.getElementById("props").replaceChildren(
    ...prop("Id", el("span", { class: "mono" }, r.recording_id)),
    ...(r.reason ? prop("Ended", r.reason) : []),
    ...prop(
      "Session",
      el("a", { href: `/bench/jobs/${r.session_id}`, class: "mono" }, r.session_id),
    ),
    ...(r.replay_of
      ? prop("Replay of", el("a", { href: `/recordings/${r.replay_of}` }, r.replay_of))
      : []),
    ...prop("Page", r.start_url),
    ...prop(
      "Video",
      `${r.codec} (${r.encoder}) ${r.quality} · ${r.width}×${r.height} @ ${r.fps} fps`,
    ),
    ...prop(
      "Length",
      `${fmtDuration(r.duration_seconds)} · ${fmtNumber(r.frame_count)} frames · ${
        fmtBytes(r.file_size_bytes)
      }`,
    ),
    ...prop("Started", fmtTime(r.started_at)),
    ...prop("Stopped", fmtTime(r.stopped_at)),
    ...prop("Recorded by", el("span", { class: "mono" }, r.node)),
  );
  const download = document.getElementById("download");
  download.href = media(`/api/recordings/${id}/video?download=1`);
}

function showTimeline(entries) {
  // Pointer moves and key releases are kept for replays, not shown.
  const shown = entries.filter((e) =>
    !(e.type === "input" && (e.input?.action === "move" || e.input?.action === "up"))
  );
  document.getElementById("timeline-count").textContent = `${shown.length} entries`;
  rows = shown.map((e) => {
    const row = el(
      "div",
      {
        class: `ev ${e.type}`,
        dataset: { type: e.type, t: String(e.t) },
        title: e.target?.selector ?? "",
        onclick: () => seek(e.t),
      },
      el("button", { class: "secondary link" }, clock(e.t)),
      el("span", { class: "kind" }, e.type.replace("_", " ")),
      el("span", { class: "text" }, describeEvent(e)),
    );
    return { t: e.t, row };
  });
  document.getElementById("timeline").replaceChildren(...rows.map((r) => r.row));
  const errors = entries.filter((e) => e.screenshot_url);
  document.getElementById("errors").replaceChildren(
    ...(errors.length
      ? errors.map((e) =>
        el(
          "figure",
          { class: "shot-card", dataset: { t: String(e.t) }, onclick: () => seek(e.t) },
          el("img", {
            src: media(e.screenshot_url),
            alt: `screen at ${clock(e.t)}`,
            loading: "lazy",
          }),
          el(
            "figcaption",
            {},
            el("span", { class: "muted" }, clock(e.t)),
            " ",
            el("span", { class: "kind" }, e.type.replace("_", " ")),
            " ",
            describeEvent(e),
          ),
        )
      )
      : [el("div", { class: "muted" }, "No errors were recorded.")]),
  );
}

// The entry being played: the last one at or before the video's time.
video.addEventListener("timeupdate", () => {
  let current = null;
  for (const r of rows) if (r.t <= video.currentTime + 0.05) current = r;
  for (const r of rows) r.row.classList.toggle("current", r === current);
  video.dataset.time = String(video.currentTime);
});
video.addEventListener("loadedmetadata", () => {
  video.dataset.duration = String(video.duration);
});

/** "element_not_found ×5 (steps 1–5): No element matches #new-todo (…)". */
function describeDivergence(d) {
  const steps = d.last_step !== undefined && d.step !== undefined
    ? ` (steps ${d.step + 1}–${d.last_step + 1})`
    : "";
  return `${d.kind}${d.count > 1 ? ` ×${d.count}${steps}` : ""}: ${d.message}`;
}

async function showReplays() {
  const { replays } = await api(`/api/recordings/${id}/replays`);
  const tbody = document.querySelector("#replays tbody");
  tbody.replaceChildren(...replays.map((r) => {
    const report = r.report;
    const count = report ? report.divergences.length : null;
    return el(
      "tr",
      { dataset: { id: r.replay_id } },
      el("td", {}, fmtTime(r.created_at)),
      el("td", {}, statusBadge(r.status)),
      el("td", {}, r.options?.speed === "max" ? "max" : `${r.options?.speed ?? 1}×`),
      el(
        "td",
        {},
        count === null ? (r.error ?? "–") : count === 0 ? "none" : el(
          "details",
          {},
          el("summary", {}, `${count}`),
          el("ul", {}, ...report.divergences.map((d) => el("li", {}, describeDivergence(d)))),
        ),
      ),
      el(
        "td",
        {},
        ["queued", "running"].includes(r.status)
          ? el("a", { href: `/?session=${r.replay_id}&view=1` }, "Watch")
          : el("a", { href: `/bench/jobs/${r.replay_id}` }, "Job"),
      ),
    );
  }));
  if (replays.length === 0) {
    tbody.replaceChildren(
      el("tr", {}, el("td", { colspan: 5, class: "muted" }, "Not replayed yet.")),
    );
  }
}

document.getElementById("replay").addEventListener("click", async (e) => {
  const button = e.target;
  button.disabled = true;
  button.textContent = "Starting…";
  const speed = document.getElementById("replay-speed").value;
  const options = { speed: speed === "max" ? "max" : Number(speed) };
  if (document.getElementById("replay-visual").checked) options.visual_threshold = 0.02;
  try {
    const started = await api(`/api/recordings/${id}/replay`, { method: "POST", json: options });
    location.href = `/?session=${encodeURIComponent(started.replay_id)}&view=1`;
  } catch (err) {
    fail(err.message);
    button.disabled = false;
    button.textContent = "Replay";
  }
});

document.getElementById("delete").addEventListener("click", async () => {
  if (!confirm("Delete this recording, its timeline and its files?")) return;
  try {
    await api(`/api/recordings/${id}`, { method: "DELETE" });
    location.href = "/recordings";
  } catch (err) {
    fail(err.message);
  }
});

async function load() {
  let recording;
  try {
    recording = await api(`/api/recordings/${encodeURIComponent(id)}`);
  } catch (err) {
    fail(err.message);
    return;
  }
  showProps(recording);
  const { entries } = await api(`/api/recordings/${id}/timeline`);
  showTimeline(entries);
  if (!video.src) video.src = media(`/api/recordings/${id}/video`);
  showReplays().catch(() => {});
  // While it records, the page follows it.
  if (recording.state === "recording") setTimeout(load, 3000);
}
load();
