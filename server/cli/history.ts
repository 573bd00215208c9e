/** `herald history TOPIC`: prints stored messages of a topic, one JSON line each, in ascending seq. */
import {
  COMMON_HELP,
  connect,
  connection,
  fromHerald,
  intFlag,
  oneShotClientId,
  parse,
  positionals,
  writeLine,
} from "./options.js";

export const HISTORY_HELP = `Usage: herald history TOPIC [options]

Prints stored messages of TOPIC as JSON lines, in ascending seq: the newest ones, the newest
before --before, or the oldest after --after (both: the oldest in between).

Options:
  --before SEQ       only messages with a lower seq
  --after SEQ        only messages with a higher seq
  --limit N          at most N messages (default 50, at most 500)
${COMMON_HELP}`;

export async function history(args: string[]): Promise<void> {
  const { values, positionals: given } = parse(args, {
    before: { type: "string" },
    after: { type: "string" },
    limit: { type: "string" },
  });
  if (values.help) {
    console.log(HISTORY_HELP);
    return;
  }
  const [topic] = positionals(given, ["TOPIC"], HISTORY_HELP) as [string];
  const query: { before?: number; after?: number; limit?: number } = {};
  const before = intFlag(values, "before", 1);
  const after = intFlag(values, "after", 0);
  const limit = intFlag(values, "limit", 1);
  if (before !== undefined) query.before = before;
  if (after !== undefined) query.after = after;
  if (limit !== undefined) query.limit = limit;
  const client = await connect(connection(values, oneShotClientId));
  try {
    const { messages } = await client.history(topic, query);
    for (const message of messages) await writeLine(message);
  } catch (err) {
    throw fromHerald(err);
  } finally {
    await client.close();
  }
}
