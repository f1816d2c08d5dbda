/**
 * Named, versioned functions in Redis, shared by every process (an API process stores and invokes
 * them, any process runs their schedules).
 */
import type { Redis } from "../core/redis.ts";
import type { RedisKeys } from "../core/keys.ts";

/** Versions kept per function; older ones are dropped as new ones come. */
export const KEPT_VERSIONS = 50;

/** One stored version. */
export interface FunctionVersion {
  name: string;
  version: number;
  /** The code as uploaded (TypeScript or JavaScript). */
  code: string;
  /** The code as it runs (types stripped). */
  js: string;
  browser: boolean;
  timeout_s: number;
  allow_hosts: string[];
  schedule: string | null;
  created_at: string;
  created_by: string;
}

export interface FunctionSummary {
  name: string;
  version: number;
  browser: boolean;
  schedule: string | null;
  updated_at: string;
}

export interface FunctionStore {
  /** Stores a new version; returns it with its number. */
  put(record: Omit<FunctionVersion, "version">): Promise<FunctionVersion>;
  /** One version (the latest without `version`), or null. */
  get(name: string, version?: number): Promise<FunctionVersion | null>;
  /** Every kept version, newest first; empty for an unknown function. */
  versions(name: string): Promise<FunctionVersion[]>;
  list(): Promise<FunctionSummary[]>;
  /** Removes the function with its versions and schedule; false when there was none. */
  delete(name: string): Promise<boolean>;
  /** Name → cron expression of every scheduled function. */
  schedules(): Promise<Map<string, string>>;
  /** True for the one caller that takes this tick of this function (held for `ttlS`). */
  claimTick(name: string, tick: string, ttlS: number): Promise<boolean>;
}

const PUT = `
local v = redis.call('HINCRBY', KEYS[1], 'latest', 1)
redis.call('HSET', KEYS[1], 'v:' .. v, ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
if ARGV[4] == '' then redis.call('HDEL', KEYS[3], ARGV[3])
else redis.call('HSET', KEYS[3], ARGV[3], ARGV[4]) end
local old = v - tonumber(ARGV[5])
if old > 0 then redis.call('HDEL', KEYS[1], 'v:' .. old) end
return v
`;

/**
 * One hash per function holds its versions (`v:<n>`, the newest `KEPT_VERSIONS` kept) and `latest`;
 * a sorted set holds the names, and a hash the schedules so a scheduler reads them all in one call.
 * A new version is one Lua script.
 */
export function createFunctionStore(options: { redis: Redis; keys: RedisKeys }): FunctionStore {
  const { redis, keys } = options;
  const parse = (name: string, version: number, json: string | null) =>
    json ? { ...JSON.parse(json), name, version } as FunctionVersion : null;

  return {
    async put(record) {
      const { name, ...rest } = record;
      const version = Number(
        await redis.eval(
          PUT,
          3,
          keys.function(name),
          keys.functions,
          keys.functionSchedules,
          JSON.stringify(rest),
          Date.parse(record.created_at),
          name,
          record.schedule ?? "",
          KEPT_VERSIONS,
        ),
      );
      return { ...record, version };
    },

    async get(name, version) {
      const n = version ?? Number(await redis.hget(keys.function(name), "latest"));
      if (!n) return null;
      return parse(name, n, await redis.hget(keys.function(name), `v:${n}`));
    },

    async versions(name) {
      const all = await redis.hgetall(keys.function(name));
      return Object.entries(all)
        .filter(([field]) => field.startsWith("v:"))
        .map(([field, json]) => parse(name, Number(field.slice(2)), json)!)
        .sort((a, b) => b.version - a.version);
    },

    async list() {
      const names = await redis.zrevrange(keys.functions, 0, -1);
      const pipeline = redis.pipeline();
      for (const name of names) pipeline.hget(keys.function(name), "latest");
      const latest = (await pipeline.exec()) ?? [];
      const fetch = redis.pipeline();
      names.forEach((name, i) => fetch.hget(keys.function(name), `v:${latest[i]?.[1]}`));
      const records = (await fetch.exec()) ?? [];
      return names.flatMap((name, i) => {
        const v = parse(name, Number(latest[i]?.[1]), records[i]?.[1] as string | null);
        return v
          ? [{
            name,
            version: v.version,
            browser: v.browser,
            schedule: v.schedule,
            updated_at: v.created_at,
          }]
          : [];
      });
    },

    async delete(name) {
      const [[, removed]] = (await redis.multi()
        .del(keys.function(name))
        .zrem(keys.functions, name)
        .hdel(keys.functionSchedules, name)
        .exec()) as [[unknown, number], ...unknown[]];
      return removed > 0;
    },

    async schedules() {
      return new Map(Object.entries(await redis.hgetall(keys.functionSchedules)));
    },

    async claimTick(name, tick, ttlS) {
      return await redis.set(keys.functionTick(name, tick), "1", "EX", ttlS, "NX") === "OK";
    },
  };
}
