/** PROTOCOL.md "Messages", `publish`, "Topics" (the log): replies, seq, ts, dedup, one-way sends. */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Message } from "../shared/protocol.js";
import { call, eventually, fails, ok, pub, record, send, sub } from "./conformance.js";
import { connect, type RawSocket, startServer, type TestServer, tempDir } from "./helpers.js";

const MAX_PAYLOAD = 1000;

describe("protocol: publish", () => {
  let server: TestServer;
  let alice: RawSocket;
  let bob: RawSocket;
  before(async () => {
    server = await startServer({ maxPayload: MAX_PAYLOAD });
    alice = await connect(server.url, { user: "alice" });
    bob = await connect(server.url, { user: "bob" });
  });
  after(async () => {
    alice.close();
    bob.close();
    await server.close();
  });

  it("answers { ok, seq, ts, duplicate: false } with gapless seqs from 1 and ts that never decreases", async () => {
    const started = Date.now();
    let lastTs = 0;
    for (let i = 1; i <= 5; i++) {
      const r = await ok(call(alice, "publish", { id: `p1-${i}`, topic: "room:p1", payload: i }));
      assert.deepEqual(Object.keys(r).sort(), ["duplicate", "ok", "seq", "ts"]);
      assert.equal(r.seq, i);
      assert.equal(r.duplicate, false);
      assert.equal(typeof r.ts, "number");
      assert.ok((r.ts as number) >= lastTs);
      assert.ok((r.ts as number) >= started - 1000 && (r.ts as number) <= Date.now() + 1000);
      lastTs = r.ts as number;
    }
    // Every topic has its own sequence.
    assert.equal(await pub(alice, "room:p1-other", "p1-o"), 1);
  });

  it("delivers the message with the server's from, ts and seq, key only when given, to the publisher too", async () => {
    const rec = record(alice);
    const bobRec = record(bob);
    await sub(alice, "room:p2");
    await sub(bob, "room:p2");
    const r1 = await ok(call(alice, "publish", { id: "p2-a", topic: "room:p2", payload: { x: [1, "é"] } }));
    const r2 = await ok(call(alice, "publish", { id: "p2-b", topic: "room:p2", payload: "k", key: "order-1" }));
    await eventually(() => rec.messages("room:p2").length === 2 && bobRec.messages("room:p2").length === 2, "2 msgs");
    const expected: Message[] = [
      { id: "p2-a", topic: "room:p2", seq: 1, from: "alice", ts: r1.ts as number, payload: { x: [1, "é"] } },
      { id: "p2-b", topic: "room:p2", seq: 2, from: "alice", ts: r2.ts as number, key: "order-1", payload: "k" },
    ];
    assert.deepEqual(rec.messages("room:p2"), expected);
    assert.deepEqual(bobRec.messages("room:p2"), expected);
    for (const m of bobRec.messages("room:p2")) assert.equal("group" in m || "attempt" in m, false);
  });

  it("takes any JSON value as payload", async () => {
    const rec = record(bob);
    await sub(bob, "room:p3");
    const payloads = [null, 0, -1.5, "", "x", true, false, [], {}, [null, { a: { b: [1, 2] } }], "😀 ünïcödé"];
    for (const [i, payload] of payloads.entries()) await pub(alice, "room:p3", `p3-${i}`, payload);
    await eventually(() => rec.messages("room:p3").length === payloads.length, "all payloads");
    assert.deepEqual(
      rec.messages("room:p3").map((m) => m.payload),
      payloads,
    );
  });

  it("dedups per publisher: the same id again answers the first seq and ts and stores nothing", async () => {
    const rec = record(bob);
    await sub(bob, "room:p4");
    const first = await ok(call(alice, "publish", { id: "p4-dup", topic: "room:p4", payload: 1 }));
    // Same id, other payload, other topic: still the first one's seq and ts.
    const again = await ok(call(alice, "publish", { id: "p4-dup", topic: "room:p4", payload: 2 }));
    const elsewhere = await ok(call(alice, "publish", { id: "p4-dup", topic: "room:p4-x", payload: 3 }));
    for (const r of [again, elsewhere]) {
      assert.deepEqual(r, { ok: true, seq: first.seq, ts: first.ts, duplicate: true });
    }
    // Another user may use the same id: deduplication is per publisher.
    const bobs = await ok(call(bob, "publish", { id: "p4-dup", topic: "room:p4", payload: 4 }));
    assert.equal(bobs.duplicate, false);
    assert.equal(bobs.seq, 2);
    await eventually(() => rec.messages("room:p4").length === 2, "2 messages");
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(
      rec.messages("room:p4").map((m) => [m.seq, m.from, m.payload]),
      [
        [1, "alice", 1],
        [2, "bob", 4],
      ],
    );
    const hist = await ok(call(alice, "history", { topic: "room:p4-x" }));
    assert.deepEqual(hist, { ok: true, messages: [], head: 0 });
  });

  it("dedups across socket and HTTP", async () => {
    const first = await ok(call(alice, "publish", { id: "p5-dup", topic: "room:p5", payload: 1 }));
    const res = await fetch(`${server.url}/api/v1/publish`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-herald-user": "alice" },
      body: JSON.stringify({ id: "p5-dup", topic: "room:p5", payload: 2 }),
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { seq: first.seq, ts: first.ts, duplicate: true });
    const viaHttp = await fetch(`${server.url}/api/v1/publish`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-herald-user": "alice" },
      body: JSON.stringify({ id: "p5-http", topic: "room:p5", payload: 3 }),
    });
    const body = (await viaHttp.json()) as { seq: number; ts: number };
    assert.deepEqual(await call(alice, "publish", { id: "p5-http", topic: "room:p5", payload: 4 }), {
      ok: true,
      seq: body.seq,
      ts: body.ts,
      duplicate: true,
    });
  });

  it("stores and delivers a one-way publish (no callback) like any other", async () => {
    const rec = record(bob);
    await sub(bob, "room:p6");
    for (let i = 1; i <= 3; i++) send(alice, "publish", { id: `p6-${i}`, topic: "room:p6", payload: i });
    await eventually(() => rec.messages("room:p6").length === 3, "3 one-way messages");
    assert.deepEqual(
      rec.messages("room:p6").map((m) => [m.seq, m.payload]),
      [
        [1, 1],
        [2, 2],
        [3, 3],
      ],
    );
  });

  it("answers many concurrent publishes each once, with distinct gapless seqs", async () => {
    const replies = await Promise.all(
      Array.from({ length: 50 }, (_, i) => ok(call(alice, "publish", { id: `p7-${i}`, topic: "room:p7", payload: i }))),
    );
    assert.deepEqual(
      replies.map((r) => r.seq).sort((a, b) => (a as number) - (b as number)),
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
  });

  it("lets anyone publish to a room and to any user's inbox, only the server to dead letters", async () => {
    assert.equal(await pub(bob, "user:alice", "p8-1"), 1);
    assert.equal(await pub(alice, "user:alice", "p8-2"), 2);
    await fails(call(alice, "publish", { id: "p8-3", topic: "dead:room:p8:g", payload: 1 }), "FORBIDDEN");
  });

  it("accepts a payload of exactly HERALD_MAX_PAYLOAD bytes of UTF-8 JSON and refuses one byte more", async () => {
    // "é" is 2 bytes in UTF-8: the limit counts bytes, not UTF-16 units.
    const exact = "é".repeat((MAX_PAYLOAD - 2) / 2);
    assert.equal(Buffer.byteLength(JSON.stringify(exact)), MAX_PAYLOAD);
    await pub(alice, "room:p9", "p9-1", exact);
    await fails(call(alice, "publish", { id: "p9-2", topic: "room:p9", payload: `${exact}x` }), "PAYLOAD_TOO_LARGE");
    const ascii = "a".repeat(MAX_PAYLOAD - 2);
    await pub(alice, "room:p9", "p9-3", ascii);
    await fails(call(alice, "publish", { id: "p9-4", topic: "room:p9", payload: `${ascii}a` }), "PAYLOAD_TOO_LARGE");
    // The refused ids were not taken.
    assert.equal(await pub(alice, "room:p9", "p9-2", 1), 3);
  });

  it("accepts keys of 1-128 chars", async () => {
    await ok(call(alice, "publish", { id: "p10-1", topic: "room:p10", payload: 1, key: "k" }));
    await ok(call(alice, "publish", { id: "p10-2", topic: "room:p10", payload: 1, key: "k".repeat(128) }));
    await fails(call(alice, "publish", { id: "p10-3", topic: "room:p10", payload: 1, key: "" }), "BAD_REQUEST");
    await fails(
      call(alice, "publish", { id: "p10-4", topic: "room:p10", payload: 1, key: "k".repeat(129) }),
      "BAD_REQUEST",
    );
  });

  it("accepts ids of 1-64 chars of [A-Za-z0-9_-] (uuid, ulid)", async () => {
    for (const id of ["a", "0", "_-", "x".repeat(64), crypto.randomUUID(), "01ARZ3NDEKTSV4RRFFQ69G5FAV"]) {
      await ok(call(alice, "publish", { id, topic: "room:p11", payload: 1 }));
    }
  });
});

describe("protocol: the log across restarts", () => {
  it("keeps seqs gapless and unreused after a restart and after retention removed every message", async () => {
    const dataDir = tempDir();
    let clock = Date.now();
    const now = () => clock;
    let server = await startServer({ dataDir, retentionMs: 60_000 }, { now });
    let alice = await connect(server.url, { user: "alice", clientId: "r1" });
    for (let i = 1; i <= 3; i++) assert.equal(await pub(alice, "room:r", `r-${i}`), i);
    clock += 120_000;
    assert.equal((await server.herald.retention.sweep()).messages, 3);
    assert.deepEqual(await ok(call(alice, "history", { topic: "room:r" })), { ok: true, messages: [], head: 3 });
    alice.close();
    await server.close();
    server = await startServer({ dataDir, retentionMs: 60_000 }, { now });
    try {
      alice = await connect(server.url, { user: "alice", clientId: "r1" });
      assert.deepEqual(await ok(call(alice, "history", { topic: "room:r" })), { ok: true, messages: [], head: 3 });
      assert.equal(await pub(alice, "room:r", "r-4"), 4);
      // Publish ids are kept as long as HERALD_RETENTION_MS: r-4 is a duplicate, r-1 (expired) is not.
      assert.equal((await ok(call(alice, "publish", { id: "r-4", topic: "room:r", payload: 1 }))).duplicate, true);
      assert.equal(await pub(alice, "room:r", "r-1"), 5);
      const msgs = (await ok(call(alice, "history", { topic: "room:r" }))).messages as Message[];
      assert.ok(msgs.every((m, i) => i === 0 || m.ts >= msgs[i - 1]!.ts));
      alice.close();
    } finally {
      await server.close();
    }
  });
});
