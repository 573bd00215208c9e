/**
 * Fan-out: how delivery.ts and groups.ts learn of new durable messages. It is not the store's job
 * (issue 17): the store says when its own commits are durable (`Store.onDurable`), and the fan-out
 * hands each run to the readers of this node and, in a cluster, to the other nodes, whose runs it
 * hands to ours. A fan-out between nodes may lose a notice (Redis is a hint, the store the truth),
 * so readers never depend on one: a stream that misses a run reads it from the store at the next
 * run of its topic, and when a fan-out may have lost the last one (a reconnect, no word for a
 * while) it calls `onResync`'s listeners, which compare each reader with the store's head.
 *
 * Next on the path: delivery.ts and groups.ts.
 */
import type { Message } from "../shared/protocol.js";

/** A commit's new messages of one topic, in seq order, and when they became durable (`performance.now()`). */
export type DurableListener = (messages: Message[], durableAt: number) => void;

export interface Fanout {
  /** New durable messages of one topic from this node's store. */
  publish(messages: Message[], durableAt: number): void;
  onMessages(listener: DurableListener): void;
  /** Notices may have been lost: readers look at the store's heads. */
  onResync(listener: () => void): void;
  /** Stops; called after the store has closed. */
  close(): Promise<void>;
}

/** One process: every run reaches every listener, at once and in order, so there is nothing to resync. */
export class LocalFanout implements Fanout {
  private readonly listeners: DurableListener[] = [];

  publish(messages: Message[], durableAt: number): void {
    for (const l of this.listeners) l(messages, durableAt);
  }

  onMessages(listener: DurableListener): void {
    this.listeners.push(listener);
  }

  onResync(): void {}

  async close(): Promise<void> {}
}
