/**
 * Fuzz: random (fast-check, fixed seed) and schema-derived edge inputs against every operation of
 * the server's own `/openapi.json` and every WebSocket endpoint. No answer may be a 5xx (but a 503
 * the operation documents), none may hang, and the server answers at the end.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { api, startServer, waitFor } from "./helpers.ts";
import { startPages } from "./session_helpers.ts";

const SEED = 20_240_616;
const CASES_PER_OPERATION = 18;
const REQUEST_TIMEOUT_MS = 10_000;
const PARALLEL = 8;

// deno-lint-ignore no-explicit-any
type Json = any;

interface Operation {
  method: string;
  path: string;
  params: Array<{ name: string; in: "path" | "query"; schema: Json }>;
  /** The JSON body schema, when the operation takes one. */
  body: Json | null;
  /** Statuses it documents (a 503 among them is allowed). */
  documented: Set<string>;
}

interface Case {
  op: Operation;
  url: string;
  init: RequestInit;
  what: string;
}

/** Values no field wants: every JSON type, extremes, and strings that break naive code. */
const badValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom(
    "\ud800",
    "x\udc00y",
    "nul\u0000byte",
    "",
    " ",
    "../../etc/passwd",
    "%00",
    "null",
    "-1",
    "1e309",
    "9999999999999999d",
    "<script>alert(1)</script>",
  ),
  fc.integer(),
  fc.constantFrom(-1, 0, -0, 2 ** 53, -(2 ** 63), 1e308, Number.MAX_SAFE_INTEGER + 2, 0.5),
  fc.double({ noNaN: true }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 3 }),
  fc.constant("x".repeat(100_000)),
);

/** What goes in a path or query parameter. */
const badText: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: "binary", maxLength: 30 }),
  fc.constantFrom(
    "",
    "0",
    "-1",
    "1e999",
    "job_nosuchjob",
    "\u0000",
    "%",
    "a/b",
    "..",
    "ü".repeat(300),
  ),
  fc.integer().map(String),
  fc.constant("y".repeat(20_000)),
);

/** A plausible value of a schema (the first enum value, the minimum, ...). */
function plausible(schema: Json, depth = 0): unknown {
  if (!schema || depth > 4) return null;
  if (schema.enum) return schema.enum[0];
  if (schema.default !== undefined) return schema.default;
  if (schema.anyOf ?? schema.oneOf) return plausible((schema.anyOf ?? schema.oneOf)[0], depth + 1);
  switch (schema.type) {
    case "string":
      return schema.example ?? "http://127.0.0.1:9/";
    case "integer":
    case "number":
      return schema.minimum ?? 1;
    case "boolean":
      return true;
    case "array":
      return [plausible(schema.items, depth + 1)];
    case "object": {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(schema.properties ?? {})) {
        out[k] = plausible(v, depth + 1);
      }
      return out;
    }
  }
  return null;
}

function resolveRefs(schema: Json, doc: Json, depth = 0): Json {
  if (!schema || typeof schema !== "object" || depth > 8) return schema;
  if (schema.$ref) {
    const name = String(schema.$ref).split("/").pop()!;
    return resolveRefs(doc.components?.schemas?.[name], doc, depth + 1);
  }
  if (Array.isArray(schema)) return schema.map((s) => resolveRefs(s, doc, depth + 1));
  return Object.fromEntries(
    Object.entries(schema).map(([k, v]) => [k, resolveRefs(v, doc, depth + 1)]),
  );
}

function operationsOf(doc: Json): Operation[] {
  const ops: Operation[] = [];
  for (const [path, methods] of Object.entries<Json>(doc.paths)) {
    for (const [method, op] of Object.entries<Json>(methods)) {
      const json = op.requestBody?.content?.["application/json"]?.schema;
      ops.push({
        method: method.toUpperCase(),
        path,
        params: (op.parameters ?? []).map((p: Json) => ({
          name: p.name,
          in: p.in,
          schema: resolveRefs(p.schema, doc),
        })),
        body: json ? resolveRefs(json, doc) : null,
        documented: new Set(Object.keys(op.responses ?? {})),
      });
    }
  }
  return ops;
}

/**
 * Edge values of one field, from its schema: its example with huge, negative or zero numbers, a
 * NUL or a lone surrogate, repeated; numbers just past its bounds; an enum value nearly right.
 */
function edgeValues(schema: Json): unknown[] {
  if (!schema) return [];
  const out: unknown[] = [];
  const example = schema.example ?? schema.default;
  if (typeof example === "string") {
    out.push(
      example.replace(/\d+/g, "9999999999999999"),
      example.replace(/\d+/g, "0"),
      `-${example}`,
      `${example}\u0000`,
      `\ud800${example}`,
      example.repeat(500),
    );
  }
  if (schema.type === "integer" || schema.type === "number") {
    if (typeof schema.minimum === "number") out.push(schema.minimum - 1);
    if (typeof schema.maximum === "number") out.push(schema.maximum + 1);
    out.push(2 ** 53 + 1, -1e308, 0.5);
  }
  if (Array.isArray(schema.enum)) {
    out.push(String(schema.enum[0]).toUpperCase() + "_", schema.enum.join(","));
  }
  if (schema.type === "array") out.push([], Array(10_000).fill(plausible(schema.items)));
  return out;
}

/** One case per edge value of each body field and parameter. */
function edgeCases(op: Operation, base: string, realIds: Record<string, string>): Case[] {
  const cases: Case[] = [];
  const pathOf = (override?: [string, string]) =>
    op.path.replace(
      /\{(\w+)\}/g,
      (_, name: string) =>
        encodeURIComponent(
          (override?.[0] === name ? override[1] : realIds[name] ?? "1").toWellFormed(),
        ),
    );
  const jsonBody = (body: unknown): RequestInit =>
    op.body
      ? {
        method: op.method,
        body: JSON.stringify(body),
        headers: { "content-type": "application/json" },
      }
      : { method: op.method };
  for (const [field, schema] of Object.entries<Json>(op.body?.properties ?? {})) {
    for (const value of edgeValues(schema)) {
      const body = { ...(plausible(op.body) as object), [field]: value };
      cases.push({ op, url: base + pathOf(), init: jsonBody(body), what: `edge ${field}` });
    }
  }
  for (const param of op.params) {
    for (const value of edgeValues(param.schema)) {
      const text = typeof value === "string" ? value : JSON.stringify(value);
      const url = new URL(base + pathOf(param.in === "path" ? [param.name, text] : undefined));
      if (param.in === "query") url.searchParams.set(param.name, text);
      cases.push({
        op,
        url: url.href,
        init: jsonBody(plausible(op.body)),
        what: `edge ${param.name}`,
      });
    }
  }
  return cases;
}

/** The body kinds of one case: each names how it is bad. */
const bodyCase = (op: Operation) =>
  fc.oneof(
    fc.tuple(fc.constant("one field bad"), badValue).map(([what, value]) => {
      const base = plausible(op.body) as Record<string, unknown>;
      const keys = Object.keys(op.body?.properties ?? {});
      if (keys.length > 0) {
        base[keys[Math.abs(JSON.stringify(value)?.length ?? 0) % keys.length]!] = value;
      }
      return { what, body: JSON.stringify(base), type: "application/json" };
    }),
    fc.constant({ what: "missing fields", body: "{}", type: "application/json" }),
    fc.tuple(fc.string({ maxLength: 10 }), badValue).map(([k, v]) => ({
      what: "unknown field",
      body: JSON.stringify({ ...(plausible(op.body) as object), [`zz_${k}`]: v }),
      type: "application/json",
    })),
    badValue.map((v) => ({
      what: "not an object",
      body: JSON.stringify(v),
      type: "application/json",
    })),
    fc.constantFrom("{", '{"a":', "[1,2", "nul\u0000", '"\\ud800"', '{"url":"\\u0000"}', "")
      .map((body) => ({ what: "bad JSON", body, type: "application/json" })),
    fc.constantFrom("text/plain", "application/x-www-form-urlencoded", "multipart/form-data")
      .map((type) => ({ what: `content type ${type}`, body: "url=http://x/", type })),
    fc.constant({
      what: "oversized body",
      body: JSON.stringify({ data: "z".repeat(1_100_000) }),
      type: "application/json",
    }),
  );

function casesFor(op: Operation, base: string, realIds: Record<string, string>, seed: number) {
  const arb = fc.record({
    pathValues: fc.array(fc.oneof(badText, fc.constant("REAL")), {
      minLength: op.params.filter((p) => p.in === "path").length,
      maxLength: op.params.filter((p) => p.in === "path").length,
    }),
    query: fc.array(
      fc.tuple(
        fc.constantFrom(
          ...op.params.filter((p) => p.in === "query").map((p) => p.name),
          "zz_unknown",
        ),
        badText,
      ),
      { maxLength: 3 },
    ),
    body: op.body ? bodyCase(op) : fc.constant(null),
  });
  return fc.sample(arb, { seed, numRuns: CASES_PER_OPERATION }).map((c): Case => {
    let i = 0;
    const path = op.path.replace(/\{(\w+)\}/g, (_, name: string) => {
      const value = c.pathValues[i++]!;
      // A URL carries UTF-8: a lone surrogate in a path becomes U+FFFD on the way.
      return encodeURIComponent((value === "REAL" ? realIds[name] ?? "1" : value).toWellFormed());
    });
    const url = new URL(base + path);
    for (const [k, v] of c.query) url.searchParams.append(k, v);
    const init: RequestInit = { method: op.method };
    if (c.body) {
      init.body = c.body.body;
      init.headers = { "content-type": c.body.type };
    }
    return { op, url: url.href, init, what: c.body?.what ?? "parameters" };
  });
}

async function send(c: Case): Promise<{ status: number; error?: string }> {
  try {
    const res = await fetch(c.url, { ...c.init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const text = await res.text();
    return { status: res.status, error: res.status >= 500 ? text.slice(0, 300) : undefined };
  } catch (err) {
    return { status: 0, error: `no answer: ${(err as Error).message}` };
  }
}

/** Bad messages for a WebSocket: every kind a client could send. */
const badMessage: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  badValue.map((v) => JSON.stringify(v) ?? "undefined"),
  fc.string({ unit: "binary", maxLength: 50 }),
  fc.constantFrom(
    "{",
    "\u0000",
    JSON.stringify({ type: "mouse", action: "down", x: "a", y: null }),
    JSON.stringify({ type: "key", action: "down", key: "\ud800" }),
    JSON.stringify({ type: "navigate", url: "http://169.254.169.254/" }),
    JSON.stringify({ type: "tab", action: "close", tab: "x".repeat(10_000) }),
    JSON.stringify({ type: "text", text: "y".repeat(2_000_000) }),
    JSON.stringify({ type: "ping", t: 1e308 }),
  ),
  fc.uint8Array({ maxLength: 64 }),
  fc.constant(new Uint8Array(3_000_000)),
);

/** Sends `messages` on a socket; answers whether it stayed usable or closed cleanly. */
async function fuzzSocket(url: string, messages: Array<string | Uint8Array>) {
  const socket = new WebSocket(url);
  const opened = await new Promise<boolean>((resolve) => {
    socket.onopen = () => resolve(true);
    socket.onerror = () => resolve(false);
    setTimeout(() => resolve(false), REQUEST_TIMEOUT_MS);
  });
  if (!opened) return { opened };
  const closed = new Promise<CloseEvent>((resolve) => (socket.onclose = resolve));
  for (const m of messages) {
    if (socket.readyState !== WebSocket.OPEN) break;
    socket.send(m);
  }
  await new Promise((r) => setTimeout(r, 300));
  socket.close();
  const event = await Promise.race([closed, new Promise<null>((r) => setTimeout(r, 5_000, null))]);
  return { opened, closedCleanly: event !== null, code: event?.code };
}

Deno.test("fuzzing every operation and WebSocket leaves no 5xx, no hang, the server up", async (t) => {
  const started = performance.now();
  await using pages = startPages();
  // One session slot, held by the test's own session: a fuzzed body that happens to be a valid
  // session gets a 429 instead of another browser.
  await using server = await startServer({
    env: { STREAMPLAY_LOG_LEVEL: "warn", STREAMPLAY_MAX_SESSIONS: "1" },
  });
  const base = server.url;
  const doc = await (await fetch(`${base}/openapi.json`)).json();
  const ops = operationsOf(doc);
  assert.ok(ops.length >= 40, `${ops.length} operations in /openapi.json`);

  const job = await api(base, "/api/jobs", { method: "POST", json: { type: "noop", params: {} } });
  assert.equal(job.status, 202, JSON.stringify(job.body));
  const session = await api(base, "/api/sessions", {
    method: "POST",
    json: { url: `${pages.url}/` },
  });
  assert.equal(session.status, 201, JSON.stringify(session.body));
  const realIds = { id: job.body.id as string, dir: "screenshots", name: "x.jpg", n: "1" };

  const failures: string[] = [];
  let cases = 0;

  await t.step(
    "WebSocket: jobs, sessions, dashboard (first: the HTTP cases end them)",
    async () => {
      const ws = (path: string) => base.replace(/^http/, "ws") + path;
      const endpoints = [
        ws(`/ws/jobs/${job.body.id}`),
        ws("/ws/dashboard"),
        session.body.ws_url as string,
      ];
      for (const [i, url] of endpoints.entries()) {
        const batches = fc.sample(fc.array(badMessage, { minLength: 5, maxLength: 15 }), {
          seed: SEED + 1000 + i,
          numRuns: 8,
        });
        for (const messages of batches) {
          const r = await fuzzSocket(url, messages);
          cases += messages.length;
          if (!r.opened) failures.push(`${url}: did not open`);
          else if (!r.closedCleanly) failures.push(`${url}: did not close within 5 s`);
        }
      }
      for (
        const path of ["/ws/jobs/%00", "/ws/sessions/job_nosuch", "/ws/jobs/" + "x".repeat(5000)]
      ) {
        const res = await fetch(base + path, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
        await res.body?.cancel();
        cases++;
        if (res.status >= 500) failures.push(`GET ${path}: ${res.status}`);
      }
    },
  );

  await t.step("HTTP: every operation of /openapi.json", async () => {
    const all = ops.flatMap((op, i) => {
      const ids = op.path.startsWith("/api/sessions/")
        ? { ...realIds, id: session.body.id }
        : realIds;
      return [...casesFor(op, base, ids, SEED + i), ...edgeCases(op, base, ids)];
    });
    // Ending the session or cancelling the job early would only shorten what is reached.
    const ordered = all.sort((a, b) =>
      Number(a.init.method === "DELETE") - Number(b.init.method === "DELETE")
    );
    for (let i = 0; i < ordered.length; i += PARALLEL) {
      const batch = ordered.slice(i, i + PARALLEL);
      const results = await Promise.all(batch.map(send));
      results.forEach((r, j) => {
        const c = batch[j]!;
        cases++;
        const allowed = r.status === 503 && c.op.documented.has("503");
        if (r.status === 0 || (r.status >= 500 && !allowed)) {
          failures.push(
            `${c.op.method} ${c.url.slice(0, 200)} (${c.what}): ${r.status} ${r.error}`,
          );
        }
      });
    }
  });

  await t.step("the server is alive and answering", async () => {
    const health = await waitFor(async () => (await api(base, "/api/health")).status === 200, {
      what: "GET /api/health 200",
    });
    assert.ok(health);
    const status = await Promise.race([server.process.status, Promise.resolve(null)]);
    assert.equal(status, null, "the server process is still running");
    await api(base, `/api/sessions/${session.body.id}`, { method: "DELETE" });
  });

  const seconds = (performance.now() - started) / 1000;
  console.log(
    `fuzz: ${cases} cases over ${ops.length} operations and 3 WebSockets in ${
      seconds.toFixed(1)
    } s`,
  );
  assert.ok(cases >= 1000, `${cases} cases`);
  assert.deepEqual(failures, []);
  assert.ok(seconds < 90, `took ${seconds.toFixed(1)} s`);
});
