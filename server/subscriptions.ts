/**
 * Durable subscriptions and group memberships of a (user, clientId): `subscribe`, `unsubscribe`,
 * and resuming them all when the client connects again (PROTOCOL.md `subscribe`, `unsubscribe`,
 * "Groups"). Plain streams are delivery.ts's, memberships groups.ts's.
 */
import { HeraldError } from "../shared/errors.js";
import type { EmptyOk, SubscribeOk } from "../shared/protocol.js";
import type { SubscribeArgs, UnsubscribeArgs } from "../shared/schemas.js";
import { BROADCAST } from "../shared/topics.js";
import { type Call, requireSubscribe } from "./caller.js";
import type { Context } from "./context.js";
import type { Session } from "./session.js";

/** Delivery starts after the reply is sent: PROTOCOL says the reply comes before any `messages` it causes. */
export async function subscribe(ctx: Context, session: Session, args: SubscribeArgs, call: Call): Promise<SubscribeOk> {
  const topic = requireSubscribe(session, args.topic);
  if (args.group !== undefined && topic.kind === "dead") {
    throw new HeraldError("BAD_REQUEST", "a dead-letter topic has no consumer groups");
  }
  // Taken before the store is asked, so that a publish meanwhile cannot take the same token, and
  // given back when the store refuses (LIMIT_EXCEEDED): PROTOCOL says refused calls take none.
  session.bucket.take();
  try {
    return await subscribeStream(ctx, session, args, call);
  } catch (err) {
    session.bucket.refund();
    throw err;
  }
}

async function subscribeStream(ctx: Context, session: Session, args: SubscribeArgs, call: Call): Promise<SubscribeOk> {
  const quota = ctx.config.maxSubscriptions;
  if (args.group !== undefined && ctx.cluster) {
    // Each node would hand the group's messages to its own members: one message to several.
    throw new HeraldError("UNAVAILABLE", "consumer groups across the nodes of a cluster are not built yet");
  }
  if (args.group !== undefined) {
    const { head, acked, member } = await ctx.groups.join(session, args.topic, args.group, args.from, quota);
    if (member) {
      ctx.presence.join(args.topic, session);
      call.after(() => ctx.groups.start(member));
    }
    return { head, acked };
  }
  const { head, acked } = await ctx.store.subscribe(session, args.topic, args.from, quota);
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
  if (args.group !== undefined) {
    await ctx.groups.leave(session, args.topic, args.group);
    leavePresence(ctx, session, args.topic);
    return {};
  }
  if (args.topic === BROADCAST) throw new HeraldError("FORBIDDEN", "the broadcast subscription cannot be dropped");
  // Stop first: nothing of the topic is sent after the reply.
  const stream = session.streams.get(args.topic);
  if (stream) {
    ctx.delivery.detach(stream);
    leavePresence(ctx, session, args.topic);
  }
  await ctx.store.unsubscribe(session, args.topic);
  return {};
}

/** PROTOCOL `presence`: a plain subscription or a group membership keeps the session in the topic. */
function leavePresence(ctx: Context, session: Session, topic: string): void {
  if (!session.live || session.streams.has(topic) || ctx.groups.holds(session, topic)) return;
  ctx.presence.leave(topic, session);
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
  for (const { topic, acked, group } of subs) {
    if (group === undefined) ctx.delivery.attach(session, topic, acked);
    else if (ctx.cluster)
      continue; // see subscribe: not in a cluster yet
    else ctx.groups.resume(session, topic, group);
    ctx.presence.join(topic, session);
  }
  return true;
}

/** Starts sending what each resumed subscription missed; after the connection is established. */
export function startAll(ctx: Context, session: Session): void {
  for (const stream of session.streams.values()) ctx.delivery.start(stream);
  ctx.groups.startAll(session);
}

/** No more deliveries to the session; what its group memberships held is handed on. */
export function stopDelivery(ctx: Context, session: Session): void {
  for (const stream of [...session.streams.values()]) ctx.delivery.detach(stream);
  ctx.groups.detachAll(session);
}

/**
 * Ends a session's delivery and presence (disconnect, or REPLACED once the new one has joined: its
 * streams are detached by then, which is why presence keeps its own list of the session's topics).
 */
export function drop(ctx: Context, session: Session): void {
  stopDelivery(ctx, session);
  ctx.presence.disconnect(session);
}
