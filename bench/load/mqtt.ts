/**
 * MQTT load roles (Mosquitto, aedes) with mqtt.js: QoS 1 publishes with a window of PUBACKs
 * outstanding, and subscribers with persistent sessions (clean: false) at QoS 1; mqtt.js sends
 * the PUBACK once the message handler has run.
 */
import mqtt, { type MqttClient } from "mqtt";
import { binaryPayload, clock, Latency, LatencyPair, type Role, readStamp, sleep } from "./role.js";

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

export class MqttPub implements Role {
  private clients: MqttClient[] = [];
  private acked = 0;
  private sent = 0;
  private errors = 0;
  private stopped = false;
  private pacer: NodeJS.Timeout | undefined;
  private readonly payload = binaryPayload();
  private readonly limit: number;

  constructor(
    private readonly o: {
      url: string;
      topic: string;
      sockets: number;
      inflight: number;
      rate?: number;
      limit?: number;
      stamp?: boolean;
      idPrefix: string;
    },
  ) {
    this.limit = o.limit ?? Number.POSITIVE_INFINITY;
  }

  async setup() {
    this.clients = await Promise.all(
      Array.from({ length: this.o.sockets }, (_, i) =>
        connectMqtt(this.o.url, `${this.o.idPrefix}-pub-${process.pid}-${i}`, true),
      ),
    );
    return {};
  }

  private send(c: MqttClient, windowed: boolean): void {
    if (this.stopped || this.sent >= this.limit) return;
    this.sent++;
    c.publish(this.o.topic, this.o.stamp ? binaryPayload(clock()) : this.payload, { qos: 1 }, (err) => {
      if (err) this.errors++;
      else this.acked++;
      if (windowed) this.send(c, true);
    });
  }

  go() {
    if (this.o.rate === undefined) {
      for (const c of this.clients) for (let i = 0; i < this.o.inflight; i++) this.send(c, true);
      return;
    }
    const rate = this.o.rate;
    const start = performance.now();
    let k = 0;
    this.pacer = setInterval(() => {
      const due = Math.floor(((performance.now() - start) * rate) / 1000) - this.sent;
      for (let i = 0; i < due && !this.stopped; i++) this.send(this.clients[k++ % this.clients.length]!, false);
    }, 1);
  }

  count() {
    return this.acked;
  }

  async stop() {
    this.stopped = true;
    if (this.pacer) clearInterval(this.pacer);
    const deadline = performance.now() + 3000;
    while (this.acked + this.errors < this.sent && performance.now() < deadline) await sleep(20);
    await Promise.all(this.clients.map((c) => end(c)));
    return { sent: this.sent, acked: this.acked, errors: this.errors };
  }
}

export class MqttSub implements Role {
  private clients: MqttClient[] = [];
  private received = 0;
  readonly lat = new Latency();

  constructor(
    private readonly o: { url: string; topic: string; sockets: number; idPrefix: string; latency?: boolean },
  ) {}

  private id(i: number): string {
    return `${this.o.idPrefix}-sub-${i}`;
  }

  async setup() {
    this.clients = await Promise.all(
      Array.from({ length: this.o.sockets }, async (_, i) => {
        const c = await connectMqtt(this.o.url, this.id(i), false);
        c.on("message", (_topic, payload) => {
          this.received++;
          if (this.o.latency) this.lat.record(clock() - readStamp(payload.toString("latin1", 0, 32)));
        });
        await new Promise<void>((resolve, reject) =>
          c.subscribe(this.o.topic, { qos: 1 }, (err) => (err ? reject(err) : resolve())),
        );
        return c;
      }),
    );
    return {};
  }

  go() {}
  count() {
    return this.received;
  }
  mark() {
    this.lat.reset();
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
    return { received: this.received, latency: this.o.latency ? this.lat.summary() : undefined };
  }
}

/** W4 over MQTT. */
export function mqttLatency(o: { url: string; topic: string; rate: number; limit: number; idPrefix: string }): Role {
  return new LatencyPair(
    new MqttSub({ url: o.url, topic: o.topic, sockets: 1, idPrefix: o.idPrefix, latency: true }),
    new MqttPub({ ...o, sockets: 1, inflight: 0, stamp: true }),
  );
}
