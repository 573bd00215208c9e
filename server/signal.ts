/**
 * `signal`: fire-and-forget, not stored, at most once, in send order, to the live plain subscribers
 * of the topic except the sending connection, on every node of a cluster. Typing indicators use it.
 */
import type { EmptyOk, SignalEvent } from "../shared/protocol.js";
import type { SignalArgs } from "../shared/schemas.js";
import { requirePublish } from "./caller.js";
import type { Context } from "./context.js";
import { encodePayload } from "./payload.js";
import type { Session } from "./session.js";

export async function signal(ctx: Context, session: Session, args: SignalArgs): Promise<EmptyOk> {
  requirePublish(session, args.topic);
  encodePayload(args.payload, ctx.config.maxPayload);
  session.bucket.take();
  const event: SignalEvent = { topic: args.topic, from: session.user, payload: args.payload };
  signalHere(ctx, event, session);
  ctx.cluster?.signal(event);
  return {};
}

/** To the topic's plain subscribers on this node, but `except`. */
export function signalHere(ctx: Context, event: SignalEvent, except?: Session): void {
  for (const { session: to } of ctx.delivery.streams(event.topic)) {
    if (to === except) continue;
    // PROTOCOL: signals are at most once; one for a connection that does not read would only grow its buffer.
    if (to.sendBuffer.full) ctx.metrics.signalsDropped.inc();
    else to.socket.emit("signal", event);
  }
}
