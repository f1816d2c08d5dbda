/**
 * Pressure: whether the platform can take more work, in a form a load balancer can act on, and the
 * admission check that refuses new jobs (and sessions) when it cannot, instead of accepting them to
 * starve.
 */
import type { Config } from "../core/config.ts";
import type { MachineSample } from "./machine.ts";
import type { Cluster, PlatformState } from "./cluster.ts";
import type { Runner } from "../jobs/runner.ts";
import type { Metrics } from "./metrics.ts";

export type PressureReason = "" | "full" | "cpu" | "memory";

export interface Pressure {
  /** This machine's CPU busy %, averaged over the last 5 s. */
  cpu: number | null;
  memory: number | null;
  running: number;
  queued: number;
  max_concurrent: number;
  max_queued: number;
  is_available: boolean;
  reason: PressureReason;
  message: string;
  date: string;
}

/** New work refused because the platform is unavailable: 429 when full, 503 when overloaded. */
export class PlatformBusy extends Error {
  override name = "PlatformBusy";
  readonly status: 429 | 503;
  readonly retryAfterS: number;
  constructor(readonly pressure: Pressure) {
    super(`${pressure.message}; retry later`);
    this.status = pressure.reason === "full" ? 429 : 503;
    this.retryAfterS = pressure.reason === "full" ? 5 : 10;
  }
}

export interface PressureLimits {
  maxCpuPercent: number;
  maxMemoryPercent: number;
  maxQueued: number;
}

export interface PressureInputs {
  cpu: number | null;
  memory: number | null;
  running: number;
  queued: number;
  slots: number;
}

const fmt = (n: number) => n.toLocaleString("en-US", { maximumFractionDigits: 1 });

/**
 * Judges availability from the numbers; the first reason found wins (full, cpu, memory).
 *
 * - `full`: running + queued reached the worker slots of every live worker process plus
 *   `STREAMPLAY_MAX_QUEUED` (as browserless: concurrency, then a bounded queue) → 429.
 * - `cpu` / `memory`: this machine is over `STREAMPLAY_MAX_CPU_PERCENT` (5 s average) or
 *   `STREAMPLAY_MAX_MEMORY_PERCENT` → 503.
 *
 * Running and queued are platform-wide (Redis); CPU and memory are the answering machine's. With no
 * worker process alive jobs still queue (up to the limit), so workers scaled from zero on queue
 * depth find them.
 */
export function judgePressure(
  i: PressureInputs,
  limits: PressureLimits,
  now = Date.now(),
): Pressure {
  const full = i.running + i.queued >= i.slots + limits.maxQueued;
  const cpuOver = i.cpu !== null && i.cpu > limits.maxCpuPercent;
  const memOver = i.memory !== null && i.memory > limits.maxMemoryPercent;
  const reason: PressureReason = full ? "full" : cpuOver ? "cpu" : memOver ? "memory" : "";
  const message = full
    ? `The platform is full: ${fmt(i.running)} jobs running in ${fmt(i.slots)} worker slots ` +
      `and ${fmt(i.queued)} queued (STREAMPLAY_MAX_QUEUED=${fmt(limits.maxQueued)})`
    : cpuOver
    ? `CPU is at ${fmt(i.cpu!)}%, over STREAMPLAY_MAX_CPU_PERCENT=${fmt(limits.maxCpuPercent)}`
    : memOver
    ? `Memory is at ${fmt(i.memory!)}%, over STREAMPLAY_MAX_MEMORY_PERCENT=${
      fmt(limits.maxMemoryPercent)
    }`
    : "Accepting new work";
  return {
    cpu: i.cpu,
    memory: i.memory,
    running: i.running,
    queued: i.queued,
    max_concurrent: i.slots,
    max_queued: limits.maxQueued,
    is_available: reason === "",
    reason,
    message,
    date: new Date(now).toISOString(),
  };
}

export interface PressureGauge {
  /** Fed by the 1 s monitor tick (so requests never wait for a read). */
  update(machine: MachineSample, state: PlatformState): Pressure;
  /** The pressure now: from the last tick, or read afresh when that is over 2 s old. */
  current(): Promise<Pressure>;
  /**
   * Refuses new work when the platform is unavailable: throws `PlatformBusy` (429 when full,
   * 503 for cpu or memory) naming the reason; otherwise counts the job as accepted.
   */
  admit(): Promise<void>;
}

export function createPressureGauge(options: {
  config: Config;
  cluster: Cluster;
  runner: Runner | undefined;
  selfId: string;
  metrics: Metrics;
  /** A machine sample when the monitor is not ticking. */
  sampleMachine: () => MachineSample;
}): PressureGauge {
  const { config, cluster, runner, selfId, metrics } = options;
  const cpuWindow: Array<{ at: number; cpu: number }> = [];
  let memory: number | null = null;
  let state: PlatformState | null = null;
  let ownRunning = 0;
  let updatedAt = 0;
  /** Jobs admitted since `state` was read: queued or running now, not yet in the snapshot. */
  let accepted = 0;
  let refreshing: Promise<void> | null = null;
  const available = metrics.gauge("local", {
    name: "streamplay_pressure_available",
    help: "Whether this process accepts new work (1) or refuses it (0), as /api/pressure says",
  });
  const rejected = metrics.counter("local", {
    name: "streamplay_rejected_total",
    help: "New jobs and sessions refused because the platform was unavailable, by reason",
    labelNames: ["reason"],
  });

  const take = (machine: MachineSample, s: PlatformState) => {
    const now = Date.now();
    cpuWindow.push({ at: now, cpu: machine.cpu_percent });
    while (cpuWindow.length > 0 && now - cpuWindow[0]!.at > 5_500) cpuWindow.shift();
    memory = machine.memory_percent;
    state = s;
    ownRunning = runner?.stats().running ?? 0;
    updatedAt = now;
    accepted = 0;
  };

  // One snapshot (running, queued) plus what was admitted since, so nothing counts twice.
  const judge = (): Pressure => {
    let running = ownRunning;
    let slots = runner?.stats().concurrency ?? 0;
    let queued = accepted;
    for (const r of state?.reports ?? []) {
      if (r.id === selfId) continue;
      running += r.running;
      slots += r.concurrency;
    }
    for (const n of Object.values(state?.queues ?? {})) queued += n;
    const cpu = cpuWindow.length
      ? Math.round(10 * cpuWindow.reduce((a, s) => a + s.cpu, 0) / cpuWindow.length) / 10
      : null;
    const p = judgePressure({ cpu, memory, running, queued, slots }, config);
    available.set(p.is_available ? 1 : 0);
    return p;
  };

  const current = async () => {
    if (Date.now() - updatedAt > 2_000) {
      refreshing ??= (async () => {
        try {
          take(options.sampleMachine(), await cluster.read());
        } finally {
          refreshing = null;
        }
      })();
      await refreshing;
    }
    return judge();
  };

  return {
    update(machine, s) {
      take(machine, s);
      return judge();
    },
    current,
    async admit() {
      const p = await current();
      if (!p.is_available) {
        rejected.inc({ reason: p.reason });
        throw new PlatformBusy(p);
      }
      accepted++;
    },
  };
}
