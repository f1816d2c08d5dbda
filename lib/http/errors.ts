/**
 * The one place errors become HTTP answers: `{ "error": "<sentence>", "details"?: ... }` with the
 * right status. HTTPException carries its own status; domain errors are mapped here; anything
 * else is a 500 whose details are logged, never sent.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ZodError } from "zod";
import { QueueUnavailable } from "../jobs/queue.ts";
import { PlatformBusy } from "../monitoring/pressure.ts";
import { DomainError, type ErrorKind } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { errorMessage } from "../core/log.ts";

const STATUS: Record<ErrorKind, number> = {
  invalid: 400,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  busy: 429,
  failed: 500,
  not_supported: 501,
  upstream: 502,
  unavailable: 503,
};

export function toErrorStatus(err: unknown): number {
  if (err instanceof HTTPException) return err.status;
  if (err instanceof DomainError) return STATUS[err.kind];
  if (err instanceof QueueUnavailable) return 503;
  if (err instanceof PlatformBusy) return err.status;
  return 500;
}

/** Names the first problem of a zod error, prefixed with where the value came from. */
export function describeZodError(error: ZodError, prefix = ""): {
  error: string;
  details: Array<{ field: string; message: string }>;
} {
  const details = error.issues.map((i) => ({
    field: [prefix, ...i.path.map(String)].filter(Boolean).join("."),
    message: i.message,
  }));
  const first = details[0];
  return {
    error: first ? `${first.field || "body"}: ${first.message}` : "invalid request",
    details,
  };
}

export function errorHandler(log: Logger) {
  return (err: Error, c: Context) => {
    const status = toErrorStatus(err);
    const expected = err instanceof QueueUnavailable || err instanceof PlatformBusy ||
      err instanceof DomainError;
    if (status >= 500 && !expected) {
      log.error("request failed", {
        method: c.req.method,
        path: c.req.path,
        error: errorMessage(err),
        stack: err.stack?.split("\n").slice(1, 4).join(" | "),
      });
    }
    const body: Record<string, unknown> = {
      error: status === 500
        ? "Internal error; the server log has the details"
        : status === 415
        ? "body: send JSON with the header Content-Type: application/json"
        : err.message,
    };
    if (err instanceof HTTPException && err.cause !== undefined && status < 500) {
      body.details = err.cause;
    }
    if (err instanceof DomainError && err.options.details !== undefined) {
      body.details = err.options.details;
    }
    if (err instanceof PlatformBusy) {
      body.details = { reason: err.pressure.reason, pressure: err.pressure };
    }
    const res = c.json(body, status as 400);
    if (status === 401) res.headers.set("WWW-Authenticate", 'Bearer realm="streamplay"');
    if (err instanceof QueueUnavailable) res.headers.set("Retry-After", "5");
    if (err instanceof PlatformBusy) res.headers.set("Retry-After", String(err.retryAfterS));
    if (err instanceof DomainError && err.options.retryAfterS !== undefined) {
      res.headers.set("Retry-After", String(err.options.retryAfterS));
    }
    return res;
  };
}
