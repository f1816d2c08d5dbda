/**
 * `streamplay stream`: a session's live video stream through a server's REST API — start, stop,
 * status, its URL, and `play`, which opens it in ffplay, mpv or VLC (the first one installed).
 * A stream is named by its session id or its own id (`str_…`).
 */
import { parseArgs } from "node:util";
import { formatBytes, formatNumber } from "./format.ts";
import {
  type Answer,
  Client,
  EXIT,
  Failure,
  type Json,
  refuse,
  SERVER_OPTIONS,
  SERVER_USAGE,
  usageError,
} from "./client.ts";

/** Players `play` tries, in this order (the installed command may run only these). */
export const PLAYERS = ["ffplay", "mpv", "vlc"] as const;

export const STREAM_USAGE = `Usage: streamplay stream <command> SESSION [options]

  start SESSION [--protocol hls|dash|rtmp] [--quality P] [--codec C] [--width W] [--height H]
                [--fps N] [--rtmp-url URL] [--rtmp-key KEY] [--json]
  stop SESSION                 stop the session's stream; prints its final totals
  status SESSION [--json]      state, health, fps, bitrate, viewers
  url SESSION                  the stream's URL (HLS playlist, DASH manifest or RTMP target)
  play SESSION [--player ${PLAYERS.join("|")}] [-- PLAYER_ARGS...]
                               open it in the first of ${PLAYERS.join(", ")} installed;
                               exits with the player's exit code

SESSION is a session id, or a stream id (str_…). Profiles and codecs: GET /api/stream-profiles.

${SERVER_USAGE}`;

const START_FLAGS = [
  ["protocol", "protocol", "string"],
  ["quality", "quality", "string"],
  ["codec", "codec", "string"],
  ["width", "width", "number"],
  ["height", "height", "number"],
  ["fps", "frame_rate", "number"],
  ["rtmp-url", "rtmp_url", "string"],
  ["rtmp-key", "rtmp_key", "string"],
] as const;

/** The active stream named by a session id or a stream id, or the command ends saying so. */
async function findStream(client: Client, name: string): Promise<Json> {
  const res = await client.call("GET", "/api/streams");
  if (res.status !== 200) refuse("the server refused the list of streams", res);
  const streams = res.body.streams as Json[];
  const found = streams.find((s) => s.stream_id === name) ??
    streams.find((s) => s.session_id === name);
  if (!found) {
    throw new Failure(`no active stream for ${name} (start one: streamplay stream start)`);
  }
  return found;
}

function describe(s: Json): string {
  const m = s.metrics ?? {};
  return [
    `${s.stream_id}  session ${s.session_id}  ${s.protocol} ${s.codec} ${s.width}x${s.height}` +
    `@${s.frame_rate} (${s.quality}, ${s.encoder})`,
    `  state    ${s.state}, ${s.health}${s.reason ? ` (${s.reason})` : ""}, up ${
      formatNumber(s.uptime_seconds)
    } s`,
    `  video    ${formatNumber(m.current_fps ?? 0, 1)} fps  ${
      formatNumber((m.current_bitrate ?? 0) / 1e6, 2)
    } Mbit/s  ${formatNumber(m.frames_sent ?? 0)} frames  ${formatBytes(m.bytes_sent ?? 0)} sent`,
    `  viewers  ${m.viewer_count ?? "–"}`,
    `  url      ${s.stream_url}`,
    `  player   ${s.player_url}`,
  ].join("\n");
}

function startBody(v: Record<string, unknown>): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const [flag, field, kind] of START_FLAGS) {
    const raw = v[flag];
    if (raw === undefined) continue;
    const n = Number(raw);
    if (kind === "number" && !Number.isFinite(n)) {
      throw usageError(`--${flag} must be a number, got "${raw}"`);
    }
    body[field] = kind === "number" ? n : raw;
  }
  return body;
}

/**
 * Runs `player` on `url` (the command's exit code is the player's); answers its exit code, or
 * null when it is not installed.
 */
async function runPlayer(player: string, args: string[], url: string): Promise<number | null> {
  let child: Deno.ChildProcess;
  console.error(`playing ${url} with ${player}`);
  try {
    child = new Deno.Command(player, {
      args: [...args, url],
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    if (err instanceof Deno.errors.NotCapable) {
      throw usageError(`--player must be one of ${PLAYERS.join(", ")}, got "${player}"`);
    }
    throw err;
  }
  return (await child.status).code;
}

async function play(client: Client, name: string, player: string | undefined, args: string[]) {
  if (player !== undefined && !(PLAYERS as readonly string[]).includes(player)) {
    throw usageError(`--player must be one of ${PLAYERS.join(", ")}, got "${player}"`);
  }
  const stream = await findStream(client, name);
  if (stream.protocol === "rtmp") {
    throw new Failure(
      `${stream.stream_id} is pushed to ${stream.stream_url}: play it from that RTMP server ` +
        "(its URL and your stream key)",
    );
  }
  for (const candidate of player ? [player] : PLAYERS) {
    const code = await runPlayer(candidate, args, stream.stream_url);
    if (code === null) continue;
    if (code !== 0) console.error(`${candidate} exited with code ${code}`);
    return code;
  }
  throw new Failure(
    `${player ?? PLAYERS.join(", ")} not found: install one (ffplay comes with ffmpeg), or open ` +
      `${stream.player_url} in a browser`,
  );
}

export async function streamCli(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        protocol: { type: "string" },
        quality: { type: "string" },
        codec: { type: "string" },
        width: { type: "string" },
        height: { type: "string" },
        fps: { type: "string" },
        "rtmp-url": { type: "string" },
        "rtmp-key": { type: "string" },
        player: { type: "string" },
        json: { type: "boolean", default: false },
        ...SERVER_OPTIONS,
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    throw usageError(`${(err as Error).message} (see streamplay stream --help)`);
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    console.log(STREAM_USAGE);
    return EXIT.ok;
  }
  const [command, name, ...rest] = positionals;
  if (!command) throw usageError(STREAM_USAGE);
  if (!name) throw usageError(`stream ${command} needs a session id (or a stream id)`);
  if (rest.length > 0 && command !== "play") {
    throw usageError(`stream ${command} takes one id, got also "${rest.join(" ")}"`);
  }
  const client = new Client(v);
  const print = (answer: Answer, text: string) =>
    console.log(v.json ? JSON.stringify(answer.body, null, 2) : text);
  switch (command) {
    case "start": {
      const res = await client.call(
        "POST",
        `/api/sessions/${encodeURIComponent(name)}/stream`,
        startBody(v),
      );
      if (res.status !== 201) refuse(`cannot start a stream of ${name}`, res);
      print(res, describe(res.body));
      return EXIT.ok;
    }
    case "stop": {
      const stream = await findStream(client, name);
      const res = await client.call("DELETE", `/api/streams/${stream.stream_id}`);
      if (res.status !== 200) refuse(`cannot stop ${stream.stream_id}`, res);
      print(res, `stopped ${describe(res.body.info)}`);
      return EXIT.ok;
    }
    case "status": {
      const stream = await findStream(client, name);
      const res = await client.call("GET", `/api/streams/${stream.stream_id}`);
      if (res.status !== 200) refuse(`cannot read ${stream.stream_id}`, res);
      print(res, describe(res.body.status));
      return EXIT.ok;
    }
    case "url":
      console.log((await findStream(client, name)).stream_url);
      return EXIT.ok;
    case "play":
      return await play(client, name, v.player, rest);
    default:
      throw usageError(`unknown command "${command}": use start, stop, status, url or play`);
  }
}
