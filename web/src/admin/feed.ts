/**
 * What the operator's page reads, and how often: `/metrics` every second (the charts: rates from
 * the counters' growth between two scrapes, latency percentiles from the histograms' buckets) and
 * the admin stats route every two seconds (the tables), with the same credentials as the chat.
 * Dead letters are the history of `dead:<topic>:<group>`; a retry is the admin route.
 */
import { histogramQuantile, metricSum } from "../../../shared/metrics-text.js";
import type { Message, StatsOk } from "../../../shared/protocol.js";
import { deadTopic } from "../../../shared/topics.js";
import type { Identity } from "../session.js";

export type Stats = StatsOk;

/** One point of the charts, from two scrapes of /metrics `seconds` apart. */
export interface Point {
  /** Unix seconds, as uPlot's x axis wants. */
  t: number;
  publishes: number;
  deliveries: number;
  acks: number;
  p50Ms: number | null;
  p99Ms: number | null;
  connections: number;
  lagMs: number;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function headers(identity: Identity): Record<string, string> {
  return identity.token ? { authorization: `Bearer ${identity.token}` } : { "x-herald-user": identity.user };
}

async function api<T>(identity: Identity, path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const res = await fetch(path, {
    method: init.method ?? "GET",
    headers: { ...headers(identity), ...(init.body === undefined ? {} : { "content-type": "application/json" }) },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  const body = (await res.json().catch(() => undefined)) as { error?: { code: string; message: string } } | undefined;
  if (!res.ok)
    throw new ApiError(res.status, body?.error?.code ?? "INTERNAL", body?.error?.message ?? `HTTP ${res.status}`);
  return body as T;
}

export const readStats = (identity: Identity) => api<Stats>(identity, "/api/v1/stats");

/** /metrics as text; undefined when the server wants its metrics token (HERALD_METRICS_TOKEN). */
export async function readMetrics(): Promise<string | undefined> {
  const res = await fetch("/metrics");
  return res.ok ? res.text() : undefined;
}

export function point(before: string, after: string, seconds: number): Point {
  const rate = (name: string) => Math.max(0, (metricSum(after, name) - metricSum(before, name)) / seconds);
  const ms = (q: number) => {
    const s = histogramQuantile(before, after, "herald_publish_durable_seconds{", q);
    return s === undefined ? null : s * 1000;
  };
  return {
    t: Date.now() / 1000,
    publishes: rate("herald_publishes_total"),
    deliveries: rate("herald_deliveries_total"),
    acks: rate("herald_acks_total"),
    p50Ms: ms(0.5),
    p99Ms: ms(0.99),
    connections: metricSum(after, "herald_connections"),
    lagMs: metricSum(after, "herald_process_nodejs_eventloop_lag_p99_seconds") * 1000,
  };
}

/** The newest dead letters of a group (their payloads, publishers and when they died). */
export async function readDeadLetters(identity: Identity, topic: string, group: string): Promise<Message[]> {
  const dead = encodeURIComponent(deadTopic(topic, group));
  const page = await api<{ messages: Message[] }>(identity, `/api/v1/topics/${dead}/messages?limit=100`);
  return page.messages;
}

/** Hands every dead letter of the group back to it (PROTOCOL.md "HTTP": the retry route). */
export async function retryDeadLetters(identity: Identity, topic: string, group: string): Promise<number> {
  const path = `/api/v1/topics/${encodeURIComponent(topic)}/groups/${encodeURIComponent(group)}/retry`;
  const { retried } = await api<{ retried: number }>(identity, path, { method: "POST", body: {} });
  return retried;
}
