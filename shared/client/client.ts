/**
 * HeraldClient: one connection of a (user, clientId) to a Herald server, for browsers and Node.
 *
 * The connection is an explicit state machine, every change made by one `setState` that emits
 * `{ from, to, reason }`:
 *
 *   disconnected --connect()--> connecting --connect--> connected
 *        ^                          |                      |
 *        +---- backoff timer <------+ connect_error        | disconnect
 *        +---------------------------------------------------+
 *   any --close() / REPLACED / UNAUTHORIZED / FORBIDDEN / BAD_REQUEST--> closed (final)
 *
 * socket.io's own reconnection is off: each attempt is a fresh socket made here, so that the
 * backoff, the resend of the outbox and the re-subscribe all follow from this one state machine.
 * After every connect: re-subscribe (the server resumes durable subscriptions and group
 * memberships by itself, so this is a no-op there, but it confirms each stream's position), then
 * resend the outbox in order with the same ids (the server deduplicates), then whatever else
 * waited for a connection.
 *
 * Streams are keyed by (topic, group?): a plain subscription and a group membership of one topic
 * are independent (PROTOCOL.md "Groups"), and one `messages` batch may feed several of them.
 */
import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";
import { type Err, HeraldError, isErrorCode } from "../errors.js";
import type {
  ClientToServerEvents,
  GapEvent,
  HistoryOk,
  Message,
  PresenceEvent,
  PublishOk,
  Reply,
  RequestAnswer,
  RequestEvent,
  ServerToClientEvents,
  SignalEvent,
  TxnCheckEvent,
  TxnState,
} from "../protocol.js";
import type { AckArgs, PublishArgs, RequestArgs } from "../schemas.js";
import { Backoff, type BackoffOptions } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { GroupSubscription } from "./group-subscription.js";
import { MemoryOutboxStorage, Outbox, type OutboxStorage, type PendingPublish } from "./outbox.js";
import { PlainSubscription } from "./plain-subscription.js";
import {
  type MessageHandler,
  type SubscribeOptions,
  type Subscription,
  type SubscriptionHost,
  streamKey,
} from "./subscription.js";

export type ClientState = "disconnected" | "connecting" | "connected" | "closed";

export interface StateChange {
  from: ClientState;
  to: ClientState;
  /** Why: "connect", "connected", "retry", "closed", an error code, or socket.io's disconnect reason. */
  reason: string;
}

export type HeraldClientEvents = {
  state: (change: StateChange) => void;
  /** REPLACED, a refused handshake, a refused re-subscribe, a refused publish nobody awaited, a handler that threw. */
  error: (err: HeraldError) => void;
  signal: (signal: SignalEvent) => void;
  presence: (presence: PresenceEvent) => void;
  /** Retention removed messages of a subscribed topic (or of a group, with `group`) before this client got them. */
  gap: (gap: GapEvent) => void;
  /** The outbox changed; the argument is what `pending()` returns now. */
  pending: (list: PendingPublish[]) => void;
  /**
   * A publish from the outbox was answered: also one restored from storage after a reload, which
   * no `publish()` call in this page waits for.
   */
  published: (result: PublishOk & { id: string; topic: string }) => void;
};

export interface HeraldClientOptions {
  /**
   * The server, e.g. `http://127.0.0.1:3000`, or the nodes of a cluster: after a connection
   * attempt fails or a connection is lost, the next attempt goes to the next node (in turn), where
   * the client resumes its durable state.
   */
  url: string | readonly string[];
  /** 1-64 chars of `[A-Za-z0-9_-]`, kept across reconnects and restarts: durable state belongs to (user, clientId). */
  clientId: string;
  /** The user id in `dev` auth. */
  user?: string;
  /** The JWT in `jwt` auth; a function is asked again before every connection attempt (tokens expire). */
  token?: string | (() => string | Promise<string>);
  /** Where unanswered publishes are kept. @default in memory */
  outbox?: OutboxStorage;
  /** Passed to socket.io-client; `reconnection`, `autoConnect`, `forceNew` and `auth` are the client's own. */
  socketOptions?: Partial<ManagerOptions & SocketOptions>;
  /** Reconnect delays. @default { baseMs: 250, capMs: 10000 } */
  backoff?: BackoffOptions;
}

export interface PublishOptions {
  /** @default randomId(): a time-ordered UUIDv7 */
  id?: string;
  /** Ordering key (PROTOCOL.md "Groups"). */
  key?: string;
}

export interface RequestOptions {
  /** How long the server waits for the answer, 1-60000 ms (PROTOCOL default 10000). */
  timeoutMs?: number;
}

/** Answers a `request`: the result to send, or a throw to refuse (see onRequest). */
export type RequestHandler = (params: unknown, request: { from: string; method: string }) => unknown;

/** Answers a `txn-check` from the app's own records (see onTxnCheck). */
export type TxnCheckHandler = (check: TxnCheckEvent) => TxnState | Promise<TxnState>;

export interface HistoryOptions {
  before?: number;
  after?: number;
  limit?: number;
}

type HeraldSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/**
 * Handshake refusals that no retry can cure (PROTOCOL.md "Transport"); REPLACED is one when a
 * newer connection took over while this one was still in its handshake: retrying would replace it.
 * FORBIDDEN is an Origin the server does not allow (HERALD_ALLOWED_ORIGINS): a page's origin does
 * not change by retrying.
 */
const FATAL_CONNECT_ERRORS = new Set(["UNAUTHORIZED", "BAD_REQUEST", "FORBIDDEN", "REPLACED"]);
/** How long `close()` waits for acks in flight to be answered. */
const CLOSE_ACK_WAIT_MS = 1000;

/**
 * A request that waits for a connection and is sent again after a reconnect until answered: only
 * for events that a repeat leaves as they were (a transaction's steps are, by their id).
 */
interface Call {
  event: "history" | "presence" | "unsubscribe" | "prepare" | "commit" | "rollback";
  args: object;
  sentOn: number;
  resolve(reply: object): void;
  reject(err: unknown): void;
}

export class HeraldClient extends Emitter<HeraldClientEvents> {
  private _state: ClientState = "disconnected";
  private socket: HeraldSocket | undefined;
  /** Counts established connections; the outbox and calls remember which one they were sent on. */
  private connection = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly backoff: Backoff;
  private readonly outbox: Outbox;
  /**
   * One per stream, by streamKey(topic, group); also for streams the server resumed before the
   * application subscribed again.
   */
  private readonly subs = new Map<string, Subscription>();
  private readonly calls = new Set<Call>();
  /** One-way publishes made while offline, sent on the next connect. */
  private readonly oneWay: PublishArgs[] = [];
  /** Acks sent and not answered yet, with what settles each (close() waits for them briefly). */
  private readonly acksInFlight = new Map<Promise<void>, () => void>();
  private readonly host: SubscriptionHost;
  /** What rejects each request sent and not answered; a lost connection rejects them with UNAVAILABLE. */
  private readonly requestsInFlight = new Set<(err: HeraldError) => void>();
  private readonly requestHandlers = new Map<string, RequestHandler>();
  /** Transactions whose local work is running here: a `txn-check` of one is "unknown", not the app's. */
  private readonly txnsRunning = new Set<string>();
  private txnCheckHandler: TxnCheckHandler | undefined;

  /** The nodes to connect to, and which of them the next attempt takes. */
  private readonly urls: readonly string[];
  private urlIndex = 0;

  constructor(private readonly options: HeraldClientOptions) {
    super();
    this.urls = typeof options.url === "string" ? [options.url] : [...options.url];
    if (this.urls.length === 0) throw new HeraldError("BAD_REQUEST", "url: at least one server");
    this.backoff = new Backoff(options.backoff);
    this.outbox = new Outbox(options.outbox ?? new MemoryOutboxStorage(), () => this.emit("pending", this.pending()));
    this.host = {
      sendAck: (args, answered) => this.sendAck(args, answered),
      gapProcessed: (gap) => this.emit("gap", gap),
      handlerFailed: (err) => this.emit("error", err),
      unsubscribe: (sub) => this.removeSubscription(sub),
    };
  }

  get state(): ClientState {
    return this._state;
  }

  get clientId(): string {
    return this.options.clientId;
  }

  /** The server this client is connected (or connecting) to. */
  get url(): string {
    return this.urls[this.urlIndex % this.urls.length]!;
  }

  /** Connects, and from then on reconnects by itself with the backoff until `close()`. */
  connect(): void {
    if (this._state === "closed") throw new HeraldError("UNAVAILABLE", "the client is closed");
    if (this._state !== "disconnected") return;
    this.clearRetry();
    this.open("connect");
  }

  /**
   * Publishes and resolves with the server's reply; rejects with a HeraldError when it refuses.
   * Offline, the publish waits in the outbox; unanswered when the connection drops, it is sent
   * again with the same id after the reconnect, in the original order.
   */
  publish(topic: string, payload: unknown, options: PublishOptions = {}): Promise<PublishOk> {
    if (this._state === "closed") return Promise.reject(closedError());
    const pending: PendingPublish = { id: options.id ?? randomId(), topic, payload, createdAt: Date.now() };
    if (options.key !== undefined) pending.key = options.key;
    const result = this.outbox.add(pending);
    this.flushOutbox();
    return result;
  }

  /** A one-way publish: no reply, nothing said when refused. Offline it waits for the next connect. */
  send(topic: string, payload: unknown, options: PublishOptions = {}): void {
    if (this._state === "closed") throw closedError();
    const args: PublishArgs = { id: options.id ?? randomId(), topic, payload: asPayload(payload) };
    if (options.key !== undefined) args.key = options.key;
    if (this.socket && this._state === "connected") this.socket.emit("publish", args);
    else this.oneWay.push(args);
  }

  /**
   * Subscribes `handler` to a topic; resolves once the server confirmed it. Messages are handed
   * over in seq order, one at a time, each processed exactly once; see plain-subscription.ts.
   * With `group`, joins that consumer group of the topic instead: each message goes to one member
   * and is acked by itself once its handler resolved; see group-subscription.ts.
   */
  subscribe(
    topic: string,
    handler: MessageHandler,
    options?: SubscribeOptions & { group?: undefined },
  ): Promise<PlainSubscription>;
  subscribe(
    topic: string,
    handler: MessageHandler,
    options: SubscribeOptions & { group: string },
  ): Promise<GroupSubscription>;
  subscribe(topic: string, handler: MessageHandler, options?: SubscribeOptions): Promise<Subscription>;
  subscribe(topic: string, handler: MessageHandler, options: SubscribeOptions = {}): Promise<Subscription> {
    if (this._state === "closed") return Promise.reject(closedError());
    const { group, concurrency } = options;
    if (concurrency !== undefined && !(Number.isSafeInteger(concurrency) && concurrency >= 1)) {
      return Promise.reject(new HeraldError("BAD_REQUEST", "concurrency must be a whole number of at least 1"));
    }
    if (concurrency !== undefined && concurrency > 1 && group === undefined) {
      return Promise.reject(
        new HeraldError("BAD_REQUEST", "concurrency above 1 needs a group: a plain subscription is processed in order"),
      );
    }
    const key = streamKey(topic, group);
    let sub = this.subs.get(key);
    if (sub?.attached) {
      const what = group === undefined ? topic : `${topic} in group ${group}`;
      return Promise.reject(new HeraldError("BAD_REQUEST", `already subscribed to ${what} on this client`));
    }
    if (!sub || sub.state === "unsubscribed") {
      sub = newStream(topic, group, this.host);
      this.subs.set(key, sub);
    }
    const confirmed = sub.attach(handler, options);
    if (this.socket && this._state === "connected") this.sendSubscribe(this.socket, sub);
    return confirmed;
  }

  history(topic: string, options: HistoryOptions = {}): Promise<HistoryOk> {
    return this.call<HistoryOk>("history", { topic, ...options });
  }

  /** The users with a live connection subscribed to the topic. */
  async presence(topic: string): Promise<string[]> {
    const { users } = await this.call<{ users: string[] }>("presence", { topic });
    return users;
  }

  /**
   * A remote call to user `to` (PROTOCOL.md `request`): resolves with what the newest live
   * connection of `to` (not this one) answered; rejects with a HeraldError: the responder's own code
   * when it refused, UNAVAILABLE with nobody to answer or when a connection went away first,
   * TIMEOUT after `timeoutMs` (the server's default 10 s). Never sent again after a reconnect, as
   * a call may have done its work: offline it fails at once with UNAVAILABLE.
   */
  request(to: string, method: string, params?: unknown, options: RequestOptions = {}): Promise<unknown> {
    if (this._state === "closed") return Promise.reject(closedError());
    const socket = this.socket;
    if (!socket || this._state !== "connected") {
      return Promise.reject(new HeraldError("UNAVAILABLE", "not connected: a request is not kept for later"));
    }
    const args: RequestArgs = { to, method };
    if (params !== undefined) args.params = params;
    if (options.timeoutMs !== undefined) args.timeoutMs = options.timeoutMs;
    return new Promise((resolve, reject) => {
      this.requestsInFlight.add(reject);
      socket.emit("request", args, (reply) => {
        if (!this.requestsInFlight.delete(reject)) return;
        if (reply.ok) resolve(reply.result);
        else reject(HeraldError.fromWire(reply.error));
      });
    });
  }

  /**
   * Answers the `request`s for `method` with what `handler` resolves to (`undefined` is sent as
   * `null`, the one JSON value for nothing). A handler that throws a HeraldError refuses with its
   * code, any other throw with INTERNAL; a method with no handler is refused with NOT_FOUND.
   * Returns what removes the handler.
   */
  onRequest(method: string, handler: RequestHandler): () => void {
    if (this.requestHandlers.has(method))
      throw new HeraldError("BAD_REQUEST", `a handler for ${method} is set already`);
    this.requestHandlers.set(method, handler);
    return () => {
      if (this.requestHandlers.get(method) === handler) this.requestHandlers.delete(method);
    };
  }

  /**
   * A message published if and only if `localWork` succeeds (PROTOCOL.md "Transactions"): it is
   * prepared (stored by the hub, not delivered), then `localWork` runs (the app's own transaction,
   * a database write, say), then the message is committed, and gets its seq, when `localWork`
   * resolved, or rolled back when it threw (the throw is passed on). Each step is sent again after
   * a reconnect until answered, which its id makes safe. Should this process die between its local
   * commit and ours, the hub asks any client of this user later with `txn-check`: answer it with
   * `onTxnCheck` from the app's own records.
   */
  async transaction<T>(
    topic: string,
    payload: unknown,
    localWork: (txn: { id: string }) => T | Promise<T>,
    options: PublishOptions = {},
  ): Promise<{ result: T; seq: number; ts: number; duplicate: boolean }> {
    const id = options.id ?? randomId();
    const args: PublishArgs = { id, topic, payload: asPayload(payload) };
    if (options.key !== undefined) args.key = options.key;
    // "unknown" to a check from the prepare to the answer of the commit or rollback: a check can
    // come before the prepare's reply, or while the commit is on its way.
    this.txnsRunning.add(id);
    try {
      await this.call("prepare", args);
      let result: T;
      try {
        result = await localWork({ id });
      } catch (err) {
        await this.call("rollback", { id });
        throw err;
      }
      const { seq, ts, duplicate } = await this.call<PublishOk>("commit", { id });
      return { result, seq, ts, duplicate };
    } finally {
      this.txnsRunning.delete(id);
    }
  }

  /**
   * Answers the hub's `txn-check` for a transaction of this user that was neither committed nor
   * rolled back in time (its process died, say): "commit", "rollback", or "unknown" to be asked
   * again next period (HERALD_TXN_MAX_CHECKS periods, then the hub rolls back). One that this
   * client is running now is answered "unknown" without asking the handler.
   */
  onTxnCheck(handler: TxnCheckHandler): void {
    this.txnCheckHandler = handler;
  }

  /** Fire-and-forget (typing indicators): dropped when offline, since a late signal is a wrong one. */
  signal(topic: string, payload: unknown): void {
    if (this.socket && this._state === "connected") this.socket.emit("signal", { topic, payload: asPayload(payload) });
  }

  /** The publishes not answered yet, oldest first (the web app shows them as "pending"). */
  pending(): PendingPublish[] {
    return this.outbox.list();
  }

  /**
   * Stops for good: waits briefly for acks in flight, disconnects, and fails whatever waits. The
   * outbox's storage keeps unanswered publishes for the next client that opens it.
   */
  async close(): Promise<void> {
    if (this._state === "closed") return;
    const subs = [...this.subs.values()];
    for (const sub of subs) sub.stop("closed");
    // A handler still running (close() called from inside one, say) acks what it finishes, and
    // those acks are waited for too; a handler that never ends holds close() for the bound only.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const bound = new Promise((resolve) => {
      timer = setTimeout(resolve, CLOSE_ACK_WAIT_MS);
    });
    await Promise.race([Promise.all(subs.map((sub) => sub.settled())), bound]);
    if (this.acksInFlight.size > 0) await Promise.race([Promise.allSettled([...this.acksInFlight.keys()]), bound]);
    clearTimeout(timer);
    this.shutdown("closed");
  }

  // ---- the state machine ---------------------------------------------------------------------

  private setState(to: ClientState, reason: string): void {
    const from = this._state;
    if (from === to || from === "closed") return;
    this._state = to;
    this.emit("state", { from, to, reason });
  }

  /** One connection attempt on a fresh socket. */
  private open(reason: string): void {
    this.setState("connecting", reason);
    const { clientId, user, token } = this.options;
    const socket: HeraldSocket = io(this.url, {
      ...this.options.socketOptions,
      autoConnect: false,
      reconnection: false,
      forceNew: true,
      auth: (cb: (data: object) => void) => {
        const auth: { clientId: string; user?: string; token?: string } = { clientId };
        if (user !== undefined) auth.user = user;
        if (typeof token === "string") auth.token = token;
        if (typeof token !== "function") return cb(auth);
        Promise.resolve()
          .then(token)
          .then(
            (t) => cb({ ...auth, token: t }),
            () => cb(auth), // the server then refuses with UNAUTHORIZED, which is final
          );
      },
    });
    this.socket = socket;

    socket.on("connect", () => {
      if (socket === this.socket) this.onConnect(socket);
    });
    socket.on("connect_error", (err: Error & { data?: unknown }) => {
      if (socket === this.socket) this.onConnectError(err);
    });
    socket.on("disconnect", (why) => {
      if (socket === this.socket) this.onDisconnect(why);
    });
    socket.on("error", (err) => {
      if (socket !== this.socket) return;
      const error = toHeraldError(err);
      // PROTOCOL: a client must not reconnect with the same clientId after REPLACED.
      if (error.code === "REPLACED") this.shutdown("REPLACED");
      this.emit("error", error);
    });
    socket.on("messages", (batch) => {
      if (socket === this.socket) this.onMessages(batch);
    });
    socket.on("gap", (gap) => {
      if (socket === this.socket) this.stream(gap.topic, gap.group).pushGap(gap);
    });
    socket.on("signal", (signal) => {
      if (socket === this.socket) this.emit("signal", signal);
    });
    socket.on("presence", (presence) => {
      if (socket === this.socket) this.emit("presence", presence);
    });
    socket.on("request", (event, answer) => {
      if (socket === this.socket) void this.answerRequest(event, answer);
    });
    socket.on("txn-check", (check, answer) => {
      if (socket === this.socket) void this.answerTxnCheck(check, answer);
    });
    socket.connect();
  }

  private onConnect(socket: HeraldSocket): void {
    this.connection++;
    this.backoff.reset();
    this.setState("connected", "connected");
    for (const sub of this.subs.values()) {
      if (sub.attached && sub.state !== "unsubscribed") this.sendSubscribe(socket, sub);
    }
    this.flushOutbox();
    for (const call of this.calls) this.sendCall(socket, call);
  }

  private onConnectError(err: Error & { data?: unknown }): void {
    this.dropSocket();
    if (FATAL_CONNECT_ERRORS.has(err.message)) {
      const error = toHeraldError(err.data ?? { code: err.message, message: err.message });
      this.shutdown(error.code);
      this.emit("error", error);
      return;
    }
    // The server is down or unreachable: keep trying, on the next node of a cluster.
    this.urlIndex++;
    this.setState("disconnected", "connect_error");
    this.scheduleRetry();
  }

  private onDisconnect(why: string): void {
    this.dropSocket();
    this.urlIndex++;
    for (const sub of this.subs.values()) sub.connectionLost();
    this.setState("disconnected", why);
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this._state !== "disconnected") return;
    this.clearRetry();
    // Not unref'd: a CLI `sub` waiting for its server to come back has nothing else keeping it alive.
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this._state === "disconnected") this.open("retry");
    }, this.backoff.next());
  }

  private clearRetry(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private dropSocket(): void {
    const socket = this.socket;
    this.socket = undefined;
    if (!socket) return;
    socket.off();
    socket.disconnect();
    // A dropped connection never answers its acks; they are sent again on the next one.
    for (const settle of this.acksInFlight.values()) settle();
    this.acksInFlight.clear();
    // Nor its requests, which are not sent again (see request).
    const lost = new HeraldError("UNAVAILABLE", "the connection went away before the answer came");
    for (const reject of [...this.requestsInFlight]) reject(lost);
    this.requestsInFlight.clear();
  }

  /** Final: no more reconnects; everything waiting fails. */
  private shutdown(reason: string): void {
    if (this._state === "closed") return;
    this.clearRetry();
    this.setState("closed", reason);
    this.dropSocket();
    const err = closedError(reason);
    this.outbox.failAll(err);
    for (const call of this.calls) call.reject(err);
    this.calls.clear();
    for (const sub of this.subs.values()) sub.stop(reason, err);
    this.subs.clear();
    this.oneWay.length = 0;
  }

  // ---- subscriptions -------------------------------------------------------------------------

  /** The stream of a topic (and group); a handler-less one for a stream the server resumed by itself. */
  private stream(topic: string, group: string | undefined): Subscription {
    const key = streamKey(topic, group);
    let sub = this.subs.get(key);
    if (!sub) {
      // Held, not acked, until the application subscribes to it again; bounded by the server's
      // in-flight window (PROTOCOL: Delivery 3). A group's held messages go to another member
      // after HERALD_ACK_TIMEOUT_MS: a process that no longer wants its membership unsubscribes.
      sub = newStream(topic, group, this.host);
      this.subs.set(key, sub);
    }
    return sub;
  }

  /** PROTOCOL: one batch may mix topics and groups; each message goes to its own stream. */
  private onMessages(batch: Message[]): void {
    for (const message of batch) this.stream(message.topic, message.group).pushMessage(message);
  }

  private sendSubscribe(socket: HeraldSocket, sub: Subscription): void {
    const args = sub.subscribeArgs();
    socket.emit("subscribe", args, (reply) => {
      if (this.subs.get(sub.key) !== sub) return;
      if (reply.ok) {
        // A reply from an older connection still tells the position; the new one re-sends anyway.
        sub.subscribed({ head: reply.head, acked: reply.acked }, args.from !== undefined);
        return;
      }
      const err = HeraldError.fromWire(reply.error);
      if (sub.state === "unsubscribed" || !sub.refused(err)) this.emit("error", err);
      if (sub.state === "unsubscribed") this.subs.delete(sub.key);
    });
  }

  private async removeSubscription(sub: Subscription): Promise<void> {
    try {
      await this.call(
        "unsubscribe",
        sub.group === undefined ? { topic: sub.topic } : { topic: sub.topic, group: sub.group },
      );
    } finally {
      // Messages that arrived before the reply are dropped with the held stream.
      if (this.subs.get(sub.key) === sub || !this.subs.get(sub.key)?.attached) this.subs.delete(sub.key);
    }
  }

  private sendAck(args: AckArgs, answered?: () => void): boolean {
    const socket = this.socket;
    if (!socket || this._state !== "connected") return false;
    let settle = () => {};
    const inFlight = new Promise<void>((resolve) => {
      settle = resolve;
    });
    this.acksInFlight.set(inFlight, settle);
    socket.emit("ack", args, (reply) => {
      this.acksInFlight.delete(inFlight);
      settle();
      // PROTOCOL: an ack with a valid argument is always `ok`. UNAVAILABLE is a server shutting
      // down, and the stream sends the ack again on the next connection; anything else is a bug.
      if (reply.ok) answered?.();
      else if (reply.error.code !== "UNAVAILABLE") this.emit("error", HeraldError.fromWire(reply.error));
    });
    return true;
  }

  // ---- outbox and calls ----------------------------------------------------------------------

  private flushOutbox(): void {
    void this.outbox.ready.then(() => {
      const socket = this.socket;
      if (!socket || this._state !== "connected") return;
      // PROTOCOL: the server dedups by (user, id), so a resend of an answered publish is harmless.
      for (const pending of this.outbox.takeUnsent(this.connection)) {
        const args: PublishArgs = { id: pending.id, topic: pending.topic, payload: asPayload(pending.payload) };
        if (pending.key !== undefined) args.key = pending.key;
        socket.emit("publish", args, (reply) => {
          if (reply.ok) {
            const result = { seq: reply.seq, ts: reply.ts, duplicate: reply.duplicate };
            // Before the outbox lets go of it, so a listener sees it answered, not vanished.
            this.emit("published", { id: pending.id, topic: pending.topic, ...result });
            this.outbox.resolve(pending.id, result);
            return;
          }
          const err = HeraldError.fromWire(reply.error);
          // PROTOCOL: a stopping server answers UNAVAILABLE, to be retried elsewhere or later: the
          // entry stays, and the next connection sends it again (its id makes that safe).
          if (err.code === "UNAVAILABLE") return;
          if (!this.outbox.reject(pending.id, err)) this.emit("error", err);
        });
      }
      for (const args of this.oneWay.splice(0)) socket.emit("publish", args);
    });
  }

  private call<T extends object>(event: Call["event"], args: object): Promise<T> {
    if (this._state === "closed") return Promise.reject(closedError());
    return new Promise<T>((resolve, reject) => {
      const call: Call = { event, args, sentOn: 0, resolve: resolve as (reply: object) => void, reject };
      this.calls.add(call);
      if (this.socket && this._state === "connected") this.sendCall(this.socket, call);
    });
  }

  private async answerRequest(event: RequestEvent, answer: (answer: RequestAnswer) => void): Promise<void> {
    const handler = this.requestHandlers.get(event.method);
    if (!handler) {
      answer({ error: { code: "NOT_FOUND", message: `no handler for ${event.method}` } });
      return;
    }
    try {
      const result = await handler(event.params, { from: event.from, method: event.method });
      answer({ result: result === undefined ? null : result });
    } catch (err) {
      const error =
        err instanceof HeraldError
          ? { code: err.code, message: err.message }
          : { code: "INTERNAL", message: err instanceof Error ? err.message : String(err) };
      answer({ error });
    }
  }

  private async answerTxnCheck(check: TxnCheckEvent, answer: (answer: { state: TxnState }) => void): Promise<void> {
    const handler = this.txnCheckHandler;
    if (!handler || this.txnsRunning.has(check.id)) {
      answer({ state: "unknown" });
      return;
    }
    let state: TxnState = "unknown";
    try {
      state = await handler(check);
    } catch (err) {
      // Asked again next period; the app hears of it.
      this.emit("error", new HeraldError("INTERNAL", `the txn-check handler threw for ${check.id}`, { cause: err }));
    }
    answer({ state: state === "commit" || state === "rollback" ? state : "unknown" });
  }

  private sendCall(socket: HeraldSocket, call: Call): void {
    if (call.sentOn === this.connection) return;
    call.sentOn = this.connection;
    // One cast for the events whose argument and reply types the public methods already fix.
    const emit = socket.emit.bind(socket) as unknown as (
      event: string,
      args: object,
      ack: (reply: Reply<object>) => void,
    ) => void;
    emit(call.event, call.args, (reply) => {
      if (!this.calls.delete(call)) return;
      if (reply.ok) {
        const { ok: _, ...rest } = reply;
        call.resolve(rest);
      } else {
        call.reject(HeraldError.fromWire(reply.error));
      }
    });
  }
}

function newStream(topic: string, group: string | undefined, host: SubscriptionHost): Subscription {
  return group === undefined ? new PlainSubscription(topic, host) : new GroupSubscription(topic, group, host);
}

/** The schemas type a payload as "anything but undefined"; the server checks it, so the SDK need not. */
const asPayload = (payload: unknown) => payload as PublishArgs["payload"];

function closedError(reason = "closed"): HeraldError {
  return new HeraldError("UNAVAILABLE", `the client is closed (${reason})`);
}

function toHeraldError(err: unknown): HeraldError {
  const e = err as Partial<Err> | undefined;
  if (e && isErrorCode(e.code)) return HeraldError.fromWire({ ...e, code: e.code, message: e.message ?? e.code });
  return new HeraldError("INTERNAL", "malformed error from the server", { cause: err });
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
/** Random bytes drawn 4 KiB at a time: one `getRandomValues` per id would cost more than the rest. */
const pool = new Uint8Array(4096);
let poolAt = pool.length;

/**
 * A message id: a UUIDv7 (RFC 9562), 48 bits of Unix milliseconds then 74 random bits. Ids that
 * grow with time keep the server's dedup index (per publisher, by id) appending at its end; random
 * v4 ids land on a different index page each, and every commit then rewrites one page per message.
 * Built from `getRandomValues`, which plain-http pages also have (unlike `randomUUID`).
 */
export function randomId(now = Date.now()): string {
  if (poolAt + 10 > pool.length) {
    globalThis.crypto.getRandomValues(pool);
    poolAt = 0;
  }
  const r = pool.subarray(poolAt, poolAt + 10);
  poolAt += 10;
  const t = now.toString(16).padStart(12, "0");
  const tail = HEX[r[4]!]! + HEX[r[5]!]! + HEX[r[6]!]! + HEX[r[7]!]! + HEX[r[8]!]! + HEX[r[9]!]!;
  return `${t.slice(0, 8)}-${t.slice(8)}-7${(r[0]! & 0x0f).toString(16)}${HEX[r[1]!]}-${HEX[(r[2]! & 0x3f) | 0x80]}${HEX[r[3]!]}-${tail}`;
}
