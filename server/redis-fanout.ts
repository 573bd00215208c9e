/**
 * The fan-out between the nodes of a cluster, over Redis pub/sub (PROTOCOL.md "Running").
 *
 * Redis is a hint and the store the truth: a node hands its own durable runs to its readers at
 * once, as LocalFanout does, and publishes them on one channel; the other nodes hand what they
 * receive to theirs. Nothing durable depends on Redis. Pub/sub may lose a notice (Redis restarts,
 * a connection drops, a publish fails while this node cannot reach it), so every notice carries
 * its node instance's counter, and each node also publishes the counter once a second: a reader
 * that sees a counter skip, a reconnect, or no word while Redis is away asks delivery and groups
 * to compare themselves with the store's heads (`onResync`), and what was missed is read from the
 * store. Runs from two nodes may arrive out of seq order; delivery reads the hole from the store
 * and drops what it already sent, so a lost or late notice delays a message, never loses,
 * reorders or duplicates it.
 *
 * Next on the path: delivery.ts and groups.ts.
 */
import type { Message } from "../shared/protocol.js";
import type { DurableListener, Fanout } from "./fanout.js";
import type { Logger } from "./log.js";
import type { Peers } from "./peers.js";

export interface RedisFanoutOptions {
  log: Logger;
  /** Whether this node can reach Redis now, for /metrics. */
  onState?: (connected: boolean) => void;
  /** A resync was asked for, for /metrics. */
  onResync?: () => void;
}

/** How often readers poll the store while Redis is away. */
const POLL_MS = 500;

export class RedisFanout implements Fanout {
  /** Runs this instance has sent (or failed to send): the others see a skip and read the store. */
  private counter = 0;
  /** The last counter heard from each other instance. */
  private readonly heard = new Map<string, number>();
  private readonly listeners: DurableListener[] = [];
  private readonly resyncListeners: (() => void)[] = [];
  private poll: NodeJS.Timeout | undefined;

  constructor(
    private readonly peers: Peers,
    private readonly options: RedisFanoutOptions,
  ) {
    peers.on("run", (body, from) => this.receive(from, body as { c: number; m: Message[] }));
    peers.on("beat", (body, from) => this.receive(from, body as { c: number }));
    peers.onBeat(() => ({ c: this.counter }));
    peers.onDown((node) => this.heard.delete(node));
    peers.onState((connected, again) => {
      options.onState?.(connected);
      if (connected) {
        clearInterval(this.poll);
        this.poll = undefined;
        // What was published meanwhile is read from the store.
        if (again) this.resync();
      } else if (!this.poll) {
        this.poll = setInterval(() => this.resync(), POLL_MS);
        this.poll.unref();
      }
    });
  }

  publish(messages: Message[], durableAt: number): void {
    for (const l of this.listeners) l(messages, durableAt);
    this.counter++;
    this.peers.broadcast("run", { c: this.counter, m: messages });
  }

  private receive(from: string, notice: { c: number; m?: Message[] }): void {
    if (typeof notice?.c !== "number") return;
    const last = this.heard.get(from);
    this.heard.set(from, Math.max(last ?? 0, notice.c));
    if (notice.m && notice.m.length > 0) {
      const now = performance.now();
      for (const l of this.listeners) l(notice.m, now);
    }
    // A run skipped (or, for an instance first heard, anything before it): read the store.
    const expected = notice.m ? notice.c - 1 : notice.c;
    if ((last ?? 0) < expected) this.resync();
  }

  private resync(): void {
    this.options.onResync?.();
    for (const l of this.resyncListeners) l();
  }

  onMessages(listener: DurableListener): void {
    this.listeners.push(listener);
  }

  onResync(listener: () => void): void {
    this.resyncListeners.push(listener);
  }

  async close(): Promise<void> {
    clearInterval(this.poll);
  }
}
