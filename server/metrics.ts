/** Prometheus metrics (prom-client), one registry per server so that several can share a process. */
import client from "prom-client";
import type { Store } from "./store/store.js";

export class Metrics {
  readonly registry = new client.Registry();
  readonly connections: client.Gauge;
  readonly publishes: client.Counter<"result">;
  /** Bound children of `publishes` for the hot path, so no label hashing per publish. */
  readonly stored: client.Counter.Internal;
  readonly duplicates: client.Counter.Internal;
  readonly deliveries: client.Counter;
  readonly acks: client.Counter;
  readonly deadLetters: client.Counter;
  readonly dropped: client.Counter<"reason">;
  readonly commitSeconds: client.Histogram;

  constructor(store: Store, nodeId: string) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ node: nodeId });
    this.connections = new client.Gauge({ name: "herald_connections", help: "Live socket.io connections", registers });
    this.publishes = new client.Counter({
      name: "herald_publishes_total",
      help: "Publishes by result: stored, duplicate, or the error code",
      labelNames: ["result"],
      registers,
    });
    this.stored = this.publishes.labels("stored");
    this.duplicates = this.publishes.labels("duplicate");
    this.deliveries = new client.Counter({
      name: "herald_deliveries_total",
      help: "Messages sent to subscribers",
      registers,
    });
    this.acks = new client.Counter({ name: "herald_acks_total", help: "Acks received", registers });
    this.deadLetters = new client.Counter({
      name: "herald_dead_letters_total",
      help: "Group messages moved to their dead-letter topic after the last attempt",
      registers,
    });
    this.dropped = new client.Counter({
      name: "herald_dropped_total",
      help: "One-way sends refused without a reply, by error code",
      labelNames: ["reason"],
      registers,
    });
    this.commitSeconds = new client.Histogram({
      name: "herald_commit_seconds",
      help: "Time from a batch's commit to its durability (group commit and fsync)",
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    new client.Gauge({
      name: "herald_topic_lag",
      help: "Per topic: the largest number of messages a durable subscription has not acked",
      labelNames: ["topic"],
      registers,
      async collect() {
        this.reset();
        const stats = await store.stats();
        const lag = new Map<string, number>();
        for (const s of stats.subscriptions) lag.set(s.topic, Math.max(lag.get(s.topic) ?? 0, s.lag));
        for (const [topic, value] of lag) this.set({ topic }, value);
      },
    });
    client.collectDefaultMetrics({ register: this.registry, prefix: "herald_process_" });
    store.onCommit((seconds) => this.commitSeconds.observe(seconds));
  }

  /** The consumer groups' backlogs (PROTOCOL.md "Groups"), read from groups.ts when scraped. */
  watchGroups(stats: () => { topic: string; group: string; lag: number }[]): void {
    new client.Gauge({
      name: "herald_group_backlog",
      help: "Per consumer group: messages above its low-water mark not yet acked or dead-lettered",
      labelNames: ["topic", "group"],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const g of stats()) this.set({ topic: g.topic, group: g.group }, g.lag);
      },
    });
  }
}
