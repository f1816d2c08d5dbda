/**
 * Logger: levelled lines on stderr, text or JSON. Every line passes through the redactor, so a
 * secret registered with `addSecret` (API tokens, RTMP keys, Redis passwords) is never printed.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
  /**
   * Registers a value that must never appear in a log line. One of `MIN_SUBSTRING_SECRET`
   * characters or more is masked wherever it appears; a shorter one (an RTMP key "k") only where
   * it stands as a whole token (`/app/k`, `key=k`), so it does not mask every "k" of every line.
   */
  addSecret(secret: string): void;
}

export interface LoggerOptions {
  level?: LogLevel;
  format?: "text" | "json";
  write?: (line: string) => void;
}

const encoder = new TextEncoder();

/** Secrets at least this long are masked wherever they appear, even inside a word. */
export const MIN_SUBSTRING_SECRET = 8;
/** What a short secret must not touch on either side to be masked: it would be part of a word. */
const TOKEN_CHAR = "[\\p{L}\\p{N}_.~-]";

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = ORDER[options.level ?? "info"];
  const format = options.format ?? "text";
  const write = options.write ??
    ((line: string) => Deno.stderr.writeSync(encoder.encode(line + "\n")));
  const secrets = new Set<string>();
  const short = new Set<string>();
  /** Short secrets, masked only as whole tokens (see `addSecret`); rebuilt when one is added. */
  let shortSecrets: RegExp | undefined;

  const redact = (text: string) => {
    let out = text;
    for (const secret of secrets) out = out.replaceAll(secret, "***");
    if (shortSecrets) out = out.replace(shortSecrets, "***");
    // Bearer tokens and ?token= query values, even when not registered.
    return out.replace(/(Bearer\s+)[^\s"']+/gi, "$1***").replace(
      /([?&]token=)[^&\s"']+/gi,
      "$1***",
    );
  };

  const make = (base: Record<string, unknown>): Logger => {
    const emit = (lvl: LogLevel, message: string, fields?: Record<string, unknown>) => {
      if (ORDER[lvl] < level) return;
      const all = { ...base, ...fields };
      let line: string;
      if (format === "json") {
        line = JSON.stringify({ ts: new Date().toISOString(), level: lvl, msg: message, ...all });
      } else {
        const extra = Object.entries(all).map(([k, v]) =>
          `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`
        ).join(" ");
        line = `${new Date().toISOString()} ${lvl.toUpperCase().padEnd(5)} ${message}${
          extra ? " " + extra : ""
        }`;
      }
      write(redact(line));
    };
    return {
      debug: (m, f) => emit("debug", m, f),
      info: (m, f) => emit("info", m, f),
      warn: (m, f) => emit("warn", m, f),
      error: (m, f) => emit("error", m, f),
      child: (fields) => make({ ...base, ...fields }),
      addSecret: (secret) => {
        if (!secret) return;
        if (secret.length >= MIN_SUBSTRING_SECRET) {
          secrets.add(secret);
          return;
        }
        short.add(secret);
        const alternatives = [...short].sort((a, b) => b.length - a.length).map(escapeRegExp);
        shortSecrets = new RegExp(
          `(?<!${TOKEN_CHAR})(?:${alternatives.join("|")})(?!${TOKEN_CHAR})`,
          "gu",
        );
      },
    };
  };
  return make({});
}

/** Turns an unknown thrown value into a one-line message. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
