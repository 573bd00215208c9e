/**
 * The other nodes of a cluster, over Redis pub/sub: one channel every node hears, and one per node
 * for what is meant for it alone. Each node is a process instance (a restarted node is a new one)
 * that says it is alive once a second; one not heard for DEAD_MS is down, and what it held (its
 * users' presence, requests waiting on it) is let go. Nothing durable goes through here: the
 * fan-out's notices (redis-fanout.ts) are hints, and the rest (presence, signals, REPLACED, routed
 * requests: cluster.ts) is as live as the connections it is about.
 *
 * socket.io's Redis adapter carries broadcasts between servers too, but what Herald needs here is
 * node liveness (a dead node's presence must end), answers from one chosen node (a routed request
 * waits for its target's node, not for every server) and the fan-out's counters; the adapter's
 * `serverSideEmit` waits for every server and says nothing of one that died, so this is one
 * small module on ioredis instead.
 */
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { HeraldError, isErrorCode } from "../shared/errors.js";
import type { Logger } from "./log.js";

export interface PeersOptions {
  url: string;
  /** This node's name (HERALD_NODE_ID): a new instance of a name replaces the one before at once. */
  name: string;
  /** Channel names start with it, so that several clusters (or tests) can share one Redis. */
  prefix: string;
  log: Logger;
}

export const HEARTBEAT_MS = 1000;
/** A node not heard for this long is down. */
const DEAD_MS = 3500;

type Handler = (body: unknown, from: string) => unknown;

/** What goes on the channels: a type, its sender and body; `q` asks for an answer, `a` is one. */
interface Envelope {
  t: string;
  f: string;
  b?: unknown;
  q?: number;
  a?: number;
  e?: { code: string; message: string };
}

export class Peers {
  /** This process among the nodes. */
  readonly id = randomUUID();
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly all: string;
  private readonly handlers = new Map<string, Handler>();
  /** Other nodes, and when each was last heard (Date.now()). */
  private readonly nodes = new Map<string, number>();
  /** The instance last heard under each node name. */
  private readonly names = new Map<string, string>();
  private readonly asks = new Map<
    number,
    { node: string; timer: NodeJS.Timeout; resolve: (v: unknown) => void; reject: (e: unknown) => void }
  >();
  private nextAsk = 1;
  private readonly upListeners: ((node: string) => void)[] = [];
  private readonly downListeners: ((node: string) => void)[] = [];
  private readonly stateListeners: ((connected: boolean, again: boolean) => void)[] = [];
  private readonly beatParts: (() => Record<string, unknown>)[] = [];
  private readonly timer: NodeJS.Timeout;
  /** Redis was lost (or not there at start): the next connection is a reconnection. */
  private wasDown = false;
  private connected = false;
  private closed = false;

  constructor(private readonly options: PeersOptions) {
    this.all = `${options.prefix}:peers`;
    // A message while Redis is away fails at once instead of waiting in a queue: what it was
    // about is either live (lost with the connection) or found again from the store.
    this.pub = new Redis(options.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, lazyConnect: true });
    this.sub = new Redis(options.url, { lazyConnect: true, maxRetriesPerRequest: null });
    for (const [name, conn] of [
      ["publisher", this.pub],
      ["subscriber", this.sub],
    ] as const) {
      conn.on("error", (err: Error) => options.log.debug({ err }, `redis ${name}: ${err.message}`));
    }
    this.sub.on("message", (_channel: string, text: string) => this.receive(text));
    this.sub.on("ready", () => {
      const again = this.wasDown;
      this.wasDown = false;
      this.connected = true;
      if (again) options.log.warn("cluster: connected to Redis again");
      for (const l of this.stateListeners) l(true, again);
      this.beat();
    });
    this.sub.on("close", () => {
      if (this.closed || !this.connected) return;
      this.connected = false;
      this.wasDown = true;
      options.log.warn("cluster: lost Redis; the other nodes are out of reach until it is back");
      for (const l of this.stateListeners) l(false, true);
    });
    this.timer = setInterval(() => {
      this.beat();
      this.reap();
    }, HEARTBEAT_MS);
    this.timer.unref();
  }

  /** Connects, waiting at most `ms`: a node whose Redis is down starts anyway. */
  async start(ms = 2000): Promise<void> {
    const ready = Promise.all([
      this.pub.connect(),
      this.sub.connect().then(() => this.sub.subscribe(this.all, this.own(this.id))),
    ]);
    const timeout = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), ms).unref());
    const outcome = await Promise.race([
      ready.then(
        () => "ok" as const,
        () => "failed" as const,
      ),
      timeout,
    ]);
    if (outcome !== "ok") {
      this.options.log.warn(`cluster: Redis not reachable at start (${outcome}); going on without the other nodes`);
      ready.catch(() => {});
      if (!this.connected) {
        this.wasDown = true;
        for (const l of this.stateListeners) l(false, false);
      }
    }
  }

  get reachable(): boolean {
    return this.connected;
  }

  /** The other nodes heard within DEAD_MS. */
  alive(): string[] {
    return [...this.nodes.keys()];
  }

  on(type: string, handler: Handler): void {
    this.handlers.set(type, handler);
  }

  /** A new node is heard (or one heard again after it was down). */
  onUp(listener: (node: string) => void): void {
    this.upListeners.push(listener);
  }

  onDown(listener: (node: string) => void): void {
    this.downListeners.push(listener);
  }

  /** Redis reached (`again`: after it was lost) or lost. */
  onState(listener: (connected: boolean, again: boolean) => void): void {
    this.stateListeners.push(listener);
  }

  /** Fields every heartbeat carries (the fan-out's counter). */
  onBeat(part: () => Record<string, unknown>): void {
    this.beatParts.push(part);
  }

  broadcast(type: string, body?: unknown): void {
    this.publish(this.all, { t: type, f: this.id, b: body });
  }

  send(node: string, type: string, body?: unknown): void {
    this.publish(this.own(node), { t: type, f: this.id, b: body });
  }

  /**
   * Asks one node and waits for its handler's answer: rejects with the handler's HeraldError, with
   * UNAVAILABLE when the node goes down or cannot be reached, and with TIMEOUT after `ms`.
   */
  ask(node: string, type: string, body: unknown, ms: number): Promise<unknown> {
    if (!this.nodes.has(node) || !this.connected) {
      return Promise.reject(new HeraldError("UNAVAILABLE", "that node is out of reach"));
    }
    const q = this.nextAsk++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.asks.delete(q);
        reject(new HeraldError("TIMEOUT", `node ${node} did not answer within ${ms} ms`));
      }, ms);
      this.asks.set(q, { node, timer, resolve, reject });
      this.publish(this.own(node), { t: type, f: this.id, b: body, q });
    });
  }

  private own(node: string): string {
    return `${this.options.prefix}:peer:${node}`;
  }

  private publish(channel: string, envelope: Envelope): void {
    if (this.pub.status !== "ready") return;
    this.pub.publish(channel, JSON.stringify(envelope)).catch(() => {});
  }

  private beat(): void {
    const body: Record<string, unknown> = { n: this.options.name };
    for (const part of this.beatParts) Object.assign(body, part());
    this.broadcast("beat", body);
  }

  private receive(text: string): void {
    let env: Envelope;
    try {
      env = JSON.parse(text) as Envelope;
    } catch {
      return; // not ours
    }
    if (env.f === this.id || typeof env.t !== "string") return;
    const known = this.nodes.has(env.f);
    this.nodes.set(env.f, Date.now());
    if (!known) for (const l of this.upListeners) l(env.f);
    if (env.t === "answer") {
      const waiting = this.asks.get(env.a!);
      if (!waiting) return;
      this.asks.delete(env.a!);
      clearTimeout(waiting.timer);
      if (env.e) {
        waiting.reject(new HeraldError(isErrorCode(env.e.code) ? env.e.code : "INTERNAL", env.e.message));
      } else waiting.resolve(env.b);
      return;
    }
    if (env.t === "bye") {
      this.down(env.f);
      return;
    }
    if (env.t === "beat") {
      // A node restarted (killed, say) is a new instance under the same name: the old one is down
      // now, not DEAD_MS from now.
      const name = (env.b as { n?: unknown } | undefined)?.n;
      if (typeof name === "string") {
        const before = this.names.get(name);
        this.names.set(name, env.f);
        if (before !== undefined && before !== env.f) this.down(before);
      }
    }
    const handler = this.handlers.get(env.t);
    if (!handler) return;
    if (env.q === undefined) {
      handler(env.b, env.f);
      return;
    }
    const answer = (reply: Omit<Envelope, "t" | "f" | "a">) =>
      this.publish(this.own(env.f), { t: "answer", f: this.id, a: env.q!, ...reply });
    Promise.resolve()
      .then(() => handler(env.b, env.f))
      .then(
        (b) => answer(b === undefined ? {} : { b }),
        (err: unknown) =>
          answer({
            e:
              err instanceof HeraldError
                ? { code: err.code, message: err.message }
                : { code: "INTERNAL", message: "internal error" },
          }),
      );
  }

  private reap(): void {
    const now = Date.now();
    for (const [node, heard] of this.nodes) if (now - heard > DEAD_MS) this.down(node);
  }

  private down(node: string): void {
    if (!this.nodes.delete(node)) return;
    for (const [name, instance] of this.names) if (instance === node) this.names.delete(name);
    for (const [q, waiting] of this.asks) {
      if (waiting.node !== node) continue;
      this.asks.delete(q);
      clearTimeout(waiting.timer);
      waiting.reject(new HeraldError("UNAVAILABLE", "that node went down"));
    }
    for (const l of this.downListeners) l(node);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    // The others let go of what this node held at once, instead of after DEAD_MS.
    this.broadcast("bye");
    await this.pub.quit().catch(() => {});
    this.sub.disconnect();
  }
}
