/**
 * One live connection of a (user, clientId): who it is, its socket, its streams (one per plain
 * subscription, PROTOCOL.md "Delivery guarantees") and its rate bucket. Its group memberships are
 * kept by groups.ts, so that this module knows no group.
 */
import type { Socket } from "socket.io";
import type { ClientEvent, ClientToServerEvents, ServerToClientEvents } from "../shared/protocol.js";
import type { TokenBucket } from "./ratelimit.js";
import type { SendBuffer } from "./send-buffer.js";
import type { ClientKey } from "./store/store.js";

export type HeraldSocket = Socket<ClientToServerEvents, ServerToClientEvents>;

/** A plain subscription of one connection: the window between `acked` and `sent`. */
export interface Stream {
  readonly session: Session;
  readonly topic: string;
  /** The cursor: every seq up to it is done. */
  acked: number;
  /** The highest seq sent on this connection (messages or a gap). */
  sent: number;
  /** Gaps sent above `acked`: they count as sent but hold no window slot. */
  gaps: { from: number; to: number }[];
  /** A store read is under way; live messages wait for it (they are in the store). */
  reading: boolean;
  /**
   * Not started: the `subscribe` reply (or, for resumed subscriptions, the connection) has not
   * gone out yet, and PROTOCOL says the reply comes before any `messages` it causes.
   */
  held: boolean;
  closed: boolean;
}

export class Session implements ClientKey {
  readonly streams = new Map<string, Stream>();
  /** False once REPLACED or disconnected: nothing more is delivered to it. */
  live = true;
  /**
   * Events received and not yet run, in arrival order (hub.ts `receive`): behind a read whose reply
   * is not queued yet, or while the send buffer is full.
   */
  /** Events waiting to run, with when each was read off the socket. */
  readonly held: { event: ClientEvent; args: unknown[]; at: number }[] = [];
  /** A `history`, `presence` or `subscribe` is running: its reply may be large, so the next events wait for it. */
  reading = false;
  /** Replaced sessions of this client that leave their topics once this one has joined them (hub.ts handshake). */
  readonly handover: Session[] = [];
  /** Since when the send buffer has been full with events held (ms, performance.now), or undefined. */
  fullSince: number | undefined;

  constructor(
    readonly socket: HeraldSocket,
    readonly user: string,
    readonly clientId: string,
    readonly admin: boolean,
    readonly bucket: TokenBucket,
    readonly sendBuffer: SendBuffer,
  ) {}

  get key(): string {
    return clientKey(this);
  }
}

export const clientKey = (c: ClientKey): string => `${c.user}\u0000${c.clientId}`;
