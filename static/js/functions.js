// /functions: create and edit named functions (a new version on each save), invoke one with
// params and watch the run's logs live, and see its earlier runs with their results.
import {
  api,
  el,
  FINAL,
  fmtDuration,
  fmtTime,
  followJob,
  jobDuration,
  renderNav,
  statusBadge,
} from "./api.js";

renderNav();
const editor = document.getElementById("editor");
const invokeForm = document.getElementById("invoke");
const errorBox = document.getElementById("error");
const invokeError = document.getElementById("invoke-error");
const list = document.querySelector("#functions tbody");
const runs = document.querySelector("#runs tbody");
let current = null;
let following = null;

async function loadList() {
  const { functions } = await api("/api/functions");
  list.replaceChildren(
    ...functions.map((f) =>
      el(
        "tr",
        { dataset: { name: f.name }, onclick: () => open(f.name) },
        el("td", {}, el("a", { href: `?name=${encodeURIComponent(f.name)}` }, f.name)),
        el("td", {}, `v${f.version}`),
        el("td", {}, f.browser ? "yes" : "no"),
        el("td", { class: "mono" }, f.schedule ?? "–"),
        el("td", {}, fmtTime(f.updated_at)),
      )
    ),
  );
  if (functions.length === 0) {
    list.replaceChildren(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "None yet.")));
  }
}

async function open(name) {
  const { versions } = await api(`/api/functions/${encodeURIComponent(name)}`);
  const latest = versions[0];
  current = name;
  editor.elements.name.value = name;
  editor.elements.code.value = latest.code;
  editor.elements.browser.checked = latest.browser;
  editor.elements.timeout_s.value = latest.timeout_s;
  editor.elements.schedule.value = latest.schedule ?? "";
  editor.elements.allow_hosts.value = latest.allow_hosts.join(", ");
  document.getElementById("saved").textContent = `v${latest.version} of ${versions.length} kept`;
  document.getElementById("delete").disabled = false;
  document.getElementById("run").disabled = false;
  history.replaceState(null, "", `?name=${encodeURIComponent(name)}`);
  await loadRuns();
}

/** The runs of the open function, from the history; `fresh` (just ended) replaces its row. */
async function loadRuns(fresh = null) {
  if (!current) return;
  const { jobs } = await api("/api/jobs?type=function&limit=200");
  const mine = jobs.filter((j) => j.params?.function?.name === current && j.id !== fresh?.id);
  if (fresh?.params?.function?.name === current) mine.unshift(fresh);
  runs.replaceChildren(
    ...mine.map((j) =>
      el(
        "tr",
        { dataset: { id: j.id }, onclick: () => showRun(j.id) },
        el("td", {}, fmtTime(j.started_at ?? j.created_at)),
        el("td", {}, `v${j.params.function.version}${j.params.function.tick ? " (schedule)" : ""}`),
        el("td", {}, statusBadge(j.status)),
        el("td", {}, fmtDuration(jobDuration(j))),
        el(
          "td",
          { class: "mono ellipsis" },
          j.status === "succeeded" ? JSON.stringify(j.result) : j.error ?? "",
        ),
      )
    ),
  );
  if (mine.length === 0) {
    runs.replaceChildren(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No runs yet.")));
  }
}

/** Shows a run: its status and result, and its log lines as they come. */
function showRun(id) {
  following?.close();
  const logs = document.getElementById("logs");
  const result = document.getElementById("result");
  const status = document.getElementById("run-status");
  document.getElementById("run-id").textContent = id;
  logs.textContent = "";
  result.textContent = "";
  status.replaceChildren();
  document.getElementById("run-links").replaceChildren(
    el("a", { href: `/bench/jobs/${id}` }, "Job page"),
  );
  following = followJob(id, (e) => {
    if (e.type === "log") logs.textContent += `[${e.level}] ${e.message}\n`;
    if (e.type === "artifact") {
      document.getElementById("run-links").append(" ", el("a", { href: e.url }, e.name));
    }
    if (e.type === "session" && e.state === "active") {
      document.getElementById("run-links").append(
        " ",
        el("a", { href: `/?session=${id}` }, "Watch live"),
      );
    }
    if (e.type === "status") {
      status.replaceChildren(statusBadge(e.status));
      if (FINAL.has(e.status)) {
        api(`/api/jobs/${id}`).then((job) => {
          result.textContent = job.status === "succeeded"
            ? JSON.stringify(job.result, null, 2)
            : job.error ?? job.status;
          loadRuns(job);
        });
      }
    }
  });
}

editor.addEventListener("submit", async (e) => {
  e.preventDefault();
  errorBox.textContent = "";
  const f = editor.elements;
  const body = {
    code: f.code.value,
    browser: f.browser.checked,
    timeout_s: Number(f.timeout_s.value),
    allow_hosts: f.allow_hosts.value.split(",").map((s) => s.trim()).filter(Boolean),
    schedule: f.schedule.value.trim() || null,
  };
  try {
    const v = await api(`/api/functions/${encodeURIComponent(f.name.value.trim())}`, {
      method: "PUT",
      json: body,
    });
    await loadList();
    await open(v.name);
  } catch (err) {
    errorBox.textContent = err.message;
  }
});

document.getElementById("new").addEventListener("click", () => {
  current = null;
  editor.reset();
  document.getElementById("saved").textContent = "";
  document.getElementById("delete").disabled = true;
  document.getElementById("run").disabled = true;
  runs.replaceChildren();
  history.replaceState(null, "", location.pathname);
});

document.getElementById("delete").addEventListener("click", async () => {
  if (!current || !confirm(`Delete function ${current} and all its versions?`)) return;
  try {
    await api(`/api/functions/${encodeURIComponent(current)}`, { method: "DELETE" });
    document.getElementById("new").click();
    await loadList();
  } catch (err) {
    errorBox.textContent = err.message;
  }
});

invokeForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  invokeError.textContent = "";
  let params;
  try {
    const text = invokeForm.elements.params.value.trim();
    params = text ? JSON.parse(text) : null;
  } catch (err) {
    invokeError.textContent = `params: not valid JSON (${err.message})`;
    return;
  }
  try {
    const job = await api(`/api/functions/${encodeURIComponent(current)}/invoke`, {
      method: "POST",
      json: { params },
    });
    showRun(job.id);
    await loadRuns();
  } catch (err) {
    invokeError.textContent = err.message;
  }
});

await loadList();
const wanted = new URLSearchParams(location.search).get("name");
if (wanted) await open(wanted).catch((err) => (errorBox.textContent = err.message));
