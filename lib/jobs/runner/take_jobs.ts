/**
 * Taking jobs of one type: claims them in batches while slots are free (pipelined while the
 * queue has jobs), blocks on BLMOVE while it is empty, so a new job starts within a round trip.
 */
import { errorMessage, type Logger } from "../../core/log.ts";
import type { BlockingRedis } from "../../core/redis.ts";
import type { ClaimedJob, Queue } from "../queue.ts";
import { type ClaimAhead, MAX_CLAIM } from "./claim_ahead.ts";
import type { Slots } from "./slots.ts";

/** Claims one job type may have out at once while its queue has jobs. */
const MAX_CLAIMS_IN_FLIGHT = 4;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Takes jobs of `type` until the runner stops; resolves once its claims are back. */
export async function takeJobs(type: string, parts: {
  queue: Queue;
  consumer: string;
  leaseMs: number;
  slots: Slots;
  ahead: ClaimAhead;
  /** This type's own connection for BLMOVE. */
  blocking: BlockingRedis;
  log: Logger;
}): Promise<void> {
  const { queue, consumer, leaseMs, slots, ahead, blocking, log } = parts;
  const pool = slots.poolOf(type);
  const waiting = ahead.waiting(type);
  // While the queue has jobs, claims are pipelined: the next one goes out before the reply to
  // the previous one, so a busy Redis costs latency here rather than throughput.
  let more = false;
  let inFlight = 0;
  let asked = 0;
  const chunk = Math.max(1, Math.floor(pool.capacity / 4));
  const claimAsync = (n: number) => {
    const held = Math.min(n, slots.free(pool));
    pool.reserved += held;
    inFlight++;
    asked += n;
    queue.claim(type, consumer, n, leaseMs).then(
      (jobs) => {
        more = jobs.length === n;
        waiting.push(...jobs);
      },
      (err) => {
        more = false;
        if (!slots.stopping) log.warn("taking jobs failed", { type, error: errorMessage(err) });
      },
    ).finally(() => {
      inFlight--;
      asked -= n;
      slots.unreserve(pool, held);
      ahead.fill();
    });
  };
  while (!slots.stopping) {
    if (more || inFlight > 0) {
      const want = Math.min(
        slots.free(pool) + ahead.window(type, pool) - waiting.length - asked,
        MAX_CLAIM,
      );
      if (
        more && inFlight < MAX_CLAIMS_IN_FLIGHT && want > 0 && (inFlight === 0 || want >= chunk)
      ) {
        claimAsync(want);
      } else await slots.changed();
      continue;
    }
    await slots.waitFree(pool);
    if (slots.stopping) break;
    ahead.fill();
    const n = Math.min(slots.free(pool) + ahead.window(type, pool) - waiting.length, MAX_CLAIM);
    if (n <= 0) continue;
    // Slots are reserved while the claim is in flight; jobs beyond them wait in `waiting`.
    const held = Math.min(n, slots.free(pool));
    pool.reserved += held;
    let jobs: ClaimedJob[];
    try {
      jobs = await queue.claim(type, consumer, n, leaseMs);
    } catch (err) {
      if (slots.stopping) break;
      log.warn("taking jobs failed; retrying", { type, error: errorMessage(err) });
      await sleep(500);
      continue;
    } finally {
      slots.unreserve(pool, held);
    }
    more = jobs.length === n;
    if (jobs.length === 0) {
      try {
        const id = await blocking.call(2_000, (r) => queue.take(r, type, consumer, 2));
        if (!id) continue;
        const m = slots.free(pool);
        if (slots.stopping || m <= 0) {
          await queue.giveBack(consumer, type, id);
          continue;
        }
        pool.reserved += m;
        try {
          jobs = await queue.claim(type, consumer, m, leaseMs, [id]);
        } finally {
          slots.unreserve(pool, m);
        }
      } catch (err) {
        if (slots.stopping) break;
        log.warn("waiting for jobs failed; retrying", { type, error: errorMessage(err) });
        await sleep(500);
        continue;
      }
    }
    waiting.push(...jobs);
    ahead.fill();
  }
  while (inFlight > 0) await slots.changed();
}
