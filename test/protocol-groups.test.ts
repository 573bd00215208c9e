/**
 * PROTOCOL.md "Groups: competing consumers": one live member per message, single acks (the first
 * wins), hand-on after the ack timeout or when a member leaves, dead letters after the last
 * attempt, one message at a time per key, BACKLOG_FULL, durable progress across a restart and a
 * SIGKILL, and the group's end with its last member.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Message } from "../shared/protocol.js";
import { type AnyReply, call, connectRecorded, eventually, fails, metric, ok, pub, send } from "./conformance.js";
import { connect, type RawSocket, sleep, spawnServer, startServer, type TestServer, tempDir } from "./helpers.js";

const ACK_TIMEOUT = 400;
const MAX_DELIVERIES = 3;
/** Above what the other tests leave unacked in one group (55), so that only the backlog tests meet it. */
const MAX_BACKLOG = 60;
const WINDOW = 50;

const join = (socket: RawSocket, topic: string, group: string, from?: number) =>
  ok(call(socket, "subscribe", from === undefined ? { topic, group } : { topic, group, from }));
/** How many messages a dead-letter topic holds. */
const deadLetters = async (socket: RawSocket, topic: string) =>
  ((await ok(call(socket, "history", { topic }))).messages as Message[]).length;
const ackOne = (socket: RawSocket, m: Message) =>
  ok(call(socket, "ack", { topic: m.topic, seq: m.seq, group: m.group }));

/** A member that records what it was handed and, unless told otherwise, acks each message. */
function member(socket: RawSocket, options: { ack?: boolean } = {}) {
  const got: Message[] = [];
  socket.on("messages", (batch) => {
    for (const m of batch) {
      if (m.group === undefined) continue;
      got.push(m);
      if (options.ack !== false) send(socket, "ack", { topic: m.topic, seq: m.seq, group: m.group });
    }
  });
  return got;
}

describe("protocol: groups", () => {
  let server: TestServer;
  let alice: RawSocket;
  const open: RawSocket[] = [];
  const client = async (user: string, clientId: string) => {
    const socket = await connect(server.url, { user, clientId });
    open.push(socket);
    return socket;
  };
  before(async () => {
    server = await startServer({
      ackTimeoutMs: ACK_TIMEOUT,
      maxDeliveries: MAX_DELIVERIES,
      maxBacklog: MAX_BACKLOG,
      maxInflight: WINDOW,
    });
    alice = await client("alice", "pub");
  });
  after(async () => {
    for (const s of open) s.close();
    await server.close();
  });

  it("acks several messages at once with seqs: each as by its own ack, one reply once all are stored", async () => {
    const w = await client("w", "gs-1");
    const got = member(w, { ack: false });
    await join(w, "room:gs", "batch");
    for (let i = 1; i <= 10; i++) await pub(alice, "room:gs", `gs-${i}`, i);
    await eventually(() => got.length === 10, "10 deliveries");
    // Out of order, and a seq never delivered (99) changes nothing.
    assert.deepEqual(await call(w, "ack", { topic: "room:gs", seqs: [7, 2, 3, 99, 1], group: "batch" }), { ok: true });
    const lag = async () => {
      const stats = (await (
        await fetch(`${server.url}/api/v1/stats`, { headers: { "x-herald-user": "alice" } })
      ).json()) as { groups: { topic: string; group: string; lag: number; acked: number }[] };
      const g = stats.groups.find((x) => x.topic === "room:gs" && x.group === "batch")!;
      return { lag: g.lag, acked: g.acked };
    };
    assert.deepEqual(await lag(), { lag: 6, acked: 3 }, "1-3 finished, 7 finished above the low-water mark");
    // Acked ones are not handed on after the ack timeout; the others are.
    await sleep(ACK_TIMEOUT + 200);
    const again = got
      .slice(10)
      .map((m) => m.seq)
      .sort((a, b) => a - b);
    assert.deepEqual(again, [4, 5, 6, 8, 9, 10], "only the unacked came again");
    assert.ok(got.slice(10).every((m) => m.attempt === 2));
    // A repeated batch is ok and changes nothing; the rest finish the group's backlog.
    await ok(call(w, "ack", { topic: "room:gs", seqs: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], group: "batch" }));
    assert.deepEqual(await lag(), { lag: 0, acked: 10 });
  });

  it("refuses a malformed seqs with BAD_REQUEST: without group, with seq too, empty, over 1024, repeated, not seqs", async () => {
    const w = await client("w", "gs-2");
    await join(w, "room:gs2", "batch");
    for (const args of [
      { topic: "room:gs2", seqs: [1] },
      { topic: "room:gs2", seq: 1, seqs: [2], group: "batch" },
      { topic: "room:gs2", seqs: [], group: "batch" },
      { topic: "room:gs2", seqs: Array.from({ length: 1025 }, (_, i) => i + 1), group: "batch" },
      { topic: "room:gs2", seqs: [1, 2, 1], group: "batch" },
      { topic: "room:gs2", seqs: [0], group: "batch" },
      { topic: "room:gs2", seqs: [1.5], group: "batch" },
      { topic: "room:gs2", seqs: "1", group: "batch" },
      { topic: "room:gs2", group: "batch" },
    ]) {
      await fails(call(w, "ack", args), "BAD_REQUEST");
    }
    await ok(
      call(w, "ack", { topic: "room:gs2", seqs: Array.from({ length: 1024 }, (_, i) => i + 1), group: "batch" }),
    );
  });

  it("hands each message to one member, with group and attempt 1; the group starts at the head", async () => {
    await pub(alice, "room:g1", "before-1");
    const w1 = await client("w", "g1-1");
    const w2 = await client("w", "g1-2");
    const got1 = member(w1);
    const got2 = member(w2);
    const reply = await join(w1, "room:g1", "workers");
    assert.deepEqual(reply, { ok: true, head: 1, acked: 1 });
    assert.deepEqual(await join(w2, "room:g1", "workers"), { ok: true, head: 1, acked: 1 });
    for (let i = 0; i < 40; i++) await pub(alice, "room:g1", `g1-${i}`, i);
    await eventually(() => got1.length + got2.length === 40, "40 deliveries");
    await sleep(100);
    const all = [...got1, ...got2];
    assert.deepEqual(
      all.map((m) => m.seq).sort((a, b) => a - b),
      Array.from({ length: 40 }, (_, i) => i + 2),
      "each message once, none from before the group",
    );
    assert.ok(got1.length > 0 && got2.length > 0, `both members work: ${got1.length} / ${got2.length}`);
    for (const m of all) {
      assert.equal(m.group, "workers");
      assert.equal(m.attempt, 1);
    }
    // Within one member, first deliveries come in seq order.
    for (const got of [got1, got2]) {
      assert.deepEqual(
        got.map((m) => m.seq),
        [...got].map((m) => m.seq).sort((a, b) => a - b),
      );
    }
    // All acked: a later subscribe reports the low-water mark at the head.
    await eventually(async () => (await join(w1, "room:g1", "workers")).acked === 41, "acked 41");
  });

  it("from counts on the subscribe that creates the group, not on later ones", async () => {
    for (let i = 0; i < 5; i++) await pub(alice, "room:g2", `g2-${i}`);
    const w1 = await client("w", "g2-1");
    const got = member(w1);
    assert.deepEqual(await join(w1, "room:g2", "replay", 3), { ok: true, head: 5, acked: 2 });
    await eventually(() => got.length === 3, "3, 4, 5");
    assert.deepEqual(
      got.map((m) => m.seq),
      [3, 4, 5],
    );
    const w2 = await client("w", "g2-2");
    member(w2);
    const again = await join(w2, "room:g2", "replay", 1);
    assert.equal(again.head, 5);
    await sleep(100);
    assert.equal(got.length, 3, "no replay for a group that exists");
  });

  it("holds at most HERALD_MAX_INFLIGHT per member, and an ack frees a slot at once", async () => {
    const w = await client("w", "g13");
    const got = member(w, { ack: false });
    await join(w, "room:g13", "win");
    for (let i = 0; i < 54; i++) send(alice, "publish", { id: `g13-${i}`, topic: "room:g13", payload: i });
    await pub(alice, "room:g13", "g13-last");
    await eventually(() => got.length === 50, "a full window");
    await sleep(100);
    assert.equal(got.length, 50, "no more than the window");
    await ackOne(w, got[7]!);
    await eventually(() => got.length === 51, "one more for the one acked");
    assert.equal(got[50]!.seq, 51);
  });

  it("acks are single, not cumulative, and the first ack wins", async () => {
    const w = await client("w", "g3");
    const got = member(w, { ack: false });
    await join(w, "room:g3", "single");
    for (let i = 0; i < 3; i++) await pub(alice, "room:g3", `g3-${i}`);
    await eventually(() => got.length === 3, "3 delivered");
    await ackOne(w, got[2]!);
    await ackOne(w, got[2]!); // again: ok, changes nothing
    await ok(call(w, "ack", { topic: "room:g3", seq: 99, group: "single" })); // never sent: ok
    assert.equal((await join(w, "room:g3", "single")).acked, 0, "3 acked alone does not move the mark");
    await ackOne(w, got[0]!);
    await ackOne(w, got[1]!);
    assert.equal((await join(w, "room:g3", "single")).acked, 3);
  });

  it("hands a message on after the ack timeout, preferring another member, with attempt 2", async () => {
    const slow = await client("w", "g4-slow");
    const slowGot = member(slow, { ack: false });
    await join(slow, "room:g4", "t");
    await pub(alice, "room:g4", "g4-1");
    await eventually(() => slowGot.length === 1, "first delivery");
    const fast = await client("w", "g4-fast");
    const fastGot = member(fast);
    await join(fast, "room:g4", "t");
    const started = Date.now();
    await eventually(() => fastGot.length === 1, "redelivery", ACK_TIMEOUT * 5);
    assert.ok(Date.now() - started >= ACK_TIMEOUT / 2, "not before the timeout");
    assert.equal(fastGot[0]!.seq, 1);
    assert.equal(fastGot[0]!.attempt, 2);
    assert.equal(slowGot.length, 1, "not again to the member it timed out on");
    // The late ack of the slow member is ok and changes nothing.
    await ackOne(slow, slowGot[0]!);
    await eventually(async () => (await join(fast, "room:g4", "t")).acked === 1, "acked");
  });

  it("hands what a member held on at once when it disconnects", async () => {
    const a = await client("w", "g5-a");
    const aGot = member(a, { ack: false });
    await join(a, "room:g5", "d");
    for (let i = 0; i < 4; i++) await pub(alice, "room:g5", `g5-${i}`);
    await eventually(() => aGot.length === 4, "4 to the first member");
    const b = await client("w", "g5-b");
    const bGot = member(b);
    await join(b, "room:g5", "d");
    a.close();
    await eventually(() => bGot.length === 4, "handed on", ACK_TIMEOUT / 2);
    assert.deepEqual(
      bGot.map((m) => [m.seq, m.attempt]),
      [
        [1, 2],
        [2, 2],
        [3, 2],
        [4, 2],
      ],
    );
  });

  it("counts the acks a member sent right before it went away", async () => {
    const a = await client("w", "g11-a");
    const aGot = member(a, { ack: false });
    await join(a, "room:g11", "bye");
    for (let i = 0; i < 39; i++) send(alice, "publish", { id: `g11-${i}`, topic: "room:g11", payload: i });
    await pub(alice, "room:g11", "g11-last");
    await eventually(() => aGot.length === 40, "40 delivered");
    // The acks and the disconnect leave in one write: the server reads them together.
    for (const m of aGot) send(a, "ack", { topic: m.topic, seq: m.seq, group: "bye" });
    a.disconnect();
    const b = await client("w", "g11-b");
    const bGot = member(b);
    await join(b, "room:g11", "bye");
    await sleep(200);
    assert.deepEqual(bGot, [], "nothing acked comes again");
    assert.equal((await join(b, "room:g11", "bye")).acked, 40);
  });

  it("hands on what a REPLACED connection held, to the connection that replaced it", async () => {
    const old = await client("w", "g12");
    const oldGot = member(old, { ack: false });
    await join(old, "room:g12", "r");
    for (let i = 0; i < 3; i++) await pub(alice, "room:g12", `g12-${i}`);
    await eventually(() => oldGot.length === 3, "3 to the first connection");
    const replaced = new Promise((resolve) => old.once("error", resolve));
    const { socket, rec } = await connectRecorded(server.url, { user: "w", clientId: "g12" });
    open.push(socket);
    assert.deepEqual(await replaced, { code: "REPLACED", message: "a newer connection of this client took over" });
    await eventually(() => rec.messages("room:g12").length === 3, "3 again");
    assert.deepEqual(
      rec.messages("room:g12").map((m) => [m.seq, m.attempt]),
      [
        [1, 2],
        [2, 2],
        [3, 2],
      ],
    );
  });

  it("dead-letters a message after the last attempt, with its id, from and payload", async () => {
    const w = await client("w", "g6");
    const got = member(w, { ack: false });
    const deadWatcher = await client("w", "g6-dead");
    const dead: Message[] = [];
    deadWatcher.on("messages", (batch) => dead.push(...batch));
    await ok(call(deadWatcher, "subscribe", { topic: "dead:room:g6:poison" }));
    await join(w, "room:g6", "poison");
    await ok(call(alice, "publish", { id: "g6-bad", topic: "room:g6", payload: { n: 1 }, key: "k" }));
    await eventually(() => dead.length === 1, "a dead letter", ACK_TIMEOUT * (MAX_DELIVERIES + 3));
    assert.deepEqual(
      got.map((m) => m.attempt),
      [1, 2, 3],
    );
    const d = dead[0]!;
    assert.equal(d.topic, "dead:room:g6:poison");
    assert.equal(d.seq, 1);
    assert.equal(d.id, "g6-bad");
    assert.equal(d.from, "alice");
    assert.equal(d.key, "k");
    assert.deepEqual(d.payload, { n: 1 });
    assert.equal(d.group, undefined);
    assert.equal((await join(w, "room:g6", "poison")).acked, 1, "the group moved past it");
    // The dead letter's id does not make the next publish of that id a duplicate, nor the reverse.
    const r = await ok(call(alice, "publish", { id: "g6-bad", topic: "room:g6", payload: 2 }));
    assert.equal(r.duplicate, true);
    // Dead-letter topics are the server's: nobody publishes there, and they have no groups.
    await fails(call(alice, "publish", { id: "g6-x", topic: "dead:room:g6:poison", payload: 1 }), "FORBIDDEN");
    await fails(call(w, "subscribe", { topic: "dead:room:g6:poison", group: "again" }), "BAD_REQUEST");
  });

  it("hands dead letters back to their group on the admin's retry, with no attempts made", async () => {
    const w = await client("w", "g10");
    const got = member(w, { ack: false });
    await join(w, "room:g10", "r");
    await pub(alice, "room:g10", "g10-ok");
    await pub(alice, "room:g10", "g10-bad");
    await eventually(() => got.length === 2, "both delivered");
    await ackOne(w, got[0]!);
    const deadline = ACK_TIMEOUT * (MAX_DELIVERIES + 3);
    // The group moves past the message at once; the dead letter is readable once it is stored.
    await eventually(async () => (await join(w, "room:g10", "r")).acked === 2, "dead-lettered", deadline);
    await eventually(async () => (await deadLetters(w, "dead:room:g10:r")) === 1, "the dead letter stored");
    const retry = (path: string, body?: unknown) =>
      fetch(`${server.url}/api/v1/topics/${path}/retry`, {
        method: "POST",
        headers: { "x-herald-user": "admin", ...(body ? { "content-type": "application/json" } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
    const before = got.length;
    const res = await retry("room:g10/groups/r", { from: 1, to: 1 });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { retried: 1 });
    await eventually(() => got.length === before + 1, "the retried message");
    const again = got[got.length - 1]!;
    assert.deepEqual([again.seq, again.id, again.attempt], [2, "g10-bad", 1]);
    await ackOne(w, again);
    // Acked, it is finished again; a range with no dead letters retries nothing.
    await sleep(ACK_TIMEOUT * 1.5);
    assert.equal(got.length, before + 1, "not handed out again");
    assert.deepEqual(await (await retry("room:g10/groups/r", { from: 5 })).json(), { retried: 0 });
    assert.equal((await retry("room:g10/groups/none")).status, 404);
    assert.equal((await retry("room:g10/groups/bad%20name")).status, 400);
    assert.equal((await retry("nope/groups/r")).status, 400);
    assert.equal((await retry("room:g10/groups/r", { from: 0 })).status, 400);
  });

  it("hands out messages that share a key one at a time, in seq order", async () => {
    const a = await client("w", "g7-a");
    const b = await client("w", "g7-b");
    const aGot = member(a, { ack: false });
    const bGot = member(b, { ack: false });
    await join(a, "room:g7", "k");
    await join(b, "room:g7", "k");
    for (let i = 0; i < 3; i++) {
      await ok(call(alice, "publish", { id: `g7-x${i}`, topic: "room:g7", payload: i, key: "x" }));
    }
    await ok(call(alice, "publish", { id: "g7-y", topic: "room:g7", payload: "y", key: "y" }));
    await eventually(() => aGot.length + bGot.length === 2, "x's first and y");
    await sleep(100);
    const held = () => [...aGot, ...bGot].map((m) => m.seq).sort((p, q) => p - q);
    assert.deepEqual(held(), [1, 4], "x's second waits for its first");
    const owner = (seq: number) => (aGot.some((m) => m.seq === seq) ? a : b);
    await ok(call(owner(1), "ack", { topic: "room:g7", seq: 1, group: "k" }));
    await eventually(() => held().length === 3, "x's second");
    assert.deepEqual(held(), [1, 2, 4]);
    await ok(call(owner(2), "ack", { topic: "room:g7", seq: 2, group: "k" }));
    await eventually(() => held().length === 4, "x's third");
    assert.deepEqual(held(), [1, 2, 3, 4]);
  });

  it("holds a burst sent at once to HERALD_MAX_BACKLOG too: publishes not yet stored count", async () => {
    const w = await client("w", "burst");
    member(w, { ack: false });
    await join(w, "room:burst", "b");
    const replies = await Promise.all(
      Array.from({ length: 5 * MAX_BACKLOG }, (_, i) =>
        call(alice, "publish", { id: `burst-${i}`, topic: "room:burst", payload: i }),
      ),
    );
    const accepted = replies.filter((r) => r.ok).length;
    assert.equal(accepted, MAX_BACKLOG, "exactly the bound, not the burst");
    assert.ok(replies.filter((r) => !r.ok).every((r) => r.error?.code === "BACKLOG_FULL"));
  });

  it("refuses publish with BACKLOG_FULL while a group's backlog is full, socket and HTTP", async () => {
    const w = await client("w", "g8");
    const got = member(w, { ack: false });
    await join(w, "room:g8", "b");
    // A plain subscriber's lag never counts.
    const plain = await client("w", "g8-plain");
    await ok(call(plain, "subscribe", { topic: "room:g8" }));
    for (let i = 0; i < MAX_BACKLOG; i++) await pub(alice, "room:g8", `g8-${i}`);
    const err = await fails(call(alice, "publish", { id: "g8-over", topic: "room:g8", payload: 1 }), "BACKLOG_FULL");
    assert.ok((err.retryAfterMs ?? 0) > 0);
    const res = await fetch(`${server.url}/api/v1/publish`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-herald-user": "alice" },
      body: JSON.stringify({ id: "g8-http", topic: "room:g8", payload: 1 }),
    });
    assert.equal(res.status, 503);
    assert.ok(Number(res.headers.get("retry-after")) >= 1);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, "BACKLOG_FULL");
    // Other topics are not held up.
    await pub(alice, "room:g8-other", "g8-o");
    // Acks make room again.
    await eventually(() => got.length === Math.min(MAX_BACKLOG, WINDOW), "a window delivered");
    await ackOne(w, got[0]!);
    await pub(alice, "room:g8", "g8-after");
    // The stats show the group's lag.
    const stats = (await (
      await fetch(`${server.url}/api/v1/stats`, { headers: { "x-herald-user": "alice" } })
    ).json()) as { groups: { topic: string; group: string; lag: number; members: number }[] };
    const g = stats.groups.find((s) => s.topic === "room:g8" && s.group === "b");
    assert.deepEqual(g && { lag: g.lag, members: g.members }, { lag: MAX_BACKLOG, members: 1 });
    const text = await (await fetch(`${server.url}/metrics`)).text();
    assert.equal(metric(text, "herald_group_backlog_max"), MAX_BACKLOG);
  });

  it("keeps a group and a plain subscription of one client apart; the group ends with its last member", async () => {
    const w = await client("w", "g9");
    const got: Message[] = [];
    w.on("messages", (batch) => got.push(...batch));
    await ok(call(w, "subscribe", { topic: "room:g9" }));
    await join(w, "room:g9", "solo");
    await pub(alice, "room:g9", "g9-1");
    await eventually(() => got.length === 2, "both streams");
    assert.deepEqual(got.map((m) => m.group ?? "plain").sort(), ["plain", "solo"]);
    const presence = await ok(call(alice, "presence", { topic: "room:g9" }));
    assert.deepEqual(presence.users, ["w"]);
    // Leaving the group keeps the plain stream (and presence); the group ends, its backlog with it.
    await ok(call(w, "unsubscribe", { topic: "room:g9", group: "solo" }));
    assert.deepEqual((await ok(call(alice, "presence", { topic: "room:g9" }))).users, ["w"]);
    await pub(alice, "room:g9", "g9-2");
    await eventually(() => got.length === 3, "plain only");
    assert.equal(got[2]!.group, undefined);
    const again = await join(w, "room:g9", "solo");
    assert.deepEqual(again, { ok: true, head: 2, acked: 2 }, "a new group starts at the head");
  });
});

describe("protocol: groups across restarts", () => {
  it("sends one member a gap for what retention removed, and moves the group past it at once", async () => {
    const server = await startServer({ retentionMessages: 3 });
    const pubber = await connect(server.url, { user: "alice", clientId: "p" });
    const first = await connect(server.url, { user: "w", clientId: "gap-1" });
    await join(first, "room:gap", "g");
    first.close();
    for (let i = 0; i < 10; i++) await pub(pubber, "room:gap", `gap-${i}`);
    await server.herald.retention.sweep(); // keeps 8..10
    const { socket, rec } = await connectRecorded(server.url, { user: "w", clientId: "gap-1" });
    await eventually(() => rec.messages("room:gap").length === 3, "8, 9, 10");
    assert.deepEqual(rec.of("gap"), [{ topic: "room:gap", from: 1, to: 7, group: "g" }]);
    assert.deepEqual(
      rec.messages("room:gap").map((m) => m.seq),
      [8, 9, 10],
    );
    assert.equal((await join(socket, "room:gap", "g")).acked, 7, "past the gap before any ack");
    socket.close();
    pubber.close();
    await server.close();
  });

  it("keeps the progress across a restart: only what was not acked comes again", async () => {
    const dataDir = tempDir();
    let server = await startServer({ dataDir, maxInflight: 100 });
    const pubber = await connect(server.url, { user: "alice", clientId: "p" });
    let w = await connect(server.url, { user: "w", clientId: "r1" });
    const got = member(w, { ack: false });
    await join(w, "room:r", "g");
    for (let i = 0; i < 10; i++) await pub(pubber, "room:r", `r-${i}`);
    await eventually(() => got.length === 10, "10 delivered");
    for (const m of got.filter((x) => x.seq % 2 === 0 || x.seq <= 3)) await ackOne(w, m);
    pubber.close();
    w.close();
    await server.close();
    server = await startServer({ dataDir, maxInflight: 100 });
    const rec = await connectRecorded(server.url, { user: "w", clientId: "r1" });
    w = rec.socket;
    await eventually(() => rec.rec.messages("room:r").length === 3, "the unacked again");
    assert.deepEqual(
      rec.rec.messages("room:r").map((m) => [m.seq, m.attempt]),
      [
        [5, 2],
        [7, 2],
        [9, 2],
      ],
      "handed out before the restart, so redeliveries",
    );
    for (const m of rec.rec.messages("room:r")) await ackOne(w, m);
    assert.equal((await join(w, "room:r", "g")).acked, 10);
    w.close();
    await server.close();
  });

  it("keeps a retried dead letter unfinished across a restart", async () => {
    const dataDir = tempDir();
    let server = await startServer({ dataDir, ackTimeoutMs: 100, maxDeliveries: 1 });
    const pubber = await connect(server.url, { user: "alice", clientId: "p" });
    const w = await connect(server.url, { user: "w", clientId: "rv" });
    const got = member(w, { ack: false });
    await join(w, "room:rv", "g");
    await pub(pubber, "room:rv", "rv-1");
    await eventually(async () => (await join(w, "room:rv", "g")).acked === 1, "dead-lettered");
    await eventually(async () => (await deadLetters(w, "dead:room:rv:g")) === 1, "the dead letter stored");
    w.close();
    const res = await fetch(`${server.url}/api/v1/topics/room:rv/groups/g/retry`, {
      method: "POST",
      headers: { "x-herald-user": "admin" },
    });
    assert.deepEqual(await res.json(), { retried: 1 });
    pubber.close();
    await server.close();
    server = await startServer({ dataDir, ackTimeoutMs: 100, maxDeliveries: 1 });
    const stats = (await (
      await fetch(`${server.url}/api/v1/stats`, { headers: { "x-herald-user": "admin" } })
    ).json()) as { groups: { lag: number }[] };
    assert.equal(stats.groups[0]?.lag, 1, "the retried message is in the backlog");
    const { socket, rec } = await connectRecorded(server.url, { user: "w", clientId: "rv" });
    await eventually(() => rec.messages("room:rv").length === 1, "the retried message");
    assert.deepEqual(
      rec.messages("room:rv").map((m) => [m.seq, m.id, m.attempt]),
      [[1, "rv-1", 1]],
    );
    await ackOne(socket, rec.messages("room:rv")[0]!);
    assert.equal(got.length, 1);
    socket.close();
    await server.close();
  });

  it("takes an ack of a message handed out before a restart before it comes again", async () => {
    const dataDir = tempDir();
    let server = await startServer({ dataDir });
    const pubber = await connect(server.url, { user: "alice", clientId: "p" });
    const w = await connect(server.url, { user: "w", clientId: "early" });
    const got = member(w, { ack: false });
    await join(w, "room:early", "g");
    for (let i = 0; i < 3; i++) await pub(pubber, "room:early", `early-${i}`);
    await eventually(() => got.length === 3, "3 delivered");
    pubber.close();
    w.close();
    await server.close();
    // One in flight at a time: seq 1 comes again first, 2 and 3 wait.
    server = await startServer({ dataDir, maxInflight: 1 });
    const { socket, rec } = await connectRecorded(server.url, { user: "w", clientId: "early" });
    await eventually(() => rec.messages("room:early").length === 1, "seq 1 again");
    await ok(call(socket, "ack", { topic: "room:early", seq: 2, group: "g" })); // processed before the restart
    await ok(call(socket, "ack", { topic: "room:early", seq: 1, group: "g" }));
    await eventually(() => rec.messages("room:early").length === 2, "seq 3");
    await sleep(100);
    assert.deepEqual(
      rec.messages("room:early").map((m) => [m.seq, m.attempt]),
      [
        [1, 2],
        [3, 2],
      ],
      "2 was finished by its ack and never came again",
    );
    socket.close();
    await server.close();
  });

  it("takes such an ack also when a SIGKILL lost the record of the hand-out", async () => {
    const dataDir = tempDir();
    let server = await spawnServer(dataDir);
    const pubber = await connect(server.url, { user: "alice", clientId: "p" });
    const w = await connect(server.url, { user: "w", clientId: "lost" });
    const got = member(w, { ack: false });
    await join(w, "room:lost", "g");
    await pub(pubber, "room:lost", "lost-1");
    await pub(pubber, "room:lost", "lost-2");
    await pub(pubber, "room:lost", "lost-3");
    await eventually(() => got.length === 3, "3 delivered");
    await server.kill(); // at once: the hand-out's record is written lazily, within 100 ms
    pubber.close();
    w.close();
    server = await spawnServer(dataDir, { HERALD_MAX_INFLIGHT: "1" });
    const { socket, rec } = await connectRecorded(server.url, { user: "w", clientId: "lost" });
    await eventually(() => rec.messages("room:lost").length === 1, "seq 1 again");
    await ok(call(socket, "ack", { topic: "room:lost", seq: 2, group: "g" })); // processed before the kill
    await ok(call(socket, "ack", { topic: "room:lost", seq: 1, group: "g" }));
    await eventually(() => rec.messages("room:lost").length === 2, "seq 3");
    await sleep(100);
    assert.deepEqual(
      rec.messages("room:lost").map((m) => m.seq),
      [1, 3],
      "2 was finished by its ack and never came again",
    );
    socket.close();
    await server.stop();
  });

  it("loses no acked group message and finishes every message across SIGKILLs", async () => {
    const dataDir = tempDir();
    const TOTAL = 300;
    const finished = new Set<number>();
    const redeliveredAcked: number[] = [];
    let server = await spawnServer(dataDir, { HERALD_ACK_TIMEOUT_MS: "1000" });
    const pubber = await connect(server.url, { user: "alice", clientId: "k-pub" });
    const setup = await connect(server.url, { user: "w", clientId: "k-0" });
    await join(setup, "room:k", "g");
    setup.close();
    for (let i = 0; i < TOTAL; i++) send(pubber, "publish", { id: `k-${i}`, topic: "room:k", payload: i });
    await ok(call(pubber, "publish", { id: "k-last", topic: "room:k", payload: "last" }));
    pubber.close();
    // An ack whose answer a kill took may have been kept: its message then never comes again, so
    // it is sent again on the next connection, as the SDK does.
    const unanswered = new Set<number>();
    const ackAndNote = (s: RawSocket, seq: number) => {
      unanswered.add(seq);
      void call(s, "ack", { topic: "room:k", seq, group: "g" }).then(
        (r: AnyReply) => {
          if (!r.ok) return;
          finished.add(seq);
          unanswered.delete(seq);
        },
        () => {},
      );
    };
    const work = async (url: string) => {
      const sockets: RawSocket[] = [];
      for (let i = 0; i < 3; i++) {
        const s = await connect(url, { user: "w", clientId: `k-${i}` });
        sockets.push(s);
        s.on("messages", (batch) => {
          for (const m of batch) {
            if (m.group === undefined) continue;
            if (finished.has(m.seq)) redeliveredAcked.push(m.seq);
            ackAndNote(s, m.seq);
          }
        });
        await join(s, "room:k", "g");
      }
      for (const seq of [...unanswered]) ackAndNote(sockets[0]!, seq);
      return sockets;
    };
    for (let round = 0; round < 2; round++) {
      const sockets = await work(server.url);
      await eventually(() => finished.size > (round + 1) * 60, "some acked", 10000);
      await server.kill();
      for (const s of sockets) s.close();
      server = await spawnServer(dataDir, { HERALD_ACK_TIMEOUT_MS: "1000" });
    }
    const sockets = await work(server.url);
    await eventually(() => finished.size === TOTAL + 1, `all ${TOTAL + 1} finished`, 15000);
    // An ack answered ok is durable: that message never came again after a kill.
    assert.deepEqual(redeliveredAcked, []);
    for (const s of sockets) s.close();
    await server.stop();
  });
});
