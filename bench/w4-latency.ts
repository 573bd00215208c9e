/**
 * W4 latency: one publisher at a fixed rate (5000 msg/s) and one durable subscriber in the same
 * load process (one clock), end to end from the publish call to the `messages` event, in an HDR
 * histogram. Figures: p50, p99, p99.9 in ms.
 */
import { type BenchContext, measureSystem } from "./lib/context.js";
import { herald, JETSTREAM, latencySpec, MOSQUITTO, names, RAW, type System, type Target } from "./lib/systems.js";
import type { Compare, Row } from "./lib/table.js";
import type { LatencySummary } from "./load/role.js";

export const W4_RATE = 5000;

const COMPARE: Record<string, Compare[]> = {
  p99: [
    { system: "raw socket.io", goal: 1.5, atMost: true },
    { system: "mosquitto", goal: 1.0, atMost: true },
  ],
  "p99.9": [{ system: "raw socket.io", goal: 2, atMost: true }],
};

/** The W4 load on a target: one process that publishes at W4_RATE and subscribes. Also used by the profile. */
export function w4Loads(ctx: BenchContext, system: System, target: Target, durationMs: number) {
  return [
    {
      agent: ctx.agents[0]!,
      spec: latencySpec(system.kind, target.url, names(system.kind), {
        rate: W4_RATE,
        limit: Math.ceil((W4_RATE * (durationMs + ctx.warmupMs + 2000)) / 1000),
      }),
      counts: true,
    },
  ];
}

export async function w4(ctx: BenchContext): Promise<Row[]> {
  const durationMs = ctx.full ? 10000 : 1000;
  const rows: Row[] = [];
  const systems = ctx.full ? [herald("full"), RAW, MOSQUITTO, JETSTREAM] : [herald("full"), RAW, MOSQUITTO];
  for (const system of systems) {
    const { measured, ...row } = await measureSystem(
      ctx,
      system,
      (t) => w4Loads(ctx, system, t, durationMs),
      { workload: "W4", unit: "ms" },
      { durationMs },
    );
    const lat = measured?.window.finals[0]?.latency as LatencySummary | undefined;
    if (!lat || lat.n === 0) {
      rows.push({ ...row, figure: undefined, note: row.note ?? "no messages received" });
      continue;
    }
    const note = `${W4_RATE}/s, n=${lat.n}, max ${lat.max.toFixed(1)} ms`;
    for (const [metric, figure] of [
      ["p50", lat.p50],
      ["p99", lat.p99],
      ["p99.9", lat.p999],
    ] as const) {
      const compare = system.name === "herald full" ? COMPARE[metric] : undefined;
      rows.push({ ...row, metric, figure, note, ...(compare ? { compare } : {}) });
    }
  }
  return rows;
}
