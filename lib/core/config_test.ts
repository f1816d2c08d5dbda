/** Configuration: defaults, validation messages naming the variable, tokens, the public-bind guard. */
import assert from "node:assert/strict";
import { checkServeSafety, loadConfig, parseTokens } from "./config.ts";

Deno.test("defaults match the documented ones", () => {
  const c = loadConfig({});
  assert.equal(c.host, "127.0.0.1");
  assert.equal(c.port, 8000);
  assert.equal(c.dataDir, "./data");
  assert.equal(c.dbPath, "./data/streamplay.duckdb");
  assert.equal(c.redisUrl, undefined);
  assert.equal(c.allowPrivate, true);
  assert.equal(c.concurrency, navigator.hardwareConcurrency);
  assert.equal(c.publicUrl, "http://127.0.0.1:8000");
});

Deno.test("a bad value fails with a message naming the variable", () => {
  assert.throws(() => loadConfig({ PORT: "eighty" }), /PORT must be an integer/);
  assert.throws(() => loadConfig({ STREAMPLAY_CONCURRENCY: "-1" }), /STREAMPLAY_CONCURRENCY/);
  assert.throws(
    () => loadConfig({ STREAMPLAY_ALLOW_PRIVATE: "maybe" }),
    /STREAMPLAY_ALLOW_PRIVATE must be true or false/,
  );
  assert.throws(() => loadConfig({ STREAMPLAY_LOG_LEVEL: "loud" }), /STREAMPLAY_LOG_LEVEL/);
  assert.throws(() => loadConfig({ STREAMPLAY_REDIS_PREFIX: "a b" }), /STREAMPLAY_REDIS_PREFIX/);
});

Deno.test("tokens parse as name:token:role and bad entries are named", () => {
  assert.deepEqual(parseTokens("ann:secret-one:admin, bob:secret-two:viewer"), [
    { name: "ann", token: "secret-one", role: "admin" },
    { name: "bob", token: "secret-two", role: "viewer" },
  ]);
  assert.throws(() => parseTokens("ann:secret-one"), /entry 1 must be name:token:role/);
  assert.throws(() => parseTokens("ann:secret-one:admin:0"), /max_sessions "0"/);
  assert.throws(() => parseTokens("ann:secret-one:admin:2:x"), /entry 1 must be/);
  assert.throws(() => parseTokens("ann:secret-one:root"), /role "root"/);
  assert.throws(() => parseTokens("ann:short:admin"), /8\+ characters/);
});

Deno.test("a token's max_sessions comes from its entry, else STREAMPLAY_TOKEN_MAX_SESSIONS", () => {
  const { tokens } = loadConfig({
    STREAMPLAY_TOKENS: "ann:secret-one:admin:3,bob:secret-two:operator",
    STREAMPLAY_TOKEN_MAX_SESSIONS: "1",
  });
  assert.deepEqual(tokens.map((t) => [t.name, t.maxSessions]), [["ann", 3], ["bob", 1]]);
  const unlimited = loadConfig({ STREAMPLAY_TOKENS: "bob:secret-two:operator" }).tokens[0]!;
  assert.equal(unlimited.maxSessions, undefined);
  assert.throws(
    () => loadConfig({ STREAMPLAY_TOKEN_MAX_SESSIONS: "none" }),
    /STREAMPLAY_TOKEN_MAX_SESSIONS must be an integer/,
  );
});

Deno.test("binding beyond loopback without tokens is refused", () => {
  assert.throws(() => checkServeSafety(loadConfig({ HOST: "0.0.0.0" })), /set STREAMPLAY_TOKENS/);
  checkServeSafety(loadConfig({ HOST: "0.0.0.0", STREAMPLAY_TOKENS: "ann:secret-one:admin" }));
  checkServeSafety(loadConfig({ HOST: "127.0.0.1" }));
});
