/**
 * Drive a streamplay session with your own Puppeteer script over CDP: the session is listed (marked
 * CDP) and watchable while it runs, and `browser.close()` ends it.
 */
import puppeteer from "puppeteer-core";

/**
 *   STREAMPLAY_URL=http://127.0.0.1:8000 STREAMPLAY_TOKEN=<operator token> \
 *     deno run --allow-net --allow-env examples/puppeteer_connect.ts https://example.com/
 */
const server = Deno.env.get("STREAMPLAY_URL") ?? "http://127.0.0.1:8000";
const token = Deno.env.get("STREAMPLAY_TOKEN");
const url = Deno.args[0] ?? "https://example.com/";

const endpoint = new URL("/cdp", server.replace(/^http/, "ws"));
if (token) endpoint.searchParams.set("token", token);

const browser = await puppeteer.connect({
  browserWSEndpoint: endpoint.href,
  // Keeps the session's own viewport (the one viewers see).
  defaultViewport: null,
});
try {
  const page = await browser.newPage();
  await page.goto(url);
  console.log(`title: ${await page.title()}`);
  const links = await page.$$eval("a", (as) => as.map((a) => a.textContent));
  console.log(`links: ${JSON.stringify(links)}`);
  const png = await page.screenshot();
  console.log(`screenshot: ${png.length} bytes`);
} finally {
  await browser.close();
}
