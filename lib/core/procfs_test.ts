/** The /proc parsers against captured text, and a real read of this process's own tree. */
import assert from "node:assert/strict";
import {
  coresUsed,
  listProcesses,
  parseMeminfo,
  parseProcStat,
  parseSmapsPss,
  parseStatLines,
  processTree,
  readStats,
} from "./procfs.ts";

Deno.test("CPU cores used are the sum of each core's busy fraction", () => {
  const before = parseProcStat(
    "cpu  0 0 0 0 0 0 0 0 0 0\ncpu0 100 0 100 800 0 0 0 0 0 0\ncpu1 0 0 0 1000 0 0 0 0 0 0\n",
  );
  // core 0: 150 busy of 200 → 0.75; core 1: 50 busy (user + iowait idle) of 200 → 0.25
  const after = parseProcStat(
    "cpu  0 0 0 0 0 0 0 0 0 0\ncpu0 200 0 150 850 0 0 0 0 0 0\ncpu1 50 0 0 1100 50 0 0 0 0 0\n",
  );
  assert.equal(before.length, 2);
  assert.equal(coresUsed(before, after), 1);
});

Deno.test("memory used is MemTotal minus MemAvailable", () => {
  const m = parseMeminfo(
    "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    400 kB\n",
  );
  assert.deepEqual(m, { total: 1000 * 1024, used: 600 * 1024 });
});

Deno.test("stat lines parse names with spaces and parentheses, and trees follow parents", () => {
  const text = [
    "10 (deno) S 1 10 10 0 -1 0 0 0 0 0 50 25 0 0 20 0 1 0 100 1000 300",
    "11 (chromium) S 10 10 10 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 100 1000 200",
    "12 (Web Content (x)) S 11 10 10 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 100 1000 100",
    "13 (other) S 1 13 13 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 100 1000 100",
  ].join("\n");
  const all = parseStatLines(text);
  assert.deepEqual(all[2], {
    pid: 12,
    ppid: 11,
    name: "Web Content (x)",
    state: "S",
    cpuTicks: 2,
    userTicks: 1,
    systemTicks: 1,
    minorFaults: 0,
    rssBytes: 409600,
  });
  assert.equal(all[0]!.cpuTicks, 75);
  assert.deepEqual(processTree([11], all).map((p) => p.pid).sort(), [11, 12]);
  assert.deepEqual(processTree([10], all).map((p) => p.pid).sort(), [10, 11, 12]);
  assert.deepEqual(processTree([99], all), []);
});

Deno.test("PSS comes from smaps_rollup", () => {
  assert.equal(
    parseSmapsPss("00400000-7fff [rollup]\nRss:  2000 kB\nPss:  1234 kB\n"),
    1234 * 1024,
  );
  assert.equal(parseSmapsPss(""), null);
});

Deno.test("the process list holds this process and a child it started", async () => {
  const child = new Deno.Command("sh", { args: ["-c", "sleep 5"] }).spawn();
  try {
    const all = await listProcesses();
    const tree = processTree([Deno.pid], all);
    assert.ok(tree.some((p) => p.pid === child.pid && p.ppid === Deno.pid));
    assert.ok(tree.find((p) => p.pid === Deno.pid)!.rssBytes > 0);
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
});

Deno.test("stats are read for the processes alive, and one that ended is left out", async () => {
  const ended = new Deno.Command("true").spawn();
  await ended.status;
  // Busy work, so this process has CPU time to show.
  for (const until = performance.now() + 200; performance.now() < until;);
  const stats = await readStats([Deno.pid, ended.pid]);
  assert.deepEqual(stats.map((s) => s.pid), [Deno.pid]);
  assert.ok(stats[0]!.cpuTicks > 0, "this process has used CPU");
  assert.match(stats[0]!.state, /^[RS]$/, "running, or sleeping while it waits for the read");
});
