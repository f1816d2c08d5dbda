// /bench/jobs/:id: a job's result, its charts from stored events and samples, its logs;
// still running jobs continue live over the WebSocket.
import { api, el, FINAL, fmtTime, followJob, renderNav } from "./api.js";
import { createJobView } from "./job_view.js";

renderNav();
const id = decodeURIComponent(location.pathname.split("/").pop());
const errorBox = document.getElementById("error");

/** "Compare with…": other finished runs of the same benchmark type. */
async function offerComparison(job) {
  if (job.type !== "http-bench" && job.type !== "browser-bench") return;
  const { jobs } = await api(`/api/jobs?type=${job.type}&status=succeeded&limit=100`);
  const others = jobs.filter((j) => j.id !== job.id);
  if (others.length === 0) return;
  const form = document.getElementById("compare");
  const select = document.getElementById("compare-with");
  select.replaceChildren(
    ...others.map((j) => {
      const users = j.params?.levels?.join(",") ?? j.params?.concurrency ?? "";
      return el(
        "option",
        { value: j.id },
        `${fmtTime(j.created_at)} · ${users} · ${j.params?.url}`,
      );
    }),
  );
  form.classList.remove("hidden");
  form.onsubmit = (e) => {
    e.preventDefault();
    location.href = `/bench/compare?a=${encodeURIComponent(job.id)}&b=${
      encodeURIComponent(select.value)
    }`;
  };
}

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
    offerComparison(job).catch(() => {});
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
