/**
 * `streamplay <command> [options]`: the platform from the command line, one entry for every
 * command. Installed with `deno task install:cli`; `deno task cli` runs the same from a checkout.
 * User errors end with one line on stderr and an exit code (see `EXIT` in cli/client.ts).
 */
import { BENCH_USAGE, benchCli } from "./bench.ts";
import { RECORDINGS_USAGE, recordingsCli } from "./recordings.ts";
import { STREAM_USAGE, streamCli } from "./stream.ts";
import { EXIT, Failure } from "./client.ts";
import { ConfigError } from "../lib/core/config.ts";

interface Command {
  summary: string;
  usage: string;
  run(args: string[]): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  bench: {
    summary: "run an HTTP or real-browser benchmark here, or on a server (--submit)",
    usage: BENCH_USAGE,
    run: benchCli,
  },
  recordings: {
    summary: "list, download, delete and clean recordings",
    usage: RECORDINGS_USAGE,
    run: recordingsCli,
  },
  stream: {
    summary: "start, stop, inspect and play a session's live video stream",
    usage: STREAM_USAGE,
    run: streamCli,
  },
};

const USAGE = `Usage: streamplay <command> [options]    (streamplay <command> --help for each)

${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`).join("\n")}

Exit codes: 0 done · 1 failed · 2 bad usage · 98 a benchmark where nothing succeeded ·
99 a benchmark threshold crossed.`;

export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === "--help" || name === "-h" || name === "help") {
    const command = rest[0] ? COMMANDS[rest[0]] : undefined;
    console.log(command?.usage ?? USAGE);
    return EXIT.ok;
  }
  if (!name) {
    console.error(USAGE);
    return EXIT.usage;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`streamplay: unknown command "${name}": use ${Object.keys(COMMANDS).join(", ")}`);
    return EXIT.usage;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`streamplay: ${err.message}`);
      return EXIT.usage;
    }
    if (!(err instanceof Failure)) throw err;
    console.error(err.message);
    return err.code;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
