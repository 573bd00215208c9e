/**
 * One measured window: start the load, let it warm up, then count what each load process did
 * between two snaps, with the CPU of the server processes (from /proc) and of the load processes
 * (their own process.cpuUsage) over the same window.
 */
import type { Agent } from "./agent.js";
import { procCpu } from "./proc.js";

export interface Window {
  /** Per agent, in the order given: what it counted per second over its window. */
  rates: number[];
  /** Per agent: what it counted in the window. */
  counts: number[];
  seconds: number;
  /** Server CPU in % of one core (200 % = both cores of this machine). */
  serverCpu: number | undefined;
  loadCpu: number;
  /** Per agent: what stop() reported. */
  finals: Record<string, unknown>[];
  /** What `probe` read at the start and the end of the window. */
  probes?: [string, string];
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function serverCpuSeconds(pids: number[]): number | undefined {
  let total = 0;
  for (const pid of pids) {
    const c = procCpu(pid);
    if (c === undefined) return undefined;
    total += c;
  }
  return pids.length > 0 ? total : undefined;
}

export async function runWindow(options: {
  agents: Agent[];
  serverPids: number[];
  warmupMs: number;
  durationMs: number;
  /** Read at the window's start and end, beside the agents' counts (the trace mode scrapes /metrics). */
  probe?: () => Promise<string>;
}): Promise<Window> {
  const { agents, serverPids } = options;
  await Promise.all(agents.map((a) => a.go()));
  await sleep(options.warmupMs);
  const s0 = serverCpuSeconds(serverPids);
  const t0 = performance.now();
  const [a, p0] = await Promise.all([Promise.all(agents.map((x) => x.mark())), options.probe?.()]);
  await sleep(options.durationMs);
  const [b, p1] = await Promise.all([Promise.all(agents.map((x) => x.snap())), options.probe?.()]);
  const s1 = serverCpuSeconds(serverPids);
  const seconds = (performance.now() - t0) / 1000;
  const finals = await Promise.all(agents.map((x) => x.stop()));
  const rates = agents.map((_, i) => (b[i]!.count - a[i]!.count) / ((b[i]!.at - a[i]!.at) / 1000));
  const counts = agents.map((_, i) => b[i]!.count - a[i]!.count);
  let loadUs = 0;
  for (let i = 0; i < agents.length; i++) loadUs += b[i]!.cpuUs - a[i]!.cpuUs;
  return {
    rates,
    counts,
    seconds,
    serverCpu: s0 !== undefined && s1 !== undefined ? ((s1 - s0) / seconds) * 100 : undefined,
    loadCpu: (loadUs / 1e6 / seconds) * 100,
    finals,
    ...(p0 !== undefined && p1 !== undefined ? { probes: [p0, p1] as [string, string] } : {}),
  };
}

export const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0);
