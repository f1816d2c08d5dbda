/**
 * What a `function` job runs with (its params), and the rule for `allow_hosts`.
 */
import { z } from "@hono/zod-openapi";
import ipaddr from "ipaddr.js";
import type { UrlPolicy } from "../security/url_policy.ts";
import { RecordParam } from "../recordings/model.ts";

/** The largest module accepted (TypeScript or JavaScript source). */
export const MAX_CODE_BYTES = 256 * 1024;
export const DEFAULT_FUNCTION_TIMEOUT_S = 60;

const THIS_MACHINE = "is this machine: functions cannot reach the machine they run on";
const HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:(\d{1,5}))?$/;

/** `host` or `host:port` of an allow_hosts entry. */
export function splitHost(entry: string): { host: string; port: number | null } {
  const m = HOST.exec(entry);
  return { host: m?.[1] ?? entry, port: m?.[3] ? Number(m[3]) : null };
}

function isLoopbackOrAny(address: string): boolean {
  if (address.toLowerCase() === "localhost") return true;
  try {
    const range = ipaddr.process(address.replace(/^\[|\]$/g, "")).range();
    return range === "loopback" || range === "unspecified";
  } catch {
    return false;
  }
}

/**
 * A host the function's own code may connect to: accepted by the URL policy, not on the machine the
 * function runs on (where the platform's API, Redis and session browsers listen) and not the
 * platform's Redis (`refuseAllowHost` checks the last two).
 */
export const AllowHost = z.string().max(260)
  .regex(HOST, "must be host or host:port (no scheme, no path)")
  .refine((entry) => !isLoopbackOrAny(splitHost(entry).host), THIS_MACHINE)
  .refine((entry) => {
    const { port } = splitHost(entry);
    return port === null || (port >= 1 && port <= 65535);
  }, "port must be from 1 to 65535");

export const FunctionParams = z.object({
  code: z.string().min(1).max(MAX_CODE_BYTES)
    .openapi({
      description: "An ES module (TypeScript or JavaScript) whose default export is " +
        "`async ({ page, context, params, log, artifacts }) => result`.",
      example: "export default async ({ params }) => ({ hello: params.name });",
    }),
  params: z.unknown().optional().openapi({ description: "What the function gets as `params`." }),
  browser: z.boolean().default(true)
    .openapi({ description: "Give the function a browser page (false: no page, no context)." }),
  allow_hosts: z.array(AllowHost).max(20).default([])
    .openapi({
      description: "Hosts (host or host:port) the function's own code may connect to; " +
        "the page's traffic goes through the URL policy's proxy instead.",
    }),
  viewport: z.object({
    width: z.number().int().min(200).max(3840).default(1280),
    height: z.number().int().min(200).max(2160).default(720),
  }).strict().default({ width: 1280, height: 720 })
    .openapi({ description: "The page's size (with a browser)." }),
  record: RecordParam,
  function: z.object({
    name: z.string(),
    version: z.number().int(),
    tick: z.string().optional().openapi({ description: "The schedule's tick it ran for." }),
  }).strict().optional()
    .openapi({ description: "The named function this run belongs to (set by invoke)." }),
}).strict().openapi("FunctionParams");

export type FunctionParams = z.infer<typeof FunctionParams>;

/** The allow_hosts entries as URLs, for the URL policy (`JobType.urls`). */
export function allowHostUrls(hosts: string[]): Array<{ field: string; url: string }> {
  return hosts.map((h, i) => ({ field: `allow_hosts[${i}]`, url: `http://${h}/` }));
}

/** What a function must not reach besides what the URL policy refuses. */
export interface OwnNetwork {
  /** This machine's addresses (every interface). */
  addresses: ReadonlySet<string>;
  /** The platform's Redis, which may be on another machine. */
  redis: { host: string; port: number };
}

/** This machine's addresses and the Redis at `redisUrl`. */
export function ownNetwork(redisUrl: string): OwnNetwork {
  const redis = new URL(redisUrl);
  return {
    addresses: new Set(Deno.networkInterfaces().map((i) => normalize(i.address))),
    redis: { host: normalize(redis.hostname), port: Number(redis.port || 6379) },
  };
}

function normalize(address: string): string {
  try {
    return ipaddr.process(address.replace(/^\[|\]$/g, "")).toString();
  } catch {
    return address.toLowerCase();
  }
}

/**
 * Why an allow_hosts entry is refused, or null: refused by the URL policy, resolving to this
 * machine (loopback, unspecified, an address of its own: its sessions' browsers, its Redis and
 * API listen there), or reaching the platform's Redis elsewhere.
 */
export async function refuseAllowHost(
  entry: string,
  policy: UrlPolicy,
  own: OwnNetwork,
): Promise<string | null> {
  const verdict = await policy.check(`http://${entry}/`);
  if (!verdict.ok) return `${entry} is refused: ${verdict.reason}`;
  const addresses = verdict.addresses.map(normalize);
  if (addresses.some((a) => isLoopbackOrAny(a) || own.addresses.has(a))) {
    return `${entry} ${THIS_MACHINE}`;
  }
  const { port } = splitHost(entry);
  if ((port === null || port === own.redis.port) && addresses.includes(own.redis.host)) {
    return `${entry} reaches the platform's own Redis`;
  }
  return null;
}
