/**
 * W5 catch-up: a durable subscriber is offline while N messages arrive (100k; 10k in quick mode);
 * figure: its drain rate after it reconnects, against the live rate (the same N published while
 * a subscriber is online, from the first publish to the last delivery).
 */
import { randomUUID } from "node:crypto";
import type { Agent } from "./lib/agent.js";
import { type BenchContext, short } from "./lib/context.js";
import { serverCpuSeconds } from "./lib/measure.js";
import { herald, names } from "./lib/systems.js";
import type { Row } from "./lib/table.js";

const clock = () => performance.timeOrigin + performance.now();

export async function w5(ctx: BenchContext): Promise<Row[]> {
  const n = ctx.full ? 100_000 : 10_000;
  const system = herald("full");
  const base = { workload: "W5", unit: "msg/s", guarantee: system.guarantee };
  const [pubAgent, subAgent] = ctx.agents as [Agent, Agent];
  let target: Awaited<ReturnType<typeof system.start>>;
  try {
    target = await system.start();
  } catch (err) {
    return [{ ...base, system: system.name, figure: undefined, note: `failed to start: ${short(err)}` }];
  }
  if (typeof target === "string") return [];
  const t = target;
  const timeoutMs = ctx.full ? 120_000 : 30_000;
  const phase = async (run: () => Promise<number>) => {
    const c0 = serverCpuSeconds(t.pids);
    const l0 = process.hrtime.bigint();
    const seconds = await run();
    const wall = Number(process.hrtime.bigint() - l0) / 1e9;
    const c1 = serverCpuSeconds(t.pids);
    return {
      rate: n / seconds,
      serverCpu: c0 !== undefined && c1 !== undefined ? ((c1 - c0) / wall) * 100 : undefined,
    };
  };
  const rows: Row[] = [];
  try {
    ctx.log(`W5 herald full live (${n})`);
    const live = names("sio");
    await subAgent.setup("sio-sub", { url: t.url, ...live, sockets: 1 });
    await pubAgent.setup("sio-pub", { url: t.url, ...live, sockets: 1, inflight: 500, limit: n });
    const liveResult = await phase(async () => {
      const t0 = clock();
      await pubAgent.go();
      const done = await subAgent.waitCount(n, timeoutMs);
      if (done.count < n) throw new Error(`live: got ${done.count} of ${n} in time`);
      return (done.at - t0) / 1000;
    });
    await Promise.all([pubAgent.stop(), subAgent.stop()]);
    rows.push({
      ...base,
      system: "herald full, live",
      figure: liveResult.rate,
      serverCpu: liveResult.serverCpu,
      note: `${n} msgs, 1 subscriber online`,
    });

    ctx.log(`W5 herald full catch-up (${n})`);
    const later = names("sio");
    const clientId = `catchup-${randomUUID()}`;
    await subAgent.setup("sio-sub", { url: t.url, ...later, sockets: 1, clientIds: [clientId] });
    await subAgent.stop(); // offline, its durable subscription at the head
    await pubAgent.setup("sio-pub", { url: t.url, ...later, sockets: 1, inflight: 500, limit: n });
    await pubAgent.go();
    const published = await pubAgent.waitCount(n, timeoutMs);
    await pubAgent.stop();
    if (published.count < n) throw new Error(`catch-up: published ${published.count} of ${n} in time`);
    const drain = await phase(async () => {
      const t0 = clock();
      // Reconnecting resumes the durable subscription by itself; no subscribe is sent.
      await subAgent.setup("sio-sub", { url: t.url, ...later, sockets: 1, clientIds: [clientId], subscribe: false });
      const done = await subAgent.waitCount(n, timeoutMs);
      if (done.count < n) throw new Error(`catch-up: got ${done.count} of ${n} in time`);
      return (done.at - t0) / 1000;
    });
    await subAgent.stop();
    rows.push({
      ...base,
      system: "herald full, catch-up",
      figure: drain.rate,
      serverCpu: drain.serverCpu,
      note: `${n} msgs drained after reconnect`,
      compare: [{ system: "herald full, live", goal: 2 }],
    });
  } catch (err) {
    await Promise.all([pubAgent.stop().catch(() => {}), subAgent.stop().catch(() => {})]);
    rows.push({ ...base, system: system.name, figure: undefined, note: `failed: ${short(err)}` });
  } finally {
    await t.stop();
  }
  return rows;
}
