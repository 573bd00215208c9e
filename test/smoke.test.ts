import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { collect, connect, type RawSocket, startServer, type TestServer } from "./helpers.js";

describe("hub - publish, subscribe, ack", () => {
  let server: TestServer;
  let alice: RawSocket;
  let bob: RawSocket;
  before(async () => {
    server = await startServer();
    alice = await connect(server.url, { user: "alice" });
    bob = await connect(server.url, { user: "bob" });
  });
  after(async () => {
    alice.close();
    bob.close();
    await server.close();
  });

  it("delivers published messages in seq order to a subscriber", async () => {
    const got = collect(bob, { ack: true });
    assert.deepEqual(await bob.emitWithAck("subscribe", { topic: "room:smoke" }), { ok: true, head: 0, acked: 0 });
    for (let i = 1; i <= 20; i++) {
      const reply = await alice.emitWithAck("publish", { id: `m${i}`, topic: "room:smoke", payload: { i } });
      assert.equal(reply.ok && reply.seq, i);
    }
    await got.until(20);
    assert.deepEqual(
      got.messages.map((m) => [m.seq, m.from, m.payload]),
      Array.from({ length: 20 }, (_, k) => [k + 1, "alice", { i: k + 1 }]),
    );
  });
});
