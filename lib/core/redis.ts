/**
 * Redis connections (command, blocking, subscriber) and the embedded redis-server.
 */
import { Redis } from "ioredis";
import type { Logger } from "./log.ts";

export type { Redis };

export type ConnectionKind = "command" | "blocking" | "subscriber";

/** How long a command on a command connection may wait for its answer. */
export const COMMAND_TIMEOUT_MS = 5_000;

/**
 * Three kinds of connection, as BullMQ does it: a command connection that fails fast when Redis is
 * away (so the API can answer 503 instead of hanging), blocking connections for BLMOVE / XREAD that
 * wait forever, and a subscriber for pub/sub.
 */
export function connectRedis(url: string, kind: ConnectionKind, log?: Logger): Redis {
  const redis = new Redis(url, {
    lazyConnect: false,
    // Commands on a down connection fail at once instead of queueing in memory.
    enableOfflineQueue: kind !== "command",
    maxRetriesPerRequest: kind === "command" ? 1 : null,
    // A Redis that is connected but does not answer (stopped, overloaded) fails commands too.
    ...(kind === "command" ? { commandTimeout: COMMAND_TIMEOUT_MS } : {}),
    connectTimeout: 2_000,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2_000),
    connectionName: `streamplay-${kind}`,
  });
  let down = false;
  redis.on("error", (err: Error) => {
    if (!down) log?.warn("redis connection error", { kind, error: err.message });
    down = true;
  });
  redis.on("ready", () => {
    if (down) log?.info("redis connection restored", { kind });
    down = false;
  });
  return redis;
}

/**
 * A connection for blocking reads (BLMOVE, XREAD BLOCK) that cannot hang. ioredis re-sends a
 * blocking command that a reconnect interrupted, and after some reconnects (Redis restarted, a
 * short network cut) no reply ever comes: the caller would wait forever, a worker would stop
 * taking jobs (ioredis issues #1285, #1888). So each call has a deadline, its own block time plus
 * `marginMs`; past it the connection is dropped for a new one and the call fails, and the caller
 * retries as after any Redis error.
 */
export interface BlockingRedis {
  /** Runs `command`, which blocks for at most `blockMs` once Redis has it. */
  call<T>(blockMs: number, command: (redis: Redis) => Promise<T>): Promise<T>;
  /** The current connection, for the reader's non-blocking commands. */
  readonly redis: Redis;
  /** Closes the connection; a call in progress fails. */
  disconnect(): void;
}

export function blockingRedis(connect: () => Redis, marginMs = 5_000): BlockingRedis {
  let current = connect();
  let closed = false;
  return {
    get redis() {
      return current;
    },
    call(blockMs, command) {
      const conn = current;
      const pending = command(conn);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          if (!closed && current === conn) {
            current = connect();
            conn.disconnect();
          }
          pending.catch(() => {});
          reject(new Error(`Redis did not answer a blocking read within ${blockMs + marginMs} ms`));
        }, blockMs + marginMs);
      });
      return Promise.race([pending, deadline]).finally(() => clearTimeout(timer));
    },
    disconnect() {
      closed = true;
      current.disconnect();
    },
  };
}

/** Waits until the connection is ready or the timeout passes. */
export async function waitReady(redis: Redis, timeoutMs = 10_000): Promise<void> {
  if (redis.status === "ready") return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis was not reachable within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off("ready", onReady);
    };
    redis.on("ready", onReady);
  });
}

/** Closes a connection without waiting for a server that is gone. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === "end") return;
  try {
    await Promise.race([redis.quit(), new Promise((r) => setTimeout(r, 500))]);
  } catch {
    // already closed
  }
  redis.disconnect();
}

/**
 * Returns a free TCP port on the loopback interface, other than `avoid` (ports this process is
 * about to listen on itself, which the OS may hand out while they are still free).
 */
export function freePort(avoid: readonly number[] = []): number {
  while (true) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    if (!avoid.includes(port)) return port;
  }
}

export interface EmbeddedRedis {
  url: string;
  port: number;
  dir: string;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface EmbeddedRedisOptions {
  dir: string;
  port?: number;
  /** Ports not to take when choosing a free one (the HTTP server's, which starts after Redis). */
  avoidPorts?: readonly number[];
  log?: Logger;
  binary?: string;
  /**
   * Start redis-server again (same port, same data: its append-only file) when it dies: at most
   * `RESTARTS_PER_MINUTE` times a minute, each after a short backoff.
   */
  supervise?: boolean;
}

/** Restarts of a supervised redis-server within a minute before the supervisor gives up. */
export const RESTARTS_PER_MINUTE = 5;
/** Attempts to bring redis-server back after one death (backoff 0.25, 0.5, 1, 2, 4, 5… s). */
const START_ATTEMPTS = 8;

/**
 * Spawns `command` so that it gets SIGTERM when this process ends, however it ends (SIGKILL, a
 * crash): through util-linux `setpriv --pdeathsig`, which sets the kernel's parent-death signal
 * and then runs the command itself. Where `setpriv` is missing (not Linux) or not permitted, the
 * command is spawned directly and only a clean exit stops it.
 */
function spawnTiedToUs(command: string, options: Deno.CommandOptions): Deno.ChildProcess {
  try {
    return new Deno.Command("setpriv", {
      ...options,
      args: ["--pdeathsig", "TERM", "--", command, ...(options.args ?? [])],
    }).spawn();
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotCapable)) throw err;
    return new Deno.Command(command, options).spawn();
  }
}

/** One redis-server process and the last lines it printed. */
interface RedisProcess {
  child: Deno.ChildProcess;
  exited: boolean;
  output(): string;
}

/** Spawns redis-server on `port` with its data in `dir` (AOF); `ready` resolves once it answers. */
function spawnRedis(
  binary: string,
  port: number,
  dir: string,
): { process: RedisProcess; ready: Promise<void> } {
  const child = spawnTiedToUs(binary, {
    args: [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--appendonly",
      "yes",
      "--appendfsync",
      "everysec",
      "--save",
      "",
      "--daemonize",
      "no",
      "--protected-mode",
      "yes",
      "--loglevel",
      "warning",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const lines: string[] = [];
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      lines.push(chunk);
      if (lines.length > 50) lines.shift();
    }
  };
  drain(child.stdout).catch(() => {});
  drain(child.stderr).catch(() => {});
  const process: RedisProcess = { child, exited: false, output: () => lines.join("").trim() };
  child.status.then(() => (process.exited = true));

  const ready = (async () => {
    const deadline = Date.now() + 10_000;
    while (true) {
      if (process.exited) throw new Error(`redis-server exited at start: ${process.output()}`);
      try {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        try {
          await conn.write(new TextEncoder().encode("PING\r\n"));
          const buf = new Uint8Array(64);
          const n = await conn.read(buf);
          // While loading a large AOF redis answers -LOADING; wait until it answers PONG.
          if (n && new TextDecoder().decode(buf.subarray(0, n)).startsWith("+PONG")) return;
        } finally {
          conn.close();
        }
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
        throw new Error(`redis-server did not answer on port ${port} within 10 s`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  return { process, ready };
}

/**
 * Starts `redis-server` as a child process on a free loopback port with append-only persistence
 * in `dir`, and waits until it answers. `close()` shuts it down cleanly (the AOF is flushed; after
 * 5 s it is killed). If this process dies without closing it, redis-server gets SIGTERM and shuts
 * down the same way, so no orphan keeps the port and the data directory a restart will use. With
 * `supervise`, a redis-server that dies (killed, crashed) is started again on its own data.
 */
export async function startEmbeddedRedis(options: EmbeddedRedisOptions): Promise<EmbeddedRedis> {
  await Deno.mkdir(options.dir, { recursive: true });
  const port = options.port ?? freePort(options.avoidPorts);
  const binary = options.binary ?? "redis-server";
  const { log } = options;
  const url = `redis://127.0.0.1:${port}`;
  let closing = false;
  /** Ends a restart's backoff early (at close). */
  let wake = () => {};

  let current = spawnRedis(binary, port, options.dir);
  await current.ready;
  log?.info("embedded redis-server started", { url, dir: options.dir });

  /** Brings redis-server back after a death; false once it gave up. */
  const restart = async (restarts: number[]): Promise<boolean> => {
    for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
      await new Promise<void>((r) => {
        const timer = setTimeout(r, Math.min(5_000, 250 * 2 ** attempt));
        wake = () => {
          clearTimeout(timer);
          r();
        };
      });
      if (closing) return false;
      current = spawnRedis(binary, port, options.dir);
      try {
        await current.ready;
        restarts.push(Date.now());
        log?.info("embedded redis-server restarted", { url, attempt: attempt + 1 });
        return true;
      } catch (err) {
        if (closing) return false;
        log?.warn("embedded redis-server did not start again; retrying", {
          attempt: attempt + 1,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
    log?.error("embedded redis-server could not be started again; giving up", {
      attempts: START_ATTEMPTS,
    });
    return false;
  };

  const supervising = options.supervise && (async () => {
    const restarts: number[] = [];
    while (true) {
      const status = await current.process.child.status;
      if (closing) return;
      const recent = restarts.filter((t) => Date.now() - t < 60_000);
      restarts.splice(0, restarts.length, ...recent);
      log?.error("embedded redis-server died", {
        code: status.code,
        signal: status.signal,
        // Killed: nothing to read; crashed: its last words.
        ...(status.signal ? {} : { output: current.process.output().slice(-300) }),
      });
      if (recent.length >= RESTARTS_PER_MINUTE) {
        log?.error("embedded redis-server keeps dying; not restarting it again", {
          restarts_last_minute: recent.length,
        });
        return;
      }
      if (!(await restart(restarts))) return;
    }
  })();

  let stopping: Promise<void> | undefined;
  const close = () =>
    stopping ??= (async () => {
      closing = true;
      wake();
      const { process } = current;
      if (!process.exited) {
        try {
          process.child.kill("SIGTERM");
        } catch { /* gone */ }
        const timer = setTimeout(() => {
          try {
            process.child.kill("SIGKILL");
          } catch { /* gone */ }
        }, 5_000);
        await process.child.status;
        clearTimeout(timer);
      }
      await supervising;
    })();
  return { url, port, dir: options.dir, close, [Symbol.asyncDispose]: close };
}
