/**
 * Warm function processes, kept per code and allow_hosts for the next run of the same function.
 */
import { FunctionProcess, type ProcessSpec } from "./process.ts";

export interface PoolOptions {
  /** Idle processes kept at most, across every function (the oldest goes first). */
  maxIdle?: number;
  /** An idle process ends after this long. */
  idleMs?: number;
  /** Keep a blank process without network started ahead once one was used (default true). */
  spare?: boolean;
}

export interface ProcessPool {
  /** A process with `code` loaded and net to `allowNet`: a warm one that ran it, else a new one. */
  acquire(code: string, allowNet: string[]): Promise<FunctionProcess>;
  /** Takes a process back after its run: kept warm while it can run again. */
  release(proc: FunctionProcess): void;
  /** Ends every process. */
  close(): Promise<void>;
}

interface Idle {
  proc: FunctionProcess;
  key: string;
  since: number;
}

/**
 * A process that ran a function successfully waits, with that code loaded, for the next run of the
 * same code and allow_hosts, never another function's: module state may outlive a run, as in any
 * warm serverless instance. Once functions run here, one blank process without network is kept
 * started ahead, so a new function skips Deno's start-up. Idle processes are few and short-lived.
 */
export function createProcessPool(spec: ProcessSpec, options: PoolOptions = {}): ProcessPool {
  const maxIdle = options.maxIdle ?? 8;
  const idleMs = options.idleMs ?? 60_000;
  const keys = new WeakMap<FunctionProcess, string>();
  const all = new Set<FunctionProcess>();
  let idle: Idle[] = [];
  let spare: Promise<FunctionProcess> | null = null;
  let closed = false;

  const track = (proc: FunctionProcess) => {
    all.add(proc);
    proc.closed().then(() => all.delete(proc));
    return proc;
  };
  const start = (allowNet: string[]) => FunctionProcess.start(spec, allowNet).then(track);
  const refillSpare = () => {
    if (closed || options.spare === false || spare) return;
    const next = start([]);
    spare = next;
    next.catch(() => {
      if (spare === next) spare = null;
    });
  };

  const sweep = setInterval(() => {
    const now = performance.now();
    idle = idle.filter((i) => {
      const keep = i.proc.alive && now - i.since < idleMs;
      if (!keep) i.proc.kill("idle");
      return keep;
    });
  }, Math.min(idleMs, 10_000));
  Deno.unrefTimer(sweep);

  return {
    async acquire(code, allowNet) {
      const key = `${allowNet.join(",")}\0${code}`;
      for (let i = idle.length - 1; i >= 0; i--) {
        const entry = idle[i]!;
        if (entry.key === key && entry.proc.alive) {
          idle.splice(i, 1);
          return entry.proc;
        }
      }
      let proc: FunctionProcess | undefined;
      if (allowNet.length === 0 && spare) {
        const taken = spare;
        spare = null;
        proc = await taken.catch(() => undefined);
        if (proc && !proc.alive) proc = undefined;
      }
      proc ??= await start(allowNet);
      refillSpare();
      keys.set(proc, key);
      await proc.load(code);
      return proc;
    },

    release(proc) {
      const key = keys.get(proc);
      if (closed || !proc.reusable || !proc.alive || key === undefined) {
        proc.kill("released");
        return;
      }
      idle.push({ proc, key, since: performance.now() });
      while (idle.length > maxIdle) idle.shift()!.proc.kill("idle");
    },

    async close() {
      closed = true;
      clearInterval(sweep);
      idle = [];
      const waiting = spare;
      spare = null;
      await waiting?.then((p) => p.kill("closed"), () => {});
      for (const proc of all) proc.kill("the platform is stopping");
      await Promise.all([...all].map((p) => p.closed()));
    },
  };
}
