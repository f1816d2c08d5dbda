/**
 * Domain errors: what went wrong, in the platform's terms. Lib code throws these; the one HTTP
 * error handler (`lib/http/errors.ts`) maps each kind to its status and headers.
 */

export type ErrorKind =
  | "invalid"
  | "not_found"
  | "conflict"
  | "too_large"
  | "busy"
  | "failed"
  | "not_supported"
  | "upstream"
  | "unavailable";

export class DomainError extends Error {
  override name = "DomainError";
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly options: { details?: unknown; retryAfterS?: number } = {},
  ) {
    super(message);
  }
}

/** Bad input the schema could not catch (400, naming the field). */
export const invalid = (message: string, details?: unknown) =>
  new DomainError("invalid", message, { details });
/** No such thing (404). */
export const notFound = (message: string) => new DomainError("not_found", message);
/** The thing is in a state that does not allow this (409). */
export const conflict = (message: string) => new DomainError("conflict", message);
/** Every slot is taken: try again after `retryAfterS` (429). */
export const busy = (message: string, retryAfterS: number, details?: unknown) =>
  new DomainError("busy", message, { retryAfterS, details });
/** A part the request needs does not answer (503). */
export const unavailable = (message: string, retryAfterS?: number) =>
  new DomainError("unavailable", message, retryAfterS === undefined ? {} : { retryAfterS });

const BY_STATUS: Record<number, ErrorKind> = {
  400: "invalid",
  404: "not_found",
  409: "conflict",
  413: "too_large",
  429: "busy",
  500: "failed",
  501: "not_supported",
  502: "upstream",
  503: "unavailable",
};

/** Seconds a caller is told to wait after a remote "busy" answer (a full stream or session). */
const REMOTE_RETRY_AFTER_S = 10;

/** The domain error another process answered with a status (a session's control reply). */
export function errorOfStatus(status: number, message: string): DomainError {
  const kind = BY_STATUS[status] ?? "unavailable";
  return new DomainError(
    kind,
    message,
    kind === "busy" ? { retryAfterS: REMOTE_RETRY_AFTER_S } : {},
  );
}
