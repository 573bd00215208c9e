/** `herald serve`: runs the hub (server/main.ts), with flags for the most used settings. */
import { parseArgs } from "node:util";
import { usageError } from "./options.js";

export const SERVE_HELP = `Usage: herald serve [options]

Serves the hub, its HTTP API and the web app on one port until SIGINT or SIGTERM. Every setting
of PROTOCOL.md "Running" is read from the environment (PORT, HOST, HERALD_DATA_DIR, HERALD_AUTH,
HERALD_JWT_SECRET, HERALD_DURABILITY, HERALD_MAX_PAYLOAD, ...); these flags override it.

Options:
  --port PORT          listen port, 0 for any free one (default 3000)
  --host HOST          listen address (default 127.0.0.1)
  --data-dir DIR       where the SQLite store keeps its files (default ./data)
  --auth MODE          dev or jwt (default dev)
  --durability MODE    full or normal (default full)
  --log-level LEVEL    fatal, error, warn, info, debug, trace or silent (default warn)
  -h, --help           show this help`;

/** Flag -> environment variable: the config module then validates them like any other setting. */
const FLAGS = {
  port: "PORT",
  host: "HOST",
  "data-dir": "HERALD_DATA_DIR",
  auth: "HERALD_AUTH",
  durability: "HERALD_DURABILITY",
  "log-level": "HERALD_LOG_LEVEL",
} as const;

export async function serve(args: string[]): Promise<void> {
  let values: Record<string, string | boolean | undefined>;
  try {
    const options = Object.fromEntries(Object.keys(FLAGS).map((flag) => [flag, { type: "string" as const }]));
    values = parseArgs({ args, options: { ...options, help: { type: "boolean", short: "h" } }, strict: true }).values;
  } catch (err) {
    throw usageError(err instanceof Error ? err.message : String(err));
  }
  if (values.help) {
    console.log(SERVE_HELP);
    return;
  }
  // Flags become settings, so the config module checks them like any other.
  const env: Record<string, string> = {};
  for (const [flag, variable] of Object.entries(FLAGS)) {
    const value = values[flag];
    if (typeof value === "string") env[variable] = value;
  }
  // Loaded only here: the client commands should not pay for the server's dependencies.
  const server = await import("../main.js");
  await server.serve(env);
}
