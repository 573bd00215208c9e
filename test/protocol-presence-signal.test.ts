/** PROTOCOL.md `presence` (the call and the event) and `signal` (the call and the event). */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { call, eventually, fails, ok, pub, record, send, sub } from "./conformance.js";
import { connect, type RawSocket, sleep, startServer, type TestServer } from "./helpers.js";

/** Starts a server for the suite; `join` connects to it, and everything is closed after the suite. */
function suiteServer(overrides: Parameters<typeof startServer>[0] = {}) {
  let server: TestServer | undefined;
  const open: RawSocket[] = [];
  before(async () => {
    server = await startServer(overrides);
  });
  after(async () => {
    for (const s of open) s.close();
    await server?.close();
  });
  return async (user: string, clientId: string) => {
    const s = await connect(server!.url, { user, clientId });
    open.push(s);
    return s;
  };
}

describe("protocol: presence", () => {
  const join = suiteServer();

  it("answers the users with a live subscribed connection, unique and sorted", async () => {
    const zoe = await join("zoe", "p1");
    const adam = await join("adam", "p1");
    const adam2 = await join("adam", "p1b");
    assert.deepEqual(await call(zoe, "presence", { topic: "room:p1" }), { ok: true, users: [] });
    for (const s of [zoe, adam, adam2]) await sub(s, "room:p1");
    assert.deepEqual(await call(zoe, "presence", { topic: "room:p1" }), { ok: true, users: ["adam", "zoe"] });
    // Anyone who may subscribe may ask, subscribed or not.
    const eve = await join("eve", "p1");
    assert.deepEqual(await call(eve, "presence", { topic: "room:p1" }), { ok: true, users: ["adam", "zoe"] });
    await fails(call(eve, "presence", { topic: "user:zoe" }), "FORBIDDEN");
    await sub(zoe, "user:zoe");
    assert.deepEqual(await call(zoe, "presence", { topic: "user:zoe" }), { ok: true, users: ["zoe"] });
    // A durable subscription without a live connection does not count.
    zoe.close();
    await sleep(50);
    assert.deepEqual(await call(eve, "presence", { topic: "room:p1" }), { ok: true, users: ["adam"] });
    await ok(call(adam, "unsubscribe", { topic: "room:p1" }));
    assert.deepEqual(await call(eve, "presence", { topic: "room:p1" }), { ok: true, users: ["adam"] });
    await ok(call(adam2, "unsubscribe", { topic: "room:p1" }));
    assert.deepEqual(await call(eve, "presence", { topic: "room:p1" }), { ok: true, users: [] });
  });

  it("answers every user with a live connection for broadcast", async () => {
    const a = await join("bc-a", "p2");
    const b = await join("bc-b", "p2");
    const users = (await ok(call(a, "presence", { topic: "broadcast" }))).users as string[];
    assert.ok(users.includes("bc-a") && users.includes("bc-b"));
    assert.deepEqual(users, [...users].sort());
    assert.equal(new Set(users).size, users.length);
    b.close();
    await sleep(50);
    const after = (await ok(call(a, "presence", { topic: "broadcast" }))).users as string[];
    assert.ok(!after.includes("bc-b"));
  });

  it("announces a user's first subscribed connection and its last, to the others only", async () => {
    const watcher = await join("watcher", "p3");
    const wrec = record(watcher);
    await sub(watcher, "room:p3");
    const bob1 = await join("bob", "p3a");
    const bobRec = record(bob1);
    await sub(bob1, "room:p3");
    await eventually(() => wrec.of("presence").length === 1, "bob online");
    assert.deepEqual(wrec.of("presence"), [{ topic: "room:p3", user: "bob", online: true }]);
    // Bob's own connection was told about nobody, and not about himself; a second one of his is silent.
    const bob2 = await join("bob", "p3b");
    await sub(bob2, "room:p3");
    bob1.close();
    await sleep(100);
    assert.equal(wrec.of("presence").length, 1);
    assert.deepEqual(bobRec.of("presence"), []);
    // Bob sees the watcher's coming and going.
    const bob2Rec = record(bob2);
    await ok(call(watcher, "unsubscribe", { topic: "room:p3" }));
    await eventually(() => bob2Rec.of("presence").length === 1, "watcher offline");
    assert.deepEqual(bob2Rec.of("presence"), [{ topic: "room:p3", user: "watcher", online: false }]);
    await sub(watcher, "room:p3");
    await eventually(() => bob2Rec.of("presence").length === 2, "watcher online");
    assert.deepEqual(bob2Rec.of("presence")[1], { topic: "room:p3", user: "watcher", online: true });
    // The last connection goes: offline.
    bob2.close();
    await eventually(() => wrec.of("presence").length === 2, "bob offline");
    assert.deepEqual(wrec.of("presence")[1], { topic: "room:p3", user: "bob", online: false });
    // A reconnect resumes the subscription and comes online again without a subscribe.
    const bob3 = await join("bob", "p3a");
    await eventually(() => wrec.of("presence").length === 3, "bob online again");
    assert.deepEqual(wrec.of("presence")[2], { topic: "room:p3", user: "bob", online: true });
    bob3.close();
  });

  it("sends no presence event for broadcast", async () => {
    const a = await join("nb-a", "p4");
    const rec = record(a);
    const b = await join("nb-b", "p4");
    await sub(b, "broadcast");
    b.close();
    await sleep(100);
    assert.deepEqual(rec.of("presence"), []);
  });
});

describe("protocol: signal", () => {
  const join = suiteServer({ maxPayload: 100 });

  it("goes in send order to the live plain subscribers except the sending connection, and is not stored", async () => {
    const alice = await join("alice", "s1");
    const aliceOther = await join("alice", "s1b");
    const bob = await join("bob", "s1");
    const carol = await join("carol", "s1");
    const recs = [alice, aliceOther, bob, carol].map(record);
    for (const s of [alice, aliceOther, bob]) await sub(s, "room:s1");
    assert.deepEqual(await call(alice, "signal", { topic: "room:s1", payload: { typing: 0 } }), { ok: true });
    for (let i = 1; i < 20; i++) send(alice, "signal", { topic: "room:s1", payload: { typing: i } });
    await eventually(() => recs[2]!.of("signal").length === 20 && recs[1]!.of("signal").length === 20, "20 each");
    const expected = Array.from({ length: 20 }, (_, i) => ({
      topic: "room:s1",
      from: "alice",
      payload: { typing: i },
    }));
    assert.deepEqual(recs[2]!.of("signal"), expected);
    assert.deepEqual(recs[1]!.of("signal"), expected, "the sender's other connection gets it");
    await sleep(50);
    assert.deepEqual(recs[0]!.of("signal"), [], "not the sending connection");
    assert.deepEqual(recs[3]!.of("signal"), [], "not a non-subscriber");
    for (const r of recs) assert.deepEqual(r.messages(), []);
    assert.deepEqual(await call(bob, "history", { topic: "room:s1" }), { ok: true, messages: [], head: 0 });
    // Not stored: a later subscriber or a reconnect gets none.
    bob.close();
    const bobAgain = await join("bob", "s1");
    const again = record(bobAgain);
    await pub(alice, "room:s1", "s1-1");
    await eventually(() => again.messages().length === 1, "the message");
    assert.deepEqual(again.of("signal"), []);
    assert.equal(again.messages()[0]!.seq, 1, "signals took no seq");
  });

  it("needs the right to publish, not a subscription; the payload limit applies", async () => {
    const alice = await join("alice", "s2");
    const bob = await join("bob", "s2");
    const rec = record(bob);
    await sub(bob, "user:bob");
    await ok(call(alice, "signal", { topic: "user:bob", payload: null }));
    await eventually(() => rec.of("signal").length === 1, "a signal to the inbox");
    assert.deepEqual(rec.of("signal"), [{ topic: "user:bob", from: "alice", payload: null }]);
    await fails(call(alice, "signal", { topic: "dead:user:bob:g", payload: 1 }), "FORBIDDEN");
    await fails(call(alice, "signal", { topic: "user:bob", payload: "x".repeat(100) }), "PAYLOAD_TOO_LARGE");
    await ok(call(alice, "signal", { topic: "user:bob", payload: "x".repeat(98) }));
    // Unsubscribed: no more signals.
    await ok(call(bob, "unsubscribe", { topic: "user:bob" }));
    await ok(call(alice, "signal", { topic: "user:bob", payload: 2 }));
    await sleep(100);
    assert.equal(rec.of("signal").length, 2);
  });
});
