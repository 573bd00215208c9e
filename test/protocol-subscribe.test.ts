/** PROTOCOL.md `subscribe`, `unsubscribe`, the `broadcast` auto-subscription and who may subscribe. */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { call, connectRecorded, eventually, fails, ok, pub, record, send, sub } from "./conformance.js";
import { connect, type RawSocket, sleep, startServer, type TestServer } from "./helpers.js";

describe("protocol: subscribe and unsubscribe", () => {
  let server: TestServer;
  let alice: RawSocket;
  const open: RawSocket[] = [];
  const join = async (user: string, clientId: string) => {
    const s = await connect(server.url, { user, clientId });
    open.push(s);
    return s;
  };
  /** Reconnects with a recording that sees what is sent right after the handshake. */
  const rejoin = async (user: string, clientId: string) => {
    const { socket, rec } = await connectRecorded(server.url, { user, clientId });
    open.push(socket);
    return { socket, rec };
  };
  before(async () => {
    server = await startServer();
    alice = await join("alice", "alice-pub");
  });
  after(async () => {
    for (const s of open) s.close();
    await server.close();
  });

  it("starts a new subscription at the head: acked = head, only new messages", async () => {
    for (let i = 1; i <= 3; i++) await pub(alice, "room:s1", `s1-${i}`);
    const bob = await join("bob", "s1");
    const rec = record(bob);
    assert.deepEqual(await sub(bob, "room:s1"), { head: 3, acked: 3 });
    await pub(alice, "room:s1", "s1-4");
    await eventually(() => rec.messages().length === 1, "the new message");
    await sleep(50);
    assert.deepEqual(
      rec.messages().map((m) => m.seq),
      [4],
    );
  });

  it("resumes by itself on reconnect of the same (user, clientId), from the acked cursor", async () => {
    let bob = await join("bob", "s2");
    let rec = record(bob);
    await sub(bob, "room:s2");
    for (let i = 1; i <= 4; i++) await pub(alice, "room:s2", `s2-${i}`);
    await eventually(() => rec.messages().length === 4, "4 messages");
    await ok(call(bob, "ack", { topic: "room:s2", seq: 2 }));
    bob.close();
    await pub(alice, "room:s2", "s2-5");
    ({ socket: bob, rec } = await rejoin("bob", "s2"));
    // No subscribe: 3 and 4 were sent but not acked, 5 was published while away.
    await eventually(() => rec.messages().length === 3, "3 redelivered");
    assert.deepEqual(
      rec.messages().map((m) => m.seq),
      [3, 4, 5],
    );
    // Subscribing again without `from` keeps the cursor and re-sends nothing.
    assert.deepEqual(await sub(bob, "room:s2"), { head: 5, acked: 2 });
    await sleep(100);
    assert.equal(rec.messages().length, 3);
    // The durable state belongs to (user, clientId): another user with the same clientId starts fresh.
    const carol = await join("carol", "s2");
    const carolRec = record(carol);
    assert.deepEqual(await sub(carol, "room:s2"), { head: 5, acked: 5 });
    await sleep(50);
    assert.equal(carolRec.messages().length, 0);
  });

  it("replays with `from`: acked = min(from - 1, head), on a new and on an existing subscription", async () => {
    for (let i = 1; i <= 5; i++) await pub(alice, "room:s3", `s3-${i}`);
    const bob = await join("bob", "s3");
    const rec = record(bob);
    assert.deepEqual(await sub(bob, "room:s3", 2), { head: 5, acked: 1 });
    await eventually(() => rec.messages().length === 4, "seq 2..5");
    await ok(call(bob, "ack", { topic: "room:s3", seq: 5 }));
    // Moving back forgets later acks, drops the window and sends again from `from`.
    rec.clear();
    assert.deepEqual(await sub(bob, "room:s3", 4), { head: 5, acked: 3 });
    await eventually(() => rec.messages().length === 2, "seq 4..5 again");
    assert.deepEqual(
      rec.messages().map((m) => m.seq),
      [4, 5],
    );
    // `from` beyond the head: acked = head, nothing to send.
    rec.clear();
    assert.deepEqual(await sub(bob, "room:s3", 100), { head: 5, acked: 5 });
    await pub(alice, "room:s3", "s3-6");
    await eventually(() => rec.messages().length === 1, "seq 6");
    assert.equal(rec.messages()[0]!.seq, 6);
    // A replay on a new subscription of a topic never written.
    assert.deepEqual(await sub(bob, "room:s3-empty", 1), { head: 0, acked: 0 });
  });

  it("replay re-sends messages already sent and not acked, in order", async () => {
    for (let i = 1; i <= 3; i++) await pub(alice, "room:s4", `s4-${i}`);
    const bob = await join("bob", "s4");
    const rec = record(bob);
    await sub(bob, "room:s4", 1);
    await eventually(() => rec.messages().length === 3, "3");
    await sub(bob, "room:s4", 1);
    await eventually(() => rec.messages().length === 6, "3 again");
    assert.deepEqual(
      rec.messages().map((m) => m.seq),
      [1, 2, 3, 1, 2, 3],
    );
    // The acked cursor after a replay is from - 1: a reconnect sends everything again.
    await ok(call(bob, "ack", { topic: "room:s4", seq: 1 }));
    bob.close();
    const { rec: rec2 } = await rejoin("bob", "s4");
    await eventually(() => rec2.messages().length === 2, "2 and 3 after reconnect");
    assert.deepEqual(
      rec2.messages().map((m) => m.seq),
      [2, 3],
    );
  });

  it("answers subscribe before any messages it causes", async () => {
    for (let i = 1; i <= 3; i++) await pub(alice, "room:s5", `s5-${i}`);
    const bob = await join("bob", "s5");
    const rec = record(bob);
    // The callback runs as its packet is read, so its place among the events is the wire order.
    bob.emit("subscribe", { topic: "room:s5", from: 1 }, (r) => rec.events.push({ event: "reply", data: r }));
    await eventually(() => rec.messages().length === 3, "3");
    assert.equal(rec.events[0]!.event, "reply");
  });

  it("unsubscribe deletes the subscription: ok without one, nothing sent after the reply, new at the head later", async () => {
    const bob = await join("bob", "s6");
    await ok(call(bob, "unsubscribe", { topic: "room:s6" }));
    const rec = record(bob);
    await sub(bob, "room:s6");
    await pub(alice, "room:s6", "s6-1");
    await eventually(() => rec.messages().length === 1, "1");
    // Publish a burst and unsubscribe while it is being delivered.
    for (let i = 2; i <= 30; i++) send(alice, "publish", { id: `s6-${i}`, topic: "room:s6", payload: i });
    const r = await call(bob, "unsubscribe", { topic: "room:s6" });
    assert.deepEqual(r, { ok: true });
    const count = rec.messages().length;
    await pub(alice, "room:s6", "s6-31");
    await sleep(150);
    assert.equal(rec.messages().length, count, "nothing of the topic after the unsubscribe reply");
    // Not resumed on reconnect.
    bob.close();
    const { socket: again, rec: rec2 } = await rejoin("bob", "s6");
    await sleep(100);
    assert.equal(rec2.messages("room:s6").length, 0);
    // A later subscribe is new and starts at the head.
    assert.deepEqual(await sub(again, "room:s6"), { head: 31, acked: 31 });
  });

  it("lets a user subscribe to rooms and to its own inbox only; dead letters as their topic", async () => {
    const bob = await join("bob", "s7");
    await sub(bob, "user:bob");
    await fails(call(bob, "subscribe", { topic: "user:alice" }), "FORBIDDEN");
    await sub(bob, "dead:room:s7:workers");
    await sub(bob, "dead:user:bob:workers");
    await sub(bob, "dead:broadcast:workers");
    await fails(call(bob, "subscribe", { topic: "dead:user:alice:workers" }), "FORBIDDEN");
    // Inboxes are case-sensitive.
    await fails(call(bob, "subscribe", { topic: "user:Bob" }), "FORBIDDEN");
    await pub(alice, "user:bob", "s7-dm");
    const rec = record(bob);
    await pub(alice, "user:bob", "s7-dm2");
    await eventually(() => rec.messages("user:bob").length === 1, "the direct message");
    assert.equal(rec.messages("user:bob")[0]!.from, "alice");
  });
});

describe("protocol: broadcast", () => {
  let server: TestServer;
  let admin: RawSocket;
  before(async () => {
    server = await startServer();
    admin = await connect(server.url, { user: "admin", clientId: "admin" });
  });
  after(async () => {
    admin.close();
    await server.close();
  });

  it("subscribes every new (user, clientId) at the head on its first connect, durably", async () => {
    await pub(admin, "broadcast", "b-1");
    await pub(admin, "broadcast", "b-2");
    let { socket: bob, rec } = await connectRecorded(server.url, { user: "bob", clientId: "b" });
    // Subscribed without asking, at the head: b-1 and b-2 are not sent.
    assert.deepEqual(await sub(bob, "broadcast"), { head: 2, acked: 2 });
    await pub(admin, "broadcast", "b-3");
    await eventually(() => rec.messages("broadcast").length === 1, "b-3");
    assert.equal(rec.messages("broadcast")[0]!.seq, 3);
    // Acked like any other: unacked b-3 comes again after a reconnect, with b-4 sent meanwhile.
    bob.close();
    await pub(admin, "broadcast", "b-4");
    ({ socket: bob, rec } = await connectRecorded(server.url, { user: "bob", clientId: "b" }));
    await eventually(() => rec.messages("broadcast").length === 2, "b-3 and b-4");
    assert.deepEqual(
      rec.messages("broadcast").map((m) => m.seq),
      [3, 4],
    );
    await ok(call(bob, "ack", { topic: "broadcast", seq: 4 }));
    bob.close();
    ({ socket: bob, rec } = await connectRecorded(server.url, { user: "bob", clientId: "b" }));
    assert.deepEqual(await sub(bob, "broadcast"), { head: 4, acked: 4 });
    await sleep(50);
    assert.equal(rec.messages().length, 0);
    bob.close();
  });

  it("refuses to unsubscribe from broadcast, and the subscription stays", async () => {
    const bob = await connect(server.url, { user: "bob", clientId: "b2" });
    const rec = record(bob);
    await fails(call(bob, "unsubscribe", { topic: "broadcast" }), "FORBIDDEN");
    const seq = await pub(admin, "broadcast", "b2-1");
    await eventually(() => rec.messages("broadcast").length === 1, "still subscribed");
    assert.equal(rec.messages("broadcast")[0]!.seq, seq);
    bob.close();
  });
});
