/** Every page comes out of the one layout: one head with the shared styles, the nav bar, its own
 * title, and table header rows built from `data-columns`. */
import assert from "node:assert/strict";
import { renderPage, STATIC } from "./static_files.ts";

const pages = [...Deno.readDirSync(STATIC)]
  .map((e) => e.name)
  .filter((name) => name.endsWith(".html") && name !== "layout.html" && name !== "docs.html");

Deno.test("every page is served in the layout with its own title", async () => {
  assert.ok(pages.length >= 9, `pages found: ${pages.join(", ")}`);
  for (const file of pages) {
    const html = await renderPage(file);
    const count = (re: RegExp) => html.match(re)?.length ?? 0;
    assert.equal(count(/<head>/g), 1, `${file}: one <head>`);
    assert.equal(count(/<body>/g), 1, `${file}: one <body>`);
    assert.equal(count(/<header class="nav">/g), 1, `${file}: one nav bar`);
    assert.equal(count(/\/static\/css\/app\.css/g), 1, `${file}: the shared stylesheet once`);
    assert.match(html, /<head>[\s\S]*<title>[^<]+<\/title>[\s\S]*<\/head>/, `${file}: a title`);
    assert.ok(!html.includes("data-columns"), `${file}: table headers built`);
  }
});

Deno.test("data-columns becomes the table's header row", async () => {
  const html = await renderPage("history.html");
  assert.match(
    html,
    /<table id="jobs"><thead><tr><th>Created<\/th><th>Type<\/th><th>Status<\/th><th>Duration<\/th><th>Summary<\/th><th>Id<\/th><\/tr><\/thead>/,
  );
});

Deno.test("a whole document (the API docs) is served as it is", async () => {
  assert.equal(await renderPage("docs.html"), await Deno.readTextFile(`${STATIC}docs.html`));
});
