/**
 * Publish: validate, authorise, check the payload, a rate token and the topic's groups' backlogs,
 * append (the store assigns the seq and dedups per publisher), and answer once the store says the
 * message is durable. Fan-out is not here: every durable message goes to the fan-out (fanout.ts),
 * after the answers.
 * Used by the `publish` event and by `POST /api/v1/publish`.
 *
 * Next on the path: store/store.ts.
 */
import type { PublishOk } from "../shared/protocol.js";
import type { PublishArgs } from "../shared/schemas.js";
import type { Call, Caller } from "./caller.js";
import type { Context } from "./context.js";
import { acceptPublish } from "./payload.js";

export async function publish(ctx: Context, caller: Caller, args: PublishArgs, call?: Call): Promise<PublishOk> {
  const message = acceptPublish(ctx.config.maxPayload, caller, args);
  if (call) message.receivedAt = call.receivedAt;
  caller.bucket.check();
  ctx.groups.checkBacklog(args.topic);
  ctx.transactions.refusePending(caller.user, args.id);
  caller.bucket.spend();
  const counted = ctx.groups.coming(args.topic);
  try {
    const { message: stored, duplicate } = await ctx.store.append(message);
    (duplicate ? ctx.metrics.duplicates : ctx.metrics.stored).inc();
    return { seq: stored.seq, ts: stored.ts, duplicate };
  } finally {
    if (counted) ctx.groups.left(args.topic);
  }
}
