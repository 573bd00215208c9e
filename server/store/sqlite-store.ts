/**
 * The embedded store: SQLite through better-sqlite3, in WAL mode.
 *
 * Group commit (write-queue.ts): every write is queued and the queue is committed as one
 * transaction, so publishes that arrive together share one commit. better-sqlite3 is synchronous,
 * and an fsync inside COMMIT would stop the event loop for as long as the disk takes (0.15 ms here,
 * 2-10 ms on a cloud volume). So SQLite runs with synchronous=NORMAL (a commit only writes the WAL into the page
 * cache) and `full` durability is an fdatasync of the WAL file in libuv's thread pool, after which
 * the batch's writes resolve. That is the guarantee of synchronous=FULL (the WAL is on disk before
 * anything is answered) without blocking: while an fdatasync runs, new writes queue up; its
 * completion answers its batch, and the queue is committed in one transaction at the end of that
 * event-loop turn, which starts the next fdatasync (on a slow disk a second one may start
 * meanwhile, see maySync). `normal` commits once per event-loop turn. Only messages whose
 * fdatasync has finished are readable (`durable` heads), so nothing a crash could undo is delivered.
 *
 * Next on the path: fanout.ts (fed by onDurable).
 */
import fs from "node:fs";
import path from "node:path";
import type Database from "better-sqlite3";
import type { Message } from "../../shared/protocol.js";
import type { Durability } from "../config.js";
import { Checkpointer } from "./checkpointer.js";
import { DataDirOwner } from "./owner.js";
import { RecentMessages } from "./recent.js";
import {
  type MessageRow,
  newProgress,
  subscriptionStats,
  TXN_COLUMNS,
  type TxnRow,
  toMessage,
  toPrepared,
  toProgress,
} from "./rows.js";
import { DEDUPED, openDatabase } from "./sqlite-schema.js";
import type {
  AppendResult,
  ClientKey,
  GroupProgress,
  GroupRecord,
  HistoryQuery,
  NewMessage,
  PreparedMessage,
  Store,
  StoreStats,
  SubscribeResult,
  SweepLimits,
  SweepResult,
} from "./store.js";
import {
  type Fresh,
  NOT_PENDING,
  OVER_QUOTA,
  type Batch as QueuedBatch,
  QueuedStore,
  type Write as QueuedWrite,
  refuseNotPending,
  refuseOverQuota,
  WriteQueue,
} from "./write-queue.js";

export interface SqliteStoreOptions {
  dataDir: string;
  durability: Durability;
  /** The clock; tests of retention pass their own. */
  now?: () => number;
  /** Storage faults that answer no request (a failed checkpoint), for the logs. */
  onError?: (message: string) => void;
}

/** An op runs inside the batch's transaction, synchronously (better-sqlite3); an op that appends adds to the batch's messages and heads. */
type Op = (out: Fresh[], touched: Map<string, number>) => unknown;
type Write = QueuedWrite<Op>;

/** A committed batch waiting to be durable, with the heads it moved. */
interface Batch extends QueuedBatch<Op> {
  heads: Map<string, number>;
}

/** fdatasyncs under way at most, and how old the first must be before a second starts (maySync). */
const MAX_SYNCS = 2;
const SECOND_SYNC_AFTER_MS = 1;

/**
 * The WAL size past which the writer holds a commit until the checkpointer has caught up, so that
 * the WAL starts over (see boundWal). Each hold stops commits for a checkpoint's two fsyncs; at
 * W4's 5000 small commits a second the WAL grows by tens of MB a second, and with 16 MiB the holds
 * came often enough to be the tail: a publish's arrival-to-durable p99.9 was 13 ms, against 4-7 ms
 * with 64 MiB (`npm run bench -- --trace`, two runs each; W1 the same).
 */
export const WAL_LIMIT = 64 * 1024 * 1024;

export class SqliteStore extends QueuedStore<Op> implements Store {
  private readonly db: Database.Database;
  /** This store's claim on its data directory (owner.ts). */
  private readonly owner: DataDirOwner;
  private readonly durability: Durability;
  private readonly now: () => number;
  private walFd: number | undefined;
  private readonly checkpointer: Checkpointer;
  /** Commits wait for the checkpointer to catch up (boundWal). */
  private walHeld = false;
  private readonly log: ((message: string) => void) | undefined;

  /**
   * Per topic: the assigned head and last ts, ahead of the durable ones while a batch is in
   * flight, and the floor, the first seq that may still be read (see sqlite-schema.ts).
   */
  private readonly heads = new Map<string, { head: number; lastTs: number; floor: number }>();
  /** Topics that have their row in `topics`. */
  private readonly rowed = new Set<string>();
  /** What readers may see: heads whose batch is durable. */
  private readonly durable = new Map<string, number>();
  /** The newest durable messages, so that streams a little behind are fed from memory. */
  private readonly recent = new RecentMessages();

  protected readonly queue: WriteQueue<Op>;
  /** fdatasyncs under way, and committed batches not yet answered, oldest first. */
  private syncs = 0;
  private lastSyncStart = 0;
  private unsynced: Batch[] = [];
  private failed: Error | undefined;
  private closed = false;

  private readonly stmt: ReturnType<SqliteStore["statements"]>;
  /** Runs a batch of writes as one transaction (built once: better-sqlite3 wraps it per call otherwise). */
  private readonly commit: (writes: Write[], messages: Fresh[], touched: Map<string, number>) => void;

  constructor(options: SqliteStoreOptions) {
    super();
    fs.mkdirSync(options.dataDir, { recursive: true });
    this.owner = new DataDirOwner(options.dataDir);
    this.durability = options.durability;
    this.now = options.now ?? Date.now;
    try {
      this.db = openDatabase(path.join(options.dataDir, "herald.db"), WAL_LIMIT);
    } catch (err) {
      this.owner.release();
      throw err;
    }
    this.log = options.onError;
    this.checkpointer = new Checkpointer(this.db.name, options.onError ?? (() => {}));
    this.stmt = this.statements();
    this.queue = new WriteQueue<Op>(
      {
        mayCommit: () => !this.walHeld && this.maySync(),
        commit: (writes) => this.commitBatch(writes),
        busy: () => this.syncs > 0 || this.walHeld,
      },
      () => this.writeLazy(),
      this.recent,
    );
    this.commit = this.db.transaction((writes: Write[], messages: Fresh[], touched: Map<string, number>) => {
      for (const w of writes) {
        if (w.kind === "append") w.result = this.applyAppend(w.message, messages, touched);
        else w.result = w.run(messages, touched);
      }
      // A topic's row is written when it is created and by the sweep, not on every commit: that
      // would add a page to every commit's WAL. Its head is max(row, newest message) (loadHead).
      for (const topic of touched.keys()) {
        if (this.rowed.has(topic)) continue;
        const h = this.heads.get(topic)!;
        this.stmt.upsertTopic.run(topic, h.head, h.lastTs, h.floor);
        this.rowed.add(topic);
      }
    });
    for (const { name } of this.db.prepare("SELECT name FROM topics").all() as { name: string }[]) {
      this.loadHead(name);
      this.durable.set(name, this.heads.get(name)!.head);
    }
  }

  /** The topic's head and last ts (its row, or its newest message where that is newer) and floor. */
  private loadHead(topic: string): void {
    const row = this.stmt.getTopic.get(topic);
    if (!row) {
      this.heads.delete(topic);
      this.rowed.delete(topic);
      return;
    }
    const newest = this.stmt.newestMessage.get(topic);
    this.heads.set(topic, {
      head: Math.max(row.head, newest?.seq ?? 0),
      lastTs: Math.max(row.last_ts, newest?.ts ?? 0),
      floor: row.floor,
    });
    this.rowed.add(topic);
  }

  private statements() {
    const db = this.db;
    return {
      findById: db.prepare<[string, string], MessageRow>(
        `SELECT * FROM messages WHERE from_user = ? AND id = ? AND ${DEDUPED}`,
      ),
      // An id its publisher used before makes this a no-op: the dedup check (a seq taken twice
      // would still be an error).
      insertMessage: db.prepare(
        `INSERT INTO messages (topic, seq, id, from_user, ts, key, payload) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (from_user, id) WHERE ${DEDUPED} DO NOTHING`,
      ),
      getTopic: db.prepare<[string], { head: number; last_ts: number; floor: number }>(
        "SELECT head, last_ts, floor FROM topics WHERE name = ?",
      ),
      newestMessage: db.prepare<[string], { seq: number; ts: number }>(
        "SELECT seq, ts FROM messages WHERE topic = ? ORDER BY seq DESC LIMIT 1",
      ),
      upsertTopic: db.prepare(
        "INSERT INTO topics (name, head, last_ts, floor) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET head = excluded.head, last_ts = excluded.last_ts, floor = excluded.floor",
      ),
      readAfter: db.prepare<[string, number, number, number], MessageRow>(
        "SELECT * FROM messages WHERE topic = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
      ),
      readBefore: db.prepare<[string, number, number, number], MessageRow>(
        "SELECT * FROM (SELECT * FROM messages WHERE topic = ? AND seq > ? AND seq < ? ORDER BY seq DESC LIMIT ?) ORDER BY seq",
      ),
      getClient: db.prepare<[string, string], { last_seen: number }>(
        "SELECT last_seen FROM clients WHERE user = ? AND client_id = ?",
      ),
      upsertClient: db.prepare(
        "INSERT INTO clients (user, client_id, last_seen) VALUES (?, ?, ?) ON CONFLICT (user, client_id) DO UPDATE SET last_seen = excluded.last_seen",
      ),
      getSub: db.prepare<[string, string, string], { acked: number }>(
        "SELECT acked FROM subscriptions WHERE user = ? AND client_id = ? AND topic = ?",
      ),
      putSub: db.prepare(
        "INSERT INTO subscriptions (user, client_id, topic, acked) VALUES (?, ?, ?, ?) ON CONFLICT (user, client_id, topic) DO UPDATE SET acked = excluded.acked",
      ),
      ackSub: db.prepare(
        "UPDATE subscriptions SET acked = max(acked, ?) WHERE user = ? AND client_id = ? AND topic = ?",
      ),
      deleteSub: db.prepare("DELETE FROM subscriptions WHERE user = ? AND client_id = ? AND topic = ?"),
      listSubs: db.prepare<[string, string], { topic: string; acked: number }>(
        "SELECT topic, acked FROM subscriptions WHERE user = ? AND client_id = ? ORDER BY topic",
      ),
      getGroup: db.prepare<[string, string], { acked: number; progress: string }>(
        "SELECT acked, progress FROM groups WHERE topic = ? AND name = ?",
      ),
      putGroup: db.prepare(
        "INSERT INTO groups (topic, name, acked, progress) VALUES (?, ?, ?, ?) ON CONFLICT (topic, name) DO UPDATE SET acked = excluded.acked, progress = excluded.progress",
      ),
      deleteGroup: db.prepare("DELETE FROM groups WHERE topic = ? AND name = ?"),
      getMember: db.prepare<[string, string, string, string], { one: number }>(
        "SELECT 1 AS one FROM group_members WHERE user = ? AND client_id = ? AND topic = ? AND name = ?",
      ),
      countUserStreams: db.prepare<[string, string], { n: number }>(
        "SELECT (SELECT count(*) FROM subscriptions WHERE user = ?) + (SELECT count(*) FROM group_members WHERE user = ?) AS n",
      ),
      getTxn: db.prepare<[string, string], { committed_seq: number | null }>(
        "SELECT committed_seq FROM txns WHERE from_user = ? AND id = ?",
      ),
      putTxn: db.prepare(
        "INSERT OR IGNORE INTO txns (from_user, id, client_id, topic, key, payload, prepared_at, checks) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      ),
      commitTxn: db.prepare(
        "UPDATE txns SET committed_seq = ?, committed_at = ?, payload = NULL, key = NULL WHERE from_user = ? AND id = ?",
      ),
      deletePendingTxn: db.prepare("DELETE FROM txns WHERE from_user = ? AND id = ? AND committed_seq IS NULL"),
      countTxnCheck: db.prepare("UPDATE txns SET checks = ? WHERE from_user = ? AND id = ? AND committed_seq IS NULL"),
      pendingTxns: db.prepare<[], TxnRow>(
        `SELECT ${TXN_COLUMNS} FROM txns WHERE committed_seq IS NULL ORDER BY prepared_at, from_user, id`,
      ),
      pendingTxn: db.prepare<[string, string], TxnRow>(
        `SELECT ${TXN_COLUMNS} FROM txns WHERE from_user = ? AND id = ? AND committed_seq IS NULL`,
      ),
      putMember: db.prepare("INSERT OR IGNORE INTO group_members (user, client_id, topic, name) VALUES (?, ?, ?, ?)"),
      deleteMember: db.prepare("DELETE FROM group_members WHERE user = ? AND client_id = ? AND topic = ? AND name = ?"),
      countMembers: db.prepare<[string, string], { n: number }>(
        "SELECT count(*) AS n FROM group_members WHERE topic = ? AND name = ?",
      ),
      listMemberships: db.prepare<[string, string], { topic: string; name: string; acked: number }>(
        "SELECT m.topic, m.name, g.acked FROM group_members m JOIN groups g ON g.topic = m.topic AND g.name = m.name WHERE m.user = ? AND m.client_id = ? ORDER BY m.topic, m.name",
      ),
    };
  }

  // ---- writes -------------------------------------------------------------------------------

  private write<T>(run: (out: Fresh[], touched: Map<string, number>) => T): Promise<T> {
    return this.queue.write(run);
  }

  /**
   * Commits a batch as one transaction, then makes it durable. In `full` mode that is one
   * transaction per fdatasync: what arrives while the disk flushes is committed together when it
   * is done (or when maySync lets a second fdatasync start).
   */
  private commitBatch(writes: Write[]): void {
    const started = performance.now();
    const messages: Fresh[] = [];
    const touched = new Map<string, number>();
    try {
      this.commit(writes, messages, touched);
    } catch (cause) {
      // The transaction rolled back: forget the seqs it assigned (and floors a sweep raised) and
      // fail every write in it.
      for (const topic of [...this.heads.keys()]) this.loadHead(topic);
      this.queue.reject(writes, "storage failure", cause);
      return;
    }
    const batch: Batch = { started, committed: performance.now(), writes, messages, heads: touched };
    this.boundWal();
    if (this.durability === "full") this.sync(batch);
    else this.settle(batch);
  }

  private applyAppend(m: NewMessage, out: Fresh[], touched: Map<string, number>): AppendResult {
    let h = this.heads.get(m.topic);
    if (!h) {
      h = { head: 0, lastTs: 0, floor: 1 };
      this.heads.set(m.topic, h);
    }
    const seq = h.head + 1;
    // PROTOCOL: ts never decreases along seq within a topic, even if the clock steps back.
    const ts = Math.max(this.now(), h.lastTs);
    if (this.stmt.insertMessage.run(m.topic, seq, m.id, m.from, ts, m.key ?? null, m.json).changes === 0) {
      return { message: toMessage(this.stmt.findById.get(m.from, m.id)!), duplicate: true };
    }
    h.head = seq;
    h.lastTs = ts;
    touched.set(m.topic, seq);
    const message: Message = { id: m.id, topic: m.topic, seq, from: m.from, ts, payload: m.payload };
    if (m.key !== undefined) message.key = m.key;
    out.push({ message, bytes: m.json.length });
    return { message, duplicate: false };
  }

  /** The WAL file, opened once after the first commit created it: for fdatasync and its size. */
  private wal(): number {
    this.walFd ??= fs.openSync(`${this.db.name}-wal`, "r");
    return this.walFd;
  }

  /**
   * Under a load with no pause the checkpointer never finds the WAL all copied at the start of a
   * write, so the WAL would grow without end. Past WAL_LIMIT the writer holds its next commit (the
   * event loop goes on; writes queue up) until the checkpointer has copied everything: that next
   * commit then starts the WAL over, and `journal_size_limit` cuts the file back to WAL_LIMIT.
   */
  private boundWal(): void {
    if (this.walHeld || fs.fstatSync(this.wal()).size <= WAL_LIMIT) return;
    this.walHeld = true;
    this.checkpointer.catchUp().then((caughtUp) => {
      this.walHeld = false;
      if (!caughtUp && this.checkpointer.dead && !this.closed) {
        // Without its worker the writer checkpoints itself, on the event loop: a pause, but the WAL
        // stays bounded and nothing waits for an answer that will not come.
        this.db.pragma("wal_checkpoint(TRUNCATE)");
      } else if (!caughtUp) this.log?.("the WAL checkpoint did not catch up; the WAL may grow");
      this.queue.flush();
      this.queue.settleIdle();
    });
  }

  /**
   * Whether a commit may start its fdatasync now. One at a time makes the batches big; a second
   * one is let in only once the first has taken over SECOND_SYNC_AFTER_MS, which happens on a slow
   * disk, where two flushes under way nearly double what it takes.
   */
  private maySync(): boolean {
    if (this.durability === "normal" || this.syncs === 0) return true;
    return this.syncs < MAX_SYNCS && performance.now() - this.lastSyncStart >= SECOND_SYNC_AFTER_MS;
  }

  /**
   * The WAL on disk, in libuv's thread pool; then every batch it covers is answered, in commit
   * order (a later fdatasync covers the earlier batches too, so it may answer them first).
   */
  private sync(batch: Batch): void {
    this.syncs++;
    this.lastSyncStart = performance.now();
    this.unsynced.push(batch);
    fs.fdatasync(this.wal(), (err) => {
      this.syncs--;
      if (this.failed) return;
      if (err) {
        // Like PostgreSQL after a failed fsync, do not pretend: nothing more is accepted.
        this.failed = err;
        const reason = "storage failure: fdatasync failed";
        for (const b of this.unsynced.splice(0)) this.queue.reject(b.writes, reason, err);
        this.queue.fail(reason, err);
        return;
      }
      const covered = this.unsynced.indexOf(batch) + 1;
      const done = this.unsynced.splice(0, covered);
      for (const b of done) this.settle(b);
      // What waited for this fdatasync is committed at the end of the turn, with what the turn's
      // socket reads add. Committed at once, before the answers, the commits were smaller: W2
      // delivered 4% less, W4's p99 and W8's history p99 were a little longer, W1 the same.
      this.queue.schedule();
      this.queue.settleIdle();
    });
  }

  private settle(batch: Batch): void {
    for (const [topic, head] of batch.heads) this.durable.set(topic, head);
    this.queue.settle(batch);
  }

  touchClient(client: ClientKey, now: number): Promise<{ first: boolean }> {
    return this.write(() => {
      const first = this.stmt.getClient.get(client.user, client.clientId) === undefined;
      this.stmt.upsertClient.run(client.user, client.clientId, now);
      return { first };
    });
  }

  subscribe(client: ClientKey, topic: string, from?: number, quota?: number): Promise<SubscribeResult> {
    return this.write((): SubscribeResult | typeof OVER_QUOTA => {
      this.writeLazy();
      // The assigned head: this batch resolves only once everything up to it is durable.
      const head = this.heads.get(topic)?.head ?? 0;
      const row = this.stmt.getSub.get(client.user, client.clientId, topic);
      if (row && from === undefined) return { head, acked: Math.min(row.acked, head), created: false };
      if (!row && this.overQuota(client.user, quota)) return OVER_QUOTA;
      const acked = from === undefined ? head : Math.min(from - 1, head);
      this.stmt.putSub.run(client.user, client.clientId, topic, acked);
      return { head, acked, created: row === undefined };
    }).then((result) => refuseOverQuota(result, quota));
  }

  /** Checked inside the write that would add the subscription, so concurrent subscribes cannot pass it together. */
  private overQuota(user: string, quota: number | undefined): boolean {
    return quota !== undefined && this.stmt.countUserStreams.get(user, user)!.n >= quota;
  }

  unsubscribe(client: ClientKey, topic: string): Promise<void> {
    return this.write(() => {
      this.writeLazy();
      this.stmt.deleteSub.run(client.user, client.clientId, topic);
    });
  }

  ack(client: ClientKey, topic: string, seq: number): Promise<void> {
    return this.write(() => {
      this.stmt.ackSub.run(seq, client.user, client.clientId, topic);
    });
  }

  /**
   * Inside a write: the lazy cursors and the groups' progress go first, so every read or change of
   * cursors sees them.
   */
  private writeLazy(): void {
    const { cursors, groups } = this.queue.lazy.take();
    for (const c of cursors) this.stmt.ackSub.run(c.seq, c.user, c.clientId, c.topic);
    for (const g of groups) this.putProgress(g.topic, g.group, g.progress);
  }

  private putProgress(topic: string, group: string, p: GroupProgress): void {
    const { acked, ...rest } = p;
    this.stmt.putGroup.run(topic, group, acked, JSON.stringify(rest));
  }

  joinGroup(
    client: ClientKey,
    topic: string,
    group: string,
    from?: number,
    quota?: number,
  ): Promise<{ head: number; created: boolean; progress: GroupProgress }> {
    return this.write(() => {
      this.writeLazy();
      const head = this.heads.get(topic)?.head ?? 0;
      const isMember = this.stmt.getMember.get(client.user, client.clientId, topic, group) !== undefined;
      if (!isMember && this.overQuota(client.user, quota)) return OVER_QUOTA;
      const row = this.stmt.getGroup.get(topic, group);
      this.stmt.putMember.run(client.user, client.clientId, topic, group);
      if (row) return { head, created: false, progress: toProgress(row) };
      const progress = newProgress(head, from);
      this.putProgress(topic, group, progress);
      return { head, created: true, progress };
    }).then((result) => refuseOverQuota(result, quota));
  }

  leaveGroup(client: ClientKey, topic: string, group: string): Promise<{ ended: boolean }> {
    return this.write(() => {
      this.writeLazy();
      this.stmt.deleteMember.run(client.user, client.clientId, topic, group);
      if (this.stmt.countMembers.get(topic, group)!.n > 0) return { ended: false };
      return { ended: this.stmt.deleteGroup.run(topic, group).changes > 0 };
    });
  }

  // ---- transactions (PROTOCOL.md "Transactions") ---------------------------------------------
  // A half message is a row of `txns` until it is committed (the row then keeps only the seq it
  // got, so that a repeated commit answers it, until retention) or rolled back (the row goes).

  prepare(m: PreparedMessage): Promise<{ duplicate: boolean }> {
    return this.write(() => {
      // A pending or committed id is a row already (the insert changes nothing); a published one is a message.
      if (this.stmt.findById.get(m.from, m.id)) return { duplicate: true };
      const { changes } = this.stmt.putTxn.run(
        m.from,
        m.id,
        m.clientId,
        m.topic,
        m.key ?? null,
        m.json,
        m.preparedAt,
        m.checks,
      );
      return { duplicate: changes === 0 };
    });
  }

  commitPrepared(message: NewMessage): Promise<AppendResult> {
    // One op: the check, the append and the row's update in one transaction, so a crash leaves
    // the half message either pending or committed, never both nor neither.
    return this.write((out, touched): AppendResult | typeof NOT_PENDING => {
      const row = this.stmt.getTxn.get(message.from, message.id);
      if (!row) return NOT_PENDING;
      if (row.committed_seq !== null) {
        return { message: toMessage(this.stmt.findById.get(message.from, message.id)!), duplicate: true };
      }
      const result = this.applyAppend(message, out, touched);
      this.stmt.commitTxn.run(result.message.seq, this.now(), message.from, message.id);
      return result;
    }).then((result) => refuseNotPending(result, message.id));
  }

  rollbackPrepared(from: string, id: string): Promise<boolean> {
    return this.write(() => this.stmt.deletePendingTxn.run(from, id).changes > 0);
  }

  async pendingTxn(from: string, id: string): Promise<PreparedMessage | undefined> {
    const row = this.stmt.pendingTxn.get(from, id);
    return row ? toPrepared(row) : undefined;
  }

  countTxnCheck(from: string, id: string, checks: number): Promise<void> {
    return this.write(() => {
      this.stmt.countTxnCheck.run(checks, from, id);
    });
  }

  async committed(from: string, id: string): Promise<Message | undefined> {
    const row = this.stmt.getTxn.get(from, id);
    if (row?.committed_seq == null) return undefined;
    return this.published(from, id);
  }

  async preparedMessages(): Promise<PreparedMessage[]> {
    return this.stmt.pendingTxns.all().map(toPrepared);
  }

  async groups(): Promise<GroupRecord[]> {
    const rows = this.db
      .prepare<[], { topic: string; name: string; acked: number; progress: string; members: number }>(
        "SELECT g.topic, g.name, g.acked, g.progress, (SELECT count(*) FROM group_members m WHERE m.topic = g.topic AND m.name = g.name) AS members FROM groups g ORDER BY g.topic, g.name",
      )
      .all();
    return rows.map((r) => ({ topic: r.topic, group: r.name, progress: toProgress(r), members: r.members }));
  }

  sweep(limits: SweepLimits): Promise<SweepResult> {
    return this.write(() => {
      this.writeLazy();
      let messages = 0;
      const chunk = this.db.prepare<[string, number], { seq: number; ts: number }>(
        "SELECT seq, ts FROM messages WHERE topic = ? AND seq > ? ORDER BY seq LIMIT 1000",
      );
      const cut = this.db.prepare("DELETE FROM messages WHERE topic = ? AND seq >= ? AND seq <= ?");
      const tombstone = this.db.prepare(
        "UPDATE messages SET payload = NULL, key = NULL WHERE topic = ? AND seq >= ? AND seq <= ?",
      );
      for (const [topic, h] of this.heads) {
        // By age, message and id go: ts grows with seq, so the expired rows are a prefix; walk it in chunks.
        let aged = 0;
        for (;;) {
          const rows = chunk.all(topic, aged);
          const last = rows.findLastIndex((r) => r.ts < limits.olderThan);
          if (last >= 0) aged = rows[last]!.seq;
          if (last < rows.length - 1 || rows.length === 0) break;
        }
        // By count, keeping the newest maxMessages: the message goes, its id stays until it ages out.
        const counted = Math.max(0, h.head - limits.maxMessages);
        const floor = Math.max(h.floor, aged + 1, counted + 1);
        if (aged > 0) {
          cut.run(topic, 0, Math.min(aged, h.floor - 1)); // tombstones, counted when they were made
          messages += cut.run(topic, h.floor, aged).changes;
        }
        messages += tombstone.run(topic, Math.max(h.floor, aged + 1), counted).changes;
        h.floor = floor;
        // The row keeps the head (and last ts) once retention removed every message.
        this.stmt.upsertTopic.run(topic, h.head, h.lastTs, floor);
        this.recent.forget(topic, floor - 1);
      }
      // A committed id answers a repeated commit as long as the publish ids are kept.
      this.db.prepare("DELETE FROM txns WHERE committed_at < ?").run(limits.olderThan);
      let clients = 0;
      const endedGroups: { topic: string; group: string }[] = [];
      const memberships = this.db.prepare<[string, string], { topic: string; name: string }>(
        "SELECT topic, name FROM group_members WHERE user = ? AND client_id = ?",
      );
      const gone = this.db
        .prepare<[number], { user: string; client_id: string }>(
          "SELECT user, client_id FROM clients WHERE last_seen < ?",
        )
        .all(limits.olderThan);
      for (const c of gone) {
        if (limits.live({ user: c.user, clientId: c.client_id })) continue;
        this.db.prepare("DELETE FROM subscriptions WHERE user = ? AND client_id = ?").run(c.user, c.client_id);
        for (const m of memberships.all(c.user, c.client_id)) {
          this.stmt.deleteMember.run(c.user, c.client_id, m.topic, m.name);
          if (
            this.stmt.countMembers.get(m.topic, m.name)!.n === 0 &&
            this.stmt.deleteGroup.run(m.topic, m.name).changes
          ) {
            endedGroups.push({ topic: m.topic, group: m.name });
          }
        }
        this.db.prepare("DELETE FROM clients WHERE user = ? AND client_id = ?").run(c.user, c.client_id);
        clients++;
      }
      return { messages, clients, endedGroups };
    });
  }

  // ---- reads --------------------------------------------------------------------------------

  /** Reads start at the floor: below it are only tombstones. */
  private floor(topic: string): number {
    return this.heads.get(topic)?.floor ?? 1;
  }

  async read(topic: string, after: number, limit: number): Promise<{ messages: Message[]; head: number }> {
    const head = this.durable.get(topic) ?? 0;
    const from = Math.max(after, this.floor(topic) - 1);
    if (from >= head) return { messages: [], head };
    const messages =
      this.recent.read(topic, from, head, limit) ?? this.stmt.readAfter.all(topic, from, head, limit).map(toMessage);
    return { messages, head };
  }

  async history(topic: string, query: HistoryQuery): Promise<Message[]> {
    const head = this.durable.get(topic) ?? 0;
    const before = Math.min(query.before ?? head + 1, head + 1);
    const below = this.floor(topic) - 1;
    if (query.after !== undefined) {
      return this.stmt.readAfter.all(topic, Math.max(query.after, below), before - 1, query.limit).map(toMessage);
    }
    return this.stmt.readBefore.all(topic, below, before, query.limit).map(toMessage);
  }

  async diskBytes(): Promise<number> {
    let bytes = 0;
    for (const file of [this.db.name, `${this.db.name}-wal`]) {
      bytes += (await fs.promises.stat(file).catch(() => undefined))?.size ?? 0;
    }
    return bytes;
  }

  async head(topic: string): Promise<number> {
    return this.durable.get(topic) ?? 0;
  }

  async published(from: string, id: string): Promise<Message | undefined> {
    const row = this.stmt.findById.get(from, id);
    // Below the floor it is a tombstone (or not yet durable above the durable head).
    if (!row || row.seq < this.floor(row.topic) || row.seq > (this.durable.get(row.topic) ?? 0)) return undefined;
    return toMessage(row);
  }

  subscriptions(client: ClientKey): Promise<{ topic: string; acked: number; group?: string }[]> {
    // A write, so that it comes after every ack queued before it (a REPLACED connection's).
    return this.write(() => {
      this.writeLazy();
      const subs: { topic: string; acked: number; group?: string }[] = this.stmt.listSubs.all(
        client.user,
        client.clientId,
      );
      for (const m of this.stmt.listMemberships.all(client.user, client.clientId)) {
        subs.push({ topic: m.topic, acked: m.acked, group: m.name });
      }
      return subs;
    });
  }

  async stats(): Promise<StoreStats> {
    const topics = [...this.durable]
      .map(([topic, head]) => ({ topic, head }))
      .sort((a, b) => a.topic.localeCompare(b.topic));
    const subs = this.db
      .prepare<[], { user: string; client_id: string; topic: string; acked: number; oldest: number | null }>(
        "SELECT s.user, s.client_id, s.topic, s.acked, m.ts AS oldest FROM subscriptions s LEFT JOIN messages m ON m.topic = s.topic AND m.seq = s.acked + 1 ORDER BY s.topic, s.user, s.client_id",
      )
      .all();
    return {
      topics,
      subscriptions: subs.map((s) => subscriptionStats(s, this.durable.get(s.topic) ?? 0)),
    };
  }

  /** One process owns the file (owner.ts): every durable message is this store's own. */
  remember(): void {}

  async close(): Promise<void> {
    if (this.closed) return;
    await this.queue.close();
    this.closed = true;
    await this.checkpointer.close();
    if (this.walFd !== undefined) fs.closeSync(this.walFd);
    this.db.close();
    this.owner.release();
  }
}
