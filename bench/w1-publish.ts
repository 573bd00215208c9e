/**
 * W1 durable publish: several publishers (2 load processes x 2 connections x 125 in flight = 500
 * publishes outstanding), each publish answered once the server has stored it as its guarantee
 * says. Figure: acked publishes per second. Limits beside it: a bare better-sqlite3 group-commit
 * insert loop of the same rows (no network), and raw socket.io with no storage.
 */
import { type BenchContext, measureInAgent, measureSystem } from "./lib/context.js";
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
  type Target,
} from "./lib/systems.js";
import { type Compare, GUARANTEE, type Row } from "./lib/table.js";

export const W1_SOCKETS = 2;
export const W1_INFLIGHT = 125;
const UNIT = "acked msg/s";

/** The W1 load on a target: two publisher processes. Also used by W8 and the profile. */
export function w1Loads(ctx: BenchContext, system: System, target: Target, ids?: "uuid4") {
  const n = names(system.kind);
  return ctx.agents.slice(0, 2).map((agent) => ({
    agent,
    spec: pubSpec(system.kind, target.url, n, { sockets: W1_SOCKETS, inflight: W1_INFLIGHT, ...(ids ? { ids } : {}) }),
    counts: true,
  }));
}

const COMPARE: Record<string, Compare[]> = {
  "herald full": [
    { system: "mosquitto", goal: 1.0 },
    { system: "minimal sqlite", goal: 0.95 },
  ],
  "herald normal": [{ system: "raw socket.io", goal: 0.8 }],
  "minimal sqlite": [{ system: "bare sqlite loop" }],
  // Issue 17: Herald on PostgreSQL against a writer with the same group commit and nothing else.
  "herald pg full": [{ system: "minimal pg", goal: 0.9 }],
  "herald pg x3": [{ system: "herald pg full" }],
};

export async function w1(ctx: BenchContext): Promise<Row[]> {
  const rows: Row[] = [];
  // Quick mode keeps the peers that W1's goals name.
  const systems = ctx.full
    ? [
        herald("full"),
        herald("normal"),
        MIN_SQLITE,
        RAW,
        MOSQUITTO,
        AEDES,
        JETSTREAM,
        heraldPg("full"),
        MIN_PG,
        HERALD_PG3,
      ]
    : [herald("full"), herald("normal"), MIN_SQLITE, RAW, MOSQUITTO, heraldPg("full"), MIN_PG];
  for (const system of systems) {
    const compare = COMPARE[system.name];
    const { measured: _, ...row } = await measureSystem(ctx, system, (t) => w1Loads(ctx, system, t), {
      workload: "W1",
      unit: UNIT,
      ...(compare ? { compare } : {}),
    });
    rows.push(row);
  }
  if (ctx.full) rows.push(await randomIds(ctx));
  rows.push(await bareLoop(ctx));
  return rows;
}

/**
 * Herald `full` again with random UUIDv4 publish ids instead of the SDK's time-ordered UUIDv7: the
 * dedup index then takes each id on a different page, so every commit writes a page per message.
 */
async function randomIds(ctx: BenchContext): Promise<Row> {
  const system = { ...herald("full"), name: "herald full (UUIDv4 ids)" };
  const { measured: _, ...row } = await measureSystem(ctx, system, (t) => w1Loads(ctx, system, t, "uuid4"), {
    workload: "W1",
    unit: UNIT,
    compare: [{ system: "herald full" }],
    note: "other rows: UUIDv7 ids",
  });
  return row;
}

/** The storage limit: 500 rows per transaction with synchronous=FULL, in one process, no network. */
async function bareLoop(ctx: BenchContext): Promise<Row> {
  const { row } = await measureInAgent(
    ctx,
    {
      workload: "W1",
      system: "bare sqlite loop",
      unit: "rows/s",
      guarantee: GUARANTEE.loop,
      note: "server CPU = the loop process; 500 rows/commit",
    },
    "sqlite-loop",
    { batch: W1_SOCKETS * W1_INFLIGHT * 2 },
  );
  return row;
}
