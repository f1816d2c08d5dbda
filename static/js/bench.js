// /bench: start an http-bench job from a form, then watch it live over its WebSocket.
import { api, el, FINAL, followJob, renderNav } from "./api.js";
import { createJobView } from "./job_view.js";

renderNav();
const form = document.getElementById("bench-form");
const errorBox = document.getElementById("form-error");
const live = document.getElementById("live");
const doneLink = document.getElementById("done-link");

/** Reads the form into job params, leaving out empty optional fields. */
function readParams() {
  const v = (name) => form.elements[name].value.trim();
  const params = {
    url: v("url"),
    method: v("method"),
    concurrency: Number(v("concurrency")),
    timeout_ms: Number(v("timeout_ms")),
    ramp_s: Number(v("ramp_s") || 0),
  };
  if (v("stop") === "requests") params.requests = Number(v("amount"));
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
  return params;
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  errorBox.textContent = "";
  let job;
  try {
    job = await api("/api/jobs", {
      method: "POST",
      json: { type: "http-bench", params: readParams() },
    });
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
