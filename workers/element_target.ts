/**
 * The element under an input, named by a stable selector at the moment of the action (session
 * Worker, while recording), so a replay finds it again with `page.locator(selector)`.
 */
import type { Page } from "playwright";
import type { ElementTarget } from "../lib/recordings/replay_spec.ts";

/** The little of the DOM the page-side function uses (it runs in the page, not here). */
interface PageElement {
  tagName: string;
  id: string;
  parentElement: PageElement | null;
  children: Iterable<PageElement>;
  innerText?: string;
  value?: string;
  type?: string;
  closest(selector: string): PageElement | null;
  matches(selector: string): boolean;
  getAttribute(name: string): string | null;
  hasAttribute(name: string): boolean;
  getBoundingClientRect(): { x: number; y: number; width: number; height: number };
}
declare const document: {
  elementFromPoint(x: number, y: number): PageElement | null;
  activeElement: PageElement | null;
  body: PageElement | null;
  documentElement: PageElement;
  querySelectorAll(selector: string): ArrayLike<PageElement>;
};
declare const CSS: { escape(value: string): string };

interface Described {
  /** Selectors the page found unique (`ok`), or that Playwright must count (`ok: false`). */
  candidates: Array<{ selector: string; ok: boolean }>;
  /** The last resort: a CSS path from the nearest ancestor with an id. */
  css: string;
  tag: string;
  text: string;
  box: { x: number; y: number; width: number; height: number };
  sensitive: boolean;
}

/** Runs in the page (serialised by Playwright): no references outside the function. */
function describeElement(at: { x: number; y: number } | null): Described | "nothing" | null {
  const hit = at ? document.elementFromPoint(at.x, at.y) : document.activeElement;
  if (!hit) return null;
  // The page's background: nothing is under the pointer (and nothing has the focus).
  if (hit === document.body || hit === document.documentElement) return at ? "nothing" : null;
  const el = hit.closest(
    "button, a[href], input, select, textarea, label, summary, option, [role=button], " +
      "[role=link], [role=checkbox], [role=radio], [role=tab], [role=menuitem], [role=option], " +
      "[role=switch], [onclick], [contenteditable=''], [contenteditable=true]",
  ) ?? hit;
  const quote = (v: string) => JSON.stringify(v);
  const unique = (selector: string) => {
    try {
      const found = document.querySelectorAll(selector);
      return found.length === 1 && found[0] === el;
    } catch {
      return false;
    }
  };
  const squash = (v: string | null | undefined) => (v ?? "").replace(/\s+/g, " ").trim();
  const tag = el.tagName.toLowerCase();
  const sensitive = el.matches(
    "input[type=password], [autocomplete~='cc-number'], [autocomplete~='cc-csc'], " +
      "[autocomplete='one-time-code']",
  );
  const candidates: Described["candidates"] = [];
  const add = (selector: string | null, ok: boolean) => {
    if (selector && !candidates.some((c) => c.selector === selector)) {
      candidates.push({ selector, ok });
    }
  };

  // 1. A test id, or an id that does not look generated.
  for (const attr of ["data-testid", "data-test-id", "data-test", "data-qa", "data-cy"]) {
    const v = el.getAttribute(attr);
    if (v && unique(`[${attr}=${quote(v)}]`)) add(`[${attr}=${quote(v)}]`, true);
  }
  const stableId = (id: string) => /^[A-Za-z][\w-]*$/.test(id) && !/\d{3,}|[0-9a-f]{8,}/i.test(id);
  if (el.id && stableId(el.id) && unique(`#${CSS.escape(el.id)}`)) {
    add(`#${CSS.escape(el.id)}`, true);
  }

  // 2. Its ARIA role and accessible name (Playwright's role engine counts it).
  const type = (el.type ?? "").toLowerCase();
  const implicit: Record<string, string> = {
    button: "button",
    select: "combobox",
    summary: "button",
  };
  let role = el.getAttribute("role") ?? implicit[tag] ?? null;
  if (!role && tag === "a" && el.hasAttribute("href")) role = "link";
  if (!role && tag === "input") {
    role = ["button", "submit", "reset", "image"].includes(type)
      ? "button"
      : type === "checkbox" || type === "radio"
      ? type
      : null;
  }
  if (!role && /^h[1-6]$/.test(tag)) role = "heading";
  const name = squash(
    el.getAttribute("aria-label") ||
      (tag === "input" && role === "button" ? el.value : "") ||
      el.innerText,
  );
  if (role && name && name.length <= 80) add(`role=${role}[name=${quote(name)}]`, false);

  // 3. A stable attribute, or a class that names what it is (not a state, not generated).
  for (const attr of ["name", "placeholder", "aria-label", "alt", "title", "href"]) {
    const v = el.getAttribute(attr);
    if (v && v.length <= 200 && unique(`${tag}[${attr}=${quote(v)}]`)) {
      add(`${tag}[${attr}=${quote(v)}]`, true);
    }
  }
  const STATES =
    /^(active|completed?|selected|checked|disabled|hidden|open|editing|focus(ed)?|hover|current|visible|show|is-.*|has-.*)$/;
  const stableClasses = (node: PageElement) =>
    squash(node.getAttribute("class")).split(" ").filter((c) =>
      /^[A-Za-z][\w-]*$/.test(c) && !STATES.test(c) &&
      !/\d{3,}|[0-9a-f]{6,}|^(css|sc|jsx)-/i.test(c)
    );
  const part = (node: PageElement) => {
    const t = node.tagName.toLowerCase();
    const cls = stableClasses(node)[0];
    if (cls) return `${t}.${CSS.escape(cls)}`;
    const ty = node.getAttribute("type");
    return t === "input" && ty ? `input[type=${quote(ty)}]` : t;
  };
  for (const cls of stableClasses(el)) {
    if (unique(`${tag}.${CSS.escape(cls)}`)) add(`${tag}.${CSS.escape(cls)}`, true);
  }

  // 4. Within the nearest item that says which one it is by its text (a todo's checkbox).
  const own = part(el);
  let item: PageElement | null = el.parentElement;
  for (let depth = 0; item && item !== document.body && depth < 5; depth++) {
    const label = squash(item.innerText);
    if (label && label.length <= 80) add(`${part(item)}:has-text(${quote(label)}) ${own}`, false);
    item = item.parentElement;
  }

  // 5. Last resort: where it is, from the nearest ancestor with an id.
  const steps: string[] = [];
  let node: PageElement | null = el;
  while (node && node !== document.documentElement) {
    if (node !== el && node.id && /^[A-Za-z][\w-]*$/.test(node.id)) {
      steps.unshift(`#${CSS.escape(node.id)}`);
      break;
    }
    const t: string = node.tagName.toLowerCase();
    const parent: PageElement | null = node.parentElement;
    const same = parent ? [...parent.children].filter((c) => c.tagName === node!.tagName) : [];
    steps.unshift(same.length > 1 ? `${t}:nth-of-type(${same.indexOf(node) + 1})` : t);
    node = parent;
  }

  const r = el.getBoundingClientRect();
  const round = (n: number) => Math.round(n * 100) / 100;
  const text = sensitive ? "" : squash(
    el.innerText || el.value || el.getAttribute("aria-label") ||
      el.getAttribute("placeholder"),
  ).slice(0, 80);
  return {
    candidates,
    css: steps.join(" > ") || tag,
    tag,
    text,
    box: { x: round(r.x), y: round(r.y), width: round(r.width), height: round(r.height) },
    sensitive,
  };
}

function within<T>(work: Promise<T>, ms: number): Promise<T | null> {
  return Promise.race([
    work.catch(() => null),
    new Promise<null>((resolve) => setTimeout(() => resolve(null), ms)),
  ]);
}

/** Selectors Playwright counts at most, per input (each a round trip). */
const MAX_COUNTED = 4;

/**
 * The element at (x, y) of the viewport, or the focused element when `at` is null: named by
 * the first of its selector candidates that matches it alone. The page's background is
 * "nothing" (no selector, a box of no size at the point). Null when there is no focused element
 * or the page did not answer within 1.5 s (the input goes ahead anyway).
 *
 * The page describes the element itself (one `evaluate`): the nearest interactive ancestor of what
 * is under the pointer (or the focused element, for typing), its box, text and selector candidates
 * in order of stability:
 *
 *   1. a test id attribute (`data-testid`, `data-test`, `data-qa`, `data-cy`), or an id that does
 *      not look generated;
 *   2. its ARIA role and accessible name, `role=button[name="Save"]`;
 *   3. a stable attribute (`name`, `placeholder`, `aria-label`, `alt`, `title`, `href`), or a
 *      class that names what it is (`input.toggle`; not a state like `completed`, not generated);
 *   4. within the nearest ancestor whose text says which item it is,
 *      `div.view:has-text("buy milk") input.toggle` (a list's checkbox);
 *   5. else a CSS path of `:nth-of-type` steps from the nearest ancestor with an id.
 *
 * Candidates the page cannot check itself (Playwright's role and text engines) are counted through
 * Playwright, a round trip each, only when needed.
 */
export async function elementTarget(
  page: Page,
  at: { x: number; y: number } | null,
): Promise<ElementTarget | null> {
  const d = await within(page.evaluate(describeElement, at), 1_500);
  if (!d) return null;
  if (d === "nothing") {
    return { selector: null, tag: "nothing", box: { x: at!.x, y: at!.y, width: 0, height: 0 } };
  }
  let selector: string | null = null;
  let counted = 0;
  for (const c of d.candidates) {
    if (c.ok) {
      selector = c.selector;
      break;
    }
    if (counted++ >= MAX_COUNTED) continue;
    if (await within(page.locator(c.selector).count(), 1_000) === 1) {
      selector = c.selector;
      break;
    }
  }
  const target: ElementTarget = { selector: selector ?? d.css, tag: d.tag, box: d.box };
  if (d.text) target.text = d.text;
  if (d.sensitive) target.sensitive = true;
  return target;
}
