/**
 * `herald stats`: what an operator asks first. Each topic with its head and publish rate, each
 * durable subscription and consumer group with its lag, the age of its oldest unacked message and
 * whether it is live. The rate is the heads' growth between two reads of `/api/v1/stats` (admins)
 * `--interval` apart.
 */
import type { StatsOk } from "../../shared/protocol.js";
import {
  api,
  COMMON_HELP,
  type Connection,
  connection,
  intFlag,
  oneShotClientId,
  parse,
  positionals,
} from "./options.js";

export const STATS_HELP = `Usage: herald stats [options]

Prints each topic with its head seq and its publish rate (measured over --interval), each durable
subscription with its lag (messages not acked), the age of its oldest unacked message and whether
its client is connected, and each consumer group with its backlog, oldest unfinished message, live
members and messages in flight. Needs an admin (in dev auth every user is one unless HERALD_ADMINS).

Options:
  --interval MS      how long to measure the rates (default 1000)
  --json             print the numbers as one JSON object instead
${COMMON_HELP}`;

export type Stats = StatsOk;

export async function stats(args: string[]): Promise<void> {
  const { values, positionals: given } = parse(args, { interval: { type: "string" }, json: { type: "boolean" } });
  if (values.help) {
    console.log(STATS_HELP);
    return;
  }
  positionals(given, [], STATS_HELP);
  const interval = intFlag(values, "interval", 1) ?? 1000;
  const c = connection(values, oneShotClientId);
  const first = await readStats(c);
  await new Promise((resolve) => setTimeout(resolve, interval));
  const report = compare(first, await readStats(c));
  console.log(values.json ? JSON.stringify(report) : render(report));
}

/** The admin stats route (PROTOCOL.md "HTTP"). */
export const readStats = (c: Connection): Promise<Stats> => api<Stats>(c, "/api/v1/stats");

/** Two reads of the stats: the rates between them, and the ages at the second. */
export function compare(first: Stats, now: Stats) {
  const seconds = Math.max(0.001, (now.now - first.now) / 1000);
  const before = new Map(first.topics.map((t) => [t.topic, t.head]));
  const age = (ts: number | undefined) => (ts === undefined ? undefined : Math.max(0, now.now - ts));
  return {
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
}

export type Report = ReturnType<typeof compare>;

/** The report as `herald stats` prints it: a line, then a table each for topics, subscriptions and groups. */
export function render(report: Report, rows = Number.POSITIVE_INFINITY): string {
  const ms = (v: number | undefined) => (v === undefined ? "-" : v < 1000 ? `${v} ms` : `${round(v / 1000)} s`);
  const busiest = <T>(list: T[], by: (x: T) => number) => [...list].sort((a, b) => by(b) - by(a)).slice(0, rows);
  return [
    `node ${report.node}, ${report.connections} connections`,
    table(
      ["topic", "head", "msg/s"],
      busiest(report.topics, (t) => t.perSecond).map((t) => [t.topic, t.head, t.perSecond]),
    ),
    table(
      ["subscription", "client", "lag", "oldest unacked", "live"],
      busiest(report.subscriptions, (s) => s.lag).map((s) => [
        s.topic,
        `${s.user}/${s.clientId}`,
        s.lag,
        ms(s.oldestUnackedMs),
        s.live ? "yes" : "no",
      ]),
    ),
    table(
      ["group", "topic", "backlog", "oldest unacked", "live members", "in flight"],
      busiest(report.groups, (g) => g.lag).map((g) => [
        g.group,
        g.topic,
        g.lag,
        ms(g.oldestUnackedMs),
        g.members,
        g.inflight,
      ]),
    ),
  ].join("\n");
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
