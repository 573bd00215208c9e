/**
 * W8 slow disk: W1 on Herald `full` with every fsync/fdatasync made to take 5 ms (strace fault
 * injection around the server), while another client times `history` calls (one every 5 ms): the
 * event loop must never wait on the disk. The same load on the fast disk, in the same run, is
 * the baseline (quick mode: W1's `herald full` figure of this run, when W1 ran). Skipped with a
 * note when strace is missing or not permitted.
 */
import { execFileSync } from "node:child_process";
import { type BenchContext, measureSystem } from "./lib/context.js";
import { hasCommand } from "./lib/proc.js";
import { herald } from "./lib/systems.js";
import { GUARANTEE, type Row } from "./lib/table.js";
import type { LatencySummary } from "./load/role.js";
import { w1Loads } from "./w1-publish.js";

const DELAY_US = 5000;

function straceWorks(): string | undefined {
  if (!hasCommand("strace")) return "strace is not installed (apt-get install -y strace)";
  try {
    execFileSync("strace", ["--seccomp-bpf", "-f", "-o", "/dev/null", "-e", "trace=fdatasync", "true"], {
      stdio: "ignore",
    });
    return undefined;
  } catch {
    return "strace cannot trace here (ptrace not permitted?)";
  }
}

export async function w8(ctx: BenchContext): Promise<Row[]> {
  const why = straceWorks();
  if (why) {
    return [
      {
        workload: "W8",
        system: "herald full",
        figure: undefined,
        unit: "",
        guarantee: GUARANTEE.fsync,
        note: `skipped: ${why}`,
      },
    ];
  }
  const rows: Row[] = [];
  const w1Full = ctx.rows.find((r) => r.workload === "W1" && r.system === "herald full" && r.figure !== undefined);
  const baseline = ctx.full || !w1Full ? "herald full, fast disk" : "herald full";
  if (w1Full && baseline === "herald full") {
    const { compare: _c, goals: _g, ratio: _r, ...copy } = w1Full;
    rows.push({ ...copy, workload: "W8", metric: "publish", note: "W1's figure of this run" });
  }
  for (const slow of baseline === "herald full" ? [true] : [false, true]) {
    const system = herald("full");
    const label = slow ? `herald full, fsync +${DELAY_US / 1000} ms` : "herald full, fast disk";
    const { measured, ...row } = await measureSystem(
      ctx,
      { ...system, name: label },
      (t) => {
        const loads = w1Loads(ctx, system, t);
        const topic = (loads[0]!.spec.opts as { topic: string }).topic;
        return [
          ...loads,
          {
            agent: ctx.agents[2]!,
            spec: { role: "sio-history", opts: { url: t.url, topic, intervalMs: 5 } },
            counts: false,
          },
        ];
      },
      {
        workload: "W8",
        metric: "publish",
        unit: "acked msg/s",
        ...(slow ? { compare: [{ system: baseline, goal: 0.7 }] } : {}),
      },
      slow ? { fsyncDelayUs: DELAY_US } : {},
    );
    rows.push(row);
    const lat = measured?.window.finals[2]?.latency as LatencySummary | undefined;
    if (lat && lat.n > 0) {
      rows.push({
        workload: "W8",
        metric: "history p99",
        system: label,
        figure: lat.p99,
        unit: "ms",
        guarantee: row.guarantee,
        // Issue 16: under the slow disk at most twice its fast-disk figure.
        ...(slow ? { compare: [{ system: "herald full, fast disk", goal: 2, atMost: true }] } : {}),
        note: `${lat.n} calls during the load; p50 ${lat.p50.toFixed(2)}, max ${lat.max.toFixed(1)} ms`,
      });
    }
  }
  return rows;
}
