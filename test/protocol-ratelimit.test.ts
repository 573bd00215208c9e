/**
 * PROTOCOL.md `RATE_LIMITED`: a token bucket of HERALD_RATE_LIMIT per connection, refilled
 * continuously; publish, signal and the reads take a token, refused calls none; `retryAfterMs`; a one-way
 * publish over the limit is dropped and counted in /metrics.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { call, eventually, fails, metric, ok, pub, send, sub } from "./conformance.js";
import { connect, type RawSocket, sleep, startServer, type TestServer } from "./helpers.js";

const RATE = 5;

describe("protocol: rate limit", () => {
  let server: TestServer;
  const open: RawSocket[] = [];
  const join = async (user: string) => {
    const s = await connect(server.url, { user });
    open.push(s);
    return s;
  };
  before(async () => {
    server = await startServer({ rateLimit: RATE, maxPayload: 100 });
  });
  after(async () => {
    for (const s of open) s.close();
    await server.close();
  });

  it("refuses the call after HERALD_RATE_LIMIT with RATE_LIMITED and retryAfterMs, and refills", async () => {
    const alice = await join("alice");
    for (let i = 1; i <= RATE; i++) await pub(alice, "room:r1", `r1-${i}`);
    const err = await fails(call(alice, "publish", { id: "r1-x", topic: "room:r1", payload: 1 }), "RATE_LIMITED");
    assert.equal(typeof err.retryAfterMs, "number");
    assert.ok(Number.isInteger(err.retryAfterMs), "whole ms");
    assert.ok(err.retryAfterMs! > 0 && err.retryAfterMs! <= 1000 / RATE, `retryAfterMs ${err.retryAfterMs}`);
    // The refused message was not stored and its id is free (read in the server: a read takes a token).
    assert.equal(await server.herald.ctx.store.head("room:r1"), RATE);
    await sleep(err.retryAfterMs! + 20);
    assert.equal(await pub(alice, "room:r1", "r1-x"), RATE + 1);
    // The bucket holds at most HERALD_RATE_LIMIT tokens, however long it waits.
    await sleep(1200);
    for (let i = 1; i <= RATE; i++) await pub(alice, "room:r1", `r1-y${i}`);
    await fails(call(alice, "publish", { id: "r1-z", topic: "room:r1", payload: 1 }), "RATE_LIMITED");
  });

  it("counts signals and the reads too (subscribe, history, presence), and not ack or unsubscribe", async () => {
    const alice = await join("alice");
    await pub(alice, "room:r2", "r2-1");
    await ok(call(alice, "signal", { topic: "room:r2", payload: 1 }));
    await sub(alice, "room:r2");
    await ok(call(alice, "history", { topic: "room:r2" }));
    await ok(call(alice, "presence", { topic: "room:r2" }));
    for (const [event, args] of [
      ["signal", { topic: "room:r2", payload: 3 }],
      ["publish", { id: "r2-x", topic: "room:r2", payload: 1 }],
      ["subscribe", { topic: "room:r2b" }],
      ["history", { topic: "room:r2" }],
      ["presence", { topic: "room:r2" }],
    ] as const) {
      const err = await fails(call(alice, event, args), "RATE_LIMITED");
      assert.ok(err.retryAfterMs! > 0, event);
    }
    // The other events take no token.
    await ok(call(alice, "ack", { topic: "room:r2", seq: 1 }));
    await ok(call(alice, "unsubscribe", { topic: "room:r2" }));
  });

  it("takes no token for a refused call", async () => {
    const alice = await join("alice");
    for (let i = 0; i < 20; i++) {
      await fails(call(alice, "publish", { id: "bad id", topic: "room:r3", payload: 1 }), "BAD_REQUEST");
      await fails(call(alice, "publish", { id: "x", topic: "nope", payload: 1 }), "INVALID_TOPIC");
      await fails(call(alice, "publish", { id: "x", topic: "dead:room:r3:g", payload: 1 }), "FORBIDDEN");
      await fails(call(alice, "publish", { id: "x", topic: "room:r3", payload: "x".repeat(200) }), "PAYLOAD_TOO_LARGE");
      await fails(call(alice, "signal", { topic: "nope", payload: 1 }), "INVALID_TOPIC");
    }
    for (let i = 1; i <= RATE; i++) await pub(alice, "room:r3", `r3-${i}`);
    // A RATE_LIMITED call takes none either: the next token comes after retryAfterMs all the same.
    const first = await fails(call(alice, "publish", { id: "r3-x", topic: "room:r3", payload: 1 }), "RATE_LIMITED");
    for (let i = 0; i < 5; i++)
      await fails(call(alice, "publish", { id: "r3-x", topic: "room:r3", payload: 1 }), "RATE_LIMITED");
    await sleep(first.retryAfterMs! + 30);
    await pub(alice, "room:r3", "r3-x");
  });

  it("has one bucket per connection", async () => {
    const a1 = await join("carol");
    const a2 = await join("carol");
    for (let i = 1; i <= RATE; i++) await pub(a1, "room:r4", `a1-${i}`);
    await fails(call(a1, "publish", { id: "a1-x", topic: "room:r4", payload: 1 }), "RATE_LIMITED");
    for (let i = 1; i <= RATE; i++) await pub(a2, "room:r4", `a2-${i}`);
  });

  it("drops a one-way publish over the limit silently and counts it in herald_dropped_total", async () => {
    const alice = await join("dave");
    const before = metric(await (await fetch(`${server.url}/metrics`)).text(), "herald_dropped_total", {
      reason: "RATE_LIMITED",
    });
    const events: string[] = [];
    alice.onAny((event: string) => events.push(event));
    for (let i = 1; i <= RATE + 3; i++) send(alice, "publish", { id: `d-${i}`, topic: "room:r5", payload: i });
    // One-way publishes are not waited for: wait for them to be stored, then make sure of the count.
    const head = () => server.herald.ctx.store.head("room:r5");
    await eventually(async () => (await head()) === RATE, "the first HERALD_RATE_LIMIT stored");
    await sleep(100);
    assert.equal(await head(), RATE, "only the first HERALD_RATE_LIMIT were stored");
    const text = await (await fetch(`${server.url}/metrics`)).text();
    assert.equal(metric(text, "herald_dropped_total", { reason: "RATE_LIMITED" }) - before, 3);
    assert.deepEqual(events, [], "nothing is said");
  });
});
