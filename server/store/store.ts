/**
 * The storage interface: small, async and in protocol terms, so that the embedded SQLite store and
 * the PostgreSQL store of a cluster are interchangeable. `test/store-contract.ts` is the one behaviour
 * suite every implementation must pass.
 *
 * What a store promises:
 * - Every write (append, subscribe, unsubscribe, ack, ...) resolves only once it is as durable as
 *   the configured durability demands; writes that arrive together are committed together.
 * - Reads (`read`, `history`, `head`) see only durable messages, so nothing is ever delivered that a
 *   crash could take back and give to another message under the same seq.
 * - `onDurable` listeners get every newly stored message once, after the writes that stored them
 *   have resolved: one call per topic per commit, in seq order. herald.ts hands them to the
 *   fan-out (fanout.ts), which feeds delivery.ts and groups.ts; the store knows no reader.
 * - Seqs are gapless per topic and visible in seq order: once a reader sees seq n (in `read`,
 *   `history` or `head`) it sees every seq below it that retention kept. A store shared by several
 *   nodes keeps this across them (the seq is given inside the publishing transaction, held through
 *   its commit).
 * - Writes of one client take effect in the order they were made: an ack made before a
 *   `subscriptions` read is in what that read returns, and a later connection's writes of the same
 *   (user, clientId) come after an earlier one's (the REPLACED hand-over relies on it). The SQLite
 *   store has this from its one write queue; a shared store must keep it per client.
 * - `read` answers its messages and the durable head they were read up to in one round trip.
 * - What is live is the caller's to say: `sweep` keeps the clients `live` names, and in a cluster
 *   that must be every node's live clients, not one process's.
 *
 * Next on the path: fanout.ts.
 */
import type { Message, StatsOk } from "../../shared/protocol.js";

/** A message as publish.ts hands it over: validated, authorised, its payload already serialised. */
export interface NewMessage {
  id: string;
  topic: string;
  from: string;
  key?: string;
  payload: unknown;
  /** `JSON.stringify(payload)`, computed once for the size check and stored as is. */
  json: string;
  /** When the server received it (`performance.now()`), for the latency metrics; else when it was queued. */
  receivedAt?: number;
}

/** A half message (PROTOCOL.md "Transactions"): stored, not delivered, no seq until committed. */
export interface PreparedMessage extends NewMessage {
  /** The client that prepared it, whom `txn-check` asks first. */
  clientId: string;
  /** When it was prepared (ms since epoch): its checks are counted from then. */
  preparedAt: number;
  /** `txn-check` periods passed without a decision. */
  checks: number;
}

/** A committed batch's stages, in `performance.now()` milliseconds. */
export interface CommitTiming {
  /** Writes in the batch, of every kind. */
  writes: number;
  /** When each message the batch appended was received (`NewMessage.receivedAt`) or else queued. */
  arrived: number[];
  /** The batch's transaction began, ended, and was durable (fdatasync'd in `full`). */
  started: number;
  committed: number;
  durable: number;
}

export interface AppendResult {
  message: Message;
  /** The same publisher published this id before: nothing was stored, `message` is the first one. */
  duplicate: boolean;
}

/** Durable state belongs to the pair (user, clientId). */
export interface ClientKey {
  user: string;
  clientId: string;
}

export interface SubscribeResult {
  /** The highest seq ever assigned in the topic, read in the same transaction that set the cursor. */
  head: number;
  /** The cursor: every seq up to it is done. */
  acked: number;
  created: boolean;
}

export interface HistoryQuery {
  before?: number;
  after?: number;
  limit: number;
}

export interface SweepLimits {
  /** Messages older than this (ms since epoch) are removed, and so are publish ids and idle clients. */
  olderThan: number;
  /** At most this many messages are kept per topic. */
  maxMessages: number;
  /** Clients that are connected now, on any node, are kept whatever their age. */
  live: (client: ClientKey) => boolean;
}

/**
 * A consumer group's durable progress (PROTOCOL.md "Groups"). Its leases are not written: after a
 * restart every unfinished message above `acked` is handed out again, those up to `delivered` as
 * redeliveries.
 */
export interface GroupProgress {
  /** The low-water mark: every seq up to it is acked or dead-lettered. */
  acked: number;
  /** Finished seqs above `acked`, as ascending inclusive ranges. */
  done: [number, number][];
  /** [seq, attempts] of unfinished messages that were redelivered, so that a restart keeps counting. */
  attempts: [number, number][];
  /** Dead-lettered seqs handed back to the group (HTTP retry) and not finished again. */
  retried: number[];
  /** The highest seq handed out so far. */
  delivered: number;
}

/** Where a group's progress is read when it is written: at commit time, so that writes coalesce. */
export type ProgressSource = () => GroupProgress;

export interface GroupRecord {
  topic: string;
  group: string;
  progress: GroupProgress;
  /** Its durable members, live or not. */
  members: number;
}

export interface SweepResult {
  messages: number;
  clients: number;
  /** Groups whose last member went with a removed client. */
  endedGroups: { topic: string; group: string }[];
}

/** What the stats route (shared/protocol.ts StatsOk) reads from the store: all but who is live. */
export interface StoreStats {
  topics: StatsOk["topics"];
  subscriptions: Omit<StatsOk["subscriptions"][number], "live">[];
}

export interface Store {
  /** Assigns the topic's next seq and `ts`, or returns the first copy of a (from, id) seen before. */
  append(message: NewMessage): Promise<AppendResult>;
  /**
   * Durable messages with `after < seq`, ascending, at most `limit`, and the durable head they were
   * read up to: a reader learns both in one round trip, and `head` is never below the last message.
   */
  read(topic: string, after: number, limit: number): Promise<{ messages: Message[]; head: number }>;
  /** PROTOCOL.md `history`: the newest before `before`, the oldest after `after`, or the newest. */
  history(topic: string, query: HistoryQuery): Promise<Message[]>;
  /** The highest durable seq of the topic; 0 for a topic never written. */
  head(topic: string): Promise<number>;
  /** The message `from` published as `id`, unless retention removed it; dead letters are not looked at. */
  published(from: string, id: string): Promise<Message | undefined>;

  /** Registers the client; `first` is true on its first connection ever (or since it was swept). */
  touchClient(client: ClientKey, now: number): Promise<{ first: boolean }>;
  /**
   * Creates or resumes a durable subscription; `from` replays (PROTOCOL.md `subscribe`). A new one
   * is refused with LIMIT_EXCEEDED when the user already has `quota` subscriptions and group
   * memberships (HERALD_MAX_SUBSCRIPTIONS); without `quota` it is never refused.
   */
  subscribe(client: ClientKey, topic: string, from?: number, quota?: number): Promise<SubscribeResult>;
  unsubscribe(client: ClientKey, topic: string): Promise<void>;
  /** Moves the cursor to `max(acked, seq)`; the caller has already clamped `seq` to what was sent. */
  ack(client: ClientKey, topic: string, seq: number): Promise<void>;
  /**
   * The same for an ack that asked for no reply: kept in memory, coalesced per cursor, and written
   * within a short while or before anything else reads or changes that client's cursors. A crash
   * may lose it, which only means redelivery (PROTOCOL.md `ack`).
   */
  ackLater(client: ClientKey, topic: string, seq: number): void;
  /** The client's durable subscriptions and group memberships, for resuming them on connect. */
  subscriptions(client: ClientKey): Promise<{ topic: string; acked: number; group?: string }[]>;

  /**
   * Makes the client a durable member of the group, creating the group when it has none, with its
   * progress at `acked` = min(from - 1, head), or the head; `from` counts only then. A new
   * membership counts against `quota` as in `subscribe`.
   */
  joinGroup(
    client: ClientKey,
    topic: string,
    group: string,
    from?: number,
    quota?: number,
  ): Promise<{ head: number; created: boolean; progress: GroupProgress }>;
  /** Ends the membership; the group ends (its progress is deleted) with its last member. */
  leaveGroup(client: ClientKey, topic: string, group: string): Promise<{ ended: boolean }>;
  /** Writes the group's progress; the writes of one commit coalesce into one per group. */
  saveGroup(topic: string, group: string, progress: ProgressSource): Promise<void>;
  /** The same for an ack that asked for no reply: written within a short while (see ackLater). */
  saveGroupLater(topic: string, group: string, progress: ProgressSource): void;
  /**
   * Appends a dead letter to `message.topic` (a `dead:` topic: its ids are not deduplicated, as a
   * message may die more than once) and writes the group's progress in the same transaction.
   */
  deadLetter(message: NewMessage, group: { topic: string; group: string; progress: ProgressSource }): Promise<Message>;
  /**
   * Stores a half message; `duplicate` when the publisher's id is pending, committed or published
   * already (nothing changes then).
   */
  prepare(message: PreparedMessage): Promise<{ duplicate: boolean }>;
  /**
   * Appends a pending half message as `append` does and marks it committed, in one transaction
   * that checks it is pending: one committed already (by another node) answers the message it
   * became with `duplicate: true`, and one no longer there (rolled back) is NOT_FOUND.
   */
  commitPrepared(message: NewMessage): Promise<AppendResult>;
  /** Drops a pending half message; its id is free again. A committed one is left. Whether one was dropped. */
  rollbackPrepared(from: string, id: string): Promise<boolean>;
  /** The pending half message (from, id), if there is one: a shared store's other nodes may have prepared it. */
  pendingTxn(from: string, id: string): Promise<PreparedMessage | undefined>;
  /** Records how many `txn-check` periods a pending half message has passed. */
  countTxnCheck(from: string, id: string, checks: number): Promise<void>;
  /** The message a committed half message became (until retention removes its id), else undefined. */
  committed(from: string, id: string): Promise<Message | undefined>;
  /** Every pending half message, oldest first, for loading them at start. */
  preparedMessages(): Promise<PreparedMessage[]>;

  /** Every group, for loading them at start. */
  groups(): Promise<GroupRecord[]>;

  /** Retention: removes old messages, publish ids and the state of long-gone clients. */
  sweep(limits: SweepLimits): Promise<SweepResult>;
  stats(): Promise<StoreStats>;
  /** Bytes the store takes on disk, for /metrics: cheap, read no data. */
  diskBytes(): Promise<number>;

  /**
   * Durable messages another node stored (the fan-out's runs), kept for reads a little behind as
   * the store's own are. A store that is alone on its data has none to take.
   */
  remember(messages: Message[]): void;
  /** New durable messages, one topic per call (see the header), with when they became durable. */
  onDurable(listener: (messages: Message[], durableAt: number) => void): void;
  /** How a committed batch's stages went, for the metrics: called once per batch. */
  onCommit(listener: (timing: CommitTiming) => void): void;
  /**
   * Writes what waits in memory (acks that asked for no reply, groups' progress) now; resolves
   * once it is durable. A client's connection that moves to another node is let go with it.
   */
  flush(): Promise<void>;
  /** Finishes what is queued, flushes and closes. */
  close(): Promise<void>;
}
