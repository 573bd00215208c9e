/**
 * W3 fan-out: one room with 1000 subscribers (100 in quick mode) in two load processes, each
 * acking every `messages` batch, and one publisher with 100 publishes in flight. Figure:
 * deliveries per second over all subscribers.
 */
import { type BenchContext, type Load, measureSystem } from "./lib/context.js";
import { herald, MIN_SQLITE, names, pubSpec, RAW, type System, subSpec, type Target } from "./lib/systems.js";
import type { Compare, Row } from "./lib/table.js";

const COMPARE: Record<string, Compare[]> = {
  "herald full": [
    { system: "raw socket.io", goal: 0.8 },
    { system: "minimal sqlite", goal: 1.0 },
  ],
};

/** Subscribers in the room: 1000, or 100 in quick mode. */
const subscribersOf = (ctx: BenchContext) => (ctx.full ? 1000 : 100);

/** The W3 load: the subscribers split over two load processes, the publisher in the third. */
export function w3Loads(ctx: BenchContext, system: System, target: Target): Load[] {
  const n = names(system.kind);
  const half = subscribersOf(ctx) / 2;
  return [
    { agent: ctx.agents[1]!, spec: subSpec(system.kind, target.url, n, { sockets: half }), counts: true },
    { agent: ctx.agents[2]!, spec: subSpec(system.kind, target.url, n, { sockets: half }), counts: true },
    { agent: ctx.agents[0]!, spec: pubSpec(system.kind, target.url, n, { sockets: 1, inflight: 100 }), counts: false },
  ];
}

export async function w3(ctx: BenchContext): Promise<Row[]> {
  const rows: Row[] = [];
  for (const system of [herald("full"), RAW, MIN_SQLITE]) {
    const compare = COMPARE[system.name];
    const { measured: _, ...row } = await measureSystem(ctx, system, (t) => w3Loads(ctx, system, t), {
      workload: "W3",
      unit: "deliveries/s",
      note: `${subscribersOf(ctx)} subscribers`,
      ...(compare ? { compare } : {}),
    });
    rows.push(row);
  }
  return rows;
}
