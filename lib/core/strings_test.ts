/** Lone surrogates and NUL characters become U+FFFD; data that needed nothing is returned as is. */
import assert from "node:assert/strict";
import { mayHoldLoneSurrogate, safeData, safeString } from "./strings.ts";

Deno.test("safeString replaces lone surrogates and NUL, keeps pairs", () => {
  assert.equal(safeString("a\ud800b"), "a\uFFFDb");
  assert.equal(safeString("err \udc00"), "err \uFFFD");
  assert.equal(safeString("a\0b"), "a\uFFFDb");
  assert.equal(safeString("smile \ud83d\ude00"), "smile \ud83d\ude00");
});

Deno.test("safeData copies only what changes, keys included", () => {
  const clean = { a: ["x", { b: 1 }], c: null };
  assert.equal(safeData(clean), clean);
  const bad = JSON.parse('{"type":"noop","params":{"message":"\\ud800","ok":["y"]},"k\\u0000":1}');
  const safe = safeData(bad);
  assert.notEqual(safe, bad);
  assert.deepEqual(safe, {
    type: "noop",
    params: { message: "\uFFFD", ok: ["y"] },
    "k\uFFFD": 1,
  });
  assert.equal(safe.params.ok, bad.params.ok, "an unchanged branch is shared, not copied");
  assert.equal(bad.params.message, "\ud800", "the input is not modified");
  const proto = JSON.parse('{"__proto__":{"x":"\\udc00"}}');
  assert.deepEqual(Object.keys(safeData(proto)), ["__proto__"]);
  const bytes = new Uint8Array([1, 2]);
  assert.equal(safeData({ bytes }).bytes, bytes);
});

Deno.test("mayHoldLoneSurrogate spots escaped surrogates in JSON text", () => {
  assert.ok(mayHoldLoneSurrogate(JSON.stringify({ m: "\ud800" })));
  assert.ok(!mayHoldLoneSurrogate(JSON.stringify({ m: "plain \ud83d\ude00" })));
});
