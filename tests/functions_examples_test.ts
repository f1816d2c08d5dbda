/**
 * The function examples deployed as a user would on a real server and Chromium: the login example
 * returns its data, the scheduled one runs on its schedule, and a browser function is a live
 * session meanwhile (watched over the session WebSocket, recordable).
 */
import assert from "node:assert/strict";
import { api, startServer, waitFor, waitForJob } from "./helpers.ts";
import { openViewer } from "./session_helpers.ts";

const PASSWORD = "correct horse";

/** A site with a sign-in form and an account page that needs the cookie it sets. */
function startSite() {
  const ac = new AbortController();
  const html = (body: string, headers: Record<string, string> = {}) =>
    new Response(`<!doctype html><html>${body}</html>`, {
      headers: { "content-type": "text/html; charset=utf-8", ...headers },
    });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    async (req) => {
      const url = new URL(req.url);
      if (url.pathname === "/login" && req.method === "POST") {
        const form = await req.formData();
        if (form.get("password") !== PASSWORD) return html("<title>Denied</title>", {});
        return new Response(null, {
          status: 303,
          headers: { location: "/account", "set-cookie": `user=${form.get("user")}; Path=/` },
        });
      }
      if (url.pathname === "/login") {
        return html(`<title>Sign in</title><form method=post action=/login>
          <label>User <input name=user></label>
          <label>Password <input name=password type=password></label>
          <button>Sign in</button></form>`);
      }
      if (url.pathname === "/account") {
        const user = /user=(\w+)/.exec(req.headers.get("cookie") ?? "")?.[1];
        if (!user) return new Response(null, { status: 303, headers: { location: "/login" } });
        return html(`<title>Account of ${user}</title><table><tbody>
          <tr><td>order 1</td><td>3 books</td></tr><tr><td>order 2</td><td>1 lamp</td></tr>
          </tbody></table>`);
      }
      return html("<title>Status</title><p>all good");
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    async [Symbol.asyncDispose]() {
      ac.abort();
      await server.finished;
    },
  };
}

const example = (name: string) =>
  Deno.readTextFile(new URL(`../examples/${name}`, import.meta.url));

Deno.test("function examples: signing in with a browser, and a scheduled run", async (t) => {
  await using site = startSite();
  await using server = await startServer();
  const base = server.url;

  await t.step("examples/function_login.ts signs in and returns the account's orders", async () => {
    const put = await api(base, "/api/functions/login", {
      method: "PUT",
      json: { code: await example("function_login.ts") },
    });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    const res = await api(base, "/api/functions/login/invoke?wait=60", {
      method: "POST",
      json: { params: { url: `${site.url}/login`, user: "ada", password: PASSWORD } },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, "succeeded", res.body.error);
    assert.deepEqual(res.body.result, {
      title: "Account of ada",
      orders: ["order 1\t3 books", "order 2\t1 lamp"],
    });
    const { body } = await api(base, `/api/jobs/${res.body.id}/artifacts`);
    assert.deepEqual(body.artifacts.map((a: { path: string }) => a.path), ["files/account.png"]);
    const png = new Uint8Array(
      await (await fetch(`${base}${body.artifacts[0].url}`)).arrayBuffer(),
    );
    assert.deepEqual([...png.slice(1, 4)], [0x50, 0x4e, 0x47]);
    const logs = (await api(base, `/api/jobs/${res.body.id}/logs`)).body.logs;
    assert.ok(logs.some((l: { message: string }) => l.message === "signed in as ada"));
  });

  await t.step(
    "a browser function is a live session a viewer watches, and is recorded",
    async () => {
      // The page keeps changing while the viewer watches: a still page sends one frame, and a
      // spare page may have loaded it before the viewer joins.
      const code = `export default async ({ page, params }) => {
      await page.goto(params.url);
      for (let i = 1; i <= 16; i++) {
        await page.fill("input[name=user]", "ada ".repeat(i));
        await page.waitForTimeout(250);
      }
      return await page.title();
    }`;
      const res = await api(base, "/api/jobs", {
        method: "POST",
        json: {
          type: "function",
          params: { code, params: { url: `${site.url}/login` }, record: true },
          max_attempts: 1,
        },
      });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      const id = res.body.id;
      const session = await waitFor(async () => {
        const { body } = await api(base, `/api/sessions/${id}`);
        return body.state === "active" ? body : null;
      }, { what: "the function's session to be active" });
      const viewer = await openViewer(session.ws_url);
      try {
        await viewer.waitFrames(2, 15_000);
      } finally {
        await viewer.close();
      }
      const job = await waitForJob(base, id, undefined, { timeoutMs: 60_000 });
      assert.equal(job.status, "succeeded", job.error);
      assert.equal(job.result, "Sign in");
      const recording = await waitFor(async () => {
        const { body } = await api(base, "/api/recordings");
        return body.recordings?.find((r: { session_id: string }) => r.session_id === id);
      }, { what: "the function's recording" });
      assert.ok(recording);
    },
  );

  await t.step("examples/scheduled_function.ts runs on its schedule", async () => {
    const code = (await example("scheduled_function.ts"))
      .replace(`"https://example.com/"`, JSON.stringify(`${site.url}/status`));
    const put = await api(base, "/api/functions/uptime", {
      method: "PUT",
      json: { code, schedule: "* * * * * *", timeout_s: 30 },
    });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    const run = await waitFor(async () => {
      const { body } = await api(base, "/api/jobs?type=function&status=succeeded&limit=100");
      return body.jobs.find((j: { params: { function?: { name: string } } }) =>
        j.params.function?.name === "uptime"
      );
    }, { timeoutMs: 60_000, what: "a scheduled run to succeed" });
    assert.equal((await api(base, "/api/functions/uptime", { method: "DELETE" })).status, 200);
    assert.equal(run.result.status, 200);
    assert.equal(run.result.title, "Status");
    assert.ok(run.params.function.tick);
    const { body } = await api(base, `/api/jobs/${run.id}/artifacts`);
    assert.deepEqual(body.artifacts.map((a: { path: string }) => a.path), ["files/page.png"]);
  });
});
