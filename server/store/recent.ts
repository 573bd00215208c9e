/**
 * The newest durable messages of each topic, kept in memory within a byte budget, so that a stream
 * that fell a little behind (a full window, a read under way when a batch came) is fed without a
 * SQLite read and a JSON.parse per message. Only what the store made durable is added, in seq
 * order, so a read served from here is what a read from SQLite would return.
 */
import type { Message } from "../../shared/protocol.js";

interface TopicLog {
  messages: Message[];
  /** Index of the oldest message still kept (the array is compacted now and then, not shifted). */
  start: number;
  bytes: number[];
}

/** A message's weight in the budget: its payload's JSON plus the envelope. */
const ENVELOPE = 160;

export class RecentMessages {
  private readonly topics = new Map<string, TopicLog>();
  private total = 0;
  /** The log written last, already at the end of the map's order. */
  private newest: TopicLog | undefined;

  constructor(private readonly budget = 32 * 1024 * 1024) {}

  add(message: Message, payloadBytes: number): void {
    let log = this.topics.get(message.topic);
    if (!log) {
      log = { messages: [], start: 0, bytes: [] };
      this.topics.set(message.topic, log);
    } else if (log !== this.newest) {
      // Keep the map in order of last write, so the budget evicts the quietest topics first.
      this.topics.delete(message.topic);
      this.topics.set(message.topic, log);
    }
    this.newest = log;
    const last = log.messages[log.messages.length - 1];
    if (last && last.seq !== message.seq - 1) this.clear(log);
    const size = payloadBytes + ENVELOPE;
    log.messages.push(message);
    log.bytes.push(size);
    this.total += size;
    while (this.total > this.budget) this.evictOne();
  }

  /** The messages with `after < seq <= upTo`, at most `limit`, or undefined when not all are here. */
  read(topic: string, after: number, upTo: number, limit: number): Message[] | undefined {
    const log = this.topics.get(topic);
    if (!log || log.start >= log.messages.length) return undefined;
    const first = log.messages[log.start]!.seq;
    if (after + 1 < first) return undefined;
    const from = log.start + (after + 1 - first);
    const to = Math.min(from + limit, log.start + (upTo - first) + 1, log.messages.length);
    return from >= to ? [] : log.messages.slice(from, to);
  }

  /** Forgets the topic's messages up to `seq` (retention removed them from the store). */
  forget(topic: string, seq: number): void {
    const log = this.topics.get(topic);
    if (!log) return;
    while (log.start < log.messages.length && log.messages[log.start]!.seq <= seq) this.shift(log);
    this.compact(topic, log);
  }

  private evictOne(): void {
    const [topic, log] = this.topics.entries().next().value as [string, TopicLog];
    this.shift(log);
    this.compact(topic, log);
  }

  private shift(log: TopicLog): void {
    this.total -= log.bytes[log.start]!;
    log.start++;
  }

  private compact(topic: string, log: TopicLog): void {
    if (log.start >= log.messages.length) {
      this.drop(topic, log);
    } else if (log.start > 1024 && log.start * 2 > log.messages.length) {
      log.messages = log.messages.slice(log.start);
      log.bytes = log.bytes.slice(log.start);
      log.start = 0;
    }
  }

  private clear(log: TopicLog): void {
    for (let i = log.start; i < log.bytes.length; i++) this.total -= log.bytes[i]!;
    log.messages = [];
    log.bytes = [];
    log.start = 0;
  }

  private drop(topic: string, log: TopicLog): void {
    this.clear(log);
    this.topics.delete(topic);
  }
}
