/**
 * The trusted side of a browser function's `page` and `context`: the function's process holds only
 * handles, and each method it calls arrives here, is checked against what that kind of object may
 * do, and is applied to the real Playwright object.
 */
import { Buffer } from "node:buffer";
import type { Wire } from "./protocol.ts";

/**
 * What could reach beyond the function's own pages is on none of these lists: the browser (other
 * contexts, a context without the policy proxy), raw CDP sessions, request routing and API requests
 * made from this side, and every option that names a file (`path`, or a file name to upload).
 * Navigations go to http(s), data: or about:blank only; the pages' traffic goes through the
 * session's policy proxy. Functions passed for the page (`evaluate`) are sent as source and run
 * only in the page.
 */
const ACTIONS = [
  "click",
  "dblclick",
  "fill",
  "type",
  "press",
  "check",
  "uncheck",
  "setChecked",
  "selectOption",
  "hover",
  "focus",
  "tap",
  "dispatchEvent",
  "setInputFiles",
  "textContent",
  "innerText",
  "innerHTML",
  "getAttribute",
  "inputValue",
  "isVisible",
  "isHidden",
  "isEnabled",
  "isDisabled",
  "isChecked",
  "isEditable",
  "screenshot",
  "evaluate",
  "evaluateHandle",
];
const FINDERS = [
  "locator",
  "getByRole",
  "getByText",
  "getByLabel",
  "getByPlaceholder",
  "getByTestId",
  "getByAltText",
  "getByTitle",
  "frameLocator",
];
const FRAME = [
  ...ACTIONS,
  ...FINDERS,
  "goto",
  "url",
  "title",
  "content",
  "setContent",
  "waitForURL",
  "waitForLoadState",
  "waitForSelector",
  "waitForTimeout",
  "waitForFunction",
  "$",
  "$$",
  "$eval",
  "$$eval",
  "addScriptTag",
  "addStyleTag",
  "dragAndDrop",
  "name",
  "parentFrame",
  "childFrames",
  "page",
  "isDetached",
];

/** What each kind of object may be asked, by kind (Playwright's class name). */
const ALLOWED: Record<string, ReadonlySet<string>> = {
  Page: new Set([
    ...FRAME,
    "reload",
    "goBack",
    "goForward",
    "mainFrame",
    "frames",
    "context",
    "pdf",
    "setViewportSize",
    "viewportSize",
    "keyboard",
    "mouse",
    "touchscreen",
    "bringToFront",
    "close",
    "isClosed",
    "setExtraHTTPHeaders",
    "emulateMedia",
    "addInitScript",
    "waitForResponse",
    "waitForRequest",
    "setDefaultTimeout",
    "setDefaultNavigationTimeout",
  ]),
  Frame: new Set(FRAME),
  Locator: new Set([
    ...ACTIONS,
    ...FINDERS,
    "pressSequentially",
    "selectText",
    "blur",
    "clear",
    "count",
    "all",
    "allTextContents",
    "allInnerTexts",
    "first",
    "last",
    "nth",
    "filter",
    "and",
    "or",
    "waitFor",
    "evaluateAll",
    "scrollIntoViewIfNeeded",
    "boundingBox",
    "dragTo",
    "elementHandle",
    "elementHandles",
    "page",
    "contentFrame",
    "ariaSnapshot",
  ]),
  FrameLocator: new Set([...FINDERS, "first", "last", "nth", "owner"]),
  ElementHandle: new Set([
    ...ACTIONS,
    "$",
    "$$",
    "$eval",
    "$$eval",
    "selectText",
    "scrollIntoViewIfNeeded",
    "boundingBox",
    "contentFrame",
    "ownerFrame",
    "waitForSelector",
    "asElement",
    "jsonValue",
    "getProperty",
    "dispose",
  ]),
  JSHandle: new Set([
    "evaluate",
    "evaluateHandle",
    "jsonValue",
    "getProperty",
    "asElement",
    "dispose",
  ]),
  BrowserContext: new Set([
    "newPage",
    "pages",
    "cookies",
    "addCookies",
    "clearCookies",
    "setExtraHTTPHeaders",
    "grantPermissions",
    "clearPermissions",
    "setGeolocation",
    "setOffline",
    "addInitScript",
    "storageState",
    "setDefaultTimeout",
    "setDefaultNavigationTimeout",
  ]),
  Keyboard: new Set(["down", "up", "press", "type", "insertText"]),
  Mouse: new Set(["click", "dblclick", "down", "up", "move", "wheel"]),
  Touchscreen: new Set(["tap"]),
  Response: new Set([
    "status",
    "statusText",
    "ok",
    "url",
    "headers",
    "allHeaders",
    "headerValue",
    "text",
    "json",
    "body",
    "request",
    "frame",
  ]),
  Request: new Set([
    "url",
    "method",
    "headers",
    "allHeaders",
    "postData",
    "postDataJSON",
    "resourceType",
    "failure",
    "frame",
    "isNavigationRequest",
    "redirectedFrom",
    "redirectedTo",
    "response",
  ]),
};

/** Option names that name a file on the side that holds the browser. */
const FILE_OPTIONS = new Set(["path", "har", "recordHar", "recordVideo"]);
const NAVIGABLE = /^(https?:|data:|about:blank$)/i;
/** Handles one run may hold (each pins an object here). */
const MAX_HANDLES = 10_000;

/** Playwright's class name of an object it made ("_Page", "Keyboard2" → "Page", "Keyboard"). */
function kindOf(value: object): string | null {
  const name = value.constructor?.name?.replace(/^_+|\d+$/g, "");
  return name && name in ALLOWED ? name : null;
}

export interface PageBridge {
  /** The handle of an object the function starts with (its page, its context). */
  handle(value: object): number;
  call(target: number, method: string, args: Wire[]): Promise<Wire>;
}

/** A bridge for one run; its handles are forgotten with it. */
export function createPageBridge(): PageBridge {
  const objects = new Map<number, { value: object; kind: string }>();
  const ids = new WeakMap<object, number>();
  let next = 1;

  const handle = (value: object): number => {
    const known = ids.get(value);
    if (known !== undefined) return known;
    const kind = kindOf(value);
    if (!kind) throw new Error("only page objects can be handed to a function");
    if (objects.size >= MAX_HANDLES) {
      throw new Error(`a function may hold at most ${MAX_HANDLES} page objects at once`);
    }
    const id = next++;
    objects.set(id, { value, kind });
    ids.set(value, id);
    return id;
  };

  const encode = (value: unknown): Wire => {
    if (value === undefined) return { $u: 1 };
    if (value === null || typeof value !== "object") return value;
    if (value instanceof Uint8Array) return { $b64: value.toBase64() };
    if (Array.isArray(value)) return value.map(encode);
    if (value instanceof Date) return value.toISOString();
    const kind = kindOf(value);
    if (kind) return { $h: handle(value), kind };
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, encode(v)]));
  };

  const decode = (value: Wire): unknown => {
    if (value === null || typeof value !== "object") return value;
    if (Array.isArray(value)) return value.map(decode);
    const v = value as Record<string, unknown>;
    if ("$u" in v) return undefined;
    if ("$h" in v) {
      const known = objects.get(Number(v.$h));
      if (!known) throw new Error("the function passed an object it does not hold");
      return known.value;
    }
    if ("$fn" in v) {
      // Playwright sends a function's source to the page; this one is never called here.
      const source = String(v.$fn);
      return Object.assign(() => {}, { toString: () => source });
    }
    if ("$re" in v) {
      const [source, flags] = v.$re as [string, string];
      return new RegExp(String(source), String(flags));
    }
    if ("$b64" in v) return Buffer.from(Uint8Array.fromBase64(String(v.$b64)));
    const out: Record<string, unknown> = {};
    for (const [k, item] of Object.entries(v)) {
      if (FILE_OPTIONS.has(k)) {
        throw new Error(`option "${k}": functions have no files; use buffers`);
      }
      out[k] = decode(item);
    }
    return out;
  };

  return {
    handle,
    async call(target, method, args) {
      const entry = objects.get(target);
      if (!entry) throw new Error("the function called an object it does not hold");
      if (!ALLOWED[entry.kind]!.has(method)) {
        throw new Error(`${entry.kind}.${method} is not available to functions`);
      }
      const decoded = args.map(decode);
      if (method === "goto" && !NAVIGABLE.test(String(decoded[0]))) {
        throw new Error(`${entry.kind}.goto: only http(s), data: and about:blank URLs are allowed`);
      }
      if (method === "setInputFiles" && [decoded[0]].flat().some((f) => typeof f === "string")) {
        throw new Error("setInputFiles: functions have no files; pass { name, mimeType, buffer }");
      }
      const member = (entry.value as Record<string, unknown>)[method];
      const result = typeof member === "function"
        ? await (member as (...a: unknown[]) => unknown).apply(entry.value, decoded)
        : member;
      return encode(result);
    },
  };
}
