/**
 * PROTOCOL.md `request`: a remote call routed to the newest live connection of the target user
 * other than the caller's own; `{ result }` and `{ error }` relayed, anything else INTERNAL;
 * UNAVAILABLE with nobody to answer or when the target goes away (disconnect, REPLACED) first;
 * TIMEOUT after `timeoutMs`; the payload limit on `params` and `result`; a rate token; and nothing
 * left behind once a request has ended.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Socket } from "socket.io-client";
import { call, eventually, fails, ok } from "./conformance.js";
import { connect, type RawSocket, sleep, startServer, type TestServer } from "./helpers.js";

const MAX_PAYLOAD = 1000;

type Answer = (answer: unknown) => void;
interface Seen {
  from: string;
  method: string;
  params?: unknown;
}

/** Answers every `request` with `answer(event)`; `undefined` leaves it unanswered. */
function responder(socket: RawSocket, answer: (event: Seen) => unknown) {
  const seen: Seen[] = [];
  (socket as unknown as Socket).on("request", (event: Seen, cb: Answer) => {
    seen.push(event);
    const a = answer(event);
    if (a !== undefined) cb(a);
  });
  return seen;
}

describe("protocol: request", () => {
  let server: TestServer;
  const open: RawSocket[] = [];
  const client = async (user: string, clientId?: string) => {
    const socket = await connect(server.url, clientId === undefined ? { user } : { user, clientId });
    open.push(socket);
    return socket;
  };
  before(async () => {
    server = await startServer({ maxPayload: MAX_PAYLOAD, rateLimit: 100_000 });
  });
  after(async () => {
    for (const s of open) s.close();
    await server.close();
  });

  it("goes to the newest live connection of the user and relays { result }", async () => {
    const older = await client("svc");
    const newer = await client("svc");
    const seenOld = responder(older, () => ({ result: "old" }));
    const seenNew = responder(newer, (e) => ({ result: { echo: e.params, by: "new" } }));
    const caller = await client("alice");
    const reply = await ok(call(caller, "request", { to: "svc", method: "echo", params: { n: 1 } }));
    assert.deepEqual(reply, { ok: true, result: { echo: { n: 1 }, by: "new" } });
    assert.deepEqual(seenNew, [{ from: "alice", method: "echo", params: { n: 1 } }]);
    assert.equal(seenOld.length, 0);
    // Without params the event has none; after the newest leaves, the older one answers.
    newer.close();
    await eventually(async () => (await call(caller, "request", { to: "svc", method: "m" })).result === "old", "older");
    assert.deepEqual(seenOld.at(-1), { from: "alice", method: "m" });
    // Any JSON result, falsy ones too.
    for (const result of [0, false, null, "", [1, 2]]) {
      const r = responder(await client("svc2"), () => ({ result }));
      assert.deepEqual(await call(caller, "request", { to: "svc2", method: "x" }), { ok: true, result });
      assert.equal(r.length, 1);
      open.pop()!.close();
      await sleep(20);
    }
  });

  it("never goes to the caller's own connection; another connection of the same user may answer", async () => {
    const me = await client("solo");
    responder(me, () => ({ result: "self" }));
    await fails(call(me, "request", { to: "solo", method: "x" }), "UNAVAILABLE");
    const other = await client("solo");
    responder(other, () => ({ result: "other" }));
    assert.deepEqual(await call(me, "request", { to: "solo", method: "x" }), { ok: true, result: "other" });
    await fails(call(me, "request", { to: "nobody", method: "x" }), "UNAVAILABLE");
  });

  it("relays { error } with the responder's code; anything else is INTERNAL", async () => {
    const caller = await client("bob");
    const answers: unknown[] = [
      { error: { code: "NOT_FOUND", message: "no such order" } },
      { error: { code: "OUT_OF_STOCK", message: "sold out" } },
    ];
    const svc = await client("errsvc");
    let next = 0;
    responder(svc, () => answers[next++]);
    const e1 = await fails(call(caller, "request", { to: "errsvc", method: "x" }), "NOT_FOUND");
    assert.equal(e1.message, "no such order");
    const e2 = await fails(call(caller, "request", { to: "errsvc", method: "x" }), "OUT_OF_STOCK");
    assert.equal(e2.message, "sold out");
    for (const bad of ["plain", 42, null, {}, { result: 1, extra: 2 }, { error: "no" }, { error: { code: 1 } }, [1]]) {
      answers.push(bad);
      await fails(call(caller, "request", { to: "errsvc", method: "x" }), "INTERNAL");
    }
  });

  it("is UNAVAILABLE when the target disconnects or is REPLACED before it answers", async () => {
    const caller = await client("carol");
    const svc = await client("slow", "slow-1");
    const seen = responder(svc, () => undefined);
    const pending = call(caller, "request", { to: "slow", method: "x", timeoutMs: 5000 });
    await eventually(() => seen.length === 1, "forwarded");
    svc.close();
    await fails(pending, "UNAVAILABLE");

    const first = await client("slow", "slow-2");
    const seenFirst = responder(first, () => undefined);
    const waiting = call(caller, "request", { to: "slow", method: "y", timeoutMs: 5000 });
    await eventually(() => seenFirst.length === 1, "forwarded");
    const successor = await client("slow", "slow-2"); // same clientId: REPLACED
    responder(successor, () => ({ result: "fresh" }));
    await fails(waiting, "UNAVAILABLE");
    assert.deepEqual(await call(caller, "request", { to: "slow", method: "z" }), { ok: true, result: "fresh" });
    assert.equal(server.herald.ctx.requests.pending, 0);
  });

  it("is TIMEOUT after timeoutMs, and a late answer changes nothing", async () => {
    const caller = await client("dave");
    const svc = await client("late");
    const callbacks: Answer[] = [];
    (svc as unknown as Socket).on("request", (_e: Seen, cb: Answer) => callbacks.push(cb));
    const started = performance.now();
    await fails(call(caller, "request", { to: "late", method: "x", timeoutMs: 200 }), "TIMEOUT");
    const took = performance.now() - started;
    assert.ok(took >= 190 && took < 2000, `${took} ms`);
    callbacks[0]!({ result: "too late" });
    await sleep(50);
    assert.equal(server.herald.ctx.requests.pending, 0);
  });

  it("refuses bad arguments with BAD_REQUEST, large params and results with PAYLOAD_TOO_LARGE", async () => {
    const caller = await client("erin");
    const svc = await client("big");
    responder(svc, (e) => ({ result: "x".repeat(e.params as number) }));
    for (const args of [
      { to: "no spaces", method: "x" },
      { to: "big", method: "" },
      { to: "big", method: "m".repeat(129) },
      { to: "big", method: "x", timeoutMs: 0 },
      { to: "big", method: "x", timeoutMs: 60001 },
      { to: "big", method: "x", timeoutMs: 1.5 },
      { to: "big", method: "x", extra: 1 },
      { to: "big", method: "x", params: null, timeoutMs: null },
      { method: "x" },
    ]) {
      await fails(call(caller, "request", args), "BAD_REQUEST");
    }
    await ok(call(caller, "request", { to: "big", method: "m".repeat(128), params: 10, timeoutMs: 60000 }));
    await fails(
      call(caller, "request", { to: "big", method: "x", params: "p".repeat(MAX_PAYLOAD) }),
      "PAYLOAD_TOO_LARGE",
    );
    await fails(call(caller, "request", { to: "big", method: "x", params: MAX_PAYLOAD }), "PAYLOAD_TOO_LARGE");
  });

  it("takes a rate token", async () => {
    const limited = await startServer({ rateLimit: 3 });
    try {
      const svc = await connect(limited.url, { user: "svc" });
      responder(svc, () => ({ result: 1 }));
      const caller = await connect(limited.url, { user: "frank" });
      for (let i = 0; i < 3; i++) await ok(call(caller, "request", { to: "svc", method: "x" }));
      const err = await fails(call(caller, "request", { to: "svc", method: "x" }), "RATE_LIMITED");
      assert.ok(err.retryAfterMs! > 0);
      svc.close();
      caller.close();
    } finally {
      await limited.close();
    }
  });

  it("leaves no timer or waiting entry behind after 10000 requests", async () => {
    const caller = await client("gina");
    const svc = await client("counter");
    responder(svc, (e) => ({ result: e.params }));
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    const before = timers();
    let next = 0;
    const worker = async () => {
      while (next < 10_000) {
        const n = next++;
        const r = await call(caller, "request", { to: "counter", method: "count", params: n });
        assert.equal(r.result, n);
      }
    };
    await Promise.all(Array.from({ length: 100 }, worker));
    assert.equal(server.herald.ctx.requests.pending, 0);
    // The test client's own reply timers are cleared too; a few of the process's come and go.
    assert.ok(timers() <= before + 2, `timers: ${before} before, ${timers()} after`);
  });
});
