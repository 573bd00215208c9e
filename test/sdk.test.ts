import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import {
  Backoff,
  type ClientState,
  type HeraldClient,
  type HeraldError,
  type Message,
  type OutboxStorage,
  type PendingPublish,
  randomId,
  type StateChange,
} from "../shared/client/index.js";
import { sleep, spawnServer, startServer, type TestServer, tempDir } from "./helpers.js";
import { sdkClients, waitFor } from "./sdk-fixtures.js";

const { client, closeAll } = sdkClients("sdk");

function stateOf(c: HeraldClient, state: ClientState, ms = 8000): Promise<void> {
  return waitFor(`state ${state} (is ${c.state})`, () => c.state === state, ms);
}

function track(c: HeraldClient): StateChange[] {
  const changes: StateChange[] = [];
  c.on("state", (change) => changes.push(change));
  return changes;
}

async function cursor(server: TestServer, user: string, clientId: string, topic: string): Promise<number | undefined> {
  const subs = await server.herald.ctx.store.subscriptions({ user, clientId });
  return subs.find((s) => s.topic === topic)?.acked;
}

describe("backoff - capped full jitter", () => {
  it("stays within [0, min(cap, base * 2^n)] and starts over after reset", () => {
    const top = new Backoff({ baseMs: 250, capMs: 10_000, random: () => 0.999999 });
    const ceilings = [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000];
    for (const ceiling of ceilings) {
      const d = top.next();
      assert.ok(d <= ceiling && d >= ceiling - 1, `${d} near ${ceiling}`);
    }
    for (let i = 0; i < 2000; i++) assert.ok(top.next() <= 10_000);
    top.reset();
    assert.ok(top.next() <= 250);
    const bottom = new Backoff({ random: () => 0 });
    assert.equal(bottom.next(), 0);
    const random = new Backoff();
    for (let i = 0; i < 200; i++) {
      const d = random.next();
      assert.ok(d >= 0 && d <= 10_000 && Number.isInteger(d));
    }
    assert.throws(() => new Backoff({ baseMs: 0 }), RangeError);
  });
});

describe("randomId - UUIDv7", () => {
  it("is a version 7 UUID that carries its millisecond and sorts by time", () => {
    const at = Date.UTC(2026, 10, 25, 12, 0, 0, 123);
    const id = randomId(at);
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(Number.parseInt(id.replace("-", "").slice(0, 12), 16), at);
    const later = Array.from({ length: 50 }, (_, i) => randomId(at + 1 + i));
    assert.deepEqual([...later].sort(), later, "ids of later milliseconds sort after");
    assert.ok(later.every((l) => l > id));
    const same = new Set(Array.from({ length: 10_000 }, () => randomId(at)));
    assert.equal(same.size, 10_000, "74 random bits keep ids of one millisecond apart");
  });
});

describe("sdk - against a live server", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server.close();
  });

  it("state - disconnected, connecting, connected, closed, each with a reason", async () => {
    const c = client(server.url);
    const changes = track(c);
    assert.equal(c.state, "disconnected");
    c.connect();
    await stateOf(c, "connected");
    await c.close();
    assert.deepEqual(
      changes.map((s) => [s.from, s.to, s.reason]),
      [
        ["disconnected", "connecting", "connect"],
        ["connecting", "connected", "connected"],
        ["connected", "closed", "closed"],
      ],
    );
    await assert.rejects(c.publish("room:x", 1), { code: "UNAVAILABLE" });
  });

  it("publish/subscribe - in seq order, ids kept, duplicates answered with the first seq", async () => {
    const sub = client(server.url, { user: "bob" });
    const pub = client(server.url);
    sub.connect();
    pub.connect();
    const got: Message[] = [];
    await sub.subscribe("room:order", (m) => {
      got.push(m);
    });
    const replies = await Promise.all(
      Array.from({ length: 30 }, (_, i) => pub.publish("room:order", { i }, { id: `order-${i}` })),
    );
    assert.deepEqual(
      replies.map((r) => [r.seq, r.duplicate]),
      Array.from({ length: 30 }, (_, i) => [i + 1, false]),
    );
    await waitFor("30 messages", () => got.length === 30);
    assert.deepEqual(
      got.map((m) => [m.seq, m.id, m.from, m.payload]),
      Array.from({ length: 30 }, (_, i) => [i + 1, `order-${i}`, "alice", { i }]),
    );
    const again = await pub.publish("room:order", { i: 0 }, { id: "order-0" });
    assert.deepEqual([again.seq, again.ts, again.duplicate], [1, replies[0]!.ts, true]);
    await waitFor("cursor at 30", async () => (await cursor(server, "bob", sub.clientId, "room:order")) === 30);
    assert.equal(got.length, 30, "a duplicate is not delivered");
    assert.deepEqual(pub.pending(), []);
  });

  it("url list - after a node that cannot be reached, the next attempt goes to the next one", async () => {
    // A port nothing listens on: the first node of the list is down.
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const dead = `http://127.0.0.1:${(probe.address() as net.AddressInfo).port}`;
    await new Promise((resolve) => probe.close(resolve));
    const c = client(server.url, { url: [dead, server.url] });
    assert.equal(c.url, dead);
    c.connect();
    await stateOf(c, "connected");
    assert.equal(c.url, server.url);
    assert.equal((await c.publish("room:urls", 1)).duplicate, false);
    assert.throws(() => client(server.url, { url: [] }), { code: "BAD_REQUEST" });
  });

  it("publish - rejects with HeraldError on an error reply", async () => {
    const c = client(server.url);
    c.connect();
    await assert.rejects(c.publish("nope", 1), { name: "HeraldError", code: "INVALID_TOPIC" });
    await assert.rejects(c.publish("user:bob", 1, { id: "bad id!" }), { code: "BAD_REQUEST" });
    await assert.rejects(
      c.subscribe("user:bob", () => {}),
      { code: "FORBIDDEN" },
    );
    await assert.rejects(c.history("user:bob"), { code: "FORBIDDEN" });
  });

  it("publish - offline publishes queue, show as pending and go out in order on connect", async () => {
    const c = client(server.url);
    const snapshots: number[] = [];
    c.on("pending", (list) => snapshots.push(list.length));
    const results = ["a", "b", "c"].map((id) => c.publish("room:offline", id, { id: `offline-${id}`, key: "k" }));
    assert.deepEqual(
      c.pending().map((p) => [p.id, p.topic, p.payload, p.key]),
      ["a", "b", "c"].map((id) => [`offline-${id}`, "room:offline", id, "k"]),
    );
    c.connect();
    const replies = await Promise.all(results);
    assert.deepEqual(
      replies.map((r) => r.seq),
      [1, 2, 3],
    );
    assert.deepEqual(c.pending(), []);
    assert.deepEqual(snapshots, [1, 2, 3, 2, 1, 0]);
    const { messages } = await c.history("room:offline");
    assert.deepEqual(
      messages.map((m) => [m.id, m.key]),
      ["a", "b", "c"].map((id) => [`offline-${id}`, "k"]),
    );
  });

  it("outbox - a stored outbox from an earlier session is sent on connect; a published id stays stored once", async () => {
    const earlier = client(server.url);
    earlier.connect();
    const first = await earlier.publish("room:stored", "one", { id: "stored-1" });
    let saved: PendingPublish[] = [
      { id: "stored-1", topic: "room:stored", payload: "one", createdAt: 1 },
      { id: "stored-2", topic: "room:stored", payload: "two", createdAt: 2 },
    ];
    const storage: OutboxStorage = {
      load: async () => saved,
      save: (list) => {
        saved = list;
      },
    };
    const c = client(server.url, { outbox: storage });
    const mine = c.publish("room:stored", "three", { id: "stored-3" });
    await waitFor("stored list loaded", () => c.pending().length === 3);
    assert.deepEqual(
      c.pending().map((p) => p.id),
      ["stored-1", "stored-2", "stored-3"],
    );
    assert.deepEqual(
      saved.map((p) => p.id),
      ["stored-1", "stored-2", "stored-3"],
    );
    const answered: [string, number, boolean][] = [];
    c.on("published", (r) => answered.push([r.id, r.seq, r.duplicate]));
    c.connect();
    assert.equal((await mine).seq, 3);
    await waitFor("outbox empty", () => c.pending().length === 0);
    assert.deepEqual(saved, []);
    // The restored entries, which no publish() call waits for, are answered through the event.
    assert.deepEqual(answered, [
      ["stored-1", first.seq, true],
      ["stored-2", 2, false],
      ["stored-3", 3, false],
    ]);
    const { messages } = await c.history("room:stored");
    assert.deepEqual(
      messages.map((m) => [m.seq, m.id]),
      [
        [first.seq, "stored-1"],
        [2, "stored-2"],
        [3, "stored-3"],
      ],
    );
  });

  it("subscribe - close() acks what the handler finished, so the next run starts after it", async () => {
    const pub = client(server.url);
    pub.connect();
    for (let i = 1; i <= 6; i++) await pub.publish("room:close-ack", i);
    const first = client(server.url, { user: "carl", clientId: "close-ack-worker" });
    first.connect();
    const done: number[] = [];
    let closing: Promise<void> | undefined;
    await first.subscribe(
      "room:close-ack",
      async (m) => {
        await sleep(5);
        done.push(m.seq);
        // Stop between two acks: right after the third job, with more queued.
        if (m.seq === 3) setImmediate(() => (closing = first.close()));
      },
      { from: 1 },
    );
    await waitFor("the first worker stopped", () => closing !== undefined);
    await closing;
    assert.deepEqual(done.slice(0, 3), [1, 2, 3]);
    assert.equal(await cursor(server, "carl", "close-ack-worker", "room:close-ack"), 3);
    const second = client(server.url, { user: "carl", clientId: "close-ack-worker" });
    second.connect();
    const again: number[] = [];
    await second.subscribe("room:close-ack", async (m) => {
      again.push(m.seq);
    });
    await waitFor("the rest", () => again.length === 3);
    assert.deepEqual(again, [4, 5, 6]);
    await second.close();
    await pub.close();
  });

  it("subscribe - a slow async handler gets one message at a time and is acked only after it resolved", async () => {
    const sub = client(server.url, { user: "bob" });
    const pub = client(server.url);
    sub.connect();
    pub.connect();
    const started: number[] = [];
    const finished: number[] = [];
    let release = () => {};
    await sub.subscribe("room:slow", async (m) => {
      started.push(m.seq);
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      finished.push(m.seq);
    });
    for (let i = 0; i < 3; i++) await pub.publish("room:slow", i);
    await waitFor("first handler call", () => started.length === 1);
    await sleep(150);
    assert.deepEqual(started, [1], "the next message waits for the handler");
    assert.equal(await cursor(server, "bob", sub.clientId, "room:slow"), 0, "no ack before the handler resolved");
    release();
    await waitFor("second handler call", () => started.length === 2);
    await waitFor("ack of 1", async () => (await cursor(server, "bob", sub.clientId, "room:slow")) === 1);
    await sleep(100);
    assert.equal(await cursor(server, "bob", sub.clientId, "room:slow"), 1);
    release();
    await waitFor("third handler call", () => started.length === 3);
    release();
    await waitFor("ack of 3", async () => (await cursor(server, "bob", sub.clientId, "room:slow")) === 3);
    assert.deepEqual(finished, [1, 2, 3]);
  });

  it("subscribe - made offline, it goes out on connect; acks come per batch, not per message", async () => {
    const acks = async () => (await server.herald.ctx.metrics.acks.get()).values[0]?.value ?? 0;
    const sub = client(server.url, { user: "bob" });
    const got: number[] = [];
    const subscribed = sub.subscribe("room:batch", (m) => {
      got.push(m.seq);
    });
    assert.equal(sub.state, "disconnected");
    sub.connect();
    const subscription = await subscribed;
    assert.equal(subscription.state, "subscribed");
    const pub = client(server.url);
    pub.connect();
    const before = await acks();
    await Promise.all(Array.from({ length: 200 }, (_, i) => pub.publish("room:batch", i)));
    await waitFor("cursor at 200", async () => (await cursor(server, "bob", sub.clientId, "room:batch")) === 200);
    assert.deepEqual(
      got,
      Array.from({ length: 200 }, (_, i) => i + 1),
    );
    const sent = (await acks()) - before;
    assert.ok(sent >= 1 && sent < 100, `${sent} acks for 200 messages`);
  });

  it("subscribe - a new client with the same id resumes after its cursor; from replays", async () => {
    const clientId = `resume${process.pid}`;
    const pub = client(server.url);
    pub.connect();
    const first = client(server.url, { clientId, user: "bob" });
    first.connect();
    const a: number[] = [];
    await first.subscribe("room:resume", (m) => {
      a.push(m.seq);
    });
    for (let i = 0; i < 5; i++) await pub.publish("room:resume", i);
    await waitFor("5 messages", () => a.length === 5);
    await first.close();
    for (let i = 5; i < 8; i++) await pub.publish("room:resume", i);

    const second = client(server.url, { clientId, user: "bob" });
    second.connect();
    const b: number[] = [];
    const sub = await second.subscribe("room:resume", (m) => {
      b.push(m.seq);
    });
    await waitFor("3 new messages", () => b.length === 3);
    await sleep(100);
    assert.deepEqual(b, [6, 7, 8], "nothing already processed comes again");
    await sub.unsubscribe();
    assert.equal(await cursor(server, "bob", clientId, "room:resume"), undefined);

    const c: number[] = [];
    await second.subscribe(
      "room:resume",
      (m) => {
        c.push(m.seq);
      },
      { from: 3 },
    );
    await waitFor("replay from 3", () => c.length === 6);
    assert.deepEqual(c, [3, 4, 5, 6, 7, 8]);
    await assert.rejects(
      second.subscribe("room:resume", () => {}),
      { code: "BAD_REQUEST" },
    );
  });

  it("presence and signal - reach the other subscribers", async () => {
    const a = client(server.url);
    const b = client(server.url, { user: "bob" });
    a.connect();
    b.connect();
    await a.subscribe("room:talk", () => {});
    await b.subscribe("room:talk", () => {});
    assert.deepEqual(await a.presence("room:talk"), ["alice", "bob"]);
    const signal = new Promise((resolve) => b.once("signal", resolve));
    a.signal("room:talk", { typing: true });
    assert.deepEqual(await signal, { topic: "room:talk", from: "alice", payload: { typing: true } });
  });

  it("REPLACED - the older client goes to closed and does not reconnect", async () => {
    const clientId = `twin${process.pid}`;
    const older = client(server.url, { clientId });
    const errors: HeraldError[] = [];
    older.on("error", (err) => errors.push(err));
    const changes = track(older);
    older.connect();
    await stateOf(older, "connected");
    const newer = client(server.url, { clientId });
    newer.connect();
    await stateOf(older, "closed");
    await stateOf(newer, "connected");
    await sleep(400); // several backoff periods
    assert.equal(older.state, "closed");
    assert.equal(newer.state, "connected");
    assert.deepEqual(
      errors.map((e) => e.code),
      ["REPLACED"],
    );
    assert.deepEqual(changes.at(-1), { from: "connected", to: "closed", reason: "REPLACED" });
    assert.throws(() => older.connect(), { code: "UNAVAILABLE" });
  });

  it("handshake - UNAUTHORIZED and BAD_REQUEST stop reconnecting", async () => {
    const anonymous = client(server.url, { user: undefined as unknown as string });
    const errors: string[] = [];
    anonymous.on("error", (err) => errors.push(err.code));
    anonymous.connect();
    await stateOf(anonymous, "closed");
    const badId = client(server.url, { clientId: "not a client id" });
    const changes = track(badId);
    badId.connect();
    await stateOf(badId, "closed");
    await sleep(300);
    assert.deepEqual(errors, ["UNAUTHORIZED"]);
    assert.deepEqual(
      changes.map((s) => [s.to, s.reason]),
      [
        ["connecting", "connect"],
        ["closed", "BAD_REQUEST"],
      ],
    );
  });
});

describe("sdk - retention gaps", () => {
  it("surfaces a gap in order, through onGap and the gap event, and acks past it", async () => {
    const server = await startServer({ retentionMessages: 5 });
    try {
      const clientId = `gap${process.pid}`;
      const first = client(server.url, { clientId, user: "bob" });
      first.connect();
      await first.subscribe("room:gap", () => {});
      await first.close();
      const pub = client(server.url);
      pub.connect();
      for (let i = 0; i < 10; i++) await pub.publish("room:gap", i);
      await server.herald.retention.sweep();

      const second = client(server.url, { clientId, user: "bob" });
      const seen: string[] = [];
      second.on("gap", (g) => seen.push(`event ${g.from}-${g.to}`));
      second.connect();
      await second.subscribe("room:gap", (m) => void seen.push(`message ${m.seq}`), {
        onGap: (g) => void seen.push(`onGap ${g.topic} ${g.from}-${g.to}`),
      });
      await waitFor("5 messages", () => seen.length === 7);
      assert.deepEqual(seen, [
        "onGap room:gap 1-5",
        "event 1-5",
        "message 6",
        "message 7",
        "message 8",
        "message 9",
        "message 10",
      ]);
      await waitFor("cursor past the gap", async () => (await cursor(server, "bob", clientId, "room:gap")) === 10);
    } finally {
      await closeAll();
      await server.close();
    }
  });
});

describe("sdk - server restart", () => {
  it("keeps retrying while the server is down, then resends unanswered publishes with the same ids", async () => {
    const dataDir = tempDir();
    let server = await spawnServer(dataDir, { HERALD_DURABILITY: "normal" });
    const port = server.port;
    try {
      const sub = client(server.url, { clientId: `crashsub${process.pid}`, user: "bob" });
      const pub = client(server.url);
      const pubStates = track(pub);
      sub.connect();
      pub.connect();
      const handled: Message[] = [];
      await sub.subscribe("room:crash", async (m) => {
        await sleep(1);
        handled.push(m);
      });
      const ids = Array.from({ length: 60 }, (_, i) => `crash-${i}`);
      for (const id of ids.slice(0, 20)) await pub.publish("room:crash", id, { id });
      // Fire the rest and kill the server while they are on the way.
      const rest = ids.slice(20).map((id) => pub.publish("room:crash", id, { id }));
      await sleep(5);
      await server.kill();
      await waitFor("both clients disconnected", () => pub.state !== "connected" && sub.state !== "connected");
      await sleep(300); // a few failed attempts against the dead port
      assert.ok(
        pubStates.some((s) => s.to === "disconnected" && s.reason === "connect_error"),
        "connect errors while the server is down",
      );
      assert.notEqual(pub.state, "closed");
      server = await spawnServer(dataDir, { HERALD_DURABILITY: "normal" }, port);
      const replies = await Promise.all(rest);
      assert.deepEqual(
        replies.map((r) => r.seq),
        Array.from({ length: 40 }, (_, i) => 21 + i),
        "stored once each, in the original order",
      );
      await waitFor("all 60 handled", () => handled.length >= 60, 15000);
      await sleep(200);
      assert.deepEqual(
        handled.map((m) => [m.seq, m.id]),
        ids.map((id, i) => [i + 1, id]),
        "each message handled exactly once, in order",
      );
      const { messages } = await pub.history("room:crash", { limit: 500 });
      assert.deepEqual(
        messages.map((m) => m.id),
        ids,
      );
      assert.deepEqual(pub.pending(), []);
    } finally {
      await closeAll();
      await server.kill();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
