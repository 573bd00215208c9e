/**
 * Rows as both stores keep them (sqlite-schema.ts and pg-schema.ts have the same columns) and the
 * protocol's shapes they become.
 */
import type { Message } from "../../shared/protocol.js";
import type { GroupProgress, PreparedMessage, StoreStats } from "./store.js";

export interface MessageRow {
  topic: string;
  seq: number;
  id: string;
  from_user: string;
  ts: number;
  key: string | null;
  /** NULL: a tombstone, below the topic's floor (see sqlite-schema.ts). */
  payload: string | null;
}

/** A pending half message's row of `txns`. */
export interface TxnRow {
  from_user: string;
  id: string;
  client_id: string;
  topic: string;
  key: string | null;
  payload: string;
  prepared_at: number;
  checks: number;
}

/** The columns of TxnRow, for SELECTs. */
export const TXN_COLUMNS = "from_user, id, client_id, topic, key, payload, prepared_at, checks";

export function toMessage(row: MessageRow): Message {
  const message: Message = {
    id: row.id,
    topic: row.topic,
    seq: row.seq,
    from: row.from_user,
    ts: row.ts,
    // A tombstone: only a duplicate publish of its id reads it.
    payload: row.payload === null ? null : JSON.parse(row.payload),
  };
  if (row.key !== null) message.key = row.key;
  return message;
}

export function toProgress(row: { acked: number; progress: string }): GroupProgress {
  // `retried` and `delivered` came after the first rows of SQLite's schema 2 were written.
  const p = JSON.parse(row.progress) as Partial<Omit<GroupProgress, "acked">>;
  return {
    acked: row.acked,
    done: p.done ?? [],
    attempts: p.attempts ?? [],
    retried: p.retried ?? [],
    delivered: p.delivered ?? row.acked,
  };
}

export function toPrepared(r: TxnRow): PreparedMessage {
  const m: PreparedMessage = {
    from: r.from_user,
    clientId: r.client_id,
    id: r.id,
    topic: r.topic,
    payload: JSON.parse(r.payload),
    json: r.payload,
    preparedAt: r.prepared_at,
    checks: r.checks,
  };
  if (r.key !== null) m.key = r.key;
  return m;
}

/** A new group's progress: at the head, or at `from` (PROTOCOL.md "Groups"). */
export function newProgress(head: number, from: number | undefined): GroupProgress {
  return {
    acked: from === undefined ? head : Math.min(from - 1, head),
    done: [],
    attempts: [],
    retried: [],
    delivered: 0,
  };
}

/** A subscription's row of the stats route, with the oldest unacked message's ts when it lags. */
export function subscriptionStats(
  row: { user: string; client_id: string; topic: string; acked: number; oldest: number | null },
  head: number,
): StoreStats["subscriptions"][number] {
  const sub: StoreStats["subscriptions"][number] = {
    user: row.user,
    clientId: row.client_id,
    topic: row.topic,
    acked: row.acked,
    head,
    lag: Math.max(0, head - row.acked),
  };
  if (sub.lag > 0 && row.oldest !== null) sub.oldestUnackedTs = row.oldest;
  return sub;
}
