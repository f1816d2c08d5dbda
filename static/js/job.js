// /bench/jobs/:id: a job's result, its charts from stored events and samples, its logs;
// still running jobs continue live over the WebSocket.
import { api, FINAL, followJob, renderNav } from "./api.js";
import { createJobView } from "./job_view.js";

renderNav();
const id = decodeURIComponent(location.pathname.split("/").pop());
const errorBox = document.getElementById("error");

async function main() {
  let job;
  try {
    job = await api(`/api/jobs/${encodeURIComponent(id)}`);
  } catch (e) {
    errorBox.textContent = e.message;
    errorBox.classList.remove("hidden");
    return;
  }
  document.title = `${job.type} ${job.id} · streamplay`;
  document.getElementById("params").textContent = JSON.stringify(job.params, null, 2);
  const view = createJobView(document.getElementById("job-view"));
  view.setJob(job);
  const cancel = document.getElementById("cancel");
  if (FINAL.has(job.status)) {
    const [{ events }, { samples }] = await Promise.all([
      api(`/api/jobs/${id}/events?type=progress,log,status`),
      api(`/api/jobs/${id}/samples`),
    ]);
    for (const e of events) view.onEvent(e);
    for (const s of samples) view.onEvent({ ...s, type: "sample" });
    view.setJob(job);
    return;
  }
  cancel.classList.remove("hidden");
  cancel.onclick = async () => {
    cancel.disabled = true;
    try {
      view.setJob(await api(`/api/jobs/${id}/cancel`, { method: "POST" }));
    } catch (e) {
      errorBox.textContent = e.message;
      errorBox.classList.remove("hidden");
    }
  };
  followJob(id, (e) => {
    view.onEvent(e);
    if (e.type === "status" && FINAL.has(e.status)) {
      cancel.classList.add("hidden");
      api(`/api/jobs/${id}`).then((j) => view.setJob(j));
    }
  });
}
main();
