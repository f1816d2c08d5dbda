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
  /** Registers a value that must never appear in a log line. */
  addSecret(secret: string): void;
}

export interface LoggerOptions {
  level?: LogLevel;
  format?: "text" | "json";
  write?: (line: string) => void;
}

const encoder = new TextEncoder();

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = ORDER[options.level ?? "info"];
  const format = options.format ?? "text";
  const write = options.write ??
    ((line: string) => Deno.stderr.writeSync(encoder.encode(line + "\n")));
  const secrets = new Set<string>();

  const redact = (text: string) => {
    let out = text;
    for (const secret of secrets) out = out.replaceAll(secret, "***");
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
        if (secret) secrets.add(secret);
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
