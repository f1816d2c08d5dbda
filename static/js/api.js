// Client helpers shared by every page: the token, API calls, the job WebSocket, formatting,
// and the navigation bar.

const params = new URLSearchParams(location.search);
if (params.get("token")) sessionStorage.setItem("streamplay-token", params.get("token"));

/** The API token of this tab (from ?token= once, then sessionStorage), or null. */
export function token() {
  return sessionStorage.getItem("streamplay-token");
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/** Calls the API; throws ApiError with the server's message on a non-2xx answer. */
export async function api(path, { method = "GET", json, signal } = {}) {
  const headers = {};
  if (json !== undefined) headers["content-type"] = "application/json";
  const t = token();
  if (t) headers.authorization = `Bearer ${t}`;
  const res = await fetch(path, {
    method,
    headers,
    body: json === undefined ? undefined : JSON.stringify(json),
    signal,
  });
  const text = await res.text();
  let body = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch { /* not JSON */ }
  if (!res.ok) {
    // A share link that expired says so; asking for another token would not help.
    if (res.status === 401 && !token()?.startsWith("spshare.")) askForToken();
    throw new ApiError(res.status, body);
  }
  return body;
}

function askForToken() {
  const given = prompt("This server needs an API token:");
  if (given) {
    sessionStorage.setItem("streamplay-token", given);
    location.reload();
  }
}

/** A ws:// URL for a path on this server, with the token when there is one. */
export function wsUrl(path) {
  const url = new URL(path, location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  if (token()) url.searchParams.set("token", token());
  return url.href;
}

/** Follows a job's events: history first, then live; `onEvent` gets each parsed event. */
export function followJob(id, onEvent, onClose) {
  const ws = new WebSocket(wsUrl(`/ws/jobs/${encodeURIComponent(id)}`));
  ws.onmessage = (e) => onEvent(JSON.parse(e.data));
  ws.onclose = (e) => onClose?.(e);
  return ws;
}

export const FINAL = new Set(["succeeded", "failed", "cancelled"]);

export function fmtNumber(n, digits = 0) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  return Number(n).toLocaleString("en-US", {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = Number(n);
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  return m < 120 ? `${m} min ${Math.round(seconds % 60)} s` : `${(m / 60).toFixed(1)} h`;
}

export function fmtTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "–";
}

export function jobDuration(job) {
  if (!job.started_at) return null;
  const end = job.finished_at ? Date.parse(job.finished_at) : Date.now();
  return (end - Date.parse(job.started_at)) / 1000;
}

/** Small DOM builder: el("td", { class: "x" }, "text", child). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

export function statusBadge(status) {
  return el("span", { class: `status ${status}`, "data-status": status }, status);
}

/** A recording's state, coloured like job statuses. */
export function recordingBadge(state) {
  const look = { recording: "running", completed: "succeeded", incomplete: "retrying" }[state];
  return el("span", { class: `status ${look ?? state}`, "data-state": state }, state);
}

const NAV = [
  ["/", "Live"],
  ["/bench", "Bench"],
  ["/bench/history", "History"],
  ["/recordings", "Recordings"],
  ["/functions", "Functions"],
  ["/dashboard", "Dashboard"],
  ["/docs", "API"],
];

/** Renders the navigation bar into <header class="nav">. */
export function renderNav() {
  const header = document.querySelector("header.nav");
  if (!header) return;
  header.replaceChildren(
    el("a", { class: "brand", href: "/" }, "streamplay"),
    ...NAV.map(([href, label]) =>
      el("a", {
        href,
        class: location.pathname === href ? "active" : undefined,
      }, label)
    ),
    el("span", { class: "spacer" }),
    el("span", { id: "health", class: "muted" }, ""),
  );
  api("/api/health").then((h) => {
    document.getElementById("health").replaceChildren(
      "redis ",
      statusBadge(h.redis),
      " duckdb ",
      statusBadge(h.duckdb),
    );
  }).catch((e) => {
    const h = e.body;
    document.getElementById("health").replaceChildren(
      h?.redis
        ? el("span", {}, "redis ", statusBadge(h.redis), " duckdb ", statusBadge(h.duckdb))
        : "health unknown",
    );
  });
}

/**
 * A filtered history table read a page at a time, newest first, with the API's cursors: the
 * `#filters` form, the `#prev` / `#next` buttons, `#page-info` and `#error` of the page.
 * Each page is `GET <path>?<query>`, whose answer holds the page's items under `list` and
 * `next_cursor`; `row(item)` makes one `<tr>`. Returns `load`.
 */
export function cursorTable({ tbody, path, list, query, row, empty, columns, onLoad }) {
  const form = document.getElementById("filters");
  const errorBox = document.getElementById("error");
  const cursors = [null]; // cursor of each page visited
  let page = 0;
  let next = null;
  async function load() {
    errorBox.textContent = "";
    const q = query();
    if (cursors[page]) q.set("cursor", cursors[page]);
    let res;
    try {
      res = await api(`${path}?${q}`);
    } catch (e) {
      errorBox.textContent = e.message;
      return;
    }
    next = res.next_cursor;
    const items = res[list];
    tbody.replaceChildren(
      ...(items.length > 0
        ? items.map(row)
        : [el("tr", {}, el("td", { colspan: columns, class: "muted" }, empty))]),
    );
    document.getElementById("prev").disabled = page === 0;
    document.getElementById("next").disabled = !next;
    document.getElementById("page-info").textContent = `page ${page + 1}`;
    onLoad?.();
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
  return load;
}
