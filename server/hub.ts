/**
 * The socket.io side of Herald: the handshake (auth, clientId, REPLACED), the table from event
 * name to schema and handler, and the one place where a handler's outcome becomes a `Reply`.
 * A bad argument is answered with its code and never closes the connection.
 */
import type { Server } from "socket.io";
import type { ZodType } from "zod";
import { HeraldError, isErrorCode } from "../shared/errors.js";
import {
  CLIENT_EVENTS,
  type ClientEvent,
  type ClientToServerEvents,
  type ServerToClientEvents,
} from "../shared/protocol.js";
import {
  ackSchema,
  type CommitArgs,
  commitSchema,
  historySchema,
  type PrepareArgs,
  prepareSchema,
  presenceSchema,
  publishSchema,
  type RequestArgs,
  type RollbackArgs,
  requestSchema,
  rollbackSchema,
  signalSchema,
  subscribeSchema,
  unsubscribeSchema,
} from "../shared/schemas.js";
import { ID_RE } from "../shared/topics.js";
import { ack } from "./ack.js";
import type { Authenticator } from "./auth.js";
import { type Call, requireSubscribe } from "./caller.js";
import type { Context } from "./context.js";
import { history } from "./history.js";
import type { OriginPolicy } from "./origin.js";
import { publish } from "./publish.js";
import { TokenBucket } from "./ratelimit.js";
import { RelayedError } from "./requests.js";
import { type EngineConnection, SendBuffer } from "./send-buffer.js";
import { clientKey, type HeraldSocket, Session } from "./session.js";
import { signal } from "./signal.js";
import { drop, resume, startAll, stopDelivery, subscribe, unsubscribe } from "./subscriptions.js";

/** One call on a socket: a class, so that the hot path makes no closures per event. */
class SocketCall implements Call {
  readonly oneWay: boolean;
  private later: (() => void)[] | undefined;

  constructor(
    readonly cb: ((reply: unknown) => void) | undefined,
    readonly receivedAt: number,
  ) {
    this.oneWay = cb === undefined;
  }

  after(fn: () => void): void {
    this.later ??= [];
    this.later.push(fn);
  }

  reply(result: object): void {
    this.cb?.({ ok: true, ...result });
    if (this.later) for (const fn of this.later) fn();
  }
}
interface Handler {
  schema: ZodType;
  run(ctx: Context, session: Session, args: never, call: Call): Promise<object>;
}

const HANDLERS: Record<ClientEvent, Handler> = {
  publish: { schema: publishSchema, run: publish },
  subscribe: { schema: subscribeSchema, run: subscribe },
  unsubscribe: { schema: unsubscribeSchema, run: unsubscribe },
  ack: { schema: ackSchema, run: ack },
  history: { schema: historySchema, run: history },
  presence: {
    schema: presenceSchema,
    run: async (ctx, session, args: { topic: string }) => {
      requireSubscribe(session, args.topic);
      session.bucket.take();
      return { users: ctx.presence.users(args.topic) };
    },
  },
  signal: { schema: signalSchema, run: signal },
  request: {
    schema: requestSchema,
    run: (ctx, session, args: RequestArgs) => ctx.requests.request(session, args),
  },
  prepare: { schema: prepareSchema, run: (ctx, session, args: PrepareArgs) => ctx.transactions.prepare(session, args) },
  commit: { schema: commitSchema, run: (ctx, session, args: CommitArgs) => ctx.transactions.commit(session, args.id) },
  rollback: {
    schema: rollbackSchema,
    run: (ctx, session, args: RollbackArgs) => ctx.transactions.rollback(session, args.id),
  },
};
const KNOWN = new Set<string>(CLIENT_EVENTS);
/**
 * Events whose reply grows with the data (a history page of up to 500 messages, a user list): the
 * events after one wait until its reply is queued, so that a burst of them cannot all start before
 * the send buffer has counted the first (see receive).
 */
const READS = new Set<ClientEvent>(["history", "presence", "subscribe"]);
/**
 * Events one connection may have waiting to run. A WebSocket stops being read while its send buffer
 * is full, so this bounds what one read of the TCP socket held; a long-polling client past it is
 * disconnected, since its POSTs cannot be paused.
 */
const MAX_HELD = 10_000;
/** PROTOCOL: a connection whose send buffer stays full this long is disconnected. */
const DRAIN_TIMEOUT_MS = 30_000;
const DRAIN_POLL_MS = 50;
/** The handshake's `auth` object: `io(url, { auth: { clientId, token?, user? } })`. */
const AUTH_FIELDS = new Set(["clientId", "token", "user"]);

export class Hub {
  /** The live session of each (user, clientId). */
  private readonly sessions = new Map<string, Session>();
  /** Shutting down: what is in flight finishes, nothing new is taken (herald.ts close). */
  private stopping = false;

  constructor(
    private readonly ctx: Context,
    io: Server<ClientToServerEvents, ServerToClientEvents>,
    private readonly auth: Authenticator,
    private readonly origins: OriginPolicy,
  ) {
    io.use((socket, next) => {
      if (this.stopping) {
        next(toConnectError(new HeraldError("UNAVAILABLE", "the server is shutting down"), ctx));
        return;
      }
      this.handshake(socket).then(
        () => next(),
        (err: unknown) => next(toConnectError(err, ctx)),
      );
    });
    io.on("connection", (socket) => this.connected(socket));
    ctx.metrics.watchConnections(() => this.transports());
  }

  /** Each live connection's transport, for /metrics. */
  private *transports(): Iterable<string> {
    for (const session of this.sessions.values()) yield session.socket.conn.transport.name;
  }

  /** The live session of a (user, clientId), if any. */
  session(user: string, clientId: string): Session | undefined {
    return this.sessions.get(clientKey({ user, clientId }));
  }

  isLive(client: { user: string; clientId: string }): boolean {
    return this.sessions.has(clientKey(client));
  }

  get connections(): number {
    return this.sessions.size;
  }

  /** Takes no new event from here on; each is answered UNAVAILABLE, to be retried elsewhere or later. */
  stop(): void {
    this.stopping = true;
  }

  /** Authenticates, replaces an older connection of the same client, and resumes its subscriptions. */
  private async handshake(socket: HeraldSocket): Promise<void> {
    const auth = (socket.handshake.auth ?? {}) as Record<string, unknown>;
    // PROTOCOL: optional fields are absent, never null; an unknown field is BAD_REQUEST.
    for (const [field, value] of Object.entries(auth)) {
      if (!AUTH_FIELDS.has(field)) throw new HeraldError("BAD_REQUEST", `auth.${field}: unknown field`);
      if (value === null) throw new HeraldError("BAD_REQUEST", `auth.${field}: null; leave it out instead`);
    }
    const { clientId } = auth;
    if (typeof clientId !== "string" || !ID_RE.test(clientId)) {
      throw new HeraldError("BAD_REQUEST", "auth.clientId: 1-64 chars of [A-Za-z0-9_-]");
    }
    const { origin, host } = socket.handshake.headers;
    if (!this.origins.allows(origin, host)) {
      throw new HeraldError("FORBIDDEN", `origin ${origin} may not connect (HERALD_ALLOWED_ORIGINS lists the others)`);
    }
    const { user, admin } = await this.auth.identify(auth);
    const { config } = this.ctx;
    const sendBuffer = new SendBuffer(socket.conn as unknown as EngineConnection, config.maxBuffered);
    const session = new Session(socket, user, clientId, admin, new TokenBucket(config.rateLimit), sendBuffer);
    const old = this.sessions.get(session.key);
    this.sessions.set(session.key, session);
    if (old) {
      old.live = false;
      this.replace(old);
      // PROTOCOL: no presence event for the hand-over. The old sessions leave their topics once this
      // one has joined them; one replaced before it joined hands on the sessions it was to drop.
      session.handover.push(old, ...old.handover.splice(0));
    }
    // In a cluster the client's connection on another node is let go first, its acks written.
    const handed = this.ctx.cluster ? await this.ctx.cluster.claim(user, clientId) : undefined;
    if (!session.live) throw new HeraldError("REPLACED", "a newer connection of this client took over");
    this.ctx.presence.connect(session);
    // A client that goes away during the handshake never gets a "connection" (socket.io drops it
    // quietly), so the end of its transport is what ends the session in every case.
    socket.conn.once("close", () => process.nextTick(this.closedNext, session));
    let resumed: boolean;
    try {
      resumed = await resume(this.ctx, session);
    } catch (err) {
      this.closed(session);
      throw err;
    }
    if (!resumed) throw new HeraldError("REPLACED", "a newer connection of this client took over");
    // The new session has joined its topics, so the old ones leave without a presence event.
    for (const replaced of session.handover.splice(0)) drop(this.ctx, replaced);
    if (handed) this.ctx.cluster!.claimed(session, handed);
    socket.data = session;
  }

  /**
   * A connection of the same client on another node took over (cluster.ts): this one goes as a
   * REPLACED one does, at once, and then what it acked without a reply is written.
   */
  async letGo(session: Session): Promise<void> {
    if (this.sessions.get(session.key) === session) this.sessions.delete(session.key);
    session.live = false;
    this.replace(session);
    for (const replaced of session.handover.splice(0)) drop(this.ctx, replaced);
    drop(this.ctx, session);
    await this.ctx.store.flush();
  }

  /** PROTOCOL: the older socket gets no more deliveries, then REPLACED, then is disconnected. */
  private replace(old: Session): void {
    stopDelivery(this.ctx, old);
    this.ctx.requests.drop(old);
    old.socket.emit("error", { code: "REPLACED", message: "a newer connection of this client took over" });
    old.socket.disconnect(true);
  }

  /**
   * `closed` on the next tick: events run on the next tick (see connected), and the acks a client
   * sent just before it went away often come in the same read as its disconnect; PROTOCOL says
   * acks already received count, so they run first.
   */
  private readonly closedNext = (session: Session): void => this.closed(session);

  /** Ends a session once: no more deliveries, presence left, last seen noted. */
  private closed(session: Session): void {
    if (!session.live) return;
    session.live = false;
    if (this.sessions.get(session.key) === session) this.sessions.delete(session.key);
    for (const replaced of session.handover.splice(0)) drop(this.ctx, replaced);
    drop(this.ctx, session);
    this.ctx.requests.drop(session);
    this.ctx.store.touchClient(session, Date.now()).catch(() => {});
  }

  private connected(socket: HeraldSocket): void {
    const session = socket.data as Session;
    // One listener for every event: one per event name cost each idle connection a dozen closures
    // and a listener table (W6, memory per connection). socket.io calls it while it decodes the
    // packet; the handler runs on the next tick, where socket.io runs event listeners. Run at once,
    // a reconnecting client's first `history` could be answered before its resumed subscription's
    // first `messages`, and the chat then loads the newest page instead of all it missed.
    socket.onAny((event: unknown, ...args: unknown[]) => {
      if (typeof event === "string" && KNOWN.has(event)) {
        this.receive(session, event as ClientEvent, args);
        return;
      }
      const cb = args[args.length - 1];
      if (typeof cb === "function")
        cb(failure(new HeraldError("BAD_REQUEST", `unknown event ${JSON.stringify(event)}`)));
    });
    socket.on("disconnect", () => {
      process.nextTick(this.closedNext, session);
    });
    startAll(this.ctx, session);
  }

  /**
   * PROTOCOL "Transport": once more than HERALD_MAX_BUFFERED waits to be sent to the connection, none
   * of its further events runs until it drains (nor does anything queued behind a read, see
   * READS). Held events keep their order.
   */
  private receive(session: Session, event: ClientEvent, args: unknown[]): void {
    const at = performance.now();
    if (session.reading || session.held.length > 0 || session.sendBuffer.full) {
      session.held.push({ event, args, at });
      if (session.held.length > MAX_HELD) {
        this.ctx.log.warn({ user: session.user, clientId: session.clientId }, "too many events held; disconnecting");
        session.socket.disconnect(true);
        return;
      }
      if (!session.reading) this.release(session);
      return;
    }
    this.start(session, event, args, at);
  }

  private start(session: Session, event: ClientEvent, args: unknown[], at: number): void {
    if (READS.has(event)) session.reading = true;
    process.nextTick(this.dispatchNext, session, event, args, at);
  }

  /** Runs held events while the send buffer has room; a full one is polled until it drains, or times out. */
  private release(session: Session): void {
    while (!session.reading && session.held.length > 0 && session.live) {
      if (session.sendBuffer.full) {
        this.waitForDrain(session);
        return;
      }
      const { event, args, at } = session.held.shift()!;
      this.start(session, event, args, at);
    }
  }

  private waitForDrain(session: Session): void {
    if (session.fullSince !== undefined) return;
    session.fullSince = performance.now();
    session.sendBuffer.pauseReading();
    const poll = setInterval(() => {
      if (!session.live) {
        clearInterval(poll);
        session.sendBuffer.resumeReading();
        return;
      }
      if (!session.sendBuffer.full) {
        clearInterval(poll);
        session.fullSince = undefined;
        session.sendBuffer.resumeReading();
        this.release(session);
      } else if (performance.now() - session.fullSince! > DRAIN_TIMEOUT_MS) {
        clearInterval(poll);
        this.ctx.log.warn(
          { user: session.user, clientId: session.clientId },
          "send buffer full for 30 s; disconnecting",
        );
        // Not a closing handshake: it would wait behind what the client does not read, and its
        // answer behind the paused reads, holding the connection for ws' 30 s close timeout.
        session.sendBuffer.terminate();
        session.socket.disconnect(true);
      }
    }, DRAIN_POLL_MS);
    poll.unref();
  }

  /** `dispatch` for process.nextTick, made once: the hot path makes no closure per event. */
  private readonly dispatchNext = (session: Session, event: ClientEvent, args: unknown[], at: number): void => {
    const done = this.dispatch(session, event, args, at);
    if (READS.has(event)) void done.then(() => this.readDone(session));
  };

  private async dispatch(session: Session, event: ClientEvent, args: unknown[], at: number): Promise<void> {
    const last = args[args.length - 1];
    const cb = typeof last === "function" ? (last as (reply: unknown) => void) : undefined;
    const given = cb ? args.length - 1 : args.length;
    if (this.stopping) {
      this.answer(session, event, cb, new HeraldError("UNAVAILABLE", "the server is shutting down"));
      return;
    }
    const handler = HANDLERS[event];
    const parsed = given === 1 ? handler.schema.safeParse(args[0]) : undefined;
    if (!parsed?.success) {
      const why = parsed?.error.issues.map((i) => `${i.path.join(".") || "argument"}: ${i.message}`).join("; ");
      this.answer(session, event, cb, new HeraldError("BAD_REQUEST", why ?? `${event} takes one argument object`));
      return;
    }
    const call = new SocketCall(cb, at);
    let result: object;
    try {
      result = await handler.run(this.ctx, session, parsed.data as never, call);
    } catch (err) {
      this.answer(session, event, cb, err);
      return;
    }
    call.reply(result);
    if (event === "publish") this.ctx.metrics.replied();
  }

  /** The reply of a read is queued (or there is none): the events held behind it may run. */
  private readDone(session: Session): void {
    session.reading = false;
    this.release(session);
  }

  private answer(session: Session, event: ClientEvent, cb: ((reply: unknown) => void) | undefined, err: unknown): void {
    const reply = failure(err);
    if (reply.error.code === "INTERNAL") {
      this.ctx.log.error({ err, event, user: session.user }, "handler failed");
    }
    if (event === "publish") this.ctx.metrics.publishes.inc({ result: reply.error.code });
    // PROTOCOL: a refused one-way publish says nothing; it is counted.
    if (cb) cb(reply);
    else this.ctx.metrics.dropped.inc({ reason: reply.error.code });
  }
}

/** Anything that is not a HeraldError is a bug or a storage failure: INTERNAL, never its details. */
export function failure(err: unknown): { ok: false; error: ReturnType<HeraldError["toJSON"]> } {
  if (err instanceof RelayedError || (err instanceof HeraldError && isErrorCode(err.code))) {
    return { ok: false, error: err.toJSON() };
  }
  return { ok: false, error: { code: "INTERNAL", message: "internal error" } };
}

function toConnectError(err: unknown, ctx: Context): Error & { data?: unknown } {
  const { error } = failure(err);
  if (error.code === "INTERNAL") ctx.log.error({ err }, "handshake failed");
  const e: Error & { data?: unknown } = new Error(error.code);
  e.data = error;
  return e;
}
