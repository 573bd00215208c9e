/**
 * W7 groups: ten competing members of one group drain N messages (100k; 10k in quick mode) that
 * were published while none of them was connected, each message acked (Herald's members ack each
 * delivered batch with one `ack` carrying `seqs`; the peers ack each message). Herald: a
 * consumer group (PROTOCOL.md, Groups); NATS JetStream: a work-queue stream with one durable pull
 * consumer shared by the ten clients; Mosquitto: one shared subscription (`$share/w7/<topic>`) of
 * ten persistent QoS 1 sessions. Figure: distinct messages processed per second, from the moment
 * the members start until the last new one came. Every message is checked to have been processed,
 * and redeliveries are counted.
 *
 * Mosquitto 2.0 queues messages for offline shared-subscription sessions, but at most
 * `max_queued_messages` per session (1000 by default, as in the running service) and drops the
 * rest without a word: ten sessions can hold 10k. So its row is a live drain: the ten members
 * attached, one publisher at full speed, timed from the first publish to the last delivery.
 */
import type { Agent, Snap } from "./lib/agent.js";
import { type BenchContext, LEFT_OUT, short } from "./lib/context.js";
import { serverCpuSeconds, sleep, sum } from "./lib/measure.js";
import { herald, JETSTREAM, MOSQUITTO, names, pubSpec, type System, subSpec, type Target } from "./lib/systems.js";
import type { Row } from "./lib/table.js";
import { clock, type ProcessedReport } from "./load/role.js";

const MEMBERS = 10;
const GROUP = "w7";
/** A drain that makes no progress for this long has stalled: it is reported, not waited for. */
const IDLE_MS = 5000;

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

export async function w7(ctx: BenchContext): Promise<Row[]> {
  const total = ctx.full ? 100_000 : 10_000;
  const rows: Row[] = [];
  for (const system of [herald("full"), JETSTREAM, MOSQUITTO]) rows.push(await drain(ctx, system, total));
  return rows;
}

async function drain(ctx: BenchContext, system: System, total: number): Promise<Row> {
  const base = {
    workload: "W7",
    system: system.name,
    unit: "msg/s",
    guarantee: system.guarantee,
    ...(system.name === "herald full"
      ? {
          compare: [
            { system: "nats jetstream", goal: 1.5 },
            { system: "mosquitto", goal: 1.0 },
          ],
        }
      : {}),
  };
  if (ctx.systems && !ctx.systems.includes(system.name)) return { ...base, figure: undefined, note: LEFT_OUT };
  let target: Target | string;
  try {
    target = await system.start();
  } catch (err) {
    return { ...base, figure: undefined, note: `failed to start: ${short(err)}` };
  }
  if (typeof target === "string") return { ...base, figure: undefined, note: `skipped: ${target}` };
  ctx.log(`W7 ${system.name} (${total})`);
  const live = system.kind === "mqtt";
  // The members share the two load processes that the publisher does not use.
  const [pubAgent, ...memberAgents] = ctx.agents as [Agent, Agent, Agent];
  const timeoutMs = ctx.full ? 120_000 : 30_000;
  const n = names(system.kind);
  const url = target.url;
  try {
    if (system.kind === "sio") {
      // PROTOCOL: Groups: the first member's subscribe creates the group at the head; that member
      // leaves, its membership stays, and with no live member what is published next waits.
      await pubAgent.setup("sio-sub", { url, ...n, sockets: 1, group: GROUP });
      await pubAgent.stop();
    }
    const perAgent = MEMBERS / memberAgents.length;
    for (const [i, agent] of memberAgents.entries()) {
      const spec = subSpec(system.kind, url, n, { sockets: perAgent, idOffset: i, group: GROUP, total });
      await agent.setup(spec.role, spec.opts);
    }
    const pub = pubSpec(system.kind, url, n, { sockets: 1, inflight: 500, limit: total, numbered: true });
    await pubAgent.setup(pub.role, pub.opts);
    let published = "";
    if (!live) {
      const p0 = clock();
      await pubAgent.go();
      const done = await pubAgent.waitCount(total, timeoutMs);
      await pubAgent.stop();
      if (done.count < total) throw new Error(`published ${done.count} of ${total} in time`);
      published = `published first at ${fmt(total / ((done.at - p0) / 1000))}/s`;
    }
    // Live (Mosquitto), the publisher's CPU counts with the members'.
    const timed = live ? [pubAgent, ...memberAgents] : memberAgents;
    const c0 = serverCpuSeconds(target.pids);
    const w0 = performance.now();
    const before = await Promise.all(timed.map((a) => a.snap()));
    const t0 = clock();
    await Promise.all(timed.map((a) => a.go()));
    await waitDrained(memberAgents, total, timeoutMs);
    const after = await Promise.all(timed.map((a) => a.snap()));
    const c1 = serverCpuSeconds(target.pids);
    const wall = (performance.now() - w0) / 1000;
    const finals = await Promise.all(timed.map((a) => a.stop()));
    const pubFinal = live ? finals.shift() : undefined;
    const merged = merge(
      finals.map((f) => f.processed as ProcessedReport),
      total,
    );
    const seconds = (merged.lastAt - t0) / 1000;
    if (pubFinal) {
      const acked = Number(pubFinal.acked);
      published = `live: ${fmt(acked)} published at ${fmt(acked / seconds)}/s while the members drained`;
    }
    const errors = [pubFinal, ...finals].map((f) => f?.firstError).filter(Boolean);
    const note = [
      `${MEMBERS} members in ${memberAgents.length} load processes`,
      merged.distinct === total ? `all ${total} processed` : `MISSING ${total - merged.distinct} of ${total}`,
      `${merged.redelivered} redelivered (${merged.flagged} marked as redeliveries)`,
      published,
      ...(errors.length > 0 ? [`errors: ${String(errors[0]).slice(0, 80)}`] : []),
    ]
      .filter(Boolean)
      .join("; ");
    // A Herald drain that stops short is a broken server, not a figure; a peer's losses are its figure.
    const failed = merged.distinct === 0 || (merged.distinct < total && system.kind === "sio");
    let loadUs = 0;
    for (let i = 0; i < timed.length; i++) loadUs += after[i]!.cpuUs - before[i]!.cpuUs;
    return {
      ...base,
      figure: failed ? undefined : merged.distinct / seconds,
      serverCpu: c0 !== undefined && c1 !== undefined ? ((c1 - c0) / wall) * 100 : undefined,
      loadCpu: (loadUs / 1e6 / wall) * 100,
      note: failed ? `failed: ${note}` : note,
    };
  } catch (err) {
    // Leave the load processes clean for the next system.
    await Promise.all(ctx.agents.map((a) => a.stop().catch(() => {})));
    return { ...base, figure: undefined, note: `failed: ${short(err)}` };
  } finally {
    await target.stop();
  }
}

/**
 * Polls the members' counts until they processed `total` distinct messages, made no progress for
 * IDLE_MS, or the time is up. The drain's end is not this poll's time but the last new message's
 * (each load process reports it at stop).
 */
async function waitDrained(members: Agent[], total: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last = -1;
  let since = performance.now();
  for (;;) {
    const snaps: Snap[] = await Promise.all(members.map((a) => a.snap()));
    const done = sum(snaps.map((s) => s.count));
    const now = performance.now();
    if (done >= total || now > deadline) return;
    if (done !== last) {
      last = done;
      since = now;
    } else if (now - since > IDLE_MS) return;
    await sleep(10);
  }
}

/**
 * What the load processes processed together: a message counts once however many deliveries it
 * took (also in two processes); every delivery beyond its first is a redelivery.
 */
function merge(reports: ProcessedReport[], total: number) {
  const seen = new Uint8Array(total + 1);
  let deliveries = 0;
  let flagged = 0;
  let lastAt = 0;
  for (const r of reports) {
    const bytes = Buffer.from(r.seen, "base64");
    for (let i = 1; i <= total; i++) if (bytes[i] === 1) seen[i] = 1;
    deliveries += r.distinct + r.again + r.outside;
    flagged += r.flagged;
    lastAt = Math.max(lastAt, r.lastAt);
  }
  const distinct = sum(Array.from(seen));
  return { distinct, redelivered: deliveries - distinct, flagged, lastAt };
}
