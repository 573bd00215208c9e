/**
 * Load roles that speak Herald's wire protocol with a plain socket.io-client (PROTOCOL.md): the
 * same code drives Herald, the raw socket.io peer and the minimal SQLite peer, which answer the
 * subset used here (`publish` with a reply, `subscribe`, `messages` arrays, cumulative `ack`,
 * `history`; consumer groups are Herald's only). WebSocket transport only.
 */
import { randomUUID } from "node:crypto";
import { io, type Socket } from "socket.io-client";
import { randomId } from "../../shared/client/index.js";
import {
  clock,
  jsonPayload,
  Latency,
  LatencyPair,
  type Pace,
  Processed,
  Publisher,
  type Role,
  readStamp,
  Subscriber,
  sleep,
  whileAsked,
} from "./role.js";

interface Msg {
  topic: string;
  seq: number;
  payload: unknown;
  group?: string;
  attempt?: number;
}
type Reply = { ok: boolean; error?: { code: string; message: string } };

let nextId = 0;

const failure = (r: Reply) => (r.ok ? undefined : `${r.error?.code}: ${r.error?.message}`);

/**
 * Connects to `url`, or, for the nodes of a cluster given comma-separated, to the one that the
 * connection's number picks: connections spread evenly over the nodes.
 */
export function connectSio(url: string, clientId?: string, user = "bench", n = nextId): Promise<Socket> {
  const urls = url.split(",");
  const socket = io(urls[n % urls.length]!, {
    auth: { clientId: clientId ?? `b${process.pid}x${nextId++}`, user },
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
    timeout: 20000,
  });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => {
      socket.close();
      reject(err);
    });
  });
}

function call<T extends Reply>(socket: Socket, event: string, args: unknown, timeoutMs = 20000): Promise<T> {
  return socket
    .timeout(timeoutMs)
    .emitWithAck(event, args)
    .then((r: T) => {
      if (!r.ok) throw new Error(`${event}: ${r.error?.code} ${r.error?.message}`);
      return r;
    });
}

export interface PubOptions extends Pace {
  url: string;
  topic: string;
  /** Connections in this process. */
  sockets: number;
  /** Put the send time in the payload. */
  stamp?: boolean;
  /** Publish ids: time-ordered UUIDv7 as the SDK makes them (default), or random UUIDv4. */
  ids?: "uuid7" | "uuid4";
  /** W10: each publish a transaction instead, `prepare` then `commit` of a fresh id, counted at the commit's reply. */
  txn?: boolean;
}

/** Publishers: each connection keeps `inflight` publishes waiting for their reply. */
export class SioPub extends Publisher<Socket> {
  private readonly payload = jsonPayload();
  private readonly newId: () => string;

  constructor(private readonly o: PubOptions) {
    super(o);
    this.newId = o.ids === "uuid4" ? randomUUID : randomId;
  }

  async setup() {
    this.conns = await Promise.all(Array.from({ length: this.o.sockets }, () => connectSio(this.o.url)));
    return {};
  }

  protected publish(socket: Socket, _n: number, answered: (error?: string) => void): void {
    const message = {
      id: this.newId(),
      topic: this.o.topic,
      payload: this.o.stamp ? jsonPayload(clock()) : this.payload,
    };
    if (!this.o.txn) {
      socket.emit("publish", message, (r: Reply) => answered(failure(r)));
      return;
    }
    socket.emit("prepare", message, (p: Reply) => {
      if (!p.ok) return answered(`prepare: ${failure(p)}`);
      socket.emit("commit", { id: message.id }, (c: Reply) => answered(c.ok ? undefined : `commit: ${failure(c)}`));
    });
  }

  protected async close() {
    for (const s of this.conns) s.close();
  }
}

export interface SubOptions {
  url: string;
  topic: string;
  sockets: number;
  /** Durable identities to resume (W5); else fresh ones. */
  clientIds?: string[];
  /** Record end-to-end latency from the payload's stamp. */
  latency?: boolean;
  /** Subscribe at the head (default true); "go": only once the load starts (W7's members). */
  subscribe?: boolean | "go";
  /** Connections opened at once during setup. */
  concurrency?: number;
  /** Join this consumer group of the topic instead (W7): one ack with `seqs` per batch. */
  group?: string;
  /** The group's messages are seqs 1..total: count each once (W7). */
  total?: number;
}

/**
 * Durable subscribers that ack each `messages` batch (cumulative: its last seq per topic), or the
 * members of a consumer group, which ack each batch's messages with one `seqs`.
 */
export class SioSub extends Subscriber {
  private socks: Socket[] = [];
  private gaps = 0;
  private joinError: string | undefined;

  constructor(private readonly o: SubOptions) {
    super();
    if (o.total !== undefined) this.processed = new Processed(o.total);
  }

  private subscribeArgs() {
    return this.o.group ? { topic: this.o.topic, group: this.o.group } : { topic: this.o.topic };
  }

  async setup() {
    const n = this.o.sockets;
    const conc = this.o.concurrency ?? 100;
    for (let i = 0; i < n; i += conc) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(conc, n - i) }, async (_, j) => {
          const s = await connectSio(this.o.url, this.o.clientIds?.[i + j], "bench", i + j);
          this.attach(s);
          if ((this.o.subscribe ?? true) === true) await call(s, "subscribe", this.subscribeArgs());
          return s;
        }),
      );
      this.socks.push(...batch);
    }
    return {};
  }

  override go() {
    if (this.o.subscribe !== "go") return;
    for (const s of this.socks) {
      call(s, "subscribe", this.subscribeArgs()).catch((err: unknown) => {
        this.joinError ??= err instanceof Error ? err.message : String(err);
      });
    }
  }

  private attach(s: Socket): void {
    s.on("messages", (batch: Msg[]) => {
      this.received += batch.length;
      if (this.o.group) {
        this.ackEach(s, batch);
        return;
      }
      if (this.o.latency) {
        const now = clock();
        for (const m of batch) this.lat.record(now - readStamp(m.payload as string));
      }
      const last = batch[batch.length - 1]!;
      let single = true;
      for (const m of batch) if (m.topic !== last.topic) single = false;
      if (single) s.emit("ack", { topic: last.topic, seq: last.seq });
      else {
        const tops = new Map<string, number>();
        for (const m of batch) tops.set(m.topic, Math.max(tops.get(m.topic) ?? 0, m.seq));
        for (const [topic, seq] of tops) s.emit("ack", { topic, seq });
      }
    });
    s.on("gap", () => {
      this.gaps++;
    });
  }

  /**
   * PROTOCOL: Groups: a member acks messages, not cumulatively, here the group's of one batch in one
   * `ack` with `seqs` (as the SDK sends what its handlers finish in one turn); one-way, as a plain
   * subscriber's ack is. A batch may mix topics and groups: anything else is acked in its own stream.
   */
  private ackEach(s: Socket, batch: Msg[]): void {
    const seqs: number[] = [];
    for (const m of batch) {
      if (m.group === this.o.group && m.topic === this.o.topic) {
        this.processed?.add(m.seq, (m.attempt ?? 1) > 1);
        seqs.push(m.seq);
      } else {
        s.emit(
          "ack",
          m.group === undefined ? { topic: m.topic, seq: m.seq } : { topic: m.topic, seq: m.seq, group: m.group },
        );
      }
    }
    // PROTOCOL: at most 1024 seqs an ack; a batch holds at most HERALD_MAX_INFLIGHT messages.
    for (let i = 0; i < seqs.length; i += 1024) {
      s.emit("ack", { topic: this.o.topic, seqs: seqs.slice(i, i + 1024), group: this.o.group });
    }
  }

  async stop() {
    for (const s of this.socks) s.close();
    return {
      received: this.received,
      gaps: this.gaps,
      latency: this.o.latency ? this.lat.summary() : undefined,
      ...(this.joinError ? { firstError: this.joinError } : {}),
      ...(this.processed ? { processed: this.processed.report() } : {}),
    };
  }
}

/** W4 over socket.io (Herald and the socket.io peers). */
export function sioLatency(o: { url: string; topic: string; rate: number; limit: number }): Role {
  return new LatencyPair(
    new SioSub({ url: o.url, topic: o.topic, sockets: 1, latency: true }),
    new SioPub({ url: o.url, topic: o.topic, sockets: 1, inflight: 0, rate: o.rate, limit: o.limit, stamp: true }),
  );
}

/** W8: `history` calls, one at a time, timed. */
export class SioHistory implements Role {
  private socket: Socket | undefined;
  private calls = 0;
  private stopped = false;
  private readonly lat = new Latency();

  constructor(private readonly o: { url: string; topic: string; intervalMs: number }) {}

  async setup() {
    this.socket = await connectSio(this.o.url);
    return {};
  }

  go() {
    const loop = async () => {
      while (!this.stopped) {
        const t = performance.now();
        try {
          await call(this.socket!, "history", { topic: this.o.topic, limit: 50 });
          this.lat.record(performance.now() - t);
          this.calls++;
        } catch {
          // counted as missing calls
        }
        await sleep(this.o.intervalMs);
      }
    };
    void loop();
  }

  count() {
    return this.calls;
  }

  mark() {
    this.lat.reset();
  }

  async stop() {
    this.stopped = true;
    this.socket?.close();
    return { calls: this.calls, latency: this.lat.summary() };
  }
}

/**
 * W9's caller: `request` to user `to`, answered through the server by that user's responder, with
 * a window of requests per connection or a fixed rate, each timed until its reply.
 */
export class SioRequester extends Publisher<Socket> {
  private readonly params = jsonPayload();

  constructor(private readonly o: Pace & { url: string; to: string; sockets: number }) {
    super({ ...o, timed: true });
  }

  async setup() {
    this.conns = await Promise.all(Array.from({ length: this.o.sockets }, () => connectSio(this.o.url)));
    return {};
  }

  protected publish(socket: Socket, _n: number, answered: (error?: string) => void): void {
    socket.emit("request", { to: this.o.to, method: "echo", params: this.params }, (r: Reply) => answered(failure(r)));
  }

  protected async close() {
    for (const s of this.conns) s.close();
  }
}

/** W9's responder: one connection of user `user` that answers every `request` with its params at once. */
export class SioResponder implements Role {
  private socket: Socket | undefined;
  private answered = 0;

  constructor(private readonly o: { url: string; user: string }) {}

  async setup() {
    this.socket = await connectSio(this.o.url, undefined, this.o.user);
    this.socket.on("request", (req: { params?: unknown }, cb: (answer: unknown) => void) => {
      this.answered++;
      cb({ result: req.params });
    });
    return {};
  }

  go() {}

  count() {
    return this.answered;
  }

  async stop() {
    await whileAsked(() => this.answered);
    this.socket?.close();
    return { answered: this.answered };
  }
}
