/**
 * A consumer group's state and its rules (PROTOCOL.md "Groups: competing consumers"), with no I/O:
 * no socket, timer or store. groups.ts feeds it the log, hands out what `handOut` returns, arms
 * the timer at `firstDeadline` and writes `progress`; here is only what goes to whom and when a
 * message is finished. Kept apart so that it is tested alone (test/group-state.test.ts) and so
 * that ownership across nodes can be designed on it.
 *
 * The durable progress is a low-water mark (`acked`) and the finished seqs above it (`done`); what
 * is in flight lives only here, so after a restart every unfinished message above the mark is
 * handed out again. Redeliveries and messages that a key released wait in `front`, which goes
 * before the log's order; a message whose key is held by an unfinished one waits in `waiting` for
 * it. Every lease lasts the same time, so `leases`, in the order they were made, is also in
 * deadline order.
 */
import type { Message } from "../shared/protocol.js";
import { SeqRanges } from "./seq-ranges.js";
import type { GroupProgress } from "./store/store.js";

/** What the state knows of a member: its leases outstanding, and whether it may be sent to yet. */
export interface Slot {
  /** Messages leased to this member and not finished: at most HERALD_MAX_INFLIGHT. */
  inflight: number;
  /** Not started: the `subscribe` reply (or the connection) has not gone out yet. */
  held: boolean;
}

/** One hand-out of a message to a member. */
export interface Lease<M extends Slot> {
  message: Message;
  member: M;
  attempt: number;
  deadline: number;
}

/** A message handed out before the log's order: a redelivery, or one its key released. */
interface Front<M extends Slot> {
  message: Message;
  /** The member it failed on, given it again only when no other has room. */
  avoid?: M;
}

export class GroupState<M extends Slot> {
  /** The low-water mark: every seq up to it is acked or dead-lettered. */
  acked: number;
  /** Finished seqs above `acked`. */
  readonly done: SeqRanges;
  /** The highest seq taken from the log (into `fresh`, a lease, `front` or `waiting`). */
  next: number;
  /** The highest durable seq of the topic known here. */
  head: number;
  /** Attempts made of unfinished messages that failed at least once (or were restored so). */
  readonly attempts: Map<number, number>;
  /**
   * Dead letters handed back by the retry route: finished once (at or below `acked`, or in
   * `done`), unfinished again, in `front` until acked.
   */
  readonly revived: Set<number>;
  /** The highest seq handed out, written with the progress. */
  delivered: number;
  /**
   * `delivered` as a restart found it: unfinished messages up to it were handed out before the
   * restart, so their next delivery is a redelivery (PROTOCOL: `attempt` 2 on the first one).
   */
  readonly deliveredBefore: number;
  readonly live: M[] = [];
  /** Taken from the log, not yet handed out: `fresh[freshAt..]` in seq order. */
  fresh: Message[] = [];
  freshAt = 0;
  readonly front = new Map<number, Front<M>>();
  /** key -> the seq that holds it (leased, or in `front` after a failure). */
  readonly keys = new Map<string, number>();
  readonly waiting = new Map<string, Message[]>();
  waitingCount = 0;
  readonly leases = new Map<number, Lease<M>>();
  /** Round-robin position among `live`. */
  private rr = 0;

  constructor(
    readonly topic: string,
    readonly name: string,
    progress: GroupProgress,
    head: number,
  ) {
    this.acked = progress.acked;
    this.done = new SeqRanges(progress.done);
    this.done.dropThrough(this.acked);
    this.next = this.acked;
    this.head = head;
    this.attempts = new Map(progress.attempts.filter(([seq]) => seq > progress.acked));
    this.revived = new Set(progress.retried);
    this.delivered = progress.delivered;
    this.deliveredBefore = progress.delivered;
  }

  /** Read at commit time by the store (store.ts ProgressSource), made once per group. */
  readonly progress = (): GroupProgress => ({
    acked: this.acked,
    done: this.done.toJSON(),
    attempts: [...this.attempts],
    retried: [...this.revived],
    delivered: this.delivered,
  });

  /** PROTOCOL: the messages above the low-water mark not yet acked or dead-lettered (and those retried). */
  get backlog(): number {
    return Math.max(0, this.head - this.acked - this.done.size) + this.revived.size;
  }

  /** Taken from the log and not handed out. */
  get buffered(): number {
    return this.fresh.length - this.freshAt + this.waitingCount;
  }

  /**
   * Whether a member's ack finishes `seq`: a lease, a message waiting for its redelivery, or any
   * other unfinished message of the log. A member knows a seq only from a delivery, also from one
   * before a restart whose record (`delivered`, written lazily) a SIGKILL lost: `npm run chaos`
   * found such an ack answered ok and its message handed out again. A retried dead letter counts
   * only once it is handed out again, so that an old ack cannot finish it unprocessed.
   */
  ackable(seq: number): boolean {
    if (this.leases.has(seq) || this.attempts.has(seq)) return true;
    return !this.revived.has(seq) && seq <= this.head && !this.finished(seq);
  }

  finished(seq: number): boolean {
    if (this.revived.has(seq)) return false;
    return seq <= this.acked || this.done.has(seq);
  }

  /** A message from the log, unless it was finished before a restart (`done`). */
  queue(message: Message): void {
    if (this.done.size === 0 || !this.done.has(message.seq)) this.fresh.push(message);
  }

  /** PROTOCOL: a gap in a group moves its cursor past it at once, as finished. */
  skip(from: number, to: number): void {
    this.next = to;
    this.done.addRange(from, to);
    this.acked = this.done.advance(this.acked);
  }

  /** The retry route: a dead letter's message is unfinished again, first in line, its count reset. */
  revive(message: Message): void {
    this.revived.add(message.seq);
    this.attempts.delete(message.seq);
    this.front.set(message.seq, { message });
  }

  /**
   * Leases what waits, `front` first, to the members with room (round robin, at most
   * `maxInflight` each), until a deadline; returns each member's batch, in hand-out order.
   */
  handOut(deadline: number, maxInflight: number): Map<M, Message[]> {
    const out = new Map<M, Message[]>();
    if (this.live.length === 0) return out;
    for (const [seq, entry] of this.front) {
      const key = entry.message.key;
      const holder = key === undefined ? undefined : this.keys.get(key);
      if (holder !== undefined && holder !== seq) {
        this.front.delete(seq);
        this.wait(entry.message, true);
        continue;
      }
      const member = this.pick(entry.avoid, maxInflight);
      if (!member) break;
      this.front.delete(seq);
      this.lease(entry.message, member, deadline, out);
    }
    if (this.front.size > 0) return out;
    while (this.freshAt < this.fresh.length) {
      const message = this.fresh[this.freshAt]!;
      if (message.seq <= this.acked || (this.done.size > 0 && this.done.has(message.seq))) {
        this.freshAt++; // acked before its first hand-out here (see ackable)
        continue;
      }
      const key = message.key;
      if (key !== undefined && this.keys.has(key)) {
        this.freshAt++;
        this.wait(message, false);
        continue;
      }
      const member = this.pick(undefined, maxInflight);
      if (!member) break;
      this.freshAt++;
      this.lease(message, member, deadline, out);
    }
    if (this.freshAt === this.fresh.length) {
      this.fresh = [];
      this.freshAt = 0;
    } else if (this.freshAt > 4096) {
      this.fresh = this.fresh.slice(this.freshAt);
      this.freshAt = 0;
    }
    return out;
  }

  /**
   * A member with room, round robin; `avoid` only when no other has room. Every free slot is
   * filled at the next hand-out, as a plain stream's window is refilled on each ack: a member that
   * acks one message of a full window gets the next at once. (Refilling only once 64 slots were
   * free made fewer, larger emits under W7, but within this machine's noise, and left a member
   * that acked one message waiting for 63 more.)
   */
  private pick(avoid: M | undefined, maxInflight: number): M | undefined {
    const n = this.live.length;
    let fallback: M | undefined;
    for (let i = 0; i < n; i++) {
      const member = this.live[(this.rr + i) % n]!;
      if (member.held || member.inflight >= maxInflight) continue;
      if (member === avoid) {
        fallback = member;
        continue;
      }
      this.rr = (this.rr + i + 1) % n;
      return member;
    }
    return fallback;
  }

  private lease(message: Message, member: M, deadline: number, out: Map<M, Message[]>): void {
    // A retried dead letter starts its count again (the retry route's "delivery count reset").
    const before = message.seq <= this.deliveredBefore && !this.revived.has(message.seq);
    const made = this.attempts.get(message.seq) ?? (before ? 1 : 0);
    const attempt = made + 1;
    if (message.seq > this.delivered) this.delivered = message.seq;
    this.leases.set(message.seq, { message, member, attempt, deadline });
    if (message.key !== undefined) this.keys.set(message.key, message.seq);
    member.inflight++;
    let batch = out.get(member);
    if (!batch) {
      batch = [];
      out.set(member, batch);
    }
    // Built field by field: a spread of the stored message cost twice as much, per delivery.
    const delivered: Message = {
      id: message.id,
      topic: message.topic,
      seq: message.seq,
      from: message.from,
      ts: message.ts,
      payload: message.payload,
      group: this.name,
      attempt,
    };
    if (message.key !== undefined) delivered.key = message.key;
    batch.push(delivered);
  }

  /** A message whose key is held waits for it; `first` puts it before the others of its key. */
  private wait(message: Message, first: boolean): void {
    const key = message.key!;
    let queue = this.waiting.get(key);
    if (!queue) {
      queue = [];
      this.waiting.set(key, queue);
    }
    if (first) queue.unshift(message);
    else queue.push(message);
    this.waitingCount++;
  }

  /** Acked or dead-lettered: the mark moves, the key passes to its next message (unless `keepKey`). */
  finish(seq: number, keepKey = false): void {
    const lease = this.leases.get(seq);
    const message = lease?.message ?? this.front.get(seq)?.message;
    if (lease) {
      this.leases.delete(seq);
      lease.member.inflight--;
    }
    this.front.delete(seq);
    this.attempts.delete(seq);
    // A retried dead letter was counted as finished before: only its revival ends.
    if (!this.revived.delete(seq)) {
      this.done.add(seq);
      this.acked = this.done.advance(this.acked);
    }
    if (message?.key !== undefined && !keepKey) this.release(message.key, seq);
  }

  /** The key `seq` held passes to its next unfinished message, which goes to `front`. */
  release(key: string, seq: number): void {
    if (this.keys.get(key) !== seq) return;
    this.keys.delete(key);
    const queue = this.waiting.get(key);
    if (!queue) return;
    // The next unfinished one (an ack from before a restart may have finished one that waits).
    while (queue.length > 0) {
      const next = queue.shift()!;
      this.waitingCount--;
      if (this.finished(next.seq)) continue;
      this.front.set(next.seq, { message: next });
      break;
    }
    if (queue.length === 0) this.waiting.delete(key);
  }

  /**
   * Not acked in time, or its member went away: handed on (to `front`, to another member where one
   * has room), or, after `maxDeliveries` attempts, `true`: the caller dead-letters it.
   */
  fail(lease: Lease<M>, maxDeliveries: number): boolean {
    const { message } = lease;
    if (lease.attempt >= maxDeliveries) return true;
    this.leases.delete(message.seq);
    lease.member.inflight--;
    this.attempts.set(message.seq, lease.attempt);
    this.front.set(message.seq, { message, avoid: lease.member });
    return false;
  }

  /** A member leaves: it is taken out of the hand-out, and its leases are returned for failing. */
  remove(member: M): Lease<M>[] {
    const i = this.live.indexOf(member);
    if (i < 0) return [];
    this.live.splice(i, 1);
    return [...this.leases.values()].filter((lease) => lease.member === member);
  }

  /** The leases whose deadline has passed, oldest first. */
  expired(now: number): Lease<M>[] {
    const out: Lease<M>[] = [];
    for (const lease of this.leases.values()) {
      if (lease.deadline > now) break;
      out.push(lease);
    }
    return out;
  }

  /** The first lease's deadline, when there is a lease. */
  firstDeadline(): number | undefined {
    return (this.leases.values().next().value as Lease<M> | undefined)?.deadline;
  }
}
