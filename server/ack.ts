/**
 * `ack`: with `group`, of one message, or of up to 1024 with `seqs` (groups.ts). Otherwise cumulative for a plain stream: the
 * cursor becomes max(acked, min(seq, highest sent)), the window frees at once (flow control is
 * about what the client has processed), and the reply comes once the cursor is durable. An ack
 * without a callback asks for no reply, and PROTOCOL says it may be lost in a crash, which only
 * means redelivery: its cursor is written lazily, coalesced with the stream's later acks. Always
 * ok for a valid argument, also stale or unknown.
 */
import type { EmptyOk } from "../shared/protocol.js";
import type { AckArgs } from "../shared/schemas.js";
import { type Call, topicOf } from "./caller.js";
import type { Context } from "./context.js";
import type { Session } from "./session.js";

export async function ack(ctx: Context, session: Session, args: AckArgs, call: Call): Promise<EmptyOk> {
  topicOf(args.topic);
  ctx.metrics.acks.inc();
  if (args.group !== undefined) {
    const seqs = args.seqs ?? [args.seq!];
    ctx.metrics.acks.inc(seqs.length - 1);
    await ctx.groups.ack(session, args.topic, args.group, seqs, call.oneWay);
    return {};
  }
  const stream = session.streams.get(args.topic);
  if (!stream) return {};
  // PROTOCOL: Delivery, ack is cumulative and never beyond what was sent. (`seqs` needs `group`.)
  const seq = Math.min(args.seq!, stream.sent);
  if (seq <= stream.acked) return {};
  stream.acked = seq;
  ctx.delivery.acked(stream);
  if (call.oneWay) ctx.store.ackLater(session, args.topic, seq);
  else await ctx.store.ack(session, args.topic, seq);
  return {};
}
