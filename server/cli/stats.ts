/**
 * `herald stats`: what an operator asks first. Each topic with its head and publish rate, each
 * durable subscription and consumer group with its lag, the age of its oldest unacked message and
 * whether it is live. The rate is the heads' growth between two reads of `/api/v1/stats` (admins)
 * `--interval` apart.
 */
import { api, COMMON_HELP, connection, intFlag, oneShotClientId, parse, positionals } from "./options.js";

export const STATS_HELP = `Usage: herald stats [options]

Prints each topic with its head seq and its publish rate (measured over --interval), each durable
subscription with its lag (messages not acked), the age of its oldest unacked message and whether
its client is connected, and each consumer group with its backlog, oldest unfinished message, live
members and messages in flight. Needs an admin (in dev auth every user is one unless HERALD_ADMINS).

Options:
  --interval MS      how long to measure the rates (default 1000)
  --json             print the numbers as one JSON object instead
${COMMON_HELP}`;

interface Stats {
  now: number;
  node: string;
  connections: number;
  topics: { topic: string; head: number }[];
  subscriptions: {
    user: string;
    clientId: string;
    topic: string;
    lag: number;
    oldestUnackedTs?: number;
    live: boolean;
  }[];
  groups: { topic: string; group: string; lag: number; members: number; inflight: number; oldestUnackedTs?: number }[];
}

export async function stats(args: string[]): Promise<void> {
  const { values, positionals: given } = parse(args, { interval: { type: "string" }, json: { type: "boolean" } });
  if (values.help) {
    console.log(STATS_HELP);
    return;
  }
  positionals(given, [], STATS_HELP);
  const interval = intFlag(values, "interval", 1) ?? 1000;
  const c = connection(values, oneShotClientId);
  const first = await api<Stats>(c, "/api/v1/stats");
  await new Promise((resolve) => setTimeout(resolve, interval));
  const now = await api<Stats>(c, "/api/v1/stats");
  const seconds = (now.now - first.now) / 1000;
  const before = new Map(first.topics.map((t) => [t.topic, t.head]));
  const age = (ts: number | undefined) => (ts === undefined ? undefined : Math.max(0, now.now - ts));
  const report = {
    node: now.node,
    connections: now.connections,
    topics: now.topics.map((t) => ({ ...t, perSecond: round((t.head - (before.get(t.topic) ?? 0)) / seconds) })),
    subscriptions: now.subscriptions.map((s) => ({
      user: s.user,
      clientId: s.clientId,
      topic: s.topic,
      lag: s.lag,
      oldestUnackedMs: age(s.oldestUnackedTs),
      live: s.live,
    })),
    groups: now.groups.map((g) => ({
      topic: g.topic,
      group: g.group,
      lag: g.lag,
      oldestUnackedMs: age(g.oldestUnackedTs),
      members: g.members,
      inflight: g.inflight,
    })),
  };
  if (values.json) {
    console.log(JSON.stringify(report));
    return;
  }
  const ms = (v: number | undefined) => (v === undefined ? "-" : v < 1000 ? `${v} ms` : `${round(v / 1000)} s`);
  console.log(`node ${report.node}, ${report.connections} connections`);
  console.log(
    table(
      ["topic", "head", "msg/s"],
      report.topics.map((t) => [t.topic, t.head, t.perSecond]),
    ),
  );
  console.log(
    table(
      ["subscription", "client", "lag", "oldest unacked", "live"],
      report.subscriptions.map((s) => [
        s.topic,
        `${s.user}/${s.clientId}`,
        s.lag,
        ms(s.oldestUnackedMs),
        s.live ? "yes" : "no",
      ]),
    ),
  );
  console.log(
    table(
      ["group", "topic", "backlog", "oldest unacked", "live members", "in flight"],
      report.groups.map((g) => [g.group, g.topic, g.lag, ms(g.oldestUnackedMs), g.members, g.inflight]),
    ),
  );
}

const round = (n: number) => Math.round(n * 10) / 10;

/** Left-aligned columns; "(none)" under the header when there are no rows. */
function table(header: string[], rows: (string | number)[][]): string {
  const all = [header, ...rows].map((r) => r.map(String));
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(all[0]!), ...(rows.length === 0 ? ["(none)"] : all.slice(1).map(line)), ""].join("\n");
}
