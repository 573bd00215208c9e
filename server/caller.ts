/**
 * Who is calling and what a handler may know of the call, and the topic rules every handler
 * checks first (PROTOCOL.md "Topics"): apart from context.ts, so that the parts of the hub import
 * these without importing the hub's whole context.
 */
import { HeraldError } from "../shared/errors.js";
import { canPublish, canSubscribe, parseTopic, type Topic } from "../shared/topics.js";
import type { TokenBucket } from "./ratelimit.js";

/** Who is calling, over a socket or HTTP. */
export interface Caller {
  user: string;
  admin: boolean;
  bucket: TokenBucket;
}

export function topicOf(name: string): Topic {
  const topic = parseTopic(name);
  if (!topic) throw new HeraldError("INVALID_TOPIC", `not a topic: ${JSON.stringify(name)}`);
  return topic;
}

/** Subscribing also grants `history` and `presence`. */
export function requireSubscribe(caller: Caller, name: string): Topic {
  const topic = topicOf(name);
  if (!canSubscribe(caller.user, topic)) throw new HeraldError("FORBIDDEN", `${caller.user} may not read ${name}`);
  return topic;
}

/** Publishing also grants `signal`. */
export function requirePublish(caller: Caller, name: string): Topic {
  const topic = topicOf(name);
  if (!canPublish(topic, caller.admin)) throw new HeraldError("FORBIDDEN", `${caller.user} may not publish to ${name}`);
  return topic;
}

/** What a handler may know of the call beyond its argument. */
export interface Call {
  /** No acknowledgement callback: nobody waits for the reply. */
  readonly oneWay: boolean;
  /** Runs `fn` after the reply is sent. */
  after(fn: () => void): void;
  /** When the event was read off the socket (`performance.now()`), for the latency metrics. */
  readonly receivedAt: number;
}
