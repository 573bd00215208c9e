/** `herald pub TOPIC JSON`: publishes one message and prints the reply `{ seq, ts, duplicate }`. */
import {
  COMMON_HELP,
  connect,
  connection,
  fromHerald,
  oneShotClientId,
  parse,
  parseJson,
  positionals,
  stringFlag,
} from "./options.js";

export const PUB_HELP = `Usage: herald pub TOPIC JSON [options]

Publishes JSON (any JSON value) to TOPIC and prints the reply {"seq","ts","duplicate"} as JSON.
Publishing again with the same --id stores nothing new and answers "duplicate": true.

Options:
  --id ID            the message id (default a random UUID)
  --key KEY          an ordering key
${COMMON_HELP}

Example:
  herald pub room:lobby '{"text":"hello"}' --user alice`;

export async function pub(args: string[]): Promise<void> {
  const { values, positionals: given } = parse(args, { id: { type: "string" }, key: { type: "string" } });
  if (values.help) {
    console.log(PUB_HELP);
    return;
  }
  const [topic, json] = positionals(given, ["TOPIC", "JSON"], PUB_HELP) as [string, string];
  const payload = parseJson(json, "JSON");
  const client = await connect(connection(values, oneShotClientId));
  try {
    const options: { id?: string; key?: string } = {};
    const id = stringFlag(values, "id");
    const key = stringFlag(values, "key");
    if (id !== undefined) options.id = id;
    if (key !== undefined) options.key = key;
    const reply = await client.publish(topic, payload, options);
    console.log(JSON.stringify({ seq: reply.seq, ts: reply.ts, duplicate: reply.duplicate }));
  } catch (err) {
    throw fromHerald(err);
  } finally {
    await client.close();
  }
}
