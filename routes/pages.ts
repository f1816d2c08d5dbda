/**
 * The static UI: pages, their client modules under /static, and the few browser libraries the
 * pages use, served from node_modules under /vendor (the machines are offline: no CDN).
 * Pages carry no data; what they show comes from the API with the caller's token.
 */
import { Hono } from "hono";
import { serveStatic } from "hono/deno";
import type { AppEnv } from "../lib/http/context.ts";
import { MODULES, noCache, pageFile, STATIC, VENDOR } from "../lib/http/static_files.ts";

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
  "/functions": "functions.html",
};

export function pageRoutes() {
  const app = new Hono<AppEnv>();
  for (const [path, file] of Object.entries(PAGES)) {
    app.get(path, ...pageFile(file));
  }
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
