/**
 * Transactional half messages (PROTOCOL.md "Transactions"), as RocketMQ has them: `prepare` stores
 * a message durably but delivers nothing and gives it no seq; the producer runs its local
 * transaction, then `commit` appends it like a publish (its seq and ts are the commit's) or
 * `rollback` drops it. Ids are shared with `publish`, per publisher: (user, id).
 *
 * A producer that decides neither within HERALD_TXN_CHECK_MS (it crashed between its local commit
 * and ours, say) is asked: `txn-check` `{ id, topic }` goes to the client that prepared, or else
 * to the user's newest live connection, once per period; each period counts as a check whether
 * anyone could be asked or not, an answer other than commit or rollback counts as unknown, and
 * after HERALD_TXN_MAX_CHECKS checks the server rolls back. The half messages and their check
 * counts are in the store, so all of this goes on after a restart or a SIGKILL.
 *
 * The pending ones are also kept here, in memory: `publish` of a pending id is CONFLICT without a
 * store read, and a commit under way is known, so that a second commit waits for the first and a
 * rollback meanwhile is CONFLICT.
 *
 * In a cluster a half message may have been prepared on another node, so a commit or rollback of
 * an id not known here looks in the store, whose commit checks inside its transaction that the
 * half message is still pending (a commit and a rollback on two nodes cannot both win). One node
 * at a time, the cluster's leader, runs the checks, reading the pending ones from the store on
 * each pass, and a `txn-check` goes to the producer's connection on whichever node has it.
 */
import { HeraldError } from "../shared/errors.js";
import type { EmptyOk, PrepareOk, PublishOk, TxnCheckEvent, TxnState } from "../shared/protocol.js";
import type { PrepareArgs } from "../shared/schemas.js";
import type { Caller } from "./caller.js";
import type { Config } from "./config.js";
import type { Groups } from "./groups.js";
import type { Logger } from "./log.js";
import type { Metrics } from "./metrics.js";
import { acceptPublish } from "./payload.js";
import type { Session } from "./session.js";
import type { PreparedMessage, Store } from "./store/store.js";

interface Pending {
  message: PreparedMessage;
  /** A commit under way: a second one waits for it. */
  committing?: Promise<PublishOk>;
}

/** What transactions need of the hub; `session` and `newest` say whom `txn-check` may ask. */
export interface TxnDeps {
  store: Store;
  groups: Groups;
  config: Readonly<Config>;
  metrics: Metrics;
  log: Logger;
  /** The live session of a (user, clientId), if any. */
  session(user: string, clientId: string): Session | undefined;
  /** The user's newest live connection (presence.ts). */
  newest(user: string): Session | undefined;
}

const key = (from: string, id: string) => `${from}\u0000${id}`;

/** What transactions need of a cluster (cluster.ts). */
export interface TxnCluster {
  /** Whether this node runs the checks now. */
  leader(): boolean;
  /** Asks the producer's connection on another node; its answer, or a HeraldError. */
  check(user: string, clientId: string, event: TxnCheckEvent, timeoutMs: number): Promise<unknown>;
}

export class Transactions {
  private readonly pending = new Map<string, Pending>();
  /** The leader's read of the pending ones is under way. */
  private refreshing = false;
  private timer: ReturnType<typeof setInterval> | undefined;
  /** Set in a cluster. */
  cluster: TxnCluster | undefined;

  constructor(
    private readonly ctx: TxnDeps,
    private readonly now: () => number = Date.now,
  ) {}

  /** Loads the pending half messages (they survive restarts) and starts checking them. */
  async start(): Promise<void> {
    for (const message of await this.ctx.store.preparedMessages()) {
      this.pending.set(key(message.from, message.id), { message });
    }
    // Often enough that a check comes within a quarter period of its time, seldom enough to cost nothing.
    const every = Math.min(1000, Math.max(10, Math.floor(this.ctx.config.txnCheckMs / 4)));
    this.timer = setInterval(() => this.checkDue(), every);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** PROTOCOL: `publish` of a pending id is CONFLICT. */
  refusePending(from: string, id: string): void {
    if (this.pending.has(key(from, id))) {
      throw new HeraldError("CONFLICT", `${id} is a prepared transaction: commit or roll it back`);
    }
  }

  async prepare(session: Session, args: PrepareArgs): Promise<PrepareOk> {
    const message = acceptPublish(this.ctx.config.maxPayload, session, args);
    session.bucket.take();
    const k = key(session.user, args.id);
    if (this.pending.has(k)) return { duplicate: true };
    // Added to the accepted message rather than spread into a copy: the spread of the two shapes
    // (with and without `key`) took 4% of the server's time under W10.
    const prepared: PreparedMessage = Object.assign(message, {
      clientId: session.clientId,
      preparedAt: this.now(),
      checks: 0,
    });
    // Known at once, so that a publish of the id while the store writes is CONFLICT already.
    const entry: Pending = { message: prepared };
    this.pending.set(k, entry);
    try {
      const { duplicate } = await this.ctx.store.prepare(prepared);
      if (duplicate && this.pending.get(k) === entry) this.pending.delete(k);
      return { duplicate };
    } catch (err) {
      if (this.pending.get(k) === entry) this.pending.delete(k);
      throw err;
    }
  }

  /** The pending entry of (user, id): known here, or in a cluster prepared on another node. */
  private async entry(user: string, id: string): Promise<Pending | undefined> {
    const k = key(user, id);
    const known = this.pending.get(k);
    if (known || !this.cluster) return known;
    const message = await this.ctx.store.pendingTxn(user, id);
    if (!message) return undefined;
    const entry = this.pending.get(k) ?? { message };
    this.pending.set(k, entry);
    return entry;
  }

  async commit(caller: Caller, id: string): Promise<PublishOk> {
    caller.bucket.check();
    const entry = await this.entry(caller.user, id);
    if (!entry) {
      const message = await this.ctx.store.committed(caller.user, id);
      if (!message) throw new HeraldError("NOT_FOUND", `no prepared transaction ${id}`);
      caller.bucket.spend();
      return { seq: message.seq, ts: message.ts, duplicate: true };
    }
    if (entry.committing) {
      const first = await entry.committing;
      return { ...first, duplicate: true };
    }
    // PROTOCOL: refused like a publish, the message then stays prepared.
    this.ctx.groups.checkBacklog(entry.message.topic);
    caller.bucket.spend();
    return this.commitPending(entry);
  }

  async rollback(caller: Caller, id: string): Promise<EmptyOk> {
    caller.bucket.check();
    const k = key(caller.user, id);
    const entry = await this.entry(caller.user, id);
    if (entry?.committing || (!entry && (await this.ctx.store.committed(caller.user, id)))) {
      throw new HeraldError("CONFLICT", `${id} is committed`);
    }
    caller.bucket.spend();
    // Committed on another node meanwhile: the store kept it.
    if (entry && !(await this.drop(k, entry)) && (await this.ctx.store.committed(caller.user, id))) {
      throw new HeraldError("CONFLICT", `${id} is committed`);
    }
    return {};
  }

  private commitPending(entry: Pending): Promise<PublishOk> {
    const { message } = entry;
    const counted = this.ctx.groups.coming(message.topic);
    const done = () => {
      if (counted) this.ctx.groups.left(message.topic);
    };
    const committing = this.ctx.store.commitPrepared(message).then(
      ({ message: stored, duplicate }) => {
        done();
        this.pending.delete(key(message.from, message.id));
        // A duplicate: another node committed it first.
        if (!duplicate) this.ctx.metrics.stored.inc();
        return { seq: stored.seq, ts: stored.ts, duplicate };
      },
      (err: unknown) => {
        done();
        delete entry.committing;
        // Rolled back on another node meanwhile: nothing left to commit.
        if (err instanceof HeraldError && err.code === "NOT_FOUND") this.pending.delete(key(message.from, message.id));
        throw err;
      },
    );
    entry.committing = committing;
    return committing;
  }

  /** Rolls back: the id is free again at once. Whether the store still had it pending. */
  private async drop(k: string, entry: Pending): Promise<boolean> {
    this.pending.delete(k);
    return this.ctx.store.rollbackPrepared(entry.message.from, entry.message.id);
  }

  /** One pass over the pending half messages: ask about each whose period is over, or roll it back. */
  private async checkDue(): Promise<void> {
    if (this.cluster) {
      if (!this.cluster.leader() || this.refreshing) return;
      // The others prepare and decide too: the store has the pending ones of every node.
      this.refreshing = true;
      try {
        await this.refresh();
      } catch (err) {
        this.ctx.log.error({ err }, "reading the pending transactions failed");
        return;
      } finally {
        this.refreshing = false;
      }
    }
    const { txnCheckMs, txnMaxChecks } = this.ctx.config;
    const now = this.now();
    for (const [k, entry] of this.pending) {
      const { message } = entry;
      // Periods count whether anyone could be asked or not, also those the server was down for.
      const periods = Math.floor((now - message.preparedAt) / txnCheckMs);
      if (entry.committing || periods <= message.checks) continue;
      if (periods > txnMaxChecks) {
        this.ctx.log.info({ user: message.from, id: message.id }, "transaction rolled back after its last check");
        this.drop(k, entry).catch((err: unknown) => this.ctx.log.error({ err }, "rollback after checks failed"));
        continue;
      }
      message.checks = periods;
      this.ctx.store
        .countTxnCheck(message.from, message.id, message.checks)
        .catch((err: unknown) => this.ctx.log.error({ err }, "counting a txn-check failed"));
      this.ask(k, entry);
    }
  }

  /** The store's pending half messages replace what this node knew, but for commits under way here. */
  private async refresh(): Promise<void> {
    const fresh = new Map<string, Pending>();
    for (const message of await this.ctx.store.preparedMessages()) {
      const k = key(message.from, message.id);
      fresh.set(k, this.pending.get(k) ?? { message });
    }
    for (const [k, entry] of this.pending) if (entry.committing) fresh.set(k, entry);
    this.pending.clear();
    for (const [k, entry] of fresh) this.pending.set(k, entry);
  }

  /** A `txn-check` from the leader on another node, for a producer connected here: its answer. */
  answerCheck(user: string, clientId: string, event: TxnCheckEvent, timeoutMs: number): Promise<unknown> {
    const target = this.target(user, clientId);
    if (!target) return Promise.reject(new HeraldError("UNAVAILABLE", `${user} has no live connection here`));
    return target.socket
      .timeout(timeoutMs)
      .emitWithAck("txn-check", event)
      .catch(() => {
        throw new HeraldError("TIMEOUT", "no answer to txn-check");
      });
  }

  /** Asks the producer, on this node or (in a cluster) on the node that has it; one period at most. */
  private ask(k: string, entry: Pending): void {
    const { message } = entry;
    const event = { id: message.id, topic: message.topic };
    const ms = this.ctx.config.txnCheckMs;
    const asking = this.target(message.from, message.clientId)
      ? this.answerCheck(message.from, message.clientId, event, ms)
      : this.cluster?.check(message.from, message.clientId, event, ms);
    asking?.then(
      (answer) => this.decide(k, entry, answer as { state?: TxnState } | undefined),
      () => {}, // nobody to ask, or no answer: the period counts, and the next one asks again
    );
  }

  /** A `txn-check` answer: `commit` commits, `rollback` rolls back, anything else waits for the next period. */
  private decide(k: string, entry: Pending, answer: { state?: TxnState } | undefined): void {
    if (this.pending.get(k) !== entry || entry.committing) return;
    if (answer?.state === "rollback") {
      this.drop(k, entry).catch((e: unknown) => this.ctx.log.error({ err: e }, "rollback on check failed"));
    } else if (answer?.state === "commit") {
      try {
        this.ctx.groups.checkBacklog(entry.message.topic);
      } catch {
        return; // BACKLOG_FULL: it stays prepared, and the next period asks again
      }
      this.commitPending(entry).catch((e: unknown) => this.ctx.log.error({ err: e }, "commit on check failed"));
    }
  }

  private target(user: string, clientId: string): Session | undefined {
    const own = this.ctx.session(user, clientId);
    return own?.live ? own : this.ctx.newest(user);
  }
}
