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
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import type { Message } from "../shared/protocol.js";
import type { DurableListener, Fanout } from "./fanout.js";
import type { Logger } from "./log.js";

export interface RedisFanoutOptions {
  url: string;
  /** Channel names start with it, so that several clusters (or tests) can share one Redis. */
  prefix: string;
  log: Logger;
  /** Whether this node can reach Redis now, for /metrics. */
  onState?: (connected: boolean) => void;
  /** A resync was asked for, for /metrics. */
  onResync?: () => void;
}

/** How often a node says its counter, and how often readers poll the store while Redis is away. */
export const HEARTBEAT_MS = 1000;
const POLL_MS = 500;

/** A notice on the channel: the instance, its counter, and a run of one topic (none in a heartbeat). */
interface Notice {
  i: string;
  c: number;
  m?: Message[];
}

export class RedisFanout implements Fanout {
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly channel: string;
  /** This process: a restarted node is a new instance with a counter from 0. */
  private readonly instance = randomUUID();
  private counter = 0;
  /** The last counter heard from each other instance. */
  private readonly heard = new Map<string, number>();
  private readonly listeners: DurableListener[] = [];
  private readonly resyncListeners: (() => void)[] = [];
  private readonly heartbeat: NodeJS.Timeout;
  private poll: NodeJS.Timeout | undefined;
  private subscribed = false;
  private closed = false;

  constructor(private readonly options: RedisFanoutOptions) {
    this.channel = `${options.prefix}:fanout`;
    // A publish while Redis is away fails at once instead of waiting in a queue: the counter
    // tells the others, and they read the store.
    this.pub = new Redis(options.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, lazyConnect: true });
    this.sub = new Redis(options.url, { lazyConnect: true, maxRetriesPerRequest: null });
    for (const [name, conn] of [
      ["publisher", this.pub],
      ["subscriber", this.sub],
    ] as const) {
      conn.on("error", (err: Error) => options.log.debug({ err }, `redis ${name}: ${err.message}`));
    }
    this.sub.on("message", (_channel: string, text: string) => this.receive(text));
    this.sub.on("ready", () => {
      // ioredis subscribes again by itself; what was published meanwhile is read from the store.
      if (this.subscribed) {
        options.log.warn("redis fan-out: connected again; readers catch up from the store");
        this.resync();
      }
      this.subscribed = true;
      clearInterval(this.poll);
      this.poll = undefined;
      options.onState?.(true);
    });
    this.sub.on("close", () => {
      if (this.closed || this.poll) return;
      options.log.warn("redis fan-out: lost Redis; readers poll the store until it is back");
      options.onState?.(false);
      this.poll = setInterval(() => this.resync(), POLL_MS);
      this.poll.unref();
    });
    this.heartbeat = setInterval(() => this.send({ i: this.instance, c: this.counter }), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /**
   * Connects and subscribes, waiting at most `ms`: a node whose Redis is down starts anyway and
   * polls the store (see the header) until Redis is there.
   */
  async start(ms = 2000): Promise<void> {
    const ready = Promise.all([this.pub.connect(), this.sub.connect().then(() => this.sub.subscribe(this.channel))]);
    const timeout = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), ms).unref());
    const outcome = await Promise.race([
      ready.then(
        () => "ok" as const,
        () => "failed" as const,
      ),
      timeout,
    ]);
    if (outcome !== "ok") {
      this.options.log.warn(`redis fan-out: Redis not reachable at start (${outcome}); polling the store meanwhile`);
      ready.catch(() => {});
    }
  }

  publish(messages: Message[], durableAt: number): void {
    for (const l of this.listeners) l(messages, durableAt);
    this.counter++;
    this.send({ i: this.instance, c: this.counter, m: messages });
  }

  private send(notice: Notice): void {
    if (this.pub.status !== "ready") return; // counted: the others see the counter skip
    this.pub.publish(this.channel, JSON.stringify(notice)).catch(() => {});
  }

  private receive(text: string): void {
    let notice: Notice;
    try {
      notice = JSON.parse(text) as Notice;
    } catch {
      return; // not ours
    }
    if (notice.i === this.instance) return;
    const last = this.heard.get(notice.i);
    this.heard.set(notice.i, Math.max(last ?? 0, notice.c));
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
    this.closed = true;
    clearInterval(this.heartbeat);
    clearInterval(this.poll);
    this.pub.disconnect();
    this.sub.disconnect();
  }
}
