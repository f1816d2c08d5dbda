// Peer for `deno task bench:queue`: the same number of no-op jobs through BullMQ on the same
// Redis, the way BullMQ's own users run it (Node, Worker with a no-op processor, addBulk).
// Prints one JSON line: throughput and queue-to-start latency.
import { Queue, Worker } from "bullmq";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    redis: { type: "string" },
    jobs: { type: "string", default: "50000" },
    concurrency: { type: "string", default: "50" },
    latency: { type: "string", default: "300" },
  },
});
const url = new URL(values.redis);
const connection = { host: url.hostname, port: Number(url.port) };
const jobs = Number(values.jobs);
const concurrency = Number(values.concurrency);
const name = `bench-${process.pid}`;
const now = () => performance.timeOrigin + performance.now();

const queue = new Queue(name, { connection });
let completed = 0;
let target = 0;
let onDone = () => {};
const starts = new Map();
const worker = new Worker(name, async (job) => {
  if (job.data.t) starts.set(job.id, now() - job.data.t);
}, { connection, concurrency });
worker.on("completed", () => {
  completed++;
  if (completed === target) onDone();
});
await worker.waitUntilReady();

async function run(n) {
  target = completed + n;
  const done = new Promise((r) => (onDone = r));
  const t0 = now();
  for (let i = 0; i < n; i += 1000) {
    const size = Math.min(1000, n - i);
    await queue.addBulk(Array.from({ length: size }, () => ({ name: "noop", data: {} })));
  }
  await done;
  return now() - t0;
}

await run(Math.min(2000, jobs)); // warm-up
const ms = await run(jobs);

// Queue-to-start latency: one job at a time, a few ms apart.
const latencies = [];
for (let i = 0; i < Number(values.latency); i++) {
  target = completed + 1;
  const done = new Promise((r) => (onDone = r));
  const job = await queue.add("noop", { t: now() });
  await done;
  latencies.push(starts.get(job.id));
  await new Promise((r) => setTimeout(r, 2));
}
latencies.sort((a, b) => a - b);
const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
console.log(JSON.stringify({
  jobs,
  concurrency,
  seconds: ms / 1000,
  jobs_per_s: jobs / (ms / 1000),
  latency_p50_ms: pct(50),
  latency_p99_ms: pct(99),
}));
await worker.close();
await queue.obliterate({ force: true });
await queue.close();
process.exit(0);
