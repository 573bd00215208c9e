/**
 * What every client command of the CLI shares: the common flags (`--url`, `--user`, `--token`,
 * `--client-id`, `--help`), parsing with node:util parseArgs, connecting through the SDK, and
 * failing clearly (a message on stderr and a non-zero exit).
 */
import { parseArgs } from "node:util";
import { HeraldClient, HeraldError } from "../../shared/client/index.js";
import { clientDefaults } from "../config.js";

export const DEFAULT_URL = "http://127.0.0.1:3000";
/** How long a command waits for the server before it gives up (the SDK itself would retry forever). */
export const CONNECT_TIMEOUT_MS = 10_000;

/** Exit codes: 1 the server refused or could not be reached, 2 a usage error. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A fault to report and exit with; thrown by the commands, caught once in main.ts. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILURE,
  ) {
    super(message);
    this.name = "CliError";
  }
}

export const usageError = (message: string): CliError => new CliError(message, EXIT_USAGE);

export const COMMON_OPTIONS = {
  url: { type: "string" },
  user: { type: "string" },
  token: { type: "string" },
  "client-id": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

export const COMMON_HELP = `Common options:
  --url URL[,URL]    the Herald server, or the nodes of a cluster, comma-separated: the client
                     moves to the next when its node is gone (default $HERALD_URL or ${DEFAULT_URL}; HTTP commands
                     ask the first)
  --user ID          the user id in dev auth (default $HERALD_USER or "cli")
  --token JWT        the token in jwt auth (default $HERALD_TOKEN)
  --client-id ID     the client id (durable state belongs to (user, client id))
  -h, --help         show this help`;

type OptionSpec = Record<string, { type: "string" | "boolean"; short?: string }>;

export interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/** parseArgs in strict mode with the common options, its errors turned into usage errors. */
export function parse(args: string[], options: OptionSpec): Parsed {
  try {
    return parseArgs({ args, options: { ...COMMON_OPTIONS, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw usageError(err instanceof Error ? err.message : String(err));
  }
}

export interface Connection {
  /** The first of `urls`: where HTTP commands go. */
  url: string;
  /** Every node given, for the SDK. */
  urls: string[];
  user: string;
  token?: string;
  clientId: string;
}

/** The common flags, with defaults from the environment; `clientId` when --client-id is absent. */
export function connection(values: Record<string, unknown>, clientId: (user: string) => string): Connection {
  const str = (name: string): string | undefined => {
    const v = values[name];
    return typeof v === "string" && v !== "" ? v : undefined;
  };
  const defaults = clientDefaults();
  const user = str("user") ?? defaults.user ?? "cli";
  const urls = (str("url") ?? defaults.url ?? DEFAULT_URL)
    .split(",")
    .map((u) => u.trim())
    .filter((u) => u !== "");
  const c: Connection = {
    url: urls[0] ?? DEFAULT_URL,
    urls: urls.length > 0 ? urls : [DEFAULT_URL],
    user,
    clientId: str("client-id") ?? clientId(user),
  };
  const token = str("token") ?? defaults.token;
  if (token !== undefined) c.token = token;
  return c;
}

/** A client id for a one-shot command: fresh each time, so that it never replaces a running `sub`. */
export const oneShotClientId = (user: string): string =>
  `cli-${safe(user)}-${Math.random().toString(36).slice(2, 10)}`.slice(0, 64);

/** Client ids allow fewer characters than user ids (no dots). */
export const safe = (user: string): string => user.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 48);

/** Connects with the SDK; rejects with a CliError when the server refuses or cannot be reached in time. */
export async function connect(c: Connection, timeoutMs = CONNECT_TIMEOUT_MS): Promise<HeraldClient> {
  const client = new HeraldClient({
    url: c.urls,
    clientId: c.clientId,
    user: c.user,
    ...(c.token === undefined ? {} : { token: c.token }),
    socketOptions: { transports: ["websocket"] },
  });
  let refused: HeraldError | undefined;
  client.on("error", (err) => {
    refused ??= err;
  });
  const result = await new Promise<"connected" | "closed" | "timeout">((resolve) => {
    const timer = setTimeout(() => resolve("timeout"), timeoutMs);
    client.on("state", ({ to }) => {
      if (to !== "connected" && to !== "closed") return;
      clearTimeout(timer);
      resolve(to);
    });
    client.connect();
  });
  if (result === "connected") return client;
  await client.close();
  if (result === "timeout")
    throw new CliError(`could not connect to ${c.urls.join(", ")} within ${timeoutMs / 1000} s`);
  throw fromHerald(refused ?? new HeraldError("UNAVAILABLE", "the connection was refused"));
}

/** A server's refusal as a CLI error: its code and message. */
export function fromHerald(err: unknown): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof HeraldError) return new CliError(`${err.code}: ${err.message}`);
  return new CliError(err instanceof Error ? err.message : String(err));
}

/** A string flag, or undefined when absent. */
export function stringFlag(values: Parsed["values"], name: string): string | undefined {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
}

/** A whole number flag, or undefined when absent. */
export function intFlag(values: Record<string, unknown>, name: string, min: number): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (typeof raw !== "string" || !/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min) {
    throw usageError(`--${name} expects a whole number of at least ${min}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** Writes one line to stdout and waits while the pipe is full (a slow reader slows the acks). */
export function writeLine(value: unknown): Promise<void> {
  const line = `${JSON.stringify(value)}\n`;
  if (process.stdout.write(line)) return Promise.resolve();
  return new Promise((resolve) => process.stdout.once("drain", () => resolve()));
}

/** Exactly one positional argument after the command, or a usage error. */
export function positionals(given: string[], names: string[], help: string, optional: string[] = []): string[] {
  if (given.length < names.length || given.length > names.length + optional.length) {
    const all = [...names, ...optional.map((name) => `[${name}]`)].join(" ");
    throw usageError(`expected ${all}, got ${given.length} argument(s)\n\n${help}`);
  }
  return given;
}

/** A JSON argument of a command, or a usage error saying which one is not JSON. */
export function parseJson(text: string, name: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw usageError(`${name} is not valid JSON: ${err instanceof Error ? err.message : err}`);
  }
}

/**
 * An HTTP call to the server's API with the command's credentials (the stats and retry routes
 * have no socket event); a refusal becomes a CliError with the error's code.
 */
export async function api<T>(c: Connection, path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const headers: Record<string, string> =
    c.token === undefined ? { "x-herald-user": c.user } : { authorization: `Bearer ${c.token}` };
  if (init.body !== undefined) headers["content-type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(new URL(path, c.url), {
      method: init.method ?? "GET",
      headers,
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
      signal: AbortSignal.timeout(CONNECT_TIMEOUT_MS),
    });
  } catch (err) {
    throw new CliError(`could not reach ${c.url}: ${err instanceof Error ? err.message : err}`);
  }
  const body = (await res.json().catch(() => undefined)) as { error?: { code: string; message: string } } | undefined;
  if (!res.ok) {
    const error = body?.error;
    throw new CliError(error ? `${error.code}: ${error.message}` : `HTTP ${res.status} from ${path}`);
  }
  return body as T;
}
