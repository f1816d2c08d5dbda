/**
 * A function that signs in to a site and returns what the account page shows, with a screenshot of
 * it as an artifact.
 */
import type { Page } from "playwright";

interface Params {
  url: string;
  user: string;
  password: string;
}

interface Context {
  page: Page;
  params: Params;
  log(...args: unknown[]): void;
  artifacts: { save(name: string, data: Uint8Array | string): Promise<void> };
}

/**
 * Deploy it and run it:
 *
 *   curl -X PUT localhost:8000/api/functions/login -H 'content-type: application/json' \
 *     -d "$(jq -Rs '{code: .}' examples/function_login.ts)"
 *   curl -X POST 'localhost:8000/api/functions/login/invoke?wait=60' \
 *     -H 'content-type: application/json' \
 *     -d '{"params": {"url": "http://127.0.0.1:8080/login", "user": "ada", "password": "…"}}'
 *
 * `page` is a proxy for a Playwright page in a live session (watch it from the sessions list):
 * every method returns a promise, so `await page.title()` as well as `await page.click(…)`.
 */
export default async ({ page, params, log, artifacts }: Context) => {
  await page.goto(params.url);
  await page.getByLabel("User").fill(params.user);
  await page.getByLabel("Password").fill(params.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL("**/account");
  log(`signed in as ${params.user}`);
  await artifacts.save("account.png", await page.screenshot());
  return {
    title: await page.title(),
    orders: await page.locator("tbody tr").allInnerTexts(),
  };
};
