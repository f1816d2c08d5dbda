/** The README and docs/ stay true: every configuration variable is documented with its default,
 * every deno task they name exists, and every link between them resolves. */
import assert from "node:assert/strict";
import { CONFIG_DEFAULTS } from "../lib/core/config.ts";
import denoJson from "../deno.json" with { type: "json" };

const ROOT = new URL("../", import.meta.url);
const docs = [...Deno.readDirSync(new URL("docs/", ROOT))]
  .filter((e) => e.isFile && e.name.endsWith(".md"))
  .map((e) => `docs/${e.name}`);
const files = new Map(
  ["README.md", ...docs].map((f) => [f, Deno.readTextFileSync(new URL(f, ROOT))]),
);

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes. */
const slug = (heading: string) =>
  heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");

function anchors(markdown: string): Set<string> {
  const text = markdown.replace(/```[\s\S]*?```/g, "");
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map(([, h]) => slug(h!)));
}

Deno.test("README links into docs/ for every topic, and stays short", () => {
  const readme = files.get("README.md")!;
  assert.ok(readme.split("\n").length <= 250, "README.md is longer than 250 lines");
  for (const page of ["api", "sessions", "recordings", "streams", "capacity", "monitoring"]) {
    assert.ok(readme.includes(`](docs/${page}.md)`), `README does not link docs/${page}.md`);
  }
  for (const page of ["operations", "architecture", "performance"]) {
    assert.ok(readme.includes(`](docs/${page}.md)`), `README does not link docs/${page}.md`);
  }
  assert.ok(readme.includes("deno task start") && readme.includes("deno task test"));
});

Deno.test("docs/operations.md documents every configuration variable with its default", () => {
  const lines = files.get("docs/operations.md")!.split("\n");
  for (const [name, fallback] of Object.entries(CONFIG_DEFAULTS)) {
    const row = lines.find((l) => new RegExp(`^\\|\\s*\`${name}\`\\s*\\|`).test(l));
    assert.ok(row, `docs/operations.md has no row for ${name}`);
    assert.ok(
      row.includes(fallback),
      `the row for ${name} does not show its default "${fallback}"`,
    );
  }
});

Deno.test("every deno task the README and docs mention exists", () => {
  const tasks = new Set(Object.keys(denoJson.tasks));
  for (const [file, text] of files) {
    for (const [, name] of text.matchAll(/deno task ([a-z]+(?::[a-z]+)?)/g)) {
      assert.ok(tasks.has(name!), `${file} mentions "deno task ${name}", which deno.json lacks`);
    }
  }
});

Deno.test("every relative link in the README and docs resolves, anchors included", () => {
  for (const [file, text] of files) {
    const prose = text.replace(/```[\s\S]*?```/g, "");
    for (const [, target] of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue;
      const [path, anchor] = target!.split("#");
      const resolved = path ? new URL(path, new URL(file, ROOT)) : new URL(file, ROOT);
      const key = resolved.pathname.slice(ROOT.pathname.length);
      let body = files.get(key);
      if (body === undefined) {
        try {
          body = Deno.readTextFileSync(resolved);
        } catch {
          assert.fail(`${file} links to ${target}, which does not exist`);
        }
      }
      if (anchor) {
        assert.ok(anchors(body).has(anchor), `${file} links to ${target}: no such heading`);
      }
    }
  }
});
