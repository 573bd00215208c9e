/** `history` and its HTTP route: the newest messages, or a page before or after a seq. */
import { DEFAULTS, type HistoryOk } from "../shared/protocol.js";
import type { HistoryArgs } from "../shared/schemas.js";
import { type Caller, requireSubscribe } from "./caller.js";
import type { Context } from "./context.js";

export async function history(ctx: Context, caller: Caller, args: HistoryArgs): Promise<HistoryOk> {
  requireSubscribe(caller, args.topic);
  caller.bucket.take();
  const limit = Math.min(args.limit ?? DEFAULTS.historyLimit, DEFAULTS.historyMaxLimit);
  const query: { before?: number; after?: number; limit: number } = { limit };
  if (args.before !== undefined) query.before = args.before;
  if (args.after !== undefined) query.after = args.after;
  const [messages, head] = await Promise.all([ctx.store.history(args.topic, query), ctx.store.head(args.topic)]);
  return { messages, head };
}
