/**
 * NATS JetStream load roles: a stream with file storage, async publishes with a window of PubAcks
 * outstanding, and durable pull consumers with explicit acks (one ack per message).
 */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { binaryPayload, clock, LatencyPair, type Pace, Publisher, type Role, readStamp, Subscriber } from "./role.js";

interface NatsOptions {
  servers: string;
  stream: string;
  subject: string;
}

async function ensureStream(nc: NatsConnection, o: NatsOptions): Promise<void> {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(o.stream);
  } catch {
    await jsm.streams.add({ name: o.stream, subjects: [o.subject], storage: StorageType.File });
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
  private readonly closers: (() => void)[] = [];

  constructor(private readonly o: NatsOptions & { consumers: number; latency?: boolean }) {
    super();
  }

  async setup() {
    this.nc = await connect({ servers: this.o.servers, timeout: 5000 });
    await ensureStream(this.nc, this.o);
    const jsm = await jetstreamManager(this.nc);
    const js = jetstream(this.nc);
    for (let i = 0; i < this.o.consumers; i++) {
      const name = `${this.o.stream}-c${i}`;
      await jsm.consumers.add(this.o.stream, {
        durable_name: name,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.New,
      });
      const consumer = await js.consumers.get(this.o.stream, name);
      const messages = await consumer.consume({ max_messages: 1000 });
      this.closers.push(() => void messages.close());
      void (async () => {
        for await (const m of messages) {
          this.received++;
          if (this.o.latency) this.lat.record(clock() - readStamp(Buffer.from(m.data).toString("latin1", 0, 32)));
          m.ack();
        }
      })().catch(() => {});
    }
    return {};
  }

  async stop() {
    for (const c of this.closers) c();
    try {
      const jsm = await jetstreamManager(this.nc!);
      await jsm.streams.delete(this.o.stream);
    } catch {
      // already gone
    }
    await this.nc?.close();
    return { received: this.received, latency: this.o.latency ? this.lat.summary() : undefined };
  }
}

/** W4 over NATS JetStream. */
export function natsLatency(o: NatsOptions & { rate: number; limit: number }): Role {
  return new LatencyPair(
    new NatsSub({ ...o, consumers: 1, latency: true }),
    new NatsPub({ ...o, inflight: 0, stamp: true }),
  );
}
