/**
 * W9 request/reply: a caller's request goes through the server to a responder, on another
 * connection of another user, that answers with the request's params at once. Figures: round trips
 * per second with 100 in flight, and p50/p99 at a paced 1000 req/s, each request timed in the
 * caller's process from its send to its reply (HDR histogram). Beside Herald's `request`, the least
 * a socket.io relay can do (peers/sio-relay.ts: forward with an ack callback, relay the answer) and
 * core NATS request/reply; none of the three stores a request.
 */
import { type BenchContext, type Load, type Measurement, measureWindows, type Phase } from "./lib/context.js";
import { herald, NATS_CORE, names, requestSpecs, SIO_RELAY, type System, type Target } from "./lib/systems.js";
import { type Compare, GUARANTEE, type Row } from "./lib/table.js";
import type { LatencySummary, Pace } from "./load/role.js";

const INFLIGHT = 100;
const RATE = 1000;
const RELAY = SIO_RELAY.name;

const COMPARE: Record<string, Compare[]> = {
  rate: [
    { system: RELAY, goal: 0.8 },
    { system: NATS_CORE.name, goal: 1.0 },
  ],
  p50: [{ system: RELAY }],
  p99: [{ system: RELAY, goal: 1.5, atMost: true }],
};

/** The responder first, so that it is connected before the caller's first request. */
function loads(ctx: BenchContext, system: System, target: Target, pace: Pace): Load[] {
  const { caller, responder } = requestSpecs(system.kind, target.url, names(system.kind), pace);
  return [
    { agent: ctx.agents[1]!, spec: responder, counts: false },
    { agent: ctx.agents[0]!, spec: caller, counts: true },
  ];
}

export async function w9(ctx: BenchContext): Promise<Row[]> {
  // Quick mode's window as the others' (700 requests), to keep its run short; full mode's as W4's.
  const latencyMs = ctx.full ? 10000 : ctx.durationMs;
  // Bounded in count: the warm-up and the window, plus 2 s.
  const paced = { inflight: 0, rate: RATE, limit: Math.ceil((RATE * (ctx.warmupMs + latencyMs + 2000)) / 1000) };
  // Herald's durability does not touch requests; the row is the default server's.
  const systems = [{ ...herald("full"), guarantee: GUARANTEE.memory }, SIO_RELAY, NATS_CORE];
  const rates: Row[] = [];
  const latencies: Row[] = [];
  for (const system of systems) {
    const goals = system.name.startsWith("herald");
    const phases: Phase[] = [
      {
        build: (t) => loads(ctx, system, t, { inflight: INFLIGHT }),
        row: { workload: "W9", unit: "round trips/s", ...(goals ? { compare: COMPARE.rate! } : {}) },
      },
    ];
    // Quick mode keeps the peer that the latency goal names.
    if (ctx.full || system !== NATS_CORE) {
      phases.push({
        build: (t) => loads(ctx, system, t, paced),
        row: { workload: "W9", unit: "ms" },
        durationMs: latencyMs,
      });
    }
    const [rate, latency] = await measureWindows(ctx, system, phases);
    rates.push(rateRow(rate!));
    if (latency) latencies.push(...percentileRows(latency, goals));
  }
  return [...rates, ...latencies];
}

const callerLatency = (m: Measurement) => m.measured?.window.finals[1]?.latency as LatencySummary | undefined;

/** Nothing answered is a broken server or load, not a figure. */
const unanswered = (row: Row): Row => ({
  ...row,
  figure: undefined,
  note: `failed: no request answered; ${row.note ?? ""}`,
});

function rateRow(m: Measurement): Row {
  const lat = callerLatency(m);
  const { measured: _, ...row } = m;
  if (row.figure === undefined) return row;
  if (row.figure === 0 || !lat) return unanswered(row);
  const note = `${INFLIGHT} in flight, p50 ${lat.p50.toFixed(2)} ms, p99 ${lat.p99.toFixed(2)} ms`;
  return { ...row, note: row.note ? `${row.note}; ${note}` : note };
}

function percentileRows(m: Measurement, goals: boolean): Row[] {
  const lat = callerLatency(m);
  const { measured: _, ...row } = m;
  if (row.figure === undefined) return [{ ...row, metric: "p99" }];
  if (!lat || lat.n === 0) return [unanswered({ ...row, metric: "p99" })];
  const note = `${row.note ? `${row.note}; ` : ""}${RATE}/s, n=${lat.n}, max ${lat.max.toFixed(1)} ms`;
  return (
    [
      ["p50", lat.p50],
      ["p99", lat.p99],
    ] as const
  ).map(([metric, figure]) => ({ ...row, metric, figure, note, ...(goals ? { compare: COMPARE[metric]! } : {}) }));
}
