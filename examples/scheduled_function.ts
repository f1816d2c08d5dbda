/**
 * A scheduled function: every five minutes it opens a page, times its load and keeps a screenshot
 * of what it showed. Each tick runs once however many streamplay processes run.
 */
import type { Page } from "playwright";

/** A scheduled run gets no params, so the page to watch is set here. */
const TARGET = "https://example.com/";

interface Context {
  page: Page;
  log(...args: unknown[]): void;
  artifacts: { save(name: string, data: Uint8Array | string): Promise<void> };
}

/**
 * Deploy it:
 *
 *   curl -X PUT localhost:8000/api/functions/uptime -H 'content-type: application/json' \
 *     -d "$(jq -Rs '{code: ., schedule: "*\/5 * * * *", timeout_s: 60}' examples/scheduled_function.ts)"
 *
 * Each run is a job (GET /api/jobs?type=function).
 */
export default async ({ page, log, artifacts }: Context) => {
  const started = Date.now();
  const response = await page.goto(TARGET, { waitUntil: "load" });
  const loadMs = Date.now() - started;
  const status = response ? await response.status() : null;
  log(`${TARGET} answered ${status} in ${loadMs} ms`);
  await artifacts.save("page.png", await page.screenshot());
  return { url: TARGET, status, load_ms: loadMs, title: await page.title() };
};
