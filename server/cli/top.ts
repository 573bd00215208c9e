/**
 * `herald top`: `herald stats` as a live view, redrawn every interval, with a line of what
 * `/metrics` says over the same interval: publishes, deliveries and acks per second, the publish
 * to durable p50 and p99, connections and the event loop's lag. The busiest topics,
 * subscriptions and groups come first, as many as the terminal has room for.
 */
import { histogramQuantile, metricSum } from "../../shared/metrics-text.js";
import { COMMON_HELP, type Connection, connection, intFlag, oneShotClientId, parse, positionals } from "./options.js";
import { compare, readStats, render } from "./stats.js";

export const TOP_HELP = `Usage: herald top [options]

A live view of the server, redrawn every --interval: publishes, deliveries and acks per second,
the publish-to-durable p50/p99, connections and event-loop lag (from /metrics); then, busiest
first, topics with head and rate, subscriptions with lag and oldest unacked message, and groups
with backlog and live members (from the admin stats route). Ctrl-C to stop.

Options:
  --interval MS      how often to redraw (default 1000)
  --frames N         stop after N frames and do not clear the screen (for scripts)
  --metrics-token T  the bearer token of /metrics, when the server has HERALD_METRICS_TOKEN
${COMMON_HELP}`;

export async function top(args: string[]): Promise<void> {
  const { values, positionals: given } = parse(args, {
    interval: { type: "string" },
    frames: { type: "string" },
    "metrics-token": { type: "string" },
  });
  if (values.help) {
    console.log(TOP_HELP);
    return;
  }
  positionals(given, [], TOP_HELP);
  const interval = intFlag(values, "interval", 100) ?? 1000;
  const frames = intFlag(values, "frames", 1);
  const token = typeof values["metrics-token"] === "string" ? values["metrics-token"] : undefined;
  const c = connection(values, oneShotClientId);
  let stats = await readStats(c);
  let metrics = await readMetrics(c, token);
  for (let frame = 1; frames === undefined || frame <= frames; frame++) {
    await new Promise((resolve) => setTimeout(resolve, interval));
    const [nextStats, nextMetrics] = await Promise.all([readStats(c), readMetrics(c, token)]);
    const seconds = Math.max(0.001, (nextStats.now - stats.now) / 1000);
    const head = summary(metrics, nextMetrics, seconds);
    // A screen's worth: the three tables share what the summary and their headers leave.
    const rows = Math.max(3, Math.floor(((process.stdout.rows ?? 40) - 12) / 3));
    const text = `${head}\n${render(compare(stats, nextStats), rows)}`;
    // Clear the screen and go home, unless a script reads the frames.
    process.stdout.write(frames === undefined ? `\x1b[2J\x1b[H${text}` : `${text}\n`);
    stats = nextStats;
    metrics = nextMetrics;
  }
}

/** /metrics as text; undefined when it cannot be read (a token is needed), so the rest still shows. */
async function readMetrics(c: Connection, token: string | undefined): Promise<string | undefined> {
  try {
    const res = await fetch(new URL("/metrics", c.url), {
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(5000),
    });
    return res.ok ? await res.text() : undefined;
  } catch {
    return undefined;
  }
}

function summary(before: string | undefined, after: string | undefined, seconds: number): string {
  if (before === undefined || after === undefined) return "(/metrics not readable: --metrics-token?)";
  const rate = (name: string) => Math.round((metricSum(after, name) - metricSum(before, name)) / seconds);
  const ms = (q: number) => {
    const s = histogramQuantile(before, after, "herald_publish_durable_seconds{", q);
    return s === undefined ? "-" : `${(s * 1000).toFixed(2)} ms`;
  };
  const lag = metricSum(after, "herald_process_nodejs_eventloop_lag_p99_seconds") * 1000;
  return [
    `${rate("herald_publishes_total")} publishes/s, ${rate("herald_deliveries_total")} deliveries/s, ${rate("herald_acks_total")} acks/s`,
    `publish to durable p50 ${ms(0.5)}, p99 ${ms(0.99)}; event loop lag p99 ${lag.toFixed(1)} ms; ${metricSum(after, "herald_connections")} connections`,
    "",
  ].join("\n");
}
