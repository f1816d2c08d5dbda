/**
 * Starting a session on a real platform that runs no worker: a start that times out cancels its job
 * and frees its slot; a start with every slot taken, or by a token at its max_sessions, is refused
 * with a retry delay and queues nothing.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../core/config.ts";
import { DomainError } from "../core/errors.ts";
import { createLogger } from "../core/log.ts";
import { connectRedis, waitReady } from "../core/redis.ts";
import { startPlatform } from "../platform.ts";
import { createUrlPolicy } from "../security/url_policy.ts";
import { createSessionStore } from "./store.ts";
import { startSession } from "./start.ts";
import { createShareLinks } from "./capability.ts";
import { tempDir } from "../../tests/helpers.ts";
import { parts } from "../../main.ts";

Deno.test("starting a session: a timed-out start frees its slot, a full platform says when to retry", async (t) => {
  await using dir = await tempDir();
  const config = loadConfig({
    PORT: "0",
    STREAMPLAY_DATA_DIR: dir.path,
    STREAMPLAY_CONCURRENCY: "0",
    STREAMPLAY_MAX_SESSIONS: "2",
    STREAMPLAY_MONITOR: "false",
    STREAMPLAY_MAX_MEMORY_PERCENT: "100",
  });
  const log = createLogger({ level: "warn" });
  await using platform = await startPlatform(config, {
    role: "all",
    parts,
    listen: false,
    log,
    version: "test",
  });
  const redis = connectRedis(platform.redisUrl, "command");
  await waitReady(redis);
  const store = createSessionStore({
    redis,
    connect: () => connectRedis(platform.redisUrl, "subscriber"),
    prefix: config.redisPrefix,
    log,
  });
  const deps = {
    queue: platform.queue,
    jobTypes: platform.jobTypes,
    policy: createUrlPolicy(config),
    monitor: platform.monitor!,
    hub: platform.writer!,
    sessions: { store, shares: createShareLinks({ redis, prefix: config.redisPrefix }) },
    config,
  };
  const slots = () => redis.zrange(store.keys.sessionSlots, 0, -1);
  const params = { url: "http://127.0.0.1:9/" };

  try {
    await t.step(
      "a start no worker takes up answers 503, cancels its job, frees its slot",
      async () => {
        const err = await startSession(deps, { type: "session", params, timeoutMs: 1_000 })
          .then(() => null, (e) => e);
        assert.ok(err instanceof DomainError, String(err));
        assert.equal(err.kind, "unavailable");
        assert.equal(err.options.retryAfterS, 10);
        const id = /No worker started session (job_\w+) within 1 s/.exec(err.message)?.[1];
        assert.ok(id, err.message);
        assert.equal((await platform.queue.get(id))?.status, "cancelled");
        assert.deepEqual(await slots(), [], "the slot is free");
      },
    );

    await t.step(
      "with every slot taken, a start is refused with 429 and queues nothing",
      async () => {
        await store.hold("job_someone_else");
        await store.hold("job_another");
        const err = await startSession(deps, { type: "session", params, timeoutMs: 1_000 })
          .then(() => null, (e) => e);
        assert.ok(err instanceof DomainError, String(err));
        assert.equal(err.kind, "busy");
        assert.equal(err.options.retryAfterS, 10);
        assert.match(err.message, /All 2 session slots are in use \(STREAMPLAY_MAX_SESSIONS\)/);
        assert.deepEqual((await slots()).sort(), ["job_another", "job_someone_else"]);
        assert.equal(await redis.llen(platform.queue.keys.queue("session")), 0);
        await store.release("job_someone_else");
        await store.release("job_another");
      },
    );

    await t.step(
      "a token holding its max_sessions is refused with 429; another token is not",
      async () => {
        assert.equal(await store.reserve("job_of_ops", 2, { name: "ops", max: 1 }), "taken");
        const ops = { name: "ops", maxSessions: 1 };
        const err = await startSession(deps, { type: "session", params, owner: ops })
          .then(() => null, (e) => e);
        assert.ok(err instanceof DomainError, String(err));
        assert.equal(err.kind, "busy");
        assert.equal(err.options.retryAfterS, 10);
        assert.match(err.message, /Token "ops" already holds its 1 sessions \(max_sessions\)/);
        assert.deepEqual(await slots(), ["job_of_ops"]);
        const other = await startSession(deps, {
          type: "session",
          params,
          owner: { name: "dev", maxSessions: 1 },
          timeoutMs: 1_000,
        }).then(() => null, (e) => e);
        assert.equal(other.kind, "unavailable", "it was queued (no worker here takes it)");
        await store.release("job_of_ops");
        assert.equal(await redis.hlen(store.keys.sessionOwners), 0, "release forgets the owner");
      },
    );
  } finally {
    await store.close();
    redis.disconnect();
  }
});
