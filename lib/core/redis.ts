/**
 * Redis connections and the embedded redis-server.
 *
 * Three kinds of connection, as BullMQ does it: a command connection that fails fast when Redis
 * is away (so the API can answer 503 instead of hanging), blocking connections for BLMOVE /
 * XREAD that wait forever, and a subscriber for pub/sub.
 */
import { Redis } from "ioredis";
import type { Logger } from "./log.ts";

export type { Redis };

export type ConnectionKind = "command" | "blocking" | "subscriber";

export function connectRedis(url: string, kind: ConnectionKind, log?: Logger): Redis {
  const redis = new Redis(url, {
    lazyConnect: false,
    // Commands on a down connection fail at once instead of queueing in memory.
    enableOfflineQueue: kind !== "command",
    maxRetriesPerRequest: kind === "command" ? 1 : null,
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
}

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

/**
 * Starts `redis-server` as a child process on a free loopback port with append-only persistence
 * in `dir`, and waits until it answers. `close()` shuts it down cleanly (the AOF is flushed). If
 * this process dies without closing it, redis-server gets SIGTERM and shuts down the same way, so
 * no orphan keeps the port and the data directory a restart will use.
 */
export async function startEmbeddedRedis(options: EmbeddedRedisOptions): Promise<EmbeddedRedis> {
  await Deno.mkdir(options.dir, { recursive: true });
  const port = options.port ?? freePort(options.avoidPorts);
  const child = spawnTiedToUs(options.binary ?? "redis-server", {
    args: [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      options.dir,
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
  const output: string[] = [];
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      output.push(chunk);
      if (output.length > 50) output.shift();
    }
  };
  drain(child.stdout).catch(() => {});
  drain(child.stderr).catch(() => {});

  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  let exited = false;
  child.status.then(() => (exited = true));
  while (true) {
    if (exited) throw new Error(`redis-server exited at start: ${output.join("").trim()}`);
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(new TextEncoder().encode("PING\r\n"));
      const buf = new Uint8Array(64);
      const n = await conn.read(buf);
      conn.close();
      // While loading a large AOF redis answers -LOADING; wait until it answers PONG.
      if (n && new TextDecoder().decode(buf.subarray(0, n)).startsWith("+PONG")) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`redis-server did not answer on port ${port} within 10 s`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  options.log?.info("embedded redis-server started", { url, dir: options.dir });

  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      if (exited) return;
      try {
        child.kill("SIGTERM");
      } catch {
        return;
      }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 5_000);
      await child.status;
      clearTimeout(timer);
    })();
  return { url, port, dir: options.dir, close, [Symbol.asyncDispose]: close };
}
