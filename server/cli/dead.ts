/**
 * `herald dead TOPIC GROUP`: the dead letters of a consumer group (`dead:TOPIC:GROUP`), one JSON
 * line each, oldest first; `--retry` hands them back to the group (the admin route
 * `POST /api/v1/topics/:topic/groups/:group/retry`) with their delivery count reset.
 */
import {
  api,
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

export const DEAD_HELP = `Usage: herald dead TOPIC GROUP [options]

Prints the dead letters of consumer group GROUP of TOPIC (the messages whose last attempt failed,
kept in dead:TOPIC:GROUP) as JSON lines, oldest first. With --retry, hands them back to the group
instead (admins), each with its delivery count reset, and prints {"retried": N}.

Options:
  --retry            hand the dead letters back to the group
  --from SEQ         only dead letters from this seq of dead:TOPIC:GROUP on
  --to SEQ           only up to this seq
${COMMON_HELP}

Example:
  herald dead room:jobs workers --retry`;

/** The most `history` answers at once (PROTOCOL). */
const PAGE = 500;

export async function dead(args: string[]): Promise<void> {
  const { values, positionals: given } = parse(args, {
    retry: { type: "boolean" },
    from: { type: "string" },
    to: { type: "string" },
  });
  if (values.help) {
    console.log(DEAD_HELP);
    return;
  }
  const [topic, group] = positionals(given, ["TOPIC", "GROUP"], DEAD_HELP) as [string, string];
  const from = intFlag(values, "from", 1);
  const to = intFlag(values, "to", 1);
  const c = connection(values, oneShotClientId);
  if (values.retry) {
    const range: { from?: number; to?: number } = {};
    if (from !== undefined) range.from = from;
    if (to !== undefined) range.to = to;
    const path = `/api/v1/topics/${encodeURIComponent(topic)}/groups/${encodeURIComponent(group)}/retry`;
    console.log(JSON.stringify(await api<{ retried: number }>(c, path, { method: "POST", body: range })));
    return;
  }
  const client = await connect(c);
  try {
    const letters = `dead:${topic}:${group}`;
    for (let after = (from ?? 1) - 1; ; ) {
      const { messages } = await client.history(letters, { after, limit: PAGE });
      for (const m of messages) {
        if (to !== undefined && m.seq > to) return;
        await writeLine(m);
      }
      if (messages.length < PAGE) return;
      after = messages[messages.length - 1]!.seq;
    }
  } catch (err) {
    throw fromHerald(err);
  } finally {
    await client.close();
  }
}
