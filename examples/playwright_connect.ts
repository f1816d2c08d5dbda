/**
 * Drive a streamplay session with your own Playwright script over CDP: the session is listed
 * (marked CDP) and watchable while it runs, `record=1` records it, and `browser.close()` ends it.
 */
import { loadPlaywright } from "../lib/core/playwright.ts";

/**
 *   STREAMPLAY_URL=http://127.0.0.1:8000 STREAMPLAY_TOKEN=<operator token> \
 *     deno run --allow-net --allow-env examples/playwright_connect.ts https://example.com/
 */
const server = Deno.env.get("STREAMPLAY_URL") ?? "http://127.0.0.1:8000";
const token = Deno.env.get("STREAMPLAY_TOKEN");
const url = Deno.args[0] ?? "https://example.com/";

const endpoint = new URL("/cdp", server.replace(/^http/, "ws"));
endpoint.searchParams.set("record", "1");
if (token) endpoint.searchParams.set("token", token);

// Under Node: `import { chromium } from "playwright"`. Under Deno, `loadPlaywright` answers
// Playwright's probe of /proc that Deno allows only with --allow-all.
const { chromium } = await loadPlaywright();
const browser = await chromium.connectOverCDP(endpoint.href);
try {
  // The session's own browser context: its pages are the ones viewers watch.
  const context = browser.contexts()[0]!;
  const page = await context.newPage();
  await page.goto(url);
  console.log(`title: ${await page.title()}`);
  const links = await page.locator("a").evaluateAll((as) => as.map((a) => a.textContent));
  console.log(`links: ${JSON.stringify(links)}`);
  const png = await page.screenshot();
  console.log(`screenshot: ${png.length} bytes`);
} finally {
  await browser.close();
}
