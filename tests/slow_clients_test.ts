/**
 * Slow and idle clients against a real server limited to 1,024 file descriptors: it keeps
 * answering, closes each within its bound, and past its descriptors refuses new connections and
 * recovers instead of dying.
 */
import assert from "node:assert/strict";
import { startServer, waitFor } from "./helpers.ts";
import { openDescriptors } from "../bench/common.ts";

const encoder = new TextEncoder();

/** /api/health as seen from 127.0.0.2 (another client address than the slow clients'). */
async function health(port: number): Promise<number> {
  const { stdout } = await new Deno.Command("curl", {
    args: [
      "-s",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "--interface",
      "127.0.0.2",
      "--max-time",
      "15",
      `http://127.0.0.1:${port}/api/health`,
    ],
    stdout: "piped",
    stderr: "null",
  }).output();
  return Number(new TextDecoder().decode(stdout)) || 0;
}

/** Lowers the descriptor limit of a running process. */
async function limitDescriptors(pid: number, n: number) {
  const { success } = await new Deno.Command("prlimit", {
    args: ["--pid", String(pid), `--nofile=${n}:${n}`],
  }).output();
  assert.ok(success, "prlimit");
}

interface Slow {
  conn: Deno.TcpConn;
  /**
   * Resolves with the seconds until the server closed it, what it answered, and whether it reset
   * the connection (closed it without reading what was sent).
   */
  ended: Promise<{ seconds: number; answer: string; reset: boolean }>;
}

/** Opens a connection, sends `bytes` and never more; `ended` says when the server let go. */
async function slow(port: number, bytes: string): Promise<Slow | null> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
  } catch {
    return null;
  }
  const t0 = performance.now();
  if (bytes) await conn.write(encoder.encode(bytes)).catch(() => {});
  // A server that never lets go fails the test after 30 s instead of hanging it.
  const giveUp = setTimeout(() => conn.close(), 30_000);
  const ended = (async () => {
    const buf = new Uint8Array(512);
    let answer = "";
    let reset = false;
    try {
      while (true) {
        const n = await conn.read(buf);
        if (n === null) break;
        answer += new TextDecoder().decode(buf.subarray(0, n));
      }
    } catch {
      reset = true;
    }
    clearTimeout(giveUp);
    return { seconds: (performance.now() - t0) / 1000, answer, reset };
  })();
  return { conn, ended };
}

const HALF_HEAD = "GET /api/health HTTP/1.1\r\nHost: x\r\nX-a: ";
const SHORT_BODY =
  'POST /api/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"type"';

Deno.test("slow clients are closed within their bounds while health stays answered", async () => {
  await using server = await startServer({
    env: { STREAMPLAY_HEADER_TIMEOUT_S: "3", STREAMPLAY_BODY_TIMEOUT_S: "3" },
  });
  await limitDescriptors(server.process.pid, 1024);
  const descriptorsBefore = await openDescriptors(server.process.pid);
  const descriptorsDuring: number[] = [];
  const opened: Slow[] = [];
  const kinds: Array<[string, string, number]> = [
    ["heads never finished", HALF_HEAD, 1_100],
    ["empty connections", "", 100],
    ["short bodies", SHORT_BODY, 100],
  ];
  const healthDuring: number[] = [];
  for (const [, bytes, count] of kinds) {
    for (let i = 0; i < count; i++) {
      const s = await slow(server.port, bytes);
      if (s) opened.push(s);
      if (i % 50 === 0) descriptorsDuring.push(await openDescriptors(server.process.pid));
      if (i % 200 === 0) healthDuring.push(await health(server.port));
    }
  }
  healthDuring.push(await health(server.port));
  const ends = await Promise.all(opened.map((s) => s.ended));
  for (const s of opened) {
    try {
      s.conn.close();
    } catch { /* given up already */ }
  }
  assert.deepEqual(healthDuring.filter((s) => s !== 200), [], `health: ${healthDuring}`);
  // One address holds at most STREAMPLAY_MAX_CONNECTIONS_PER_IP (128) at once, each closed at its
  // bound; the rest are answered 429 at once (or reset, when the close beats the answer).
  const refused = ends.filter((e) => e.answer.startsWith("HTTP/1.1 429") || e.reset);
  const held = ends.filter((e) => !refused.includes(e));
  assert.ok(refused.filter((e) => e.answer.startsWith("HTTP/1.1 429")).length > 500);
  // Held ones, at most 32 refusals being written, and a few of its own (health, Deno.serve).
  const most = Math.max(...descriptorsDuring);
  assert.ok(
    most - descriptorsBefore <= 128 + 32 + 24,
    `descriptors ${descriptorsBefore} -> ${most}`,
  );
  const longest = Math.max(...held.map((e) => e.seconds));
  // The bound, the 0.5 s between deadline checks, and room for a loaded machine.
  assert.ok(longest < 3 + 5, `a slow connection was held ${longest.toFixed(1)} s (bound 3 s)`);
  assert.equal(await health(server.port), 200, "answers afterwards");
});

Deno.test("out of descriptors: new connections are refused and the server recovers", async () => {
  await using server = await startServer({
    env: {
      STREAMPLAY_HEADER_TIMEOUT_S: "4",
      // Caps above what 1,024 descriptors can hold: the limit itself is hit.
      STREAMPLAY_MAX_CONNECTIONS: "5000",
      STREAMPLAY_MAX_CONNECTIONS_PER_IP: "5000",
    },
  });
  await limitDescriptors(server.process.pid, 1024);
  const opened: Slow[] = [];
  for (let i = 0; i < 1_100; i++) {
    const s = await slow(server.port, HALF_HEAD);
    if (s) opened.push(s);
  }
  await waitFor(() => /out of file descriptors/.test(server.output()), {
    what: "the server to say it ran out of descriptors",
  });
  const ends = await Promise.all(opened.map((s) => s.ended));
  for (const s of opened) {
    try {
      s.conn.close();
    } catch { /* given up already */ }
  }
  const longest = Math.max(...ends.map((e) => e.seconds));
  // Its bound runs from the accept, and out of descriptors a client waits to be accepted (or
  // told 503): every connection ends all the same, none is held for good.
  assert.ok(longest < 25, `a half-open connection was held ${longest.toFixed(1)} s (bound 4 s)`);
  assert.ok(ends.some((e) => e.answer.startsWith("HTTP/1.1 503")), "some were told 503");
  await waitFor(
    async () => (await health(server.port)) === 200 && /available again/.test(server.output()),
    { timeoutMs: 20_000, intervalMs: 500, what: "health to answer again" },
  );
  const out = server.output();
  assert.equal(out.match(/out of file descriptors/g)?.length, 1, "said once");
  assert.doesNotMatch(out, /Uncaught|Too many open files \(os error 24\)\s+at/);
});
