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
import { type Call, type Caller, type Context, requirePublish } from "./context.js";
import { encodePayload } from "./payload.js";
import type { NewMessage } from "./store/store.js";

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

/**
 * What `publish` and `prepare` check first, in PROTOCOL's order (BAD_REQUEST, by the schema, done
 * by the caller; INVALID_TOPIC, FORBIDDEN, PAYLOAD_TOO_LARGE; then the caller's RATE_LIMITED,
 * BACKLOG_FULL, CONFLICT), and the message it makes. A refused call takes no token.
 */
export function acceptPublish(maxPayload: number, caller: Caller, args: PublishArgs): NewMessage {
  requirePublish(caller, args.topic);
  const json = encodePayload(args.payload, maxPayload);
  const message: NewMessage = { id: args.id, topic: args.topic, from: caller.user, payload: args.payload, json };
  if (args.key !== undefined) message.key = args.key;
  return message;
}
