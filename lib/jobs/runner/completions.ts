/**
 * Job results go back to Redis in batches, each after the jobs' own events are flushed (a viewer
 * sees every log line before the final status); a batch that cannot be written is retried.
 */
import { errorMessage, type Logger } from "../../core/log.ts";
import type { EventPublisher } from "../events.ts";
import type { Outcome, Queue } from "../queue.ts";

export interface Completions {
  /** Records how a job ended (with the next batch). */
  complete(outcome: Outcome): void;
  /** Resolves once every outcome given so far is recorded. */
  settled(): Promise<void>;
}

export function batchCompletions(options: {
  queue: Queue;
  events: EventPublisher;
  consumer: string;
  log: Logger;
}): Completions {
  const { queue, events, consumer, log } = options;
  let pending: Outcome[] = [];
  let flushing: Promise<void> | null = null;
  return {
    complete(outcome) {
      pending.push(outcome);
      flushing ??= (async () => {
        while (pending.length) {
          const batch = pending;
          pending = [];
          try {
            await events.flush();
            await queue.complete(consumer, batch);
          } catch (err) {
            log.warn("could not record job results; retrying", {
              count: batch.length,
              error: errorMessage(err),
            });
            pending.unshift(...batch);
            await new Promise((r) => setTimeout(r, 500));
          }
        }
        flushing = null;
      })();
    },
    async settled() {
      while (flushing) await flushing;
    },
  };
}
