/**
 * The entry point of a function's own Deno process, started with no permission (net only to its
 * `allow_hosts`) by `lib/functions/process.ts`: it runs the user's module and speaks
 * `lib/functions/protocol.ts` on stdin and stdout. It holds nothing worth stealing.
 */
import {
  exceedsJsonSize,
  type FromChild,
  type FunctionLogLevel,
  MAX_RESULT_BYTES,
  type ToChild,
} from "../lib/functions/protocol.ts";

const encoder = new TextEncoder();
const stdout = Deno.stdout;

function send(message: FromChild): void {
  const bytes = encoder.encode(JSON.stringify(message) + "\n");
  let written = 0;
  while (written < bytes.length) written += stdout.writeSync(bytes.subarray(written));
}

const format = (args: unknown[]) =>
  args.map((a) => typeof a === "string" ? a : Deno.inspect(a, { depth: 4 })).join(" ");

const log = (level: FunctionLogLevel) => (...args: unknown[]) =>
  send({ t: "log", level, message: format(args) });

// Console output is the job's log, not the protocol's stream.
const levels: Record<string, FunctionLogLevel> = {
  debug: "debug",
  trace: "debug",
  info: "info",
  log: "info",
  warn: "warn",
  error: "error",
};
for (const [method, level] of Object.entries(levels)) {
  (console as unknown as Record<string, unknown>)[method] = log(level);
}

// A function has no use for threads; Workers would only multiply its memory.
Object.defineProperty(globalThis, "Worker", {
  value: class {
    constructor() {
      throw new Error("functions cannot start Workers");
    }
  },
  writable: false,
  configurable: false,
});

let nextRid = 1;
const replies = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();

function request(message: FromChild & { rid: number }): Promise<unknown> {
  return new Promise((resolve, reject) => {
    replies.set(message.rid, { resolve, reject });
    send(message);
  });
}

const artifacts = {
  /** Stores `data` as the job's artifact `name` (letters, digits, `_.-`). */
  save(name: string, data: Uint8Array | ArrayBuffer | string): Promise<void> {
    const bytes = typeof data === "string"
      ? encoder.encode(data)
      : data instanceof ArrayBuffer
      ? new Uint8Array(data)
      : data;
    if (!(bytes instanceof Uint8Array)) {
      return Promise.reject(
        new TypeError("artifacts.save takes a Uint8Array, ArrayBuffer or string"),
      );
    }
    const rid = nextRid++;
    return request({ t: "artifact", rid, name: String(name), data: bytes.toBase64() }).then(
      () => undefined,
    );
  },
};

/** Methods that return a page object at once in Playwright: here they return its proxy at once. */
const CHAINED = new Set([
  "locator",
  "getByRole",
  "getByText",
  "getByLabel",
  "getByPlaceholder",
  "getByTestId",
  "getByAltText",
  "getByTitle",
  "frameLocator",
  "first",
  "last",
  "nth",
  "filter",
  "and",
  "or",
  "owner",
  "contentFrame",
  "mainFrame",
  "context",
  "page",
]);
/** Properties that are page objects (`page.keyboard`), not methods. */
const PROPERTIES = new Set(["keyboard", "mouse", "touchscreen"]);

const handleOf = Symbol("handle");
type Remote = { [handleOf]: Promise<number> } & Record<string, unknown>;

/**
 * A page object held on the other side: every method call becomes a `call` message.
 *
 * `page` and `context` are such proxies: each method call is a message answered by the side that
 * holds the browser, so every method returns a promise, `url()` included; finders such as
 * `locator()` return the next proxy at once. Everything it may do is decided on the other side.
 */
function remote(id: Promise<number>): Remote {
  id.catch(() => {});
  return new Proxy({} as Remote, {
    has: (_, prop) => prop === handleOf,
    get(_, prop) {
      if (prop === handleOf) return id;
      if (typeof prop !== "string" || prop === "then") return undefined;
      if (PROPERTIES.has(prop)) return remote(callRemote(id, prop, []) as Promise<number>);
      return (...args: unknown[]) => {
        const result = callRemote(id, prop, args);
        return CHAINED.has(prop) ? remote(result as Promise<number>) : result;
      };
    },
  });
}

async function callRemote(id: Promise<number>, method: string, args: unknown[]) {
  const target = await id;
  const encoded = await Promise.all(args.map(encode));
  const value = await request({ t: "call", rid: nextRid++, target, method, args: encoded });
  const decoded = decode(value);
  // A chained call resolves to the handle the next call goes to.
  return decoded && typeof decoded === "object" && handleOf in decoded
    ? CHAINED.has(method) || PROPERTIES.has(method) ? (decoded as Remote)[handleOf] : decoded
    : decoded;
}

async function encode(value: unknown): Promise<unknown> {
  if (value === undefined) return { $u: 1 };
  if (typeof value === "function") return { $fn: value.toString() };
  if (value === null || typeof value !== "object") return value;
  if (handleOf in value) return { $h: await (value as Remote)[handleOf] };
  if (value instanceof RegExp) return { $re: [value.source, value.flags] };
  if (value instanceof Uint8Array) return { $b64: value.toBase64() };
  if (value instanceof ArrayBuffer) return { $b64: new Uint8Array(value).toBase64() };
  if (Array.isArray(value)) return await Promise.all(value.map(encode));
  const entries = await Promise.all(
    Object.entries(value).map(async ([k, v]) => [k, await encode(v)] as const),
  );
  return Object.fromEntries(entries);
}

function decode(value: unknown): unknown {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(decode);
  const v = value as Record<string, unknown>;
  if ("$u" in v) return undefined;
  if ("$h" in v) return remote(Promise.resolve(Number(v.$h)));
  if ("$b64" in v) return Uint8Array.fromBase64(String(v.$b64));
  return Object.fromEntries(Object.entries(v).map(([k, item]) => [k, decode(item)]));
}

let entry: unknown;

const HARNESS = import.meta.url;
/** The user's module in stack traces: Deno prints data: URLs whole or shortened with "...". */
const MODULE_URL = /data:application\/typescript;base64,[A-Za-z0-9+/=.]+/g;

/** The error as the job shows it: message and the user's stack frames, not the harness's. */
function describe(err: unknown): string {
  const text = err instanceof Error ? (err.stack ?? `${err.name}: ${err.message}`) : String(err);
  return text.split("\n").filter((line) => !line.includes(HARNESS)).join("\n")
    .replace(MODULE_URL, "function.ts").slice(0, 4000);
}

async function load(code: string) {
  try {
    const mod = await import(
      `data:application/typescript;base64,${encoder.encode(code).toBase64()}`
    );
    entry = mod.default;
    if (typeof entry !== "function") {
      send({ t: "load_failed", error: "the module's default export is not a function" });
      return;
    }
    send({ t: "loaded" });
  } catch (err) {
    send({ t: "load_failed", error: describe(err) });
  }
}

/**
 * Calls the module's default export once per `run`; console output, `log()` and `artifacts.save()`
 * become messages, and so does the result.
 */
async function run(params: unknown, page: number | null, context: number | null) {
  try {
    const handles = page === null || context === null
      ? {}
      : { page: remote(Promise.resolve(page)), context: remote(Promise.resolve(context)) };
    const result = await (entry as (ctx: unknown) => unknown)({
      params,
      log: log("info"),
      artifacts,
      ...handles,
    }) ?? null;
    if (exceedsJsonSize(result, MAX_RESULT_BYTES)) {
      throw new Error(
        `the result is larger than ${MAX_RESULT_BYTES / 1024 / 1024} MB as JSON; ` +
          "save large data with artifacts.save() and return a summary",
      );
    }
    // Only what JSON keeps: a Date becomes its ISO string, a Map `{}` (as in a job's result).
    let plain: unknown;
    try {
      plain = JSON.parse(JSON.stringify(result));
    } catch (err) {
      throw new Error(`the result is not JSON-serialisable: ${(err as Error).message}`);
    }
    send({ t: "done", ok: true, result: plain });
  } catch (err) {
    send({ t: "done", ok: false, error: describe(err) });
  }
}

function receive(message: ToChild) {
  if (message.t === "load") load(message.code);
  else if (message.t === "run") run(message.params, message.page, message.context);
  else if (message.t === "reply") {
    const waiting = replies.get(message.rid);
    replies.delete(message.rid);
    if (message.ok) waiting?.resolve(message.value);
    else waiting?.reject(new Error(message.error));
  }
}

send({ t: "ready" });
const decoder = new TextDecoder();
let pending = "";
for await (const chunk of Deno.stdin.readable) {
  pending += decoder.decode(chunk, { stream: true });
  let end: number;
  while ((end = pending.indexOf("\n")) >= 0) {
    const line = pending.slice(0, end);
    pending = pending.slice(end + 1);
    if (line) receive(JSON.parse(line) as ToChild);
  }
}
// The trusted side went away (or closed the pipe): nothing more will come.
Deno.exit(0);
