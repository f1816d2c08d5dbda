/**
 * streamplay's composition root: the job types (from `workers/`) and the route files (from
 * `routes/`) handed to the platform (`lib/platform.ts`); run directly, it starts the role given on
 * the command line and stops it cleanly on SIGINT/SIGTERM.
 */
import { parseArgs } from "node:util";
import { checkServeSafety, ConfigError, loadConfig } from "./lib/core/config.ts";
import { createLogger } from "./lib/core/log.ts";
import { type PlatformParts, startPlatform, StartupError } from "./lib/platform.ts";
import { noopJob } from "./workers/noop.ts";
import { httpBenchJob } from "./workers/http-bench.ts";
import { browserBenchJob } from "./workers/browser-bench.ts";
import { sessionJob } from "./workers/session.ts";
import { replayJob } from "./workers/replay.ts";
import { functionJob } from "./workers/function.ts";
import { healthRoutes } from "./routes/health.ts";
import { jobsRoutes } from "./routes/jobs.ts";
import { artifactRoutes } from "./routes/artifacts.ts";
import { benchRoutes } from "./routes/bench.ts";
import { assetRoutes, pageRoutes } from "./routes/pages.ts";
import { metricsRoutes } from "./routes/metrics.ts";
import { sessionSocketRoutes, sessionsRoutes } from "./routes/sessions.ts";
import { recordingFileRoutes, recordingsRoutes } from "./routes/recordings.ts";
import { streamMediaRoutes, streamsRoutes } from "./routes/streams.ts";
import { functionsRoutes } from "./routes/functions.ts";
import { cdpRoutes, cdpSessionRoutes } from "./routes/cdp.ts";
import denoJson from "./deno.json" with { type: "json" };

/** Everything this platform runs and serves. */
export const parts: PlatformParts = {
  jobTypes: [noopJob, httpBenchJob, browserBenchJob, sessionJob, replayJob, functionJob],
  routes: {
    api: [
      healthRoutes,
      jobsRoutes,
      artifactRoutes,
      benchRoutes,
      pageRoutes,
      assetRoutes,
      metricsRoutes,
      sessionsRoutes,
      sessionSocketRoutes,
      recordingsRoutes,
      streamsRoutes,
      streamMediaRoutes,
      functionsRoutes,
      cdpRoutes,
    ],
    worker: [
      sessionSocketRoutes,
      cdpSessionRoutes,
      recordingFileRoutes,
      streamMediaRoutes,
      assetRoutes,
    ],
  },
};

if (import.meta.main) await run();

/**
 * Reads the configuration and starts the role:
 *
 *   --role=all     API + worker pool + history writer (deno task start)
 *   --role=worker  worker pool against REDIS_URL, with an HTTP listener on HOST:PORT for the
 *                  viewer WebSockets of the sessions it runs (deno task worker)
 */
async function run() {
  const { values: args } = parseArgs({
    args: Deno.args,
    options: { role: { type: "string", default: "all" } },
  });
  if (args.role !== "all" && args.role !== "worker") {
    console.error(`streamplay: --role must be "all" or "worker", got "${args.role}"`);
    Deno.exit(2);
  }
  const role = args.role;

  // Deno's WebSocket server copies each message into a per-connection buffer before writing it,
  // unless DENO_USE_WRITEV is set: then the frame header and the message go out in one writev. A
  // session sends every frame to every viewer, so that copy is paid once per viewer per frame.
  // Deno reads the variable when it serves its first connection; an empty value turns it off.
  if (Deno.env.get("DENO_USE_WRITEV") === undefined) Deno.env.set("DENO_USE_WRITEV", "1");

  let platform;
  let config;
  let log;
  try {
    config = loadConfig();
    checkServeSafety(config);
    log = createLogger({ level: config.logLevel, format: config.logFormat });
    platform = await startPlatform(config, { role, log, version: denoJson.version, parts });
    if (role === "all" && platform.address) {
      const base = platform.publicUrl;
      console.log(
        `streamplay ${denoJson.version} ready\n  UI:       ${base}/\n  API docs: ${base}/docs`,
      );
    } else {
      console.log(
        `streamplay ${denoJson.version} worker ready (${platform.runner?.consumerId}); ` +
          `session viewers connect to ${platform.publicUrl}`,
      );
    }
  } catch (err) {
    if (err instanceof ConfigError || err instanceof StartupError) {
      console.error(`streamplay: ${err.message}`);
      Deno.exit(err instanceof ConfigError ? 2 : 1);
    }
    throw err;
  }

  let stopping = false;
  const { stopTimeoutMs } = config;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    // Whatever hangs (a Redis that does not answer, a job that does not end), the process ends
    // within the bound; what could not be written is kept for the next start.
    setTimeout(() => {
      log.error("stopping took longer than the bound; exiting now", {
        bound_s: stopTimeoutMs / 1000,
      });
      platform.abandon();
      Deno.exit(1);
    }, stopTimeoutMs);
    await platform.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", shutdown);
  Deno.addSignalListener("SIGTERM", shutdown);
}
