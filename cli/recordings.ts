/**
 * `streamplay recordings`: list, download, delete and clean recordings through a server's REST API.
 */
import { parseArgs } from "node:util";
import { formatBytes, formatNumber, progressBar } from "./format.ts";
import {
  Client,
  EXIT,
  Failure,
  type Json,
  readBody,
  refuse,
  SERVER_OPTIONS,
  SERVER_USAGE,
  usageError,
} from "./client.ts";

export const RECORDINGS_USAGE = `Usage: streamplay recordings <command> [options]

  list [--session-id ID] [--state S] [--since ISO] [--limit N] [--cursor C] [--json]
  download ID [-o FILE]        the video, to FILE (default ./ID.mp4 or .webm) or - for stdout
  delete ID
  clean --older-than AGE [--dry-run]
                               AGE e.g. 45s, 30m, 12h, 7d, 2w; --dry-run lists what would go

${SERVER_USAGE}

FILE is relative to the current directory, under which the command may write (and /tmp):
write elsewhere with -o - > FILE.`;

const pad = (rows: string[][]) => {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ").trimEnd());
};

const LIST_FILTERS = [
  ["session-id", "session_id"],
  ["state", "state"],
  ["since", "since"],
  ["limit", "limit"],
  ["cursor", "cursor"],
] as const;

async function list(client: Client, v: Record<string, unknown>): Promise<number> {
  const query = new URLSearchParams();
  for (const [flag, param] of LIST_FILTERS) {
    if (typeof v[flag] === "string") query.set(param, v[flag] as string);
  }
  const res = await client.call("GET", `/api/recordings?${query}`);
  if (res.status !== 200) refuse("the server refused the list", res);
  if (v.json) {
    console.log(JSON.stringify(res.body, null, 2));
    return EXIT.ok;
  }
  const recordings = res.body.recordings as Json[];
  if (recordings.length === 0) {
    console.log("No recordings.");
    return EXIT.ok;
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
  return EXIT.ok;
}

/** Opens the output file, or ends the command with one line saying why it cannot. */
async function openOutput(path: string): Promise<Deno.FsFile> {
  try {
    return await Deno.open(path, { write: true, create: true, truncate: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
      throw new Failure(
        `cannot write ${path}: streamplay writes only under the current directory (and /tmp); ` +
          `cd there, or use -o - > ${path}`,
      );
    }
    if (err instanceof Deno.errors.NotFound) {
      throw new Failure(`cannot write ${path}: its directory does not exist`);
    }
    throw new Failure(`cannot write ${path}: ${(err as Error).message}`);
  }
}

async function download(client: Client, id: string, output: string | undefined): Promise<number> {
  const meta = await client.call("GET", `/api/recordings/${encodeURIComponent(id)}`);
  if (meta.status !== 200) refuse(`cannot read recording ${id}`, meta);
  const target = output ?? `${id}.${meta.body.container}`;
  const res = await client.fetchFile(`/api/recordings/${encodeURIComponent(id)}/video`);
  if (res.status !== 200) {
    refuse(`cannot download recording ${id}`, { status: res.status, body: await readBody(res) });
  }
  const toStdout = target === "-";
  if (toStdout && Deno.stdout.isTerminal()) {
    await res.body?.cancel();
    throw usageError("-o - writes the video to stdout, which is a terminal: redirect it (> FILE)");
  }
  const file = toStdout ? null : await openOutput(target).catch(async (err) => {
    await res.body?.cancel();
    throw err;
  });
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
  try {
    if (file) await body.pipeTo(file.writable);
    else await body.pipeTo(Deno.stdout.writable, { preventClose: true });
  } catch (err) {
    if (file) await Deno.remove(target).catch(() => {});
    throw new Failure(`download of ${id} broke off after ${formatBytes(done)}: ${err}`);
  } finally {
    if (tty) Deno.stderr.writeSync(new TextEncoder().encode("\r\x1b[2K"));
  }
  if (file) console.log(`${target}  ${formatBytes(done)}`);
  return EXIT.ok;
}

async function clean(client: Client, age: string | undefined, dryRun: boolean): Promise<number> {
  if (!age) throw usageError("clean needs --older-than, e.g. 7d");
  const res = await client.call("POST", "/api/recordings/clean", {
    older_than: age,
    dry_run: dryRun,
  });
  if (res.status !== 200) refuse("the server refused to clean", res);
  const n = res.body.removed as number;
  const what = `${n} recording${n === 1 ? "" : "s"} (${formatBytes(res.body.removed_bytes)})`;
  if (!dryRun) {
    console.log(`removed ${what}`);
    return EXIT.ok;
  }
  console.log(`would remove ${what}; nothing was removed`);
  for (const id of res.body.recording_ids as string[]) console.log(`  ${id}`);
  return EXIT.ok;
}

/**
 * Downloads follow the redirect to the node that holds the file (keeping the token, which `fetch`
 * drops across origins) and stream it to a file under the current directory, or to stdout with `-o
 * -`, with a progress bar on a terminal.
 */
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
        "dry-run": { type: "boolean", default: false },
        ...SERVER_OPTIONS,
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    throw usageError(`${(err as Error).message} (see streamplay recordings --help)`);
  }
  const { values: v, positionals } = parsed;
  const [command, id] = positionals;
  if (v.help) {
    console.log(RECORDINGS_USAGE);
    return EXIT.ok;
  }
  if (!command) throw usageError(RECORDINGS_USAGE);
  const client = new Client(v);
  const needId = () => {
    if (!id) throw usageError(`recordings ${command} needs a recording id`);
    return id;
  };
  switch (command) {
    case "list":
      return await list(client, v);
    case "download":
      return await download(client, needId(), v.output);
    case "delete": {
      const res = await client.call("DELETE", `/api/recordings/${encodeURIComponent(needId())}`);
      if (res.status !== 200) refuse(`cannot delete recording ${id}`, res);
      console.log(`deleted ${id} (${formatBytes(res.body.removed_bytes)})`);
      return EXIT.ok;
    }
    case "clean":
      return await clean(client, v["older-than"], v["dry-run"]);
    default:
      throw usageError(`unknown command "${command}": use list, download, delete or clean`);
  }
}
