/**
 * Prometheus metrics (prom-client), one registry per server so that several can share a process.
 * A scrape is cheap and its size bounded, whoever asks: counters are kept as events happen, nothing
 * reads the store, and no label takes a topic, user or client (a topic label named every inbox, and
 * anyone who can subscribe could grow the series without end). Per-topic detail is the admin API's
 * (`/api/v1/stats`).
 */
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
  readonly signalsDropped: client.Counter;
  readonly refusedConnections: client.Counter;
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
    this.signalsDropped = new client.Counter({
      name: "herald_signals_dropped_total",
      help: "Signals not sent to a connection whose send buffer was over HERALD_MAX_BUFFERED",
      registers,
    });
    this.refusedConnections = new client.Counter({
      name: "herald_connections_refused_total",
      help: "Connections refused at accept because HERALD_MAX_CONNECTIONS were open",
      registers,
    });
    this.commitSeconds = new client.Histogram({
      name: "herald_commit_seconds",
      help: "Time from a batch's commit to its durability (group commit and fsync)",
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    client.collectDefaultMetrics({ register: this.registry, prefix: "herald_process_" });
    store.onCommit((seconds) => this.commitSeconds.observe(seconds));
  }

  /** The consumer groups' backlogs (PROTOCOL.md "Groups"), summed from groups.ts when scraped. */
  watchGroups(stats: () => { lag: number }[]): void {
    const registers = [this.registry];
    new client.Gauge({
      name: "herald_group_backlog",
      help: "Messages above their group's low-water mark not yet acked or dead-lettered, over all groups",
      registers,
      collect() {
        this.set(stats().reduce((sum, g) => sum + g.lag, 0));
      },
    });
    new client.Gauge({
      name: "herald_group_backlog_max",
      help: "The largest backlog of one group: publishes to its topic get BACKLOG_FULL at HERALD_MAX_BACKLOG",
      registers,
      collect() {
        this.set(stats().reduce((max, g) => Math.max(max, g.lag), 0));
      },
    });
  }
}
