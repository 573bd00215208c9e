/**
 * Durable subscriptions of a (user, clientId): `subscribe`, `unsubscribe`, and resuming them all
 * when the client connects again (PROTOCOL.md `subscribe`, `unsubscribe`).
 */
import { HeraldError } from "../shared/errors.js";
import type { EmptyOk, SubscribeOk } from "../shared/protocol.js";
import type { SubscribeArgs, UnsubscribeArgs } from "../shared/schemas.js";
import { BROADCAST } from "../shared/topics.js";
import { type Context, requireSubscribe } from "./context.js";
import type { Call } from "./hub.js";
import type { Session } from "./session.js";

/** Delivery starts after the reply is sent: PROTOCOL says the reply comes before any `messages` it causes. */
export async function subscribe(ctx: Context, session: Session, args: SubscribeArgs, call: Call): Promise<SubscribeOk> {
  requireSubscribe(session, args.topic);
  if (args.group !== undefined) {
    throw new HeraldError("BAD_REQUEST", "consumer groups are not available in this version of Herald");
  }
  const { head, acked } = await ctx.store.subscribe(session, args.topic, args.from);
  if (!session.live) return { head, acked };
  const stream = session.streams.get(args.topic);
  if (!stream) {
    ctx.delivery.attach(session, args.topic, acked);
    ctx.presence.join(args.topic, session);
  } else if (args.from !== undefined) {
    ctx.delivery.rewind(stream, acked);
  } else {
    // PROTOCOL: subscribing again without `from` changes nothing and re-sends nothing.
    return { head, acked: stream.acked };
  }
  call.after(() => {
    const s = session.streams.get(args.topic);
    if (s) ctx.delivery.start(s);
  });
  return { head, acked };
}

export async function unsubscribe(ctx: Context, session: Session, args: UnsubscribeArgs): Promise<EmptyOk> {
  requireSubscribe(session, args.topic);
  if (args.topic === BROADCAST) throw new HeraldError("FORBIDDEN", "the broadcast subscription cannot be dropped");
  if (args.group !== undefined) return {};
  // Stop first: nothing of the topic is sent after the reply.
  const stream = session.streams.get(args.topic);
  if (stream) {
    ctx.delivery.detach(stream);
    ctx.presence.leave(args.topic, session);
  }
  await ctx.store.unsubscribe(session, args.topic);
  return {};
}

/**
 * On connect: register the client (subscribing it to `broadcast` at the head the first time),
 * then resume every durable subscription from its cursor. Returns false when the session was
 * replaced meanwhile.
 */
export async function resume(ctx: Context, session: Session): Promise<boolean> {
  const { first } = await ctx.store.touchClient(session, Date.now());
  if (first) await ctx.store.subscribe(session, BROADCAST);
  // Queued behind any acks the replaced connection sent, so the cursors include them.
  const subs = await ctx.store.subscriptions(session);
  if (!session.live) return false;
  for (const { topic, acked } of subs) {
    ctx.delivery.attach(session, topic, acked);
    ctx.presence.join(topic, session);
  }
  return true;
}

/** Starts sending what each resumed subscription missed; after the connection is established. */
export function startAll(ctx: Context, session: Session): void {
  for (const stream of session.streams.values()) ctx.delivery.start(stream);
}

/**
 * Ends a session's delivery and presence (disconnect, or REPLACED once the new one has joined: its
 * streams are detached by then, which is why presence keeps its own list of the session's topics).
 */
export function drop(ctx: Context, session: Session): void {
  for (const stream of [...session.streams.values()]) ctx.delivery.detach(stream);
  ctx.presence.disconnect(session);
}
