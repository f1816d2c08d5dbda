/**
 * Runs scheduled functions: every process runs this loop, and each tick of a schedule runs once.
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
/** Ticks a late pass still runs (a process slowed down or stalled); older ones are let go. */
const CATCH_UP_MS = 60_000;
/** How long a taken tick stays taken (longer than the catch-up and any clock skew). */
const TICK_TTL_S = 3600;

/**
 * Each tick of a function's schedule is taken by the one process whose `SET NX` on
 * `<function>:<tick time>` succeeds, which enqueues the run. A tick runs at most once however many
 * processes run, and once while any runs: a pass that comes late (a loaded or stalled process) runs
 * every tick of the last minute it missed; older ones, and ticks that passed while no process ran,
 * are not made up. Schedules are read from Redis on every pass, so a new or changed schedule
 * applies within a pass everywhere.
 */
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

  /** The ticks of `schedule` after `from` and at or before `to`, oldest first. */
  const ticks = (schedule: Cron, from: Date, to: Date): Date[] => {
    const out: Date[] = [];
    for (let next = schedule.nextRun(from); next && next <= to; next = schedule.nextRun(next)) {
      out.push(next);
    }
    return out;
  };

  const pass = async () => {
    const now = new Date();
    const from = new Date(Math.max(since.getTime(), now.getTime() - CATCH_UP_MS));
    const schedules = await store.schedules();
    for (const [name, expression] of schedules) {
      const schedule = cron(expression);
      const due = schedule ? ticks(schedule, from, now) : [];
      if (due.length === 0) continue;
      const version = await store.get(name);
      // Ticks from before this version's schedule was set are not its.
      const set = Date.parse(version?.created_at ?? "");
      for (const tick of due.filter((t) => t.getTime() > set)) {
        const at = tick.toISOString();
        if (!(await store.claimTick(name, at, TICK_TTL_S))) continue;
        await queue.enqueue([functionRun(version!, { maxAttempts: 1, tick: at })]);
        log.debug("scheduled function started", { function: name, tick: at });
      }
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
