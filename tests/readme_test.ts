/** The README stays true: every configuration variable is documented with its default, and
 * every deno task it names exists. */
import assert from "node:assert/strict";
import { CONFIG_DEFAULTS } from "../lib/core/config.ts";
import denoJson from "../deno.json" with { type: "json" };

const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));

Deno.test("README documents every configuration variable with its default", () => {
  for (const [name, fallback] of Object.entries(CONFIG_DEFAULTS)) {
    const row = readme.split("\n").find((l) => new RegExp(`^\\|\\s*\`${name}\`\\s*\\|`).test(l));
    assert.ok(row, `README has no row for ${name}`);
    assert.ok(
      row.includes(fallback),
      `README row for ${name} does not show its default "${fallback}"`,
    );
  }
});

Deno.test("every deno task the README mentions exists", () => {
  const tasks = new Set(Object.keys(denoJson.tasks));
  for (const [, name] of readme.matchAll(/deno task ([a-z:]+)/g)) {
    assert.ok(tasks.has(name!), `README mentions "deno task ${name}", which deno.json lacks`);
  }
});
