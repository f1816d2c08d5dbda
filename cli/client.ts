/**
 * What every `streamplay` command shares: the server's REST API as a small client (server and
 * token from flags or STREAMPLAY_URL / STREAMPLAY_TOKEN), the error that ends a command with
 * one line and an exit code, and the exit codes themselves.
 */

/** Exit codes, the same for every command (the thresholds ones as k6 has them). */
export const EXIT = {
  ok: 0,
  /** The work could not be done: the server refused, a job failed, a file could not be written. */
  failed: 1,
  /** Bad command-line input. */
  usage: 2,
  /** A benchmark ran but nothing succeeded: no response below 400, no completed iteration. */
  nothingSucceeded: 98,
  /** A benchmark threshold was crossed. */
  thresholds: 99,
} as const;

/** Ends a command: `message` on one line on stderr, then exit with `code`. */
export class Failure extends Error {
  constructor(message: string, readonly code: number = EXIT.failed) {
    super(message);
  }
}

/** Ends a command for bad input (exit code 2). */
export const usageError = (message: string) => new Failure(message, EXIT.usage);

/** The flags every command that talks to a server takes. */
export const SERVER_OPTIONS = {
  server: { type: "string" },
  token: { type: "string" },
} as const;

export const SERVER_USAGE =
  `  --server URL   the API (default $STREAMPLAY_URL or http://127.0.0.1:8000)
  --token T      API token (default $STREAMPLAY_TOKEN)`;

// deno-lint-ignore no-explicit-any
export type Json = any;

export interface Answer {
  status: number;
  body: Json;
}

export class Client {
  readonly server: string;
  readonly token: string | undefined;

  constructor(flags: { server?: string | undefined; token?: string | undefined }) {
    this.server = (flags.server ?? Deno.env.get("STREAMPLAY_URL") ?? "http://127.0.0.1:8000")
      .replace(/\/+$/, "");
    this.token = flags.token ?? Deno.env.get("STREAMPLAY_TOKEN");
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.token ? { ...extra, authorization: `Bearer ${this.token}` } : extra;
  }

  /** A JSON call; a server that cannot be reached ends the command with one line. */
  async call(method: string, path: string, body?: unknown): Promise<Answer> {
    const res = await this.fetch(`${this.server}${path}`, {
      method,
      headers: this.headers(body === undefined ? {} : { "content-type": "application/json" }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: await readBody(res) };
  }

  /** GET that follows redirects itself, so the token goes to the node that has the file. */
  async fetchFile(path: string): Promise<Response> {
    let url = `${this.server}${path}`;
    for (let hop = 0; hop < 4; hop++) {
      const res = await this.fetch(url, { headers: this.headers(), redirect: "manual" });
      const location = res.headers.get("location");
      if (res.status < 300 || res.status >= 400 || !location) return res;
      await res.body?.cancel();
      url = new URL(location, url).href;
    }
    throw new Failure(`too many redirects for ${path}`);
  }

  /** The WebSocket URL of a path on the server, with the token as `?token=`. */
  wsUrl(path: string): URL {
    const url = new URL(path, this.server);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    if (this.token) url.searchParams.set("token", this.token);
    return url;
  }

  private async fetch(url: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, init);
    } catch (err) {
      // "fetch failed", caused by "error sending request ...: tcp connect error: <why>"
      const why = String((err as Error).cause instanceof Error ? (err as Error).cause : err);
      throw new Failure(`cannot reach ${this.server}: ${why.split(": ").at(-1)}`);
    }
  }
}

/** A response body as JSON, or as text when it is not JSON. */
export async function readBody(res: Response): Promise<Json> {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Ends the command with the server's answer: exit 2 for a 400 (bad input), else 1. */
export function refuse(what: string, answer: Answer): never {
  throw new Failure(
    `${what} (${answer.status}): ${answer.body?.error ?? answer.body}`,
    answer.status === 400 ? EXIT.usage : EXIT.failed,
  );
}
