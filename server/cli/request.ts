/** `herald request USER METHOD [JSON]`: a remote call to a user's client; prints its result as JSON. */
import {
  COMMON_HELP,
  connect,
  connection,
  fromHerald,
  intFlag,
  oneShotClientId,
  parse,
  parseJson,
  positionals,
} from "./options.js";

export const REQUEST_HELP = `Usage: herald request USER METHOD [JSON] [options]

Calls METHOD on the newest live connection of USER (an app that answers with the SDK's onRequest),
with JSON as its params, and prints the result as JSON. A refusal is printed on stderr with its
code (the responder's own, UNAVAILABLE when nobody answers, TIMEOUT), with exit code 1.

Options:
  --timeout MS       how long the server waits for the answer, 1-60000 (default 10000)
${COMMON_HELP}

Example:
  herald request pricing quote '{"sku":"A1","n":3}' --user shop`;

export async function request(args: string[]): Promise<void> {
  const { values, positionals: given } = parse(args, { timeout: { type: "string" } });
  if (values.help) {
    console.log(REQUEST_HELP);
    return;
  }
  const [to, method, json] = positionals(given, ["USER", "METHOD"], REQUEST_HELP, ["JSON"]) as [
    string,
    string,
    string | undefined,
  ];
  const params = json === undefined ? undefined : parseJson(json, "JSON");
  // Above 60000 the server refuses it with BAD_REQUEST, which says the range.
  const timeoutMs = intFlag(values, "timeout", 1);
  const client = await connect(connection(values, oneShotClientId));
  try {
    const result = await client.request(to, method, params, timeoutMs === undefined ? {} : { timeoutMs });
    console.log(JSON.stringify(result));
  } catch (err) {
    throw fromHerald(err);
  } finally {
    await client.close();
  }
}
