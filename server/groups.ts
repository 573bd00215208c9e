/**
 * Consumer groups (PROTOCOL.md "Groups: competing consumers"): each message of the topic goes to
 * one live member, which acks it alone; what is not acked in time, or whose member goes away, is
 * handed on, and after HERALD_MAX_DELIVERIES attempts it becomes a dead letter.
 *
 * A group reads the topic's log from `next` on, like a plain stream, but into a queue of its own
 * instead of onto one socket, and hands the queue out to the members with room in their windows,
 * round robin, in one `messages` emit per member per turn. Its durable progress is a low-water mark
 * (`acked`) and the finished seqs above it (`done`); what is in flight lives only here, so after a
 * restart every unfinished message above the mark is handed out again. Redeliveries and messages
 * that a key released wait in `front`, which goes before the log's order; a message whose key is
 * held by an unfinished one waits in `waiting` for it. Ack timeouts need no timer per message:
 * every lease lasts HERALD_ACK_TIMEOUT_MS, so `leases`, in the order they were made, is also in
 * deadline order, and one timer per group is armed at the first deadline.
 */
import { HeraldError } from "../shared/errors.js";
import type { Message } from "../shared/protocol.js";
import { deadTopic } from "../shared/topics.js";
import type { Config } from "./config.js";
import type { Fanout } from "./fanout.js";
import type { Logger } from "./log.js";
import type { Metrics } from "./metrics.js";
import { SeqRanges } from "./seq-ranges.js";
import type { Session } from "./session.js";
import type { GroupProgress, Store } from "./store/store.js";

/** A group membership of one connection: its share of the group's work. */
export interface Member {
  readonly session: Session;
  readonly group: Group;
  /** Messages leased to this member and not finished: at most HERALD_MAX_INFLIGHT. */
  inflight: number;
  /** Not started: the `subscribe` reply (or the connection) has not gone out yet. */
  held: boolean;
}

/** One hand-out of a message to a member. */
interface Lease {
  message: Message;
  member: Member;
  attempt: number;
  deadline: number;
}

/** A message handed out before the log's order: a redelivery, or one its key released. */
interface Front {
  message: Message;
  /** The member it failed on, given it again only when no other has room. */
  avoid?: Member;
}

/** How long a publisher refused with BACKLOG_FULL is told to wait: the protocol leaves it open. */
const BACKLOG_RETRY_MS = 1000;

export const memberKey = (topic: string, group: string): string => `${topic}\u0000${group}`;

export class Group {
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
  readonly live: Member[] = [];
  /** Taken from the log, not yet handed out: `fresh[freshAt..]` in seq order. */
  fresh: Message[] = [];
  freshAt = 0;
  readonly front = new Map<number, Front>();
  /** key -> the seq that holds it (leased, or in `front` after a failure). */
  readonly keys = new Map<string, number>();
  readonly waiting = new Map<string, Message[]>();
  waitingCount = 0;
  readonly leases = new Map<number, Lease>();
  reading = false;
  dispatchScheduled = false;
  ended = false;
  /** Round-robin position among `live`. */
  rr = 0;
  timer: NodeJS.Timeout | undefined;
  timerAt = 0;

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

  get buffered(): number {
    return this.fresh.length - this.freshAt + this.waitingCount;
  }
}

export interface GroupStats {
  topic: string;
  group: string;
  acked: number;
  head: number;
  /** The backlog: messages above `acked` not finished. */
  lag: number;
  members: number;
  inflight: number;
}

export class Groups {
  private readonly byTopic = new Map<string, Map<string, Group>>();
  /** Each connection's live memberships, by memberKey: the group side of a session (session.ts knows no group). */
  private readonly memberships = new WeakMap<Session, Map<string, Member>>();
  /** Per topic with groups: publishes admitted and not yet stored (see checkBacklog). */
  private readonly comingTo = new Map<string, number>();

  constructor(
    fanout: Fanout,
    private readonly store: Store,
    private readonly config: Pick<Config, "maxInflight" | "ackTimeoutMs" | "maxDeliveries" | "maxBacklog">,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    fanout.onMessages((messages) => this.fanOut(messages));
    fanout.onResync(() => this.resync());
    metrics.watchGroups(() => this.stats());
  }

  /** Loads every group at start: a group with no live member still holds its backlog. */
  async load(): Promise<void> {
    for (const record of await this.store.groups()) {
      const group = this.add(
        new Group(record.topic, record.group, record.progress, await this.store.head(record.topic)),
      );
      for (const seq of [...group.revived]) {
        const [message] = (await this.store.read(group.topic, seq - 1, 1)).messages;
        // Retention may have removed it since: then it is finished for good.
        if (message?.seq === seq) group.front.set(seq, { message });
        else group.revived.delete(seq);
      }
    }
  }

  /**
   * `subscribe` with `group`: a durable membership, and the group created at the head (or at
   * `from`) when it has none. The member is held until `start`, after the reply.
   */
  async join(
    session: Session,
    topic: string,
    name: string,
    from: number | undefined,
    quota?: number,
  ): Promise<{ head: number; acked: number; member?: Member }> {
    const joined = await this.store.joinGroup(session, topic, name, from, quota);
    // No await between the store's answer and the in-memory group: joins resolve in the store's
    // order, so the one that created the record makes the group and later ones find it. (Awaiting
    // the head here let two members joining at once each make a group, one of which got nothing.)
    let group = this.find(topic, name);
    if (!group || joined.created) {
      if (group) this.end(group);
      group = this.add(new Group(topic, name, joined.progress, joined.head));
    }
    if (!session.live || this.memberships.get(session)?.has(memberKey(topic, name))) {
      // PROTOCOL: subscribing again changes nothing and re-sends nothing (`from` counts only on creation).
      return { head: joined.head, acked: group.acked };
    }
    return { head: joined.head, acked: group.acked, member: this.attach(session, group) };
  }

  /** A resumed membership (on connect), held until `start`. */
  resume(session: Session, topic: string, name: string): Member | undefined {
    const group = this.find(topic, name);
    return group ? this.attach(session, group) : undefined;
  }

  start(member: Member): void {
    member.held = false;
    this.dispatch(member.group);
  }

  /** Starts every membership a connection resumed; after the connection is established. */
  startAll(session: Session): void {
    for (const member of this.memberships.get(session)?.values() ?? []) this.start(member);
  }

  /** Detaches every membership of a connection that goes away or is replaced. */
  detachAll(session: Session): void {
    for (const member of [...(this.memberships.get(session)?.values() ?? [])]) this.detach(member);
  }

  /** Stops delivering to a member; what it held is handed on as a failed attempt. */
  detach(member: Member): void {
    const group = member.group;
    const key = memberKey(group.topic, group.name);
    const members = this.memberships.get(member.session);
    if (members?.get(key) === member) members.delete(key);
    const i = group.live.indexOf(member);
    if (i < 0) return;
    group.live.splice(i, 1);
    for (const lease of group.leases.values()) if (lease.member === member) this.fail(group, lease);
    this.scheduleDispatch(group);
  }

  /** `unsubscribe` with `group`: the membership ends; the group ends with its last member. */
  async leave(session: Session, topic: string, name: string): Promise<void> {
    const member = this.memberships.get(session)?.get(memberKey(topic, name));
    if (member) this.detach(member);
    const { ended } = await this.store.leaveGroup(session, topic, name);
    const group = this.find(topic, name);
    if (ended && group) this.end(group);
  }

  /** Groups whose last member retention removed. */
  ended(groups: { topic: string; group: string }[]): void {
    for (const { topic, group } of groups) {
      const g = this.find(topic, group);
      if (g) this.end(g);
    }
  }

  /**
   * `ack` with `group`, of one seq or of several (`seqs`): the first ack of a delivered, unfinished
   * message finishes it; any other is ok and changes nothing. Resolves once the progress is durable,
   * one write for all the seqs (`lazy`: no reply is awaited), also for a repeated ack: the first may
   * have asked for no reply, and an SDK that lost the answer to its ack sends it again to learn
   * that the progress is kept.
   */
  async ack(session: Session, topic: string, name: string, seqs: readonly number[], lazy: boolean): Promise<void> {
    const group = this.memberships.get(session)?.get(memberKey(topic, name))?.group;
    if (!group) return;
    let finished = false;
    for (const seq of seqs) {
      if (!this.ackable(group, seq)) continue;
      this.finish(group, seq);
      finished = true;
    }
    if (!finished && lazy) return;
    if (lazy) this.store.saveGroupLater(group.topic, group.name, group.progress);
    else await this.store.saveGroup(group.topic, group.name, group.progress);
  }

  /**
   * PROTOCOL: BACKLOG_FULL while any group of the topic has a backlog of HERALD_MAX_BACKLOG or more.
   * Publishes admitted and not yet stored count too: a burst of them would otherwise all pass before
   * the first is in a group's backlog, and take it far past the bound.
   */
  checkBacklog(topic: string): void {
    const groups = this.byTopic.get(topic);
    if (!groups) return;
    const coming = this.comingTo.get(topic) ?? 0;
    for (const group of groups.values()) {
      if (group.backlog + coming >= this.config.maxBacklog) {
        throw new HeraldError(
          "BACKLOG_FULL",
          `group ${group.name} of ${topic} has ${group.backlog + coming} messages waiting (HERALD_MAX_BACKLOG ${this.config.maxBacklog})`,
          { retryAfterMs: BACKLOG_RETRY_MS },
        );
      }
    }
  }

  /**
   * An append that checkBacklog admitted is coming: counted until `left` (by then the new message
   * is in the groups' backlogs, as the fan-out runs before the store's answer is taken). False, and
   * nothing to do, for a topic without groups.
   */
  coming(topic: string): boolean {
    if (!this.byTopic.has(topic)) return false;
    this.comingTo.set(topic, (this.comingTo.get(topic) ?? 0) + 1);
    return true;
  }

  left(topic: string): void {
    const n = (this.comingTo.get(topic) ?? 1) - 1;
    if (n > 0) this.comingTo.set(topic, n);
    else this.comingTo.delete(topic);
  }

  /**
   * The HTTP retry route: the dead letters of `dead:<topic>:<group>` with seqs in from..to go back
   * to the group as unfinished messages with no attempts made. A dead letter whose message
   * retention removed, or whose message the group has not finished, is left. Returns how many went back.
   */
  async retry(topic: string, name: string, from: number, to: number): Promise<number> {
    const group = this.find(topic, name);
    if (!group) throw new HeraldError("NOT_FOUND", `${topic} has no group ${name}`);
    const dead = deadTopic(topic, name);
    let retried = 0;
    for (let after = from - 1; after < to; ) {
      const batch = (await this.store.read(dead, after, Math.min(500, to - after))).messages;
      if (batch.length === 0) break;
      for (const letter of batch) {
        if (letter.seq > to) break;
        const message = await this.store.published(letter.from, letter.id);
        if (!message || message.topic !== topic || group.ended || !this.finished(group, message.seq)) continue;
        group.revived.add(message.seq);
        group.attempts.delete(message.seq);
        group.front.set(message.seq, { message });
        retried++;
      }
      after = batch[batch.length - 1]!.seq;
    }
    if (retried > 0) {
      await this.store.saveGroup(group.topic, group.name, group.progress);
      this.scheduleDispatch(group);
    }
    return retried;
  }

  /**
   * Whether a member's ack finishes `seq`: a lease, a message waiting for its redelivery, or any
   * other unfinished message of the log. A member knows a seq only from a delivery, also from one
   * before a restart whose record (`delivered`, written lazily) a SIGKILL lost: `npm run chaos`
   * found such an ack answered ok and its message handed out again. A retried dead letter counts
   * only once it is handed out again, so that an old ack cannot finish it unprocessed.
   */
  private ackable(group: Group, seq: number): boolean {
    if (group.leases.has(seq) || group.attempts.has(seq)) return true;
    return !group.revived.has(seq) && seq <= group.head && !this.finished(group, seq);
  }

  private finished(group: Group, seq: number): boolean {
    if (group.revived.has(seq)) return false;
    return seq <= group.acked || group.done.has(seq);
  }

  /** Whether the client holds a live membership of a group of the topic (for presence). */
  holds(client: Session, topic: string): boolean {
    for (const member of this.memberships.get(client)?.values() ?? []) if (member.group.topic === topic) return true;
    return false;
  }

  stats(): GroupStats[] {
    const out: GroupStats[] = [];
    for (const groups of this.byTopic.values()) {
      for (const g of groups.values()) {
        out.push({
          topic: g.topic,
          group: g.name,
          acked: g.acked,
          head: g.head,
          lag: g.backlog,
          members: g.live.length,
          inflight: g.leases.size,
        });
      }
    }
    return out.sort((a, b) => a.topic.localeCompare(b.topic) || a.group.localeCompare(b.group));
  }

  private find(topic: string, name: string): Group | undefined {
    return this.byTopic.get(topic)?.get(name);
  }

  private add(group: Group): Group {
    let groups = this.byTopic.get(group.topic);
    if (!groups) {
      groups = new Map();
      this.byTopic.set(group.topic, groups);
    }
    groups.set(group.name, group);
    return group;
  }

  private end(group: Group): void {
    group.ended = true;
    clearTimeout(group.timer);
    for (const member of [...group.live]) this.detach(member);
    const groups = this.byTopic.get(group.topic);
    if (groups?.get(group.name) === group) groups.delete(group.name);
    if (groups?.size === 0) this.byTopic.delete(group.topic);
  }

  private attach(session: Session, group: Group): Member {
    const member: Member = { session, group, inflight: 0, held: true };
    let members = this.memberships.get(session);
    if (!members) {
      members = new Map();
      this.memberships.set(session, members);
    }
    members.set(memberKey(group.topic, group.name), member);
    group.live.push(member);
    return member;
  }

  // ---- from the log to the members -----------------------------------------------------------

  /** The fan-out may have lost a run: every group learns its topic's head and reads what it lacks. */
  private resync(): void {
    for (const [topic, groups] of this.byTopic) {
      this.store.head(topic).then(
        (head) => {
          for (const group of groups.values()) {
            group.head = Math.max(group.head, head);
            this.pump(group);
          }
        },
        (err: unknown) => this.log.error({ err, topic }, "group resync failed"),
      );
    }
  }

  /** A commit's new messages of one topic, in seq order (fanout.ts). */
  private fanOut(batch: Message[]): void {
    const groups = this.byTopic.get(batch[0]!.topic);
    if (groups) for (const group of groups.values()) this.take(group, batch);
  }

  /** New durable messages of the group's topic: taken live when it is caught up. */
  private take(group: Group, batch: Message[]): void {
    const first = batch[0]!.seq;
    const last = batch[batch.length - 1]!.seq;
    group.head = Math.max(group.head, last);
    if (group.live.length === 0) return;
    if (!group.reading && group.next === first - 1 && group.buffered + batch.length <= this.capacity(group)) {
      for (const m of batch) this.queue(group, m);
      group.next = last;
      this.dispatch(group);
    } else {
      this.pump(group);
    }
  }

  /** Queues a message from the log, unless it was finished before a restart (`done`). */
  private queue(group: Group, message: Message): void {
    if (group.done.size === 0 || !group.done.has(message.seq)) group.fresh.push(message);
  }

  /** A member that may be sent to (its subscribe reply is out); groups read only when they have one. */
  private started(group: Group): Member | undefined {
    return group.live.find((m) => !m.held);
  }

  /** How much the group takes from the log ahead of its members: a window's worth per member. */
  private capacity(group: Group): number {
    return this.config.maxInflight * Math.max(1, group.live.length);
  }

  /** Reads the log forward from `next` while the queue has room. One read at a time per group. */
  private pump(group: Group): void {
    if (group.reading || group.ended || group.next >= group.head || !this.started(group)) return;
    const room = this.capacity(group) - group.buffered;
    if (room <= 0) return;
    group.reading = true;
    const from = group.next;
    this.store.read(group.topic, from, room).then(
      ({ messages: batch, head }) => {
        group.reading = false;
        group.head = Math.max(group.head, head);
        // Its members may have gone while it read; the next one reads again.
        const member = this.started(group);
        if (group.ended || group.next !== from || !member) return;
        const firstSeq = batch.length > 0 ? batch[0]!.seq : head + 1;
        if (firstSeq > from + 1) this.gap(group, member, from + 1, firstSeq - 1);
        for (const m of batch) this.queue(group, m);
        if (batch.length > 0) group.next = batch[batch.length - 1]!.seq;
        this.dispatch(group);
      },
      (err: unknown) => {
        group.reading = false;
        // The group stays behind and is read again on the next ack, publish or member.
        this.log.error({ err, topic: group.topic, group: group.name }, "group read failed");
      },
    );
  }

  /**
   * PROTOCOL: a gap in a group goes to one member, and the group's cursor moves past it at once.
   */
  private gap(group: Group, member: Member, from: number, to: number): void {
    member.session.socket.emit("gap", { topic: group.topic, from, to, group: group.name });
    group.next = to;
    group.done.addRange(from, to);
    group.acked = group.done.advance(group.acked);
    this.store.saveGroupLater(group.topic, group.name, group.progress);
  }

  private scheduleDispatch(group: Group): void {
    if (group.dispatchScheduled) return;
    group.dispatchScheduled = true;
    setImmediate(this.dispatchLater, group);
  }

  private readonly dispatchLater = (group: Group): void => {
    group.dispatchScheduled = false;
    this.dispatch(group);
  };

  /** Hands out what waits, `front` first, to members with room; one `messages` emit per member. */
  private dispatch(group: Group): void {
    if (group.ended || group.live.length === 0) return;
    const out = new Map<Member, Message[]>();
    const deadline = performance.now() + this.config.ackTimeoutMs;
    for (const [seq, entry] of group.front) {
      const key = entry.message.key;
      const holder = key === undefined ? undefined : group.keys.get(key);
      if (holder !== undefined && holder !== seq) {
        group.front.delete(seq);
        this.wait(group, entry.message, true);
        continue;
      }
      const member = this.pick(group, entry.avoid);
      if (!member) break;
      group.front.delete(seq);
      this.lease(group, entry.message, member, deadline, out);
    }
    if (group.front.size === 0) {
      while (group.freshAt < group.fresh.length) {
        const message = group.fresh[group.freshAt]!;
        if (message.seq <= group.acked || (group.done.size > 0 && group.done.has(message.seq))) {
          group.freshAt++; // acked before its first hand-out here (see ack)
          continue;
        }
        const key = message.key;
        if (key !== undefined && group.keys.has(key)) {
          group.freshAt++;
          this.wait(group, message, false);
          continue;
        }
        const member = this.pick(group, undefined);
        if (!member) break;
        group.freshAt++;
        this.lease(group, message, member, deadline, out);
      }
      if (group.freshAt === group.fresh.length) {
        group.fresh = [];
        group.freshAt = 0;
      } else if (group.freshAt > 4096) {
        group.fresh = group.fresh.slice(group.freshAt);
        group.freshAt = 0;
      }
    }
    for (const [member, batch] of out) {
      member.session.socket.emit("messages", batch);
      this.metrics.delivered("group", batch, 1);
    }
    // `delivered` moved: written with the next commit, or within the store's lazy delay.
    if (out.size > 0) this.store.saveGroupLater(group.topic, group.name, group.progress);
    this.arm(group);
    this.pump(group);
  }

  /**
   * A member with room, round robin; `avoid` only when no other has room. Every free slot is
   * filled at the next dispatch, as a plain stream's window is refilled on each ack: a member that
   * acks one message of a full window gets the next at once. (Refilling only once 64 slots were
   * free made fewer, larger emits under W7, but within this machine's noise, and left a member
   * that acked one message waiting for 63 more.)
   */
  private pick(group: Group, avoid: Member | undefined): Member | undefined {
    const n = group.live.length;
    let fallback: Member | undefined;
    for (let i = 0; i < n; i++) {
      const member = group.live[(group.rr + i) % n]!;
      if (member.held || member.inflight >= this.config.maxInflight) continue;
      if (member === avoid) {
        fallback = member;
        continue;
      }
      group.rr = (group.rr + i + 1) % n;
      return member;
    }
    return fallback;
  }

  private lease(group: Group, message: Message, member: Member, deadline: number, out: Map<Member, Message[]>): void {
    // A retried dead letter starts its count again (the retry route's "delivery count reset").
    const before = message.seq <= group.deliveredBefore && !group.revived.has(message.seq);
    const made = group.attempts.get(message.seq) ?? (before ? 1 : 0);
    const attempt = made + 1;
    if (message.seq > group.delivered) group.delivered = message.seq;
    group.leases.set(message.seq, { message, member, attempt, deadline });
    if (message.key !== undefined) group.keys.set(message.key, message.seq);
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
      group: group.name,
      attempt,
    };
    if (message.key !== undefined) delivered.key = message.key;
    batch.push(delivered);
  }

  /** A message whose key is held waits for it; `first` puts it before the others of its key. */
  private wait(group: Group, message: Message, first: boolean): void {
    const key = message.key!;
    let queue = group.waiting.get(key);
    if (!queue) {
      queue = [];
      group.waiting.set(key, queue);
    }
    if (first) queue.unshift(message);
    else queue.push(message);
    group.waitingCount++;
  }

  // ---- the end of a lease ----------------------------------------------------------------------

  /** Acked or dead-lettered: the mark moves, the key passes to its next message. */
  private finish(group: Group, seq: number, keepKey = false): void {
    const lease = group.leases.get(seq);
    const message = lease?.message ?? group.front.get(seq)?.message;
    if (lease) {
      group.leases.delete(seq);
      lease.member.inflight--;
    }
    group.front.delete(seq);
    group.attempts.delete(seq);
    // A retried dead letter was counted as finished before: only its revival ends.
    if (!group.revived.delete(seq)) {
      group.done.add(seq);
      group.acked = group.done.advance(group.acked);
    }
    if (message?.key !== undefined && !keepKey) this.release(group, message.key, seq);
    this.scheduleDispatch(group);
  }

  private release(group: Group, key: string, seq: number): void {
    if (group.keys.get(key) !== seq) return;
    group.keys.delete(key);
    const queue = group.waiting.get(key);
    if (!queue) return;
    // The next unfinished one (an ack from before a restart may have finished one that waits).
    while (queue.length > 0) {
      const next = queue.shift()!;
      group.waitingCount--;
      if (this.finished(group, next.seq)) continue;
      group.front.set(next.seq, { message: next });
      break;
    }
    if (queue.length === 0) group.waiting.delete(key);
  }

  /** Not acked in time, or its member went away: handed on, or dead-lettered after the last attempt. */
  private fail(group: Group, lease: Lease): void {
    const { message } = lease;
    if (lease.attempt >= this.config.maxDeliveries) {
      this.kill(group, message);
      return;
    }
    group.leases.delete(message.seq);
    lease.member.inflight--;
    group.attempts.set(message.seq, lease.attempt);
    group.front.set(message.seq, { message, avoid: lease.member });
    this.scheduleDispatch(group);
  }

  /**
   * The last attempt failed: the message becomes a new message of `dead:<topic>:<group>`, stored
   * in the same transaction as the group's progress that finishes it. Its key stays held until
   * then, so that the next message of the key cannot overtake it.
   */
  private kill(group: Group, message: Message): void {
    this.finish(group, message.seq, true);
    const json = JSON.stringify(message.payload);
    const dead = {
      id: message.id,
      topic: deadTopic(group.topic, group.name),
      from: message.from,
      payload: message.payload,
      json,
      ...(message.key === undefined ? {} : { key: message.key }),
    };
    this.store.deadLetter(dead, { topic: group.topic, group: group.name, progress: group.progress }).then(
      () => {
        this.metrics.deadLetters.inc();
        if (message.key !== undefined) this.release(group, message.key, message.seq);
        this.scheduleDispatch(group);
      },
      (err: unknown) => this.log.error({ err, topic: group.topic, group: group.name }, "dead letter failed"),
    );
  }

  /** One timer per group, at the first lease's deadline. */
  private arm(group: Group): void {
    const first = group.leases.values().next().value as Lease | undefined;
    if (!first) {
      clearTimeout(group.timer);
      group.timer = undefined;
      return;
    }
    if (group.timer !== undefined && group.timerAt <= first.deadline) return;
    clearTimeout(group.timer);
    group.timerAt = first.deadline;
    group.timer = setTimeout(this.expire, Math.max(0, first.deadline - performance.now()), group);
    group.timer.unref();
  }

  private readonly expire = (group: Group): void => {
    group.timer = undefined;
    const now = performance.now();
    for (const lease of group.leases.values()) {
      if (lease.deadline > now) break;
      this.fail(group, lease);
    }
    this.arm(group);
  };
}
