/**
 * The messages between a function's own Deno process (`workers/function_process.ts`) and the
 * trusted side that started it (`process.ts`): one JSON object per line on the child's stdin and
 * stdout. Imports nothing: the child loads it without a config.
 */

export type FunctionLogLevel = "debug" | "info" | "warn" | "error";

/** Trusted side → function process. */
export type ToChild =
  | { t: "load"; code: string }
  /** `page` / `context`: handles of the function's browser page and context (null: none). */
  | { t: "run"; params: unknown; page: number | null; context: number | null }
  | { t: "reply"; rid: number; ok: true; value: Wire }
  | {
    t: "reply";
    rid: number;
    ok: false;
    error: string;
  };

/** Function process → trusted side. */
export type FromChild =
  | { t: "ready" }
  | { t: "loaded" }
  | { t: "load_failed"; error: string }
  | { t: "log"; level: FunctionLogLevel; message: string }
  /** `data`: base64. */
  | { t: "artifact"; rid: number; name: string; data: string }
  /** A method call on the object behind handle `target` (a page, a locator, ...). */
  | { t: "call"; rid: number; target: number; method: string; args: Wire[] }
  | { t: "done"; ok: true; result: unknown }
  | { t: "done"; ok: false; error: string };

/**
 * A value on the wire: JSON, where an object with one of these keys stands for something else:
 * `$h` a handle (an object kept on the trusted side, with its kind), `$fn` a function's source
 * (run in the page, never on the trusted side), `$re` a regular expression, `$b64` bytes,
 * `$u` undefined.
 *
 * Values crossing for page calls are JSON with tags for what JSON lacks (handles to objects that
 * stay on the trusted side, functions as source, regular expressions, bytes, undefined).
 */
export type Wire = unknown;

/** A function's result larger than this (as JSON) fails the run: save big data as artifacts. */
export const MAX_RESULT_BYTES = 4 * 1024 * 1024;
/** One artifact at most. */
export const MAX_ARTIFACT_BYTES = 50 * 1024 * 1024;

/**
 * Whether `value` would take more than `limit` bytes as JSON, found by walking it (strings by
 * length) and stopping at the limit: a 100 MB result is refused without building 100 MB more.
 */
export function exceedsJsonSize(value: unknown, limit: number): boolean {
  let size = 0;
  const seen = new Set<object>();
  const walk = (v: unknown): boolean => {
    if (size > limit) return true;
    if (typeof v === "string") size += v.length + 2;
    else if (v === null || typeof v !== "object") size += 8;
    else if (seen.has(v)) return false;
    else {
      seen.add(v);
      if (ArrayBuffer.isView(v)) size += v.byteLength * 4;
      else {
        for (const [k, item] of Object.entries(v)) {
          size += k.length + 4;
          if (walk(item)) return true;
        }
      }
    }
    return size > limit;
  };
  return walk(value);
}
