/** The Herald SDK's public entry (browsers and Node): only re-exports. */

export type { Err, ErrorCode } from "../errors.js";
export { HeraldError } from "../errors.js";
export type {
  GapEvent,
  HistoryOk,
  Message,
  PresenceEvent,
  PublishOk,
  SignalEvent,
  TxnCheckEvent,
  TxnState,
} from "../protocol.js";
export type { BackoffOptions } from "./backoff.js";
export { BACKOFF_DEFAULTS, Backoff, backoffDelay } from "./backoff.js";
export type {
  ClientState,
  HeraldClientEvents,
  HeraldClientOptions,
  HistoryOptions,
  PublishOptions,
  RequestHandler,
  RequestOptions,
  StateChange,
  TxnCheckHandler,
} from "./client.js";
export { HeraldClient, randomId } from "./client.js";
export { Emitter } from "./emitter.js";
export { GroupSubscription } from "./group-subscription.js";
export type { OutboxStorage, PendingPublish } from "./outbox.js";
export { MemoryOutboxStorage } from "./outbox.js";
export { ACK_EVERY, PlainSubscription } from "./plain-subscription.js";
export type { GapHandler, MessageHandler, SubscribeOptions, SubscriptionState } from "./subscription.js";
export { Subscription } from "./subscription.js";
