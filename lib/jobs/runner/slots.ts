/**
 * The runner's job slots: one shared pool of `concurrency`, and one per type with its own
 * `slots` (live sessions). Claims in flight hold slots (`reserved`) so concurrent type loops
 * never over-claim; whoever waits for a slot is woken at each change.
 */
import type { Config } from "../../core/config.ts";
import type { JobTypes } from "../job_type.ts";

export interface SlotPool {
  capacity: number;
  running: number;
  /** Slots held by claims in flight. */
  reserved: number;
}

export interface Slots {
  readonly shared: SlotPool;
  /** Pools of the types with their own slots, by type name. */
  readonly own: ReadonlyMap<string, SlotPool>;
  /** True once the runner stops taking jobs. */
  readonly stopping: boolean;
  poolOf(type: string): SlotPool;
  free(pool: SlotPool): number;
  /** Resolves once `pool` has a free slot or the runner stops. */
  waitFree(pool: SlotPool): Promise<void>;
  /** Resolves at the next change of slots (a job ended, a claim came back). */
  changed(): Promise<void>;
  /** Wakes everyone waiting for a change. */
  wake(): void;
  /** Gives back `n` slots a claim held. */
  unreserve(pool: SlotPool, n: number): void;
  /** Stops handing out slots and wakes every waiter. */
  stop(): void;
}

export function createSlots(jobTypes: JobTypes, config: Config): Slots {
  const shared: SlotPool = { capacity: config.concurrency, running: 0, reserved: 0 };
  const own = new Map<string, SlotPool>();
  for (const type of jobTypes.values()) {
    if (type.slots) own.set(type.name, { capacity: type.slots(config), running: 0, reserved: 0 });
  }
  let stopping = false;
  const waiters: Array<() => void> = [];
  const free = (pool: SlotPool) => pool.capacity - pool.running - pool.reserved;
  const wake = () => {
    for (const w of waiters.splice(0)) w();
  };
  return {
    shared,
    own,
    get stopping() {
      return stopping;
    },
    poolOf: (type) => own.get(type) ?? shared,
    free,
    waitFree: (pool) =>
      free(pool) > 0 || stopping ? Promise.resolve() : new Promise<void>((r) => waiters.push(r)),
    changed: () => new Promise<void>((r) => waiters.push(r)),
    wake,
    unreserve(pool, n) {
      pool.reserved = Math.max(0, pool.reserved - n);
      wake();
    },
    stop() {
      stopping = true;
      wake();
    },
  };
}
