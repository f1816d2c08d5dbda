/**
 * The trusted side of a function's own Deno process: starting it with no permission (net only to
 * its allow_hosts) under a memory limit, loading the user's module, running it, and holding it to
 * its limits — every message from it is untrusted input.
 */
import {
  type FromChild,
  type FunctionLogLevel,
  MAX_ARTIFACT_BYTES,
  MAX_RESULT_BYTES,
  type ToChild,
  type Wire,
} from "./protocol.ts";

/** Writable memory Deno maps before any user code runs (measured: 545-560 MB, Deno 2.9). */
export const BASE_DATA_MB = 640;
/** Log output (console.* and log()) one run may write. */
export const MAX_LOG_BYTES = 4 * 1024 * 1024;
/** Artifacts one run may save, in number and in bytes altogether. */
export const MAX_ARTIFACTS = 100;
export const MAX_ARTIFACTS_TOTAL = 200 * 1024 * 1024;
/** The longest message line accepted (an artifact of the largest size, in base64). */
const MAX_LINE = Math.ceil(MAX_ARTIFACT_BYTES * 4 / 3) + 64 * 1024;
const START_TIMEOUT_MS = 30_000;
const STDERR_KEPT = 8 * 1024;

export interface ProcessSpec {
  /** The deno binary. */
  deno: string;
  /** The prlimit binary (util-linux) that applies the data limit. */
  prlimit: string;
  /** The module the process runs (`workers/function_process.ts`). */
  entry: string;
  memoryMb: number;
}

/** A run that failed; `fatal` ones broke a sandbox rule and are not worth retrying. */
export class FunctionError extends Error {
  override name = "FunctionError";
  constructor(message: string, readonly fatal: boolean) {
    super(message);
  }
}

/** What a run reports to the job while it runs. */
export interface RunHooks {
  log(level: FunctionLogLevel, message: string): void;
  artifact(name: string, bytes: Uint8Array): Promise<void>;
  /** A page call (browser functions); absent: the function has no page. */
  call?(target: number, method: string, args: Wire[]): Promise<Wire>;
}

const LEVELS = new Set(["debug", "info", "warn", "error"]);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Why a process ended, in words a function's author can act on. */
export function describeExit(status: Deno.CommandStatus, stderr: string, memoryMb: number) {
  if (/out of memory|Reached heap limit|Failed to reserve virtual memory/i.test(stderr)) {
    return `the function ran out of memory: it may use ${memoryMb} MB ` +
      "(STREAMPLAY_FUNCTION_MEMORY_MB)";
  }
  const tail = stderr.trim().split("\n").filter(Boolean).slice(-3).join(" | ");
  const how = status.signal ? `signal ${status.signal}` : `exit code ${status.code}`;
  return `the function's process ended unexpectedly (${how})${tail ? `: ${tail}` : ""}`;
}

/**
 * The process is `prlimit --data=<cap + base> deno run --v8-flags=--max-old-space-size=<cap>`: the
 * V8 flag ends a JS heap that grows past the cap with a clear "out of memory"; the data limit holds
 * everything else the process maps writable (array buffers, Worker isolates from
 * node:worker_threads, thread stacks) to the same cap over Deno's own ~550 MB (`BASE_DATA_MB`),
 * most of which is V8's code range reserved at start. DENO_DIR=/dev/null leaves Deno without a
 * cache or storage directory, so localStorage and the Cache API fail instead of persisting between
 * functions.
 */
export class FunctionProcess {
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #spec: ProcessSpec;
  #stderr = "";
  /** Why it ended (killed here, or the exit described), once it has. */
  #ended: { reason: string; fatal: boolean } | null = null;
  readonly #inbox: FromChild[] = [];
  #wake: (() => void) | null = null;
  /** Set while it may take another run of the same code. */
  reusable = false;

  private constructor(spec: ProcessSpec, allowNet: string[]) {
    this.#spec = spec;
    const net = allowNet.length > 0 ? [`--allow-net=${allowNet.join(",")}`] : [];
    this.#child = new Deno.Command(spec.prlimit, {
      args: [
        `--data=${(spec.memoryMb + BASE_DATA_MB) * 1024 * 1024}`,
        "--core=0",
        "--",
        spec.deno,
        "run",
        "--no-config",
        "--no-lock",
        "--no-prompt",
        "--no-remote",
        "--no-npm",
        `--v8-flags=--max-old-space-size=${spec.memoryMb},--single-threaded`,
        ...net,
        spec.entry,
      ],
      clearEnv: true,
      env: { DENO_DIR: "/dev/null", NO_COLOR: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    const stderrDone = this.#keepStderr();
    const stdoutDone = this.#read();
    this.#child.status.then(async (status) => {
      await Promise.all([stderrDone, stdoutDone]);
      this.#end(describeExit(status, this.#stderr, spec.memoryMb), true);
    });
  }

  /** Starts a process and waits until it is ready to load code. */
  static async start(spec: ProcessSpec, allowNet: string[]): Promise<FunctionProcess> {
    const proc = new FunctionProcess(spec, allowNet);
    const timer = setTimeout(
      () => proc.kill("the function's process did not start in time"),
      START_TIMEOUT_MS,
    );
    try {
      await proc.#next("ready");
    } finally {
      clearTimeout(timer);
    }
    return proc;
  }

  get pid(): number {
    return this.#child.pid;
  }

  get alive(): boolean {
    return this.#ended === null;
  }

  async load(code: string): Promise<void> {
    this.#send({ t: "load", code });
    const reply = await this.#next("loaded", "load_failed");
    if (reply.t === "load_failed") {
      this.kill("load failed");
      throw new FunctionError(`the module could not be loaded: ${reply.error}`, true);
    }
    this.reusable = true;
  }

  /** Runs the loaded function once; rejects with a FunctionError. */
  async run(
    params: unknown,
    hooks: RunHooks,
    handles: { page: number; context: number } | null = null,
  ): Promise<unknown> {
    this.reusable = false;
    let logBytes = 0;
    let artifacts = 0;
    let artifactBytes = 0;
    const breach = (message: string): never => {
      this.kill(message);
      throw new FunctionError(message, true);
    };
    this.#send({
      t: "run",
      params,
      page: handles?.page ?? null,
      context: handles?.context ?? null,
    });
    while (true) {
      const m = await this.#next();
      switch (m.t) {
        case "log": {
          const message = String(m.message);
          logBytes += message.length;
          if (logBytes > MAX_LOG_BYTES) {
            breach(
              `the function wrote more than ${MAX_LOG_BYTES >> 20} MB of log output ` +
                "(console.* and log())",
            );
          }
          hooks.log(LEVELS.has(m.level) ? m.level : "info", message);
          break;
        }
        case "artifact": {
          const bytes = Uint8Array.fromBase64(String(m.data));
          artifacts++;
          artifactBytes += bytes.length;
          if (artifacts > MAX_ARTIFACTS || artifactBytes > MAX_ARTIFACTS_TOTAL) {
            breach(
              `the function saved more than ${MAX_ARTIFACTS} artifacts or ` +
                `${MAX_ARTIFACTS_TOTAL >> 20} MB of them`,
            );
          } else if (bytes.length > MAX_ARTIFACT_BYTES) {
            this.#reply(m.rid, `artifact ${m.name} is over ${MAX_ARTIFACT_BYTES >> 20} MB`);
          } else {
            hooks.artifact(String(m.name), bytes).then(
              () => this.#reply(m.rid, null),
              (err) => this.#reply(m.rid, err instanceof Error ? err.message : String(err)),
            );
          }
          break;
        }
        case "call":
          if (!hooks.call) {
            this.#reply(m.rid, "this function runs without a browser (browser: false)");
          } else {
            hooks.call(Number(m.target), String(m.method), Array.isArray(m.args) ? m.args : [])
              .then(
                (value) => this.#send({ t: "reply", rid: m.rid, ok: true, value }),
                (err) => this.#reply(m.rid, err instanceof Error ? err.message : String(err)),
              );
          }
          break;
        case "done": {
          if (!m.ok) {
            // Not kept warm: a run that failed may have left its process in any state.
            const error = String(m.error);
            throw new FunctionError(
              /allocation failed/i.test(error)
                ? `the function ran out of memory: it may use ${this.#spec.memoryMb} MB ` +
                  `(STREAMPLAY_FUNCTION_MEMORY_MB): ${error}`
                : error,
              false,
            );
          }
          const result = m.result ?? null;
          if (JSON.stringify(result).length > MAX_RESULT_BYTES) {
            breach(`the result is larger than ${MAX_RESULT_BYTES >> 20} MB as JSON`);
          }
          this.reusable = true;
          return result;
        }
        default:
          breach(`the function's process sent an unexpected "${m.t}" message`);
      }
    }
  }

  /** Ends the process now; a run in progress fails with `reason`. */
  kill(reason: string, fatal = true): void {
    if (this.#ended) return;
    try {
      this.#child.kill("SIGKILL");
    } catch { /* already gone */ }
    this.#end(reason, fatal);
  }

  /** Resolves once the process has exited. */
  async closed(): Promise<void> {
    await this.#child.status;
  }

  #end(reason: string, fatal: boolean) {
    if (this.#ended) return;
    this.#ended = { reason, fatal };
    this.reusable = false;
    this.#stdin.close().catch(() => {});
    this.#wake?.();
  }

  #reply(rid: number, error: string | null) {
    this.#send(
      error === null
        ? { t: "reply", rid, ok: true, value: null }
        : { t: "reply", rid, ok: false, error },
    );
  }

  #send(message: ToChild) {
    if (this.#ended) return;
    this.#stdin.write(encoder.encode(JSON.stringify(message) + "\n")).catch(() => {});
  }

  /** The next message (of one of `types` when given: another one is a breach of protocol). */
  async #next(...types: FromChild["t"][]): Promise<FromChild> {
    while (this.#inbox.length === 0) {
      if (this.#ended) throw new FunctionError(this.#ended.reason, this.#ended.fatal);
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = null;
    }
    const m = this.#inbox.shift()!;
    if (types.length > 0 && !types.includes(m.t)) {
      const reason = `the function's process sent "${m.t}" where "${types.join('" or "')}" was due`;
      this.kill(reason);
      throw new FunctionError(reason, true);
    }
    return m;
  }

  /** Splits stdout into lines, each one message; text that is no message becomes a log line. */
  async #read() {
    let chunks: Uint8Array[] = [];
    let buffered = 0;
    try {
      for await (const chunk of this.#child.stdout) {
        let start = 0;
        let nl: number;
        while ((nl = chunk.indexOf(10, start)) >= 0) {
          chunks.push(chunk.subarray(start, nl));
          const line = concat(chunks, buffered + nl - start);
          chunks = [];
          buffered = 0;
          start = nl + 1;
          if (line.length > 0) this.#inbox.push(parseMessage(decoder.decode(line)));
        }
        if (start < chunk.length) {
          chunks.push(chunk.slice(start));
          buffered += chunk.length - start;
          if (buffered > MAX_LINE) {
            this.kill(`the function sent a message over ${MAX_LINE >> 20} MB`);
            return;
          }
        }
        this.#wake?.();
      }
    } catch { /* killed */ }
  }

  async #keepStderr() {
    try {
      for await (const chunk of this.#child.stderr) {
        this.#stderr = (this.#stderr + decoder.decode(chunk, { stream: true })).slice(-STDERR_KEPT);
      }
    } catch { /* killed */ }
  }
}

/** A line as a message; text written to stdout around the console is shown as a log line. */
function parseMessage(line: string): FromChild {
  try {
    const message = JSON.parse(line);
    if (message && typeof message === "object" && typeof message.t === "string") return message;
  } catch { /* not a message */ }
  return { t: "log", level: "info", message: line };
}

function concat(chunks: Uint8Array[], length: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
