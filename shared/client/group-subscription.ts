/**
 * A membership of a consumer group of a topic (PROTOCOL.md "Groups: competing consumers"): each
 * message of the topic goes to one live member, which acks it on its own once done. Here:
 * - each message is handed to the handler (up to `concurrency` at once, default 1) and acked by
 *   itself once the handler resolved (group acks are not cumulative); the acks of one event-loop
 *   turn go out as one `ack { topic, seqs, group }`;
 * - a handler that throws is not acked: the server hands the message out again after
 *   HERALD_ACK_TIMEOUT_MS, up to HERALD_MAX_DELIVERIES attempts, then moves it to
 *   `dead:<topic>:<group>`;
 * - a redelivery (`attempt` >= 2) may come out of seq order and is processed again, as it means
 *   the earlier attempt failed or timed out; only a copy of a message this client has queued or is
 *   processing is dropped (a queued one takes the copy's newer `attempt`), and a copy of one the
 *   handler finished whose ack the server has not answered yet is acked again, not processed.
 * So a group processes each message at least once and, unless a member is too slow or drops its
 * connection mid-message, exactly once. "Too slow" is meant literally: the server leases a member
 * up to HERALD_MAX_INFLIGHT messages at once and counts HERALD_ACK_TIMEOUT_MS from each hand-out,
 * queued here or not, so a member whose queue holds more than the timeout's worth of work has
 * messages handed on (and at last dead-lettered) while they wait here, and still processes them
 * when their turn comes. The protocol gives a member no smaller window to ask for; size the two
 * settings for the slowest handler (window x handler time / concurrency < ack timeout).
 * The state machine, queue and handler calls are subscription.ts's.
 */
import type { SubscribeOk } from "../protocol.js";
import {
  type Item,
  type MessageHandler,
  type MessageItem,
  type SubscribeOptions,
  Subscription,
  type SubscriptionHost,
} from "./subscription.js";

export class GroupSubscription extends Subscription {
  /** Queued messages by seq, not yet handed to the handler. */
  private readonly queued = new Map<number, MessageItem>();
  /** Seqs the handler is processing now. */
  private readonly processing = new Set<number>();
  /**
   * Seqs the handler finished whose ack the server has not answered, each with whether the ack
   * went out on the current connection. An entry leaves when its ack is answered.
   */
  private readonly unconfirmed = new Map<number, boolean>();
  /** Finished seqs whose ack goes out with the others of this turn (see sendAck). */
  private readonly toAck = new Set<number>();
  private ackTimer: ReturnType<typeof setTimeout> | undefined;
  declare readonly group: string;

  constructor(topic: string, group: string, host: SubscriptionHost) {
    super(topic, group, host);
  }

  override attach(handler: MessageHandler, options: SubscribeOptions): Promise<Subscription> {
    this.concurrency = options.concurrency ?? 1;
    return super.attach(handler, options);
  }

  protected accept(item: Item): boolean {
    // PROTOCOL: a gap in a group goes to one member and the group's cursor moves past it at once.
    if (item.kind === "gap") return true;
    const { message } = item;
    if (this.unconfirmed.has(message.seq)) {
      // Finished here, but the server handed it out again before it saw the ack: ack it again.
      this.sendAck(message.seq);
      return false;
    }
    if (this.processing.has(message.seq)) return false;
    const queued = this.queued.get(message.seq);
    if (queued) {
      // The same message again, probably after HERALD_ACK_TIMEOUT_MS: the handler gets it once,
      // with the attempt the server counts now.
      queued.message = message;
      return false;
    }
    this.queued.set(message.seq, item);
    return true;
  }

  protected begin(item: Item): boolean {
    if (item.kind === "message") {
      this.queued.delete(item.message.seq);
      this.processing.add(item.message.seq);
    }
    return true;
  }

  /**
   * Acked only when the handler resolved. Also after unsubscribe or close (while a connection is
   * left): the work is done, and the first ack from any member wins.
   */
  protected end(item: Item, ok: boolean): void {
    if (item.kind === "gap") return;
    const { seq } = item.message;
    this.processing.delete(seq);
    if (ok) this.sendAck(seq);
  }

  protected resumed(_reply: SubscribeOk): void {
    // A group's `acked` is the group's low-water mark, no position of this member. What matters
    // is the acks the last connection lost: they go out again (an ack of a finished message is
    // `ok` and changes nothing).
    for (const [seq, sent] of this.unconfirmed) if (!sent) this.sendAck(seq);
    this.flushAcks();
  }

  protected disconnected(): void {
    // PROTOCOL: the messages of a member that disconnects are handed on at once, so what is queued
    // and not begun may be with another member now; it comes back here if it is still due.
    // A message being processed goes on, and its ack goes out on the next connection.
    const gaps = this.queue.filter((item) => item.kind === "gap");
    this.queue.length = 0;
    this.queue.push(...gaps);
    this.queued.clear();
    for (const seq of this.unconfirmed.keys()) this.unconfirmed.set(seq, false);
  }

  protected override stopping(): void {
    this.queued.clear();
    // Now, not at the end of the turn: close() waits only for acks already sent.
    this.flushAcks();
  }

  /**
   * Acks go out together (PROTOCOL: `ack` with `seqs`): what the handlers finish in one turn of the
   * event loop is one packet, so a member that drains a backlog pays the server one ack a batch,
   * not one a message. A stopped stream sends at once: close() waits only for acks already sent.
   */
  private sendAck(seq: number): void {
    this.unconfirmed.set(seq, false);
    this.toAck.add(seq);
    if (this.toAck.size >= MAX_ACK_BATCH || this.state === "unsubscribed") this.flushAcks();
    else this.ackTimer ??= setTimeout(this.flushAcks, 0);
  }

  private readonly flushAcks = (): void => {
    if (this.ackTimer !== undefined) clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    const all = [...this.toAck];
    this.toAck.clear();
    for (let i = 0; i < all.length; i += MAX_ACK_BATCH) {
      const seqs = all.slice(i, i + MAX_ACK_BATCH);
      const args =
        seqs.length === 1
          ? { topic: this.topic, seq: seqs[0]!, group: this.group }
          : { topic: this.topic, seqs, group: this.group };
      const sent = this.host.sendAck(args, () => {
        for (const seq of seqs) this.unconfirmed.delete(seq);
      });
      for (const seq of seqs) this.unconfirmed.set(seq, sent);
    }
  };
}

/** PROTOCOL: `seqs` holds 1-1024 seqs. */
const MAX_ACK_BATCH = 1024;
