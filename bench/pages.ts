/**
 * The pages benchmarks load, served from memory on 127.0.0.1: a simple article, a complex
 * animated page of 2,000 DOM nodes, and a script-heavy TodoMVC-style app (bench/fixtures).
 */

/** A short article: one heading, a few paragraphs, one inline image. */
export const SIMPLE_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Simple page</title>
<style>body { font: 16px/1.5 system-ui, sans-serif; max-width: 40em; margin: 2em auto; }</style>
</head><body>
<h1>Simple page</h1>
${
  Array.from({ length: 12 }, (_, i) =>
    `<p>Paragraph ${
      i + 1
    }. Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation.</p>`)
    .join("\n")
}
<svg width="320" height="120" role="img" aria-label="chart"><rect width="320" height="120" fill="#4fa3ff"/></svg>
</body></html>`;

/**
 * A grid of `nodes` coloured cells, `width` px wide, whose colours all change every frame (hard
 * to encode, costly to render). `draw(t)` paints the frame for time `t` ms; the page animates
 * itself with requestAnimationFrame unless its URL ends in `?still` (then a caller draws set
 * times).
 */
export function colourGridPage(width: number, nodes = 2000): string {
  return `<!doctype html><html><head><title>animated</title></head>
<body style="margin:0;overflow:hidden"><div id="g" style="display:flex;flex-wrap:wrap;width:${width}px"></div>
<script>
const g = document.getElementById("g");
const cells = [];
for (let i = 0; i < ${nodes}; i++) {
  const d = document.createElement("div");
  d.style.cssText = "width:18px;height:18px;margin:1px;border-radius:3px";
  g.appendChild(d);
  cells.push(d);
}
function draw(t) {
  for (let i = 0; i < cells.length; i++) {
    cells[i].style.background = "hsl(" + ((t / 8 + i * 7) % 360) + ",70%,50%)";
  }
}
function frame(t) {
  draw(t);
  requestAnimationFrame(frame);
}
if (location.search !== "?still") requestAnimationFrame(frame);
</script></body></html>`;
}

/**
 * A dashboard-like page of `nodes` DOM nodes (cards of five nodes each), animated: every tenth
 * card pulses with a CSS transform, a spinner turns, and a progress bar and a frame counter are
 * updated from requestAnimationFrame.
 */
export function complexPage(nodes = 2000): string {
  const cards = Math.max(1, Math.round(nodes / 5));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Complex page</title>
<style>
  body { margin: 0; font: 12px system-ui, sans-serif; }
  header { position: sticky; top: 0; background: #fff; padding: 6px; display: flex; gap: 12px; }
  #bar { height: 6px; background: #4fa3ff; width: 0; }
  .spin { width: 16px; height: 16px; border: 3px solid #4fa3ff; border-top-color: transparent;
          border-radius: 50%; animation: spin 1s linear infinite; }
  #grid { display: grid; grid-template-columns: repeat(8, 1fr); gap: 6px; padding: 6px; }
  .card { border: 1px solid #ddd; border-radius: 4px; padding: 4px; }
  .card h3 { margin: 0; font-size: 12px; }
  .card p { margin: 2px 0; color: #555; }
  .pulse { animation: pulse 1.5s ease-in-out infinite alternate; }
  @keyframes spin { to { transform: rotate(360deg); } }
  @keyframes pulse { to { transform: scale(0.92); } }
</style></head><body>
<header><div class="spin"></div><strong>Complex page</strong> frame <span id="frames">0</span></header>
<div id="bar"></div>
<div id="grid"></div>
<script>
  const grid = document.getElementById("grid");
  for (let i = 0; i < ${cards}; i++) {
    const card = document.createElement("div");
    card.className = i % 10 === 0 ? "card pulse" : "card";
    card.innerHTML = "<h3>Item " + i + "</h3><p>Value " + (i * 7919 % 1000) +
      "</p><span>ok</span> <button>Open</button>";
    grid.appendChild(card);
  }
  let frames = 0;
  const counter = document.getElementById("frames");
  const bar = document.getElementById("bar");
  (function tick() {
    frames++;
    counter.textContent = frames;
    bar.style.width = (frames % 600) / 6 + "%";
    requestAnimationFrame(tick);
  })();
</script>
</body></html>`;
}

/** The TodoMVC-style app: the whole UI rendered by JavaScript from a store of 400 items. */
export const TODO_APP = Deno.readTextFileSync(new URL("./fixtures/todomvc.html", import.meta.url));

/** Serves `/simple`, `/complex` and `/todo` on 127.0.0.1 (any other path: the simple page). */
export function servePages(): { url: string; close(): Promise<void> } {
  const complex = complexPage();
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => {
      const path = new URL(req.url).pathname;
      const html = path === "/complex" ? complex : path === "/todo" ? TODO_APP : SIMPLE_PAGE;
      return new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    close: async () => {
      ac.abort();
      await server.finished;
    },
  };
}
