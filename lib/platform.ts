/**
 * Starts the platform's parts for a role and stops them in the right order:
 *
 *   all     embedded redis (unless REDIS_URL) + DuckDB + history writer + API server + worker pool
 *   worker  worker pool only, against REDIS_URL
 *
 * `main.ts` calls this with the loaded config; benchmarks and tests call it in-process.
 */
import type { Config } from "./config.ts";
import { ConfigError } from "./config.ts";
import { errorMessage, type Logger } from "./log.ts";
import {
  connectRedis,
  type EmbeddedRedis,
  type Redis,
  startEmbeddedRedis,
  waitReady,
} from "./redis.ts";
import { createQueue, type Queue } from "./queue.ts";
import { createEventPublisher } from "./events.ts";
import { type History, openHistory } from "./history.ts";
import { type HistoryWriter, startHistoryWriter } from "./history_writer.ts";
import { createSandbox, type Sandbox } from "./sandbox.ts";
import { createSampler } from "./sampler.ts";
import { createJobTypes, type JobTypes } from "./job_types.ts";
import { createRunner, type Runner } from "./runner.ts";
import { createUrlPolicy } from "./url_policy.ts";
import { createApp } from "./app.ts";

export type PlatformRole = "all" | "worker";

export interface Platform {
  role: PlatformRole;
  redisUrl: string;
  queue: Queue;
  sandbox: Sandbox;
  jobTypes: JobTypes;
  runner: Runner | undefined;
  /** Present in the `all` role. */
  history: History | undefined;
  /** The history writer, also the live event hub (present in the `all` role). */
  writer: HistoryWriter | undefined;
  /** The HTTP address actually bound (port 0 picks a free one). */
  address: { hostname: string; port: number } | undefined;
  /** Stops everything; idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface PlatformOptions {
  role: PlatformRole;
  log: Logger;
  version: string;
  /** Serve HTTP (default true in the `all` role). */
  listen?: boolean;
}

/** An error that should end start-up with one clear line (no stack trace). */
export class StartupError extends Error {
  override name = "StartupError";
}

export async function startPlatform(config: Config, options: PlatformOptions): Promise<Platform> {
  const { role, log } = options;
  if (role === "worker" && !config.redisUrl) {
    throw new ConfigError("deno task worker needs REDIS_URL: the Redis of the server it works for");
  }
  if (role === "worker" && config.concurrency === 0) {
    throw new ConfigError("deno task worker with STREAMPLAY_CONCURRENCY=0 would run nothing");
  }
  await Deno.mkdir(config.dataDir, { recursive: true });
  const stops: Array<() => Promise<unknown> | unknown> = [];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) {
      try {
        await stop();
      } catch (err) {
        log.warn("shutdown step failed", { error: errorMessage(err) });
      }
    }
  };

  try {
    let embedded: EmbeddedRedis | undefined;
    if (!config.redisUrl) {
      embedded = await startEmbeddedRedis({ dir: `${config.dataDir}/redis`, log });
      stops.push(() => embedded?.close());
    }
    const redisUrl = config.redisUrl ?? embedded!.url;
    const password = new URL(redisUrl).password;
    if (password) log.addSecret(decodeURIComponent(password));
    const connections: Redis[] = [];
    const connect = (kind: "command" | "blocking" | "subscriber") => {
      const conn = connectRedis(redisUrl, kind, log);
      connections.push(conn);
      return conn;
    };
    stops.push(() => connections.forEach((c) => c.disconnect()));

    const command = connect("command");
    try {
      await waitReady(command, 10_000);
    } catch (err) {
      throw new StartupError(`cannot reach Redis at ${redisUrl}: ${errorMessage(err)}`);
    }

    const queue = createQueue({
      redis: command,
      prefix: config.redisPrefix,
      jobTtlS: config.jobTtlS,
    });
    const events = createEventPublisher({ queue, log });
    stops.push(() => events.close());
    const sandbox = createSandbox({ log, warmPerProfile: config.warmWorkers });
    stops.push(() => sandbox.close());
    const sampler = createSampler({ log });
    stops.push(() => sampler.close());
    const jobTypes = createJobTypes();

    let history: History | undefined;
    let writer: HistoryWriter | undefined;
    let address: Platform["address"];
    const runner = config.concurrency === 0 ? undefined : createRunner({
      queue,
      connect: (kind) => connect(kind),
      events,
      sandbox,
      sampler,
      jobTypes,
      config,
      log,
    });

    if (role === "all") {
      history = await openHistory(config.dbPath).catch((err) => {
        const msg = errorMessage(err);
        throw new StartupError(
          /lock/i.test(msg)
            ? `${config.dbPath} is in use by another process; stop it or set STREAMPLAY_DB ` +
              `(${msg.replace(/.*held in /, "held by ").replace(/\. See also.*/, "")})`
            : `cannot open DuckDB at ${config.dbPath}: ${msg}`,
        );
      });
      const h = history;
      stops.push(() => h.close());
      writer = await startHistoryWriter({
        redis: connect("blocking"),
        prefix: config.redisPrefix,
        history,
        log,
      });
      const w = writer;
      stops.push(() => w.close());

      if (options.listen !== false) {
        const app = await createApp({
          config,
          log,
          queue,
          history,
          hub: writer,
          jobTypes,
          policy: createUrlPolicy(config),
          runner,
          version: options.version,
        });
        const abort = new AbortController();
        let server: Deno.HttpServer<Deno.NetAddr>;
        try {
          server = Deno.serve({
            hostname: config.host,
            port: config.port,
            signal: abort.signal,
            onListen: () => {},
          }, app.fetch);
        } catch (err) {
          throw new StartupError(
            `cannot listen on ${config.host}:${config.port}: ${errorMessage(err)}`,
          );
        }
        address = { hostname: server.addr.hostname, port: server.addr.port };
        stops.push(async () => {
          abort.abort();
          await server.finished;
        });
      }
    }

    if (runner) {
      await runner.start();
      // Stopped first: running jobs finish or go back to the queue while the rest still works.
      stops.push(() => runner.stop());
    }

    let closing: Promise<void> | undefined;
    const close = () => closing ??= stopAll();
    return {
      role,
      redisUrl,
      queue,
      sandbox,
      jobTypes,
      runner,
      history,
      writer,
      address,
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
