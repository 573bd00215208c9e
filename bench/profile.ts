/**
 * `npm run bench -- --profile`: Herald `full` under the W1, W2, W3, W4 and W10 loads with `node --cpu-prof`
 * on the server process, then the top self-time functions and packages of each profile.
 * `--systems "herald pg full"` profiles Herald on PostgreSQL instead.
 */
import fs from "node:fs";
import path from "node:path";
import { type BenchContext, measureSystem } from "./lib/context.js";
import { ROOT } from "./lib/proc.js";
import { renderSummary, summarize } from "./lib/profile.js";
import { herald, heraldPg, type System, type Target } from "./lib/systems.js";
import { w1Loads } from "./w1-publish.js";
import { w2Loads } from "./w2-pubsub.js";
import { w3Loads } from "./w3-fanout.js";
import { W4_RATE, w4Loads } from "./w4-latency.js";
import { w10Loads } from "./w10-transactions.js";

export async function profile(ctx: BenchContext, durationMs: number, only?: string[]): Promise<string> {
  const out: string[] = [];
  const base = path.join(ROOT, "bench/results/profiles");
  for (const [name, loads] of [
    ["W1", w1Loads],
    ["W2", w2Loads],
    ["W3", w3Loads],
    ["W4", (c: BenchContext, s: System, t: Target) => w4Loads(c, s, t, durationMs)],
    ["W10", (c: BenchContext, s: System, t: Target) => w10Loads(c, s, t)],
  ] as const) {
    if (only && !only.includes(name)) continue;
    const dir = path.join(base, name);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    const system = ctx.systems?.includes("herald pg full") ? heraldPg("full") : herald("full");
    const row = await measureSystem(
      ctx,
      system,
      (t) => loads(ctx, system, t),
      { workload: name, unit: "msg/s" },
      {
        cpuProfDir: dir,
        durationMs,
      },
    );
    const file = fs.readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
    const figure =
      row.figure === undefined
        ? row.note
        : name === "W4"
          ? `${W4_RATE} msg/s at a fixed rate`
          : `${Math.round(row.figure).toLocaleString("en-US")} ${name === "W1" ? "acked msg/s" : name === "W10" ? "txn/s" : "deliveries/s"}`;
    if (!file) {
      out.push(`### ${name}: no profile written (${figure})`);
      continue;
    }
    out.push(
      renderSummary(
        `${name} ${system.name} under --cpu-prof: ${figure} (${path.relative(ROOT, path.join(dir, file))})`,
        summarize(path.join(dir, file)),
      ),
    );
  }
  return out.join("\n\n");
}
