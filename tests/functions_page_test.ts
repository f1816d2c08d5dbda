/**
 * The Functions page in headless Chromium: a syntax error is shown naming its line; a saved
 * function is listed with its version; invoking it shows the run's logs and result, and the run
 * is in the runs table; a second save makes version 2; Delete removes it.
 */
import assert from "node:assert/strict";
import { api, startServer } from "./helpers.ts";
import { launchBrowser } from "./browser.ts";

Deno.test("functions page: create, syntax error, invoke with logs and result, runs, delete", async (t) => {
  await using server = await startServer();
  await using browser = await launchBrowser();
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("dialog", (d) => d.accept());
  await page.goto(`${server.url}/functions`);
  await page.locator("header.nav a.active", { hasText: "Functions" }).waitFor();

  const code = `export default async ({ params, log }) => {
  log("adding", params.a, params.b);
  return { sum: params.a + params.b };
};`;

  await t.step("a syntax error is refused, naming its line", async () => {
    await page.fill('#editor [name="name"]', "adder");
    await page.uncheck('#editor [name="browser"]');
    await page.fill('#editor [name="code"]', "export default () => {\n  return 1 +;\n};");
    await page.click("#save");
    await page.locator("#error", { hasText: "code: line 2, column 13" }).waitFor();
    assert.equal((await api(server.url, "/api/functions")).body.functions.length, 0);
  });

  await t.step("a saved function is listed with its version", async () => {
    await page.fill('#editor [name="code"]', code);
    await page.click("#save");
    await page.locator('#functions tr[data-name="adder"]', { hasText: "v1" }).waitFor();
    await page.locator("#saved", { hasText: "v1" }).waitFor();
  });

  await t.step("invoking shows the run's logs and result, and the run in the table", async () => {
    await page.fill('#invoke [name="params"]', '{ "a": 2, "b": 40 }');
    await page.click("#run");
    await page.locator("#logs", { hasText: "[info] adding 2 40" }).waitFor();
    await page.locator("#result", { hasText: '"sum": 42' }).waitFor();
    await page.locator("#run-status", { hasText: "succeeded" }).waitFor();
    await page.locator("#runs tr", { hasText: '{"sum":42}' }).waitFor({ timeout: 15_000 });
  });

  await t.step(
    "a second save makes version 2; a bad params text is refused on the page",
    async () => {
      await page.fill('#editor [name="code"]', code.replace("a + params.b", "a * params.b"));
      await page.click("#save");
      await page.locator('#functions tr[data-name="adder"]', { hasText: "v2" }).waitFor();
      await page.fill('#invoke [name="params"]', "{ a: 2 ");
      await page.click("#run");
      await page.locator("#invoke-error", { hasText: "params: not valid JSON" }).waitFor();
    },
  );

  await t.step("Delete removes the function", async () => {
    await page.click("#delete");
    await page.locator("#functions", { hasText: "None yet." }).waitFor();
    assert.equal((await api(server.url, "/api/functions/adder")).status, 404);
  });

  assert.deepEqual(errors, []);
});
