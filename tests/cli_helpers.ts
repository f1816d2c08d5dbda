/**
 * The `streamplay` command as a user gets it: `deno task install:cli` into a temporary install
 * root, then run from another directory (a temp dir) with relative paths. Removed on dispose.
 */
import { ROOT_DIR, tempDir } from "./helpers.ts";

export interface CliRun {
  code: number;
  out: string;
  err: string;
  /** stdout as bytes (a download to `-o -`). */
  bytes: Uint8Array;
}

export interface InstalledCli extends AsyncDisposable {
  /** The installed launcher. */
  bin: string;
  /** A directory of the user's, the default working directory of `run`. */
  home: string;
  run(
    args: string[],
    options?: { cwd?: string; env?: Record<string, string> },
  ): Promise<CliRun>;
}

export async function installCli(): Promise<InstalledCli> {
  const root = await tempDir("streamplay-cli-root-");
  const home = await tempDir("streamplay-cli-home-");
  const installed = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "install:cli"],
    cwd: ROOT_DIR,
    env: { DENO_INSTALL_ROOT: root.path, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!installed.success) {
    await root[Symbol.asyncDispose]();
    await home[Symbol.asyncDispose]();
    throw new Error(`install:cli failed: ${new TextDecoder().decode(installed.stderr)}`);
  }
  const bin = `${root.path}/bin/streamplay`;
  return {
    bin,
    home: home.path,
    run: (args, options = {}) =>
      runCommand(bin, args, options.cwd ?? home.path, { NO_COLOR: "1", ...options.env }),
    async [Symbol.asyncDispose]() {
      await root[Symbol.asyncDispose]();
      await home[Symbol.asyncDispose]();
    },
  };
}

/**
 * `deno task cli ...` run from `cwd` with the checkout's deno.json, as README users without the
 * installed command run it: the task moves to the caller's directory before starting the CLI.
 */
export function runCliTask(args: string[], cwd: string): Promise<CliRun> {
  return runCommand(
    Deno.execPath(),
    ["task", "--quiet", "--config", `${ROOT_DIR}deno.json`, "cli", ...args],
    cwd,
    // deno task sets INIT_CWD to the caller's directory only when it is unset, as in a user's
    // shell; these tests may themselves run under `deno task test`, which set it already.
    { NO_COLOR: "1", INIT_CWD: cwd },
  );
}

/** Runs `command` to its end with no stdin; its exit code and both outputs. */
async function runCommand(
  command: string,
  args: string[],
  cwd: string,
  env: Record<string, string>,
): Promise<CliRun> {
  const { code, stdout, stderr } = await new Deno.Command(command, {
    args,
    cwd,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code, out: text.decode(stdout), err: text.decode(stderr), bytes: stdout };
}
