/**
 * The chat of one tab: one SDK client, the message store, and the state around them (rooms, direct
 * conversations, unread counts, presence, typing, the connection). React reads it through
 * `useChat` (hooks.ts); nothing here touches the DOM.
 *
 * Flow: the SDK hands each subscribed topic's messages over in seq order, once each, and acks them
 * after `onMessage` returns; they go into the MessageStore, which also merges the own pending
 * copies by (from, id). History fills the logs downwards on scroll-up.
 */
import {
  type ClientState,
  HeraldClient,
  type PendingPublish,
  randomId,
  type Subscription,
} from "../../shared/client/index.js";
import type { Message } from "../../shared/protocol.js";
import { BROADCAST, NAME_RE } from "../../shared/topics.js";
import {
  type Conversation,
  conversationKey,
  conversationPath,
  parsePath,
  publishTopic,
  readTopic,
  sameConversation,
} from "./conversation.js";
import { MessageStore, type StoredMessage } from "./messageStore.js";
import { freshClientId, type Identity } from "./session.js";
import { loadJson, localOutbox, saveJson } from "./storage.js";

export type ConnectionView = "online" | "offline" | "connecting";

export interface ChatState {
  connection: ConnectionView;
  /** The SDK's own state: the browser may know it is offline before the socket does. */
  socket: ClientState;
  rooms: string[];
  dms: string[];
  active: Conversation | undefined;
  /** Unread messages per conversation key. */
  unread: ReadonlyMap<string, number>;
  /** Users online per topic (rooms), and everyone online (`broadcast`). */
  presence: ReadonlyMap<string, readonly string[]>;
  /** Who is typing, per conversation key. */
  typing: ReadonlyMap<string, readonly string[]>;
  loadingOlder: boolean;
  /** The last problem worth telling the user about. */
  notice: string | undefined;
}

const HISTORY_PAGE = 100;
const TYPING_SEND_MS = 2500;
const TYPING_SHOW_MS = 5000;
const DM_SENT_CAP = 2000;

export class Chat {
  readonly store = new MessageStore();
  readonly me: string;
  private client!: HeraldClient;
  private state: ChatState;
  private readonly listeners = new Set<() => void>();
  private readonly subscribed = new Map<string, Promise<Subscription | undefined>>();
  /** Own publishes made by this page (the rest of the outbox came from storage). */
  private readonly waiting = new Set<string>();
  private readonly lastRead: Map<string, number>;
  private readonly typingTimers = new Map<string, ReturnType<typeof setTimeout>>();
  private lastTypingSent = new Map<string, number>();
  private readonly historyLoaded = new Set<string>();
  private timers: ReturnType<typeof setInterval>[] = [];
  private closed = false;

  constructor(
    private readonly identity: Identity,
    private clientId: string,
  ) {
    this.me = identity.user;
    this.lastRead = new Map(Object.entries(loadJson<Record<string, number>>(this.key("read"), {})));
    this.state = {
      connection: "connecting",
      socket: "disconnected",
      rooms: loadJson<string[]>(this.key("rooms"), []).filter((r) => NAME_RE.test(r)),
      dms: loadJson<string[]>(this.key("dms"), []).filter((u) => NAME_RE.test(u)),
      active: undefined,
      unread: new Map(),
      presence: new Map(),
      typing: new Map(),
      loadingOlder: false,
      notice: undefined,
    };
    // My copies of what I sent to others' inboxes: no topic of mine holds them.
    for (const m of loadJson<StoredMessage[]>(this.key("dm-sent"), [])) {
      this.store.addPending({ id: m.id, topic: m.topic, from: this.me, payload: m.payload, createdAt: m.ts });
      this.store.markSent(this.me, m.id, { seq: m.seq, ts: m.ts });
    }
    this.store.subscribe(() => this.recount());
  }

  // --- the state React reads -------------------------------------------------------------------

  getState = (): ChatState => this.state;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  private set(patch: Partial<ChatState>): void {
    this.state = { ...this.state, ...patch };
    for (const l of this.listeners) l();
  }

  private key(what: string): string {
    return `herald:${this.me}:${what}`;
  }

  // --- connection ---------------------------------------------------------------------------------

  start(): void {
    this.client = this.makeClient();
    this.client.connect();
    void this.subscribeTopic(`user:${this.me}`);
    void this.subscribeTopic(BROADCAST);
    for (const room of this.state.rooms) void this.subscribeTopic(`room:${room}`);
    void this.loadHistory(`user:${this.me}`);
    void this.loadHistory(BROADCAST);
    this.reconcileOutbox(this.client.pending());
    // Everyone online (broadcast presence) has no events: poll it.
    this.timers.push(setInterval(() => void this.refreshPresence(BROADCAST), 15000));
    window.addEventListener("offline", this.onBrowserOffline);
    window.addEventListener("online", this.onBrowserOnline);
  }

  private makeClient(): HeraldClient {
    const client = new HeraldClient({
      url: location.origin,
      clientId: this.clientId,
      ...(this.identity.token ? { token: this.identity.token } : { user: this.identity.user }),
      outbox: localOutbox(this.me),
    });
    client.on("state", ({ to, reason }) => {
      if (client !== this.client) return;
      this.set({ connection: view(to), socket: to });
      if (to === "connected") {
        this.set({ notice: undefined });
        // After the subscriptions are resumed (they go out first on a new connection).
        setTimeout(() => {
          void this.refreshPresence(BROADCAST);
          const active = this.state.active;
          if (active?.kind === "room") void this.refreshPresence(publishTopic(active));
        }, 300);
      } else if (reason === "UNAUTHORIZED" || reason === "BAD_REQUEST") {
        this.set({ notice: "Sign-in was refused. Check your name or token." });
      }
    });
    client.on("error", (err) => {
      if (client !== this.client) return;
      if (err.code === "REPLACED") void this.replaced();
      else if (err.code === "UNAUTHORIZED") this.set({ notice: "Sign-in was refused. Check your name or token." });
    });
    client.on("presence", ({ topic, user, online }) => {
      const list = new Set(this.state.presence.get(topic) ?? []);
      if (online) list.add(user);
      else list.delete(user);
      this.setPresence(topic, [...list].sort());
    });
    client.on("signal", ({ topic, from, payload }) => this.onSignal(topic, from, payload));
    // The outbox resends stored publishes after a reload; nobody in this page waits for them.
    client.on("pending", (list) => {
      if (client === this.client) this.reconcileOutbox(list);
    });
    // Answers to what the outbox resent after a reload carry the seq the page needs to place them.
    client.on("published", ({ id, topic, seq, ts }) => {
      if (client !== this.client || this.waiting.has(id)) return;
      this.store.markSent(this.me, id, { seq, ts });
      if (topic.startsWith("user:") && topic !== `user:${this.me}`) {
        const own = this.store.ownMessages((o) => o.id === id)[0];
        if (own) this.keepDmCopy({ id, topic, seq, from: this.me, ts, payload: own.payload });
      }
    });
    return client;
  }

  /**
   * PROTOCOL: Transport. Another connection took this (user, clientId): most likely a duplicated
   * tab. Never reconnect with the same clientId; start again with a fresh one.
   */
  private async replaced(): Promise<void> {
    const old = this.client;
    this.clientId = freshClientId();
    this.subscribed.clear();
    await old.close().catch(() => {});
    if (this.closed) return;
    this.client = this.makeClient();
    this.client.connect();
    void this.subscribeTopic(`user:${this.me}`);
    void this.subscribeTopic(BROADCAST);
    for (const room of this.state.rooms) void this.subscribeTopic(`room:${room}`);
  }

  private onBrowserOffline = () => this.set({ connection: "offline" });
  private onBrowserOnline = () => this.set({ connection: view(this.client.state) });

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    for (const t of this.typingTimers.values()) clearTimeout(t);
    window.removeEventListener("offline", this.onBrowserOffline);
    window.removeEventListener("online", this.onBrowserOnline);
    await this.client.close();
  }

  // --- topics ---------------------------------------------------------------------------------

  private subscribeTopic(topic: string): Promise<Subscription | undefined> {
    let sub = this.subscribed.get(topic);
    if (!sub) {
      const client = this.client;
      sub = client
        .subscribe(topic, async (m) => this.onMessage(m), {
          onGap: (gap) => this.store.addGap(gap.topic, gap.from, gap.to),
        })
        .then((subscription) => {
          // Presence asked before the subscription took effect would miss this user and the
          // events of whoever came meanwhile.
          if (topic.startsWith("room:")) void this.refreshPresence(topic);
          return subscription;
        })
        .catch((err: unknown): undefined => {
          if (client !== this.client || client.state === "closed") return;
          this.subscribed.delete(topic);
          this.set({ notice: `Could not subscribe to ${topic}: ${errorText(err)}` });
        });
      this.subscribed.set(topic, sub);
    }
    return sub;
  }

  private onMessage(m: Message): void {
    const fresh = this.store.deliver([m]);
    if (fresh.length === 0) return;
    if (m.topic === `user:${this.me}` && m.from !== this.me) {
      this.addDm(m.from, m.seq - 1);
      this.stopTyping(`dm:${m.from}`, m.from);
    } else if (m.topic.startsWith("room:")) {
      this.stopTyping(m.topic, m.from);
    }
  }

  /**
   * Older messages for a conversation. A DM reads my whole inbox, where a page may hold nothing
   * from this person: it then reads on, a few pages at most per call.
   */
  async loadOlder(c: Conversation): Promise<void> {
    const topic = readTopic(c, this.me);
    if (c.kind !== "dm") return this.loadHistory(topic);
    const count = () => this.store.dmItems(this.me, c.user).length;
    const before = count();
    for (let page = 0; page < 5 && count() === before && !this.store.isComplete(topic); page++) {
      const oldest = this.store.oldest(topic);
      await this.loadHistory(topic);
      if (this.store.oldest(topic) === oldest) break; // nothing came (a failure): stop here
    }
  }

  /** Loads the page of history before what is loaded (the newest page at first). */
  async loadHistory(topic: string): Promise<void> {
    if (this.store.isComplete(topic) || this.client.state === "closed") return;
    // After a failure, wait a little before asking again (the list asks on every scroll).
    if (Date.now() < (this.historyRetryAt.get(topic) ?? 0)) return;
    if (this.historyLoading.has(topic)) return this.historyLoading.get(topic);
    const run = (async () => {
      const before = this.store.oldest(topic);
      const limit = before === undefined ? 50 : HISTORY_PAGE;
      if (this.state.active && readTopic(this.state.active, this.me) === topic) this.set({ loadingOlder: true });
      try {
        const res = await this.client.history(topic, before === undefined ? { limit } : { before, limit });
        const complete = res.messages.length < limit || res.messages[0]?.seq === 1;
        const isFirst = !this.historyLoaded.has(topic);
        this.historyLoaded.add(topic);
        if (isFirst) this.markHistoryRead(topic, res.messages, res.head);
        this.store.addHistory(topic, res.messages, { complete, head: res.head });
      } catch (err) {
        this.historyRetryAt.set(topic, Date.now() + 3000);
        if (this.client.state !== "closed") this.set({ notice: `Could not load history: ${errorText(err)}` });
      } finally {
        this.historyLoading.delete(topic);
        this.set({ loadingOlder: false });
      }
    })();
    this.historyLoading.set(topic, run);
    return run;
  }
  private readonly historyLoading = new Map<string, Promise<void>>();
  private readonly historyRetryAt = new Map<string, number>();

  /** Messages that were there before this page first looked count as read, unless a read position says otherwise. */
  private markHistoryRead(topic: string, messages: readonly Message[], head: number): void {
    if (topic === `user:${this.me}`) {
      for (const m of messages) if (m.from !== this.me) this.addDm(m.from, m.seq);
    } else if (!this.lastRead.has(topic)) {
      this.setRead(topic, messages[messages.length - 1]?.seq ?? head);
    }
  }

  // --- navigation -----------------------------------------------------------------------------

  /** Opens a conversation (joining a room or starting a DM if needed) and puts it in the URL. */
  open(c: Conversation, options: { replace?: boolean } = {}): void {
    if (c.kind === "room") this.joinRoom(c.name);
    if (c.kind === "dm") this.addDm(c.user);
    if (!sameConversation(this.state.active, c)) this.set({ active: c });
    const path = conversationPath(c);
    if (location.pathname !== path) {
      if (options.replace) history.replaceState(null, "", path);
      else history.pushState(null, "", path);
    }
    const topic = readTopic(c, this.me);
    if (!this.historyLoaded.has(topic)) void this.loadHistory(topic);
    if (c.kind === "room") void this.refreshPresence(topic);
    this.markRead();
  }

  /** The conversation in the address bar, or the last one, or the lobby. */
  openFromLocation(): void {
    const c = parsePath(location.pathname);
    if (c) {
      this.open(c, { replace: true });
      return;
    }
    const last = loadJson<string | undefined>(this.key("last"), undefined);
    const fallback: Conversation = (last ? parsePath(last) : undefined) ?? {
      kind: "room",
      name: this.state.rooms[0] ?? "general",
    };
    this.open(fallback, { replace: true });
  }

  joinRoom(name: string): void {
    if (!NAME_RE.test(name)) return;
    if (!this.state.rooms.includes(name)) {
      const rooms = [...this.state.rooms, name].sort((a, b) => a.localeCompare(b));
      this.set({ rooms });
      saveJson(this.key("rooms"), rooms);
    }
    void this.subscribeTopic(`room:${name}`);
  }

  async leaveRoom(name: string): Promise<void> {
    const topic = `room:${name}`;
    const rooms = this.state.rooms.filter((r) => r !== name);
    this.set({ rooms });
    saveJson(this.key("rooms"), rooms);
    const sub = await this.subscribed.get(topic);
    this.subscribed.delete(topic);
    this.historyLoaded.delete(topic);
    this.lastRead.delete(topic);
    this.store.forget(topic);
    await sub?.unsubscribe().catch(() => {});
    const active = this.state.active;
    if (active?.kind === "room" && active.name === name) {
      this.open(rooms[0] ? { kind: "room", name: rooms[0] } : { kind: "announcements" });
    }
  }

  private addDm(user: string, readUpTo?: number): void {
    if (!NAME_RE.test(user)) return;
    if (!this.lastRead.has(`dm:${user}`) && readUpTo !== undefined) this.setRead(`dm:${user}`, readUpTo);
    if (this.state.dms.includes(user)) return;
    const dms = [...this.state.dms, user].sort((a, b) => a.localeCompare(b));
    this.set({ dms });
    saveJson(this.key("dms"), dms);
  }

  closeDm(user: string): void {
    const dms = this.state.dms.filter((u) => u !== user);
    this.set({ dms });
    saveJson(this.key("dms"), dms);
    const active = this.state.active;
    if (active?.kind === "dm" && active.user === user) {
      this.open(this.state.rooms[0] ? { kind: "room", name: this.state.rooms[0] } : { kind: "announcements" });
    }
  }

  // --- unread ---------------------------------------------------------------------------------

  private setRead(key: string, seq: number): void {
    if ((this.lastRead.get(key) ?? -1) >= seq) return;
    this.lastRead.set(key, seq);
    saveJson(this.key("read"), Object.fromEntries(this.lastRead));
  }

  /** The open conversation is read up to its newest message while the page is visible. */
  markRead(): void {
    const active = this.state.active;
    if (!active || document.visibilityState === "hidden") return;
    const newest = this.store.newest(readTopic(active, this.me));
    if (newest !== undefined) this.setRead(conversationKey(active), newest);
    this.recount();
  }

  private recounting = false;
  private recount(): void {
    if (this.recounting) return;
    this.recounting = true;
    queueMicrotask(() => {
      this.recounting = false;
      const active = this.state.active;
      if (active && document.visibilityState !== "hidden") {
        const newest = this.store.newest(readTopic(active, this.me));
        if (newest !== undefined) this.setRead(conversationKey(active), newest);
      }
      const unread = new Map<string, number>();
      const count = (key: string, topic: string, from?: string) => {
        const read = this.lastRead.get(key);
        if (read === undefined) return;
        const n = this.store.unread(topic, read, this.me, from);
        if (n > 0) unread.set(key, n);
      };
      for (const room of this.state.rooms) count(`room:${room}`, `room:${room}`);
      for (const user of this.state.dms) count(`dm:${user}`, `user:${this.me}`, user);
      count(BROADCAST, BROADCAST);
      const before = this.state.unread;
      const same = before.size === unread.size && [...unread].every(([k, v]) => before.get(k) === v);
      if (!same) this.set({ unread });
    });
  }

  // --- sending --------------------------------------------------------------------------------

  send(c: Conversation, text: string): void {
    const topic = publishTopic(c);
    const id = randomId();
    const client = this.client;
    const payload = { text };
    this.store.addPending({ id, topic, from: this.me, payload, createdAt: Date.now() });
    this.waiting.add(id);
    this.lastTypingSent.delete(conversationKey(c));
    client.publish(topic, payload, { id }).then(
      (ok) => {
        this.waiting.delete(id);
        this.store.markSent(this.me, id, ok);
        if (c.kind === "dm") this.keepDmCopy({ id, topic, seq: ok.seq, from: this.me, ts: ok.ts, payload });
      },
      (err: unknown) => {
        this.waiting.delete(id);
        // A closed client (a replaced tab) keeps the publish in the stored outbox for the next one.
        if (client.state === "closed") return;
        this.store.markFailed(this.me, id, errorText(err));
      },
    );
  }

  private keepDmCopy(m: StoredMessage): void {
    const list = loadJson<StoredMessage[]>(this.key("dm-sent"), []);
    list.push(m);
    saveJson(this.key("dm-sent"), list.slice(-DM_SENT_CAP));
  }

  /** After a reload: what the outbox still holds shows as pending. */
  private reconcileOutbox(list: readonly PendingPublish[]): void {
    for (const p of list) {
      this.store.addPending({ id: p.id, topic: p.topic, from: this.me, payload: p.payload, createdAt: p.createdAt });
    }
    const pending = new Set(list.map((p) => p.id));
    for (const m of this.store.ownMessages((o) => o.status === "pending")) {
      if (pending.has(m.id) || this.waiting.has(m.id)) continue;
      this.store.markSentUnknown(this.me, m.id);
      if (m.topic.startsWith("user:") && m.topic !== `user:${this.me}`) {
        this.keepDmCopy({ id: m.id, topic: m.topic, seq: 0, from: this.me, ts: m.createdAt, payload: m.payload });
      }
    }
  }

  // --- presence and typing --------------------------------------------------------------------

  private setPresence(topic: string, users: readonly string[]): void {
    const presence = new Map(this.state.presence);
    presence.set(topic, users);
    this.set({ presence });
  }

  async refreshPresence(topic: string): Promise<void> {
    if (this.client.state !== "connected") return;
    try {
      const users = new Set(await this.client.presence(topic));
      if (topic === BROADCAST || this.subscribed.has(topic)) users.add(this.me);
      this.setPresence(topic, [...users].sort());
    } catch {
      // Not subscribed yet or offline: the next connect refreshes it.
    }
  }

  /** The composer changed: tell the others, at most every few seconds. */
  typing(c: Conversation): void {
    if (c.kind === "announcements" || this.client.state !== "connected") return;
    const key = conversationKey(c);
    const now = Date.now();
    if (now - (this.lastTypingSent.get(key) ?? 0) < TYPING_SEND_MS) return;
    this.lastTypingSent.set(key, now);
    try {
      this.client.signal(publishTopic(c), { typing: true });
    } catch {
      // Typing is best effort.
    }
  }

  private onSignal(topic: string, from: string, payload: unknown): void {
    if (from === this.me) return;
    const typing = typeof payload === "object" && payload !== null && (payload as { typing?: unknown }).typing;
    const key = topic === `user:${this.me}` ? `dm:${from}` : topic;
    if (typing !== true) {
      this.stopTyping(key, from);
      return;
    }
    const list = this.state.typing.get(key) ?? [];
    if (!list.includes(from)) this.setTyping(key, [...list, from]);
    const timerKey = `${key}\u0000${from}`;
    clearTimeout(this.typingTimers.get(timerKey));
    this.typingTimers.set(
      timerKey,
      setTimeout(() => this.stopTyping(key, from), TYPING_SHOW_MS),
    );
  }

  private stopTyping(key: string, from: string): void {
    const list = this.state.typing.get(key);
    if (!list?.includes(from)) return;
    this.setTyping(
      key,
      list.filter((u) => u !== from),
    );
  }

  private setTyping(key: string, users: readonly string[]): void {
    const typing = new Map(this.state.typing);
    typing.set(key, users);
    this.set({ typing });
  }

  /** Remembers the conversation for the next visit to `/`. */
  rememberLast(): void {
    const active = this.state.active;
    if (active) saveJson(this.key("last"), conversationPath(active));
  }
}

function view(state: string): ConnectionView {
  if (state === "connected") return navigator.onLine === false ? "offline" : "online";
  if (state === "connecting") return "connecting";
  return "offline";
}

function errorCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err && typeof err.code === "string"
    ? err.code
    : undefined;
}

function errorText(err: unknown): string {
  const code = errorCode(err);
  const message = err instanceof Error ? err.message : String(err);
  return code ? `${code}: ${message}` : message;
}
