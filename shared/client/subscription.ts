/**
 * One topic the client is subscribed to: its position (the last seq processed), a queue of what
 * has arrived and not yet been processed, and the acks. This is where the SDK turns the server's
 * at-least-once delivery into exactly-once processing (PROTOCOL.md "Delivery guarantees"):
 * - messages are handed to the handler strictly in seq order, one at a time, each after the
 *   previous handler call resolved;
 * - a message (or gap) at or below the last processed seq is a redelivery and is dropped
 *   (a message is identified by (topic, seq); ids are unique per publisher only);
 * - the ack is cumulative and is sent only for what the handler finished: once the queue runs dry,
 *   and on a long run every ACK_EVERY messages or ACK_INTERVAL_MS (checked between handler calls,
 *   no timers), so that the server's in-flight window and cursor keep moving under a slow handler.
 *
 * States (centrifuge-style, one setState): subscribing -> subscribed -> (connection lost)
 * subscribing -> subscribed ... -> unsubscribed.
 */
import { HeraldError } from "../errors.js";
import type { GapEvent, Message, SubscribeOk } from "../protocol.js";
import { Emitter } from "./emitter.js";

export type MessageHandler = (message: Message) => void | Promise<void>;
export type GapHandler = (gap: GapEvent) => void | Promise<void>;

export interface SubscribeOptions {
  /** Replay from this seq (PROTOCOL.md `subscribe` `from`); only on the first subscribe. */
  from?: number;
  /** Called, in order with the messages, when retention removed messages before they were received. */
  onGap?: GapHandler;
}

export type SubscriptionState = "subscribing" | "subscribed" | "unsubscribed";

export type SubscriptionEvents = {
  state: (change: { from: SubscriptionState; to: SubscriptionState; reason: string }) => void;
};

/** What a subscription needs from its client. */
export interface SubscriptionHost {
  /** Sends a cumulative ack; false when there is no connection to send it on. */
  sendAck(topic: string, seq: number): boolean;
  /** A gap was processed: the client's "gap" event. */
  gapProcessed(gap: GapEvent): void;
  /** A handler threw: the client's "error" event. */
  handlerFailed(err: HeraldError): void;
  /** Removes the subscription on the server and in the client. */
  unsubscribe(sub: Subscription): Promise<void>;
}

/** Messages processed between two acks on a long run (well below the default window of 1024). */
export const ACK_EVERY = 128;
/** On a long run of slow handlers, the cursor lags at most about this much behind the handler. */
export const ACK_INTERVAL_MS = 200;

type Item = { kind: "message"; message: Message } | { kind: "gap"; gap: GapEvent };

export class Subscription extends Emitter<SubscriptionEvents> {
  private _state: SubscriptionState = "subscribing";
  /** The last seq processed (handed to the handler and resolved, or passed by a gap). */
  private processed = 0;
  /** The highest seq queued; what arrives at or below it again is a redelivery. */
  private queuedUpTo = 0;
  private readonly queue: Item[] = [];
  private draining = false;
  /** The last ack sent on the current connection, and when. */
  private ackSent = 0;
  private ackSentAt = 0;
  /** A redelivery was dropped: ack again even if nothing new was processed. */
  private needAck = false;
  /** Processing waits for the first reply to `subscribe` (which tells the position). */
  private ready = false;
  private handler: MessageHandler | undefined;
  private onGap: GapHandler | undefined;
  /** `from` until a subscribe carrying it was answered; later subscribes (reconnects) go without. */
  private pendingFrom: number | undefined;
  private confirmed = false;
  private waiter: { resolve(sub: Subscription): void; reject(err: unknown): void } | undefined;

  constructor(
    readonly topic: string,
    private readonly host: SubscriptionHost,
  ) {
    super();
  }

  get state(): SubscriptionState {
    return this._state;
  }

  /** The last seq the handler finished (or a gap passed). */
  get position(): number {
    return this.processed;
  }

  /** Whether the application attached a handler (a stream the server resumed may arrive before that). */
  get attached(): boolean {
    return this.handler !== undefined;
  }

  /** The `subscribe` argument to send now. */
  subscribeArgs(): { topic: string; from?: number } {
    return this.pendingFrom === undefined ? { topic: this.topic } : { topic: this.topic, from: this.pendingFrom };
  }

  /** The application's subscribe: resolves once the server confirmed it. */
  attach(handler: MessageHandler, options: SubscribeOptions): Promise<Subscription> {
    this.handler = handler;
    this.onGap = options.onGap;
    this.pendingFrom = options.from;
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** The server answered `subscribe`. */
  subscribed(reply: SubscribeOk, sentFrom: boolean): void {
    if (this._state === "unsubscribed") return;
    if (sentFrom) {
      // PROTOCOL: `subscribe` with `from` drops the in-flight window and delivery starts again at
      // `from`; the reply comes before those messages, so whatever is queued now is stale.
      this.queue.length = 0;
      this.processed = reply.acked;
      this.queuedUpTo = reply.acked;
      this.pendingFrom = undefined;
    } else {
      // Without `from` the server keeps its cursor; it is never behind what the handler finished
      // unless an ack was lost, and never ahead unless another connection of this client acked.
      this.processed = Math.max(this.processed, reply.acked);
    }
    this.ackSent = reply.acked;
    this.ready = true;
    this.confirmed = true;
    this.setState("subscribed", "subscribed");
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.resolve(this);
    void this.drain();
  }

  /** The server refused `subscribe`. The first refusal fails the application's subscribe. */
  refused(err: HeraldError): boolean {
    const waiter = this.waiter;
    this.waiter = undefined;
    if (!this.confirmed) this.stop("refused");
    waiter?.reject(err);
    return waiter !== undefined;
  }

  /** The connection dropped: acks must be sent again on the next one. The queue keeps draining. */
  connectionLost(): void {
    this.ackSent = 0;
    if (this._state === "subscribed") this.setState("subscribing", "disconnected");
  }

  /** A delivered message of this topic. */
  pushMessage(message: Message): void {
    this.push(message.seq, { kind: "message", message });
  }

  /** PROTOCOL: Delivery 4, a gap comes before any later messages of its stream; it is queued with them. */
  pushGap(gap: GapEvent): void {
    this.push(gap.to, { kind: "gap", gap });
  }

  /** Queues what reaches up to `upTo` unless it is done (acked again) or already queued (dropped). */
  private push(upTo: number, item: Item): void {
    if (upTo <= this.processed) {
      this.needAck = true;
    } else if (upTo > this.queuedUpTo) {
      this.queuedUpTo = upTo;
      this.queue.push(item);
    }
    void this.drain();
  }

  unsubscribe(): Promise<void> {
    if (this._state === "unsubscribed") return Promise.resolve();
    this.stop("unsubscribe");
    return this.host.unsubscribe(this);
  }

  /** Stops processing: nothing more is handed to the handler. */
  stop(reason: string, err?: unknown): void {
    // What the handler finished is acked before the end (close() waits for these acks), so a
    // worker that stops between two acks is not handed its finished work again.
    if (this._state !== "unsubscribed") this.flushAck();
    this.queue.length = 0;
    this.handler = undefined;
    this.setState("unsubscribed", reason);
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(err ?? new HeraldError("UNAVAILABLE", `subscription to ${this.topic} ended: ${reason}`));
  }

  private setState(to: SubscriptionState, reason: string): void {
    const from = this._state;
    if (from === to || from === "unsubscribed") return;
    this._state = to;
    this.emit("state", { from, to, reason });
  }

  private async drain(): Promise<void> {
    if (this.draining || !this.ready) return;
    this.draining = true;
    let sinceAck = 0;
    try {
      for (;;) {
        const item = this.queue.shift();
        const handler = this.handler;
        if (!item || !handler) break;
        if (item.kind === "gap") {
          if (item.gap.to <= this.processed) continue;
          await this.call(() => this.onGap?.(item.gap));
          this.processed = item.gap.to;
          this.host.gapProcessed(item.gap);
        } else {
          const { message } = item;
          if (message.seq <= this.processed) continue;
          await this.call(() => handler(message));
          this.processed = message.seq;
        }
        if (++sinceAck >= ACK_EVERY || Date.now() - this.ackSentAt >= ACK_INTERVAL_MS) {
          this.flushAck();
          sinceAck = 0;
        }
      }
    } finally {
      this.draining = false;
    }
    if (this._state !== "unsubscribed") this.flushAck();
  }

  /**
   * Runs a handler. One that throws is reported on the client's "error" event and its message
   * counts as processed: stalling the topic forever would be worse, and retrying is the handler's
   * own business.
   */
  private async call(fn: () => void | Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (cause) {
      this.host.handlerFailed(new HeraldError("INTERNAL", `a handler of ${this.topic} threw`, { cause }));
    }
  }

  /** Never beyond what the handler finished: the ack says "processed", not "received". */
  private flushAck(): void {
    if (this.processed === 0 || !(this.processed > this.ackSent || this.needAck)) return;
    if (this.host.sendAck(this.topic, this.processed)) {
      this.ackSent = this.processed;
      this.ackSentAt = Date.now();
      this.needAck = false;
    }
  }
}
