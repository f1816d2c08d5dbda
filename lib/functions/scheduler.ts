/**
 * Runs scheduled functions. Every process runs this loop; each tick of a function's schedule is
 * taken by the one process whose `SET NX` on `<function>:<tick time>` succeeds, which enqueues
 * the run. A tick runs at most once however many processes run, and once while any runs; ticks
 * that passed while none did are not made up. Schedules are read from Redis on every pass, so a
 * new or changed schedule applies within a pass everywhere.
 */
import type { Cron } from "croner";
import type { Queue } from "../jobs/queue.ts";
import { errorMessage, type Logger } from "../core/log.ts";
import type { FunctionStore } from "./store.ts";
import { functionRun, parseSchedule } from "./functions.ts";

export interface FunctionScheduler {
  close(): Promise<void>;
}

/** How often the schedules are looked at. */
const PASS_MS = 500;
/** How long a taken tick stays taken (longer than any clock skew between processes). */
const TICK_TTL_S = 3600;

export function startFunctionScheduler(options: {
  store: FunctionStore;
  queue: Queue;
  log: Logger;
}): FunctionScheduler {
  const { store, queue, log } = options;
  const parsed = new Map<string, Cron | null>();
  const cron = (expression: string) => {
    if (!parsed.has(expression)) {
      try {
        parsed.set(expression, parseSchedule(expression));
      } catch {
        parsed.set(expression, null);
      }
    }
    return parsed.get(expression) ?? null;
  };
  let since = new Date();
  let stopped = false;

  /** The latest tick of `schedule` after `from` and at or before `to`, or null. */
  const lastTick = (schedule: Cron, from: Date, to: Date): Date | null => {
    let tick: Date | null = null;
    for (let next = schedule.nextRun(from); next && next <= to; next = schedule.nextRun(next)) {
      tick = next;
    }
    return tick;
  };

  const pass = async () => {
    const now = new Date();
    const schedules = await store.schedules();
    for (const [name, expression] of schedules) {
      const schedule = cron(expression);
      const tick = schedule && lastTick(schedule, since, now);
      if (!tick) continue;
      const at = tick.toISOString();
      if (!(await store.claimTick(name, at, TICK_TTL_S))) continue;
      const version = await store.get(name);
      if (!version) continue;
      await queue.enqueue([functionRun(version, { maxAttempts: 1, tick: at })]);
      log.debug("scheduled function started", { function: name, tick: at });
    }
    since = now;
  };

  const loop = (async () => {
    while (!stopped) {
      await new Promise((r) => setTimeout(r, PASS_MS));
      if (stopped) break;
      try {
        await pass();
      } catch (err) {
        log.warn("scheduled functions not started this pass", { error: errorMessage(err) });
      }
    }
  })();

  return {
    async close() {
      stopped = true;
      await loop;
    },
  };
}
