/**
 * MQTT load roles (Mosquitto, aedes) with mqtt.js: QoS 1 publishes with a window of PUBACKs
 * outstanding, and subscribers with persistent sessions (clean: false) at QoS 1, alone or sharing
 * one subscription (W7); mqtt.js sends the PUBACK once the message handler has run.
 */
import mqtt, { type MqttClient } from "mqtt";
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
} from "./role.js";

function connectMqtt(url: string, clientId: string, clean: boolean): Promise<MqttClient> {
  const client = mqtt.connect(url, { clientId, clean, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10000 });
  return new Promise((resolve, reject) => {
    client.once("connect", () => resolve(client));
    client.once("error", (err) => {
      client.end(true);
      reject(err);
    });
  });
}

/** Closes at once: whatever is still in flight is not waited for (the window is over). */
function end(client: MqttClient): Promise<void> {
  return new Promise((resolve) => client.end(true, {}, () => resolve()));
}

export class MqttPub extends Publisher<MqttClient> {
  private readonly payload = binaryPayload();

  constructor(
    private readonly o: Pace & {
      url: string;
      topic: string;
      sockets: number;
      stamp?: boolean;
      /** Write the publish's number (1, 2, ...) in front of the payload: W7 counts each message once. */
      numbered?: boolean;
      idPrefix: string;
    },
  ) {
    super(o);
  }

  async setup() {
    this.conns = await Promise.all(
      Array.from({ length: this.o.sockets }, (_, i) =>
        connectMqtt(this.o.url, `${this.o.idPrefix}-pub-${process.pid}-${i}`, true),
      ),
    );
    return {};
  }

  protected publish(c: MqttClient, n: number, answered: (error?: string) => void): void {
    const payload = this.o.stamp ? binaryPayload(clock()) : this.o.numbered ? binaryPayload(n + 1) : this.payload;
    c.publish(this.o.topic, payload, { qos: 1 }, (err) => answered(err ? String(err) : undefined));
  }

  protected async close() {
    await Promise.all(this.conns.map((c) => end(c)));
  }
}

export class MqttSub extends Subscriber {
  private clients: MqttClient[] = [];

  constructor(
    private readonly o: {
      url: string;
      topic: string;
      sockets: number;
      idPrefix: string;
      latency?: boolean;
      /** Share one subscription under this name (`$share/<name>/<topic>`): each message goes to one of them (W7). */
      share?: string;
      /** The publisher numbered the messages 1..total: count each once (W7). */
      total?: number;
    },
  ) {
    super();
    if (o.total !== undefined) this.processed = new Processed(o.total);
  }

  private id(i: number): string {
    return `${this.o.idPrefix}-sub-${i}`;
  }

  async setup() {
    this.clients = await Promise.all(
      Array.from({ length: this.o.sockets }, async (_, i) => {
        const c = await connectMqtt(this.o.url, this.id(i), false);
        c.on("message", (_topic, payload, packet) => {
          this.received++;
          if (this.o.latency) this.lat.record(clock() - readStamp(payload.toString("latin1", 0, 32)));
          this.processed?.add(readStamp(payload.toString("latin1", 0, 32)), packet.dup);
        });
        const filter = this.o.share ? `$share/${this.o.share}/${this.o.topic}` : this.o.topic;
        await new Promise<void>((resolve, reject) =>
          c.subscribe(filter, { qos: 1 }, (err) => (err ? reject(err) : resolve())),
        );
        return c;
      }),
    );
    return {};
  }

  async stop() {
    await Promise.all(this.clients.map((c) => end(c)));
    // Drop the persistent sessions so that nothing stays queued in the broker.
    await Promise.all(
      this.clients.map(async (_, i) => {
        try {
          await end(await connectMqtt(this.o.url, this.id(i), true));
        } catch {
          // the broker is gone; nothing to clean
        }
      }),
    );
    return {
      received: this.received,
      latency: this.o.latency ? this.lat.summary() : undefined,
      ...(this.processed ? { processed: this.processed.report() } : {}),
    };
  }
}

/** W4 over MQTT. */
export function mqttLatency(o: { url: string; topic: string; rate: number; limit: number; idPrefix: string }): Role {
  return new LatencyPair(
    new MqttSub({ url: o.url, topic: o.topic, sockets: 1, idPrefix: o.idPrefix, latency: true }),
    new MqttPub({ ...o, sockets: 1, inflight: 0, stamp: true }),
  );
}
