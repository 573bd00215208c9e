/**
 * W3 fan-out: one room with 1000 subscribers (100 in quick mode) in two load processes, each
 * acking every `messages` batch, and one publisher with 100 publishes in flight. Figure:
 * deliveries per second over all subscribers.
 */
import { type BenchContext, measureSystem } from "./lib/context.js";
import { herald, MIN_SQLITE, names, pubSpec, RAW, subSpec } from "./lib/systems.js";
import type { Compare, Row } from "./lib/table.js";

const COMPARE: Record<string, Compare[]> = {
  "herald full": [
    { system: "raw socket.io", goal: 0.8 },
    { system: "minimal sqlite", goal: 1.0 },
  ],
};

export async function w3(ctx: BenchContext): Promise<Row[]> {
  const subscribers = ctx.full ? 1000 : 100;
  const rows: Row[] = [];
  for (const system of [herald("full"), RAW, MIN_SQLITE]) {
    const compare = COMPARE[system.name];
    const { measured: _, ...row } = await measureSystem(
      ctx,
      system,
      (t) => {
        const n = names(system.kind);
        const half = subscribers / 2;
        return [
          { agent: ctx.agents[1]!, spec: subSpec(system.kind, t.url, n, { sockets: half }), counts: true },
          { agent: ctx.agents[2]!, spec: subSpec(system.kind, t.url, n, { sockets: half }), counts: true },
          { agent: ctx.agents[0]!, spec: pubSpec(system.kind, t.url, n, { sockets: 1, inflight: 100 }), counts: false },
        ];
      },
      { workload: "W3", unit: "deliveries/s", note: `${subscribers} subscribers`, ...(compare ? { compare } : {}) },
    );
    rows.push(row);
  }
  return rows;
}
