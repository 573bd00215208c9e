/** The one table the bench prints: a row per figure, with ratios against named peers and goals. */

export interface Compare {
  /** The peer's system name in the same workload (and metric). */
  system: string;
  /** The goal its issue sets, as a ratio. */
  goal?: number;
  /** For latency and memory: the ratio must stay at or below the goal. */
  atMost?: boolean;
}

export interface Row {
  workload: string;
  system: string;
  /** undefined when skipped or failed: `note` says why. */
  figure: number | undefined;
  unit: string;
  /** Which row of a workload this is, when a workload has several metrics (p50, p99, ...). */
  metric?: string;
  compare?: Compare[];
  /** An absolute goal on the figure itself (W8: history p99 <= 5 ms). */
  limit?: { atMost: number };
  serverCpu?: number | undefined;
  loadCpu?: number | undefined;
  guarantee: string;
  note?: string;
  /** Filled in by addRatios. */
  ratio?: string;
  /** Goals met (true), missed (false) for this row; filled in by addRatios. */
  goals?: { text: string; met: boolean }[];
}

export const GUARANTEE = {
  fsync: "fsync before ack",
  pgCommit: "PostgreSQL COMMIT (synchronous_commit on) before ack",
  pageCache: "no fsync (OS page cache)",
  memory: "memory only",
  mosquitto: "no fsync before PUBACK",
  nats: "no fsync before PubAck",
  loop: "fsync per commit, no network",
} as const;

const key = (r: { workload: string; metric?: string | undefined }, system: string) =>
  `${r.workload}\u0000${r.metric ?? ""}\u0000${system}`;

export function addRatios(rows: Row[]): void {
  const index = new Map<string, Row>();
  for (const r of rows) if (r.figure !== undefined) index.set(key(r, r.system), r);
  for (const r of rows) {
    if (r.figure === undefined) continue;
    const parts: string[] = [];
    r.goals = [];
    if (r.limit) {
      const met = r.figure <= r.limit.atMost;
      parts.push(`goal <=${r.limit.atMost} ${r.unit} ${met ? "met" : "MISSED"}`);
      r.goals.push({
        text: `${r.workload}${r.metric ? ` ${r.metric}` : ""} ${r.system} <=${r.limit.atMost} ${r.unit}`,
        met,
      });
    }
    for (const c of r.compare ?? []) {
      const peer = index.get(key(r, c.system));
      if (!peer?.figure) {
        parts.push(`${c.system}: n/a`);
        continue;
      }
      const ratio = r.figure / peer.figure;
      let text = `${ratio.toFixed(2)}x ${c.system}`;
      if (c.goal !== undefined) {
        const met = c.atMost ? ratio <= c.goal : ratio >= c.goal;
        const goal = `${c.atMost ? "<=" : ">="}${c.goal}`;
        text += ` (${goal} ${met ? "met" : "MISSED"})`;
        r.goals.push({ text: `${r.workload}${r.metric ? ` ${r.metric}` : ""} ${r.system} ${goal} ${c.system}`, met });
      }
      parts.push(text);
    }
    r.ratio = parts.join("; ");
  }
}

function fmt(n: number | undefined, unit: string): string {
  if (n === undefined) return "-";
  if (unit === "ms") return n < 10 ? n.toFixed(2) : n.toFixed(1);
  if (unit === "KiB/conn") return n.toFixed(1);
  if (Math.abs(n) >= 100) return Math.round(n).toLocaleString("en-US");
  return n.toFixed(2);
}

const pct = (n: number | undefined) => (n === undefined ? "-" : `${Math.round(n)}%`);

export function renderTable(rows: Row[]): string {
  const header = [
    "workload",
    "system",
    "figure",
    "unit",
    "ratio vs peer",
    "server CPU",
    "load CPU",
    "guarantee",
    "note",
  ];
  const cells = rows.map((r) => [
    r.metric ? `${r.workload} ${r.metric}` : r.workload,
    r.system,
    r.figure === undefined ? "skipped" : fmt(r.figure, r.unit),
    r.unit,
    r.ratio ?? "",
    pct(r.serverCpu),
    pct(r.loadCpu),
    r.guarantee,
    r.note ?? "",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => `| ${c.map((x, i) => x.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...cells.map(line)].join("\n");
}
