/**
 * W3 fan-out: one room with 1000 subscribers (100 in quick mode) in two load processes, each
 * acking every `messages` batch, and one publisher with 100 publishes in flight. Figure:
 * deliveries per second over all subscribers.
 */
import { type BenchContext, type Load, measureSystem } from "./lib/context.js";
import {
  HERALD_PG3,
  herald,
  heraldPg,
  MIN_SQLITE,
  names,
  pubSpec,
  RAW,
  SIO_REDIS3,
  type System,
  subSpec,
  type Target,
} from "./lib/systems.js";
import type { Compare, Row } from "./lib/table.js";

const COMPARE: Record<string, Compare[]> = {
  "herald full": [
    { system: "raw socket.io", goal: 0.8 },
    { system: "minimal sqlite", goal: 1.0 },
  ],
  // Issue 17: fan-out on three nodes against socket.io's own three-node adapter, which stores nothing.
  "herald pg x3": [{ system: "socket.io redis-streams x3", goal: 1.0 }, { system: "herald pg full" }],
};

/** Issue 17: the server CPU per delivery on three nodes at most this many times one node's. */
const SCALE_GOAL = 1.3;

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
  const systems = ctx.full
    ? [herald("full"), RAW, MIN_SQLITE, heraldPg("full"), HERALD_PG3, SIO_REDIS3]
    : [herald("full"), RAW, MIN_SQLITE];
  for (const system of systems) {
    const compare = COMPARE[system.name];
    const { measured: _, ...row } = await measureSystem(ctx, system, (t) => w3Loads(ctx, system, t), {
      workload: "W3",
      unit: "deliveries/s",
      note: `${subscribersOf(ctx)} subscribers`,
      ...(compare ? { compare } : {}),
    });
    rows.push(row);
  }
  scaling(rows);
  return rows;
}

/** CPU per delivery, three nodes against one: fan-out should cost per node, not per Redis round trip. */
function scaling(rows: Row[]): void {
  const perDelivery = (r: Row | undefined) =>
    r?.figure && r.serverCpu !== undefined ? ((r.serverCpu / 100) * 1e6) / r.figure : undefined;
  const one = rows.find((r) => r.system === "herald pg full");
  const three = rows.find((r) => r.system === "herald pg x3");
  const a = perDelivery(one);
  const b = perDelivery(three);
  if (!three || a === undefined || b === undefined) return;
  const ratio = b / a;
  const verdict = ratio <= SCALE_GOAL ? "met" : "MISSED";
  three.note = `${three.note}; server CPU ${b.toFixed(2)} us per delivery against ${a.toFixed(2)} on one node: ${ratio.toFixed(2)}x (<=${SCALE_GOAL} ${verdict})`;
}
