/**
 * Job results go back to Redis in batches, each after the jobs' own events are flushed (a viewer
 * sees every log line before the final status); a batch that cannot be written is retried, but
 * at shutdown left for the platform's spool (`unrecorded`).
 */
import { errorMessage, type Logger } from "../../core/log.ts";
import type { EventPublisher } from "../events.ts";
import type { Outcome, Queue } from "../queue.ts";

export interface Completions {
  /** Records how a job ended (with the next batch). */
  complete(outcome: Outcome): void;
  /** Resolves once every outcome given so far is recorded (or left, after `stopRetrying`). */
  settled(): Promise<void>;
  /** From now on a batch that cannot be written is left in `unrecorded` instead of retried. */
  stopRetrying(): void;
  /** Outcomes not recorded yet: the batch being written and those waiting. */
  unrecorded(): Outcome[];
}

export function batchCompletions(options: {
  queue: Queue;
  events: EventPublisher;
  consumer: string;
  log: Logger;
}): Completions {
  const { queue, events, consumer, log } = options;
  let pending: Outcome[] = [];
  /** The batch being written. */
  let recording: Outcome[] = [];
  let flushing: Promise<void> | null = null;
  let retrying = true;
  return {
    complete(outcome) {
      pending.push(outcome);
      flushing ??= (async () => {
        while (pending.length) {
          const batch = recording = pending;
          pending = [];
          try {
            await events.flush();
            await queue.complete(consumer, batch);
          } catch (err) {
            pending.unshift(...batch);
            if (!retrying) break;
            log.warn("could not record job results; retrying", {
              count: batch.length,
              error: errorMessage(err),
            });
            await new Promise((r) => setTimeout(r, 500));
          } finally {
            recording = [];
          }
        }
        flushing = null;
      })();
    },
    async settled() {
      while (flushing) await flushing;
    },
    stopRetrying() {
      retrying = false;
    },
    unrecorded: () => [...recording, ...pending],
  };
}
