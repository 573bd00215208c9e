/**
 * `signal`: fire-and-forget, not stored, at most once, in send order, to the live plain subscribers
 * of the topic except the sending connection. Typing indicators use it.
 */
import type { EmptyOk } from "../shared/protocol.js";
import type { SignalArgs } from "../shared/schemas.js";
import { requirePublish } from "./caller.js";
import type { Context } from "./context.js";
import { encodePayload } from "./payload.js";
import type { Session } from "./session.js";

export async function signal(ctx: Context, session: Session, args: SignalArgs): Promise<EmptyOk> {
  requirePublish(session, args.topic);
  encodePayload(args.payload, ctx.config.maxPayload);
  session.bucket.take();
  const event = { topic: args.topic, from: session.user, payload: args.payload };
  for (const { session: to } of ctx.delivery.streams(args.topic)) {
    if (to === session) continue;
    // PROTOCOL: signals are at most once; one for a connection that does not read would only grow its buffer.
    if (to.sendBuffer.full) ctx.metrics.signalsDropped.inc();
    else to.socket.emit("signal", event);
  }
  return {};
}
