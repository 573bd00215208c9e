/**
 * A stream this client takes part in (PROTOCOL.md "Delivery guarantees": a plain subscription to a
 * topic, or a membership of a consumer group of a topic), as the application sees it. This file
 * holds what both kinds share: the state machine, the handler, the queue of what has arrived and
 * is not processed yet, and the workers that hand it to the handler. A subclass decides what the
 * stream's deliveries mean, through four hooks:
 * - `accept`: an arrival is new (queue it) or a redelivery (drop it, perhaps ack it again);
 * - `begin` / `end`: an item goes to the handler, and what its outcome changes (position, acks);
 * - `resumed` / `disconnected` / `idle` / `stopping`: the connection's and the queue's turns.
 * plain-subscription.ts orders by seq and acks cumulatively; group-subscription.ts acks each
 * message and takes redeliveries in any order.
 *
 * States (centrifuge-style, one setState): subscribing -> subscribed -> (connection lost)
 * subscribing -> subscribed ... -> unsubscribed.
 */
import { HeraldError } from "../errors.js";
import type { GapEvent, Message, SubscribeOk } from "../protocol.js";
import type { AckArgs, SubscribeArgs } from "../schemas.js";
import { Emitter } from "./emitter.js";

export type MessageHandler = (message: Message) => void | Promise<void>;
export type GapHandler = (gap: GapEvent) => void | Promise<void>;

export interface SubscribeOptions {
  /**
   * Replay from this seq (PROTOCOL.md `subscribe` `from`); only on the first subscribe. With
   * `group`, it counts only on the subscribe that creates the group.
   */
  from?: number;
  /** Called, in order with the messages, when retention removed messages before they were received. */
  onGap?: GapHandler;
  /**
   * Join this consumer group of the topic instead of subscribing on one's own (PROTOCOL.md
   * "Groups"): each message goes to one member, and each is acked once its handler resolved.
   */
  group?: string;
  /**
   * With `group`: how many messages the handler may be processing at once. A plain subscription
   * is processed in seq order, one at a time. @default 1
   */
  concurrency?: number;
}

export type SubscriptionState = "subscribing" | "subscribed" | "unsubscribed";

export type SubscriptionEvents = {
  state: (change: { from: SubscriptionState; to: SubscriptionState; reason: string }) => void;
};

/** What a subscription needs from its client. */
export interface SubscriptionHost {
  /**
   * Sends an ack; false when there is no connection to send it on. `answered` runs once the
   * server replied `ok` (the ack is then as durable as the server's durability demands).
   */
  sendAck(args: AckArgs, answered?: () => void): boolean;
  /** A gap was processed: the client's "gap" event. */
  gapProcessed(gap: GapEvent): void;
  /** A handler threw: the client's "error" event. */
  handlerFailed(err: HeraldError): void;
  /** Removes the subscription on the server and in the client. */
  unsubscribe(sub: Subscription): Promise<void>;
}

export type MessageItem = { kind: "message"; message: Message };
export type Item = MessageItem | { kind: "gap"; gap: GapEvent };

/** The client's key of a stream: a topic and a group are independent streams (PROTOCOL.md "Groups"). */
export function streamKey(topic: string, group: string | undefined): string {
  // Group names have no "|" (PROTOCOL.md names), so the first "|" ends the group part.
  return `${group ?? ""}|${topic}`;
}

export abstract class Subscription extends Emitter<SubscriptionEvents> {
  private _state: SubscriptionState = "subscribing";
  /** What has arrived and is waiting for a worker, in arrival order. */
  protected readonly queue: Item[] = [];
  /** How many workers may hand items to the handler at once. */
  protected concurrency = 1;
  private workers = 0;
  private readonly settledWaiters: (() => void)[] = [];
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
    /** The consumer group, for a group membership. */
    readonly group: string | undefined,
    protected readonly host: SubscriptionHost,
  ) {
    super();
  }

  get state(): SubscriptionState {
    return this._state;
  }

  /** Whether the application attached a handler (a stream the server resumed may arrive before that). */
  get attached(): boolean {
    return this.handler !== undefined;
  }

  /** The client's key of this stream. */
  get key(): string {
    return streamKey(this.topic, this.group);
  }

  /** The `subscribe` argument to send now. */
  subscribeArgs(): SubscribeArgs {
    const args: SubscribeArgs = { topic: this.topic };
    if (this.group !== undefined) args.group = this.group;
    if (this.pendingFrom !== undefined) args.from = this.pendingFrom;
    return args;
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
    this.resumed(reply, sentFrom);
    if (sentFrom) this.pendingFrom = undefined;
    this.ready = true;
    this.confirmed = true;
    this.setState("subscribed", "subscribed");
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.resolve(this);
    this.drain();
  }

  /** The server refused `subscribe`. The first refusal fails the application's subscribe. */
  refused(err: HeraldError): boolean {
    const waiter = this.waiter;
    this.waiter = undefined;
    if (!this.confirmed) this.stop("refused");
    waiter?.reject(err);
    return waiter !== undefined;
  }

  /** The connection dropped: acks must be sent again on the next one. */
  connectionLost(): void {
    this.disconnected();
    if (this._state === "subscribed") this.setState("subscribing", "disconnected");
  }

  /** A delivered message of this stream. */
  pushMessage(message: Message): void {
    this.push({ kind: "message", message });
  }

  /** PROTOCOL: Delivery 4, a gap comes before any later messages of its stream; it is queued with them. */
  pushGap(gap: GapEvent): void {
    this.push({ kind: "gap", gap });
  }

  unsubscribe(): Promise<void> {
    if (this._state === "unsubscribed") return Promise.resolve();
    this.stop("unsubscribe");
    return this.host.unsubscribe(this);
  }

  /** Resolves once no handler call of this stream is running (close() waits for it, bounded). */
  settled(): Promise<void> {
    if (this.workers === 0) return Promise.resolve();
    return new Promise((resolve) => this.settledWaiters.push(resolve));
  }

  /** Stops processing: nothing more is handed to the handler. */
  stop(reason: string, err?: unknown): void {
    if (this._state !== "unsubscribed") this.stopping();
    this.queue.length = 0;
    this.handler = undefined;
    this.setState("unsubscribed", reason);
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(err ?? new HeraldError("UNAVAILABLE", `subscription to ${this.describe()} ended: ${reason}`));
  }

  // ---- what a kind of stream decides ----------------------------------------------------------

  /** An arrival: true queues it; false drops it as a redelivery. */
  protected abstract accept(item: Item): boolean;
  /** A worker took the item from the queue: false skips it instead of handing it over. */
  protected abstract begin(item: Item): boolean;
  /** The handler (or onGap) is done with the item: `ok` is false when it threw. */
  protected abstract end(item: Item, ok: boolean): void;
  /** The server answered a subscribe on this connection, with the stream's position. */
  protected abstract resumed(reply: SubscribeOk, sentFrom: boolean): void;
  /** The connection dropped. */
  protected abstract disconnected(): void;
  /** No worker is busy and nothing can be started now. */
  protected idle(): void {}
  /** The stream is about to stop (unsubscribe, close, refusal). */
  protected stopping(): void {}

  /** The stream in words, for errors: "room:a", or "room:a (group workers)". */
  protected describe(): string {
    return this.group === undefined ? this.topic : `${this.topic} (group ${this.group})`;
  }

  // ---- the machinery ---------------------------------------------------------------------------

  private setState(to: SubscriptionState, reason: string): void {
    const from = this._state;
    if (from === to || from === "unsubscribed") return;
    this._state = to;
    this.emit("state", { from, to, reason });
  }

  private push(item: Item): void {
    // A stopped stream only waits for its removal; what comes meanwhile is for no one.
    if (this._state === "unsubscribed") return;
    if (this.accept(item)) this.queue.push(item);
    this.drain();
  }

  /** Starts workers up to `concurrency` while there is work and a handler. */
  protected drain(): void {
    if (!this.ready) return;
    while (this.workers < this.concurrency && this.queue.length > 0 && this.handler) {
      this.workers++;
      void this.work();
    }
    if (this.workers === 0) this.idle();
  }

  private async work(): Promise<void> {
    try {
      for (;;) {
        const handler = this.handler;
        if (!handler) break;
        const item = this.queue.shift();
        if (!item) break;
        if (!this.begin(item)) continue;
        this.end(item, await this.handle(item, handler));
      }
    } finally {
      this.workers--;
    }
    if (this.workers === 0) {
      for (const resolve of this.settledWaiters.splice(0)) resolve();
      this.idle();
    }
  }

  /**
   * Runs the handler of an item. One that throws is reported on the client's "error" event; what
   * that means for the message (processed anyway, or redelivered) is the subclass's `end`.
   */
  private async handle(item: Item, handler: MessageHandler): Promise<boolean> {
    let ok = true;
    try {
      if (item.kind === "message") await handler(item.message);
      else await this.onGap?.(item.gap);
    } catch (cause) {
      ok = false;
      this.host.handlerFailed(new HeraldError("INTERNAL", `a handler of ${this.describe()} threw`, { cause }));
    }
    if (item.kind === "gap") this.host.gapProcessed(item.gap);
    return ok;
  }
}
