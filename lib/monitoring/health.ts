/**
 * The platform's health (`GET /api/health`): whether Redis and DuckDB answer, the worker pool of
 * this process, and the video encoders that passed their trial encode here.
 */
import { z } from "@hono/zod-openapi";
import type { Queue } from "../jobs/queue.ts";
import type { History } from "../history/store.ts";
import type { Runner, RunnerStats } from "../jobs/runner.ts";
import type { EncoderDetection, EncoderTable } from "../video/codecs.ts";

export const HealthSchema = z.object({
  status: z.enum(["ok", "degraded"]),
  redis: z.enum(["ok", "down"]),
  duckdb: z.enum(["ok", "down"]),
  version: z.string(),
  workers: z.object({
    concurrency: z.number().int()
      .openapi({ description: "Shared slots for queued jobs (STREAMPLAY_CONCURRENCY)" }),
    slots: z.number().int().openapi({
      description: "Jobs this process may run at once: the shared slots plus each type's own " +
        "(sessions); what streamplay_worker_slots counts for this host",
    }),
    running: z.number().int().openapi({
      description: "Jobs running in this process, every type, sessions included; what " +
        "streamplay_jobs_running sums to over types",
    }),
    pools: z.record(
      z.string(),
      z.object({ capacity: z.number().int(), running: z.number().int() }),
    ).openapi({ description: '"shared" and each type with its own slots ("session")' }),
  }).optional(),
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
    health.workers = { concurrency: s.concurrency, ...workerSlots(s) };
  }
  return health;
}

/**
 * A worker pool's slots and running jobs: every pool summed, and each apart.
 *
 * Jobs and slots are counted the same way here, in `/metrics` and on the dashboard: `running` is
 * every job running (sessions included, what `streamplay_jobs_running` sums to), `slots` every job
 * the pool may run at once (its shared `concurrency` plus each type's own slots, such as
 * STREAMPLAY_MAX_SESSIONS; what `streamplay_worker_slots` counts), `pools` the two apart.
 */
export function workerSlots(s: Pick<RunnerStats, "concurrency" | "running" | "pools">): {
  slots: number;
  running: number;
  pools: Record<string, { capacity: number; running: number }>;
} {
  const pools = { shared: { capacity: s.concurrency, running: s.running }, ...s.pools };
  const all = Object.values(pools);
  return {
    slots: all.reduce((a, p) => a + p.capacity, 0),
    running: all.reduce((a, p) => a + p.running, 0),
    pools,
  };
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
