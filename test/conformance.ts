/**
 * Helpers of the protocol conformance suites (test/protocol-*.test.ts): untyped emits, so that a
 * test can send what a careless or hostile client would, and replies checked by their code.
 */
import assert from "node:assert/strict";
import { io, type Socket } from "socket.io-client";
import type { Message } from "../shared/protocol.js";
import type { RawSocket } from "./helpers.js";

export interface AnyReply {
  ok: boolean;
  error?: { code: string; message: string; retryAfterMs?: number };
  [field: string]: unknown;
}

/** Emits `event` with `args` and a callback; rejects when no reply comes within `ms`. */
export function call(socket: RawSocket, event: string, ...args: unknown[]): Promise<AnyReply> {
  return (socket as unknown as Socket).timeout(5000).emitWithAck(event, ...args) as Promise<AnyReply>;
}

/** Emits without a callback (one-way). */
export function send(socket: RawSocket, event: string, ...args: unknown[]): void {
  (socket as unknown as Socket).emit(event, ...args);
}

/** Asserts an `ok: true` reply and returns it. */
export async function ok(reply: Promise<AnyReply> | AnyReply): Promise<AnyReply> {
  const r = await reply;
  assert.equal(r.ok, true, `expected ok, got ${JSON.stringify(r)}`);
  assert.equal("error" in r, false);
  return r;
}

/** Asserts an error reply with `code` (and the Err shape) and returns the error. */
export async function fails(
  reply: Promise<AnyReply> | AnyReply,
  code: string,
): Promise<{ code: string; message: string; retryAfterMs?: number }> {
  const r = await reply;
  assert.deepEqual(Object.keys(r).sort(), ["error", "ok"], `reply ${JSON.stringify(r)}`);
  assert.equal(r.ok, false);
  assert.equal(r.error?.code, code, `expected ${code}, got ${JSON.stringify(r.error)}`);
  assert.equal(typeof r.error.message, "string");
  for (const field of Object.keys(r.error)) assert.ok(["code", "message", "retryAfterMs"].includes(field));
  return r.error;
}

/** Publishes and returns the seq; fails the test unless the reply is ok. */
export async function pub(socket: RawSocket, topic: string, id: string, payload: unknown = id): Promise<number> {
  const r = await ok(call(socket, "publish", { id, topic, payload }));
  return r.seq as number;
}

/** Subscribes and returns `{ head, acked }`. */
export async function sub(socket: RawSocket, topic: string, from?: number): Promise<{ head: number; acked: number }> {
  const r = await ok(call(socket, "subscribe", from === undefined ? { topic } : { topic, from }));
  assert.deepEqual(Object.keys(r).sort(), ["acked", "head", "ok"]);
  return { head: r.head as number, acked: r.acked as number };
}

export type Recording = ReturnType<typeof record>;

/**
 * Connects with a recording that starts before the connection does: what the server sends right
 * after the handshake (resumed deliveries, REPLACED) can arrive in the same tick as `connect`.
 */
export function connectRecorded(
  url: string,
  auth: Record<string, unknown>,
): Promise<{ socket: RawSocket; rec: Recording }> {
  const socket: RawSocket = io(url, { auth, transports: ["websocket"], reconnection: false, forceNew: true });
  const rec = record(socket);
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve({ socket, rec }));
    socket.once("connect_error", (err) => {
      socket.close();
      reject(err);
    });
  });
}

/** Records every event of a socket in arrival order, `messages` flattened, for order checks. */
export function record(socket: RawSocket) {
  const events: { event: string; data: unknown }[] = [];
  (socket as unknown as Socket).onAny((event: string, data: unknown) => events.push({ event, data }));
  return {
    events,
    messages(topic?: string): Message[] {
      return events
        .filter((e) => e.event === "messages")
        .flatMap((e) => e.data as Message[])
        .filter((m) => topic === undefined || m.topic === topic);
    },
    of(event: string): unknown[] {
      return events.filter((e) => e.event === event).map((e) => e.data);
    },
    clear(): void {
      events.length = 0;
    },
  };
}

/** Waits until `check` holds, polling; fails with `what` after `ms`. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Resolves once the socket is disconnected (or at once if it is). */
export function disconnected(socket: RawSocket): Promise<void> {
  if (socket.disconnected) return Promise.resolve();
  return new Promise((resolve) => socket.once("disconnect", () => resolve()));
}

/** The value of one Prometheus sample in a /metrics text, 0 when absent. */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = match[2] ?? "";
    if (Object.entries(labels).every(([k, v]) => have.includes(`${k}="${v}"`))) total += Number(match[3]);
  }
  return total;
}
