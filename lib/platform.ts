/**
 * Starts the platform's parts for a role (`all` or `worker`) and stops them in reverse order.
 */
import type { Config } from "./core/config.ts";
import { ConfigError } from "./core/config.ts";
import { errorMessage, type Logger } from "./core/log.ts";
import {
  blockingRedis,
  connectRedis,
  type EmbeddedRedis,
  type Redis,
  startEmbeddedRedis,
  waitReady,
} from "./core/redis.ts";
import { createQueue, type Queue } from "./jobs/queue.ts";
import { createEventPublisher } from "./jobs/events.ts";
import { keepUnwritten, replaySpool } from "./jobs/spool.ts";
import { type History, openHistory } from "./history/store.ts";
import { type HistoryWriter, startHistoryWriter } from "./history/writer.ts";
import { createSandbox, type Sandbox } from "./jobs/sandbox.ts";
import { createSampler } from "./jobs/sampler.ts";
import { createJobTypes, type JobType, type JobTypes } from "./jobs/job_type.ts";
import { createRunner, type Runner } from "./jobs/runner.ts";
import { createUrlPolicy } from "./security/url_policy.ts";
import { createApp, createWorkerApp, type RouteSets } from "./http/app.ts";
import { serveGuarded } from "./http/serve.ts";
import { createSessionStore } from "./sessions/store.ts";
import { createSessionHost, type SessionHost } from "./sessions/host.ts";
import { createShareLinks } from "./sessions/capability.ts";
import { createRecorder, type Recorder } from "./recordings/recorder.ts";
import { createRecordingCatalog, RECORDING_PROJECTIONS } from "./recordings/catalog.ts";
import { replayCompanion } from "./recordings/replay.ts";
import { functionCompanion } from "./functions/companion.ts";
import { startFunctionScheduler } from "./functions/scheduler.ts";
import { createFunctionStore } from "./functions/store.ts";
import { redisKeys } from "./core/keys.ts";
import { createStreamStore } from "./streams/store.ts";
import { createStreamHost, type StreamHost } from "./streams/host.ts";
import { watchStreams } from "./streams/metrics.ts";
import { type EncoderDetection, startEncoderDetection } from "./video/codecs.ts";
import { createMetrics, type Metrics } from "./monitoring/metrics.ts";
import { createMachineProbe } from "./monitoring/machine.ts";
import {
  createCluster,
  createReporter,
  processId,
  REPORT_INTERVAL_MS,
} from "./monitoring/cluster.ts";
import { createMonitor, type Monitor } from "./monitoring/monitor.ts";
import { checkWatchedSeries } from "./monitoring/series.ts";
import { watchSessions } from "./sessions/metrics.ts";
import { endSessionBrowsers, removeOrphanSessionDirs } from "./sessions/browser_profiles.ts";

/**
 *   all     embedded redis (unless REDIS_URL) + DuckDB + history writer + API server + worker pool
 *   worker  worker pool against REDIS_URL, and an HTTP listener for the viewer WebSockets of the
 *           sessions it runs (advertised as STREAMPLAY_PUBLIC_URL, the real port when PORT=0)
 */
export type PlatformRole = "all" | "worker";

export interface Platform {
  role: PlatformRole;
  redisUrl: string;
  queue: Queue;
  sandbox: Sandbox;
  jobTypes: JobTypes;
  runner: Runner | undefined;
  /** The live sessions this process runs (with a worker pool). */
  sessions: SessionHost | undefined;
  /** Records the sessions this process runs (with a worker pool). */
  recorder: Recorder | undefined;
  /** The video streams of those sessions this process encodes. */
  streams: StreamHost | undefined;
  /** The video encoders that work here (trial encodes at start). */
  encoders: EncoderDetection;
  /** How clients reach this process: STREAMPLAY_PUBLIC_URL with the port actually bound. */
  publicUrl: string;
  /** Present in the `all` role. */
  history: History | undefined;
  /** The history writer, also the live event hub (present in the `all` role). */
  writer: HistoryWriter | undefined;
  metrics: Metrics;
  /** Present in the `all` role (ticking unless STREAMPLAY_MONITOR=false). */
  monitor: Monitor | undefined;
  /** The HTTP address actually bound (port 0 picks a free one). */
  address: { hostname: string; port: number } | undefined;
  /** Stops everything; idempotent. */
  close(): Promise<void>;
  /**
   * For a stop that ran out of time: keeps what is not written to Redis yet (job results,
   * events) in the spool, at once; the caller then exits.
   */
  abandon(): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/** What the composition root hands the platform: the job types it runs and the route files. */
export interface PlatformParts {
  jobTypes: readonly JobType[];
  routes: RouteSets;
}

export interface PlatformOptions {
  role: PlatformRole;
  parts: PlatformParts;
  log: Logger;
  version: string;
  /** Serve HTTP (default true; a worker serves only its sessions' viewer WebSockets). */
  listen?: boolean;
}

/** An error that should end start-up with one clear line (no stack trace). */
export class StartupError extends Error {
  override name = "StartupError";
}

/**
 * `main.ts` calls this with the loaded config and the parts it composed (the job types from
 * `workers/`, the route files from `routes/`); benchmarks and tests call it in-process with them.
 */
export async function startPlatform(config: Config, options: PlatformOptions): Promise<Platform> {
  const { role, log } = options;
  if (role === "worker" && !config.redisUrl) {
    throw new ConfigError("deno task worker needs REDIS_URL: the Redis of the server it works for");
  }
  if (role === "worker" && config.concurrency === 0) {
    throw new ConfigError("deno task worker with STREAMPLAY_CONCURRENCY=0 would run nothing");
  }
  checkWatchedSeries(config.anomalySeries);
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
      embedded = await startEmbeddedRedis({
        dir: `${config.dataDir}/redis`,
        avoidPorts: [config.port],
        log,
        supervise: true,
      });
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
    // What the last run could not write to Redis before it stopped, before any job runs here.
    await replaySpool(config.dataDir, queue, log).catch((err) =>
      log.warn("could not replay the spool; kept for the next start", {
        error: errorMessage(err),
      })
    );
    const events = createEventPublisher({ queue, log });
    stops.push(() => events.close());
    // After the Workers are gone (stops run last first): their browsers and what those leave.
    stops.push(() => endSessionBrowsers());
    if (config.concurrency > 0) {
      removeOrphanSessionDirs().then(
        (dirs) => {
          if (dirs.length) log.info("removed session directories of stopped processes", { dirs });
        },
        (err) =>
          log.warn("could not look for stale session directories", { error: errorMessage(err) }),
      );
    }
    const sandbox = createSandbox({ log, warmPerProfile: config.warmWorkers });
    stops.push(() => sandbox.close());
    const sampler = createSampler({ log });
    stops.push(() => sampler.close());
    const jobTypes = createJobTypes(options.parts.jobTypes);
    const metrics = createMetrics({ version: options.version, jobTypes: [...jobTypes.keys()] });
    const policy = createUrlPolicy(config);
    const sessionStore = createSessionStore({
      redis: command,
      connect: () => connect("subscriber"),
      prefix: config.redisPrefix,
      log,
    });
    stops.push(() => sessionStore.close());
    let publicUrl = config.publicUrl;
    const sessionHost = config.concurrency === 0 ? undefined : createSessionHost({
      log,
      policy,
      store: sessionStore,
      publicUrl: () => publicUrl,
    });
    stops.push(() => sessionHost?.close());
    const shares = createShareLinks({ redis: command, prefix: config.redisPrefix });
    const sessions = { store: sessionStore, host: sessionHost, shares };
    const keys = redisKeys(config.redisPrefix);
    const recorder = sessionHost && createRecorder({
      config,
      log,
      host: sessionHost,
      events,
      redis: command,
      connect: () => connect("subscriber"),
      keys,
      publicUrl: () => publicUrl,
    });
    const encoders = startEncoderDetection();
    stops.push(() => encoders.close());
    const streamStore = createStreamStore({ redis: command, prefix: config.redisPrefix });
    const streamHost = sessionHost && await createStreamHost({
      dataDir: config.dataDir,
      maxStreams: config.maxStreams,
      log,
      sessions: sessionHost,
      store: streamStore,
      policy,
      encoders,
      publicUrl: () => publicUrl,
    });
    stops.push(() => streamHost?.close());
    const streams = { store: streamStore, host: streamHost };
    if (sessionHost) watchSessions(metrics, sessionHost);
    if (streamHost) watchStreams(metrics, streamHost);

    let history: History | undefined;
    let writer: HistoryWriter | undefined;
    let monitor: Monitor | undefined;
    let address: Platform["address"];
    const runner = config.concurrency === 0 ? undefined : createRunner({
      queue,
      connect: (kind) => connect(kind),
      events,
      sandbox,
      sampler,
      jobTypes,
      config,
      policy,
      log,
      companions: new Map([
        ["session", sessionHost!.companion],
        ["replay", replayCompanion({ session: sessionHost!.companion, redis: command, keys, log })],
        [
          "function",
          functionCompanion({
            dataDir: config.dataDir,
            policy,
            redisUrl,
            log,
            session: sessionHost!.companion,
          }),
        ],
      ]),
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
      version: options.version,
      log,
    });

    /**
     * Serves `fetch` on HOST:PORT, behind the connection bounds (lib/http/serve.ts) unless
     * STREAMPLAY_HTTP_GUARD=false, and records the address and public URL.
     */
    const listen = async (fetch: Deno.ServeHandler<Deno.NetAddr>) => {
      const where = `${config.host}:${config.port}`;
      if (config.http.guard) {
        const server = await serveGuarded(
          { hostname: config.host, port: config.port, limits: config.http, log },
          fetch,
        ).catch((err) => {
          throw new StartupError(`cannot listen on ${where}: ${errorMessage(err)}`);
        });
        address = { hostname: server.addr.hostname, port: server.addr.port };
        stops.push(() => server.shutdown());
      } else {
        const abort = new AbortController();
        let server: Deno.HttpServer<Deno.NetAddr>;
        try {
          server = Deno.serve({
            hostname: config.host,
            port: config.port,
            signal: abort.signal,
            onListen: () => {},
          }, fetch);
        } catch (err) {
          throw new StartupError(`cannot listen on ${where}: ${errorMessage(err)}`);
        }
        address = { hostname: server.addr.hostname, port: server.addr.port };
        stops.push(async () => {
          abort.abort();
          await server.finished;
        });
      }
      if (config.publicUrl.endsWith(`:${config.port}`)) {
        publicUrl = config.publicUrl.replace(/:\d+$/, `:${address.port}`);
      }
    };

    if (role === "worker" && options.listen !== false) {
      await listen(
        (await createWorkerApp(
          { config, log, sessions, streams, policy },
          options.parts.routes.worker,
        ))
          .fetch,
      );
    }

    if (role === "all") {
      const tables = { projections: RECORDING_PROJECTIONS, threads: config.dbThreads };
      history = await openHistory(config.dbPath, tables).catch((err) => {
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
        redis: blockingRedis(() => connect("blocking")),
        prefix: config.redisPrefix,
        history,
        log,
      });
      const w = writer;
      stops.push(() => w.close());
      const catalog = createRecordingCatalog({
        config,
        log,
        history,
        hub: writer,
        redis: command,
        keys,
      });
      stops.push(() => catalog.close());
      const m = monitor = createMonitor({
        config,
        log,
        history,
        hub: w,
        metrics,
        cluster,
        reporter,
        machine,
        runner,
        policy,
        version: options.version,
      });
      if (config.monitor) m.start();
      stops.push(() => m.close());

      if (options.listen !== false) {
        const app = await createApp({
          config,
          log,
          queue,
          history,
          hub: writer,
          jobTypes,
          policy,
          runner,
          sessions,
          recordings: { catalog, publicUrl: () => publicUrl },
          streams,
          encoders,
          version: options.version,
          metrics,
          monitor,
        }, options.parts.routes.api);
        await listen(app.fetch);
      }
    }

    // Closed right after the pool stopped (its sessions ended): recordings finish their files.
    if (recorder) stops.push(() => recorder.close());
    if (role === "worker") {
      reporter.start(REPORT_INTERVAL_MS);
      stops.push(() => reporter.stop());
    }
    if (runner) {
      await runner.start();
      // Stopped first: running jobs finish or go back to the queue while the rest still works,
      // within the stop bound (what is left of it after the jobs goes to the steps after).
      const graceMs = Math.min(config.shutdownGraceMs, config.stopTimeoutMs - 3_000);
      stops.push(() => runner.stop(graceMs));
    }

    if (jobTypes.has("function")) {
      const store = createFunctionStore({ redis: command, keys });
      const scheduler = startFunctionScheduler({ store, queue, log });
      stops.push(() => scheduler.close());
    }

    /** Keeps what was not written to Redis (results, events) in the spool for the next start. */
    const keep = () =>
      keepUnwritten(config.dataDir, {
        consumer: runner?.consumerId,
        outcomes: runner?.unrecorded() ?? [],
        events: events.unwritten(),
      }, log);
    let closing: Promise<void> | undefined;
    const close = () =>
      closing ??= stopAll().then(() => {
        keep();
      });
    return {
      role,
      redisUrl,
      queue,
      sandbox,
      jobTypes,
      runner,
      sessions: sessionHost,
      recorder,
      streams: streamHost,
      encoders,
      get publicUrl() {
        return publicUrl;
      },
      history,
      writer,
      metrics,
      monitor,
      address,
      close,
      abandon: () => {
        keep();
      },
      [Symbol.asyncDispose]: close,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
