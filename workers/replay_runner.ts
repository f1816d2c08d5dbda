/**
 * Runs a recording's steps in a replay session (inside the session Worker) and reports how the page
 * behaved differently.
 */
import type { Page } from "playwright";
import jpeg from "jpeg-js";
import pixelmatch from "pixelmatch";
import type {
  Divergence,
  ElementTarget,
  ErrorKind,
  ReplayReport,
  ReplaySpec,
  ReplayStep,
} from "../lib/recordings/replay_spec.ts";
import type { InputMessage } from "../lib/sessions/protocol.ts";

/** What the runner needs from the session it drives. */
export interface ReplayHost {
  /** The active tab's page. */
  page(): Page;
  /** Applies an input as if a viewer had sent it (reported as `input` if recorded). */
  apply(msg: InputMessage): Promise<unknown>;
  /** Main-frame navigations of the replay so far, in order. */
  navigations(): ReadonlyArray<{ tab: string; url: string }>;
  errors(): ReadonlyArray<{ type: ErrorKind; message: string }>;
  /** Shows a page event to viewers and stores it with the session's events. */
  event(event: Record<string, unknown>): void;
  progress(value: number, text: string): void;
}

const NAVIGATION_WAIT_MS = 10_000;
const LOCATE_TIMEOUT_MS = 3_000;
const SETTLE_MS = 700;
const MAX_NAVIGATION_DIVERGENCES = 20;
/** Per-pixel colour distance pixelmatch tolerates (JPEG noise), 0..1. */
const PIXEL_THRESHOLD = 0.15;

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (ms <= 0 || signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });

async function waitUntil(check: () => boolean, ms: number, signal: AbortSignal) {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline && !signal.aborted) await sleep(25, signal);
  return check();
}

function describe(step: ReplayStep): string {
  const i = step.input;
  switch (i.type) {
    case "mouse":
      return `${i.action} at ${Math.round(i.x)},${Math.round(i.y)}`;
    case "wheel":
      return `wheel ${i.dx},${i.dy}`;
    case "key":
      return `key ${i.action} ${i.key}`;
    case "text":
      return `type ${JSON.stringify(i.text.slice(0, 40))}`;
    case "navigate":
      return `go to ${i.url}`;
    case "tab":
      return `tab ${i.action}${i.tab ? ` ${i.tab}` : ""}`;
    default:
      return i.type;
  }
}

/** Where the same relative point of the target's element is now; null when it is not found. */
async function locate(
  page: Page,
  selector: string,
  target: ElementTarget,
  at: { x: number; y: number },
): Promise<{ x: number; y: number } | null> {
  try {
    const element = page.locator(selector).first();
    await element.waitFor({ state: "visible", timeout: LOCATE_TIMEOUT_MS });
    await element.scrollIntoViewIfNeeded({ timeout: 1_000 }).catch(() => {});
    const box = await element.boundingBox({ timeout: 1_000 });
    if (!box) return null;
    const fraction = (offset: number, size: number) =>
      size > 0 ? Math.min(1, Math.max(0, offset / size)) : 0.5;
    const fx = fraction(at.x - target.box.x, target.box.width);
    const fy = fraction(at.y - target.box.y, target.box.height);
    return { x: box.x + fx * box.width, y: box.y + fy * box.height };
  } catch {
    return null;
  }
}

/**
 * What makes two divergences the same: a missing element by its selector whatever the input,
 * a failed step by its error, masked typing at all, the others by their message.
 */
function divergenceKey(d: Omit<Divergence, "count">): string {
  switch (d.kind) {
    case "element_not_found":
      return `${d.kind}\u0000${d.selector}`;
    case "step_failed":
      return `${d.kind}\u0000${d.message.slice(d.message.indexOf(" failed: "))}`;
    case "masked_input":
      return d.kind;
    default:
      return `${d.kind}\u0000${d.message}`;
  }
}

/** Share of pixels that differ between two JPEGs of the same size (null: sizes differ). */
export function visualDifference(a: Uint8Array, b: Uint8Array): number | null {
  const one = jpeg.decode(a, { useTArray: true, formatAsRGBA: true });
  const two = jpeg.decode(b, { useTArray: true, formatAsRGBA: true });
  if (one.width !== two.width || one.height !== two.height) return null;
  const differing = pixelmatch(one.data, two.data, undefined, one.width, one.height, {
    threshold: PIXEL_THRESHOLD,
  });
  return differing / (one.width * one.height);
}

/**
 * Timing: with `speed` a number, each step waits for its recorded time divided by the speed; with
 * "max", steps run back to back. Either way a step first waits until the page has made as many
 * navigations as the recording had by then (up to 10 s), so a click on a link is followed by the
 * next click on the new page, not the old one.
 *
 * Locating: pointer input whose target had a selector is aimed at the same relative point of the
 * element the selector finds now (visible, scrolled into view); when it finds none, the step is
 * reported (`element_not_found`) and sent to the recorded coordinates. Typing checks that the
 * recorded field still exists.
 *
 * Comparing, at the end: main-frame navigations in order (`navigation`), page and console errors as
 * multisets (`new_error`, `missing_error`), and — when a threshold is given — the share of
 * differing pixels between the recording's last frame and the replay's (`visual`, pixelmatch).
 *
 * The same divergence again (every keystroke into a renamed field) is counted in the first one,
 * with its last step, not listed again. Each is shown to viewers as a `replay_divergence` page
 * event when first found.
 */
export async function runReplay(
  host: ReplayHost,
  spec: ReplaySpec,
  signal: AbortSignal,
): Promise<ReplayReport> {
  // The same divergence again (the same missing element, the same new error) counts in the
  // first one, which viewers were shown, rather than listing it once per step.
  const divergences = new Map<string, Divergence>();
  const diverged = (d: Omit<Divergence, "count">) => {
    const key = divergenceKey(d);
    const known = divergences.get(key);
    if (known) {
      known.count++;
      if (d.step !== undefined) known.last_step = d.step;
      if (d.t !== undefined) known.last_t = d.t;
      return;
    }
    const first: Divergence = { ...d, count: 1 };
    divergences.set(key, first);
    host.event({ type: "replay_divergence", ...first });
  };
  // What happened before the steps counts only when the recording also saw the first load.
  const navBase = spec.first_load ? 0 : host.navigations().length;
  const errBase = spec.first_load ? 0 : host.errors().length;
  const navigationsNow = () => host.navigations().length - navBase;
  const expectedBefore = (t: number) => spec.navigations.filter((n) => n.t <= t).length;

  await sleep(spec.start_delay_ms, signal);
  const started = performance.now();
  let replayed = 0;
  let bySelector = 0;
  let lastProgress = 0;
  /** The last pointer-down's located point, reused by the matching up on the same element. */
  const pressed = { selector: "", point: null as { x: number; y: number } | null };

  for (const [index, step] of spec.steps.entries()) {
    if (signal.aborted) break;
    const want = expectedBefore(step.t);
    const hadNavigation = navigationsNow() < want;
    await waitUntil(() => navigationsNow() >= want, NAVIGATION_WAIT_MS, signal);
    if (spec.speed !== "max") {
      await sleep(started + step.t / spec.speed - performance.now(), signal);
    }
    if (signal.aborted) break;
    if (hadNavigation) {
      await host.page().waitForLoadState("domcontentloaded", { timeout: NAVIGATION_WAIT_MS })
        .catch(() => {});
    }
    if (performance.now() - lastProgress > 500) {
      lastProgress = performance.now();
      host.progress(index / spec.steps.length, `step ${index + 1} of ${spec.steps.length}`);
    }

    const msg = structuredClone(step.input);
    const base = { step: index, t: step.t };
    if (step.masked) {
      diverged({
        ...base,
        kind: "masked_input",
        message: "Text typed into a password field was masked when recorded; it was not typed",
      });
      continue;
    }
    const target = step.target;
    const selector = target?.selector;
    if ((msg.type === "mouse" || msg.type === "wheel") && target && selector) {
      const reuse = msg.type === "mouse" && msg.action === "up" && pressed.selector === selector;
      const point = reuse
        ? pressed.point
        : await locate(host.page(), selector, target, { x: msg.x, y: msg.y });
      if (msg.type === "mouse" && msg.action === "down") {
        pressed.selector = selector;
        pressed.point = point;
      } else if (msg.type === "mouse" && msg.action === "up") {
        pressed.selector = "";
      }
      if (point) {
        msg.x = point.x;
        msg.y = point.y;
        if (!reuse) bySelector++;
      } else if (!reuse) {
        diverged({
          ...base,
          kind: "element_not_found",
          selector,
          message: `No element matches ${selector} (${describe(step)}); ` +
            "the recorded coordinates were used",
        });
      }
    } else if (
      (msg.type === "text" || (msg.type === "key" && msg.action !== "up")) &&
      selector && target.tag !== "body"
    ) {
      const found = await host.page().locator(selector).count().catch(() => 0);
      if (found === 0) {
        diverged({
          ...base,
          kind: "element_not_found",
          selector,
          message: `No element matches ${selector} (${describe(step)}); ` +
            "the keys went to the focused element",
        });
      }
    }
    try {
      await host.apply(msg);
      replayed++;
    } catch (err) {
      diverged({
        ...base,
        kind: "step_failed",
        message: `${describe(step)} failed: ${err instanceof Error ? err.message : String(err)}`,
      });
    }
  }

  // Let the page finish what the last steps started, as long as the recording went on.
  if (!signal.aborted) {
    await waitUntil(
      () => navigationsNow() >= spec.navigations.length,
      NAVIGATION_WAIT_MS,
      signal,
    );
    const end = spec.speed === "max" ? 0 : started + spec.duration_ms / spec.speed;
    await sleep(Math.max(SETTLE_MS, end - performance.now()), signal);
  }

  const actualNavigations = host.navigations().slice(navBase);
  let navigationDivergences = 0;
  const longest = Math.max(actualNavigations.length, spec.navigations.length);
  for (let i = 0; i < longest && navigationDivergences < MAX_NAVIGATION_DIVERGENCES; i++) {
    const expected = spec.navigations[i]?.url;
    const actual = actualNavigations[i]?.url;
    if (expected === actual) continue;
    navigationDivergences++;
    diverged({
      kind: "navigation",
      expected: expected ?? null,
      actual: actual ?? null,
      message: expected === undefined
        ? `An extra navigation, to ${actual}`
        : actual === undefined
        ? `The navigation to ${expected} did not happen`
        : `Navigation ${i + 1} went to ${actual} instead of ${expected}`,
    });
  }

  const key = (e: { type: ErrorKind; message: string }) => `${e.type}\u0000${e.message}`;
  const expectedErrors = new Map<string, number>();
  for (const e of spec.errors) expectedErrors.set(key(e), (expectedErrors.get(key(e)) ?? 0) + 1);
  const actualErrors = host.errors().slice(errBase);
  for (const e of actualErrors) {
    const left = expectedErrors.get(key(e)) ?? 0;
    if (left > 0) expectedErrors.set(key(e), left - 1);
    else {
      diverged({
        kind: "new_error",
        actual: e,
        message: `A ${e.type.replace("_", " ")} that did not happen when recorded: ${e.message}`,
      });
    }
  }
  for (const e of spec.errors) {
    const left = expectedErrors.get(key(e)) ?? 0;
    if (left === 0) continue;
    expectedErrors.set(key(e), left - 1);
    diverged({
      kind: "missing_error",
      expected: { type: e.type, message: e.message },
      message: `A ${e.type.replace("_", " ")} of the recording did not happen: ${e.message}`,
    });
  }

  let visual: number | null = null;
  if (spec.visual_threshold !== null && spec.final_frame_b64 && !signal.aborted) {
    const now = new Uint8Array(
      await host.page().screenshot({ type: "jpeg", quality: 80, timeout: 10_000 }),
    );
    visual = visualDifference(Uint8Array.fromBase64(spec.final_frame_b64), now);
    if (visual === null) {
      diverged({
        kind: "visual",
        message: "The last frame has a different size than the recording's",
      });
    } else if (visual > spec.visual_threshold) {
      diverged({
        kind: "visual",
        expected: spec.visual_threshold,
        actual: Math.round(visual * 10_000) / 10_000,
        message: `${(visual * 100).toFixed(1)} % of the last frame differs from the ` +
          `recording's (threshold ${(spec.visual_threshold * 100).toFixed(1)} %)`,
      });
    }
  }
  host.progress(1, signal.aborted ? "stopped" : "replayed");
  return {
    recording_id: spec.recording_id,
    speed: spec.speed,
    steps: spec.steps.length,
    steps_replayed: replayed,
    located_by_selector: bySelector,
    navigations: { expected: spec.navigations.length, actual: actualNavigations.length },
    errors: { expected: spec.errors.length, actual: actualErrors.length },
    visual_difference: visual === null ? null : Math.round(visual * 10_000) / 10_000,
    divergences: [...divergences.values()],
    ok: divergences.size === 0 && !signal.aborted,
  };
}
