/**
 * Publish: validate, authorise, check the payload, a rate token and the topic's groups' backlogs,
 * append (the store assigns the seq and dedups per publisher), and answer once the store says the
 * message is durable. Fan-out is not here: the store hands every durable message to delivery.ts
 * and groups.ts after the answers.
 * Used by the `publish` event and by `POST /api/v1/publish`.
 *
 * Next on the path: store/store.ts.
 */
import type { PublishOk } from "../shared/protocol.js";
import type { PublishArgs } from "../shared/schemas.js";
import { type Caller, type Context, requirePublish } from "./context.js";
import { encodePayload } from "./payload.js";
import type { NewMessage } from "./store/store.js";

export async function publish(ctx: Context, caller: Caller, args: PublishArgs): Promise<PublishOk> {
  // PROTOCOL: with several faults the first of BAD_REQUEST (schema, done by the caller),
  // INVALID_TOPIC, FORBIDDEN, PAYLOAD_TOO_LARGE, RATE_LIMITED, BACKLOG_FULL is answered, and a
  // refused call takes no token.
  requirePublish(caller, args.topic);
  const json = encodePayload(args.payload, ctx.config.maxPayload);
  caller.bucket.check();
  ctx.groups.checkBacklog(args.topic);
  caller.bucket.spend();
  const message: NewMessage = { id: args.id, topic: args.topic, from: caller.user, payload: args.payload, json };
  if (args.key !== undefined) message.key = args.key;
  const { message: stored, duplicate } = await ctx.store.append(message);
  (duplicate ? ctx.metrics.duplicates : ctx.metrics.stored).inc();
  return { seq: stored.seq, ts: stored.ts, duplicate };
}
