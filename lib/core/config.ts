/**
 * Configuration: every environment variable streamplay reads, with its default, in one typed
 * object. `loadConfig()` fails at start-up with a message naming the variable that is wrong.
 */

export type Role = "viewer" | "operator" | "admin";

export interface Token {
  name: string;
  token: string;
  role: Role;
  /** Live sessions this token may hold at once (absent: only STREAMPLAY_MAX_SESSIONS). */
  maxSessions?: number;
}

export interface Config {
  host: string;
  port: number;
  /**
   * Bounds on HTTP connections (see lib/http/serve.ts); `guard` false serves with Deno.serve
   * alone, for a reverse proxy in front that bounds them itself.
   */
  http: {
    guard: boolean;
    headerTimeoutMs: number;
    bodyTimeoutMs: number;
    idleTimeoutMs: number;
    /** Undefined: from the descriptor limit. */
    maxConnections: number | undefined;
    maxConnectionsPerAddress: number;
  };
  /** Base URL clients use to reach this process (for `ws_url`, `viewer_url`, ...). */
  publicUrl: string;
  /** Redis URL; undefined means "start an embedded redis-server". */
  redisUrl: string | undefined;
  redisPrefix: string;
  dataDir: string;
  dbPath: string;
  /** DuckDB worker threads (its writes are many small batches; reads are per request). */
  dbThreads: number;
  /** Jobs run at once by this process; 0 runs no worker pool here (API and history only). */
  concurrency: number;
  warmWorkers: number;
  /** How far ahead of its free slots a busy short-job type claims, in ms of its start rate (0: off). */
  claimAheadMs: number;
  /** A job enqueued by this process starts its Worker before the queue hands the job over. */
  prestart: boolean;
  /** Live sessions at once: across the cluster (the API answers 429 beyond) and per process. */
  maxSessions: number;
  /** Live video streams (one ffmpeg each) this process encodes at once. */
  maxStreams: number;
  /** Memory one function's process may use (its JS heap, and what it maps besides Deno's own). */
  functionMemoryMb: number;
  leaseMs: number;
  shutdownGraceMs: number;
  /**
   * SIGTERM/SIGINT end the process within this, whatever state Redis is in: jobs get at most
   * this less 3 s of their grace, and what could not be written to Redis goes to the spool.
   */
  stopTimeoutMs: number;
  jobTtlS: number;
  allowPrivate: boolean;
  allowHosts: string[];
  denyHosts: string[];
  tokens: Token[];
  chromiumPath: string;
  /** Recordings older than this many days are deleted (0 keeps them). */
  recordingRetentionDays: number;
  logLevel: "debug" | "info" | "warn" | "error";
  logFormat: "text" | "json";
  /**
   * Over this machine's CPU % (5 s average) new work is refused with 503; 100 (the default)
   * never refuses on CPU alone: load tests are meant to use the whole machine.
   */
  maxCpuPercent: number;
  maxMemoryPercent: number;
  /** Jobs that may wait beyond the worker slots before new ones get 429. */
  maxQueued: number;
  /** The 1 s sampler behind the dashboard, platform_samples and anomaly alerts. */
  monitor: boolean;
  metricsIntervalS: number;
  metricsRetentionDays: number;
  alertWebhook: string | undefined;
  anomalyZ: number;
  anomalyMinDurationS: number;
  /** Series watched for anomalies; empty means every watchable series. */
  anomalySeries: string[];
  /** Whether `/api/pressure` and `/metrics` answer without a token when tokens are on. */
  publicPressure: boolean;
  publicMetrics: boolean;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

type Env = Record<string, string | undefined>;

/** The variables and their defaults, as documented in the README's configuration table. */
export const CONFIG_DEFAULTS = {
  HOST: "127.0.0.1",
  PORT: "8000",
  STREAMPLAY_HTTP_GUARD: "true",
  STREAMPLAY_HEADER_TIMEOUT_S: "10",
  STREAMPLAY_BODY_TIMEOUT_S: "30",
  STREAMPLAY_IDLE_TIMEOUT_S: "60",
  STREAMPLAY_MAX_CONNECTIONS: "(nofile − 256) / 3, at most 4096",
  STREAMPLAY_MAX_CONNECTIONS_PER_IP: "128",
  STREAMPLAY_PUBLIC_URL: "http://<HOST>:<PORT>",
  REDIS_URL: "(embedded redis-server)",
  STREAMPLAY_REDIS_PREFIX: "streamplay",
  STREAMPLAY_DATA_DIR: "./data",
  STREAMPLAY_DB: "<STREAMPLAY_DATA_DIR>/streamplay.duckdb",
  STREAMPLAY_DB_THREADS: "1",
  STREAMPLAY_CONCURRENCY: "number of CPU cores (0: no worker pool in this process)",
  STREAMPLAY_WARM_WORKERS: "2",
  STREAMPLAY_CLAIM_AHEAD_MS: "50",
  STREAMPLAY_PRESTART: "true",
  STREAMPLAY_MAX_SESSIONS: "4",
  STREAMPLAY_MAX_STREAMS: "4",
  STREAMPLAY_FUNCTION_MEMORY_MB: "256",
  STREAMPLAY_LEASE_S: "15",
  STREAMPLAY_SHUTDOWN_GRACE_S: "10",
  STREAMPLAY_STOP_TIMEOUT_S: "10",
  STREAMPLAY_JOB_TTL_S: "86400",
  STREAMPLAY_ALLOW_PRIVATE: "true",
  STREAMPLAY_ALLOW_HOSTS: "(empty: any host)",
  STREAMPLAY_DENY_HOSTS: "(empty)",
  STREAMPLAY_TOKENS: "(empty: no authentication)",
  STREAMPLAY_TOKEN_MAX_SESSIONS: "(empty: no per-token limit)",
  STREAMPLAY_CHROMIUM: "/usr/bin/chromium",
  STREAMPLAY_RECORDING_RETENTION_DAYS: "30",
  STREAMPLAY_LOG_LEVEL: "info",
  STREAMPLAY_LOG_FORMAT: "text",
  STREAMPLAY_MAX_CPU_PERCENT: "100",
  STREAMPLAY_MAX_MEMORY_PERCENT: "95",
  STREAMPLAY_MAX_QUEUED: "10000",
  STREAMPLAY_MONITOR: "true",
  STREAMPLAY_METRICS_INTERVAL_S: "5",
  STREAMPLAY_METRICS_RETENTION_DAYS: "7",
  STREAMPLAY_ALERT_WEBHOOK: "(empty: no webhook)",
  STREAMPLAY_ANOMALY_Z: "3.5",
  STREAMPLAY_ANOMALY_MIN_DURATION_S: "10",
  STREAMPLAY_ANOMALY_SERIES: "(empty: every watched series)",
  STREAMPLAY_PUBLIC_PRESSURE: "false",
  STREAMPLAY_PUBLIC_METRICS: "false",
} as const;

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

function num(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be a number from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.toLowerCase();
  if (raw === undefined || raw === "") return fallback;
  if (["1", "true", "yes", "on"].includes(raw)) return true;
  if (["0", "false", "no", "off"].includes(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got "${env[name]}"`);
}

function webhookUrl(env: Env, name: string): string | undefined {
  const raw = env[name]?.trim();
  if (!raw) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name} must be an http(s) URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(`${name} must be an http(s) URL, got a ${url.protocol} URL`);
  }
  return url.href;
}

function list(env: Env, name: string): string[] {
  return (env[name] ?? "").split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
}

/**
 * Parses `name:token:role[:max_sessions]` entries separated by commas; `maxSessions` applies to
 * the entries that name none.
 */
export function parseTokens(raw: string | undefined, maxSessions?: number): Token[] {
  if (!raw || !raw.trim()) return [];
  const tokens: Token[] = [];
  for (const [i, entry] of raw.split(",").map((s) => s.trim()).filter(Boolean).entries()) {
    const [name, token, role, max, ...rest] = entry.split(":");
    if (!name || !token || !role || rest.length > 0) {
      throw new ConfigError(
        `STREAMPLAY_TOKENS entry ${i + 1} must be name:token:role or name:token:role:max_sessions`,
      );
    }
    if (max !== undefined && !/^[1-9][0-9]{0,3}$/.test(max)) {
      throw new ConfigError(
        `STREAMPLAY_TOKENS entry ${i + 1} ("${name}") has max_sessions "${max}"; ` +
          `use an integer from 1 to 9999`,
      );
    }
    if (role !== "viewer" && role !== "operator" && role !== "admin") {
      throw new ConfigError(
        `STREAMPLAY_TOKENS entry ${
          i + 1
        } ("${name}") has role "${role}"; use viewer, operator or admin`,
      );
    }
    if (token.length < 8) {
      throw new ConfigError(
        `STREAMPLAY_TOKENS entry ${i + 1} ("${name}") needs a token of 8+ characters`,
      );
    }
    const limit = max !== undefined ? Number(max) : maxSessions;
    tokens.push(
      limit === undefined ? { name, token, role } : { name, token, role, maxSessions: limit },
    );
  }
  return tokens;
}

export function isLoopbackHost(host: string): boolean {
  return host === "127.0.0.1" || host === "localhost" || host === "::1" || host === "[::1]" ||
    /^127\./.test(host);
}

export function loadConfig(env: Env = Deno.env.toObject()): Config {
  const host = env.HOST || CONFIG_DEFAULTS.HOST;
  const port = int(env, "PORT", 8000, 0, 65535);
  const dataDir = env.STREAMPLAY_DATA_DIR || CONFIG_DEFAULTS.STREAMPLAY_DATA_DIR;
  const tokenMax = env.STREAMPLAY_TOKEN_MAX_SESSIONS
    ? int(env, "STREAMPLAY_TOKEN_MAX_SESSIONS", 0, 1, 1000)
    : undefined;
  const tokens = parseTokens(env.STREAMPLAY_TOKENS, tokenMax);
  const logLevel = env.STREAMPLAY_LOG_LEVEL || "info";
  if (!["debug", "info", "warn", "error"].includes(logLevel)) {
    throw new ConfigError(
      `STREAMPLAY_LOG_LEVEL must be debug, info, warn or error, got "${logLevel}"`,
    );
  }
  const logFormat = env.STREAMPLAY_LOG_FORMAT || "text";
  if (logFormat !== "text" && logFormat !== "json") {
    throw new ConfigError(`STREAMPLAY_LOG_FORMAT must be text or json, got "${logFormat}"`);
  }
  const prefix = env.STREAMPLAY_REDIS_PREFIX || CONFIG_DEFAULTS.STREAMPLAY_REDIS_PREFIX;
  if (!/^[A-Za-z0-9_.:-]+$/.test(prefix)) {
    throw new ConfigError(`STREAMPLAY_REDIS_PREFIX may hold only letters, digits and _.:-`);
  }
  const anomalySeries = list(env, "STREAMPLAY_ANOMALY_SERIES");
  const publicHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  const seconds = (name: string, fallback: number, max: number) =>
    Math.round(num(env, name, fallback, 0.1, max) * 1000);
  return {
    host,
    port,
    http: {
      guard: bool(env, "STREAMPLAY_HTTP_GUARD", true),
      headerTimeoutMs: seconds("STREAMPLAY_HEADER_TIMEOUT_S", 10, 3600),
      bodyTimeoutMs: seconds("STREAMPLAY_BODY_TIMEOUT_S", 30, 86_400),
      idleTimeoutMs: seconds("STREAMPLAY_IDLE_TIMEOUT_S", 60, 86_400),
      maxConnections: env.STREAMPLAY_MAX_CONNECTIONS
        ? int(env, "STREAMPLAY_MAX_CONNECTIONS", 0, 1, 1_000_000)
        : undefined,
      maxConnectionsPerAddress: int(env, "STREAMPLAY_MAX_CONNECTIONS_PER_IP", 128, 1, 1_000_000),
    },
    publicUrl: (env.STREAMPLAY_PUBLIC_URL || `http://${publicHost}:${port}`).replace(/\/+$/, ""),
    redisUrl: env.REDIS_URL || undefined,
    redisPrefix: prefix,
    dataDir,
    dbPath: env.STREAMPLAY_DB || `${dataDir}/streamplay.duckdb`,
    dbThreads: int(env, "STREAMPLAY_DB_THREADS", 1, 1, 256),
    concurrency: int(env, "STREAMPLAY_CONCURRENCY", navigator.hardwareConcurrency || 2, 0, 10_000),
    warmWorkers: int(env, "STREAMPLAY_WARM_WORKERS", 2, 0, 1000),
    claimAheadMs: int(env, "STREAMPLAY_CLAIM_AHEAD_MS", 50, 0, 10_000),
    prestart: bool(env, "STREAMPLAY_PRESTART", true),
    maxSessions: int(env, "STREAMPLAY_MAX_SESSIONS", 4, 1, 1000),
    maxStreams: int(env, "STREAMPLAY_MAX_STREAMS", 4, 1, 1000),
    functionMemoryMb: int(env, "STREAMPLAY_FUNCTION_MEMORY_MB", 256, 32, 65_536),
    leaseMs: Math.round(num(env, "STREAMPLAY_LEASE_S", 15, 1, 3600) * 1000),
    shutdownGraceMs: Math.round(num(env, "STREAMPLAY_SHUTDOWN_GRACE_S", 10, 0, 3600) * 1000),
    stopTimeoutMs: Math.round(num(env, "STREAMPLAY_STOP_TIMEOUT_S", 10, 4, 3600) * 1000),
    jobTtlS: int(env, "STREAMPLAY_JOB_TTL_S", 86_400, 60, 365 * 86_400),
    allowPrivate: bool(env, "STREAMPLAY_ALLOW_PRIVATE", true),
    allowHosts: list(env, "STREAMPLAY_ALLOW_HOSTS"),
    denyHosts: list(env, "STREAMPLAY_DENY_HOSTS"),
    tokens,
    chromiumPath: env.STREAMPLAY_CHROMIUM || CONFIG_DEFAULTS.STREAMPLAY_CHROMIUM,
    recordingRetentionDays: num(env, "STREAMPLAY_RECORDING_RETENTION_DAYS", 30, 0, 36_500),
    logLevel: logLevel as Config["logLevel"],
    logFormat,
    maxCpuPercent: num(env, "STREAMPLAY_MAX_CPU_PERCENT", 100, 1, 100),
    maxMemoryPercent: num(env, "STREAMPLAY_MAX_MEMORY_PERCENT", 95, 1, 100),
    maxQueued: int(env, "STREAMPLAY_MAX_QUEUED", 10_000, 0, 100_000_000),
    monitor: bool(env, "STREAMPLAY_MONITOR", true),
    metricsIntervalS: int(env, "STREAMPLAY_METRICS_INTERVAL_S", 5, 1, 3600),
    metricsRetentionDays: num(env, "STREAMPLAY_METRICS_RETENTION_DAYS", 7, 0.01, 3650),
    alertWebhook: webhookUrl(env, "STREAMPLAY_ALERT_WEBHOOK"),
    anomalyZ: num(env, "STREAMPLAY_ANOMALY_Z", 3.5, 1, 100),
    anomalyMinDurationS: num(env, "STREAMPLAY_ANOMALY_MIN_DURATION_S", 10, 1, 3600),
    anomalySeries,
    publicPressure: bool(env, "STREAMPLAY_PUBLIC_PRESSURE", false),
    publicMetrics: bool(env, "STREAMPLAY_PUBLIC_METRICS", false),
  };
}

/** Refuses configurations that would be unsafe to serve, e.g. a public bind without tokens. */
export function checkServeSafety(config: Config): void {
  if (!isLoopbackHost(config.host) && config.tokens.length === 0) {
    throw new ConfigError(
      `HOST=${config.host} exposes the API beyond this machine; set STREAMPLAY_TOKENS ` +
        `(name:token:role,...) or bind HOST=127.0.0.1`,
    );
  }
}
