/**
 * W10 transactional publish: W1's load on Herald `full` (500 in flight: 2 load processes x 2
 * connections x 125) with each publish a transaction instead: `prepare` of a fresh id, then its
 * `commit` once the prepare is answered, counted when the commit is answered ok. Figure: committed
 * transactions per second, against Herald's own W1 `full` figure of this run (W1's row when W1
 * ran, else the same W1 window measured here).
 */
import { type BenchContext, measureSystem } from "./lib/context.js";
import { herald, type System, type Target } from "./lib/systems.js";
import type { Row } from "./lib/table.js";
import { w1Loads } from "./w1-publish.js";

const BASELINE = "herald full, publish";

export async function w10(ctx: BenchContext): Promise<Row[]> {
  const system = herald("full");
  const rows: Row[] = [];
  const w1Full = ctx.rows.find((r) => r.workload === "W1" && r.system === "herald full" && r.figure !== undefined);
  if (w1Full) {
    const { compare: _c, goals: _g, ratio: _r, ...copy } = w1Full;
    rows.push({ ...copy, workload: "W10", system: BASELINE, note: "W1's figure of this run" });
  } else {
    const { measured: _, ...row } = await measureSystem(
      ctx,
      { ...system, name: BASELINE },
      (t) => w1Loads(ctx, system, t),
      { workload: "W10", unit: "acked msg/s", note: "W1's load, measured here (W1 did not run)" },
    );
    rows.push(row);
  }
  const { measured: _, ...row } = await measureSystem(ctx, system, (t) => w10Loads(ctx, system, t), {
    workload: "W10",
    unit: "txn/s",
    compare: [{ system: BASELINE, goal: 0.45 }],
    note: "500 in flight, each a prepare then its commit",
  });
  rows.push(row);
  return rows;
}

/** W1's load with each publish a transaction. */
export function w10Loads(ctx: BenchContext, system: System, target: Target) {
  return w1Loads(ctx, system, target).map((l) => ({ ...l, spec: { ...l.spec, opts: { ...l.spec.opts, txn: true } } }));
}
