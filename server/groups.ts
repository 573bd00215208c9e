/**
 * Consumer groups (PROTOCOL.md "Groups: competing consumers"): each message of the topic goes to
 * one live member, which acks it alone; what is not acked in time, or whose member goes away, is
 * handed on, and after HERALD_MAX_DELIVERIES attempts it becomes a dead letter.
 *
 * This is the groups' I/O: the members' sockets, the store (joins, progress, dead letters, reads
 * of the log), the timers. What goes to whom, and when a message is finished, is group-state.ts.
 * A group reads the topic's log from `next` on, like a plain stream, but into its own queue
 * instead of onto one socket, and its hand-out goes out as one `messages` emit per member per
 * turn. Ack timeouts need no timer per message: every lease lasts HERALD_ACK_TIMEOUT_MS, so one
 * timer per group is armed at the first deadline.
 */
import { HeraldError } from "../shared/errors.js";
import type { Message, StatsOk } from "../shared/protocol.js";
import { deadTopic } from "../shared/topics.js";
import type { Config } from "./config.js";
import type { Fanout } from "./fanout.js";
import { GroupState, type Lease, type Slot } from "./group-state.js";
import type { Logger } from "./log.js";
import type { Metrics } from "./metrics.js";
import type { Session } from "./session.js";
import type { Store } from "./store/store.js";

/** A group membership of one connection: its share of the group's work. */
export interface Member extends Slot {
  readonly session: Session;
  readonly group: Group;
}

/** How long a publisher refused with BACKLOG_FULL is told to wait: the protocol leaves it open. */
const BACKLOG_RETRY_MS = 1000;

export const memberKey = (topic: string, group: string): string => `${topic}\u0000${group}`;

/** A group's state (group-state.ts) and what its I/O needs besides. */
export class Group extends GroupState<Member> {
  /** A read of the log is under way. */
  reading = false;
  dispatchScheduled = false;
  ended = false;
  timer: NodeJS.Timeout | undefined;
  timerAt = 0;
}

/** A group as the stats route shows it, less what the route reads from the store. */
export type GroupStats = Omit<StatsOk["groups"][number], "oldestUnackedTs">;

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
    for (const lease of group.remove(member)) this.fail(group, lease);
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
      if (!group.ackable(seq)) continue;
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
        if (!message || message.topic !== topic || group.ended || !group.finished(message.seq)) continue;
        group.revive(message);
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
      for (const m of batch) group.queue(m);
      group.next = last;
      this.dispatch(group);
    } else {
      this.pump(group);
    }
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
        for (const m of batch) group.queue(m);
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
    group.skip(from, to);
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

  /** Hands out what waits (group-state.ts), one `messages` emit per member. */
  private dispatch(group: Group): void {
    if (group.ended || group.live.length === 0) return;
    const out = group.handOut(performance.now() + this.config.ackTimeoutMs, this.config.maxInflight);
    for (const [member, batch] of out) {
      member.session.socket.emit("messages", batch);
      this.metrics.delivered("group", batch, 1);
    }
    // `delivered` moved: written with the next commit, or within the store's lazy delay.
    if (out.size > 0) this.store.saveGroupLater(group.topic, group.name, group.progress);
    this.arm(group);
    this.pump(group);
  }

  // ---- the end of a lease ----------------------------------------------------------------------

  /** Acked or dead-lettered: finished in the state, and the hand-out runs again. */
  private finish(group: Group, seq: number, keepKey = false): void {
    group.finish(seq, keepKey);
    this.scheduleDispatch(group);
  }

  /** Not acked in time, or its member went away: handed on, or dead-lettered after the last attempt. */
  private fail(group: Group, lease: Lease<Member>): void {
    if (group.fail(lease, this.config.maxDeliveries)) this.kill(group, lease.message);
    else this.scheduleDispatch(group);
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
        if (message.key !== undefined) group.release(message.key, message.seq);
        this.scheduleDispatch(group);
      },
      (err: unknown) => this.log.error({ err, topic: group.topic, group: group.name }, "dead letter failed"),
    );
  }

  /** One timer per group, at the first lease's deadline. */
  private arm(group: Group): void {
    const first = group.firstDeadline();
    if (first === undefined) {
      clearTimeout(group.timer);
      group.timer = undefined;
      return;
    }
    if (group.timer !== undefined && group.timerAt <= first) return;
    clearTimeout(group.timer);
    group.timerAt = first;
    group.timer = setTimeout(this.expire, Math.max(0, first - performance.now()), group);
    group.timer.unref();
  }

  private readonly expire = (group: Group): void => {
    group.timer = undefined;
    for (const lease of group.expired(performance.now())) this.fail(group, lease);
    this.arm(group);
  };
}
