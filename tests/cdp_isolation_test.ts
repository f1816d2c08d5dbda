/**
 * Isolation, policy and limits over raw CDP (`GET /cdp`) on a real server and Chromium: each client
 * reaches only its own session's targets, contexts, files and downloads, within the URL policy,
 * slots, quotas and timeouts. Each case fails if the relay's guard for it is removed.
 */
import assert from "node:assert/strict";
import { api, startServer, tempDir, waitFor } from "./helpers.ts";
import type { Json } from "./session_helpers.ts";

const ADMIN = "admin-token-1";
const OPERATOR = "operator-token-1";
const VIEWER = "viewer-token-1";
/** The operator may hold 2 sessions; the platform 3. */
const TOKENS = `boss:${ADMIN}:admin,ops:${OPERATOR}:operator:2,watcher:${VIEWER}:viewer`;

/** A CDP client on a raw WebSocket. */
interface Cdp {
  events: Json[];
  closed: Promise<CloseEvent>;
  /** Sends a command; rejects with the CDP error's message. */
  send(method: string, params?: Json, sessionId?: string): Promise<Json>;
  next(match: (event: Json) => boolean, timeoutMs?: number): Promise<Json>;
  close(): Promise<void>;
}

async function openCdp(url: string): Promise<Cdp> {
  const socket = new WebSocket(url);
  const events: Json[] = [];
  const pending = new Map<number, { resolve(v: Json): void; reject(e: Error): void }>();
  const waiters = new Set<() => void>();
  const closed = new Promise<CloseEvent>((resolve) => socket.addEventListener("close", resolve));
  let nextId = 1;
  socket.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    if (msg.id !== undefined) {
      const call = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) call?.reject(new Error(msg.error.message));
      else call?.resolve(msg.result);
    } else {
      events.push(msg);
      for (const wake of waiters) wake();
    }
  };
  await new Promise<void>((resolve, reject) => {
    socket.onopen = () => resolve();
    socket.onerror = () => reject(new Error(`cannot connect to ${url}`));
  });
  return {
    events,
    closed,
    send(method, params = {}, sessionId) {
      const id = nextId++;
      socket.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
      return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
    },
    next(match, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = events.find(match);
          if (!found) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching event; got ${JSON.stringify(events.slice(-5))}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async close() {
      socket.close();
      await closed;
    },
  };
}

/** The status, headers and body a WebSocket upgrade request gets, read off a raw connection. */
async function upgrade(port: number, path: string) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
      `Sec-WebSocket-Version: 13\r\n\r\n`,
  ));
  let text = "";
  const buf = new Uint8Array(65536);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += new TextDecoder().decode(buf.subarray(0, n));
    const end = text.indexOf("\r\n\r\n");
    if (end < 0) continue;
    const length = Number(/content-length: (\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
    if (text.length >= end + 4 + length) break;
  }
  conn.close();
  const [head = "", body = ""] = text.split("\r\n\r\n");
  const [statusLine, ...lines] = head.split("\r\n");
  const headers = new Map(lines.map((l) => {
    const i = l.indexOf(":");
    return [l.slice(0, i).toLowerCase(), l.slice(i + 1).trim()] as const;
  }));
  return { status: Number(statusLine?.split(" ")[1]), headers, body };
}

/** Pages on 127.0.0.1: `/` (a title), `/download` (an attachment), `/redirect?to=`. */
function startPages() {
  const hits = new Map<string, number>();
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => {
      const url = new URL(req.url);
      hits.set(url.pathname + url.search, (hits.get(url.pathname + url.search) ?? 0) + 1);
      if (url.pathname === "/download") {
        return new Response("id,total\n1,42\n", {
          headers: { "content-disposition": 'attachment; filename="report.csv"' },
        });
      }
      if (url.pathname === "/redirect") {
        return new Response(null, {
          status: 302,
          headers: { location: url.searchParams.get("to")! },
        });
      }
      return new Response(`<!doctype html><title>page ${url.search}</title><p>hello`, {
        headers: { "content-type": "text/html" },
      });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    hits: (path: string) => hits.get(path) ?? 0,
    async [Symbol.asyncDispose]() {
      ac.abort();
      await server.finished;
    },
  };
}

/** A server on 127.0.0.2, which the platform's deny-list names: counts what reaches it. */
function startDenied() {
  let hits = 0;
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.2", port: 0, signal: ac.signal, onListen() {} },
    () => {
      hits++;
      return new Response("secret");
    },
  );
  return {
    url: `http://127.0.0.2:${server.addr.port}`,
    hits: () => hits,
    async [Symbol.asyncDispose]() {
      ac.abort();
      await server.finished;
    },
  };
}

Deno.test("CDP clients stay within their session, the URL policy and the limits", async (t) => {
  await using pages = startPages();
  await using denied = startDenied();
  await using downloadsElsewhere = await tempDir();
  await using server = await startServer({
    env: {
      STREAMPLAY_TOKENS: TOKENS,
      STREAMPLAY_MAX_SESSIONS: "3",
      STREAMPLAY_DENY_HOSTS: "127.0.0.2",
    },
  });
  const base = server.url;
  const ws = base.replace(/^http/, "ws");
  const cdpIds = async (): Promise<string[]> =>
    (await api(base, "/api/sessions", { token: ADMIN })).body.sessions
      .filter((s: Json) => s.opened_over_cdp).map((s: Json) => s.id);
  /** Opens a session over CDP; answers the client and its session's id. */
  const open = async (query = "", token = ADMIN) => {
    const before = new Set(await cdpIds());
    const cdp = await openCdp(`${ws}/cdp?token=${token}${query}`);
    const id = (await cdpIds()).find((s) => !before.has(s))!;
    assert.ok(id, "the session is listed");
    return { cdp, id };
  };
  const session = async (id: string) =>
    (await api(base, `/api/sessions/${id}`, { token: ADMIN }))
      .body;
  const pagesOf = async (cdp: Cdp) =>
    ((await cdp.send("Target.getTargets")).targetInfos as Json[]).filter((t) => t.type === "page");
  /** Attaches to the client's first page; answers the flat session id. */
  const attach = async (cdp: Cdp) => {
    const [page] = await pagesOf(cdp);
    return (await cdp.send("Target.attachToTarget", { targetId: page.targetId, flatten: true }))
      .sessionId as string;
  };

  const a = await open();
  const b = await open();

  await t.step("a client sees and can attach only to its own session's targets", async () => {
    const [mine, theirs] = [await pagesOf(a.cdp), await pagesOf(b.cdp)];
    assert.equal(mine.length, 1, JSON.stringify(mine));
    assert.equal(theirs.length, 1, JSON.stringify(theirs));
    assert.notEqual(mine[0].targetId, theirs[0].targetId);
    assert.notEqual(mine[0].browserContextId, theirs[0].browserContextId);
    const other = theirs[0].targetId;
    await assert.rejects(
      a.cdp.send("Target.attachToTarget", { targetId: other, flatten: true }),
      /No target with given id/,
    );
    await assert.rejects(a.cdp.send("Target.closeTarget", { targetId: other }), /No target/);
    await assert.rejects(a.cdp.send("Target.activateTarget", { targetId: other }), /No target/);
    const contexts = await b.cdp.send("Target.getBrowserContexts");
    assert.deepEqual(contexts.browserContextIds, [], "only the contexts it created");
    await assert.rejects(
      a.cdp.send("Target.createTarget", {
        url: "about:blank",
        browserContextId: contexts.defaultBrowserContextId,
      }),
      /browser context/,
    );
    await assert.rejects(
      a.cdp.send("Target.attachToTarget", { targetId: mine[0].targetId }),
      /flatten/,
      "no sessions whose messages would pass unseen",
    );
    const theirSession = await attach(b.cdp);
    await assert.rejects(
      a.cdp.send("Runtime.evaluate", { expression: "1" }, theirSession),
      /Session with given id not found/,
    );

    // Discovery and auto-attach show only its own targets, and do not hold the others' back.
    await a.cdp.send("Target.setDiscoverTargets", { discover: true });
    await a.cdp.send("Target.setAutoAttach", {
      autoAttach: true,
      waitForDebuggerOnStart: true,
      flatten: true,
    });
    const { targetId: created } = await b.cdp.send("Target.createTarget", {
      url: `${pages.url}/?b`,
    });
    const { sessionId: theirNew } = await b.cdp.send("Target.attachToTarget", {
      targetId: created,
      flatten: true,
    });
    await waitFor(async () => {
      const { result } = await b.cdp.send("Runtime.evaluate", {
        expression: "document.title",
      }, theirNew);
      return result.value === "page ?b";
    }, { what: "the other session's new page to run" });
    const seen = JSON.stringify(a.cdp.events);
    assert.ok(!seen.includes(created), "its new target is not announced to the other client");
    assert.ok(!seen.includes(other), "nor its first one");
    const attached = a.cdp.events.filter((e) => e.method === "Target.attachedToTarget");
    assert.deepEqual(attached.map((e) => e.params.targetInfo.targetId), [mine[0].targetId]);
  });

  await t.step("cookies set in one session are not another's", async () => {
    await b.cdp.send("Storage.setCookies", {
      cookies: [{ name: "secret", value: "of-b", domain: "127.0.0.1", path: "/" }],
    });
    const theirs = (await b.cdp.send("Storage.getCookies")).cookies as Json[];
    assert.ok(theirs.some((c) => c.name === "secret"));
    const mine = (await a.cdp.send("Storage.getCookies")).cookies as Json[];
    assert.ok(!mine.some((c) => c.name === "secret"), JSON.stringify(mine));
  });

  await t.step("URLs the policy refuses are CDP errors", async () => {
    const sid = await attach(a.cdp);
    for (
      const url of [
        "file:///etc/passwd",
        "chrome://version/",
        "http://169.254.169.254/latest/meta-data/",
        `${denied.url}/direct`,
        "javascript:alert(1)",
      ]
    ) {
      await assert.rejects(a.cdp.send("Page.navigate", { url }, sid), /is refused/, url);
      await assert.rejects(a.cdp.send("Target.createTarget", { url }), /is refused/, url);
    }
    const page = await a.cdp.send("Page.navigate", { url: "data:text/html,<title>d</title>" }, sid);
    assert.equal(page.errorText, undefined);
    assert.equal(denied.hits(), 0);
  });

  await t.step("the browser's traffic still goes through the policy proxy", async () => {
    const sid = await attach(a.cdp);
    const hop = `${pages.url}/redirect?to=${encodeURIComponent(`${denied.url}/hop`)}`;
    const nav = await a.cdp.send("Page.navigate", { url: hop }, sid);
    assert.match(nav.errorText ?? "", /ERR_/, "the redirect to a denied address fails");
    const fetched = await a.cdp.send("Runtime.evaluate", {
      expression: `fetch("${denied.url}/fetch").then(() => "reached", () => "refused")`,
      awaitPromise: true,
    }, sid);
    assert.equal(fetched.result.value, "refused");
    assert.equal(denied.hits(), 0);
  });

  await t.step("a context the client creates uses the policy proxy, whatever it asks", async () => {
    await assert.rejects(
      a.cdp.send("Target.createBrowserContext", { proxyServer: "direct://" }),
      /proxyServer and proxyBypassList are refused/,
    );
    await assert.rejects(
      a.cdp.send("Target.createBrowserContext", { proxyBypassList: "*" }),
      /proxyServer and proxyBypassList are refused/,
    );
    const { browserContextId } = await a.cdp.send("Target.createBrowserContext");
    const listed = await a.cdp.send("Target.getBrowserContexts");
    assert.deepEqual(listed.browserContextIds, [browserContextId]);
    const hop = `${pages.url}/redirect?to=${encodeURIComponent(`${denied.url}/own-context`)}`;
    await a.cdp.send("Target.createTarget", { url: hop, browserContextId });
    await waitFor(
      () => pages.hits(`/redirect?to=${encodeURIComponent(`${denied.url}/own-context`)}`) > 0,
      {
        what: "the new context's page to load",
      },
    );
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(denied.hits(), 0, "the redirect did not reach the denied address");
    await a.cdp.send("Target.disposeBrowserContext", { browserContextId });
  });

  await t.step("methods that reach beyond the session are refused", async () => {
    const sid = await attach(a.cdp);
    const { root } = await a.cdp.send("DOM.getDocument", {}, sid);
    await assert.rejects(
      a.cdp.send("DOM.setFileInputFiles", { files: ["/etc/passwd"], nodeId: root.nodeId }, sid),
      /not available/,
    );
    await assert.rejects(a.cdp.send("Target.attachToBrowserTarget"), /not available/);
    await assert.rejects(a.cdp.send("Target.exposeDevToolsProtocol", { targetId: "x" }), /not/);
    await assert.rejects(a.cdp.send("Tracing.start", {}, sid), /not available/);
    await assert.rejects(a.cdp.send("SystemInfo.getProcessInfo"), /not available/);
    await assert.rejects(
      a.cdp.send("Network.loadNetworkResource", { url: "file:///etc/passwd" }, sid),
      /not available/,
    );
    await assert.rejects(
      a.cdp.send("Runtime.evaluate", { expression: "1" }),
      /needs a target's session/,
    );
    const own = (await a.cdp.send("Target.getBrowserContexts")).defaultBrowserContextId;
    await assert.rejects(
      a.cdp.send("Target.disposeBrowserContext", { browserContextId: own }),
      /cannot be disposed/,
    );
  });

  await t.step("downloads land in the session's own directory, listed by the API", async () => {
    await b.cdp.send("Browser.setDownloadBehavior", {
      behavior: "allow",
      downloadPath: downloadsElsewhere.path,
      eventsEnabled: true,
    });
    const elsewhere = `${downloadsElsewhere.path}/mine`;
    await a.cdp.send("Browser.setDownloadBehavior", {
      behavior: "allow",
      downloadPath: elsewhere,
      eventsEnabled: true,
    });
    const sid = await attach(a.cdp);
    await a.cdp.send("Page.navigate", { url: `${pages.url}/download` }, sid).catch(() => {});
    await a.cdp.next((e) =>
      e.method === "Browser.downloadProgress" && e.params.state === "completed"
    );
    const { body } = await api(base, `/api/sessions/${a.id}/downloads`, { token: ADMIN });
    assert.deepEqual(body.downloads.map((d: Json) => [d.name, d.bytes]), [["report.csv", 14]]);
    const file = await fetch(`${base}${body.downloads[0].url}`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    assert.equal(await file.text(), "id,total\n1,42\n");
    assert.equal(await Deno.stat(elsewhere).catch(() => null), null, "not where it asked");
    assert.deepEqual([...Deno.readDirSync(downloadsElsewhere.path)], []);
    assert.ok(
      !b.cdp.events.some((e) => e.method?.startsWith("Browser.download")),
      "the other client hears nothing of it",
    );
    const missing = await api(base, `/api/sessions/${a.id}/downloads/..%2Fmeta.json`, {
      token: ADMIN,
    });
    assert.notEqual(missing.status, 200);
  });

  await t.step("Browser.close ends its own session only", async () => {
    assert.deepEqual(await a.cdp.send("Browser.close"), {});
    const closed = await a.cdp.closed;
    assert.equal(closed.code, 1000);
    assert.match(closed.reason, /session stopped: browser_closed/);
    const ended = await waitFor(async () => {
      const s = await session(a.id);
      return s.active ? null : s;
    }, { what: "its session to end" });
    assert.equal(ended.reason, "browser_closed");
    const sid = await attach(b.cdp);
    const alive = await b.cdp.send("Runtime.evaluate", { expression: "6 * 7" }, sid);
    assert.equal(alive.result.value, 42);
    assert.equal((await session(b.id)).state, "active");
  });

  await t.step("a client leaving ends the session it opened", async () => {
    await b.cdp.close();
    const ended = await waitFor(async () => {
      const s = await session(b.id);
      return s.active ? null : s;
    }, { what: "its session to end" });
    assert.equal(ended.reason, "client_disconnected");
  });

  await t.step("tokens: /cdp needs an operator", async () => {
    const none = await upgrade(server.port, "/cdp");
    assert.equal(none.status, 401);
    const viewer = await upgrade(server.port, `/cdp?token=${VIEWER}`);
    assert.equal(viewer.status, 403);
    assert.match(viewer.body, /operator/);
  });

  await t.step("the OpenAPI document describes /cdp and what comes with it", async () => {
    const doc = (await api(base, "/openapi.json")).body;
    const cdp = doc.paths["/cdp"].get;
    for (const status of ["101", "401", "429"]) assert.ok(cdp.responses[status], status);
    const query = cdp.parameters.map((p: Json) => p.name);
    for (const name of ["width", "height", "record", "idle_timeout_s", "keep_alive_s", "token"]) {
      assert.ok(query.includes(name), `query ${name}`);
    }
    assert.ok(doc.paths["/cdp/{id}"].get.responses["101"]);
    assert.ok(doc.paths["/api/sessions/{id}/downloads"].get);
    assert.ok(doc.paths["/api/sessions/{id}/downloads/{name}"].get);
    const session = doc.components.schemas.Session.properties;
    assert.ok(session.cdp_url && session.opened_over_cdp);
  });

  await t.step("quotas: 429 with Retry-After before any WebSocket is made", async () => {
    const first = await open("", OPERATOR);
    const second = await open("", OPERATOR);
    const over = await upgrade(server.port, `/cdp?token=${OPERATOR}`);
    assert.equal(over.status, 429);
    assert.match(JSON.parse(over.body).error, /Token "ops" already holds its 2 sessions/);
    assert.ok(Number(over.headers.get("retry-after")) > 0);
    const third = await open(); // the admin has no per-token limit: the third slot
    const full = await upgrade(server.port, `/cdp?token=${ADMIN}`);
    assert.equal(full.status, 429);
    assert.match(JSON.parse(full.body).error, /All 3 session slots are in use/);
    assert.ok(Number(full.headers.get("retry-after")) > 0);
    for (const c of [first, second, third]) await c.cdp.close();
    await waitFor(async () => (await cdpIds()).length === 0, { what: "the sessions to end" });
  });

  await t.step("a client's commands keep its session; idle and max duration end it", async () => {
    const idle = await open("&idle_timeout_s=2");
    const busyUntil = Date.now() + 4_000;
    while (Date.now() < busyUntil) {
      await idle.cdp.send("Browser.getVersion");
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal((await session(idle.id)).state, "active", "commands count as activity");
    const long = await open("&max_duration_s=5");
    const [byIdle, byDuration] = await Promise.all([idle.cdp.closed, long.cdp.closed]);
    assert.equal(byIdle.reason, "session stopped: idle_timeout");
    assert.equal(byDuration.reason, "session stopped: max_duration");
    assert.equal((await session(idle.id)).reason, "idle_timeout");
  });
});
