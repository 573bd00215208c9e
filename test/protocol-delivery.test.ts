/**
 * PROTOCOL.md "Delivery guarantees" 1-4 for plain streams: nothing lost (also across SIGKILL),
 * ascending seq, no duplicate within a connection, redelivery of the unacked after a reconnect,
 * HERALD_MAX_INFLIGHT flow control, and `gap` for what retention removed.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { GapEvent, Message } from "../shared/protocol.js";
import { call, connectRecorded, eventually, ok, pub, send, sub } from "./conformance.js";
import {
  collect,
  connect,
  type RawSocket,
  sleep,
  spawnServer,
  startServer,
  type TestServer,
  tempDir,
} from "./helpers.js";

const MAX_INFLIGHT = 5;
const seqs = (messages: Message[]) => messages.map((m) => m.seq);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("protocol: delivery", () => {
  let server: TestServer;
  let alice: RawSocket;
  const open: RawSocket[] = [];
  const rejoin = async (user: string, clientId: string) => {
    const r = await connectRecorded(server.url, { user, clientId });
    open.push(r.socket);
    return r;
  };
  before(async () => {
    server = await startServer({ maxInflight: MAX_INFLIGHT, retentionMessages: 3 });
    alice = await connect(server.url, { user: "alice", clientId: "alice" });
    open.push(alice);
  });
  after(async () => {
    for (const s of open) s.close();
    await server.close();
  });

  it("1-2: delivers every answered publish once, in ascending seq, from concurrent publishers", async () => {
    const bob = await connect(server.url, { user: "bob", clientId: "d1" });
    const carol = await connect(server.url, { user: "carol", clientId: "d1" });
    open.push(bob, carol);
    const got = collect(bob, { ack: true });
    await sub(bob, "room:d1");
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < 60; i++) {
      sends.push(ok(call(alice, "publish", { id: `d1-a${i}`, topic: "room:d1", payload: i })));
      sends.push(ok(call(carol, "publish", { id: `d1-c${i}`, topic: "room:d1", payload: i })));
    }
    // One-way sends count too.
    for (let i = 0; i < 20; i++) send(alice, "publish", { id: `d1-o${i}`, topic: "room:d1", payload: i });
    await Promise.all(sends);
    await got.until(140);
    await sleep(100);
    assert.deepEqual(seqs(got.messages), range(1, 140));
    for (const batch of got.messages) assert.ok(batch.seq > 0);
  });

  it("3: never has more than HERALD_MAX_INFLIGHT unacked messages out per stream; acks free the window", async () => {
    const { socket: bob, rec } = await rejoin("bob", "d2");
    await sub(bob, "room:d2");
    await sub(bob, "room:d2b");
    for (let i = 1; i <= 20; i++) {
      await pub(alice, "room:d2", `d2-${i}`);
      await pub(alice, "room:d2b", `d2b-${i}`);
    }
    await eventually(() => rec.messages().length === 2 * MAX_INFLIGHT, "two full windows");
    await sleep(150);
    assert.deepEqual(seqs(rec.messages("room:d2")), range(1, 5));
    assert.deepEqual(seqs(rec.messages("room:d2b")), range(1, 5));
    for (const batch of rec.of("messages") as Message[][]) assert.ok(batch.length <= MAX_INFLIGHT);
    // A partial ack frees as many slots as it acks.
    await ok(call(bob, "ack", { topic: "room:d2", seq: 3 }));
    await eventually(() => rec.messages("room:d2").length === 8, "3 more");
    await sleep(100);
    assert.deepEqual(seqs(rec.messages("room:d2")), range(1, 8));
    assert.equal(rec.messages("room:d2b").length, 5, "the other stream's window is its own");
    // An ack beyond what was sent counts only up to what was sent.
    await ok(call(bob, "ack", { topic: "room:d2", seq: 1000 }));
    await eventually(() => rec.messages("room:d2").length === 13, "the next window");
    await sleep(100);
    assert.deepEqual(seqs(rec.messages("room:d2")), range(1, 13));
    bob.close();
    const again = await rejoin("bob", "d2");
    // The cursor is 8 (clamped), so 9.. come again, a window at a time.
    await eventually(() => again.rec.messages("room:d2").length === 5, "9..13");
    await sleep(100);
    assert.deepEqual(seqs(again.rec.messages("room:d2")), range(9, 13));
    assert.deepEqual(seqs(again.rec.messages("room:d2b")), range(1, 5));
  });

  it("2: after a reconnect, what was sent and not acked is sent again, then the rest", async () => {
    const first = await rejoin("bob", "d3");
    await sub(first.socket, "room:d3");
    for (let i = 1; i <= 5; i++) await pub(alice, "room:d3", `d3-${i}`);
    await eventually(() => first.rec.messages().length === 5, "5");
    await ok(call(first.socket, "ack", { topic: "room:d3", seq: 2 }));
    // An ack that goes back is stale and changes nothing.
    await ok(call(first.socket, "ack", { topic: "room:d3", seq: 1 }));
    first.socket.close();
    await pub(alice, "room:d3", "d3-6");
    const second = await rejoin("bob", "d3");
    await eventually(() => second.rec.messages().length === 4, "3..6");
    // The ack of the last one, without a callback (it is optional).
    send(second.socket, "ack", { topic: "room:d3", seq: 6 });
    await sleep(100);
    assert.deepEqual(seqs(second.rec.messages()), range(3, 6));
    second.socket.close();
    const third = await rejoin("bob", "d3");
    await sleep(150);
    assert.equal(third.rec.messages().length, 0);
  });

  it("2: an ack sent right before the client goes away counts", async () => {
    const first = await rejoin("bob", "d7");
    await sub(first.socket, "room:d7");
    for (let i = 1; i <= 3; i++) await pub(alice, "room:d7", `d7-${i}`);
    await eventually(() => first.rec.messages().length === 3, "3");
    // The ack and the disconnect leave in one write: the server reads them together.
    send(first.socket, "ack", { topic: "room:d7", seq: 3 });
    first.socket.close();
    const second = await rejoin("bob", "d7");
    await sleep(150);
    assert.deepEqual(seqs(second.rec.messages()), []);
    second.socket.close();
  });

  it("4: a gap for messages retention removed comes before later messages, and again until acked", async () => {
    const first = await rejoin("bob", "d4");
    await sub(first.socket, "room:d4");
    first.socket.close();
    for (let i = 1; i <= 10; i++) await pub(alice, "room:d4", `d4-${i}`);
    await server.herald.retention.sweep(); // keeps 8..10
    const second = await rejoin("bob", "d4");
    await eventually(() => second.rec.messages().length === 3, "8..10");
    const order = second.rec.events.filter((e) => e.event === "gap" || e.event === "messages");
    assert.deepEqual(order[0], { event: "gap", data: { topic: "room:d4", from: 1, to: 7 } });
    assert.deepEqual(seqs(second.rec.messages()), range(8, 10));
    // Not acked: sent again after a reconnect.
    second.socket.close();
    const third = await rejoin("bob", "d4");
    await eventually(() => third.rec.messages().length === 3, "8..10 again");
    assert.deepEqual(third.rec.of("gap"), [{ topic: "room:d4", from: 1, to: 7 }]);
    assert.equal(
      third.rec.events.findIndex((e) => e.event === "gap") < third.rec.events.findIndex((e) => e.event === "messages"),
      true,
    );
    // An ack of `to` moves past the gap.
    await ok(call(third.socket, "ack", { topic: "room:d4", seq: 7 }));
    third.socket.close();
    const fourth = await rejoin("bob", "d4");
    await eventually(() => fourth.rec.messages().length === 3, "8..10 without a gap");
    assert.deepEqual(fourth.rec.of("gap"), []);
    assert.deepEqual(seqs(fourth.rec.messages()), range(8, 10));
  });

  it("4: a gap inside a live stream whose window was full; the gap holds no window slot", async () => {
    const { socket: bob, rec } = await rejoin("bob", "d5");
    await sub(bob, "room:d5");
    for (let i = 1; i <= 12; i++) await pub(alice, "room:d5", `d5-${i}`);
    await eventually(() => rec.messages().length === MAX_INFLIGHT, "a window");
    await server.herald.retention.sweep(); // keeps 10..12
    await ok(call(bob, "ack", { topic: "room:d5", seq: 5 }));
    await eventually(() => rec.messages().length === 8, "10..12");
    assert.deepEqual(rec.of("gap"), [{ topic: "room:d5", from: 6, to: 9 }]);
    const after = rec.events.slice(rec.events.findIndex((e) => e.event === "gap"));
    assert.deepEqual(
      seqs(after.filter((e) => e.event === "messages").flatMap((e) => e.data as Message[])),
      [10, 11, 12],
    );
    // Three messages out, window 5: two more can come while nothing is acked.
    await pub(alice, "room:d5", "d5-13");
    await pub(alice, "room:d5", "d5-14");
    await pub(alice, "room:d5", "d5-15");
    await eventually(() => rec.messages().length === 10, "13 and 14");
    await sleep(100);
    assert.deepEqual(seqs(rec.messages()).slice(5), [10, 11, 12, 13, 14]);
  });

  it("4: a gap covering the whole log when retention removed every message", async () => {
    const first = await rejoin("bob", "d6");
    await sub(first.socket, "room:d6");
    first.socket.close();
    for (let i = 1; i <= 4; i++) await pub(alice, "room:d6", `d6-${i}`);
    await server.herald.retention.sweep(); // keeps 2..4
    const second = await rejoin("bob", "d6");
    await eventually(() => second.rec.messages().length === 3, "2..4");
    assert.deepEqual(second.rec.of("gap") as GapEvent[], [{ topic: "room:d6", from: 1, to: 1 }]);
  });
});

describe("protocol: delivery across a crash", () => {
  it("1: loses no answered publish when the server is SIGKILLed; the subscriber resumes", async () => {
    const dataDir = tempDir();
    let server = await spawnServer(dataDir);
    const sockets: RawSocket[] = [];
    try {
      const bob = await connect(server.url, { user: "bob", clientId: "crash" });
      const alice = await connect(server.url, { user: "alice", clientId: "crash" });
      sockets.push(bob, alice);
      await sub(bob, "room:crash");
      const replies = await Promise.all(
        range(1, 30).map((i) => ok(call(alice, "publish", { id: `k${i}`, topic: "room:crash", payload: i }))),
      );
      await server.kill();
      server = await spawnServer(dataDir, {}, server.port);
      const { socket, rec } = await connectRecorded(server.url, { user: "bob", clientId: "crash" });
      sockets.push(socket);
      await eventually(() => rec.messages().length === 30, "30 after the crash", 10000);
      assert.deepEqual(seqs(rec.messages()), range(1, 30));
      assert.deepEqual(
        rec.messages().map((m) => m.ts),
        replies.map((r) => r.ts).sort((a, b) => (a as number) - (b as number)),
      );
    } finally {
      for (const s of sockets) s.close();
      await server.stop();
    }
  });
});
