/**
 * `npm run bench -- --trace`: where a publish's time goes in Herald `full` under the W2 and W4
 * loads, read from the server's own latency histograms (server/latency.ts): `/metrics` is scraped
 * at the start and the end of the measured window and the difference gives each stage's
 * percentiles over the window alone. The same stages an operator sees in `/metrics`.
 */
import { histogramQuantile as quantile } from "../shared/metrics-text.js";
import { type BenchContext, measureSystem } from "./lib/context.js";
import { herald, type System, type Target } from "./lib/systems.js";
import { w2Loads } from "./w2-pubsub.js";
import { W4_RATE, w4Loads } from "./w4-latency.js";

/** The series traced, as `metric{label="value"}`, in the path's order. */
const SERIES: [string, string][] = [
  ["wait: received → commit start", 'herald_publish_stage_seconds{stage="wait"'],
  ["commit: the SQL transaction", 'herald_publish_stage_seconds{stage="commit"'],
  ["sync: fdatasync", 'herald_publish_stage_seconds{stage="sync"'],
  ["reply: durable → reply to socket.io", 'herald_publish_stage_seconds{stage="reply"'],
  ["received → durable", "herald_publish_durable_seconds{"],
  ["durable → delivered (live)", 'herald_durable_delivered_seconds{path="live"'],
];

const QUANTILES = [0.5, 0.99, 0.999];
const ms = (s: number | undefined) => (s === undefined ? "-" : (s * 1000).toFixed(s < 0.001 ? 3 : 2));

export async function trace(ctx: BenchContext, durationMs: number): Promise<string> {
  const system = herald("full");
  const scrape = async (t: Target) => (await fetch(`${t.url}/metrics`)).text();
  const columns: { name: string; probes?: [string, string]; figure: string }[] = [];
  for (const [name, loads] of [
    ["W2", w2Loads],
    ["W4", (c: BenchContext, s: System, t: Target) => w4Loads(c, s, t, durationMs)],
  ] as const) {
    const row = await measureSystem(
      ctx,
      system,
      (t) => loads(ctx, system, t),
      { workload: name, unit: "deliveries/s" },
      { durationMs, probe: scrape },
    );
    const figure =
      name === "W4"
        ? `${W4_RATE} msg/s to 10 subscribers`
        : `${Math.round(row.figure ?? 0).toLocaleString("en-US")} deliveries/s`;
    columns.push({ name, figure, ...(row.measured?.window.probes ? { probes: row.measured.window.probes } : {}) });
  }
  const lines = [
    `### Where a publish's time goes: Herald full, ms (${columns.map((c) => `${c.name}: ${c.figure}`).join("; ")})`,
    "",
    `| stage | ${columns.map((c) => QUANTILES.map((q) => `${c.name} p${q * 100}`).join(" | ")).join(" | ")} |`,
    `| --- | ${columns.map(() => QUANTILES.map(() => "---").join(" | ")).join(" | ")} |`,
  ];
  for (const [label, series] of SERIES) {
    const cells = columns.flatMap((c) =>
      QUANTILES.map((q) => (c.probes ? ms(quantile(c.probes[0], c.probes[1], series, q)) : "-")),
    );
    lines.push(`| ${label} | ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}
