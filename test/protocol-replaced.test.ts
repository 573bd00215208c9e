/**
 * PROTOCOL.md "Transport and connection": a second live connection of the same (user, clientId)
 * replaces the first: `error` REPLACED then disconnect for the old one, its acks count, delivery
 * on the new one starts after the acked cursor, and no presence event for the hand-over.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Message } from "../shared/protocol.js";
import { call, connectRecorded, disconnected, eventually, ok, pub, record, sub } from "./conformance.js";
import { connect, type RawSocket, sleep, startServer, type TestServer } from "./helpers.js";

const seqs = (messages: Message[]) => messages.map((m) => m.seq);

describe("protocol: REPLACED", () => {
  let server: TestServer;
  let alice: RawSocket;
  const open: RawSocket[] = [];
  before(async () => {
    server = await startServer();
    alice = await connect(server.url, { user: "alice", clientId: "alice" });
    open.push(alice);
  });
  after(async () => {
    for (const s of open) s.close();
    await server.close();
  });

  it("sends REPLACED then disconnects the old socket; the new one resumes after the acked cursor", async () => {
    const old = await connectRecorded(server.url, { user: "bob", clientId: "tab" });
    open.push(old.socket);
    await sub(old.socket, "room:r1");
    for (let i = 1; i <= 5; i++) await pub(alice, "room:r1", `r1-${i}`);
    await eventually(() => old.rec.messages().length === 5, "5");
    await ok(call(old.socket, "ack", { topic: "room:r1", seq: 3 }));
    const reason = new Promise<string>((resolve) => old.socket.once("disconnect", resolve));

    const fresh = await connectRecorded(server.url, { user: "bob", clientId: "tab" });
    open.push(fresh.socket);
    assert.equal(await reason, "io server disconnect");
    const events = old.rec.events.map((e) => e.event);
    const error = old.rec.events.find((e) => e.event === "error");
    assert.ok(error, `the old socket got ${events.join(", ")}`);
    const err = error.data as { code: string; message: string };
    assert.equal(err.code, "REPLACED");
    assert.equal(typeof err.message, "string");
    assert.deepEqual(Object.keys(err).sort(), ["code", "message"]);
    assert.equal(events.at(-1), "error", "nothing after REPLACED");

    // Acked 3 on the old socket: 4 and 5 come again, then new messages, on the new socket only.
    await eventually(() => fresh.rec.messages().length === 2, "4 and 5");
    await pub(alice, "room:r1", "r1-6");
    await eventually(() => fresh.rec.messages().length === 3, "6");
    assert.deepEqual(seqs(fresh.rec.messages()), [4, 5, 6]);
    assert.equal(old.rec.messages().length, 5);
    assert.deepEqual(fresh.rec.of("error"), []);
  });

  it("counts a one-way ack the old socket sent before it was replaced", async () => {
    const old = await connectRecorded(server.url, { user: "bob", clientId: "tab2" });
    open.push(old.socket);
    await sub(old.socket, "room:r2");
    for (let i = 1; i <= 4; i++) await pub(alice, "room:r2", `r2-${i}`);
    await eventually(() => old.rec.messages().length === 4, "4");
    old.socket.emit("ack", { topic: "room:r2", seq: 4 });
    // A round trip on the old socket: the ack has been received before the new connection comes.
    await ok(call(old.socket, "history", { topic: "room:r2", limit: 1 }));
    const fresh = await connectRecorded(server.url, { user: "bob", clientId: "tab2" });
    open.push(fresh.socket);
    await disconnected(old.socket);
    assert.deepEqual(await sub(fresh.socket, "room:r2"), { head: 4, acked: 4 });
    await sleep(100);
    assert.equal(fresh.rec.messages().length, 0);
  });

  it("emits no presence event for the hand-over, and presence still lists the user", async () => {
    const carol = await connect(server.url, { user: "carol", clientId: "carol" });
    open.push(carol);
    const carolRec = record(carol);
    await sub(carol, "room:r3");
    const old = await connect(server.url, { user: "bob", clientId: "tab3" });
    open.push(old);
    await sub(old, "room:r3");
    await eventually(() => carolRec.of("presence").length === 1, "bob online");
    assert.deepEqual(carolRec.of("presence"), [{ topic: "room:r3", user: "bob", online: true }]);
    const fresh = await connect(server.url, { user: "bob", clientId: "tab3" });
    open.push(fresh);
    await disconnected(old);
    await sleep(150);
    assert.equal(carolRec.of("presence").length, 1, `presence events: ${JSON.stringify(carolRec.of("presence"))}`);
    assert.deepEqual(await call(carol, "presence", { topic: "room:r3" }), { ok: true, users: ["bob", "carol"] });
    // The new connection's own departure is announced as usual.
    fresh.close();
    await eventually(() => carolRec.of("presence").length === 2, "bob offline");
    assert.deepEqual(carolRec.of("presence")[1], { topic: "room:r3", user: "bob", online: false });
  });

  it("replaces only the same (user, clientId)", async () => {
    const a = await connectRecorded(server.url, { user: "dave", clientId: "x1" });
    const b = await connectRecorded(server.url, { user: "dave", clientId: "x2" });
    const c = await connectRecorded(server.url, { user: "erin", clientId: "x1" });
    open.push(a.socket, b.socket, c.socket);
    for (const { socket } of [a, b, c]) await sub(socket, "room:r4");
    await pub(alice, "room:r4", "r4-1");
    await eventually(() => [a, b, c].every((s) => s.rec.messages().length === 1), "all three");
    for (const { socket, rec } of [a, b, c]) {
      assert.equal(socket.connected, true);
      assert.deepEqual(rec.of("error"), []);
    }
  });

  it("a third connection replaces the second the same way", async () => {
    const first = await connectRecorded(server.url, { user: "bob", clientId: "tab5" });
    open.push(first.socket);
    await sub(first.socket, "room:r5");
    const second = await connectRecorded(server.url, { user: "bob", clientId: "tab5" });
    open.push(second.socket);
    await disconnected(first.socket);
    const third = await connectRecorded(server.url, { user: "bob", clientId: "tab5" });
    open.push(third.socket);
    await disconnected(second.socket);
    assert.deepEqual(
      second.rec.of("error").map((e) => (e as { code: string }).code),
      ["REPLACED"],
    );
    await pub(alice, "room:r5", "r5-1");
    await eventually(() => third.rec.messages().length === 1, "delivery on the third");
    assert.equal(first.rec.messages().length + second.rec.messages().length, 0);
  });
});
