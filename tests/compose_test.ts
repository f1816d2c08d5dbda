/**
 * docker-compose.yml checked without a Docker engine: each service that runs the image, with the
 * Dockerfile's ENV and a user's .env filled in, passes the server's start-up checks, runs a real
 * task, reaches Redis by service name, keeps its data in a volume and publishes a usable URL.
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import { checkServeSafety, isLoopbackHost, loadConfig } from "../lib/core/config.ts";
import { ROOT_DIR } from "./helpers.ts";
import denoJson from "../deno.json" with { type: "json" };

// deno-lint-ignore no-explicit-any
type Json = any;

/** Compose's variable substitution for the forms the file uses. */
function interpolate(text: string, env: Record<string, string>): string {
  return text.replace(/\$\{(\w+)(?::([-?])([^}]*))?\}/g, (_, name, op, arg) => {
    const value = env[name];
    if (value) return value;
    if (op === "?") throw new Error(`required variable ${name} is missing: ${arg}`);
    return op === "-" ? arg : "";
  });
}

/** The ENV of the Dockerfile (`ENV A=1 \ B=2` lines), and its WORKDIR. */
function dockerfile(text: string): { env: Record<string, string>; workdir: string } {
  const joined = text.replace(/\\\n/g, " ");
  const env: Record<string, string> = {};
  for (const line of joined.split("\n").filter((l) => /^ENV\s/.test(l))) {
    for (const [, k, v] of line.slice(4).matchAll(/(\w+)=(\S+)/g)) env[k!] = v!;
  }
  const workdir = /^WORKDIR\s+(\S+)/m.exec(joined)?.[1] ?? "/";
  return { env, workdir };
}

/** A user's .env, as .env.example asks for. */
const USER_ENV = {
  STREAMPLAY_TOKENS: "ops:a-long-random-token-1:admin",
  STREAMPLAY_PUBLIC_URL: "http://streamplay.example:8000",
  STREAMPLAY_WORKER_PUBLIC_URL: "http://streamplay.example:8001",
};

async function load(env: Record<string, string>) {
  const compose = parse(
    interpolate(await Deno.readTextFile(`${ROOT_DIR}docker-compose.yml`), env),
  ) as Json;
  const image = dockerfile(await Deno.readTextFile(`${ROOT_DIR}Dockerfile`));
  return { compose, image };
}

Deno.test("each docker-compose service that runs streamplay passes the server's start-up checks", async () => {
  const { compose, image } = await load(USER_ENV);
  const ours = Object.entries(compose.services as Record<string, Json>)
    .filter(([, s]) => s.build === ".");
  assert.deepEqual(ours.map(([name]) => name).sort(), ["web", "worker"]);
  for (const [name, service] of ours) {
    const [task, taskName] = service.command;
    assert.equal(task, "task", `${name}: runs a deno task`);
    assert.ok(taskName in denoJson.tasks, `${name}: deno.json has task ${taskName}`);
    const env = { ...image.env, ...service.environment };
    const config = loadConfig(env);
    assert.doesNotThrow(() => checkServeSafety(config), `${name}: serve safety`);
    assert.ok(config.tokens.length > 0, `${name}: tokens, since it listens on ${config.host}`);

    const redis = new URL(env.REDIS_URL);
    assert.ok(compose.services[redis.hostname], `${name}: Redis is the ${redis.hostname} service`);

    const ports = (service.ports ?? []).map((p: string) => p.split(":").map(Number));
    const published = ports.find(([, inner]: number[]) => inner === config.port);
    assert.ok(published, `${name}: port ${config.port} is published (${service.ports})`);
    const publicUrl = new URL(config.publicUrl);
    assert.ok(!isLoopbackHost(publicUrl.hostname), `${name}: ${config.publicUrl} is loopback`);
    assert.equal(Number(publicUrl.port), published[0], `${name}: public URL names the port`);

    const dataDir = new URL(config.dataDir, `file://${image.workdir}/`).pathname.replace(/\/$/, "");
    assert.ok(
      (service.volumes ?? []).some((v: string) => v.split(":")[1] === dataDir),
      `${name}: ${dataDir} is a volume`,
    );
  }
  const publicUrls = ours.map(([, s]) => s.environment.STREAMPLAY_PUBLIC_URL);
  assert.equal(new Set(publicUrls).size, publicUrls.length, "each service its own public URL");
});

Deno.test("docker compose refuses to start without the tokens and public URLs, naming each", async () => {
  for (const name of Object.keys(USER_ENV)) {
    const env: Record<string, string> = { ...USER_ENV };
    delete env[name];
    await assert.rejects(
      load(env),
      new RegExp(`required variable ${name} is missing: set ${name}`),
    );
  }
});

Deno.test(".env.example sets what the compose file requires, and .env stays out of the image", async () => {
  const example = Object.fromEntries(
    (await Deno.readTextFile(`${ROOT_DIR}.env.example`)).split("\n")
      .filter((l) => /^\w+=/.test(l)).map((l) => l.split(/=(.*)/s).slice(0, 2)),
  );
  assert.deepEqual(Object.keys(example).sort(), Object.keys(USER_ENV).sort());
  await load(example);
  const ignored = (await Deno.readTextFile(`${ROOT_DIR}.dockerignore`)).split("\n");
  for (const path of [".env", "node_modules", "data"]) assert.ok(ignored.includes(path), path);
});
