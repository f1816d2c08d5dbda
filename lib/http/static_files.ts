/** Where the UI's files are: the page files under static/, and the browser libraries in node_modules. */
import { serveStatic } from "hono/deno";
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

/** Serves one page file (`static/<file>`) uncached. */
export function pageFile(file: string) {
  return [noCache, serveStatic({ root: STATIC, path: file })] as const;
}
