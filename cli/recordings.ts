/**
 * `deno task cli recordings ...`: list, download, delete and clean recordings through a
 * server's REST API.
 *
 *   deno task cli recordings list [--session-id ID] [--state S] [--since ISO] [--limit N] [--json]
 *   deno task cli recordings download ID [-o FILE]
 *   deno task cli recordings delete ID
 *   deno task cli recordings clean --older-than 7d
 *
 * Downloads follow the redirect to the node that holds the file (keeping the token, which
 * `fetch` drops across origins) and stream it to disk with a progress line.
 */
import { parseArgs } from "node:util";
import { formatBytes, formatNumber, progressBar } from "./format.ts";

export const RECORDINGS_USAGE = `Usage: deno task cli recordings <command> [options]

  list [--session-id ID] [--state S] [--since ISO] [--limit N] [--cursor C] [--json]
  download ID [-o FILE]        the video (default: ./<ID>.mp4 or .webm)
  delete ID
  clean --older-than AGE       e.g. 45s, 30m, 12h, 7d, 2w

  --server URL   the API (default $STREAMPLAY_URL or http://127.0.0.1:8000)
  --token T      API token (default $STREAMPLAY_TOKEN)
`;

// deno-lint-ignore no-explicit-any
type Json = any;

class Client {
  constructor(readonly server: string, readonly token: string | undefined) {}

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.token ? { ...extra, authorization: `Bearer ${this.token}` } : extra;
  }

  async call(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: Json }> {
    const res = await fetch(`${this.server}${path}`, {
      method,
      headers: this.headers(body === undefined ? {} : { "content-type": "application/json" }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: Json = text;
    try {
      parsed = JSON.parse(text);
    } catch { /* not JSON */ }
    return { status: res.status, body: parsed };
  }

  /** GET that follows redirects itself, so the token goes to the node that has the file. */
  async fetchFile(path: string): Promise<Response> {
    let url = `${this.server}${path}`;
    for (let hop = 0; hop < 4; hop++) {
      const res = await fetch(url, { headers: this.headers(), redirect: "manual" });
      const location = res.headers.get("location");
      if (res.status < 300 || res.status >= 400 || !location) return res;
      await res.body?.cancel();
      url = new URL(location, url).href;
    }
    throw new Error(`too many redirects for ${path}`);
  }
}

class Failure extends Error {
  constructor(message: string, readonly code: number) {
    super(message);
  }
}

function refuse(what: string, res: { status: number; body: Json }): never {
  throw new Failure(
    `${what} (${res.status}): ${res.body?.error ?? res.body}`,
    res.status === 400 ? 2 : 1,
  );
}

const pad = (rows: string[][]) => {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ").trimEnd());
};

async function list(client: Client, v: Record<string, unknown>): Promise<number> {
  const query = new URLSearchParams();
  for (
    const [flag, param] of [
      ["session-id", "session_id"],
      ["state", "state"],
      [
        "since",
        "since",
      ],
      ["limit", "limit"],
      ["cursor", "cursor"],
    ]
  ) {
    if (typeof v[flag!] === "string") query.set(param!, v[flag!] as string);
  }
  const res = await client.call("GET", `/api/recordings?${query}`);
  if (res.status !== 200) refuse("the server refused the list", res);
  if (v.json) {
    console.log(JSON.stringify(res.body, null, 2));
    return 0;
  }
  const recordings = res.body.recordings as Json[];
  if (recordings.length === 0) {
    console.log("No recordings.");
    return 0;
  }
  const rows = [[
    "ID",
    "SESSION",
    "STATE",
    "CODEC",
    "QUALITY",
    "SIZE",
    "DURATION",
    "FILE",
    "STARTED",
  ]];
  for (const r of recordings) {
    rows.push([
      r.recording_id,
      r.session_id,
      r.state,
      r.codec,
      r.quality,
      `${r.width}x${r.height}@${r.fps}`,
      `${formatNumber(r.duration_seconds, 1)} s`,
      formatBytes(r.file_size_bytes),
      String(r.started_at).replace("T", " ").slice(0, 19),
    ]);
  }
  console.log(pad(rows).join("\n"));
  if (res.body.next_cursor) console.log(`\nmore: --cursor ${res.body.next_cursor}`);
  return 0;
}

async function download(client: Client, id: string, output: string | undefined): Promise<number> {
  const meta = await client.call("GET", `/api/recordings/${encodeURIComponent(id)}`);
  if (meta.status !== 200) refuse(`cannot read recording ${id}`, meta);
  const cwd = Deno.env.get("INIT_CWD") ?? Deno.cwd();
  const name = output ?? `${id}.${meta.body.container}`;
  const target = name === "-" ? null : name.startsWith("/") ? name : `${cwd}/${name}`;
  const res = await client.fetchFile(`/api/recordings/${encodeURIComponent(id)}/video`);
  if (res.status !== 200) {
    const text = await res.text();
    let body: Json = text;
    try {
      body = JSON.parse(text);
    } catch { /* not JSON */ }
    refuse(`cannot download recording ${id}`, { status: res.status, body });
  }
  const total = Number(res.headers.get("content-length") ?? 0);
  let done = 0;
  const tty = Deno.stderr.isTerminal();
  let shown = 0;
  const counting = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      done += chunk.length;
      if (tty && total && performance.now() - shown > 100) {
        shown = performance.now();
        Deno.stderr.writeSync(
          new TextEncoder().encode(`\r\x1b[2K${progressBar(done / total)} ${formatBytes(done)}`),
        );
      }
      controller.enqueue(chunk);
    },
  });
  const body = res.body!.pipeThrough(counting);
  if (target === null) await body.pipeTo(Deno.stdout.writable, { preventClose: true });
  else {
    const file = await Deno.open(target, { write: true, create: true, truncate: true });
    await body.pipeTo(file.writable);
  }
  if (tty) Deno.stderr.writeSync(new TextEncoder().encode("\r\x1b[2K"));
  if (target !== null) console.log(`${target}  ${formatBytes(done)}`);
  return 0;
}

export async function recordingsCli(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        "session-id": { type: "string" },
        state: { type: "string" },
        since: { type: "string" },
        limit: { type: "string" },
        cursor: { type: "string" },
        json: { type: "boolean", default: false },
        output: { type: "string", short: "o" },
        "older-than": { type: "string" },
        server: { type: "string" },
        token: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    console.error(`${(err as Error).message} (see --help)`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  const [command, id] = positionals;
  if (v.help || !command) {
    console.log(RECORDINGS_USAGE);
    return v.help ? 0 : 2;
  }
  const server = (v.server ?? Deno.env.get("STREAMPLAY_URL") ?? "http://127.0.0.1:8000")
    .replace(/\/+$/, "");
  const client = new Client(server, v.token ?? Deno.env.get("STREAMPLAY_TOKEN"));
  const needId = () => {
    if (!id) throw new Failure(`recordings ${command} needs a recording id`, 2);
    return id;
  };
  try {
    switch (command) {
      case "list":
        return await list(client, v);
      case "download":
        return await download(client, needId(), v.output);
      case "delete": {
        const res = await client.call("DELETE", `/api/recordings/${encodeURIComponent(needId())}`);
        if (res.status !== 200) refuse(`cannot delete recording ${id}`, res);
        console.log(`deleted ${id} (${formatBytes(res.body.removed_bytes)})`);
        return 0;
      }
      case "clean": {
        if (!v["older-than"]) throw new Failure("clean needs --older-than, e.g. 7d", 2);
        const res = await client.call("POST", "/api/recordings/clean", {
          older_than: v["older-than"],
        });
        if (res.status !== 200) refuse("the server refused to clean", res);
        console.log(
          `removed ${res.body.removed} recording${res.body.removed === 1 ? "" : "s"} ` +
            `(${formatBytes(res.body.removed_bytes)})`,
        );
        return 0;
      }
      default:
        console.error(`unknown command "${command}": use list, download, delete or clean`);
        return 2;
    }
  } catch (err) {
    if (err instanceof Failure) {
      console.error(err.message);
      return err.code;
    }
    if (err instanceof TypeError) {
      console.error(`cannot reach ${server}: ${err.message}`);
      return 1;
    }
    throw err;
  }
}
