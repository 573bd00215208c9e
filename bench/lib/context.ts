/** What every workload gets from run.ts, and the loop they share: start a system, load it, measure. */
import type { Agent } from "./agent.js";
import { runWindow, sum, type Window } from "./measure.js";
import type { LoadSpec, System, Target } from "./systems.js";
import type { Row } from "./table.js";

export interface BenchContext {
  full: boolean;
  /** Load processes, reused across systems (each setup replaces the role). */
  agents: Agent[];
  /** Every row so far, for workloads that compare with an earlier figure (W8 with W1). */
  rows: Row[];
  warmupMs: number;
  durationMs: number;
  /** `--systems`: measure only these (by name); the rest are left out of the table. */
  systems?: string[];
  /** Progress, to stderr. */
  log(message: string): void;
}

export interface Load {
  agent: Agent;
  spec: LoadSpec;
  /** Whether this load's count is the figure (publishers in W1, subscribers in W2). */
  counts: boolean;
}

export interface Measured {
  target: Target;
  window: Window;
  figure: number;
}

/** The note of a system that `--systems` left out; such rows are not shown. */
export const LEFT_OUT = "left out by --systems";

export const short = (err: unknown) => (err instanceof Error ? err.message : String(err)).split("\n")[0]!.slice(0, 120);

/** Loads are set up in order (subscribers first, so they are there before the first publish). */
export async function setupLoads(loads: Load[]): Promise<void> {
  for (const l of loads) await l.agent.setup(l.spec.role, l.spec.opts);
}

/** One window on a started system: its loads and the row its figure goes in. */
export interface Phase {
  build: (target: Target) => Load[];
  row: Omit<Row, "figure" | "system" | "guarantee">;
  durationMs?: number;
  /** Read at the window's start and end (Window.probes). */
  probe?: (target: Target) => Promise<string>;
}

export type Measurement = Row & { measured?: Measured };

/**
 * Starts `system`, sets up its loads, measures one window, stops everything. Returns the row, or
 * a skipped row with the reason.
 */
export async function measureSystem(
  ctx: BenchContext,
  system: System,
  build: (target: Target) => Load[],
  row: Phase["row"],
  options: {
    cpuProfDir?: string;
    fsyncDelayUs?: number;
    durationMs?: number;
    alongside?: Load[];
    probe?: (target: Target) => Promise<string>;
  } = {},
): Promise<Measurement> {
  const phase: Phase = {
    build,
    row,
    ...(options.durationMs !== undefined ? { durationMs: options.durationMs } : {}),
    ...(options.probe ? { probe: options.probe } : {}),
  };
  const [measured] = await measureWindows(ctx, system, [phase], options);
  return measured!;
}

/**
 * measureSystem for several windows in turn on one start of `system` (W9: a rate, then a latency),
 * each with its own loads: a row per phase. A server start costs as much as a quick window.
 */
export async function measureWindows(
  ctx: BenchContext,
  system: System,
  phases: Phase[],
  options: { cpuProfDir?: string; fsyncDelayUs?: number } = {},
): Promise<Measurement[]> {
  const bases = phases.map((p) => ({ ...p.row, system: system.name, guarantee: system.guarantee }));
  const none = (note: string) => bases.map((base) => ({ ...base, figure: undefined, note }));
  if (ctx.systems && !ctx.systems.includes(system.name)) return none(LEFT_OUT);
  let target: Target | string;
  try {
    target = await system.start(options);
  } catch (err) {
    return none(`failed to start: ${short(err)}`);
  }
  if (typeof target === "string") return none(`skipped: ${target}`);
  try {
    const rows: Measurement[] = [];
    for (const [i, phase] of phases.entries()) rows.push(await measureWindow(ctx, target, phase, bases[i]!));
    return rows;
  } finally {
    await target.stop();
  }
}

async function measureWindow(
  ctx: BenchContext,
  target: Target,
  phase: Phase,
  base: Omit<Row, "figure">,
): Promise<Measurement> {
  ctx.log(`${base.workload} ${base.system}`);
  try {
    const loads = phase.build(target);
    await setupLoads(loads);
    const window = await runWindow({
      agents: loads.map((l) => l.agent),
      serverPids: target.pids,
      warmupMs: ctx.warmupMs,
      durationMs: phase.durationMs ?? ctx.durationMs,
      ...(phase.probe ? { probe: () => phase.probe!(target) } : {}),
    });
    const figure = sum(window.rates.filter((_, i) => loads[i]!.counts));
    const errors = window.finals.map((f) => f.firstError).filter(Boolean);
    return {
      ...base,
      figure,
      serverCpu: window.serverCpu,
      loadCpu: window.loadCpu,
      ...(errors.length > 0 ? { note: `errors: ${String(errors[0]).slice(0, 80)}` } : {}),
      measured: { target, window, figure },
    };
  } catch (err) {
    // Leave the load processes clean for the next system.
    await Promise.all(ctx.agents.map((a) => a.stop().catch(() => {})));
    return { ...base, figure: undefined, note: `failed: ${short(err)}` };
  }
}

/**
 * A system that runs inside a load process (the bare SQLite loop, the store alone): sets up
 * `role` on the first agent and measures one window with that process as the server. A failure
 * becomes a row with the reason.
 */
export async function measureInAgent(
  ctx: BenchContext,
  row: Omit<Row, "figure">,
  role: string,
  opts: Record<string, unknown>,
  durationMs = ctx.durationMs,
): Promise<{ row: Row; window?: Window }> {
  const agent = ctx.agents[0]!;
  ctx.log(`${row.workload} ${row.system}`);
  try {
    await agent.setup(role, opts);
    const window = await runWindow({ agents: [agent], serverPids: [agent.pid], warmupMs: ctx.warmupMs, durationMs });
    return { row: { ...row, figure: window.rates[0], serverCpu: window.serverCpu }, window };
  } catch (err) {
    await agent.stop().catch(() => {});
    return { row: { ...row, figure: undefined, note: `failed: ${short(err)}` } };
  }
}
