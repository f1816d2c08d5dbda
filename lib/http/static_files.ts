/**
 * Where the UI's files are: the pages under static/, put into the one layout (static/layout.html),
 * and the browser libraries in node_modules.
 */
import type { Context } from "hono";
import { fileURLToPath } from "node:url";

export const STATIC = fileURLToPath(new URL("../../static/", import.meta.url));
export const MODULES = fileURLToPath(new URL("../../node_modules/", import.meta.url));

/** Browser libraries exposed under /vendor/<name>: the only node_modules files served. */
export const VENDOR: Record<string, string> = {
  "uplot.js": "uplot/dist/uPlot.esm.js",
  "uplot.css": "uplot/dist/uPlot.min.css",
  "swagger-ui.js": "swagger-ui-dist/swagger-ui-bundle.js",
  "swagger-ui.css": "swagger-ui-dist/swagger-ui.css",
  "hls.mjs": "hls.js/dist/hls.min.mjs",
  "dash.mjs": "dashjs/dist/modern/esm/dash.mediaplayer.min.js",
};

export const noCache = async (
  c: { header(k: string, v: string): void },
  next: () => Promise<void>,
) => {
  await next();
  c.header("Cache-Control", "no-cache");
};

const escapeHtml = (s: string) =>
  s.replace(/[&<>"]/g, (ch) => `&${{ "&": "amp", "<": "lt", ">": "gt", '"': "quot" }[ch]};`);

/**
 * A page in the layout. A page file holds its own `<head>…</head>` bits (title, extra styles)
 * followed by its body; the layout adds the shared head, the nav bar and the closing tags. A
 * `<table data-columns="A,B,">` gets its header row (`<th>A</th><th>B</th><th></th>`). A page
 * file that is a whole document (`<!doctype html>`, the API docs with Swagger UI's own styles) is
 * served as it is.
 */
export async function renderPage(file: string): Promise<string> {
  const page = await Deno.readTextFile(`${STATIC}${file}`);
  if (/^\s*<!doctype/i.test(page)) return page;
  const [, head = "", body = page] = /^\s*<head>([\s\S]*?)<\/head>([\s\S]*)$/.exec(page) ?? [];
  const withTables = body.replace(
    /<table([^>]*?) data-columns="([^"]*)"([^>]*)>/g,
    (_, before: string, columns: string, after: string) =>
      `<table${before}${after}><thead><tr>${
        columns.split(",").map((c) => `<th>${escapeHtml(c.trim())}</th>`).join("")
      }</tr></thead>`,
  );
  const layout = await Deno.readTextFile(`${STATIC}layout.html`);
  return layout.replace("<!-- page head -->", () => head.trim())
    .replace("<!-- page body -->", () => withTables.trim());
}

/** Serves one page (`static/<file>` in the layout) uncached. */
export function pageFile(file: string) {
  return [noCache, async (c: Context) => c.html(await renderPage(file))] as const;
}
