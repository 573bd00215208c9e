/**
 * The typed copy of PROTOCOL.md (wire protocol version 1): event names, the message shape, replies
 * and one event map per direction. Server, SDK, web app and tests all import this file.
 * docs/protocol.md is the prose; PROTOCOL.md in the steering repo is binding.
 */
import type { Err } from "./errors.js";
import type {
  AckArgs,
  CommitArgs,
  HistoryArgs,
  PrepareArgs,
  PresenceArgs,
  PublishArgs,
  RequestArgs,
  RollbackArgs,
  SignalArgs,
  SubscribeArgs,
  UnsubscribeArgs,
} from "./schemas.js";

export const PROTOCOL_VERSION = 1;

export interface Message {
  /** Chosen by the publisher, unique per publisher: (from, id). */
  id: string;
  topic: string;
  /** The topic's sequence number: 1, 2, 3, ... gapless. A message is identified by (topic, seq). */
  seq: number;
  /** The publisher's authenticated user id, set by the server. */
  from: string;
  /** Server time in ms when the message was accepted; never decreases along seq in a topic. */
  ts: number;
  key?: string;
  payload: unknown;
  /** Only on a message handed to this client as a member of that consumer group. */
  group?: string;
  /** With `group`: 1 on the first delivery, 2 on the first redelivery, ... */
  attempt?: number;
}

export type Reply<T> = ({ ok: true } & T) | { ok: false; error: Err };
export type Ack<T> = (reply: Reply<T>) => void;

/** `GET /api/v1/stats` (admins; PROTOCOL.md "HTTP"): read by `herald stats`, `herald top` and `/admin`. */
export interface StatsOk {
  node: string;
  /** The server's clock (ms since epoch): ages are measured against it. */
  now: number;
  connections: number;
  topics: { topic: string; head: number }[];
  subscriptions: {
    user: string;
    clientId: string;
    topic: string;
    acked: number;
    head: number;
    lag: number;
    /** With a lag: the `ts` of the oldest message not acked, unless retention removed it. */
    oldestUnackedTs?: number;
    live: boolean;
  }[];
  groups: {
    topic: string;
    group: string;
    acked: number;
    head: number;
    /** The backlog: messages above `acked` not finished. */
    lag: number;
    members: number;
    inflight: number;
    oldestUnackedTs?: number;
  }[];
}

export interface PublishOk {
  seq: number;
  ts: number;
  duplicate: boolean;
}
export interface SubscribeOk {
  head: number;
  acked: number;
}
export interface HistoryOk {
  messages: Message[];
  head: number;
}
export interface PresenceOk {
  users: string[];
}
export interface RequestOk {
  result: unknown;
}
export interface PrepareOk {
  duplicate: boolean;
}
// biome-ignore lint/complexity/noBannedTypes: the protocol's empty success reply is `{}`.
export type EmptyOk = {};

export interface GapEvent {
  topic: string;
  from: number;
  to: number;
  group?: string;
}
export interface SignalEvent {
  topic: string;
  from: string;
  payload: unknown;
}
export interface PresenceEvent {
  topic: string;
  user: string;
  online: boolean;
}
export interface RequestEvent {
  from: string;
  method: string;
  params?: unknown;
}
export type RequestAnswer = { result: unknown } | { error: { code: string; message: string } };
export interface TxnCheckEvent {
  id: string;
  topic: string;
}
export type TxnState = "commit" | "rollback" | "unknown";

export interface ClientToServerEvents {
  publish: (args: PublishArgs, ack?: Ack<PublishOk>) => void;
  subscribe: (args: SubscribeArgs, ack: Ack<SubscribeOk>) => void;
  unsubscribe: (args: UnsubscribeArgs, ack: Ack<EmptyOk>) => void;
  ack: (args: AckArgs, ack?: Ack<EmptyOk>) => void;
  history: (args: HistoryArgs, ack: Ack<HistoryOk>) => void;
  presence: (args: PresenceArgs, ack: Ack<PresenceOk>) => void;
  signal: (args: SignalArgs, ack?: Ack<EmptyOk>) => void;
  request: (args: RequestArgs, ack: Ack<RequestOk>) => void;
  prepare: (args: PrepareArgs, ack: Ack<PrepareOk>) => void;
  commit: (args: CommitArgs, ack: Ack<PublishOk>) => void;
  rollback: (args: RollbackArgs, ack: Ack<EmptyOk>) => void;
}

export interface ServerToClientEvents {
  messages: (batch: Message[]) => void;
  gap: (gap: GapEvent) => void;
  signal: (signal: SignalEvent) => void;
  presence: (presence: PresenceEvent) => void;
  request: (request: RequestEvent, answer: (answer: RequestAnswer) => void) => void;
  "txn-check": (check: TxnCheckEvent, answer: (answer: { state: TxnState }) => void) => void;
  error: (err: Err) => void;
}

export type ClientEvent = keyof ClientToServerEvents;
export const CLIENT_EVENTS = [
  "publish",
  "subscribe",
  "unsubscribe",
  "ack",
  "history",
  "presence",
  "signal",
  "request",
  "prepare",
  "commit",
  "rollback",
] as const satisfies readonly ClientEvent[];

/** The protocol's defaults; server/config.ts reads the settings, the SDK uses the limits. */
export const DEFAULTS = {
  port: 3000,
  host: "127.0.0.1",
  dataDir: "./data",
  maxPayload: 65536,
  maxInflight: 1024,
  rateLimit: 1000,
  ackTimeoutMs: 30000,
  maxDeliveries: 5,
  maxBacklog: 1000000,
  retentionMessages: 10000000,
  retentionMs: 30 * 24 * 60 * 60 * 1000,
  txnCheckMs: 10000,
  txnMaxChecks: 10,
  historyLimit: 50,
  historyMaxLimit: 500,
  requestTimeoutMs: 10000,
  maxBuffered: 8 * 1024 * 1024,
  maxSubscriptions: 10000,
} as const;

/** The deepest nesting a payload may have; deeper is `BAD_REQUEST` (the protocol is silent). */
export const MAX_PAYLOAD_DEPTH = 64;
