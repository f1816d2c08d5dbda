/**
 * The platform's health (`GET /api/health`): whether Redis and DuckDB answer, the worker pool of
 * this process, and the video encoders that passed their trial encode here.
 */
import { z } from "@hono/zod-openapi";
import type { Queue } from "../jobs/queue.ts";
import type { History } from "../history/store.ts";
import type { Runner } from "../jobs/runner.ts";
import type { EncoderDetection, EncoderTable } from "../video/codecs.ts";

export const HealthSchema = z.object({
  status: z.enum(["ok", "degraded"]),
  redis: z.enum(["ok", "down"]),
  duckdb: z.enum(["ok", "down"]),
  version: z.string(),
  workers: z.object({ concurrency: z.number(), running: z.number() }).optional(),
  encoders: z.record(
    z.string(),
    z.array(z.object({ encoder: z.string(), hardware: z.boolean() })),
  ).nullable().openapi({
    description: "Video encoders that passed a trial encode here, per codec, hardware first " +
      "(null while the trial encodes run at start-up)",
  }),
}).openapi("Health");
export type Health = z.infer<typeof HealthSchema>;

/** Checks the parts; `status` is "degraded" when one is down. */
export async function platformHealth(deps: {
  queue: Pick<Queue, "ping">;
  history: Pick<History, "ping">;
  runner?: Pick<Runner, "stats"> | undefined;
  encoders: Pick<EncoderDetection, "current">;
  version: string;
}): Promise<Health> {
  const [redisOk, duckOk] = await Promise.all([deps.queue.ping(), deps.history.ping()]);
  const health: Health = {
    status: redisOk && duckOk ? "ok" : "degraded",
    redis: redisOk ? "ok" : "down",
    duckdb: duckOk ? "ok" : "down",
    version: deps.version,
    encoders: usableEncoders(deps.encoders.current()),
  };
  if (deps.runner) {
    const s = deps.runner.stats();
    health.workers = { concurrency: s.concurrency, running: s.running };
  }
  return health;
}

function usableEncoders(table: EncoderTable | null): Health["encoders"] {
  if (!table) return null;
  return Object.fromEntries(
    Object.entries(table).map(([codec, found]) => [
      codec,
      found.map(({ encoder, hardware }) => ({ encoder, hardware })),
    ]),
  );
}
