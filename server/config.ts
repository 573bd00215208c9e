/**
 * The one reader of `process.env` (PROTOCOL.md "Running"). Every setting is validated once at
 * start, every bad variable is listed in one error, and the result is frozen.
 */
import os from "node:os";
import path from "node:path";
import { DEFAULTS } from "../shared/protocol.js";
import { NAME_RE } from "../shared/topics.js";

export type Durability = "full" | "normal";

export interface Config {
  /** Listen port; 0 takes any free port. @default 3000 */
  port: number;
  /** Listen address. @default "127.0.0.1" */
  host: string;
  /** Where the embedded SQLite store keeps its files. @default "./data" */
  dataDir: string;
  /** `dev`: `auth.user` is the user id and everyone is an admin; `jwt`: HS256 tokens. @default "dev" */
  auth: "dev" | "jwt";
  /** Required with `auth: "jwt"`: at least 32 bytes. */
  jwtSecret?: string;
  /** In `dev` auth, the users who are admins; unset, every user is. */
  admins?: readonly string[];
  /** Lets `dev` auth listen on an address other than loopback (with a warning on every start). @default false */
  devPublic: boolean;
  /** Browser origins allowed to open a socket besides the hub's own (PROTOCOL "Transport"). @default [] */
  allowedOrigins: readonly string[];
  /** When set, `/metrics` needs `Authorization: Bearer <token>`. */
  metricsToken?: string;
  /** Bytes waiting to be sent to one connection before its events are held back. @default 8 MiB */
  maxBuffered: number;
  /** Durable subscriptions and group memberships per user (`broadcast` counts, but is never refused). @default 10000 */
  maxSubscriptions: number;
  /** Open HTTP and socket connections at once; past it new ones are refused at accept. @default 50000 */
  maxConnections: number;
  /** `full`: fsync before a publish or ack is answered; `normal`: the OS page cache. @default "full" */
  durability: Durability;
  /** Largest payload in bytes of UTF-8 JSON. @default 65536 */
  maxPayload: number;
  /** Unacked messages outstanding per stream. @default 1024 */
  maxInflight: number;
  /**
   * Calls a second per connection (per user over HTTP): publish, prepare, commit, signal, request,
   * subscribe, history and presence take a token each. @default 1000
   */
  rateLimit: number;
  /** @default 30000 */
  ackTimeoutMs: number;
  /** @default 5 */
  maxDeliveries: number;
  /** @default 1000000 */
  maxBacklog: number;
  /** Messages kept per topic. @default 10000000 */
  retentionMessages: number;
  /** How long messages, publish ids and idle clients' state are kept. @default 30 days */
  retentionMs: number;
  /** @default 10000 */
  txnCheckMs: number;
  /** @default 10 */
  txnMaxChecks: number;
  /** `sqlite`: the embedded store in `dataDir`; `postgres`: the database at `databaseUrl`. @default "sqlite" */
  store: "sqlite" | "postgres";
  /** Required with `store: "postgres"`; its `options` may set the `search_path` for Herald's tables. */
  databaseUrl?: string;
  /** PostgreSQL connections this node opens at most (one writes at a time, the rest read). @default 10 */
  databasePool: number;
  /** Redis for the fan-out between the nodes of a cluster (redis-fanout.ts); needs `store: "postgres"`. */
  redisUrl?: string;
  /** What this cluster's Redis channels and keys start with, so that clusters can share a Redis. @default "herald" */
  redisPrefix: string;
  /** This node's name in logs, metrics and stats. @default "<hostname>:<port>" */
  nodeId: string;
  /** pino level; quiet by default. @default "warn" */
  logLevel: string;
  /** Where the built web app is. @default "web/dist" beside the package */
  webDir: string;
}

/**
 * Every environment variable this module reads: the server's settings, the cluster's and the
 * CLI's client defaults. The readers below accept only these names, so a new
 * variable is added here first; docs/operating.md describes each (test/docs-pages.test.ts).
 */
export const SETTINGS = [
  "PORT",
  "HOST",
  "HERALD_DATA_DIR",
  "HERALD_AUTH",
  "HERALD_JWT_SECRET",
  "HERALD_ADMINS",
  "HERALD_DEV_PUBLIC",
  "HERALD_ALLOWED_ORIGINS",
  "HERALD_METRICS_TOKEN",
  "HERALD_DURABILITY",
  "HERALD_MAX_PAYLOAD",
  "HERALD_MAX_INFLIGHT",
  "HERALD_MAX_BUFFERED",
  "HERALD_MAX_SUBSCRIPTIONS",
  "HERALD_MAX_CONNECTIONS",
  "HERALD_RATE_LIMIT",
  "HERALD_RETENTION_MESSAGES",
  "HERALD_RETENTION_MS",
  "HERALD_ACK_TIMEOUT_MS",
  "HERALD_MAX_DELIVERIES",
  "HERALD_MAX_BACKLOG",
  "HERALD_TXN_CHECK_MS",
  "HERALD_TXN_MAX_CHECKS",
  "HERALD_STORE",
  "HERALD_DATABASE_URL",
  "HERALD_DATABASE_POOL",
  "HERALD_REDIS_URL",
  "HERALD_REDIS_PREFIX",
  "HERALD_NODE_ID",
  "HERALD_LOG_LEVEL",
  "HERALD_WEB_DIR",
  "HERALD_URL",
  "HERALD_USER",
  "HERALD_TOKEN",
] as const;

export type Setting = (typeof SETTINGS)[number];

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid Herald settings:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

const MIN_JWT_SECRET_BYTES = 32;
const LOG_LEVELS = new Set(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);
const PACKAGE_ROOT = path.resolve(
  import.meta.dirname,
  import.meta.dirname.includes(`${path.sep}dist${path.sep}`) ? "../.." : "..",
);

/** The process's environment with `extra` variables on top (the CLI's `serve` flags). */
export function environment(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, ...extra };
}

/** The CLI's client defaults: HERALD_URL, HERALD_USER, HERALD_TOKEN (empty counts as unset). */
export function clientDefaults(): { url?: string; user?: string; token?: string } {
  const read = (name: Setting) => process.env[name] || undefined;
  const defaults: { url?: string; user?: string; token?: string } = {};
  const url = read("HERALD_URL");
  const user = read("HERALD_USER");
  const token = read("HERALD_TOKEN");
  if (url !== undefined) defaults.url = url;
  if (user !== undefined) defaults.user = user;
  if (token !== undefined) defaults.token = token;
  return defaults;
}

/**
 * Reads the settings from an environment (`process.env` by default) with `overrides` on top, as
 * tests and the CLI pass them. Throws a ConfigError that lists every bad variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Readonly<Config> {
  const problems: string[] = [];

  const int = (name: Setting, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    const value = Number(raw);
    if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
      problems.push(`${name}=${JSON.stringify(raw)}: expected a whole number from ${min} to ${max}`);
      return fallback;
    }
    return value;
  };
  const oneOf = <T extends string>(name: Setting, fallback: T, allowed: readonly T[]): T => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    if (!(allowed as readonly string[]).includes(raw)) {
      problems.push(`${name}=${JSON.stringify(raw)}: expected one of ${allowed.join(", ")}`);
      return fallback;
    }
    return raw as T;
  };
  const str = (name: Setting): string | undefined => (env[name] === "" ? undefined : env[name]);
  /** A comma-separated list; blanks around items and empty items are dropped. */
  const list = (name: Setting): string[] | undefined =>
    str(name)
      ?.split(",")
      .map((item) => item.trim())
      .filter((item) => item !== "");
  const flag = (name: Setting): boolean => oneOf(name, "0", ["0", "1"] as const) === "1";

  const port = int("PORT", DEFAULTS.port, 0, 65535);
  const config: Config = {
    port,
    host: str("HOST") ?? DEFAULTS.host,
    dataDir: path.resolve(str("HERALD_DATA_DIR") ?? DEFAULTS.dataDir),
    auth: oneOf("HERALD_AUTH", "dev", ["dev", "jwt"] as const),
    devPublic: flag("HERALD_DEV_PUBLIC"),
    allowedOrigins: (list("HERALD_ALLOWED_ORIGINS") ?? []).map((origin) => {
      const normal = originOf(origin);
      if (normal === undefined) {
        problems.push(
          `HERALD_ALLOWED_ORIGINS: ${JSON.stringify(origin)} is not an origin such as https://chat.example.com`,
        );
      }
      return normal ?? origin;
    }),
    maxBuffered: int("HERALD_MAX_BUFFERED", DEFAULTS.maxBuffered, 64 * 1024),
    maxSubscriptions: int("HERALD_MAX_SUBSCRIPTIONS", DEFAULTS.maxSubscriptions, 1),
    maxConnections: int("HERALD_MAX_CONNECTIONS", 50_000, 1),
    durability: oneOf("HERALD_DURABILITY", "full", ["full", "normal"] as const),
    maxPayload: int("HERALD_MAX_PAYLOAD", DEFAULTS.maxPayload, 1, 64 * 1024 * 1024),
    maxInflight: int("HERALD_MAX_INFLIGHT", DEFAULTS.maxInflight, 1, 1_000_000),
    rateLimit: int("HERALD_RATE_LIMIT", DEFAULTS.rateLimit, 1),
    ackTimeoutMs: int("HERALD_ACK_TIMEOUT_MS", DEFAULTS.ackTimeoutMs, 1),
    maxDeliveries: int("HERALD_MAX_DELIVERIES", DEFAULTS.maxDeliveries, 1),
    maxBacklog: int("HERALD_MAX_BACKLOG", DEFAULTS.maxBacklog, 1),
    retentionMessages: int("HERALD_RETENTION_MESSAGES", DEFAULTS.retentionMessages, 1),
    retentionMs: int("HERALD_RETENTION_MS", DEFAULTS.retentionMs, 1),
    txnCheckMs: int("HERALD_TXN_CHECK_MS", DEFAULTS.txnCheckMs, 1),
    txnMaxChecks: int("HERALD_TXN_MAX_CHECKS", DEFAULTS.txnMaxChecks, 1),
    store: oneOf("HERALD_STORE", "sqlite", ["sqlite", "postgres"] as const),
    databasePool: int("HERALD_DATABASE_POOL", 10, 2, 1000),
    redisPrefix: str("HERALD_REDIS_PREFIX") ?? "herald",
    nodeId: str("HERALD_NODE_ID") ?? `${os.hostname()}:${port}`,
    logLevel: str("HERALD_LOG_LEVEL") ?? "warn",
    webDir: path.resolve(str("HERALD_WEB_DIR") ?? path.join(PACKAGE_ROOT, "web", "dist")),
  };
  const jwtSecret = str("HERALD_JWT_SECRET");
  if (jwtSecret !== undefined) config.jwtSecret = jwtSecret;
  const admins = list("HERALD_ADMINS");
  if (admins !== undefined) {
    for (const admin of admins) {
      if (!NAME_RE.test(admin)) problems.push(`HERALD_ADMINS: ${JSON.stringify(admin)} is not a user id`);
    }
    config.admins = admins;
  }
  const metricsToken = str("HERALD_METRICS_TOKEN");
  if (metricsToken !== undefined) config.metricsToken = metricsToken;
  const databaseUrl = str("HERALD_DATABASE_URL");
  if (databaseUrl !== undefined) config.databaseUrl = databaseUrl;
  const redisUrl = str("HERALD_REDIS_URL");
  if (redisUrl !== undefined) config.redisUrl = redisUrl;

  Object.assign(config, overrides);

  if (config.auth === "jwt" && !config.jwtSecret) problems.push("HERALD_JWT_SECRET is required when HERALD_AUTH=jwt");
  if (config.auth === "jwt" && config.jwtSecret && Buffer.byteLength(config.jwtSecret) < MIN_JWT_SECRET_BYTES) {
    // HS256 is only as strong as its key: a short secret can be found by brute force from one token.
    problems.push(`HERALD_JWT_SECRET: at least ${MIN_JWT_SECRET_BYTES} bytes (openssl rand -base64 32 makes one)`);
  }
  if (config.auth === "dev" && !config.devPublic && !isLoopback(config.host)) {
    // In dev auth anyone may claim any user id and is an admin: only the own machine may reach it.
    problems.push(
      `HOST=${config.host} with HERALD_AUTH=dev: every peer could claim any user and be admin; use HERALD_AUTH=jwt, a loopback HOST, or HERALD_DEV_PUBLIC=1 to allow it anyway`,
    );
  }
  if (config.store === "postgres" && !config.databaseUrl) {
    problems.push("HERALD_DATABASE_URL is required when HERALD_STORE=postgres");
  }
  if (config.redisUrl && config.store !== "postgres") {
    // Nodes on SQLite files share nothing: there is no cluster to fan out to.
    problems.push("HERALD_REDIS_URL needs HERALD_STORE=postgres: the nodes of a cluster share one database");
  }
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(config.redisPrefix)) {
    problems.push(`HERALD_REDIS_PREFIX=${JSON.stringify(config.redisPrefix)}: 1-64 of A-Z a-z 0-9 _ . : -`);
  }
  if (!LOG_LEVELS.has(config.logLevel)) {
    problems.push(`HERALD_LOG_LEVEL=${JSON.stringify(config.logLevel)}: expected one of ${[...LOG_LEVELS].join(", ")}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}

/** Whether a listen address is reachable from this machine only (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host);
}

/** `scheme://host[:port]` as browsers send it in `Origin`, or undefined for anything else. */
export function originOf(text: string): string | undefined {
  try {
    const url = new URL(text);
    if (url.origin === "null" || url.pathname !== "/" || url.search || url.hash || url.username) return undefined;
    return url.origin;
  } catch {
    return undefined;
  }
}
