/** Watching the platform live: a dashboard client joins the feed and first gets the latest update. */
import { unavailable } from "../core/errors.ts";
import type { FeedClient } from "./dashboard.ts";
import type { Monitor } from "./monitor.ts";

/** 503 when the live dashboard is off on this server (checked before a client connects). */
export function checkDashboard(config: { monitor: boolean }): void {
  if (!config.monitor) {
    throw unavailable("The live dashboard is off on this server (STREAMPLAY_MONITOR=false)");
  }
}

/**
 * Joins `client` to the live dashboard feed, sending it the latest update and then the recent
 * changes (`{ type: "recent_changes", changes }`, oldest first); answers the function that
 * removes it.
 */
export function joinDashboard(
  monitor: Pick<Monitor, "feed" | "latest">,
  client: FeedClient,
): () => void {
  const leave = monitor.feed.join(client);
  const latest = monitor.latest();
  if (latest) client.send(JSON.stringify(latest));
  monitor.feed.recentChanges().then((changes) => {
    if (changes.length) client.send(JSON.stringify({ type: "recent_changes", changes }));
  }).catch(() => {/* the client left meanwhile */});
  return leave;
}
