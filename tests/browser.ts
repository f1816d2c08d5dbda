/**
 * Headless Chromium for browser tests, driven by Playwright (the system Chromium, or
 * STREAMPLAY_CHROMIUM). Pages under test are served by the test's own server on 127.0.0.1.
 */
import type { Browser } from "playwright";
import { CHROMIUM_ARGS, loadPlaywright } from "../lib/core/playwright.ts";

export async function launchBrowser(): Promise<Browser & AsyncDisposable> {
  const { chromium } = await loadPlaywright();
  const browser = await chromium.launch({
    executablePath: Deno.env.get("STREAMPLAY_CHROMIUM") ?? "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
  });
  return Object.assign(browser, { [Symbol.asyncDispose]: () => browser.close() });
}
