/**
 * streamplay entry point: reads the configuration, opens Redis (embedded unless REDIS_URL is
 * set) and DuckDB, starts the roles and stops them cleanly on SIGINT/SIGTERM.
 *
 *   --role=all     API + worker pool + history writer (deno task start)
 *   --role=worker  worker pool only, against REDIS_URL (deno task worker)
 */
import { parseArgs } from "node:util";
import { checkServeSafety, ConfigError, loadConfig } from "./lib/config.ts";
import { createLogger, errorMessage } from "./lib/log.ts";
import { connectRedis, type EmbeddedRedis, startEmbeddedRedis, waitReady } from "./lib/redis.ts";
import { createQueue } from "./lib/queue.ts";
import { createEventHub, createEventPublisher } from "./lib/events.ts";
import { openHistory } from "./lib/history.ts";
import { startHistoryWriter } from "./lib/history_writer.ts";
import { createSandbox } from "./lib/sandbox.ts";
import { createSampler } from "./lib/sampler.ts";
import { createJobTypes } from "./lib/job_types.ts";
import { createRunner } from "./lib/runner.ts";
import { createUrlPolicy } from "./lib/url_policy.ts";
import { createApp } from "./lib/app.ts";
import { createMetrics } from "./lib/metrics.ts";
import { createMachineProbe } from "./lib/machine.ts";
import { createCluster, createReporter, processId, REPORT_INTERVAL_MS } from "./lib/cluster.ts";
import { createMonitor } from "./lib/monitor.ts";
import denoJson from "./deno.json" with { type: "json" };

const { values: args } = parseArgs({
  args: Deno.args,
  options: { role: { type: "string", default: "all" } },
});
const role = args.role;
if (role !== "all" && role !== "worker") {
  console.error(`--role must be "all" or "worker", got "${role}"`);
  Deno.exit(2);
}

let config;
try {
  config = loadConfig();
  if (role === "all") checkServeSafety(config);
  if (role === "worker" && !config.redisUrl) {
    throw new ConfigError("deno task worker needs REDIS_URL: the Redis of the server it works for");
  }
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(`streamplay: ${err.message}`);
  Deno.exit(2);
}
const log = createLogger({ level: config.logLevel, format: config.logFormat });
await Deno.mkdir(config.dataDir, { recursive: true });

let embedded: EmbeddedRedis | undefined;
const redisUrl = config.redisUrl ?? (embedded = await startEmbeddedRedis({
  dir: `${config.dataDir}/redis`,
  log,
})).url;
const password = new URL(redisUrl).password;
if (password) log.addSecret(decodeURIComponent(password));

const command = connectRedis(redisUrl, "command", log);
try {
  await waitReady(command, 10_000);
} catch (err) {
  log.error("cannot reach Redis; is REDIS_URL right?", { error: errorMessage(err) });
  await embedded?.close();
  Deno.exit(1);
}

const queue = createQueue({ redis: command, prefix: config.redisPrefix, jobTtlS: config.jobTtlS });
const events = createEventPublisher({ queue, log });
const sandbox = createSandbox({ log, warmPerProfile: config.warmWorkers });
const sampler = createSampler({ log });
const jobTypes = createJobTypes();
const metrics = createMetrics({ version: denoJson.version });
const runner = config.concurrency === 0 ? undefined : createRunner({
  queue,
  connect: (kind) => connectRedis(redisUrl, kind, log),
  events,
  sandbox,
  sampler,
  jobTypes,
  config,
  log,
  observer: metrics.jobs,
});
const machine = createMachineProbe({ dataDir: config.dataDir, log });
const cluster = createCluster({ redis: command, prefix: config.redisPrefix });
const reporter = createReporter({
  cluster,
  metrics,
  machine,
  runner,
  id: processId(runner),
  role,
  version: denoJson.version,
  log,
});

const stops: Array<() => Promise<unknown> | unknown> = [];

/** Fails start-up with one clear line, stopping the embedded Redis first. */
async function fatal(message: string): Promise<never> {
  log.error(message);
  command.disconnect();
  await embedded?.close();
  Deno.exit(1);
}

if (role === "all") {
  const history = await openHistory(config.dbPath).catch((err) => {
    const msg = errorMessage(err);
    return fatal(
      /lock/i.test(msg)
        ? `${config.dbPath} is in use by another process (${msg.replace(/.*held in /, "")}); ` +
          `stop it or set STREAMPLAY_DB`
        : `cannot open DuckDB at ${config.dbPath}: ${msg}`,
    );
  });
  const writer = await startHistoryWriter({
    redis: connectRedis(redisUrl, "blocking", log),
    prefix: config.redisPrefix,
    history,
    log,
  });
  const hub = createEventHub({
    connect: () => connectRedis(redisUrl, "blocking", log),
    prefix: config.redisPrefix,
    log,
  });
  const policy = createUrlPolicy(config);
  const monitor = createMonitor({
    config,
    log,
    history,
    redis: command,
    metrics,
    cluster,
    reporter,
    machine,
    runner,
    policy,
    version: denoJson.version,
  });
  const app = await createApp({
    config,
    log,
    queue,
    history,
    hub,
    jobTypes,
    policy,
    flushHistory: writer.flush,
    runner,
    version: denoJson.version,
    metrics,
    monitor,
  });
  const abort = new AbortController();
  let server: Deno.HttpServer;
  try {
    server = Deno.serve({
      hostname: config.host,
      port: config.port,
      signal: abort.signal,
      onListen: ({ hostname, port }) => {
        const base = config.publicUrl.includes(`:${config.port}`)
          ? config.publicUrl.replace(`:${config.port}`, `:${port}`)
          : config.publicUrl;
        log.info("streamplay is listening", { address: `${hostname}:${port}` });
        console.log(
          `streamplay ${denoJson.version} ready\n  UI:       ${base}/\n  API docs: ${base}/docs`,
        );
      },
    }, app.fetch);
  } catch (err) {
    await writer.close();
    await history.close();
    await fatal(`cannot listen on ${config.host}:${config.port}: ${errorMessage(err)}`);
    throw err;
  }
  if (config.monitor) monitor.start();
  stops.push(
    () => runner?.stop(),
    () => monitor.close(),
    async () => {
      abort.abort();
      await server.finished;
    },
    () => hub.close(),
    () => writer.close(),
    () => history.close(),
  );
} else {
  if (!runner) {
    await fatal("deno task worker with STREAMPLAY_CONCURRENCY=0 would run nothing");
  }
  reporter.start(REPORT_INTERVAL_MS);
  stops.push(() => runner?.stop(), () => reporter.stop());
}

await runner?.start();

let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  log.info("shutting down", { signal });
  for (const stop of stops) {
    try {
      await stop();
    } catch (err) {
      log.warn("shutdown step failed", { error: errorMessage(err) });
    }
  }
  await events.close();
  sampler.close();
  sandbox.close();
  command.disconnect();
  await embedded?.close();
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", () => shutdown("SIGINT"));
Deno.addSignalListener("SIGTERM", () => shutdown("SIGTERM"));
