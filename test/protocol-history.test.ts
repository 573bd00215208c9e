/** PROTOCOL.md `history`: limit, before, after, both, the 500 cap, retention, head. */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Message } from "../shared/protocol.js";
import { call, ok, pub } from "./conformance.js";
import { connect, type RawSocket, startServer, type TestServer } from "./helpers.js";

const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

describe("protocol: history", () => {
  let server: TestServer;
  let alice: RawSocket;
  const page = async (args: Record<string, unknown>) => {
    const r = await ok(call(alice, "history", args));
    assert.deepEqual(Object.keys(r).sort(), ["head", "messages", "ok"]);
    return {
      seqs: (r.messages as Message[]).map((m) => m.seq),
      head: r.head as number,
      messages: r.messages as Message[],
    };
  };
  before(async () => {
    server = await startServer({ retentionMessages: 600 });
    alice = await connect(server.url, { user: "alice" });
    for (let i = 1; i <= 10; i++) {
      await ok(
        call(alice, "publish", { id: `h-${i}`, topic: "room:h", payload: { i }, ...(i === 3 ? { key: "k" } : {}) }),
      );
    }
  });
  after(async () => {
    alice.close();
    await server.close();
  });

  it("returns the newest messages in ascending seq, with the head, as delivered", async () => {
    const all = await page({ topic: "room:h" });
    assert.deepEqual(all.seqs, range(1, 10));
    assert.equal(all.head, 10);
    const third = all.messages[2]!;
    assert.deepEqual(Object.keys(third).sort(), ["from", "id", "key", "payload", "seq", "topic", "ts"]);
    assert.deepEqual(
      { ...third, ts: 0 },
      { id: "h-3", topic: "room:h", seq: 3, from: "alice", ts: 0, key: "k", payload: { i: 3 } },
    );
    assert.equal("key" in all.messages[0]!, false);
    assert.deepEqual((await page({ topic: "room:h", limit: 3 })).seqs, [8, 9, 10]);
  });

  it("pages before a seq (the newest below it) and after a seq (the oldest above it)", async () => {
    assert.deepEqual((await page({ topic: "room:h", before: 5, limit: 2 })).seqs, [3, 4]);
    assert.deepEqual((await page({ topic: "room:h", before: 5 })).seqs, [1, 2, 3, 4]);
    assert.deepEqual((await page({ topic: "room:h", before: 1 })).seqs, []);
    assert.deepEqual((await page({ topic: "room:h", before: 1000, limit: 2 })).seqs, [9, 10]);
    assert.deepEqual((await page({ topic: "room:h", after: 5, limit: 2 })).seqs, [6, 7]);
    assert.deepEqual((await page({ topic: "room:h", after: 0, limit: 2 })).seqs, [1, 2]);
    assert.deepEqual((await page({ topic: "room:h", after: 10 })).seqs, []);
    assert.deepEqual((await page({ topic: "room:h", after: 2, before: 6 })).seqs, [3, 4, 5]);
    assert.deepEqual((await page({ topic: "room:h", after: 2, before: 9, limit: 2 })).seqs, [3, 4]);
    assert.deepEqual((await page({ topic: "room:h", after: 5, before: 6 })).seqs, []);
    assert.deepEqual((await page({ topic: "room:h", after: 7, before: 3 })).seqs, []);
  });

  it("answers a topic never written with no messages and head 0", async () => {
    assert.deepEqual(await page({ topic: "room:never" }), { seqs: [], head: 0, messages: [] });
    assert.deepEqual((await page({ topic: "dead:room:h:g" })).head, 0);
  });

  it("defaults to 50 and counts a limit above 500 as 500", async () => {
    await Promise.all(
      range(1, 520).map((i) => ok(call(alice, "publish", { id: `big-${i}`, topic: "room:big", payload: i }))),
    );
    assert.deepEqual((await page({ topic: "room:big" })).seqs, range(471, 520));
    assert.deepEqual((await page({ topic: "room:big", limit: 100000 })).seqs, range(21, 520));
    assert.deepEqual((await page({ topic: "room:big", limit: 501, after: 0 })).seqs, range(1, 500));
    assert.deepEqual((await page({ topic: "room:big", limit: 500, before: 502 })).seqs, range(1, 501).slice(1));
  });
});

describe("protocol: history after retention", () => {
  it("leaves out messages retention removed and keeps the head", async () => {
    const server = await startServer({ retentionMessages: 3 });
    const alice = await connect(server.url, { user: "alice" });
    try {
      for (let i = 1; i <= 6; i++) await pub(alice, "room:r", `r-${i}`);
      await server.herald.retention.sweep();
      const r = await ok(call(alice, "history", { topic: "room:r" }));
      assert.deepEqual(
        (r.messages as Message[]).map((m) => m.seq),
        [4, 5, 6],
      );
      assert.equal(r.head, 6);
      const before = await ok(call(alice, "history", { topic: "room:r", before: 5 }));
      assert.deepEqual(
        (before.messages as Message[]).map((m) => m.seq),
        [4],
      );
      const afterOne = await ok(call(alice, "history", { topic: "room:r", after: 1, limit: 2 }));
      assert.deepEqual(
        (afterOne.messages as Message[]).map((m) => m.seq),
        [4, 5],
      );
    } finally {
      alice.close();
      await server.close();
    }
  });
});
