/**
 * W2 durable pub->sub end to end: one publisher (500 publishes in flight) and ten durable
 * subscribers that ack (Herald and the socket.io peers: one cumulative ack per `messages` batch;
 * MQTT: QoS 1 persistent sessions, a PUBACK per message; JetStream: durable consumers, an
 * explicit ack per message). Figure: deliveries per second received by the ten subscribers.
 */
import { type BenchContext, measureSystem } from "./lib/context.js";
import {
  AEDES,
  HERALD_PG3,
  herald,
  heraldPg,
  JETSTREAM,
  MIN_PG,
  MIN_SQLITE,
  MOSQUITTO,
  names,
  pubSpec,
  RAW,
  type System,
  subSpec,
  type Target,
} from "./lib/systems.js";
import type { Compare, Row } from "./lib/table.js";

export const W2_SUBSCRIBERS = 10;

export function w2Loads(ctx: BenchContext, system: System, target: Target) {
  const n = names(system.kind);
  return [
    { agent: ctx.agents[1]!, spec: subSpec(system.kind, target.url, n, { sockets: W2_SUBSCRIBERS }), counts: true },
    { agent: ctx.agents[0]!, spec: pubSpec(system.kind, target.url, n, { sockets: 1, inflight: 500 }), counts: false },
  ];
}

const COMPARE: Record<string, Compare[]> = {
  "herald full": [
    { system: "mosquitto", goal: 2.5 },
    { system: "aedes", goal: 2.5 },
    { system: "nats jetstream", goal: 2.5 },
    { system: "minimal sqlite", goal: 0.9 },
    { system: "raw socket.io" },
  ],
  "herald pg full": [{ system: "minimal pg" }],
  "herald pg x3": [{ system: "herald pg full" }],
};

export async function w2(ctx: BenchContext): Promise<Row[]> {
  const rows: Row[] = [];
  // Quick mode keeps the peers that W2's goals name (raw socket.io, the ceiling, only in full).
  const systems = ctx.full
    ? [herald("full"), MIN_SQLITE, RAW, MOSQUITTO, AEDES, JETSTREAM, heraldPg("full"), MIN_PG, HERALD_PG3]
    : [herald("full"), MIN_SQLITE, MOSQUITTO, AEDES, JETSTREAM];
  for (const system of systems) {
    const compare = COMPARE[system.name];
    const { measured, ...row } = await measureSystem(ctx, system, (t) => w2Loads(ctx, system, t), {
      workload: "W2",
      unit: "deliveries/s",
      ...(compare ? { compare } : {}),
    });
    if (measured) {
      const pub = measured.window.rates[1]!;
      const expected = pub * W2_SUBSCRIBERS;
      row.note = [row.note, `publish ${Math.round(pub).toLocaleString("en-US")}/s`]
        .concat(
          measured.figure < expected * 0.9
            ? [`subscribers behind: got ${Math.round((measured.figure / expected) * 100)}% of 10 x publishes`]
            : [],
        )
        .filter(Boolean)
        .join("; ");
    }
    rows.push(row);
  }
  return rows;
}
