/**
 * Prometheus metrics (prom-client), one registry per server so that several can share a process.
 * A scrape is cheap and its size bounded, whoever asks: counters are kept as events happen, nothing
 * reads the store, and no label takes a topic, user or client (a topic label named every inbox, and
 * anyone who can subscribe could grow the series without end). Per-topic detail is the admin API's
 * (`/api/v1/stats`).
 */
import client from "prom-client";
import type { Message } from "../shared/protocol.js";
import { type Latency, StageHistogram } from "./latency.js";
import type { Store } from "./store/store.js";

/** The publish path's stages (docs/bench.md "Where a publish's time goes"). */
const STAGES = ["wait", "commit", "sync", "reply"] as const;
/** How a delivered message reached its connection. */
const PATHS = ["live", "read", "group"] as const;

export class Metrics {
  readonly registry = new client.Registry();
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
  private readonly replayBatches: client.Counter;
  private readonly stage: Record<(typeof STAGES)[number], Latency>;
  private readonly publishDurable: Latency;
  private readonly path: Record<(typeof PATHS)[number], Latency>;
  /** When the newest batch became durable: the replies it resolves run right after (see replied). */
  private lastDurable = 0;

  constructor(store: Store, nodeId: string) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ node: nodeId });
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
    const stages = new StageHistogram(
      "herald_publish_stage_seconds",
      "Where a publish's time goes: wait (received to its commit's start: checks, the queue, an fdatasync under way), commit (the SQL transaction), sync (its fdatasync; 0 in normal), reply (durable to the reply handed to socket.io)",
      "stage",
      STAGES,
      this.registry,
    );
    this.stage = {
      wait: stages.stage("wait"),
      commit: stages.stage("commit"),
      sync: stages.stage("sync"),
      reply: stages.stage("reply"),
    };
    this.publishDurable = new StageHistogram(
      "herald_publish_durable_seconds",
      "Time from a publish's arrival to its durability, per message",
      undefined,
      [""],
      this.registry,
    ).stage("");
    const paths = new StageHistogram(
      "herald_durable_delivered_seconds",
      "Time from a message's durability to its `messages` emit, per delivery: live (taken from its commit), read (from the store by a stream that was behind; from the message's ts), group (to a group member; from its ts)",
      "path",
      PATHS,
      this.registry,
    );
    this.path = { live: paths.stage("live"), read: paths.stage("read"), group: paths.stage("group") };
    this.replayBatches = new client.Counter({
      name: "herald_replay_batches_total",
      help: "Batches read from the store for a stream or group that was behind (a reconnect, a replay, a full window)",
      registers,
    });
    new client.Gauge({
      name: "herald_store_bytes",
      help: "The store's files on disk (the database and its write-ahead log)",
      registers,
      async collect() {
        this.set(await store.diskBytes());
      },
    });
    client.collectDefaultMetrics({ register: this.registry, prefix: "herald_process_" });
    store.onCommit((t) => {
      this.commitSeconds.observe((t.durable - t.started) / 1000);
      this.lastDurable = t.durable;
      const n = t.arrived.length;
      if (n === 0) return;
      this.stage.commit.observe((t.committed - t.started) / 1000, n);
      this.stage.sync.observe((t.durable - t.committed) / 1000, n);
      for (const a of t.arrived) {
        this.stage.wait.observe((t.started - a) / 1000);
        this.publishDurable.observe((t.durable - a) / 1000);
      }
    });
  }

  /**
   * A publish's reply was handed to socket.io. The store answers a batch's writes right after it is
   * durable and before anything else runs (the replies are its promises' continuations), so the
   * newest durable batch is this reply's.
   */
  replied(): void {
    this.stage.reply.observe((performance.now() - this.lastDurable) / 1000);
  }

  /** `copies` connections got `batch` in one `messages` emit; `durableAt` for a live batch (performance.now()). */
  delivered(path: (typeof PATHS)[number], batch: Message[], copies: number, durableAt?: number): void {
    this.deliveries.inc(batch.length * copies);
    if (path === "read") this.replayBatches.inc();
    if (durableAt !== undefined) {
      this.path[path].observe((performance.now() - durableAt) / 1000, batch.length * copies);
      return;
    }
    // A message's ts is its commit's wall-clock time, in ms: enough for a stream that was behind.
    const now = Date.now();
    for (const m of batch) this.path[path].observe(Math.max(0, now - m.ts) / 1000, copies);
  }

  /** Live connections by transport (websocket, polling), counted from the hub when scraped. */
  watchConnections(transports: () => Iterable<string>): void {
    new client.Gauge({
      name: "herald_connections",
      help: "Live connections, by transport",
      labelNames: ["transport"],
      registers: [this.registry],
      collect() {
        this.reset();
        const counts = new Map<string, number>([
          ["websocket", 0],
          ["polling", 0],
        ]);
        for (const t of transports()) counts.set(t, (counts.get(t) ?? 0) + 1);
        for (const [transport, n] of counts) this.set({ transport }, n);
      },
    });
  }

  /** The cluster's fan-out (redis-fanout.ts): whether Redis is reachable, and how often readers went to the store. */
  fanout(): { onState(connected: boolean): void; onResync(): void } {
    const registers = [this.registry];
    const connected = new client.Gauge({
      name: "herald_fanout_connected",
      help: "1 while this node reaches the cluster's Redis; 0 while delivery between nodes goes through the store alone",
      registers,
    });
    const resyncs = new client.Counter({
      name: "herald_fanout_resyncs_total",
      help: "Times readers compared themselves with the store because a fan-out notice may have been lost",
      registers,
    });
    return { onState: (up) => connected.set(up ? 1 : 0), onResync: () => resyncs.inc() };
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
