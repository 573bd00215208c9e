/**
 * PROTOCOL.md "Transactions": `prepare` stores a half message (no seq, nothing delivered);
 * `commit` gives it its seq and ts and delivers it; `rollback` drops it; every id rule shared with
 * `publish` (per publisher; CONFLICT, NOT_FOUND, duplicate); BACKLOG_FULL on commit leaving it
 * prepared; `txn-check` to the preparing client or else the user's newest connection, one check a
 * period, a rollback after the last; and all of it across a SIGKILL of the server.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Socket } from "socket.io-client";
import type { Message } from "../shared/protocol.js";
import { call, eventually, fails, ok, pub, sub } from "./conformance.js";
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

const CHECK_MS = 150;
const MAX_CHECKS = 3;

type CheckAnswer = (answer: unknown) => void;

/** Records each `txn-check`; `answer` says what to reply (undefined: no reply). */
function checks(socket: RawSocket, answer: (check: { id: string; topic: string }) => unknown = () => undefined) {
  const seen: { id: string; topic: string; at: number }[] = [];
  (socket as unknown as Socket).on("txn-check", (check: { id: string; topic: string }, cb: CheckAnswer) => {
    seen.push({ ...check, at: Date.now() });
    const a = answer(check);
    if (a !== undefined) cb(a);
  });
  return seen;
}

const prepare = (s: RawSocket, id: string, topic: string, payload: unknown = id, extra: object = {}) =>
  call(s, "prepare", { id, topic, payload, ...extra });

describe("protocol: transactions", () => {
  let server: TestServer;
  const open: RawSocket[] = [];
  const client = async (user: string, clientId?: string) => {
    const socket = await connect(server.url, clientId === undefined ? { user } : { user, clientId });
    open.push(socket);
    return socket;
  };
  before(async () => {
    server = await startServer({ txnCheckMs: CHECK_MS, txnMaxChecks: MAX_CHECKS, maxBacklog: 2, maxPayload: 1000 });
  });
  after(async () => {
    for (const s of open) s.close();
    await server.close();
  });

  it("delivers nothing until commit, which gives the message its seq and ts then; a repeat answers the same", async () => {
    const alice = await client("alice");
    const bob = await client("bob");
    await sub(bob, "room:t1");
    const got = collect(bob, { ack: true });
    await pub(alice, "room:t1", "t1-before");
    const prepared = Date.now();
    assert.deepEqual(await prepare(alice, "order-1", "room:t1", { order: 1 }, { key: "o1" }), {
      ok: true,
      duplicate: false,
    });
    await pub(alice, "room:t1", "t1-between");
    await sleep(50);
    assert.deepEqual(
      got.messages.map((m) => m.id),
      ["t1-before", "t1-between"],
      "the half message is not delivered",
    );
    assert.equal((await ok(call(bob, "history", { topic: "room:t1" }))).head, 2, "nor stored as a seq");
    const committed = await ok(call(alice, "commit", { id: "order-1" }));
    assert.deepEqual(Object.keys(committed).sort(), ["duplicate", "ok", "seq", "ts"]);
    assert.equal(committed.seq, 3, "its seq is the commit's, after what was published meanwhile");
    assert.equal(committed.duplicate, false);
    assert.ok((committed.ts as number) >= prepared + 50, "its ts is the commit's");
    await got.until(3);
    const m = got.messages[2]!;
    assert.deepEqual(
      [m.id, m.seq, m.ts, m.from, m.key, m.payload],
      ["order-1", 3, committed.ts, "alice", "o1", { order: 1 }],
    );
    assert.deepEqual(await call(alice, "commit", { id: "order-1" }), { ...committed, duplicate: true });
    assert.deepEqual(await prepare(alice, "order-1", "room:t1"), { ok: true, duplicate: true });
    await fails(call(alice, "rollback", { id: "order-1" }), "CONFLICT");
    // A committed id is a published one: publishing it again is a duplicate.
    const again = await ok(call(alice, "publish", { id: "order-1", topic: "room:t1", payload: 1 }));
    assert.deepEqual([again.seq, again.duplicate], [3, true]);
    await sleep(50);
    assert.equal(got.messages.length, 3, "delivered once");
  });

  it("shares ids with publish: CONFLICT, NOT_FOUND, duplicate, a rolled-back id free again, per publisher", async () => {
    const alice = await client("alice");
    const bob = await client("bob");
    assert.deepEqual(await prepare(alice, "t2-a", "room:t2"), { ok: true, duplicate: false });
    assert.deepEqual(await prepare(alice, "t2-a", "room:t2", "other"), { ok: true, duplicate: true });
    await fails(call(alice, "publish", { id: "t2-a", topic: "room:t2", payload: 1 }), "CONFLICT");
    // Another publisher's id space is its own.
    assert.deepEqual(await prepare(bob, "t2-a", "room:t2"), { ok: true, duplicate: false });
    await ok(call(bob, "rollback", { id: "t2-a" }));
    await fails(call(bob, "commit", { id: "t2-a" }), "NOT_FOUND");
    // A published id: prepare is a duplicate, commit NOT_FOUND (it was never prepared).
    await pub(alice, "room:t2", "t2-pub");
    assert.deepEqual(await prepare(alice, "t2-pub", "room:t2"), { ok: true, duplicate: true });
    await fails(call(alice, "commit", { id: "t2-pub" }), "NOT_FOUND");
    await fails(call(alice, "commit", { id: "t2-never" }), "NOT_FOUND");
    // Rollback of a pending and of a rolled-back id is ok; the id is free again.
    assert.deepEqual(await call(alice, "rollback", { id: "t2-a" }), { ok: true });
    assert.deepEqual(await call(alice, "rollback", { id: "t2-a" }), { ok: true });
    await fails(call(alice, "commit", { id: "t2-a" }), "NOT_FOUND");
    const seq = await pub(alice, "room:t2", "t2-a", "now a publish");
    assert.equal(seq, 2, "the rolled-back message never took a seq");
  });

  it("refuses bad input in PROTOCOL's order", async () => {
    const alice = await client("alice");
    await fails(call(alice, "prepare", { id: "bad id", topic: "room:t3", payload: 1 }), "BAD_REQUEST");
    await fails(call(alice, "prepare", { id: "x", topic: "room:t3" }), "BAD_REQUEST");
    await fails(call(alice, "prepare", { id: "x", topic: "room:t3", payload: 1, extra: 1 }), "BAD_REQUEST");
    await fails(call(alice, "commit", { id: "x", topic: "room:t3" }), "BAD_REQUEST");
    await fails(call(alice, "rollback", {}), "BAD_REQUEST");
    await fails(call(alice, "prepare", { id: "x", topic: "nope", payload: 1 }), "INVALID_TOPIC");
    await fails(call(alice, "prepare", { id: "x", topic: "dead:room:a:g", payload: 1 }), "FORBIDDEN");
    await fails(call(alice, "prepare", { id: "x", topic: "room:t3", payload: "p".repeat(2000) }), "PAYLOAD_TOO_LARGE");
    await fails(call(alice, "commit", { id: "x" }), "NOT_FOUND");
  });

  it("refuses a commit with BACKLOG_FULL and keeps the message prepared", async () => {
    const alice = await client("alice");
    const w = await client("w");
    await ok(call(w, "subscribe", { topic: "room:t4", group: "slow" }));
    const got: Message[] = [];
    w.on("messages", (batch) => got.push(...batch));
    await pub(alice, "room:t4", "t4-1");
    await pub(alice, "room:t4", "t4-2");
    await ok(prepare(alice, "t4-txn", "room:t4"));
    const err = await fails(call(alice, "commit", { id: "t4-txn" }), "BACKLOG_FULL");
    assert.ok(err.retryAfterMs! > 0);
    await fails(call(alice, "publish", { id: "t4-txn", topic: "room:t4", payload: 1 }), "BACKLOG_FULL");
    await eventually(() => got.length === 2, "2 delivered");
    await ok(call(w, "ack", { topic: "room:t4", seqs: [1, 2], group: "slow" }));
    const committed = await ok(call(alice, "commit", { id: "t4-txn" }));
    assert.equal(committed.seq, 3);
  });

  it("asks the preparing client with txn-check each period and commits or rolls back on its answer", async () => {
    const alice = await client("alice", "t5");
    const watcher = await client("bob");
    await sub(watcher, "room:t5");
    const got = collect(watcher, { ack: true });
    const decisions = new Map<string, string>([
      ["t5-commit", "commit"],
      ["t5-rollback", "rollback"],
    ]);
    const seen = checks(alice, (c) => ({ state: decisions.get(c.id) ?? "unknown" }));
    await ok(prepare(alice, "t5-commit", "room:t5"));
    await ok(prepare(alice, "t5-rollback", "room:t5"));
    await got.until(1, 3000);
    assert.deepEqual(
      got.messages.map((m) => m.id),
      ["t5-commit"],
    );
    await eventually(() => seen.some((c) => c.id === "t5-rollback"), "a check of the other");
    await sleep(50);
    await fails(call(alice, "commit", { id: "t5-rollback" }), "NOT_FOUND");
    // A commit answer commits exactly as commit does: a repeat answers the same seq.
    const again = await ok(call(alice, "commit", { id: "t5-commit" }));
    assert.deepEqual([again.seq, again.duplicate], [1, true]);
    assert.deepEqual(
      seen.map((c) => [c.id, c.topic]).sort(),
      [
        ["t5-commit", "room:t5"],
        ["t5-rollback", "room:t5"],
      ],
      "one check each: the answer decided",
    );
  });

  it("counts a check each period, asks the user's newest connection when the preparing one is gone, rolls back after the last", async () => {
    const preparer = await client("carol", "t6-a");
    const prepared = Date.now();
    await ok(prepare(preparer, "t6", "room:t6"));
    const seenFirst = checks(preparer, () => ({ state: "unknown" }));
    await eventually(() => seenFirst.length === 1, "the first check", 3000);
    preparer.close();
    const other = await client("carol", "t6-b");
    const seenOther = checks(other, () => "not an answer");
    await eventually(() => seenFirst.length + seenOther.length === MAX_CHECKS, "every check", 3000);
    assert.ok(seenOther.length >= 1, "the newest connection is asked once the preparing one is gone");
    // The checks come one a period, the first after one period.
    const times = [...seenFirst, ...seenOther].map((c) => c.at - prepared);
    for (const [i, t] of times.entries()) {
      assert.ok(t >= CHECK_MS * (i + 1) - 20, `check ${i + 1} at ${t} ms`);
    }
    // After the last check's period it is rolled back (a commit now would say; it would also commit).
    await sleep(CHECK_MS + 300);
    await fails(call(other, "commit", { id: "t6" }), "NOT_FOUND");
    assert.equal(seenFirst.length + seenOther.length, MAX_CHECKS, "no check after the last");
  });

  it("counts periods with nobody to ask, and rolls back all the same", async () => {
    const dave = await client("dave", "t7");
    await ok(prepare(dave, "t7", "room:t7"));
    dave.close();
    await sleep(CHECK_MS * (MAX_CHECKS + 1) + 300);
    const back = await client("dave", "t7");
    await fails(call(back, "commit", { id: "t7" }), "NOT_FOUND");
  });
});

describe("protocol: transactions across a SIGKILL", () => {
  it("keeps prepared messages and their checks' clock; a commit after the restart gets the next seq", async () => {
    const dataDir = tempDir();
    const [checkMs, maxChecks] = [1000, 3];
    const env = { HERALD_TXN_CHECK_MS: String(checkMs), HERALD_TXN_MAX_CHECKS: String(maxChecks) };
    let server = await spawnServer(dataDir, env);
    let alice = await connect(server.url, { user: "alice", clientId: "k" });
    await pub(alice, "room:k", "k-1");
    const prepared = Date.now();
    for (const id of ["k-commit", "k-rollback", "k-checked"]) await ok(prepare(alice, id, "room:k"));
    const before = checks(alice, () => ({ state: "unknown" }));
    await eventually(() => before.some((c) => c.id === "k-checked"), "the first check", 5000);
    await server.kill();
    alice.close();

    server = await spawnServer(dataDir, env);
    try {
      alice = await connect(server.url, { user: "alice", clientId: "k" });
      checks(alice, (c) => (c.id === "k-commit" ? { state: "unknown" } : undefined));
      await fails(call(alice, "publish", { id: "k-commit", topic: "room:k", payload: 1 }), "CONFLICT");
      const committed = await ok(call(alice, "commit", { id: "k-commit" }));
      assert.deepEqual([committed.seq, committed.duplicate], [2, false]);
      await ok(call(alice, "rollback", { id: "k-rollback" }));
      // Its checks count from when it was prepared, not from the restart: the last period ends at
      // prepared + (maxChecks + 1) periods. A count started over at the restart would leave it
      // pending until seconds later, and this commit would commit it.
      await sleep(prepared + checkMs * (maxChecks + 1) + 600 - Date.now());
      await fails(call(alice, "commit", { id: "k-checked" }), "NOT_FOUND");
      const history = await ok(call(alice, "history", { topic: "room:k" }));
      assert.deepEqual(
        (history.messages as Message[]).map((m) => [m.seq, m.id]),
        [
          [1, "k-1"],
          [2, "k-commit"],
        ],
      );
      alice.close();
    } finally {
      await server.kill();
    }
  });
});
