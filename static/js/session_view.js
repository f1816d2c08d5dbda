// The live view of one session: frames on a canvas scaled to the window, input mapped to the remote
// page's CSS pixels, an overlay of live figures, navigation, tabs, and the page events panel.
import { api, el, fmtBytes, fmtNumber, token } from "./api.js";

const decoder = new TextDecoder();

/**
 * A frame is a binary message, [u32 LE header length][header JSON][JPEG]; header { seq, ts, w, h,
 * ot, ps, sx, sy, tab }. Everything else is JSON (lib/sessions/protocol.ts).
 */
function parseFrame(buffer) {
  const view = new DataView(buffer);
  const length = view.getUint32(0, true);
  const header = JSON.parse(decoder.decode(new Uint8Array(buffer, 4, length)));
  return { header, jpeg: new Uint8Array(buffer, 4 + length) };
}

const MODIFIERS = new Set(["Control", "Meta", "Shift", "Alt"]);

/** One line for a recorded input: what was done, on which element. */
export function describeInput(e) {
  const i = e.input ?? {};
  const on = e.target?.selector
    ? ` on ${e.target.selector}`
    : e.target?.tag === "nothing"
    ? " on nothing"
    : "";
  switch (i.type) {
    case "mouse":
      return `${i.action} ${Math.round(i.x)},${Math.round(i.y)}${on}`;
    case "wheel":
      return `scroll ${i.dx},${i.dy}${on}`;
    case "key":
      return `key ${i.action} ${i.key}${on}`;
    case "text":
      return `type "${i.text}"${on}`;
    case "navigate":
      return `go to ${i.url}`;
    case "tab":
      return `tab ${i.action}${i.tab ? ` ${i.tab}` : ""}`;
    case "viewport":
      return `viewport ${i.width}×${i.height}`;
    default:
      return i.type ?? "input";
  }
}

/** One line for a page event of a session or a recording's timeline. */
export function describeEvent(e) {
  switch (e.type) {
    case "input":
      return describeInput(e) + (e.masked ? " (masked)" : "");
    case "navigation":
      return e.url;
    case "navigation_failed":
      return `${e.url}: ${e.error}`;
    case "console":
      return `[${e.level}] ${e.message}`;
    case "page_error":
      return e.message;
    case "failed_request":
      return `${e.method} ${e.url} ${e.status ?? e.error}`;
    case "request_blocked":
      return `${e.target}: ${e.reason}`;
    case "tab":
      return `${e.action} ${e.tab}${e.url ? ` ${e.url}` : ""}`;
    case "dialog":
      return `${e.kind} "${e.message}" ${e.answer}`;
    case "viewer":
      return `${e.action} (${e.viewer_count} watching)`;
    case "replay_divergence":
      return `${e.kind}: ${e.message}`;
    default:
      return JSON.stringify(e);
  }
}
const BUTTONS = ["left", "middle", "right"];

/**
 * What a share link's token allows ({ session, role, expiresAt }), read from its payload (the
 * server checks the signature); null for any other token.
 */
export function shareOf(token) {
  if (!token?.startsWith("spshare.")) return null;
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(payload));
    return { session: claims.s, role: claims.r, expiresAt: new Date(claims.e * 1000) };
  } catch {
    return null;
  }
}

/** Controls an operator uses; a share link's viewer sees none of them. */
const OPERATOR_CONTROLS = [
  "#nav-back",
  "#nav-forward",
  "#nav-reload",
  "#urlbar",
  "#pause",
  "#record",
  "#stop",
];

/**
 * Opens session `id` in `root`; `viewOnly` asks for a view-only seat; `share` (from `shareOf`)
 * shows only the controls its role may use. Returns { close }.
 */
export function openSessionView(root, id, { viewOnly = false, share = null } = {}) {
  const $ = (sel) => root.querySelector(sel);
  // A share link's viewer may only watch: no control is shown and no input is sent.
  const watchOnly = share?.role === "viewer";
  if (share) {
    for (const sel of watchOnly ? [...OPERATOR_CONTROLS, "#share"] : ["#share"]) {
      $(sel).classList.add("hidden");
    }
  }
  const canvas = $("#screen");
  const ctx = canvas.getContext("2d");
  // Keyboard focus lives in a hidden textarea over the canvas: it reliably gets key, paste and
  // composition events, which a focused canvas or div does not.
  const keys = $("#keys");
  const focus = () => keys.focus({ preventScroll: true });
  let socket = null;
  let session = null;
  let interactive = false;
  let header = null;
  let decoding = false;
  let nextFrame = null;
  let framesShown = 0;
  let clockOffset = 0;
  let bestRtt = Infinity;
  let ended = false;
  const recent = []; // [receivedAt, bytes, latencyMs]
  const held = new Set();
  const cleanups = [];

  const notice = (text, kind = "error") => {
    const box = $("#notice");
    box.textContent = text;
    box.dataset.kind = kind;
    box.classList.toggle("hidden", !text);
  };

  const send = (message) => {
    if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  };
  // View-only seats send input too: the server decides, and its refusal is shown (a share
  // link's viewer has nothing to send).
  const input = (message) => {
    if (!watchOnly) send(message);
  };

  // ---- frames ----

  const draw = async (frame) => {
    decoding = true;
    try {
      const bitmap = await createImageBitmap(new Blob([frame.jpeg], { type: "image/jpeg" }));
      if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
        canvas.width = bitmap.width;
        canvas.height = bitmap.height;
      }
      ctx.drawImage(bitmap, 0, 0);
      bitmap.close();
      header = frame.header;
      framesShown++;
      canvas.dataset.frames = String(framesShown);
      canvas.dataset.tab = header.tab;
    } catch {
      // a frame that does not decode is skipped
    } finally {
      decoding = false;
    }
    if (nextFrame) {
      const next = nextFrame;
      nextFrame = null;
      draw(next);
    }
  };

  const onFrame = (buffer) => {
    const frame = parseFrame(buffer);
    const now = Date.now();
    recent.push([now, buffer.byteLength, now + clockOffset - frame.header.ts]);
    // Latest frame wins: while one decodes, only the newest waits.
    if (decoding) nextFrame = frame;
    else draw(frame);
  };

  const overlay = () => {
    const now = Date.now();
    while (recent.length && recent[0][0] < now - 1000) recent.shift();
    const bits = recent.reduce((a, r) => a + r[1], 0) * 8;
    const lat = recent.map((r) => r[2]).sort((a, b) => a - b);
    const p50 = lat.length ? lat[Math.floor(lat.length / 2)] : null;
    const viewers = session?.metrics?.viewer_count ?? 0;
    const box = $("#overlay");
    box.dataset.fps = String(recent.length);
    box.dataset.viewers = String(viewers);
    box.replaceChildren(
      el("span", {}, `${recent.length} fps`),
      el("span", {}, `${fmtBytes(bits / 8)}/s (${fmtNumber(bits / 1e6, 1)} Mbit/s)`),
      el("span", {}, p50 === null ? "latency –" : `latency ${Math.max(0, Math.round(p50))} ms`),
      el("span", { id: "viewer-count" }, `${viewers} viewer${viewers === 1 ? "" : "s"}`),
      el("span", {}, interactive ? "interactive" : "view-only"),
    );
  };
  const overlayTimer = setInterval(overlay, 500);
  cleanups.push(() => clearInterval(overlayTimer));

  // ---- state, tabs, events ----

  const showState = (s) => {
    session = s;
    root.dataset.state = s.state;
    $("#state").replaceChildren(el("span", { class: `status ${s.state}` }, s.state));
    const urlInput = $("#url-input");
    if (document.activeElement !== urlInput) urlInput.value = s.url ?? "";
    $("#page-title").textContent = s.title || s.url || "";
    $("#pause").textContent = s.state === "paused" ? "Resume" : "Pause";
    $("#tabs").replaceChildren(
      ...(s.tabs ?? []).map((t) =>
        watchOnly ? el("span", { class: `tab${t.active ? " active" : ""}` }, t.title || t.url) : el(
          "span",
          { class: `tab${t.active ? " active" : ""}`, dataset: { tab: t.id } },
          el("button", {
            class: "secondary",
            title: t.url,
            onclick: () => input({ type: "tab", action: "switch", tab: t.id }),
          }, t.title || t.url || t.id),
          el("button", {
            class: "secondary close",
            title: "Close tab",
            onclick: () => input({ type: "tab", action: "close", tab: t.id }),
          }, "×"),
        )
      ),
      watchOnly ? "" : el("button", {
        class: "secondary",
        title: "New tab",
        onclick: () => input({ type: "tab", action: "new" }),
      }, "+"),
    );
    overlay();
  };

  const showEvent = (e) => {
    // While recorded every input is an event: pointer moves and key releases are left out here.
    if (e.type === "input" && (e.input?.action === "move" || e.input?.action === "up")) return;
    const shot = e.screenshot_url
      ? el("button", {
        class: "secondary link",
        onclick: async (ev) => {
          const res = await fetch(e.screenshot_url, {
            headers: token() ? { authorization: `Bearer ${token()}` } : {},
          });
          if (!res.ok) return notice(`Screenshot: HTTP ${res.status}`);
          const img = el("img", { src: URL.createObjectURL(await res.blob()), class: "shot" });
          ev.target.replaceWith(img);
        },
      }, "screenshot")
      : null;
    const row = el(
      "div",
      { class: `ev ${e.type}`, dataset: { type: e.type } },
      el("span", { class: "muted" }, new Date(e.ts).toLocaleTimeString()),
      el("span", { class: "kind" }, e.type.replace("_", " ")),
      el("span", { class: "text" }, describeEvent(e)),
      shot,
    );
    const box = $("#events");
    const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 20;
    box.append(row);
    while (box.children.length > 500) box.firstChild.remove();
    if (atBottom) box.scrollTop = box.scrollHeight;
  };

  const showEnded = (state, reason) => {
    ended = true;
    root.dataset.state = state;
    $("#state").replaceChildren(el("span", { class: `status ${state}` }, state));
    const banner = $("#stage-banner");
    banner.textContent = `Session ${state}: ${reason ?? ""}`;
    banner.classList.remove("hidden");
  };

  const onMessage = (m) => {
    switch (m.type) {
      case "hello":
        interactive = m.viewer.interactive;
        root.dataset.interactive = String(interactive);
        root.classList.toggle("view-only", !interactive);
        showState(m.session);
        for (const e of m.events) showEvent(e);
        break;
      case "state":
        showState(m.session);
        break;
      case "stats":
        if (session) session.metrics = m.metrics;
        break;
      case "event":
        showEvent(m.event);
        break;
      case "error":
        notice(m.error);
        break;
      case "clipboard":
        navigator.clipboard?.writeText(m.text).catch(() => {});
        notice(`Copied ${m.text.length} characters`, "info");
        break;
      case "pong": {
        const rtt = Date.now() - m.t;
        if (rtt <= bestRtt) {
          bestRtt = rtt;
          clockOffset = m.server_time - (m.t + rtt / 2);
        }
        break;
      }
      case "ended":
        showEnded(m.state, m.reason);
        break;
    }
  };

  // ---- input ----

  /** Page coordinates (CSS pixels of the remote viewport) of a pointer event. */
  const point = (e) => {
    const rect = canvas.getBoundingClientRect();
    const w = header?.w ?? canvas.width;
    const h = header?.h ?? canvas.height;
    return {
      x: Math.round(((e.clientX - rect.left) / rect.width) * w * 100) / 100,
      y: Math.round(((e.clientY - rect.top) / rect.height) * h * 100) / 100 + (header?.ot ?? 0),
    };
  };

  let moveQueued = null;
  const on = (target, type, handler, options) => {
    target.addEventListener(type, handler, options);
    cleanups.push(() => target.removeEventListener(type, handler, options));
  };
  on(canvas, "mousemove", (e) => {
    if (!interactive) return; // hovering is not worth a refusal per move
    const first = moveQueued === null;
    moveQueued = point(e);
    if (first) {
      requestAnimationFrame(() => {
        input({ type: "mouse", action: "move", ...moveQueued });
        moveQueued = null;
      });
    }
  });
  on(canvas, "mousedown", (e) => {
    e.preventDefault();
    focus();
    input({
      type: "mouse",
      action: "down",
      ...point(e),
      button: BUTTONS[e.button] ?? "left",
      click_count: Math.min(3, e.detail || 1),
    });
  });
  on(canvas, "mouseup", (e) => {
    e.preventDefault();
    input({
      type: "mouse",
      action: "up",
      ...point(e),
      button: BUTTONS[e.button] ?? "left",
      click_count: Math.min(3, e.detail || 1),
    });
  });
  on(canvas, "contextmenu", (e) => e.preventDefault());
  on(canvas, "wheel", (e) => {
    e.preventDefault();
    const scale = e.deltaMode === 1 ? 40 : e.deltaMode === 2 ? 800 : 1;
    input({ type: "wheel", ...point(e), dx: e.deltaX * scale, dy: e.deltaY * scale });
  }, { passive: false });
  on(keys, "keydown", (e) => {
    if (e.isComposing) return;
    // Paste: the local clipboard text arrives through the paste event instead.
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "v") return;
    e.preventDefault();
    if (MODIFIERS.has(e.key)) held.add(e.key);
    input({ type: "key", action: "down", key: e.key });
  });
  on(keys, "keyup", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "v") return;
    e.preventDefault();
    held.delete(e.key);
    input({ type: "key", action: "up", key: e.key });
  });
  on(keys, "compositionend", (e) => {
    if (e.data) input({ type: "text", text: e.data });
    keys.value = "";
  });
  on(keys, "input", () => {
    if (!keys.matches(":focus") || keys.value.length > 1000) keys.value = "";
  });
  on(keys, "paste", (e) => {
    const text = e.clipboardData?.getData("text/plain");
    e.preventDefault();
    if (text) input({ type: "text", text });
  });
  // Modifiers held when focus leaves would stay pressed on the remote side.
  on(keys, "blur", () => {
    for (const key of held) input({ type: "key", action: "up", key });
    held.clear();
  });

  // ---- toolbar ----

  const rest = async (path, method = "POST") => {
    try {
      return await api(`/api/sessions/${id}${path}`, { method });
    } catch (err) {
      notice(err.message);
      return null;
    }
  };
  on($("#nav-back"), "click", () => input({ type: "back" }));
  on($("#nav-forward"), "click", () => input({ type: "forward" }));
  on($("#nav-reload"), "click", () => input({ type: "reload" }));
  on($("#urlbar"), "submit", (e) => {
    e.preventDefault();
    let url = $("#url-input").value.trim();
    if (url && !/^[a-z][a-z0-9+.-]*:/i.test(url)) url = `https://${url}`;
    if (url) input({ type: "navigate", url });
    focus();
  });
  on($("#pause"), "click", async () => {
    const s = await rest(session?.state === "paused" ? "/resume" : "/pause");
    if (s) showState({ ...session, ...s });
  });
  on($("#shot"), "click", async () => {
    const res = await fetch(`/api/sessions/${id}/screenshot`, {
      headers: token() ? { authorization: `Bearer ${token()}` } : {},
    });
    if (!res.ok) return notice(`Screenshot: ${(await res.json()).error}`);
    open(URL.createObjectURL(await res.blob()), "_blank");
  });
  // Recording: starts with the defaults; stopping shows where the recording is.
  let recording = null;
  on($("#record"), "click", async () => {
    try {
      if (!recording) {
        recording = await api(`/api/sessions/${id}/recording`, { method: "POST", json: {} });
        $("#record").textContent = "Stop recording";
        notice(`Recording (${recording.codec}, ${recording.quality})`, "info");
      } else {
        const done = await api(`/api/sessions/${id}/recording`, { method: "DELETE" });
        recording = null;
        $("#record").textContent = "Record";
        const box = $("#notice");
        box.replaceChildren(
          `Recorded ${done.duration_seconds} s: `,
          el("a", { href: `/recordings/${done.recording_id}` }, "open the recording"),
        );
        box.dataset.kind = "info";
        box.classList.remove("hidden");
      }
    } catch (err) {
      notice(err.message);
    }
  });
  // A view-only link: a token for watching this session only, for an hour.
  on($("#share"), "click", async () => {
    let link;
    try {
      link = await api(`/api/sessions/${id}/share`, {
        method: "POST",
        json: { role: "viewer", expires_in_s: 3600 },
      });
    } catch (err) {
      return notice(err.message);
    }
    const box = $("#share-link");
    box.value = link.url;
    box.classList.remove("hidden");
    box.select();
    navigator.clipboard?.writeText(link.url).catch(() => {});
    notice(
      `View-only link copied (until ${new Date(link.expires_at).toLocaleTimeString()})`,
      "info",
    );
  });
  on($("#stop"), "click", async () => {
    const final = await rest("", "DELETE");
    if (final) showEnded(final.state, final.reason);
  });

  // ---- connect ----

  (async () => {
    let info;
    try {
      info = await api(`/api/sessions/${encodeURIComponent(id)}`);
    } catch (err) {
      showEnded("failed", err.message);
      return;
    }
    showState(info);
    if (!share) {
      api(`/api/recordings?session_id=${encodeURIComponent(id)}&state=recording&limit=1`)
        .then(({ recordings }) => {
          if (!recordings[0] || recording) return;
          recording = recordings[0];
          $("#record").textContent = "Stop recording";
        }).catch(() => {});
    }
    if (!info.active || !info.ws_url) {
      showEnded(info.state, info.reason);
      return;
    }
    const url = new URL(info.ws_url);
    if (token()) url.searchParams.set("token", token());
    if (viewOnly) url.searchParams.set("mode", "view");
    socket = new WebSocket(url);
    socket.binaryType = "arraybuffer";
    socket.onmessage = (e) => {
      if (typeof e.data === "string") onMessage(JSON.parse(e.data));
      else onFrame(e.data);
    };
    socket.onopen = () => {
      const ping = () => send({ type: "ping", t: Date.now() });
      ping();
      const timer = setInterval(ping, 5000);
      cleanups.push(() => clearInterval(timer));
    };
    socket.onclose = (e) => {
      if (!ended) showEnded("disconnected", e.reason || `connection closed (${e.code})`);
    };
  })();

  if (!watchOnly) focus();
  return {
    close() {
      for (const c of cleanups) c();
      socket?.close();
    },
  };
}
