/**
 * The OpenAPI document as a client developer uses it: a real server's `/openapi.json` turned into
 * types by openapi-typescript, a script using openapi-fetch type-checked by `deno check` (and
 * refused when a param has the wrong type), then run against the server.
 */
import assert from "node:assert/strict";
import openapiTS, { astToString } from "openapi-typescript";
import { api, ROOT_DIR, startServer, startTarget, tempDir, waitForJob } from "./helpers.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

/** A client script creating an http-bench job with `params` (TypeScript source). */
const clientScript = (params: string) => `
import createClient from "openapi-fetch";
import type { paths } from "./schema.d.ts";

const [baseUrl, target] = Deno.args as [string, string];
const client = createClient<paths>({ baseUrl });
const { data, error, response } = await client.POST("/api/jobs", {
  body: { type: "http-bench", params: ${params} },
});
if (error) throw new Error(\`\${response.status}: \${error.error}\`);
const id: string = data.id;
const max: number = data.max_attempts;
console.log(JSON.stringify({ id, max, status: response.status }));
`;

async function deno(args: string[], cwd: string) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code, out: dec.decode(stdout), err: dec.decode(stderr) };
}

Deno.test("a client generated from /openapi.json type-checks, catches a wrong param, creates a job", async (t) => {
  await using server = await startServer();
  await using target = startTarget();
  await using dir = await tempDir();
  const config = `${ROOT_DIR}deno.json`;
  let doc: Json;

  await t.step("every operation has a unique operationId and its common answers", async () => {
    doc = await (await fetch(`${server.url}/openapi.json`)).json();
    const ops = Object.entries(doc.paths as Record<string, Record<string, Json>>)
      .flatMap(([path, methods]) => Object.entries(methods).map(([m, op]) => ({ path, m, op })));
    const ids = ops.map((o) => o.op.operationId);
    assert.ok(ops.length >= 40, `${ops.length} operations`);
    assert.deepEqual(ids.filter((id) => typeof id !== "string"), [], "every operation has one");
    assert.equal(new Set(ids).size, ids.length, "operationIds are unique");
    for (const { path, m, op } of ops) {
      const codes = Object.keys(op.responses);
      if (op.security) assert.ok(codes.includes("401"), `${m} ${path}: 401`);
      if (op.requestBody?.content?.["application/json"]) {
        for (const code of ["400", "413", "415"]) {
          assert.ok(codes.includes(code), `${m} ${path}: ${code}`);
        }
      }
    }
    const create = doc.paths["/api/jobs"].post;
    assert.deepEqual(Object.keys(create.responses), [
      "202",
      "400",
      "401",
      "403",
      "413",
      "415",
      "429",
      "503",
    ]);
    const union = doc.components.schemas.CreateJob;
    assert.equal(union.discriminator.propertyName, "type");
    assert.deepEqual(Object.keys(union.discriminator.mapping).sort(), [
      "browser-bench",
      "function",
      "http-bench",
      "noop",
      "replay",
      "session",
    ]);
    assert.equal(
      doc.components.schemas.CreateHttpBenchJob.properties.params.$ref,
      "#/components/schemas/HttpBenchParams",
    );
  });

  await t.step("openapi-typescript turns it into types", async () => {
    // `defaultNonNullable: false` (`--default-non-nullable=false`): by default openapi-typescript
    // makes every property with a default required, and the params' defaults are exactly what a
    // client may leave out.
    const types = astToString(await openapiTS(doc, { defaultNonNullable: false }));
    await Deno.writeTextFile(`${dir.path}/schema.d.ts`, types);
    assert.match(types, /"\/api\/jobs": \{/);
    assert.match(types, /type: "http-bench";/);
  });

  await t.step("deno check passes a typed call and refuses a wrong param type", async () => {
    const params =
      `{ url: \`\${target}/\`, requests: 20, concurrency: 2, thresholds: ["p95<5000"] }`;
    await Deno.writeTextFile(`${dir.path}/client.ts`, clientScript(params));
    const ok = await deno(["check", "--config", config, "client.ts"], dir.path);
    assert.equal(ok.code, 0, ok.err);

    await Deno.writeTextFile(
      `${dir.path}/wrong.ts`,
      clientScript(`{ url: \`\${target}/\`, concurrency: "two" }`),
    );
    const wrong = await deno(["check", "--config", config, "wrong.ts"], dir.path);
    assert.notEqual(wrong.code, 0, "a string for concurrency must not type-check");
    assert.match(wrong.err, /TS2322|TS2769/);
    assert.match(wrong.err, /string.*number|number.*string/s);

    await Deno.writeTextFile(
      `${dir.path}/unknown.ts`,
      clientScript(`{ url: \`\${target}/\`, concurency: 2 }`),
    );
    const unknown = await deno(["check", "--config", config, "unknown.ts"], dir.path);
    assert.notEqual(unknown.code, 0, "a misspelt param must not type-check");
    assert.match(unknown.err, /concurency/);
  });

  await t.step("the checked script creates the job on the server", async () => {
    const run = await deno([
      "run",
      "--config",
      config,
      `--allow-net=127.0.0.1:${server.port}`,
      "client.ts",
      server.url,
      target.url,
    ], dir.path);
    assert.equal(run.code, 0, run.err);
    const { id, max, status } = JSON.parse(run.out);
    assert.equal(status, 202);
    assert.equal(max, 3);
    const job = await waitForJob(server.url, id);
    assert.equal(job.status, "succeeded", JSON.stringify(job.error));
    assert.equal(job.result.requests, 20);
    assert.equal(job.result.thresholds.passed, true);
    assert.equal((await api(server.url, `/api/jobs/${id}`)).body.type, "http-bench");
  });
});
