/**
 * Share links (`POST /api/sessions/:id/share`): a live session's page holding a capability
 * (capability.ts) for a viewer or an operator of that session, until it expires or the session
 * ends.
 */
import { z } from "@hono/zod-openapi";
import { conflict } from "../core/errors.ts";
import { FINAL_STATUSES } from "../jobs/queue.ts";
import { findSession, type SessionLookup } from "./control.ts";

const MAX_SHARE_S = 7 * 86_400;

export const ShareRequest = z.object({
  role: z.enum(["viewer", "operator"]).default("viewer")
    .openapi({ description: "viewer: watch only; operator: drive, pause, navigate, stop." }),
  expires_in_s: z.number().int().min(60).max(MAX_SHARE_S).default(3600)
    .openapi({
      description: "Seconds the link works (at most 7 days); it also ends with the session.",
    }),
}).strict().openapi("ShareRequest");

export const ShareSchema = z.object({
  session_id: z.string(),
  role: z.enum(["viewer", "operator"]),
  url: z.string().openapi({ description: "The page of the session, holding the token" }),
  token: z.string().openapi({
    description: "Bearer token for this session's API and viewer socket",
  }),
  expires_at: z.string(),
}).openapi("SessionShare");

export type ShareView = z.infer<typeof ShareSchema>;

/**
 * A share link for a live session: its page at `baseUrl` with the token (404 for an unknown
 * session, 409 for one that has ended).
 */
export async function shareSession(
  deps: SessionLookup,
  id: string,
  request: z.infer<typeof ShareRequest>,
  baseUrl: string,
): Promise<ShareView> {
  const job = await findSession(deps, id);
  if (FINAL_STATUSES.has(job.status)) throw conflict(`Session ${id} has ended`);
  const minted = await deps.sessions.shares.mint(id, request.role, request.expires_in_s);
  const query = new URLSearchParams({ session: id, token: minted.token });
  return {
    session_id: id,
    role: minted.role,
    url: `${baseUrl}/?${query}`,
    token: minted.token,
    expires_at: minted.expiresAt.toISOString(),
  };
}
