/**
 * The shared store: PostgreSQL through `pg` (node-postgres), one database for every node of a
 * cluster (docs/architecture.md says why `pg` and how it was measured).
 *
 * Group commit (write-queue.ts): each node commits what its clients wrote meanwhile as one
 * transaction, one at a time, so writes that arrive together share a commit and one client's
 * writes take effect in the order it made them. A publishing transaction takes the topic's next
 * seqs by incrementing `topics.head`, whose row stays locked until COMMIT: a publisher on another
 * node waits for it, so seqs are gapless and commit in seq order, and a reader that sees seq n
 * sees every seq below it. Topics are locked in name order, so two nodes cannot deadlock.
 *
 * Durability is PostgreSQL's: `full` commits with `synchronous_commit = on` (with a synchronous
 * standby, a publish is answered once the standby has it), `normal` with `off`. A commit whose
 * answer was lost (the connection dropped) fails its writes with INTERNAL: the publisher retries
 * with the same id and gets the first copy if it did commit, so nothing is answered `ok` that was
 * not committed. PostgreSQL going away fails the batches meanwhile; the next batch tries again.
 *
 * Next on the path: fanout.ts (fed by onDurable).
 */
import pg from "pg";
import { HeraldError } from "../../shared/errors.js";
import type { Message } from "../../shared/protocol.js";
import type { Durability } from "../config.js";
import { DEDUPED, migrate } from "./pg-schema.js";
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
  type LazyWrites,
  NOT_PENDING,
  OVER_QUOTA,
  QueuedStore,
  type Write as QueuedWrite,
  refuseNotPending,
  refuseOverQuota,
  WriteQueue,
} from "./write-queue.js";

export interface PgStoreOptions {
  /** A PostgreSQL connection string; its `options` may set the `search_path` Herald's tables go in. */
  url: string;
  durability: Durability;
  /** Connections at most (2 or more): one for the node's commits, the rest for reads. */
  poolSize: number;
  now?: () => number;
  /** Faults that answer no request (an idle connection lost), for the logs. */
  onError?: (message: string) => void;
}

/** An op runs inside the batch's transaction, on its connection; one that appends adds to the batch's messages. */
type Op = (tx: pg.PoolClient, out: Fresh[]) => Promise<unknown>;
type Write = QueuedWrite<Op>;
type Append = Extract<Write, { kind: "append" }>;

/** bigint columns (seqs, ts, counts) as numbers: every one of them is below 2^53. */
const TYPES = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    if (oid === pg.types.builtins.INT8) return Number;
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

/** A publish that met a copy of its id committed meanwhile by another node: the batch runs again. */
class RaceLost extends Error {}
/**
 * A batch holding an id pending as a half message (prepared on any node) moves no counter, so it
 * inserts nothing and changes nothing, committed by itself or not: it then runs again the careful
 * way, which answers that publish CONFLICT (appendAll). Filtering the rows instead would leave a
 * seq counted and not inserted.
 */
const NONE_PENDING =
  "WHERE NOT EXISTS (SELECT 1 FROM txns t JOIN unnest($3::text[], $2::text[]) AS k(f, i) ON t.from_user = k.f AND t.id = k.i WHERE t.committed_seq IS NULL)";
/** SQLSTATE of a unique index's refusal: a publish id seen before (see insert). */
const UNIQUE_VIOLATION = "23505";
const MAX_ATTEMPTS = 5;

/** Any constant: the advisory lock that lets one node at a time run retention. */
const RETENTION_LOCK = 0x4865_7262;

export class PgStore extends QueuedStore<Op> implements Store {
  /** Reads. */
  private readonly pool: pg.Pool;
  /** The batches' transactions, one at a time. */
  private readonly writer: pg.Pool;
  private readonly now: () => number;
  protected readonly queue: WriteQueue<Op>;
  /** A batch's transaction is under way (one at a time: see the header). */
  private committing = false;
  /** The batch runs again after a RaceLost: look the publish ids up before inserting. */
  private careful = false;
  /** What the batch under way took from the lazy writes, to put back if it rolls back. */
  private taken: ReturnType<LazyWrites["take"]>[] = [];
  private closed = false;
  /**
   * The newest durable messages of each topic, this node's and the others' (remember), so that
   * the many streams of a busy topic that fall a little behind are fed without a query and a
   * JSON.parse each; `known` is the highest seq known durable per topic.
   */
  private readonly recent = new RecentMessages();
  private readonly known = new Map<string, number>();

  private constructor(options: PgStoreOptions) {
    super();
    this.now = options.now ?? Date.now;
    // `normal`: a commit does not wait for the WAL flush; a crash of PostgreSQL may lose the last
    // few hundred ms of commits, as `normal` in SQLite may lose them in a power loss. Added to the
    // URL's own `options` (a search_path, say), which would otherwise replace it.
    const url = new URL(options.url);
    const sync = `-c synchronous_commit=${options.durability === "full" ? "on" : "off"}`;
    url.searchParams.set("options", [url.searchParams.get("options"), sync].filter(Boolean).join(" "));
    // A connection that breaks (PostgreSQL restarted, a backend terminated) emits 'error', idle or
    // checked out, sometimes twice (the FATAL notice, then ECONNRESET); unheard, one would end the
    // process. The query under way fails by itself, and the pool drops the connection.
    const lost = (err: Error) => options.onError?.(`PostgreSQL connection lost: ${err.message}`);
    const pool = (max: number) => {
      const p = new pg.Pool({ connectionString: url.toString(), max, types: TYPES });
      p.on("error", lost);
      p.on("connect", (client) => client.on("error", lost));
      return p;
    };
    // The commits have a connection of their own: behind the reads of many streams in one pool,
    // a commit waited for a free connection, and W3's publishes with it (625 a second).
    this.writer = pool(1);
    this.pool = pool(options.poolSize - 1);
    this.queue = new WriteQueue<Op>(
      {
        mayCommit: () => !this.committing,
        commit: (writes) => {
          this.committing = true;
          void this.commit(writes);
        },
        busy: () => this.committing,
      },
      (tx) => this.writeLazy(tx),
      this.recent,
    );
  }

  /** Connects, creates or migrates the tables, and returns the store. */
  static async open(options: PgStoreOptions): Promise<PgStore> {
    const store = new PgStore(options);
    try {
      await migrate(store.writer);
    } catch (err) {
      await Promise.all([store.writer.end(), store.pool.end()]);
      throw err;
    }
    return store;
  }

  // ---- the batch transaction ----------------------------------------------------------------

  private async commit(writes: Write[]): Promise<void> {
    const started = performance.now();
    let messages: Fresh[] = [];
    let failure: unknown;
    let retried = false;
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      this.careful = attempt > 1;
      messages = [];
      failure = undefined;
      let client: pg.PoolClient | undefined;
      let committing = false;
      // A first try of a batch of publishes only is one statement (insert), committed by itself:
      // one round trip instead of three. Its unique index refuses a repeated id, which fails the
      // statement as a whole, and the next try goes the long way.
      const single = !this.careful && writes.every((w) => w.kind === "append");
      try {
        client = await this.writer.connect();
        if (single) {
          committing = true;
          await this.apply(client, writes, messages);
        } else {
          await client.query("BEGIN");
          await this.apply(client, writes, messages);
          committing = true;
          await client.query("COMMIT");
        }
        client.release();
        break;
      } catch (err) {
        failure = err;
        const raced = err instanceof RaceLost || (err as { code?: string }).code === UNIQUE_VIOLATION;
        if (!single) await client?.query("ROLLBACK").catch(() => {});
        // A connection that failed mid-transaction is not given to anyone again.
        client?.release(raced ? undefined : (err as Error));
        for (const t of this.taken) this.queue.lazy.restore(t);
        if (raced) continue;
        // Before COMMIT was sent nothing took effect, so one more try on a fresh connection hides a
        // connection the pool still held after PostgreSQL dropped it. A COMMIT without an answer
        // may have committed: that fails, and the publisher's retry with the same id finds out.
        if (committing || retried) break;
        retried = true;
      } finally {
        this.taken = [];
      }
    }
    this.committing = false;
    if (failure === undefined) {
      for (const { message } of messages) this.know(message.topic, message.seq);
      this.queue.settle({ started, committed: performance.now(), writes, messages });
    } else this.queue.reject(writes, `storage failure: ${(failure as Error).message}`, failure);
    this.queue.schedule();
  }

  /** Runs the writes in queue order; consecutive appends go in together, as one statement each step. */
  private async apply(tx: pg.PoolClient, writes: Write[], out: Fresh[]): Promise<void> {
    for (let i = 0; i < writes.length; ) {
      const w = writes[i]!;
      if (w.kind === "op") {
        w.result = await w.run(tx, out);
        i++;
        continue;
      }
      let end = i + 1;
      while (end < writes.length && writes[end]!.kind === "append") end++;
      await this.appendAll(tx, writes.slice(i, end) as Append[], out);
      i = end;
    }
  }

  /**
   * Appends: repeats inside the batch answered from their first copy, the rest in one statement
   * (insert). On a batch's second attempt the copies of ids published before are looked up first.
   */
  private async appendAll(tx: pg.PoolClient, appends: Append[], out: Fresh[], prepared = false) {
    const dedupKeys = appends.filter((w) => !isDead(w.message.topic));
    const earlier = new Map<string, Message>();
    /** Ids pending as half messages, perhaps prepared on another node: PROTOCOL says CONFLICT. */
    const pending = new Set<string>();
    // The first attempt leaves the copies to the dedup index (see insert): a publish seldom repeats.
    if (this.careful && dedupKeys.length > 0) {
      const keys = [dedupKeys.map((w) => w.message.from), dedupKeys.map((w) => w.message.id)];
      const { rows } = await tx.query<MessageRow>(
        `SELECT m.* FROM messages m JOIN unnest($1::text[], $2::text[]) AS k(f, i) ON m.from_user = k.f AND m.id = k.i WHERE ${DEDUPED}`,
        keys,
      );
      for (const r of rows) earlier.set(idKey(r.from_user, r.id), toMessage(r));
      if (!prepared) {
        const { rows: halves } = await tx.query<{ from_user: string; id: string }>(
          "SELECT t.from_user, t.id FROM txns t JOIN unnest($1::text[], $2::text[]) AS k(f, i) ON t.from_user = k.f AND t.id = k.i WHERE t.committed_seq IS NULL",
          keys,
        );
        for (const r of halves) pending.add(idKey(r.from_user, r.id));
      }
    }
    // Repeats inside the batch get their first copy's result, once it has one.
    const first = new Map<string, Append>();
    const repeats: [Append, Append][] = [];
    const fresh: Append[] = [];
    const counts = new Map<string, number>();
    for (const w of appends) {
      const m = w.message;
      if (!isDead(m.topic)) {
        const key = idKey(m.from, m.id);
        const copy = earlier.get(key);
        if (copy) {
          w.result = { message: copy, duplicate: true };
          continue;
        }
        if (pending.has(key)) {
          w.result = new HeraldError("CONFLICT", `${m.id} is a prepared transaction: commit or roll it back`);
          continue;
        }
        const twin = first.get(key);
        if (twin) {
          repeats.push([w, twin]);
          continue;
        }
        first.set(key, w);
      }
      fresh.push(w);
      counts.set(m.topic, (counts.get(m.topic) ?? 0) + 1);
    }
    if (fresh.length > 0) await this.insert(tx, fresh, counts, out, prepared);
    for (const [w, twin] of repeats) {
      const first = twin.result!;
      w.result = first instanceof Error ? first : { message: first.message, duplicate: true };
    }
  }

  /**
   * One statement: the topics' counters moved by the batch's counts (and locked, in name order),
   * and the messages inserted under the seqs that gives them (rank r of n in a topic whose head
   * became h gets h - n + r) with the topic's last ts. An id published before (or meanwhile on
   * another node) fails it on the dedup index, and with it the whole batch, which runs again with
   * the copies looked up first: a seq is never skipped.
   */
  private async insert(
    tx: pg.PoolClient,
    fresh: Append[],
    counts: Map<string, number>,
    out: Fresh[],
    prepared: boolean,
  ) {
    const topics = [...counts.keys()].sort();
    const rank = new Map<string, number>();
    const cols = { topic: [] as string[], id: [] as string[], from: [] as string[], rank: [] as number[] };
    const more = { key: [] as (string | null)[], payload: [] as string[] };
    for (const w of fresh) {
      const m = w.message;
      const r = (rank.get(m.topic) ?? 0) + 1;
      rank.set(m.topic, r);
      cols.topic.push(m.topic);
      cols.id.push(m.id);
      cols.from.push(m.from);
      cols.rank.push(r);
      more.key.push(m.key ?? null);
      more.payload.push(m.json);
    }
    // Named, so that each connection parses and plans it once.
    const { rows } = await tx.query<{ topic: string; seq: number; ts: number }>({
      name: prepared ? "herald-append-prepared" : "herald-append",
      text: `WITH heads AS (
         INSERT INTO topics AS t (name, head, last_ts)
           SELECT n, c, $9 FROM unnest($7::text[], $8::bigint[]) AS u(n, c) ${prepared ? "" : NONE_PENDING} ORDER BY n
         ON CONFLICT (name) DO UPDATE SET head = t.head + excluded.head, last_ts = GREATEST(t.last_ts, excluded.last_ts)
         RETURNING name, head, last_ts
       ), counted AS (SELECT * FROM unnest($7::text[], $8::bigint[]) AS c(n, c))
       INSERT INTO messages (topic, seq, id, from_user, ts, key, payload)
         SELECT m.topic, h.head - c.c + m.rank, m.id, m.from_user, h.last_ts, m.key, m.payload
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])
           AS m(topic, id, from_user, key, payload, rank)
         JOIN heads h ON h.name = m.topic JOIN counted c ON c.n = m.topic
       RETURNING topic, seq, ts`,
      values: [
        cols.topic,
        cols.id,
        cols.from,
        more.key,
        more.payload,
        cols.rank,
        topics,
        topics.map((t) => counts.get(t)!),
        this.now(),
      ],
    });
    if (rows.length !== fresh.length) throw new RaceLost("not every message was stored");
    // PROTOCOL: ts never decreases along seq; the counter row keeps the topic's last ts.
    const heads = new Map<string, { head: number; ts: number }>();
    for (const r of rows) {
      const h = heads.get(r.topic);
      if (!h || r.seq > h.head) heads.set(r.topic, { head: r.seq, ts: r.ts });
    }
    fresh.forEach((w, i) => {
      const m = w.message;
      const h = heads.get(m.topic)!;
      const seq = h.head - counts.get(m.topic)! + cols.rank[i]!;
      const message: Message = { id: m.id, topic: m.topic, seq, from: m.from, ts: h.ts, payload: m.payload };
      if (m.key !== undefined) message.key = m.key;
      w.result = { message, duplicate: false };
      out.push({ message, bytes: m.json.length });
    });
  }

  // ---- writes -------------------------------------------------------------------------------

  private write<T>(run: Op): Promise<T> {
    return this.queue.write(run);
  }

  /** Inside a write: the lazy cursors and the groups' progress go first, so the rest sees them. */
  private async writeLazy(tx: pg.PoolClient): Promise<void> {
    const taken = this.queue.lazy.take();
    if (taken.cursors.length === 0 && taken.groups.length === 0) return;
    this.taken.push(taken);
    if (taken.cursors.length > 0) {
      await tx.query(
        `UPDATE subscriptions s SET acked = GREATEST(s.acked, c.seq)
           FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS c(u, k, t, seq)
         WHERE s.user_id = c.u AND s.client_id = c.k AND s.topic = c.t`,
        [
          taken.cursors.map((c) => c.user),
          taken.cursors.map((c) => c.clientId),
          taken.cursors.map((c) => c.topic),
          taken.cursors.map((c) => c.seq),
        ],
      );
    }
    for (const g of taken.groups) await this.putProgress(tx, g.topic, g.group, g.progress);
  }

  private async putProgress(tx: pg.PoolClient, topic: string, group: string, p: GroupProgress): Promise<void> {
    const { acked, ...rest } = p;
    await tx.query(
      "INSERT INTO groups (topic, name, acked, progress) VALUES ($1, $2, $3, $4) ON CONFLICT (topic, name) DO UPDATE SET acked = excluded.acked, progress = excluded.progress",
      [topic, group, acked, JSON.stringify(rest)],
    );
  }

  /** The topic's committed head, seen from inside the batch (its own appends included). */
  private async headIn(tx: pg.PoolClient, topic: string): Promise<number> {
    const { rows } = await tx.query<{ head: number }>("SELECT head FROM topics WHERE name = $1", [topic]);
    return rows[0]?.head ?? 0;
  }

  /** Checked inside the write that would add the subscription, so concurrent subscribes cannot pass it together. */
  private async overQuota(tx: pg.PoolClient, user: string, quota: number | undefined): Promise<boolean> {
    if (quota === undefined) return false;
    const { rows } = await tx.query<{ n: number }>(
      "SELECT (SELECT count(*) FROM subscriptions WHERE user_id = $1) + (SELECT count(*) FROM group_members WHERE user_id = $1) AS n",
      [user],
    );
    return rows[0]!.n >= quota;
  }

  touchClient(client: ClientKey, now: number): Promise<{ first: boolean }> {
    return this.write(async (tx) => {
      const { rows } = await tx.query<{ first: boolean }>(
        "INSERT INTO clients (user_id, client_id, last_seen) VALUES ($1, $2, $3) ON CONFLICT (user_id, client_id) DO UPDATE SET last_seen = excluded.last_seen RETURNING (xmax = 0) AS first",
        [client.user, client.clientId, now],
      );
      return { first: rows[0]!.first };
    });
  }

  subscribe(client: ClientKey, topic: string, from?: number, quota?: number): Promise<SubscribeResult> {
    return this.write<SubscribeResult | typeof OVER_QUOTA>(async (tx) => {
      await this.writeLazy(tx);
      const head = await this.headIn(tx, topic);
      const { rows } = await tx.query<{ acked: number }>(
        "SELECT acked FROM subscriptions WHERE user_id = $1 AND client_id = $2 AND topic = $3",
        [client.user, client.clientId, topic],
      );
      const row = rows[0];
      if (row && from === undefined) return { head, acked: Math.min(row.acked, head), created: false };
      if (!row && (await this.overQuota(tx, client.user, quota))) return OVER_QUOTA;
      const acked = from === undefined ? head : Math.min(from - 1, head);
      await tx.query(
        "INSERT INTO subscriptions (user_id, client_id, topic, acked) VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, client_id, topic) DO UPDATE SET acked = excluded.acked",
        [client.user, client.clientId, topic, acked],
      );
      return { head, acked, created: row === undefined };
    }).then((result) => refuseOverQuota(result, quota));
  }

  unsubscribe(client: ClientKey, topic: string): Promise<void> {
    return this.write(async (tx) => {
      await this.writeLazy(tx);
      await tx.query("DELETE FROM subscriptions WHERE user_id = $1 AND client_id = $2 AND topic = $3", [
        client.user,
        client.clientId,
        topic,
      ]);
    });
  }

  ack(client: ClientKey, topic: string, seq: number): Promise<void> {
    return this.write(async (tx) => {
      await tx.query(
        "UPDATE subscriptions SET acked = GREATEST(acked, $1) WHERE user_id = $2 AND client_id = $3 AND topic = $4",
        [seq, client.user, client.clientId, topic],
      );
    });
  }

  subscriptions(client: ClientKey): Promise<{ topic: string; acked: number; group?: string }[]> {
    // A write, so that it comes after every ack queued before it (a REPLACED connection's).
    return this.write(async (tx) => {
      await this.writeLazy(tx);
      const subs: { topic: string; acked: number; group?: string }[] = (
        await tx.query<{ topic: string; acked: number }>(
          "SELECT topic, acked FROM subscriptions WHERE user_id = $1 AND client_id = $2 ORDER BY topic",
          [client.user, client.clientId],
        )
      ).rows;
      const { rows } = await tx.query<{ topic: string; name: string; acked: number }>(
        "SELECT m.topic, m.name, g.acked FROM group_members m JOIN groups g ON g.topic = m.topic AND g.name = m.name WHERE m.user_id = $1 AND m.client_id = $2 ORDER BY m.topic, m.name",
        [client.user, client.clientId],
      );
      for (const m of rows) subs.push({ topic: m.topic, acked: m.acked, group: m.name });
      return subs;
    });
  }

  joinGroup(
    client: ClientKey,
    topic: string,
    group: string,
    from?: number,
    quota?: number,
  ): Promise<{ head: number; created: boolean; progress: GroupProgress }> {
    return this.write<{ head: number; created: boolean; progress: GroupProgress } | typeof OVER_QUOTA>(async (tx) => {
      await this.writeLazy(tx);
      const head = await this.headIn(tx, topic);
      const member = await tx.query(
        "SELECT 1 FROM group_members WHERE user_id = $1 AND client_id = $2 AND topic = $3 AND name = $4",
        [client.user, client.clientId, topic, group],
      );
      if (member.rowCount === 0 && (await this.overQuota(tx, client.user, quota))) return OVER_QUOTA;
      await tx.query(
        "INSERT INTO group_members (user_id, client_id, topic, name) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        [client.user, client.clientId, topic, group],
      );
      // Locked, so that a member joining on another node waits instead of creating it twice.
      const { rows } = await tx.query<{ acked: number; progress: string }>(
        "SELECT acked, progress FROM groups WHERE topic = $1 AND name = $2 FOR UPDATE",
        [topic, group],
      );
      if (rows[0]) return { head, created: false, progress: toProgress(rows[0]) };
      const progress = newProgress(head, from);
      await this.putProgress(tx, topic, group, progress);
      return { head, created: true, progress };
    }).then((result) => refuseOverQuota(result, quota));
  }

  leaveGroup(client: ClientKey, topic: string, group: string): Promise<{ ended: boolean }> {
    return this.write(async (tx) => {
      await this.writeLazy(tx);
      await tx.query("DELETE FROM group_members WHERE user_id = $1 AND client_id = $2 AND topic = $3 AND name = $4", [
        client.user,
        client.clientId,
        topic,
        group,
      ]);
      return { ended: await this.endIfEmpty(tx, topic, group) };
    });
  }

  /** Deletes the group's progress when it has no member left; whether it did. */
  private async endIfEmpty(tx: pg.PoolClient, topic: string, group: string): Promise<boolean> {
    const ended = await tx.query(
      "DELETE FROM groups g WHERE topic = $1 AND name = $2 AND NOT EXISTS (SELECT 1 FROM group_members m WHERE m.topic = g.topic AND m.name = g.name)",
      [topic, group],
    );
    return (ended.rowCount ?? 0) > 0;
  }

  // ---- transactions (PROTOCOL.md "Transactions"), as in sqlite-store.ts ------------------------

  prepare(m: PreparedMessage): Promise<{ duplicate: boolean }> {
    return this.write(async (tx) => {
      const published = await tx.query(`SELECT 1 FROM messages WHERE from_user = $1 AND id = $2 AND ${DEDUPED}`, [
        m.from,
        m.id,
      ]);
      if (published.rowCount) return { duplicate: true };
      const put = await tx.query(
        "INSERT INTO txns (from_user, id, client_id, topic, key, payload, prepared_at, checks) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        [m.from, m.id, m.clientId, m.topic, m.key ?? null, m.json, m.preparedAt, m.checks],
      );
      return { duplicate: put.rowCount === 0 };
    });
  }

  commitPrepared(message: NewMessage): Promise<AppendResult> {
    // One op: the row locked and checked, the append and the row's update in one transaction, so
    // a commit or a rollback of the same half message on another node waits for it.
    return this.write<AppendResult | typeof NOT_PENDING>(async (tx, out) => {
      const { rows } = await tx.query<{ committed_seq: number | null }>(
        "SELECT committed_seq FROM txns WHERE from_user = $1 AND id = $2 FOR UPDATE",
        [message.from, message.id],
      );
      if (!rows[0]) return NOT_PENDING;
      if (rows[0].committed_seq !== null) {
        const { rows: first } = await tx.query<MessageRow>(
          `SELECT * FROM messages WHERE from_user = $1 AND id = $2 AND ${DEDUPED}`,
          [message.from, message.id],
        );
        return { message: toMessage(first[0]!), duplicate: true };
      }
      const append: Append = { kind: "append", message, resolve: () => {}, reject: () => {} };
      await this.appendAll(tx, [append], out, true);
      // No CONFLICT here: the half message's own id is the pending one.
      const result = append.result as AppendResult;
      await tx.query(
        "UPDATE txns SET committed_seq = $1, committed_at = $2, payload = NULL, key = NULL WHERE from_user = $3 AND id = $4",
        [result.message.seq, this.now(), message.from, message.id],
      );
      return result;
    }).then((result) => refuseNotPending(result, message.id));
  }

  rollbackPrepared(from: string, id: string): Promise<boolean> {
    return this.write(async (tx) => {
      const { rowCount } = await tx.query(
        "DELETE FROM txns WHERE from_user = $1 AND id = $2 AND committed_seq IS NULL",
        [from, id],
      );
      return (rowCount ?? 0) > 0;
    });
  }

  async pendingTxn(from: string, id: string): Promise<PreparedMessage | undefined> {
    const { rows } = await this.pool.query<TxnRow>(
      `SELECT ${TXN_COLUMNS} FROM txns WHERE from_user = $1 AND id = $2 AND committed_seq IS NULL`,
      [from, id],
    );
    return rows[0] ? toPrepared(rows[0]) : undefined;
  }

  countTxnCheck(from: string, id: string, checks: number): Promise<void> {
    return this.write(async (tx) => {
      await tx.query("UPDATE txns SET checks = $1 WHERE from_user = $2 AND id = $3 AND committed_seq IS NULL", [
        checks,
        from,
        id,
      ]);
    });
  }

  async committed(from: string, id: string): Promise<Message | undefined> {
    const { rows } = await this.pool.query<{ committed_seq: number | null }>(
      "SELECT committed_seq FROM txns WHERE from_user = $1 AND id = $2",
      [from, id],
    );
    if (rows[0]?.committed_seq == null) return undefined;
    return this.published(from, id);
  }

  async preparedMessages(): Promise<PreparedMessage[]> {
    const { rows } = await this.pool.query<TxnRow>(
      `SELECT ${TXN_COLUMNS} FROM txns WHERE committed_seq IS NULL ORDER BY prepared_at, from_user, id`,
    );
    return rows.map(toPrepared);
  }

  async groups(): Promise<GroupRecord[]> {
    const { rows } = await this.pool.query<{
      topic: string;
      name: string;
      acked: number;
      progress: string;
      members: number;
    }>(
      "SELECT g.topic, g.name, g.acked, g.progress, (SELECT count(*) FROM group_members m WHERE m.topic = g.topic AND m.name = g.name) AS members FROM groups g ORDER BY g.topic, g.name",
    );
    return rows.map((r) => ({ topic: r.topic, group: r.name, progress: toProgress(r), members: r.members }));
  }

  sweep(limits: SweepLimits): Promise<SweepResult> {
    return this.write(async (tx) => {
      const nothing: SweepResult = { messages: 0, clients: 0, endedGroups: [] };
      // One node at a time: the others find the lock taken and leave it for the next round.
      const { rows: lock } = await tx.query<{ ok: boolean }>("SELECT pg_try_advisory_xact_lock($1) AS ok", [
        RETENTION_LOCK,
      ]);
      if (!lock[0]!.ok) return nothing;
      await this.writeLazy(tx);
      let messages = 0;
      const { rows: topics } = await tx.query<{ name: string; head: number; floor: number; aged: number }>(
        "SELECT t.name, t.head, t.floor, coalesce((SELECT max(seq) FROM messages m WHERE m.topic = t.name AND m.ts < $1), 0) AS aged FROM topics t",
        [limits.olderThan],
      );
      for (const t of topics) {
        // By age, message and id go (ts grows with seq, so the expired rows are a prefix); by
        // count, keeping the newest maxMessages, the message goes and its id stays as a tombstone.
        const counted = Math.max(0, t.head - limits.maxMessages);
        const floor = Math.max(t.floor, t.aged + 1, counted + 1);
        if (t.aged > 0) {
          const { rows } = await tx.query<{ n: number }>(
            "WITH cut AS (DELETE FROM messages WHERE topic = $1 AND seq <= $2 RETURNING seq) SELECT count(*) FILTER (WHERE seq >= $3) AS n FROM cut",
            [t.name, t.aged, t.floor],
          );
          messages += rows[0]!.n; // tombstones below the old floor were counted when they were made
        }
        const stoned = await tx.query(
          "UPDATE messages SET payload = NULL, key = NULL WHERE topic = $1 AND seq >= $2 AND seq <= $3",
          [t.name, Math.max(t.floor, t.aged + 1), counted],
        );
        messages += stoned.rowCount ?? 0;
        if (floor !== t.floor) {
          await tx.query("UPDATE topics SET floor = GREATEST(floor, $2) WHERE name = $1", [t.name, floor]);
          // Only this node's memory: the others keep what they had, which was durable (a reader
          // behind may get a message retention removed instead of a gap; nothing is lost).
          this.recent.forget(t.name, floor - 1);
        }
      }
      // A committed id answers a repeated commit as long as the publish ids are kept.
      await tx.query("DELETE FROM txns WHERE committed_at < $1", [limits.olderThan]);
      let clients = 0;
      const endedGroups: { topic: string; group: string }[] = [];
      const { rows: gone } = await tx.query<{ user_id: string; client_id: string }>(
        "SELECT user_id, client_id FROM clients WHERE last_seen < $1",
        [limits.olderThan],
      );
      for (const c of gone) {
        if (limits.live({ user: c.user_id, clientId: c.client_id })) continue;
        const key = [c.user_id, c.client_id];
        await tx.query("DELETE FROM subscriptions WHERE user_id = $1 AND client_id = $2", key);
        const { rows: left } = await tx.query<{ topic: string; name: string }>(
          "DELETE FROM group_members WHERE user_id = $1 AND client_id = $2 RETURNING topic, name",
          key,
        );
        for (const m of left) {
          if (await this.endIfEmpty(tx, m.topic, m.name)) endedGroups.push({ topic: m.topic, group: m.name });
        }
        await tx.query("DELETE FROM clients WHERE user_id = $1 AND client_id = $2", key);
        clients++;
      }
      return { messages, clients, endedGroups };
    });
  }

  // ---- reads: committed is durable here, so every read sees only durable messages ------------

  private know(topic: string, seq: number): void {
    if (seq > (this.known.get(topic) ?? 0)) this.known.set(topic, seq);
  }

  remember(messages: Message[]): void {
    for (const m of messages) {
      // This node's own runs come back through the fan-out: they are here already.
      if (m.seq <= (this.known.get(m.topic) ?? 0)) continue;
      this.know(m.topic, m.seq);
      this.recent.add(m, JSON.stringify(m.payload).length);
    }
  }

  async read(topic: string, after: number, limit: number): Promise<{ messages: Message[]; head: number }> {
    // From memory only when it holds every message asked for: else one query. A reader at the
    // newest seq known here has nothing to read: a run it has not heard of comes by the fan-out,
    // and a lost one by a resync, which reads the head from the database first.
    const known = this.known.get(topic);
    if (known !== undefined && after >= known) return { messages: [], head: known };
    if (known !== undefined) {
      const cached = this.recent.read(topic, after, known, limit);
      if (cached && cached.length === Math.min(limit, known - after)) return { messages: cached, head: known };
    }
    // One round trip for the head and the messages, both from one snapshot.
    const { rows } = await this.pool.query<MessageRow & { head: number }>(
      `SELECT t.head, m.* FROM topics t LEFT JOIN LATERAL (
         SELECT * FROM messages WHERE topic = t.name AND seq > GREATEST($2::bigint, t.floor - 1) ORDER BY seq LIMIT $3
       ) m ON true WHERE t.name = $1`,
      [topic, after, limit],
    );
    const head = rows[0]?.head ?? 0;
    this.know(topic, head);
    return { messages: rows.filter((r) => r.seq !== null).map(toMessage), head };
  }

  async history(topic: string, query: HistoryQuery): Promise<Message[]> {
    const before = query.before ?? Number.MAX_SAFE_INTEGER;
    if (query.after !== undefined) {
      const { rows } = await this.pool.query<MessageRow>(
        `SELECT m.* FROM topics t JOIN messages m ON m.topic = t.name
         WHERE t.name = $1 AND m.seq > GREATEST($2::bigint, t.floor - 1) AND m.seq < $3 ORDER BY m.seq LIMIT $4`,
        [topic, query.after, before, query.limit],
      );
      return rows.map(toMessage);
    }
    const { rows } = await this.pool.query<MessageRow>(
      `SELECT * FROM (SELECT m.* FROM topics t JOIN messages m ON m.topic = t.name
         WHERE t.name = $1 AND m.seq >= t.floor AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3) x ORDER BY seq`,
      [topic, before, query.limit],
    );
    return rows.map(toMessage);
  }

  async head(topic: string): Promise<number> {
    const { rows } = await this.pool.query<{ head: number }>("SELECT head FROM topics WHERE name = $1", [topic]);
    const head = rows[0]?.head ?? 0;
    this.know(topic, head);
    return head;
  }

  async published(from: string, id: string): Promise<Message | undefined> {
    // Below the floor it is a tombstone.
    const { rows } = await this.pool.query<MessageRow>(
      `SELECT m.* FROM messages m JOIN topics t ON t.name = m.topic WHERE m.from_user = $1 AND m.id = $2 AND ${DEDUPED} AND m.seq >= t.floor`,
      [from, id],
    );
    return rows[0] ? toMessage(rows[0]) : undefined;
  }

  async stats(): Promise<StoreStats> {
    const { rows: topics } = await this.pool.query<{ topic: string; head: number }>(
      'SELECT name AS topic, head FROM topics ORDER BY name COLLATE "C"',
    );
    const { rows: subs } = await this.pool.query<{
      user: string;
      client_id: string;
      topic: string;
      acked: number;
      head: number | null;
      oldest: number | null;
    }>(
      `SELECT s.user_id AS "user", s.client_id, s.topic, s.acked, t.head, m.ts AS oldest FROM subscriptions s
         LEFT JOIN topics t ON t.name = s.topic
         LEFT JOIN messages m ON m.topic = s.topic AND m.seq = s.acked + 1
       ORDER BY s.topic COLLATE "C", s.user_id COLLATE "C", s.client_id COLLATE "C"`,
    );
    return {
      topics,
      subscriptions: subs.map((s) => subscriptionStats(s, s.head ?? 0)),
    };
  }

  async diskBytes(): Promise<number> {
    // From the catalog: no table is read.
    const { rows } = await this.pool.query<{ bytes: number | null }>(
      "SELECT sum(pg_total_relation_size(c.oid))::bigint AS bytes FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'",
    );
    return rows[0]?.bytes ?? 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.close();
    await Promise.all([this.writer.end(), this.pool.end()]);
  }
}

function isDead(topic: string): boolean {
  return topic.startsWith("dead:");
}

function idKey(from: string, id: string): string {
  return `${from}\u0000${id}`;
}
