/**
 * The element under an input, named by a stable selector at the moment of the action (session
 * Worker, while recording). The page describes the element itself (one `evaluate`): the nearest
 * interactive ancestor of what is under the pointer (or the focused element, for typing), its
 * box, text and selector candidates in order of stability:
 *
 *   1. a test id attribute (`data-testid`, `data-test`, `data-qa`, `data-cy`), or an id that does
 *      not look generated — checked unique in the page;
 *   2. its ARIA role and accessible name, `role=button[name="Save"]` (Playwright's role engine,
 *      so it is checked unique through Playwright: one more round trip, only when needed);
 *   3. a stable attribute (`name`, `placeholder`, `aria-label`, `alt`, `title`, `href`) or else a
 *      CSS path of `:nth-of-type` steps from the nearest ancestor with an id.
 *
 * A replay finds the element again with `page.locator(selector)`.
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
  strong: string | null;
  role: string | null;
  css: string;
  tag: string;
  text: string;
  box: { x: number; y: number; width: number; height: number };
  sensitive: boolean;
}

/** Runs in the page (serialised by Playwright): no references outside the function. */
function describeElement(at: { x: number; y: number } | null): Described | null {
  const hit = at ? document.elementFromPoint(at.x, at.y) : document.activeElement;
  if (!hit || (!at && (hit === document.body || hit === document.documentElement))) return null;
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

  let strong: string | null = null;
  for (const attr of ["data-testid", "data-test-id", "data-test", "data-qa", "data-cy"]) {
    const v = el.getAttribute(attr);
    if (v && unique(`[${attr}=${quote(v)}]`)) {
      strong = `[${attr}=${quote(v)}]`;
      break;
    }
  }
  const id = el.id;
  if (!strong && id && /^[A-Za-z][\w-]*$/.test(id) && !/\d{3,}|[0-9a-f]{8,}/i.test(id)) {
    if (unique(`#${CSS.escape(id)}`)) strong = `#${CSS.escape(id)}`;
  }

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
  const byRole = role && name && name.length <= 80 ? `role=${role}[name=${quote(name)}]` : null;

  let css: string | null = null;
  for (const attr of ["name", "placeholder", "aria-label", "alt", "title", "href"]) {
    const v = el.getAttribute(attr);
    if (v && v.length <= 200 && unique(`${tag}[${attr}=${quote(v)}]`)) {
      css = `${tag}[${attr}=${quote(v)}]`;
      break;
    }
  }
  if (!css) {
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
    css = steps.join(" > ") || tag;
  }

  const r = el.getBoundingClientRect();
  const round = (n: number) => Math.round(n * 100) / 100;
  const text = sensitive ? "" : squash(
    el.innerText || el.value || el.getAttribute("aria-label") ||
      el.getAttribute("placeholder"),
  ).slice(0, 80);
  return {
    strong,
    role: byRole,
    css,
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

/**
 * The element at (x, y) of the viewport, or the focused element when `at` is null; null when
 * there is none or the page did not answer within 1.5 s (the input goes ahead anyway).
 */
export async function elementTarget(
  page: Page,
  at: { x: number; y: number } | null,
): Promise<ElementTarget | null> {
  const d = await within(page.evaluate(describeElement, at), 1_500);
  if (!d) return null;
  let selector = d.strong;
  if (!selector && d.role) {
    const count = await within(page.locator(d.role).count(), 1_000);
    if (count === 1) selector = d.role;
  }
  const target: ElementTarget = { selector: selector ?? d.css, tag: d.tag, box: d.box };
  if (d.text) target.text = d.text;
  if (d.sensitive) target.sensitive = true;
  return target;
}
