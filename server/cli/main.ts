/**
 * The `herald` command (bin/herald.js runs the built copy of this file): `serve`, `backup` (a copy
 * of the store's file, made beside the server), and the client commands `pub`, `sub`, `history`,
 * `request`, `stats`, `top` and `dead`, which speak to a server through the SDK (`stats`, `top`
 * and `dead --retry` through the HTTP API, which has the admin routes). Errors go to stderr with a non-zero exit: 2
 * for a usage error, 1 for a refusal, an unreachable server or a failed backup.
 */
import { backup } from "./backup.js";
import { dead } from "./dead.js";
import { history } from "./history.js";
import { CliError, EXIT_USAGE, fromHerald } from "./options.js";
import { pub } from "./pub.js";
import { request } from "./request.js";
import { serve } from "./serve.js";
import { stats } from "./stats.js";
import { sub } from "./sub.js";
import { top } from "./top.js";

const COMMANDS = new Map<string, (args: string[]) => Promise<void>>([
  ["serve", serve],
  ["backup", backup],
  ["pub", pub],
  ["sub", sub],
  ["history", history],
  ["request", request],
  ["stats", stats],
  ["top", top],
  ["dead", dead],
]);

const HELP = `Usage: herald COMMAND [options]

Commands:
  serve               run a Herald server
  backup DEST         copy the store to the new file DEST, also while the server runs
  pub TOPIC JSON      publish a message and print the reply
  sub TOPIC           print messages as JSON lines until Ctrl-C (durable: resumes where it stopped)
  sub TOPIC --group NAME
                      the same as a member of a consumer group: the members share the messages
  history TOPIC       print stored messages as JSON lines
  request USER METHOD [JSON]
                      call METHOD on a user's client (the SDK's onRequest) and print the result
  stats               topics with head and rate; subscriptions and groups with lag, oldest
                      unacked message and live members (admins)
  top                 the same as a live view, with rates and latency from /metrics (admins)
  dead TOPIC GROUP    print a consumer group's dead letters; --retry hands them back

Topics: room:<name>, user:<id> (a user's inbox), broadcast, dead:<topic>:<group> (a group's
dead letters).
Run "herald COMMAND --help" for the options of a command.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (command === undefined) {
    console.error(HELP);
    return EXIT_USAGE;
  }
  if (command === "--help" || command === "-h" || command === "help") {
    console.log(HELP);
    return 0;
  }
  const run = COMMANDS.get(command);
  if (!run) {
    console.error(`herald: unknown command ${JSON.stringify(command)}\n\n${HELP}`);
    return EXIT_USAGE;
  }
  try {
    await run(args);
    return 0;
  } catch (err) {
    const failure = err instanceof CliError ? err : fromHerald(err);
    console.error(`herald ${command}: ${failure.message}`);
    return failure.exitCode;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error("herald: unexpected failure:", err);
    process.exitCode = 1;
  },
);
