/**
 * `deno task cli <area> <command> [options]`: the platform from the command line, through a
 * server's REST API (`--server` or STREAMPLAY_URL, `--token` or STREAMPLAY_TOKEN).
 *
 *   deno task cli recordings list|download|delete|clean ...   (see cli/recordings.ts)
 */
import { RECORDINGS_USAGE, recordingsCli } from "./recordings.ts";

const AREAS: Record<string, (args: string[]) => Promise<number>> = {
  recordings: recordingsCli,
};

const USAGE = `Usage: deno task cli <area> <command> [options]

Areas: ${Object.keys(AREAS).join(", ")}

${RECORDINGS_USAGE}`;

export async function main(args: string[]): Promise<number> {
  const [area, ...rest] = args;
  if (!area || area === "--help" || area === "-h") {
    console.log(USAGE);
    return area ? 0 : 2;
  }
  const run = AREAS[area];
  if (!run) {
    console.error(`unknown area "${area}": use ${Object.keys(AREAS).join(", ")}`);
    return 2;
  }
  return await run(rest);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
