/**
 * A plain subscription to a topic: its position (the last seq processed) and its cumulative acks.
 * This is where the SDK turns the server's at-least-once delivery into exactly-once processing
 * (PROTOCOL.md "Delivery guarantees"):
 * - messages are handed to the handler strictly in seq order, one at a time, each after the
 *   previous handler call resolved (PROTOCOL: Delivery 2, a plain stream arrives in seq order);
 * - a message (or gap) at or below the last processed seq is a redelivery and is dropped
 *   (a message is identified by (topic, seq); ids are unique per publisher only);
 * - the ack is cumulative and is sent only for what the handler finished: once the queue runs dry,
 *   and on a long run every ACK_EVERY messages or ACK_INTERVAL_MS (checked between handler calls,
 *   no timers), so that the server's in-flight window and cursor keep moving under a slow handler.
 * The state machine, queue and handler calls are subscription.ts's.
 */
import type { SubscribeOk } from "../protocol.js";
import { type Item, Subscription, type SubscriptionHost } from "./subscription.js";

/** Messages processed between two acks on a long run (well below the default window of 1024). */
export const ACK_EVERY = 128;
/** On a long run of slow handlers, the cursor lags at most about this much behind the handler. */
export const ACK_INTERVAL_MS = 200;

/** The seq an item brings the position to. */
const reach = (item: Item): number => (item.kind === "message" ? item.message.seq : item.gap.to);

export class PlainSubscription extends Subscription {
  /** The last seq processed (handed to the handler and resolved, or passed by a gap). */
  private processed = 0;
  /** The highest seq queued; what arrives at or below it again is a redelivery. */
  private queuedUpTo = 0;
  /** The last ack sent on the current connection, and when. */
  private ackSent = 0;
  private ackSentAt = 0;
  /** Items processed since the last ack. */
  private sinceAck = 0;
  /** A redelivery was dropped: ack again even if nothing new was processed. */
  private needAck = false;

  constructor(topic: string, host: SubscriptionHost) {
    super(topic, undefined, host);
  }

  /** The last seq the handler finished (or a gap passed). */
  get position(): number {
    return this.processed;
  }

  /** Queues what reaches past the position unless it is queued already; a done one is acked again. */
  protected accept(item: Item): boolean {
    const upTo = reach(item);
    if (upTo <= this.processed) {
      this.needAck = true;
      return false;
    }
    if (upTo <= this.queuedUpTo) return false;
    this.queuedUpTo = upTo;
    return true;
  }

  /** A `subscribe` with `from` may have moved the position past what was queued before it. */
  protected begin(item: Item): boolean {
    return reach(item) > this.processed;
  }

  /**
   * A handler that threw still moves the position (its error went to the client's "error"
   * event): stalling the topic forever would be worse, and retrying is the handler's own business.
   */
  protected end(item: Item): void {
    this.processed = reach(item);
    if (++this.sinceAck >= ACK_EVERY || Date.now() - this.ackSentAt >= ACK_INTERVAL_MS) this.flushAck();
  }

  protected resumed(reply: SubscribeOk, sentFrom: boolean): void {
    if (sentFrom) {
      // PROTOCOL: `subscribe` with `from` drops the in-flight window and delivery starts again at
      // `from`; the reply comes before those messages, so whatever is queued now is stale.
      this.queue.length = 0;
      this.processed = reply.acked;
      this.queuedUpTo = reply.acked;
    } else {
      // Without `from` the server keeps its cursor; it is never behind what the handler finished
      // unless an ack was lost, and never ahead unless another connection of this client acked.
      this.processed = Math.max(this.processed, reply.acked);
    }
    this.ackSent = reply.acked;
  }

  protected disconnected(): void {
    // The queue keeps draining; the next connection gets the cumulative ack of all of it.
    this.ackSent = 0;
  }

  protected override idle(): void {
    if (this.state !== "unsubscribed") this.flushAck();
  }

  /**
   * What the handler finished is acked before the end (close() waits for these acks), so a
   * worker that stops between two acks is not handed its finished work again.
   */
  protected override stopping(): void {
    this.flushAck();
  }

  /** Never beyond what the handler finished: the ack says "processed", not "received". */
  private flushAck(): void {
    if (this.processed === 0 || !(this.processed > this.ackSent || this.needAck)) return;
    if (this.host.sendAck({ topic: this.topic, seq: this.processed })) {
      this.ackSent = this.processed;
      this.ackSentAt = Date.now();
      this.sinceAck = 0;
      this.needAck = false;
    }
  }
}
