/**
 * Helpers for the session tests: the pages a remote browser is pointed at (served by the test
 * on 127.0.0.1), and a viewer on the session WebSocket that records what it gets.
 */
import { decodeFrame, type FrameHeader } from "../lib/sessions/frame.ts";

/** The remote page the tests drive: absolute positions so coordinates are known. */
export const FORM_PAGE = `<!doctype html><html><head><title>start</title><style>
body { margin: 0; font: 16px sans-serif; }
#b { position: absolute; left: 100px; top: 100px; width: 200px; height: 100px; }
#i1 { position: absolute; left: 100px; top: 300px; width: 300px; height: 40px; }
#i2 { position: absolute; left: 100px; top: 400px; width: 300px; height: 40px; }
#pop { position: absolute; left: 100px; top: 500px; }
#err { position: absolute; left: 500px; top: 100px; width: 100px; height: 50px; }
</style></head><body>
<button id="b" onclick="document.title = 'clicked'; console.log('button clicked')">Click me</button>
<input id="i1" onkeydown="if (event.key === 'Enter') console.log('typed:' + this.value)">
<input id="i2" oninput="console.log('field2:' + this.value)">
<a id="pop" href="/popup" target="_blank">open a popup</a>
<button id="err" onclick="setTimeout(() => { throw new Error('boom from the test page'); })">error</button>
</body></html>`;

/** A page that changes every animation frame. */
export const ANIMATED_PAGE = `<!doctype html><html><head><title>animated</title></head>
<body style="margin:0"><canvas id="c" width="1280" height="720"></canvas><script>
const c = document.getElementById("c").getContext("2d");
function draw(t) {
  for (let i = 0; i < 40; i++) {
    c.fillStyle = "hsl(" + ((t / 5 + i * 9) % 360) + ",70%,50%)";
    c.fillRect((i % 8) * 160, Math.floor(i / 8) * 144, 160, 144);
  }
  requestAnimationFrame(draw);
}
requestAnimationFrame(draw);
</script></body></html>`;

/** Coarse random noise every frame: JPEG cannot shrink it, so frames are large. */
export const NOISE_PAGE = `<!doctype html><html><head><title>noise</title></head>
<body style="margin:0"><canvas id="c" width="1280" height="720"></canvas><script>
const out = document.getElementById("c").getContext("2d");
const tile = new OffscreenCanvas(320, 180);
const t = tile.getContext("2d");
const img = t.createImageData(320, 180);
function draw() {
  const d = new Uint32Array(img.data.buffer);
  for (let i = 0; i < d.length; i++) d[i] = (Math.random() * 0xffffff) | 0xff000000;
  t.putImageData(img, 0, 0);
  out.imageSmoothingEnabled = false;
  out.drawImage(tile, 0, 0, 1280, 720);
  requestAnimationFrame(draw);
}
requestAnimationFrame(draw);
</script></body></html>`;

/**
 * Serves `/` (the form page), `/anim`, `/noise`, `/popup`, `/redirect?to=` and counts hits per
 * path.
 */
export function startPages(): { url: string; hits(path: string): number } & AsyncDisposable {
  const counts = new Map<string, number>();
  const ac = new AbortController();
  const html = (body: string) =>
    new Response(body, { headers: { "content-type": "text/html; charset=utf-8" } });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => {
      const url = new URL(req.url);
      counts.set(url.pathname, (counts.get(url.pathname) ?? 0) + 1);
      if (url.pathname === "/") return html(FORM_PAGE);
      if (url.pathname === "/anim") return html(ANIMATED_PAGE);
      if (url.pathname === "/noise") return html(NOISE_PAGE);
      if (url.pathname === "/popup") return html("<!doctype html><title>popup</title><p>popup");
      if (url.pathname === "/redirect") {
        return new Response(null, {
          status: 302,
          headers: { location: url.searchParams.get("to") ?? "/" },
        });
      }
      return new Response("not found", { status: 404 });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    hits: (path) => counts.get(path) ?? 0,
    async [Symbol.asyncDispose]() {
      ac.abort();
      await server.finished;
    },
  };
}

// deno-lint-ignore no-explicit-any
export type Json = any;

export interface Viewer {
  socket: WebSocket;
  /** JSON messages received, oldest first. */
  messages: Json[];
  frames: FrameHeader[];
  closed: Promise<CloseEvent>;
  send(message: unknown): void;
  /** Waits for a JSON message matching `match` (already received ones count). */
  next(match: (m: Json) => boolean, timeoutMs?: number): Promise<Json>;
  /** Sends `message` with a fresh ref and waits for its ack or error. */
  request(message: Record<string, unknown>, timeoutMs?: number): Promise<Json>;
  waitFrames(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

let refs = 0;

/** Connects a viewer to a session WebSocket and waits for its `hello`. */
export async function openViewer(wsUrl: string): Promise<Viewer> {
  const socket = new WebSocket(wsUrl);
  socket.binaryType = "arraybuffer";
  const messages: Json[] = [];
  const frames: FrameHeader[] = [];
  const waiters = new Set<() => void>();
  const closed = new Promise<CloseEvent>((resolve) => socket.addEventListener("close", resolve));
  socket.addEventListener("message", (e) => {
    if (typeof e.data === "string") messages.push(JSON.parse(e.data));
    else frames.push(decodeFrame(new Uint8Array(e.data)).header);
    for (const w of waiters) w();
  });
  const until = <T>(check: () => T | undefined, timeoutMs: number, what: string) =>
    new Promise<T>((resolve, reject) => {
      const tryNow = () => {
        const found = check();
        if (found === undefined) return false;
        waiters.delete(tryNow);
        clearTimeout(timer);
        resolve(found);
        return true;
      };
      const timer = setTimeout(() => {
        waiters.delete(tryNow);
        reject(
          new Error(`timed out waiting for ${what}; got ${JSON.stringify(messages.slice(-5))}`),
        );
      }, timeoutMs);
      if (!tryNow()) waiters.add(tryNow);
    });
  const viewer: Viewer = {
    socket,
    messages,
    frames,
    closed,
    send: (m) => socket.send(typeof m === "string" ? m : JSON.stringify(m)),
    next: (match, timeoutMs = 15_000) =>
      until(() => messages.find(match), timeoutMs, "a matching message"),
    request(message, timeoutMs = 20_000) {
      const ref = `r${++refs}`;
      viewer.send({ ...message, ref });
      return viewer.next(
        (m) => (m.type === "ack" || m.type === "error") && m.ref === ref,
        timeoutMs,
      );
    },
    waitFrames: (count, timeoutMs = 15_000) =>
      until(() => (frames.length >= count ? true : undefined), timeoutMs, `${count} frames`).then(
        () => {},
      ),
    async close() {
      if (socket.readyState !== WebSocket.CLOSED) socket.close();
      await closed;
    },
  };
  await viewer.next((m) => m.type === "hello");
  return viewer;
}
