/**
 * The chat's message store: pure logic, no DOM and no SDK, so it is tested under node:test
 * (test/web-message-store.test.ts). It holds, per topic, the delivered and historical messages in
 * seq order, the gaps retention cut, and this user's own messages that are not (yet) in a log.
 *
 * - A message is identified by (topic, seq): a second copy of a seq is dropped (redelivery after a
 *   reconnect, history overlapping delivery). PROTOCOL: Delivery 2.
 * - Own messages are keyed by (from, id) (PROTOCOL: Delivery, last line): shown at once as
 *   `pending`, `sent` once the publish is answered (with its seq and ts), and replaced by the
 *   delivered copy when it arrives, under the same key so the element stays put.
 * - A `gap` is kept as a range and shown as a notice at its place in seq order.
 *
 * The store is mutable for speed (a room may hold 100k messages) and bumps `version` on every change;
 * the list selectors are cached per topic and version, so React can use them as snapshots.
 */

import type { Message } from "../../shared/protocol.js";

/** What the chat keeps of a delivered or historical message. */
export type StoredMessage = Pick<Message, "id" | "topic" | "seq" | "from" | "ts" | "payload">;

export type OwnStatus = "pending" | "sent" | "failed";

/** A message this user published, before its delivered copy is in a log. */
export interface OwnMessage {
  id: string;
  topic: string;
  from: string;
  payload: unknown;
  /** Local time it was written; orders pending messages. */
  createdAt: number;
  status: OwnStatus;
  seq?: number;
  ts?: number;
  error?: string;
}

export interface MessageItem {
  kind: "message";
  /** Stable across pending, sent and delivered: `from` and `id`. */
  key: string;
  id: string;
  topic: string;
  from: string;
  seq?: number;
  ts: number;
  payload: unknown;
  status: "pending" | "sent" | "failed" | "delivered";
  error?: string;
}

export interface GapItem {
  kind: "gap";
  key: string;
  topic: string;
  from: number;
  to: number;
}

export type ListItem = MessageItem | GapItem;

export interface Range {
  from: number;
  to: number;
}

export const ownKey = (from: string, id: string): string => `${from}\u0000${id}`;

class TopicLog {
  /** Ascending seqs, no duplicates. */
  readonly seqs: number[] = [];
  readonly bySeq = new Map<number, StoredMessage>();
  readonly byKey = new Map<string, number>();
  gaps: Range[] = [];
  /** Set once history answered with nothing older: the start of the topic is loaded. */
  complete = false;
  /** The highest seq the server said exists (subscribe or history `head`). */
  head = 0;

  /** Returns false for a seq already held. */
  insert(m: StoredMessage): boolean {
    if (this.bySeq.has(m.seq)) return false;
    this.bySeq.set(m.seq, m);
    this.byKey.set(ownKey(m.from, m.id), m.seq);
    const seqs = this.seqs;
    const last = seqs[seqs.length - 1];
    if (last === undefined || m.seq > last) seqs.push(m.seq);
    else seqs.splice(lowerBound(seqs, m.seq), 0, m.seq);
    if (m.seq > this.head) this.head = m.seq;
    return true;
  }

  get oldest(): number | undefined {
    return this.seqs[0];
  }

  get newest(): number | undefined {
    return this.seqs[this.seqs.length - 1];
  }
}

/** The first index whose value is >= x. */
export function lowerBound(sorted: readonly number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class MessageStore {
  private readonly logs = new Map<string, TopicLog>();
  private readonly own = new Map<string, OwnMessage>();
  private readonly cache = new Map<string, { version: number; items: ListItem[] }>();
  private readonly listeners = new Set<() => void>();
  version = 0;

  /** For useSyncExternalStore. */
  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  private changed(): void {
    this.version++;
    for (const l of this.listeners) l();
  }

  private log(topic: string): TopicLog {
    let log = this.logs.get(topic);
    if (!log) {
      log = new TopicLog();
      this.logs.set(topic, log);
    }
    return log;
  }

  /** Adds messages to their topics' logs; returns the ones that were new (for unread counts). */
  deliver(messages: readonly StoredMessage[]): StoredMessage[] {
    const fresh: StoredMessage[] = [];
    for (const m of messages) {
      if (!this.log(m.topic).insert(m)) continue;
      fresh.push(m);
      // The delivered copy replaces the own one, pending or sent.
      this.own.delete(ownKey(m.from, m.id));
    }
    if (fresh.length > 0) this.changed();
    return fresh;
  }

  /**
   * A page of `history` for `topic`. `complete` says the page reached the start of the topic
   * (fewer than asked for, or nothing before it).
   */
  addHistory(topic: string, messages: readonly StoredMessage[], options: { complete?: boolean; head?: number } = {}) {
    const log = this.log(topic);
    for (const m of messages) {
      if (log.insert(m)) this.own.delete(ownKey(m.from, m.id));
    }
    if (options.complete) log.complete = true;
    if (options.head !== undefined && options.head > log.head) log.head = options.head;
    this.changed();
  }

  /** Records the head a subscribe answered, so the list knows whether more is to come. */
  setHead(topic: string, head: number): void {
    const log = this.log(topic);
    if (head > log.head) {
      log.head = head;
      this.changed();
    }
  }

  /** Retention removed `from..to` of the topic before this client got them. */
  addGap(topic: string, from: number, to: number): void {
    if (to < from) return;
    const log = this.log(topic);
    const merged: Range[] = [];
    let cur: Range = { from, to };
    for (const g of log.gaps) {
      if (g.to + 1 < cur.from || cur.to + 1 < g.from) merged.push(g);
      else cur = { from: Math.min(g.from, cur.from), to: Math.max(g.to, cur.to) };
    }
    merged.push(cur);
    merged.sort((a, b) => a.from - b.from);
    log.gaps = merged;
    if (to > log.head) log.head = to;
    this.changed();
  }

  /** Shows a message this user has just written (or that the outbox still holds after a reload). */
  addPending(m: Omit<OwnMessage, "status"> & { status?: OwnStatus }): void {
    const key = ownKey(m.from, m.id);
    if (this.own.has(key) || this.logs.get(m.topic)?.byKey.has(key)) return;
    this.own.set(key, { ...m, status: m.status ?? "pending" });
    this.changed();
  }

  /** The publish was answered: the message has its seq and ts. */
  markSent(from: string, id: string, result: { seq: number; ts: number }): void {
    const key = ownKey(from, id);
    const m = this.own.get(key);
    if (!m) return;
    if (this.logs.get(m.topic)?.byKey.has(key)) this.own.delete(key);
    else this.own.set(key, { ...m, status: "sent", seq: result.seq, ts: result.ts });
    this.changed();
  }

  /** Sent, though its seq is unknown (the outbox resent it after a reload and it is gone now). */
  markSentUnknown(from: string, id: string): void {
    const key = ownKey(from, id);
    const m = this.own.get(key);
    if (m?.status !== "pending") return;
    this.own.set(key, { ...m, status: "sent", ts: m.createdAt });
    this.changed();
  }

  markFailed(from: string, id: string, error: string): void {
    const key = ownKey(from, id);
    const m = this.own.get(key);
    if (!m) return;
    this.own.set(key, { ...m, status: "failed", error });
    this.changed();
  }

  removeOwn(from: string, id: string): void {
    if (this.own.delete(ownKey(from, id))) this.changed();
  }

  ownMessages(filter?: (m: OwnMessage) => boolean): OwnMessage[] {
    const all = [...this.own.values()];
    return filter ? all.filter(filter) : all;
  }

  /** Drops a topic's log (after leaving a room). Own messages stay. */
  forget(topic: string): void {
    if (this.logs.delete(topic)) this.changed();
  }

  oldest(topic: string): number | undefined {
    return this.logs.get(topic)?.oldest;
  }

  newest(topic: string): number | undefined {
    return this.logs.get(topic)?.newest;
  }

  head(topic: string): number {
    return this.logs.get(topic)?.head ?? 0;
  }

  /** True once the start of the topic is loaded (or nothing older exists). */
  isComplete(topic: string): boolean {
    const log = this.logs.get(topic);
    if (!log) return false;
    if (log.complete) return true;
    const oldest = log.oldest;
    // Seqs start at 1; a gap reaching down to 1 also means nothing older can be loaded.
    return oldest === 1 || (oldest !== undefined && log.gaps.some((g) => g.from <= 1 && g.to >= oldest - 1));
  }

  has(topic: string, seq: number): boolean {
    return this.logs.get(topic)?.bySeq.has(seq) ?? false;
  }

  count(topic: string): number {
    return this.logs.get(topic)?.seqs.length ?? 0;
  }

  /** Messages of `topic` after seq `after` not written by `me`. */
  unread(topic: string, after: number, me: string, fromUser?: string): number {
    const log = this.logs.get(topic);
    if (!log) return 0;
    let n = 0;
    for (let i = lowerBound(log.seqs, after + 1); i < log.seqs.length; i++) {
      const m = log.bySeq.get(log.seqs[i]!)!;
      if (m.from !== me && (fromUser === undefined || m.from === fromUser)) n++;
    }
    return n;
  }

  /** Every message of a room (or the announcements) in seq order, gaps in place, pending last. */
  items(topic: string): ListItem[] {
    const cached = this.cache.get(topic);
    if (cached && cached.version === this.version) return cached.items;
    const log = this.logs.get(topic);
    const own = [...this.own.values()].filter((m) => m.topic === topic);
    const sent = own.filter((m) => m.seq !== undefined).sort((a, b) => a.seq! - b.seq!);
    const rest = own.filter((m) => m.seq === undefined).sort(byCreated);
    const items: ListItem[] = [];
    const gaps = log?.gaps ?? [];
    let g = 0;
    let s = 0;
    const flushBefore = (seq: number) => {
      while (g < gaps.length && gaps[g]!.from < seq) items.push(gapItem(topic, gaps[g++]!));
      while (s < sent.length && sent[s]!.seq! < seq) items.push(ownItem(sent[s++]!));
    };
    for (const seq of log?.seqs ?? []) {
      flushBefore(seq);
      items.push(messageItem(log!.bySeq.get(seq)!));
    }
    flushBefore(Number.POSITIVE_INFINITY);
    for (const m of rest) items.push(ownItem(m));
    this.cache.set(topic, { version: this.version, items });
    return items;
  }

  /**
   * A direct conversation between `me` and `other`: what `other` sent to my inbox (`user:<me>`)
   * and what I sent to theirs (`user:<other>`), which only my own copies show. Two topics have no
   * common seq, so the server's `ts` orders them; pending ones come last.
   */
  dmItems(me: string, other: string): ListItem[] {
    const cacheKey = `dm\u0000${me}\u0000${other}`;
    const cached = this.cache.get(cacheKey);
    if (cached && cached.version === this.version) return cached.items;
    const inboxTopic = `user:${me}`;
    const outTopic = `user:${other}`;
    const inbox = this.logs.get(inboxTopic);
    const settled: MessageItem[] = [];
    for (const seq of inbox?.seqs ?? []) {
      const m = inbox!.bySeq.get(seq)!;
      if (m.from === other) settled.push(messageItem(m));
    }
    // Sending to myself: my inbox already holds the delivered copies.
    const out = this.logs.get(outTopic);
    if (out && outTopic !== inboxTopic) {
      for (const seq of out.seqs) {
        const m = out.bySeq.get(seq)!;
        if (m.from === me) settled.push(messageItem(m));
      }
    }
    const own = [...this.own.values()].filter((m) => m.topic === outTopic && m.from === me);
    for (const m of own) if (m.ts !== undefined) settled.push(ownItem(m));
    settled.sort((a, b) => a.ts - b.ts || (a.seq ?? 0) - (b.seq ?? 0));
    const gaps = (inbox?.gaps ?? []).map((r) => gapItem(inboxTopic, r));
    const items: ListItem[] = [...gaps, ...settled];
    for (const m of own.filter((o) => o.ts === undefined).sort(byCreated)) items.push(ownItem(m));
    this.cache.set(cacheKey, { version: this.version, items });
    return items;
  }
}

const byCreated = (a: OwnMessage, b: OwnMessage) => a.createdAt - b.createdAt;

function messageItem(m: StoredMessage): MessageItem {
  return {
    kind: "message",
    key: ownKey(m.from, m.id),
    id: m.id,
    topic: m.topic,
    from: m.from,
    seq: m.seq,
    ts: m.ts,
    payload: m.payload,
    status: "delivered",
  };
}

function ownItem(m: OwnMessage): MessageItem {
  const item: MessageItem = {
    kind: "message",
    key: ownKey(m.from, m.id),
    id: m.id,
    topic: m.topic,
    from: m.from,
    ts: m.ts ?? m.createdAt,
    payload: m.payload,
    status: m.status,
  };
  if (m.seq !== undefined) item.seq = m.seq;
  if (m.error !== undefined) item.error = m.error;
  return item;
}

function gapItem(topic: string, r: Range): GapItem {
  return { kind: "gap", key: `gap\u0000${topic}\u0000${r.from}`, topic, from: r.from, to: r.to };
}

/** The text of a chat payload: `{ text }` as the app sends, a plain string, or else its JSON. */
export function payloadText(payload: unknown): string {
  if (typeof payload === "string") return payload;
  if (payload && typeof payload === "object" && "text" in payload && typeof payload.text === "string") {
    return payload.text;
  }
  return JSON.stringify(payload) ?? "";
}
