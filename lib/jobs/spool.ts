/**
 * The spool: job results and events this process could not write to Redis before it stopped are
 * kept in one NDJSON file in the data directory, and written to Redis at the next start.
 */
import type { Outcome, Queue } from "./queue.ts";
import { errorMessage, type Logger } from "../core/log.ts";

/** What was left unwritten: results by the consumer that ran them, and raw events. */
export interface Unwritten {
  consumer: string | undefined;
  outcomes: Outcome[];
  /** Events as the publisher writes them: job id, event type, event JSON. */
  events: Array<[string, string, string]>;
}

export const SPOOL_FILE = "spool.ndjson";

/**
 * Appends what is unwritten to the spool file at once (synchronously: it runs while the process
 * is being forced to exit) and says so in the log. Answers how many results and events it kept.
 */
export function keepUnwritten(
  dataDir: string,
  unwritten: Unwritten,
  log: Logger,
): { outcomes: number; events: number } {
  const outcomes = unwritten.consumer ? unwritten.outcomes : [];
  const { events } = unwritten;
  if (outcomes.length === 0 && events.length === 0) return { outcomes: 0, events: 0 };
  const file = `${dataDir}/${SPOOL_FILE}`;
  const lines = [];
  // Events first, as the worker pool writes them: a job's last events come before its result.
  if (events.length) lines.push(JSON.stringify({ events }));
  if (outcomes.length) lines.push(JSON.stringify({ consumer: unwritten.consumer, outcomes }));
  try {
    Deno.writeTextFileSync(file, lines.join("\n") + "\n", { append: true });
    log.warn("could not write to Redis before stopping; kept for the next start", {
      file,
      results: outcomes.length,
      jobs: outcomes.map((o) => o.id),
      events: events.length,
    });
  } catch (err) {
    log.error("could not write to Redis before stopping, nor keep it on disk: lost", {
      results: outcomes.length,
      jobs: outcomes.map((o) => o.id),
      events: events.length,
      error: errorMessage(err),
    });
  }
  return { outcomes: outcomes.length, events: events.length };
}

/**
 * Writes what an earlier run kept in the spool to Redis, then removes the file. A line Redis
 * refuses stays in the file for the next start. Answers how many results and events it wrote.
 *
 * Runs before the worker pool takes jobs again. A result is recorded only while its job is still
 * leased by the process that ran it (the queue's completion script checks), so a job another
 * process took over meanwhile is not finished twice.
 */
export async function replaySpool(
  dataDir: string,
  queue: Queue,
  log: Logger,
): Promise<{ outcomes: number; events: number }> {
  const file = `${dataDir}/${SPOOL_FILE}`;
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return { outcomes: 0, events: 0 };
    throw err;
  }
  const done = { outcomes: 0, events: 0 };
  const left: string[] = [];
  for (const line of text.split("\n").filter((l) => l.trim())) {
    let entry: Partial<Unwritten>;
    try {
      entry = JSON.parse(line);
    } catch {
      log.warn("skipping an unreadable line of the spool", { file });
      continue;
    }
    try {
      if (entry.consumer && entry.outcomes?.length) {
        await queue.complete(entry.consumer, entry.outcomes);
        done.outcomes += entry.outcomes.length;
      }
      if (entry.events?.length) {
        await queue.emit(entry.events);
        done.events += entry.events.length;
      }
    } catch (err) {
      log.warn("could not write a spooled entry; kept for the next start", {
        error: errorMessage(err),
      });
      left.push(line);
    }
  }
  if (left.length) await Deno.writeTextFile(file, left.join("\n") + "\n");
  else await Deno.remove(file);
  if (done.outcomes || done.events) {
    log.info("wrote what the last run kept in its spool", { file, ...done });
  }
  return done;
}
