/**
 * The static UI: pages, their client modules under /static, and the few browser libraries the
 * pages use, served from node_modules under /vendor (the machines are offline: no CDN).
 * Pages carry no data; what they show comes from the API with the caller's token.
 */
import { Hono } from "hono";
import { serveStatic } from "hono/deno";
import { fileURLToPath } from "node:url";
import type { AppEnv } from "../lib/http/context.ts";

const STATIC = fileURLToPath(new URL("../static/", import.meta.url));
const MODULES = fileURLToPath(new URL("../node_modules/", import.meta.url));

/** Browser libraries exposed under /vendor/<name>: the only node_modules files served. */
export const VENDOR: Record<string, string> = {
  "uplot.js": "uplot/dist/uPlot.esm.js",
  "uplot.css": "uplot/dist/uPlot.min.css",
  "swagger-ui.js": "swagger-ui-dist/swagger-ui-bundle.js",
  "swagger-ui.css": "swagger-ui-dist/swagger-ui.css",
  "hls.mjs": "hls.js/dist/hls.min.mjs",
  "dash.mjs": "dashjs/dist/modern/esm/dash.mediaplayer.min.js",
};

/** Path → page file. */
export const PAGES: Record<string, string> = {
  "/": "index.html",
  "/bench": "bench.html",
  "/bench/history": "history.html",
  "/bench/jobs/:id": "job.html",
  "/bench/compare": "compare.html",
  "/recordings": "recordings.html",
  "/recordings/:id": "recording.html",
  "/docs": "docs.html",
  "/dashboard": "dashboard.html",
};

const noCache = async (c: { header(k: string, v: string): void }, next: () => Promise<void>) => {
  await next();
  c.header("Cache-Control", "no-cache");
};

/** Serves one page file (`static/<file>`) uncached. */
export function pageFile(file: string) {
  return [noCache, serveStatic({ root: STATIC, path: file })] as const;
}

export function pageRoutes() {
  const app = new Hono<AppEnv>();
  for (const [path, file] of Object.entries(PAGES)) {
    app.get(path, ...pageFile(file));
  }
  app.route("/", assetRoutes());
  return app;
}

/** `/static/*` and `/vendor/<name>`: what pages load (also served by worker processes). */
export function assetRoutes() {
  const app = new Hono<AppEnv>();
  app.get(
    "/static/*",
    noCache,
    serveStatic({ root: STATIC, rewriteRequestPath: (p) => p.replace(/^\/static/, "") }),
  );
  app.get("/vendor/:name", async (c, next) => {
    const file = VENDOR[c.req.param("name")];
    if (!file) return c.json({ error: `No vendor file "${c.req.param("name")}"` }, 404);
    c.header("Cache-Control", "public, max-age=86400");
    return await serveStatic({ root: MODULES, path: file })(c, next);
  });
  return app;
}
