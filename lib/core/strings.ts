/**
 * Text from outside (request bodies, what a page logs or throws) made safe once, at the boundary:
 * lone UTF-16 surrogates and NUL characters become U+FFFD, so no later step (DuckDB's JSON, a
 * process argument, a header) refuses the whole value because of one character.
 */

/** The character every invalid part of a string is replaced with. */
export const REPLACEMENT = "\uFFFD";

/** `text` with lone surrogates and NUL characters replaced by U+FFFD (the same string if none). */
export function safeString(text: string): string {
  const formed = text.isWellFormed() ? text : text.toWellFormed();
  return formed.includes("\0") ? formed.replaceAll("\0", REPLACEMENT) : formed;
}

/**
 * Plain data (what `JSON.parse` returns or a Worker posts) with every string and object key made
 * safe by `safeString`. Copies only what changes: a value that needed nothing comes back as is,
 * so `safeData(v) !== v` says something was replaced. Other objects (buffers, dates) pass through.
 */
export function safeData<T>(value: T): T {
  if (typeof value === "string") return safeString(value) as T;
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item = value[i];
      const safe = safeData(item);
      if (safe !== item) (out ??= value.slice())[i] = safe;
    }
    return (out ?? value) as T;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const entries = Object.entries(value as Record<string, unknown>);
  let out: Array<[string, unknown]> | undefined;
  for (let i = 0; i < entries.length; i++) {
    const [key, item] = entries[i]!;
    const safeKey = safeString(key);
    const safe = safeData(item);
    if (!out && (safeKey !== key || safe !== item)) out = entries.slice(0, i);
    out?.push([safeKey, safe]);
  }
  // fromEntries defines own properties (a "__proto__" key stays a key).
  return (out ? Object.fromEntries(out) : value) as T;
}

/** Whether JSON text may hold an escaped lone surrogate (`\ud800`), which JSON readers refuse. */
export function mayHoldLoneSurrogate(json: string): boolean {
  return /\\u[dD][89a-fA-F]/.test(json);
}
