/**
 * Group commit, shared by both stores: every write is queued, and what is queued is committed as
 * one transaction at the end of the event-loop turn, or, while the store's commits are busy (an
 * fdatasync under way in SQLite, a transaction in PostgreSQL), as soon as they let it. So writes
 * that arrive together share one commit, and a slow disk or a far database makes batches bigger
 * rather than commits more frequent.
 *
 * The store says when a batch may start (`mayCommit`), runs it (`commit`), and hands it back here
 * once it is durable (`settle`) or failed (`reject`). This file answers the writes, feeds the
 * metrics and the fan-out, and keeps the acks that asked for no reply (`LazyWrites`).
 */
import { HeraldError } from "../../shared/errors.js";
import type { Message } from "../../shared/protocol.js";
import type { RecentMessages } from "./recent.js";
import type {
  AppendResult,
  ClientKey,
  CommitTiming,
  GroupProgress,
  NewMessage,
  ProgressSource,
  Store,
} from "./store.js";

/** A queued write: it runs inside the next batch's transaction and resolves once that is durable. */
export type Write<Op> =
  | {
      kind: "append";
      message: NewMessage;
      /** When it was queued, unless the message says when it was received. */
      at?: number;
      /** An error refuses this append alone (a shared store's CONFLICT), not its batch. */
      result?: AppendResult | Error;
      resolve: (r: AppendResult) => void;
      reject: (e: unknown) => void;
    }
  | { kind: "op"; run: Op; result?: unknown; resolve: (r: unknown) => void; reject: (e: unknown) => void };

/** A message stored by a batch, with its payload's size for the in-memory budget. */
export interface Fresh {
  message: Message;
  bytes: number;
}

/** A committed batch: what it held, what it stored, and when its transaction began and ended. */
export interface Batch<Op> {
  started: number;
  committed: number;
  writes: Write<Op>[];
  messages: Fresh[];
}

export interface Committer<Op> {
  /** Whether a batch may start now; when that turns true again the store calls `flush`. */
  mayCommit(): boolean;
  /** Starts the batch's transaction; the store then calls `settle` or `reject` with it. */
  commit(writes: Write<Op>[]): void;
  /** Whether a commit or an fdatasync is under way: the queue is idle only when none is. */
  busy(): boolean;
}

/**
 * What an op returns for a refusal it expects, instead of throwing: a throw inside the batch's
 * transaction would roll back every other write in it. The op's caller turns it into the error.
 */
export const OVER_QUOTA = Symbol("over HERALD_MAX_SUBSCRIPTIONS");
export const NOT_PENDING = Symbol("not a pending half message");

export function refuseOverQuota<T>(result: T | typeof OVER_QUOTA, quota: number | undefined): T {
  if (result === OVER_QUOTA) {
    throw new HeraldError("LIMIT_EXCEEDED", `at most ${quota} subscriptions and group memberships per user`);
  }
  return result;
}

export function refuseNotPending<T>(result: T | typeof NOT_PENDING, id: string): T {
  if (result === NOT_PENDING) throw new HeraldError("NOT_FOUND", `no prepared transaction ${id}`);
  return result;
}

/** How long an ack without a callback may wait in memory before its cursor is written. */
const LAZY_MS = 100;

export interface LazyCursor {
  user: string;
  clientId: string;
  topic: string;
  seq: number;
}

/**
 * Acks that asked for no reply, and groups whose progress changed: kept in memory, coalesced per
 * cursor and per group, and written by the next write that takes them (within LAZY_MS, or first
 * thing in any write that reads or changes cursors, so that it sees them).
 */
const NOTHING_LAZY = Object.freeze({ cursors: [], groups: [] }) as unknown as ReturnType<LazyWrites["take"]>;

export class LazyWrites {
  private readonly cursors = new Map<string, LazyCursor>();
  /** Keyed by the group's progress source, which is one per group: no key is built per ack. */
  private readonly groups = new Map<ProgressSource, { topic: string; group: string }>();

  ack(client: ClientKey, topic: string, seq: number): void {
    const key = `${client.user}\u0000${client.clientId}\u0000${topic}`;
    const known = this.cursors.get(key);
    if (known) known.seq = Math.max(known.seq, seq);
    else this.cursors.set(key, { user: client.user, clientId: client.clientId, topic, seq });
  }

  dirty(topic: string, group: string, progress: ProgressSource): void {
    if (!this.groups.has(progress)) this.groups.set(progress, { topic, group });
  }

  get pending(): boolean {
    return this.cursors.size > 0 || this.groups.size > 0;
  }

  /** What to write now, the groups' progress read from their sources at this moment; then cleared. */
  take(): {
    cursors: LazyCursor[];
    groups: { topic: string; group: string; source: ProgressSource; progress: GroupProgress }[];
  } {
    if (!this.pending) return NOTHING_LAZY;
    const cursors = [...this.cursors.values()];
    const groups = [...this.groups].map(([source, g]) => ({ ...g, source, progress: source() }));
    this.cursors.clear();
    this.groups.clear();
    return { cursors, groups };
  }

  /** Puts back what `take` gave, for a transaction that rolled back. */
  restore(taken: ReturnType<LazyWrites["take"]>): void {
    for (const c of taken.cursors) this.ack(c, c.topic, c.seq);
    for (const g of taken.groups) this.dirty(g.topic, g.group, g.source);
  }
}

export class WriteQueue<Op> {
  private queue: Write<Op>[] = [];
  private scheduled = false;
  /** Set when the store can take no more writes: closed, or failed for good. */
  private stopped: { reason: string; cause?: unknown } | undefined;
  private idleWaiters: (() => void)[] = [];
  readonly lazy = new LazyWrites();
  private lazyTimer: NodeJS.Timeout | undefined;
  private readonly durableListeners: ((messages: Message[], durableAt: number) => void)[] = [];
  private readonly commitListeners: ((timing: CommitTiming) => void)[] = [];

  /**
   * @param writeLazy the op that writes what `lazy` holds, queued when its timer fires.
   * @param recent where durable messages go for reads a little behind (recent.ts), if the store
   *   keeps them.
   */
  constructor(
    private readonly committer: Committer<Op>,
    readonly writeLazy: Op,
    private readonly recent?: RecentMessages,
  ) {}

  append(message: NewMessage): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      this.enqueue({ kind: "append", message, resolve, reject });
    });
  }

  write<T>(run: Op): Promise<T> {
    return new Promise((resolve, reject) => {
      this.enqueue({ kind: "op", run, resolve: resolve as (r: unknown) => void, reject });
    });
  }

  /** Queues a write; writes queued in one call sequence land in the same batch, in this order. */
  enqueue(write: Write<Op>): void {
    if (this.stopped) {
      write.reject(new HeraldError("INTERNAL", this.stopped.reason, { cause: this.stopped.cause }));
      return;
    }
    if (write.kind === "append" && write.message.receivedAt === undefined) write.at = performance.now();
    this.queue.push(write);
    this.schedule();
  }

  /**
   * A commit at the end of this event-loop turn (setImmediate runs after the turn's I/O): every
   * write that the turn's socket reads bring joins it.
   */
  schedule(): void {
    if (this.scheduled || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(this.flush);
  }

  /** Hands everything queued to the store as one batch, if it may start one now. */
  readonly flush = (): void => {
    this.scheduled = false;
    if (this.queue.length === 0 || !this.committer.mayCommit()) return;
    const writes = this.queue;
    this.queue = [];
    this.committer.commit(writes);
  };

  /** Answers a durable batch's writes, times it for the metrics, and fans its messages out. */
  settle(batch: Batch<Op>): void {
    for (const w of batch.writes) {
      if (w.result instanceof Error) w.reject(w.result);
      else (w.resolve as (r: unknown) => void)(w.result);
    }
    // One run per topic, however the commit interleaved them: each listener fans a topic out once.
    const fresh = new Map<string, Message[]>();
    for (const { message, bytes } of batch.messages) {
      const run = fresh.get(message.topic);
      if (run) run.push(message);
      else fresh.set(message.topic, [message]);
      this.recent?.add(message, bytes);
    }
    const durable = performance.now();
    if (this.commitListeners.length > 0) {
      const arrived: number[] = [];
      for (const w of batch.writes) if (w.kind === "append") arrived.push(w.message.receivedAt ?? w.at!);
      const timing = {
        writes: batch.writes.length,
        arrived,
        started: batch.started,
        committed: batch.committed,
        durable,
      };
      for (const l of this.commitListeners) l(timing);
    }
    // Fan out after the replies: the resolved writes' continuations are queued first.
    if (fresh.size > 0) queueMicrotask(() => this.emitDurable(fresh, durable));
    this.settleIdle();
  }

  /** Fails a batch that did not commit (or whose durability is unknown): nothing in it was answered `ok`. */
  reject(writes: Write<Op>[], reason: string, cause: unknown): void {
    const err = new HeraldError("INTERNAL", reason, { cause });
    for (const w of writes) w.reject(err);
    this.settleIdle();
  }

  /** Takes no more writes, failing what is queued (the store fails the batches it holds). */
  fail(reason: string, cause: unknown): void {
    this.stopped = { reason, cause };
    this.reject(this.queue.splice(0), reason, cause);
  }

  private emitDurable(runs: Map<string, Message[]>, durableAt: number): void {
    for (const run of runs.values()) for (const l of this.durableListeners) l(run, durableAt);
  }

  /** Call when `busy` may have turned false: close waits for that. */
  settleIdle(): void {
    if (this.queue.length === 0 && !this.scheduled && !this.committer.busy()) {
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /** Arms the timer that writes what `lazy` holds within LAZY_MS. */
  writeSoon(): void {
    if (this.lazyTimer !== undefined || this.stopped) return;
    this.lazyTimer = setTimeout(() => {
      this.lazyTimer = undefined;
      this.write(this.writeLazy).catch(() => {});
    }, LAZY_MS);
    this.lazyTimer.unref();
  }

  onDurable(listener: (messages: Message[], durableAt: number) => void): void {
    this.durableListeners.push(listener);
  }

  onCommit(listener: (timing: CommitTiming) => void): void {
    this.commitListeners.push(listener);
  }

  /** Writes what `lazy` holds, waits for every write queued or under way, then takes no more. */
  async close(): Promise<void> {
    clearTimeout(this.lazyTimer);
    this.lazyTimer = undefined;
    if (this.lazy.pending) this.write(this.writeLazy).catch(() => {});
    await new Promise<void>((resolve) => {
      this.idleWaiters.push(resolve);
      this.settleIdle();
    });
    this.stopped ??= { reason: "the store is closed" };
  }
}

/**
 * What both stores do alike: the writes that only queue (an append, the lazy acks and progress, a
 * dead letter with its group's progress) and the listeners. A store makes its queue in its
 * constructor.
 */
export abstract class QueuedStore<Op>
  implements
    Pick<
      Store,
      "append" | "ackLater" | "saveGroup" | "saveGroupLater" | "deadLetter" | "flush" | "onDurable" | "onCommit"
    >
{
  protected abstract readonly queue: WriteQueue<Op>;

  append(message: NewMessage): Promise<AppendResult> {
    return this.queue.append(message);
  }

  ackLater(client: ClientKey, topic: string, seq: number): void {
    this.queue.lazy.ack(client, topic, seq);
    this.queue.writeSoon();
  }

  saveGroup(topic: string, group: string, progress: ProgressSource): Promise<void> {
    this.queue.lazy.dirty(topic, group, progress);
    return this.queue.write(this.queue.writeLazy);
  }

  saveGroupLater(topic: string, group: string, progress: ProgressSource): void {
    this.queue.lazy.dirty(topic, group, progress);
    this.queue.writeSoon();
  }

  deadLetter(message: NewMessage, group: { topic: string; group: string; progress: ProgressSource }): Promise<Message> {
    // The append and the progress write are queued together, so one transaction holds both: a
    // crash cannot leave a dead letter whose message the group still has to deliver.
    this.queue.lazy.dirty(group.topic, group.group, group.progress);
    return new Promise((resolve, reject) => {
      this.queue.enqueue({ kind: "append", message, resolve: (r) => resolve(r.message), reject });
      this.queue.enqueue({ kind: "op", run: this.queue.writeLazy, resolve: () => {}, reject: () => {} });
    });
  }

  flush(): Promise<void> {
    return this.queue.write(this.queue.writeLazy);
  }

  onDurable(listener: (messages: Message[], durableAt: number) => void): void {
    this.queue.onDurable(listener);
  }

  onCommit(listener: (timing: CommitTiming) => void): void {
    this.queue.onCommit(listener);
  }
}
