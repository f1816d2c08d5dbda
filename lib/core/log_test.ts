/** The logger never prints a registered secret, a Bearer token or a ?token= value. */
import assert from "node:assert/strict";
import { createLogger } from "./log.ts";

Deno.test("secrets are masked in every log line", () => {
  const lines: string[] = [];
  const log = createLogger({ level: "debug", write: (l) => lines.push(l) });
  log.addSecret("rtmp-key-123456");
  log.info("pushing to rtmp://live.example/app/rtmp-key-123456");
  log.warn("request failed", { authorization: "Bearer abcdef0123456789" });
  log.child({ job: "j1" }).error("viewer joined /ws/sessions/s1?token=zzz-secret-zzz&x=1");
  assert.equal(lines.length, 3);
  for (const secret of ["rtmp-key-123456", "abcdef0123456789", "zzz-secret-zzz"]) {
    assert.ok(lines.every((l) => !l.includes(secret)), secret);
  }
  assert.match(lines[0]!, /rtmp:\/\/live\.example\/app\/\*\*\*/);
});

Deno.test("lines below the level are not written; json format is one object per line", () => {
  const lines: string[] = [];
  const log = createLogger({ level: "warn", format: "json", write: (l) => lines.push(l) });
  log.info("hidden");
  log.error("shown", { code: 7 });
  assert.equal(lines.length, 1);
  const obj = JSON.parse(lines[0]!);
  assert.equal(obj.level, "error");
  assert.equal(obj.msg, "shown");
  assert.equal(obj.code, 7);
});

Deno.test("a short secret is masked where it stands alone, not inside every word", () => {
  const lines: string[] = [];
  const log = createLogger({ level: "debug", write: (l) => lines.push(l) });
  log.addSecret("k");
  log.info("pushing to rtmp://live.example/app/k", { key: "k", url: "rtmp://h/app/k?x=1" });
  log.info("worker pool stopped");
  assert.doesNotMatch(lines[0]!, /\/k\b|"k"|=k\b/);
  assert.match(
    lines[0]!,
    /rtmp:\/\/live\.example\/app\/\*\*\* key=\*\*\* url=rtmp:\/\/h\/app\/\*\*\*\?x=1/,
  );
  assert.match(lines[1]!, /worker pool stopped$/);
  const json: string[] = [];
  const jlog = createLogger({ format: "json", write: (l) => json.push(l) });
  jlog.addSecret("ab.1");
  jlog.info("stream started", { rtmp_key: "ab.1", note: "tab.1x ab.12" });
  assert.equal(JSON.parse(json[0]!).rtmp_key, "***");
  assert.equal(JSON.parse(json[0]!).note, "tab.1x ab.12");
});
