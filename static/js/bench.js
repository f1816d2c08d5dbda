// /bench: start an http-bench or browser-bench job from a form (with the server's validation
// messages shown while typing), then watch it live over its WebSocket.
import { api, el, FINAL, followJob, renderNav } from "./api.js";
import { createJobView } from "./job_view.js";
import { createScenarioEditor } from "./scenario_editor.js";

renderNav();
const form = document.getElementById("bench-form");
const errorBox = document.getElementById("form-error");
const problemsBox = document.getElementById("problems");
const live = document.getElementById("live");
const doneLink = document.getElementById("done-link");
const HELP = {
  http: "raw HTTP/1.1 load from this server: throughput, latency percentiles",
  browser: "real Chromium users running a scenario: web vitals, screenshots, errors",
};

const mode = () => form.elements.mode.value;
const v = (name) => form.elements[name].value.trim();
const numbers = (name) => v(name) ? v(name).split(",").map((x) => Number(x.trim())) : null;

const editor = createScenarioEditor(document.getElementById("scenario-editor"), {
  onChange: () => scheduleValidation(),
});

function showMode() {
  for (const node of form.querySelectorAll("[data-mode]")) {
    node.classList.toggle("hidden", node.dataset.mode !== mode());
  }
  document.getElementById("mode-help").textContent = HELP[mode()];
  scheduleValidation();
}

/** The sizing fields both modes share. */
function capacityParams() {
  const p = {
    targets: numbers("targets") ?? [10, 100, 1000],
    safety_factor: Number(v("safety_factor")),
    baseline_os_mb: Number(v("baseline_os_mb")),
    retention_days: Number(v("retention_days")),
    sessions_per_day: Number(v("sessions_per_day")),
    baseline_s: Number(v("baseline_s")),
    node_shape: { cores: Number(v("node_cores")), memory_gb: Number(v("node_memory_gb")) },
  };
  const levels = numbers("levels");
  if (levels) p.levels = levels;
  return p;
}

/** Reads the form into job params, leaving out empty optional fields. */
function readParams() {
  if (mode() === "browser") {
    const p = {
      url: v("url"),
      duration_s: Number(v("b_duration_s")),
      ramp_s: Number(v("b_ramp_s") || 0),
      screenshot_every_s: Number(v("screenshot_every_s") || 0),
      screenshot_quality: Number(v("screenshot_quality")),
      browser_per_user: form.elements.browser_per_user.checked,
      resource_basis: v("resource_basis"),
      scenario: editor.value(),
      ...capacityParams(),
    };
    if (!p.levels) p.concurrency = Number(v("b_concurrency"));
    if (v("allow_hosts")) p.allow_hosts = v("allow_hosts").split(",").map((h) => h.trim());
    return { type: "browser-bench", params: p };
  }
  const params = {
    url: v("url"),
    method: v("method"),
    timeout_ms: Number(v("timeout_ms")),
    ramp_s: Number(v("ramp_s") || 0),
    ...capacityParams(),
  };
  if (!params.levels) params.concurrency = Number(v("concurrency"));
  if (v("stop") === "requests" && !params.levels) params.requests = Number(v("amount"));
  else params.duration_s = Number(v("amount"));
  if (v("rate")) params.rate = Number(v("rate"));
  if (v("headers")) {
    try {
      params.headers = JSON.parse(v("headers"));
    } catch {
      throw new Error('headers: must be a JSON object, e.g. {"Accept": "text/html"}');
    }
  }
  if (v("body")) params.body = v("body");
  // What the sizing measures: pids, a cgroup directory, or a process name.
  const target = v("target");
  if (/^\d+(\s*,\s*\d+)*$/.test(target)) params.target_pids = numbers("target");
  else if (target.startsWith("/")) params.target_cgroup = target;
  else if (target) params.target_process = target;
  return { type: "http-bench", params };
}

// ---- validation while typing ----
let timer;
let generation = 0;
function scheduleValidation() {
  clearTimeout(timer);
  timer = setTimeout(validate, 300);
}
async function validate() {
  const mine = ++generation;
  let body;
  try {
    body = readParams();
  } catch (e) {
    problemsBox.textContent = e.message;
    return;
  }
  if (!body.params.url) {
    problemsBox.textContent = "";
    editor.showProblems([]);
    return;
  }
  try {
    const verdict = await api("/api/bench/validate", { method: "POST", json: body });
    if (mine !== generation) return;
    const rest = editor.showProblems(verdict.problems);
    problemsBox.replaceChildren(
      ...rest.map((p) => el("div", {}, `${p.field.replace(/^params\./, "")}: ${p.message}`)),
    );
    form.dataset.valid = String(verdict.ok);
  } catch {
    // Validation is a convenience: the submit shows the server's answer either way.
  }
}
form.addEventListener("input", scheduleValidation);
for (const r of form.elements.mode) r.addEventListener("change", showMode);

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  errorBox.textContent = "";
  let job;
  try {
    job = await api("/api/jobs", { method: "POST", json: readParams() });
  } catch (err) {
    errorBox.textContent = err.message;
    return;
  }
  live.classList.remove("hidden");
  doneLink.classList.add("hidden");
  const view = createJobView(document.getElementById("job-view"));
  view.setJob(job);
  history.replaceState(null, "", `/bench?job=${job.id}`);
  followJob(job.id, (ev) => {
    view.onEvent(ev);
    if (ev.type === "status" && FINAL.has(ev.status)) {
      api(`/api/jobs/${job.id}`).then((j) => view.setJob(j));
      doneLink.replaceChildren(el("a", { href: `/bench/jobs/${job.id}` }, "Open the job page →"));
      doneLink.classList.remove("hidden");
    }
  });
});

showMode();
