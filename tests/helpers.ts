/**
 * Test helpers: real redis-server processes on free ports, the real streamplay server as a child
 * process (`deno run -P=server main.ts`), a target HTTP server, and polling with a deadline.
 * Everything a helper starts is stopped by its `close()` / `await using`.
 */
import { checkedPath, installCommand, isInstalled, SYSTEM_PACKAGES } from "../lib/core/prereq.ts";
import { type EmbeddedRedis, freePort, startEmbeddedRedis } from "../lib/core/redis.ts";

export { freePort };

const ROOT = new URL("../", import.meta.url);
export const ROOT_DIR = ROOT.pathname;

export async function tempDir(prefix = "streamplay-test-"): Promise<
  { path: string; [Symbol.asyncDispose](): Promise<void> }
> {
  const path = await Deno.makeTempDir({ prefix });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}

/** A real redis-server with AOF in its own temp dir, removed on dispose. */
export async function startRedis(): Promise<EmbeddedRedis & { restart(): Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "streamplay-redis-" });
  let server = await startEmbeddedRedis({ dir });
  const port = server.port;
  const handle = {
    get url() {
      return server.url;
    },
    port,
    dir,
    async restart() {
      await server.close();
      server = await startEmbeddedRedis({ dir, port });
    },
    async close() {
      await server.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
    [Symbol.asyncDispose]() {
      return handle.close();
    },
  };
  return handle;
}

/**
 * Fails the calling test with a message naming the Debian packages it needs when one is missing
 * (from the list in lib/core/prereq.ts, which `deno task test` installs), e.g.
 * `requirePackages("nginx", "libnginx-mod-rtmp")` before starting nginx with its RTMP module.
 */
export function requirePackages(...names: string[]): void {
  const missing = names.map((name) => {
    const p = SYSTEM_PACKAGES.find((s) => s.pkg === name);
    if (!p) throw new Error(`${name} is not in SYSTEM_PACKAGES (lib/core/prereq.ts)`);
    return p;
  }).filter((p) => !isInstalled(p));
  if (missing.length === 0) return;
  const what = missing.map((p) => `${p.pkg} (${checkedPath(p)} not found)`).join(", ");
  throw new Error(
    `this test needs the Debian package ${what}: run \`deno task prereq test\` as root, or ` +
      `\`${installCommand(missing)}\``,
  );
}

export function uniquePrefix(): string {
  return `sptest-${crypto.randomUUID().slice(0, 8)}`;
}

export interface ServerHandle {
  url: string;
  port: number;
  dataDir: string;
  process: Deno.ChildProcess;
  output(): string;
  /** Sends a signal and waits for the process to exit. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface ServerOptions {
  role?: "all" | "worker";
  env?: Record<string, string>;
  dataDir?: string;
  port?: number;
  /** Keep the data dir when stopped (for restart tests). */
  keepData?: boolean;
  /**
   * Run inside this network namespace (`ip netns exec`), listening on `host`, with this file
   * bound over /etc/resolv.conf (in the server's own mount namespace) when given.
   */
  netns?: { name: string; host: string; resolvConf?: string };
}

/** Starts `main.ts` with the same permissions as `deno task start` and waits until it is ready. */
export async function startServer(options: ServerOptions = {}): Promise<ServerHandle> {
  const port = options.port ?? freePort();
  const dataDir = options.dataDir ?? await Deno.makeTempDir({ prefix: "streamplay-data-" });
  const role = options.role ?? "all";
  const host = options.netns?.host ?? "127.0.0.1";
  const deno = [Deno.execPath(), "run", "-P=server", "main.ts", `--role=${role}`];
  const resolv = options.netns?.resolvConf
    ? ["sh", "-c", 'mount --bind "$0" /etc/resolv.conf && exec "$@"', options.netns.resolvConf]
    : [];
  const command = options.netns
    ? ["ip", "netns", "exec", options.netns.name, ...resolv, ...deno]
    : deno;
  const child = new Deno.Command(command[0]!, {
    args: command.slice(1),
    cwd: ROOT_DIR,
    env: {
      NO_COLOR: "1",
      HOST: host,
      PORT: String(port),
      STREAMPLAY_DATA_DIR: dataDir,
      STREAMPLAY_LOG_LEVEL: "info",
      ...options.env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  let ready!: () => void;
  const readyP = new Promise<void>((r) => (ready = r));
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      out += chunk;
      if (role === "all" ? out.includes(" ready\n") : out.includes("worker pool started")) ready();
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const exited = child.status.then((s) => {
    ready();
    return s;
  });
  const deadline = setTimeout(ready, 30_000);
  await readyP;
  clearTimeout(deadline);
  const running = await Promise.race([exited.then(() => false), Promise.resolve(true)]);
  if (
    !running || !(role === "all" ? out.includes(" ready\n") : out.includes("worker pool started"))
  ) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await exited;
    throw new Error(`server did not start:\n${out}`);
  }
  let stopped: Promise<Deno.CommandStatus> | undefined;
  const stop = (signal: Deno.Signal = "SIGTERM") =>
    stopped ??= (async () => {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
      // A server that has not ended 30 s after the signal is killed, so a hang fails the test
      // that caused it (its exit status says SIGKILL) instead of stalling the whole suite.
      const timer = setTimeout(() => {
        console.error(`server on port ${port} still running 30 s after ${signal}: SIGKILL`);
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 30_000);
      const status = await exited;
      clearTimeout(timer);
      await pumps.catch(() => {});
      return status;
    })();
  return {
    url: `http://${host}:${port}`,
    port,
    dataDir,
    process: child,
    output: () => out,
    stop,
    async [Symbol.asyncDispose]() {
      await stop("SIGTERM");
      if (!options.keepData && !options.dataDir) {
        await Deno.remove(dataDir, { recursive: true }).catch(() => {});
      }
    },
  };
}

// deno-lint-ignore no-explicit-any
type Json = any;

/** fetch + JSON, returning status, headers and parsed body. */
export async function api(
  base: string,
  path: string,
  init: RequestInit & { json?: unknown; token?: string } = {},
): Promise<{ status: number; headers: Headers; body: Json }> {
  const headers = new Headers(init.headers);
  if (init.json !== undefined) headers.set("content-type", "application/json");
  if (init.token) headers.set("authorization", `Bearer ${init.token}`);
  const res = await fetch(base + path, {
    ...init,
    headers,
    body: init.json !== undefined ? JSON.stringify(init.json) : init.body,
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, body };
}

/** Polls until `check` returns a truthy value or the time is up. */
export async function waitFor<T>(
  check: () => Promise<T> | T,
  { timeoutMs = 15_000, intervalMs = 50, what = "condition" } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last}` : ""}`);
}

/** Waits until a job reaches one of `statuses` (default: any final status). */
export function waitForJob(
  base: string,
  id: string,
  statuses = ["succeeded", "failed", "cancelled"],
  options: { timeoutMs?: number; token?: string } = {},
) {
  return waitFor(async () => {
    const { body } = await api(base, `/api/jobs/${id}`, { token: options.token });
    return statuses.includes(body?.status) ? body : null;
  }, { timeoutMs: options.timeoutMs ?? 20_000, what: `job ${id} to be ${statuses.join("/")}` });
}

/**
 * A target HTTP server for load tests: `/` answers 1 KB, `/status/:code` that status,
 * `/chunked` a chunked body, `/close` closes after answering, `/slow?ms=` waits first.
 */
export function startTarget(): { url: string; port: number; hits(): number } & AsyncDisposable {
  const body = "x".repeat(1024);
  let hits = 0;
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    async (req) => {
      hits++;
      const url = new URL(req.url);
      if (url.pathname.startsWith("/status/")) {
        return new Response("status", { status: Number(url.pathname.slice(8)) });
      }
      if (url.pathname === "/chunked") {
        const stream = new ReadableStream({
          start(c) {
            c.enqueue(new TextEncoder().encode("part-one;"));
            c.enqueue(new TextEncoder().encode("part-two"));
            c.close();
          },
        });
        return new Response(stream);
      }
      if (url.pathname === "/close") {
        return new Response(body, {
          headers: { connection: "close" },
        });
      }
      if (url.pathname === "/slow") {
        await new Promise((r) => setTimeout(r, Number(url.searchParams.get("ms") ?? 1000)));
        return new Response("slow");
      }
      if (url.pathname === "/echo") return new Response(await req.text());
      return new Response(body);
    },
  );
  const port = server.addr.port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    hits: () => hits,
    async [Symbol.asyncDispose]() {
      ac.abort();
      await server.finished;
    },
  };
}
