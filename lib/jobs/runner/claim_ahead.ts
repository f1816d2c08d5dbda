/**
 * Claiming ahead: a type that starts many short jobs claims a little more than its free slots,
 * what it starts in `claimAheadMs` at its current rate (at most one full claim more), so a slot
 * that frees up starts its next job at once instead of a Redis round trip later.
 */
import type { Config } from "../../core/config.ts";
import type { ClaimedJob, Outcome } from "../queue.ts";
import type { SlotPool, Slots } from "./slots.ts";

/** Jobs one claim takes at most (and the most a type claims ahead of its free slots). */
export const MAX_CLAIM = 512;

export interface ClaimAhead {
  /** The list where `type`'s claimed jobs wait for a slot. */
  waiting(type: string): ClaimedJob[];
  /** How many jobs of `type` may be claimed beyond the free slots of `pool`. */
  window(type: string, pool: SlotPool): number;
  /** Starts waiting jobs while their pool has free slots. */
  fill(): void;
  /** Lets go of a waiting job that was cancelled or lost its claim meanwhile. */
  drop(id: string): void;
  /** A job of `type` started (what the start rate counts). */
  counted(type: string): void;
  /** Turns the starts counted over the last `seconds` into the start rates. */
  measure(seconds: number): void;
  /** Jobs started per second by type, as last measured. */
  rates(): Record<string, number>;
  /** Puts every waiting job back on the queue (the runner stops). */
  requeueAll(): void;
}

/**
 * Types with their own slots (sessions) and types that start a few jobs a second never claim
 * ahead, so a long job never waits here while another worker process is free. Jobs claimed ahead
 * are in this consumer's processing list under its lease like running ones; at shutdown they go
 * back on the queue.
 */
export function createClaimAhead(options: {
  slots: Slots;
  config: Config;
  /** Runs claimed jobs whose slots are reserved. */
  start(jobs: ClaimedJob[], pool: SlotPool): void;
  complete(outcome: Outcome): void;
}): ClaimAhead {
  const { slots, config, start, complete } = options;
  const ahead = new Map<string, ClaimedJob[]>();
  const startsNow = new Map<string, number>();
  let startRate = new Map<string, number>();
  return {
    waiting(type) {
      const list: ClaimedJob[] = [];
      ahead.set(type, list);
      return list;
    },
    window: (type, pool) =>
      pool === slots.shared
        ? Math.min(MAX_CLAIM, Math.floor((startRate.get(type) ?? 0) * config.claimAheadMs / 1000))
        : 0,
    fill() {
      if (slots.stopping) return;
      for (const [type, list] of ahead) {
        const pool = slots.poolOf(type);
        const n = Math.min(list.length, slots.free(pool));
        if (n <= 0) continue;
        pool.reserved += n;
        start(list.splice(0, n), pool);
      }
    },
    drop(id) {
      for (const list of ahead.values()) {
        const i = list.findIndex((j) => j.id === id);
        if (i < 0) continue;
        list.splice(i, 1);
        // Its state is no longer "running here", so this only takes it off the processing list.
        complete({ id, kind: "requeue" });
        return;
      }
    },
    counted(type) {
      startsNow.set(type, (startsNow.get(type) ?? 0) + 1);
    },
    measure(seconds) {
      startRate = new Map([...startsNow].map(([type, n]) => [type, n / seconds]));
      startsNow.clear();
    },
    rates: () => Object.fromEntries(startRate),
    requeueAll() {
      for (const list of ahead.values()) {
        for (const job of list.splice(0)) complete({ id: job.id, kind: "requeue" });
      }
    },
  };
}
