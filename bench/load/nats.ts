/**
 * NATS JetStream load roles: a stream with file storage, async publishes with a window of PubAcks
 * outstanding, and durable pull consumers with explicit acks (one ack per message): one consumer
 * per subscriber, or (W7) one consumer of a work-queue stream shared by every client. And W9's
 * core NATS request/reply, which no stream takes part in.
 */
import {
  AckPolicy,
  type Consumer,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import {
  binaryPayload,
  clock,
  LatencyPair,
  type Pace,
  Processed,
  Publisher,
  type Role,
  readStamp,
  Subscriber,
  whileAsked,
} from "./role.js";

interface NatsOptions {
  servers: string;
  stream: string;
  subject: string;
  /** WorkQueue retention: a message is kept until a consumer acks it, then removed (W7). */
  workQueue?: boolean;
}

/** Pulled per request, as in W2; W7's shared consumer may have this many outstanding per client. */
const PULL = 1000;

async function ensureStream(nc: NatsConnection, o: NatsOptions): Promise<void> {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(o.stream);
  } catch {
    await jsm.streams.add({
      name: o.stream,
      subjects: [o.subject],
      storage: StorageType.File,
      ...(o.workQueue ? { retention: RetentionPolicy.Workqueue } : {}),
    });
  }
}

export class NatsPub extends Publisher<NatsConnection> {
  private readonly payload = binaryPayload();

  constructor(private readonly o: NatsOptions & Pace & { stamp?: boolean }) {
    super(o);
  }

  async setup() {
    const nc = await connect({ servers: this.o.servers, timeout: 5000 });
    await ensureStream(nc, this.o);
    this.conns = [nc];
    return {};
  }

  protected publish(nc: NatsConnection, _n: number, answered: (error?: string) => void): void {
    jetstream(nc)
      .publish(this.o.subject, this.o.stamp ? binaryPayload(clock()) : this.payload)
      .then(
        () => answered(),
        (err: unknown) => answered(String(err)),
      );
  }

  protected async close() {
    await this.conns[0]?.close();
  }
}

export class NatsSub extends Subscriber {
  private nc: NatsConnection | undefined;
  /** W7's clients, each on its own connection, pulling from the one shared consumer. */
  private readonly workers: { nc: NatsConnection; consumer: Consumer }[] = [];
  private readonly closers: (() => void)[] = [];

  constructor(
    private readonly o: NatsOptions & {
      /** Durable consumers (W2, W4); with workQueue: clients of one shared durable consumer (W7). */
      consumers: number;
      latency?: boolean;
      /** The stream's messages are seqs 1..total: count each once (W7). */
      total?: number;
    },
  ) {
    super();
    if (o.total !== undefined) this.processed = new Processed(o.total);
  }

  async setup() {
    this.nc = await connect({ servers: this.o.servers, timeout: 5000 });
    await ensureStream(this.nc, this.o);
    const jsm = await jetstreamManager(this.nc);
    if (this.o.workQueue) {
      // The consumer exists from setup, so what is published before go() waits for it.
      const name = `${this.o.stream}-group`;
      await jsm.consumers.add(this.o.stream, {
        durable_name: name,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        // The default (1000) would be a window for all the clients together; Herald's is per member.
        max_ack_pending: PULL * this.o.consumers,
      });
      for (let i = 0; i < this.o.consumers; i++) {
        const nc = await connect({ servers: this.o.servers, timeout: 5000 });
        this.workers.push({ nc, consumer: await jetstream(nc).consumers.get(this.o.stream, name) });
      }
      return {};
    }
    const js = jetstream(this.nc);
    for (let i = 0; i < this.o.consumers; i++) {
      const name = `${this.o.stream}-c${i}`;
      await jsm.consumers.add(this.o.stream, {
        durable_name: name,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.New,
      });
      await this.consume(await js.consumers.get(this.o.stream, name));
    }
    return {};
  }

  /** W7's clients start pulling only now: the drain is timed from here. */
  override go() {
    for (const w of this.workers) void this.consume(w.consumer);
  }

  /**
   * A callback, not the async iterator: the iterator's promise per message made W7's drain three
   * times slower (9-12k against 33-61k msg/s for 20k messages, in one process).
   */
  private async consume(consumer: Consumer): Promise<void> {
    const messages = await consumer.consume({
      max_messages: PULL,
      callback: (m) => {
        this.received++;
        if (this.o.latency) this.lat.record(clock() - readStamp(Buffer.from(m.data).toString("latin1", 0, 32)));
        this.processed?.add(m.seq, m.redelivered);
        m.ack();
      },
    });
    this.closers.push(() => void messages.close());
  }

  async stop() {
    for (const c of this.closers) c();
    await Promise.all(this.workers.map((w) => w.nc.close()));
    try {
      const jsm = await jetstreamManager(this.nc!);
      await jsm.streams.delete(this.o.stream);
    } catch {
      // already gone
    }
    await this.nc?.close();
    return {
      received: this.received,
      latency: this.o.latency ? this.lat.summary() : undefined,
      ...(this.processed ? { processed: this.processed.report() } : {}),
    };
  }
}

/** W4 over NATS JetStream. */
export function natsLatency(o: NatsOptions & { rate: number; limit: number }): Role {
  return new LatencyPair(
    new NatsSub({ ...o, consumers: 1, latency: true }),
    new NatsPub({ ...o, inflight: 0, stamp: true }),
  );
}

/** W9's caller: core NATS `request` on `subject`, each reply timed. */
export class NatsRequester extends Publisher<NatsConnection> {
  private readonly params = binaryPayload();

  constructor(private readonly o: Pace & { servers: string; subject: string }) {
    super({ ...o, timed: true });
  }

  async setup() {
    this.conns = [await connect({ servers: this.o.servers, timeout: 5000 })];
    return {};
  }

  protected publish(nc: NatsConnection, _n: number, answered: (error?: string) => void): void {
    nc.request(this.o.subject, this.params, { timeout: 10000 }).then(
      () => answered(),
      (err: unknown) => answered(String(err)),
    );
  }

  protected async close() {
    await this.conns[0]?.close();
  }
}

/** W9's responder: a subscription to `subject` that answers each request with its data at once. */
export class NatsResponder implements Role {
  private nc: NatsConnection | undefined;
  private answered = 0;

  constructor(private readonly o: { servers: string; subject: string }) {}

  async setup() {
    this.nc = await connect({ servers: this.o.servers, timeout: 5000 });
    this.nc.subscribe(this.o.subject, {
      callback: (err, msg) => {
        if (err) return;
        this.answered++;
        msg.respond(msg.data);
      },
    });
    // The subscription is on the server once its flush returns, before the first request.
    await this.nc.flush();
    return {};
  }

  go() {}

  count() {
    return this.answered;
  }

  async stop() {
    await whileAsked(() => this.answered);
    await this.nc?.close();
    return { answered: this.answered };
  }
}
