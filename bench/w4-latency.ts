/**
 * W4 latency: one publisher at a fixed rate (5000 msg/s) and one durable subscriber in the same
 * load process (one clock), end to end from the publish call to the `messages` event, in an HDR
 * histogram. Figures: p50, p99, p99.9 in ms. Beside Herald `full`, its store alone at the same rate
 * (the floor that fdatasync-before-answer sets on this disk) and Herald `normal` (no fsync), which
 * together say how much of the tail is the disk and how much the server.
 */
import { type BenchContext, measureInAgent, measureSystem } from "./lib/context.js";
import { herald, JETSTREAM, latencySpec, MOSQUITTO, names, RAW, type System, type Target } from "./lib/systems.js";
import { type Compare, GUARANTEE, type Row } from "./lib/table.js";
import type { LatencySummary } from "./load/role.js";

export const W4_RATE = 5000;

const COMPARE: Record<string, Compare[]> = {
  p99: [
    { system: "raw socket.io", goal: 1.5, atMost: true },
    { system: "mosquitto", goal: 1.0, atMost: true },
  ],
  "p99.9": [{ system: "raw socket.io", goal: 2, atMost: true }],
};

/** The W4 pace: W4_RATE, bounded in count to the warm-up and window plus 2 s. */
const pace = (ctx: BenchContext, durationMs: number) => ({
  rate: W4_RATE,
  limit: Math.ceil((W4_RATE * (durationMs + ctx.warmupMs + 2000)) / 1000),
});

/** The W4 load on a target: one process that publishes at W4_RATE and subscribes. Also used by the profile. */
export function w4Loads(ctx: BenchContext, system: System, target: Target, durationMs: number) {
  return [
    {
      agent: ctx.agents[0]!,
      spec: latencySpec(system.kind, target.url, names(system.kind), pace(ctx, durationMs)),
      counts: true,
    },
  ];
}

export async function w4(ctx: BenchContext): Promise<Row[]> {
  const durationMs = ctx.full ? 10000 : 1000;
  const rows: Row[] = [];
  const systems = ctx.full
    ? [herald("full"), herald("normal"), RAW, MOSQUITTO, JETSTREAM]
    : [herald("full"), RAW, MOSQUITTO];
  for (const system of systems) {
    const { measured, ...row } = await measureSystem(
      ctx,
      system,
      (t) => w4Loads(ctx, system, t, durationMs),
      { workload: "W4", unit: "ms" },
      { durationMs },
    );
    const lat = measured?.window.finals[0]?.latency as LatencySummary | undefined;
    rows.push(...percentileRows(row, lat, system.name === "herald full"));
    if (system.name === "herald full") rows.push(...(await storeFloor(ctx, durationMs)));
  }
  return rows;
}

/** A system's p50, p99 and p99.9 rows (with the goals for Herald's). */
function percentileRows(row: Row, lat: LatencySummary | undefined, goals: boolean): Row[] {
  if (!lat || lat.n === 0) return [{ ...row, figure: undefined, note: row.note ?? "no messages received" }];
  const note = `${row.note ? `${row.note}; ` : ""}${W4_RATE}/s, n=${lat.n}, max ${lat.max.toFixed(1)} ms`;
  return (
    [
      ["p50", lat.p50],
      ["p99", lat.p99],
      ["p99.9", lat.p999],
    ] as const
  ).map(([metric, figure]) => {
    const compare = goals ? COMPARE[metric] : undefined;
    return { ...row, metric, figure, note, ...(compare ? { compare } : {}) };
  });
}

/**
 * The floor under Herald's figures: its store alone at the same rate, in one process with no
 * network, each append timed until it is answered after the fdatasync.
 */
async function storeFloor(ctx: BenchContext, durationMs: number): Promise<Row[]> {
  const { row, window } = await measureInAgent(
    ctx,
    { workload: "W4", system: "herald store alone", unit: "ms", guarantee: GUARANTEE.loop, note: "no network" },
    "store-latency",
    { inflight: 0, ...pace(ctx, durationMs) },
    durationMs,
  );
  if (!window) return [row];
  return percentileRows(row, window.finals[0]?.latency as LatencySummary | undefined, false);
}
