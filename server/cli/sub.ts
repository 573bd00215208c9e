/**
 * `herald sub TOPIC`: prints each message as one JSON line and acks it once printed, until SIGINT.
 * The default client id is stable (`cli-<user>`), so the next `sub` resumes after what this one
 * printed: the SDK's exactly-once processing makes each message appear once across runs.
 *
 * `herald sub TOPIC --group NAME` consumes as a member of a consumer group: each message goes to
 * one member. Its default client id is fresh each run, so that several members can run side by
 * side without replacing each other; nothing is lost between runs, as the group keeps its own
 * cursor whichever members come and go (PROTOCOL.md "Groups").
 */
import type { HeraldClient } from "../../shared/client/index.js";
import {
  CliError,
  COMMON_HELP,
  connect,
  connection,
  fromHerald,
  intFlag,
  oneShotClientId,
  parse,
  positionals,
  safe,
  stringFlag,
  writeLine,
} from "./options.js";

export const SUB_HELP = `Usage: herald sub TOPIC [options]

Subscribes to TOPIC and prints every message as one JSON line on stdout, acking each once printed,
until interrupted (Ctrl-C). The subscription is durable: the next run with the same user and
client id goes on after the last message printed. Gaps (messages removed by retention before they
were printed) are reported on stderr. Reconnects by itself when the server goes away.

With --group, it joins consumer group NAME of TOPIC instead: each message goes to one live member
of the group, so several "herald sub --group" share the messages. Each line then also carries
"group" and "attempt" (2 or more: handed out again, since an earlier attempt was not acked within
HERALD_ACK_TIMEOUT_MS or its member went away).

Options:
  --from SEQ         replay from this seq (also what was printed before); with --group, only
                     when this creates the group
  --group NAME       consume as a member of consumer group NAME
${COMMON_HELP}
  (sub's --client-id defaults to cli-<user>, so that it resumes; with --group to a fresh id each
  run, so that members run side by side: the group's position is the group's, not the member's)

Examples:
  herald sub room:lobby --user bob
  herald sub room:jobs --group workers --user worker   # in two shells: they share the jobs`;

export async function sub(args: string[]): Promise<void> {
  const { values, positionals: given } = parse(args, { from: { type: "string" }, group: { type: "string" } });
  if (values.help) {
    console.log(SUB_HELP);
    return;
  }
  const [topic] = positionals(given, ["TOPIC"], SUB_HELP) as [string];
  const from = intFlag(values, "from", 1);
  const group = stringFlag(values, "group");
  const client = await connect(
    connection(values, group === undefined ? (user) => `cli-${safe(user)}` : oneShotClientId),
  );

  const done = new Promise<CliError | undefined>((resolve) => {
    const stop = () => resolve(undefined);
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    client.on("state", ({ to, reason }) => {
      if (to === "closed") resolve(new CliError(`connection closed: ${reason}`));
      else if (to === "disconnected" && reason !== "connect_error")
        console.error(`herald: disconnected (${reason}), reconnecting`);
    });
    client.on("error", (err) => console.error(`herald: ${err.code}: ${err.message}`));
  });

  try {
    await client.subscribe(topic, (message) => writeLine(message), {
      ...(from === undefined ? {} : { from }),
      ...(group === undefined ? {} : { group }),
      onGap: (gap) =>
        console.error(`herald: gap: messages ${gap.from}..${gap.to} of ${gap.topic} were removed by retention`),
    });
  } catch (err) {
    await client.close();
    throw fromHerald(err);
  }
  const failure = await done;
  await closeQuietly(client);
  if (failure) throw failure;
}

async function closeQuietly(client: HeraldClient): Promise<void> {
  try {
    await client.close();
  } catch {
    // Exiting anyway.
  }
}
