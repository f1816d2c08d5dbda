/**
 * The history writer with real Redis and DuckDB: events reach DuckDB, subscribers and `recent()`; a
 * restart reads on from the committed offset, so each event is stored once; one bad event neither
 * stops nor delays the others.
 */
import assert from "node:assert/strict";
import { createQueue, newJobId } from "../jobs/queue.ts";
import { blockingRedis, connectRedis, waitReady } from "../core/redis.ts";
import { openHistory } from "./store.ts";
import { LEGACY_HISTORY_GROUP, startHistoryWriter } from "./writer.ts";
import { createLogger } from "../core/log.ts";
import { idToSeq, type JobEvent, parseStreamFields } from "../jobs/events.ts";
import { startRedis, tempDir, uniquePrefix, waitFor } from "../../tests/helpers.ts";

const log = createLogger({ level: "error" });

async function setup() {
  const server = await startRedis();
  const dir = await tempDir();
  const redis = connectRedis(server.url, "command");
  await waitReady(redis);
  const prefix = uniquePrefix();
  const queue = createQueue({ redis, prefix });
  const history = await openHistory(`${dir.path}/h.duckdb`);
  return {
    server,
    redis,
    prefix,
    queue,
    history,
    dbPath: `${dir.path}/h.duckdb`,
    startWriter: () =>
      startHistoryWriter({
        redis: blockingRedis(() => connectRedis(server.url, "blocking")),
        prefix,
        history,
        log,
      }),
    async [Symbol.asyncDispose]() {
      redis.disconnect();
      await history.close();
      await server.close();
      await dir[Symbol.asyncDispose]();
    },
  };
}

const noop = () => ({
  id: newJobId(),
  type: "noop",
  params: { a: 1 },
  maxAttempts: 3,
  timeoutS: 60,
});

Deno.test("events reach DuckDB, live subscribers and recent() until stored", async () => {
  await using t = await setup();
  const writer = await t.startWriter();
  const job = noop();
  const live: JobEvent[] = [];
  writer.subscribe(job.id, (e) => live.push(e));
  await t.queue.enqueue([job]);
  await t.queue.claim("noop", "c1", 1, 10_000);
  await t.queue.complete("c1", [{ id: job.id, kind: "ok", result: { v: 7 } }]);
  await waitFor(() => live.length === 4, { what: "live events" });
  assert.deepEqual(live.map((e) => e.type === "status" ? e.status : e.type), [
    "queued",
    "running",
    "result",
    "succeeded",
  ]);
  await writer.flush();
  assert.deepEqual(writer.recent(job.id), [], "nothing left once stored");
  const stored = await t.history.getJob(job.id);
  assert.equal(stored!.status, "succeeded");
  assert.deepEqual(stored!.result, { v: 7 });
  assert.deepEqual(stored!.params, { a: 1 });
  assert.equal(stored!.attempts, 1);
  assert.equal(stored!.worker, "c1");
  const events = await t.history.events(job.id);
  assert.deepEqual(events.map((e) => e.id), live.map((e) => e.id), "same ids, same order");
  await writer.close();
});

const countEvents = async (t: { history: { query: <T>(sql: string) => Promise<T[]> } }) =>
  (await t.history.query<{ n: number }>(`SELECT count(*)::INT AS n FROM job_events`))[0]!.n;

/** A stream entry as the history writer reads it. */
const toEntry = ([id, fields]: [string, string[]]) => ({
  seq: idToSeq(id),
  ...parseStreamFields(fields)!,
});

Deno.test("a restart reads on from the committed offset: every event is stored once", async () => {
  await using t = await setup();
  const jobs = [noop(), noop(), noop()];
  await t.queue.enqueue(jobs);
  // A writer that committed the first of these (with its offset) and died after reading the
  // others.
  const raw = await t.redis.xrange(`${t.prefix}:events`, "-", "+");
  assert.equal(raw.length, 3);
  await t.history.applyEvents([toEntry(raw[0]!)], { stream: `${t.prefix}:events` });
  assert.equal(await t.history.streamOffset(`${t.prefix}:events`), idToSeq(raw[0]![0]));

  const again = await t.startWriter();
  await waitFor(async () => (await countEvents(t)) === 3, { what: "three events stored" });
  await again.flush();
  assert.equal(await countEvents(t), 3, "none stored twice");
  for (const j of jobs) assert.equal((await t.history.getJob(j.id))!.status, "queued");
  assert.equal(await t.history.streamOffset(`${t.prefix}:events`), idToSeq(raw[2]![0]));
  await again.close();
});

Deno.test("a stream an earlier release read through a consumer group is taken over once", async () => {
  await using t = await setup();
  const stream = `${t.prefix}:events`;
  const jobs = [noop(), noop(), noop()];
  await t.queue.enqueue(jobs);
  // The earlier writer read all three through its group and stored the first before dying.
  await t.redis.xgroup("CREATE", stream, LEGACY_HISTORY_GROUP, "0");
  const raw = await t.redis.xreadgroup(
    "GROUP",
    LEGACY_HISTORY_GROUP,
    "writer",
    "COUNT",
    100,
    "STREAMS",
    stream,
    ">",
  ) as Array<[string, Array<[string, string[]]>]>;
  assert.equal(raw[0]![1].length, 3);
  await t.history.applyEvents([toEntry(raw[0]![1][0]!)]);

  const writer = await t.startWriter();
  await waitFor(async () => (await countEvents(t)) === 3, { what: "three events stored" });
  for (const j of jobs) assert.equal((await t.history.getJob(j.id))!.status, "queued");
  assert.deepEqual(await t.redis.xinfo("GROUPS", stream), [], "the old group is gone");
  // New events go on from there.
  const later = noop();
  await t.queue.enqueue([later]);
  await waitFor(async () => (await t.history.getJob(later.id)) !== null, { what: "a new job" });
  await writer.flush();
  assert.equal(await countEvents(t), 4);
  await writer.close();
});

Deno.test("entries an earlier release wrote (one field each for id, type and event) are read", async () => {
  await using t = await setup();
  const job = noop();
  await t.queue.enqueue([job]);
  await t.redis.xadd(
    `${t.prefix}:events`,
    "*",
    "j",
    job.id,
    "t",
    "log",
    "e",
    JSON.stringify({ type: "log", level: "info", message: "old" }),
  );
  const writer = await t.startWriter();
  await waitFor(async () => (await t.history.events(job.id, ["log"])).length === 1, {
    timeoutMs: 20_000,
    what: "the old-format log event in DuckDB",
  });
  const [log] = await t.history.events(job.id, ["log"]);
  assert.equal((log as { message?: string }).message, "old");
  assert.equal((await t.history.getJob(job.id))!.status, "queued");
  await writer.close();
});

Deno.test("an event DuckDB refuses is stored as text with a note; the rest of its batch is stored", async () => {
  await using t = await setup();
  const writer = await t.startWriter();
  const good = noop();
  await t.queue.enqueue([good]);
  // A sample whose body is not JSON cannot be loaded into metric_samples.
  await t.redis.xadd(`${t.prefix}:events`, "*", "d", `${good.id}\tsample\t{broken`);
  const later = noop();
  await t.queue.enqueue([later]);
  await waitFor(async () => (await t.history.getJob(later.id)) !== null, {
    timeoutMs: 20_000,
    what: "the job after the bad event",
  });
  assert.ok(await t.history.getJob(good.id));
  const [sample] = await t.history.query<{ data: string }>(
    "SELECT data FROM metric_samples WHERE job_id = $1",
    [good.id],
  );
  const body = JSON.parse(sample!.data);
  assert.equal(body.unreadable, "{broken");
  assert.match(body.sanitized, /DuckDB refused/);
  await writer.close();
});

Deno.test("lone surrogates are stored as U+FFFD with a note, without delaying other jobs", async () => {
  await using t = await setup();
  const writer = await t.startWriter();
  const poison = Array.from({ length: 5 }, () => ({ ...noop(), params: { message: "\ud800" } }));
  const others = Array.from({ length: 20 }, noop);
  const started = performance.now();
  for (const [i, job] of [...poison, ...others].entries()) {
    await t.queue.enqueue([job]);
    if (i < poison.length) {
      await t.queue.claim("noop", "c1", 1, 10_000);
      await t.queue.complete("c1", [{ id: job.id, kind: "ok", result: { echo: "err \udc00" } }]);
    }
  }
  await writer.flush();
  for (const job of others) assert.ok(await t.history.getJob(job.id), "every other job stored");
  const elapsed = performance.now() - started;
  assert.ok(elapsed < 10_000, `other jobs' history took ${elapsed.toFixed(0)} ms`);
  for (const job of poison) {
    const stored = await t.history.getJob(job.id);
    assert.deepEqual(stored!.params, { message: "\uFFFD" });
    assert.deepEqual(stored!.result, { echo: "err \uFFFD" });
    const events = await t.history.events(job.id);
    const queued = events.find((e) => e.type === "status" && e.status === "queued");
    assert.ok(queued, "the queued event is stored");
    assert.match(String(queued.sanitized), /U\+FFFD/);
  }
  await writer.close();
});
