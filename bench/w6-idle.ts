/**
 * W6 idle connections: N connections (10k; 500 in quick mode) from two load processes, each
 * subscribed to one room, then idle. Figure: the server's resident memory growth per connection
 * (RSS after, less RSS before, settled; no forced GC, so it includes garbage not yet collected).
 */
import { type BenchContext, short } from "./lib/context.js";
import { sleep } from "./lib/measure.js";
import { procRss } from "./lib/proc.js";
import { herald, names, RAW, type System } from "./lib/systems.js";
import type { Row } from "./lib/table.js";

export async function w6(ctx: BenchContext): Promise<Row[]> {
  const total = ctx.full ? 10_000 : 500;
  const rows: Row[] = [];
  for (const system of [herald("full"), RAW]) rows.push(await idle(ctx, system, total));
  return rows;
}

async function idle(ctx: BenchContext, system: System, total: number): Promise<Row> {
  const base = {
    workload: "W6",
    system: system.name,
    unit: "KiB/conn",
    guarantee: system.guarantee,
    ...(system.name === "herald full" ? { compare: [{ system: "raw socket.io", goal: 1.2, atMost: true }] } : {}),
  };
  let target: Awaited<ReturnType<typeof system.start>>;
  try {
    target = await system.start();
  } catch (err) {
    return { ...base, figure: undefined, note: `failed to start: ${short(err)}` };
  }
  if (typeof target === "string") return { ...base, figure: undefined, note: `skipped: ${target}` };
  ctx.log(`W6 ${system.name} (${total} connections)`);
  const agents = ctx.agents.slice(0, 2);
  try {
    await sleep(ctx.full ? 1000 : 300);
    const pid = target.pids[0]!;
    const before = procRss(pid)!;
    const n = names(system.kind);
    const t0 = performance.now();
    await Promise.all(
      agents.map((a) =>
        a.setup("sio-sub", { url: target.url, ...n, sockets: total / agents.length, concurrency: 200 }, 180_000),
      ),
    );
    const connectSeconds = (performance.now() - t0) / 1000;
    await sleep(ctx.full ? 3000 : 1000);
    const after = procRss(pid)!;
    await Promise.all(agents.map((a) => a.stop()));
    return {
      ...base,
      figure: (after - before) / 1024 / total,
      note: `${total} subscribed conns, RSS ${Math.round(before / 2 ** 20)} -> ${Math.round(after / 2 ** 20)} MiB, connected in ${connectSeconds.toFixed(1)} s`,
    };
  } catch (err) {
    await Promise.all(agents.map((a) => a.stop().catch(() => {})));
    return { ...base, figure: undefined, note: `failed: ${short(err)}` };
  } finally {
    await target.stop();
  }
}
