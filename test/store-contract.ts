/**
 * The behaviour every Store must have, as one suite that each backend's test file runs against a
 * factory (the aedes-persistence model): `test/store-sqlite.test.ts` today, PostgreSQL next.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { afterEach, describe, it } from "node:test";
import type { CommitTiming, GroupProgress, NewMessage, Store } from "../server/store/store.js";
import type { Message } from "../shared/protocol.js";

export interface StoreHarness {
  store: Store;
  /** Closes the store and opens it again on the same data: what a restart sees. */
  reopen(): Promise<Store>;
  /** Moves the harness's clock (the store's `now`). */
  setNow(ms: number): void;
  /**
   * A second store on the same database, as another node opens it: it may refuse (the SQLite
   * store, whose file has one owner), or it must keep every guarantee beside the first.
   */
  openAnother(): Promise<Store>;
  destroy(): Promise<void>;
}

/** Resolves once `cond` holds, polling: no fixed wait, whatever the store's commit timing. */
async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const msg = (from: string, id: string, topic: string, payload: unknown = { id }): NewMessage => ({
  id,
  topic,
  from,
  payload,
  json: JSON.stringify(payload),
});
const alice = { user: "alice", clientId: "a1" };

export function storeContract(name: string, factory: () => Promise<StoreHarness>): void {
  describe(`store contract - ${name}`, () => {
    let h: StoreHarness | undefined;
    const open = async () => {
      h = await factory();
      return h;
    };
    afterEach(async () => {
      await h?.destroy();
      h = undefined;
    });

    it("assigns gapless seqs per topic, from 1, to appends made together", async () => {
      const { store } = await open();
      const results = await Promise.all([
        ...Array.from({ length: 50 }, (_, i) => store.append(msg("alice", `a${i}`, "room:a"))),
        ...Array.from({ length: 10 }, (_, i) => store.append(msg("alice", `b${i}`, "room:b"))),
      ]);
      assert.deepEqual(
        results.slice(0, 50).map((r) => r.message.seq),
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
      assert.deepEqual(
        results.slice(50).map((r) => r.message.seq),
        Array.from({ length: 10 }, (_, i) => i + 1),
      );
      assert.ok(results.every((r) => !r.duplicate));
      assert.equal(await store.head("room:a"), 50);
      assert.equal(await store.head("room:none"), 0);
    });

    it("times each committed batch in order: arrival, commit start and end, durable; onDurable gets the same durable time", async () => {
      const { store } = await open();
      const timings: CommitTiming[] = [];
      const durables: number[] = [];
      store.onCommit((t) => timings.push(t));
      store.onDurable((_ms, at) => durables.push(at));
      const receivedAt = performance.now();
      await Promise.all([
        store.append({ ...msg("alice", "t1", "room:a"), receivedAt }),
        store.append(msg("alice", "t2", "room:a")),
        store.touchClient({ user: "alice", clientId: "c1" }, Date.now()),
      ]);
      await until("three writes timed", () => timings.reduce((n, t) => n + t.writes, 0) >= 3);
      const arrived = timings.flatMap((t) => t.arrived);
      assert.equal(arrived.length, 2, "one arrival per append, none for other writes");
      assert.equal(arrived[0], receivedAt, "a message's receivedAt is its arrival");
      assert.equal(
        timings.reduce((n, t) => n + t.writes, 0),
        3,
      );
      for (const t of timings) {
        for (const a of t.arrived) assert.ok(a <= t.started, "arrived before its commit began");
        assert.ok(t.started <= t.committed && t.committed <= t.durable, "began, ended, durable, in that order");
      }
      assert.ok(durables.length > 0 && durables.every((d) => timings.some((t) => t.durable === d)));
    });

    it("a second store on the same database is refused, or the two stay gapless and in order", async () => {
      const h = await open();
      await h.store.append(msg("alice", "n0", "room:n"));
      let other: Store;
      try {
        other = await h.openAnother();
      } catch (err) {
        assert.match(String(err), /in use/, "refused with a reason");
        assert.equal((await h.store.append(msg("alice", "n1", "room:n"))).message.seq, 2, "the first goes on");
        return;
      }
      try {
        const results = await Promise.all(
          Array.from({ length: 40 }, (_, i) => (i % 2 ? h.store : other).append(msg("alice", `n${i + 1}`, "room:n"))),
        );
        assert.deepEqual(
          results.map((r) => r.message.seq).sort((a, b) => a - b),
          Array.from({ length: 40 }, (_, i) => i + 2),
        );
        await until(
          "both see the head",
          async () => (await other.head("room:n")) === 41 && (await h.store.head("room:n")) === 41,
        );
        const { messages } = await other.read("room:n", 0, 100);
        assert.deepEqual(
          messages.map((m) => m.seq),
          Array.from({ length: 41 }, (_, i) => i + 1),
        );
      } finally {
        await other.close();
      }
    });

    it("says how many bytes it takes on disk, more once it holds more", async () => {
      const { store } = await open();
      const before = await store.diskBytes();
      // Random, so that a store that compresses (PostgreSQL's TOAST) still holds every byte.
      const payload = () => randomBytes(1500).toString("base64");
      await Promise.all(
        Array.from({ length: 200 }, (_, i) => store.append(msg("alice", `b${i}`, "room:b", payload()))),
      );
      assert.ok((await store.diskBytes()) > before + 200 * 2000 * 0.9, "at least the payloads");
    });

    it("dedups per publisher: the same (from, id) returns the first copy, on any topic", async () => {
      const { store } = await open();
      const first = await store.append(msg("alice", "x1", "room:a", "one"));
      const again = await store.append(msg("alice", "x1", "room:b", "two"));
      const other = await store.append(msg("bob", "x1", "room:a", "three"));
      assert.equal(again.duplicate, true);
      assert.deepEqual([again.message.topic, again.message.seq, again.message.ts], ["room:a", 1, first.message.ts]);
      assert.equal(other.duplicate, false);
      assert.equal(other.message.seq, 2);
      assert.equal(await store.head("room:b"), 0);
      const both = await Promise.all([
        store.append(msg("carol", "y", "room:c")),
        store.append(msg("carol", "y", "room:c")),
      ]);
      assert.deepEqual(
        both.map((r) => [r.message.seq, r.duplicate]),
        [
          [1, false],
          [1, true],
        ],
      );
    });

    it("dedups inside a large batch too: earlier ids, repeats in the batch, several topics", async () => {
      const { store } = await open();
      const seen = await store.append(msg("alice", "seen", "room:d"));
      // 80 appends in one turn, so one transaction, with duplicates scattered in it.
      const plan = Array.from({ length: 80 }, (_, i) => {
        if (i === 40) return msg("alice", "seen", "room:e");
        if (i === 70) return msg("alice", "n10", "room:d");
        return { ...msg("alice", `n${i}`, i % 2 ? "room:d" : "room:e", { i }), key: `k${i % 3}` };
      });
      const results = await Promise.all(plan.map((m) => store.append(m)));
      assert.deepEqual(
        results.flatMap((r, i) => (r.duplicate ? [i] : [])),
        [40, 70],
      );
      assert.equal(results[40]!.message.seq, seen.message.seq);
      assert.deepEqual([results[70]!.message.topic, results[70]!.message.seq], ["room:e", results[10]!.message.seq]);
      for (const topic of ["room:d", "room:e"]) {
        const fresh = results.filter((r) => !r.duplicate && r.message.topic === topic).map((r) => r.message.seq);
        const first = topic === "room:d" ? 2 : 1;
        assert.deepEqual(
          fresh,
          Array.from({ length: fresh.length }, (_, i) => first + i),
          `gapless seqs in ${topic}`,
        );
        const stored = (await store.read(topic, 0, 100)).messages;
        assert.deepEqual(
          stored.filter((m) => m.id !== "seen").map((m) => [m.id, m.seq, m.key, m.payload]),
          results
            .filter((r) => !r.duplicate && r.message.topic === topic)
            .map((r) => [r.message.id, r.message.seq, r.message.key, r.message.payload]),
        );
      }
    });

    it("keeps ts from decreasing along seq when the clock steps back", async () => {
      const h = await open();
      h.setNow(10_000);
      await h.store.append(msg("alice", "t1", "room:t"));
      h.setNow(5_000);
      const second = await h.store.append(msg("alice", "t2", "room:t"));
      assert.equal(second.message.ts, 10_000);
    });

    it("reads forward from a seq and pages history both ways", async () => {
      const { store } = await open();
      for (let i = 1; i <= 10; i++) await store.append({ ...msg("alice", `h${i}`, "room:h", { i }), key: "k" });
      const seqs = (ms: Message[]) => ms.map((m) => m.seq);
      assert.deepEqual(await store.read("room:h", 3, 4).then((r) => [seqs(r.messages), r.head]), [[4, 5, 6, 7], 10]);
      assert.deepEqual(await store.read("room:h", 10, 4), { messages: [], head: 10 }, "the head with nothing after it");
      assert.deepEqual(await store.read("room:none", 0, 4), { messages: [], head: 0 });
      assert.deepEqual(seqs(await store.history("room:h", { limit: 3 })), [8, 9, 10]);
      assert.deepEqual(seqs(await store.history("room:h", { before: 5, limit: 3 })), [2, 3, 4]);
      assert.deepEqual(seqs(await store.history("room:h", { after: 5, limit: 3 })), [6, 7, 8]);
      assert.deepEqual(seqs(await store.history("room:h", { after: 2, before: 6, limit: 10 })), [3, 4, 5]);
      const [m] = (await store.read("room:h", 0, 1)).messages;
      assert.deepEqual(m, { id: "h1", topic: "room:h", seq: 1, from: "alice", ts: m!.ts, key: "k", payload: { i: 1 } });
    });

    it("hands each new message to onDurable once, in seq order, and never a duplicate", async () => {
      const { store } = await open();
      const seen: string[] = [];
      store.onDurable((ms) => seen.push(...ms.map((m) => `${m.topic}#${m.seq}`)));
      await Promise.all([1, 2, 3].map((i) => store.append(msg("alice", `d${i}`, "room:d"))));
      await store.append(msg("alice", "d1", "room:d"));
      // A message after the duplicate: once it is seen, the duplicate's notice would have come.
      await store.append(msg("alice", "d4", "room:d"));
      await until("d4 seen", () => seen.includes("room:d#4"));
      assert.deepEqual(seen, ["room:d#1", "room:d#2", "room:d#3", "room:d#4"]);
    });

    it("hands onDurable each topic's messages in seq order, one call per topic of a commit", async () => {
      const { store } = await open();
      const calls: string[][] = [];
      store.onDurable((ms) => calls.push(ms.map((m) => `${m.topic}#${m.seq}`)));
      await Promise.all(
        [1, 2, 3].flatMap((i) => [
          store.append(msg("alice", `ia${i}`, "room:ia")),
          store.append(msg("alice", `ib${i}`, "room:ib")),
        ]),
      );
      await until("both topics seen", () => calls.flat().length >= 6);
      for (const call of calls) {
        const topics = new Set(call.map((c) => c.split("#")[0]));
        assert.equal(topics.size, 1, `one topic per call: ${call}`);
      }
      for (const topic of ["room:ia", "room:ib"]) {
        assert.deepEqual(
          calls.flat().filter((c) => c.startsWith(`${topic}#`)),
          [1, 2, 3].map((i) => `${topic}#${i}`),
        );
      }
    });

    it("creates, resumes, replays and deletes durable subscriptions", async () => {
      const { store } = await open();
      for (let i = 1; i <= 5; i++) await store.append(msg("bob", `s${i}`, "room:s"));
      assert.deepEqual(await store.subscribe(alice, "room:s"), { head: 5, acked: 5, created: true });
      await store.append(msg("bob", "s6", "room:s"));
      assert.deepEqual(await store.subscribe(alice, "room:s"), { head: 6, acked: 5, created: false });
      await store.ack(alice, "room:s", 6);
      await store.ack(alice, "room:s", 2);
      assert.deepEqual(await store.subscriptions(alice), [{ topic: "room:s", acked: 6 }]);
      assert.deepEqual(await store.subscribe(alice, "room:s", 3), { head: 6, acked: 2, created: false });
      assert.deepEqual(await store.subscribe(alice, "room:s", 100), { head: 6, acked: 6, created: false });
      assert.deepEqual(await store.subscribe(alice, "room:new", 4), { head: 0, acked: 0, created: true });
      await store.unsubscribe(alice, "room:s");
      assert.deepEqual(await store.subscriptions(alice), [{ topic: "room:new", acked: 0 }]);
      assert.deepEqual(await store.subscribe(alice, "room:s"), { head: 6, acked: 6, created: true });
      assert.deepEqual(await store.touchClient(alice, 1), { first: true });
      assert.deepEqual(await store.touchClient(alice, 2), { first: false });
    });

    it("writes the cursors of acks that asked for no reply before any read or change of them", async () => {
      const h = await open();
      for (let i = 1; i <= 3; i++) await h.store.append(msg("bob", `l${i}`, "room:l"));
      await h.store.subscribe(alice, "room:l", 1);
      h.store.ackLater(alice, "room:l", 2);
      h.store.ackLater(alice, "room:l", 1);
      assert.deepEqual(await h.store.subscriptions(alice), [{ topic: "room:l", acked: 2 }]);
      h.store.ackLater(alice, "room:l", 3);
      assert.deepEqual(await h.store.subscribe(alice, "room:l", 2), { head: 3, acked: 1, created: false });
      assert.deepEqual(await h.store.subscriptions(alice), [{ topic: "room:l", acked: 1 }]);
      h.store.ackLater(alice, "room:l", 2);
      // Written within a short while even when nothing else happens.
      await until(
        "the lazy cursor written",
        async () => (await h.store.stats()).subscriptions.find((s) => s.topic === "room:l")?.acked === 2,
        2000,
      );
      h.store.ackLater(alice, "room:l", 3);
      const store = await h.reopen();
      assert.deepEqual(await store.subscriptions(alice), [{ topic: "room:l", acked: 3 }]);
    });

    it("flush writes the acks that asked for no reply at once", async () => {
      const { store } = await open();
      for (let i = 1; i <= 3; i++) await store.append(msg("alice", `f${i}`, "room:f"));
      await store.subscribe(alice, "room:f", 1);
      store.ackLater(alice, "room:f", 2);
      await store.flush();
      // `stats` reads the table as it is, before the lazy writes' own timer has fired.
      const cursors = (await store.stats()).subscriptions.filter((s) => s.topic === "room:f");
      assert.deepEqual(
        cursors.map((s) => s.acked),
        [2],
      );
    });

    it("keeps seqs, publish ids and cursors across a restart", async () => {
      const h = await open();
      await h.store.append(msg("alice", "p1", "room:p"));
      await h.store.append(msg("alice", "p2", "room:p"));
      await h.store.subscribe(alice, "room:p");
      await h.store.ack(alice, "room:p", 1);
      const store = await h.reopen();
      assert.equal(await store.head("room:p"), 2);
      const dup = await store.append(msg("alice", "p1", "room:p"));
      assert.deepEqual([dup.duplicate, dup.message.seq], [true, 1]);
      assert.equal((await store.append(msg("alice", "p3", "room:p"))).message.seq, 3);
      assert.deepEqual(await store.subscriptions(alice), [{ topic: "room:p", acked: 2 }]);
    });

    it("retention removes the oldest messages by count and age but never reuses a seq", async () => {
      const h = await open();
      h.setNow(1_000);
      for (let i = 1; i <= 4; i++) await h.store.append(msg("alice", `r${i}`, "room:r"));
      h.setNow(50_000);
      for (let i = 5; i <= 10; i++) await h.store.append(msg("alice", `r${i}`, "room:r"));
      const byCount = await h.store.sweep({ olderThan: 0, maxMessages: 8, live: () => false });
      assert.equal(byCount.messages, 2);
      assert.deepEqual(
        (await h.store.read("room:r", 0, 100)).messages.map((m) => m.seq),
        [3, 4, 5, 6, 7, 8, 9, 10],
      );
      await h.store.sweep({ olderThan: 10_000, maxMessages: 100, live: () => false });
      assert.deepEqual(
        (await h.store.read("room:r", 0, 100)).messages.map((m) => m.seq),
        [5, 6, 7, 8, 9, 10],
      );
      await h.store.sweep({ olderThan: 60_000, maxMessages: 100, live: () => false });
      assert.deepEqual((await h.store.read("room:r", 0, 100)).messages, []);
      assert.equal(await h.store.head("room:r"), 10);
      // Publish ids expired with the sweep: the id is free again, and the seq goes on.
      const store = await h.reopen();
      const next = await store.append(msg("alice", "r1", "room:r"));
      assert.deepEqual([next.duplicate, next.message.seq], [false, 11]);
    });

    it("a publish id outlives its message removed by count, until the age limit", async () => {
      const h = await open();
      h.setNow(1_000);
      for (let i = 1; i <= 5; i++) await h.store.append(msg("alice", `k${i}`, "room:k"));
      assert.equal((await h.store.sweep({ olderThan: 0, maxMessages: 2, live: () => false })).messages, 3);
      // Readers see only what is kept; the sweep counts each message once.
      assert.deepEqual(
        (await h.store.read("room:k", 0, 100)).messages.map((m) => m.seq),
        [4, 5],
      );
      assert.deepEqual(
        (await h.store.history("room:k", { limit: 100 })).map((m) => m.seq),
        [4, 5],
      );
      assert.deepEqual(
        (await h.store.history("room:k", { after: 0, limit: 1 })).map((m) => m.seq),
        [4],
      );
      assert.equal((await h.store.sweep({ olderThan: 0, maxMessages: 2, live: () => false })).messages, 0);
      assert.equal(await h.store.published("alice", "k2"), undefined, "a tombstone is no message");
      assert.equal((await h.store.published("alice", "k4"))?.seq, 4);
      // A retry of a removed message is still a duplicate, answered with its seq and ts.
      const store = await h.reopen();
      const retry = await store.append(msg("alice", "k2", "room:k"));
      assert.deepEqual(
        [retry.duplicate, retry.message.seq, retry.message.ts, retry.message.payload],
        [true, 2, 1_000, null],
      );
      assert.equal(await store.head("room:k"), 5);
      // Once aged out, the id is free: the same publish is a new message.
      h.setNow(100_000);
      assert.equal((await store.sweep({ olderThan: 50_000, maxMessages: 2, live: () => false })).messages, 2);
      const again = await store.append(msg("alice", "k2", "room:k"));
      assert.deepEqual([again.duplicate, again.message.seq], [false, 6]);
      assert.deepEqual(
        (await store.read("room:k", 0, 100)).messages.map((m) => [m.seq, m.id]),
        [[6, "k2"]],
      );
    });

    it("retention forgets clients gone longer than the retention, unless they are live", async () => {
      const { store } = await open();
      const bob = { user: "bob", clientId: "b1" };
      await store.touchClient(alice, 1_000);
      await store.touchClient(bob, 1_000);
      await store.subscribe(alice, "room:c");
      await store.subscribe(bob, "room:c");
      const swept = await store.sweep({ olderThan: 5_000, maxMessages: 100, live: (c) => c.user === "bob" });
      assert.equal(swept.clients, 1);
      assert.deepEqual(await store.subscriptions(alice), []);
      assert.deepEqual(await store.subscriptions(bob), [{ topic: "room:c", acked: 0 }]);
      assert.deepEqual(await store.touchClient(alice, 6_000), { first: true });
    });

    it("creates a group at the head or at from, once, and lists its memberships", async () => {
      const { store } = await open();
      const bob = { user: "bob", clientId: "b1" };
      for (let i = 0; i < 4; i++) await store.append(msg("alice", `g${i}`, "room:g"));
      const first = await store.joinGroup(alice, "room:g", "w", 2);
      assert.deepEqual(first, {
        head: 4,
        created: true,
        progress: { acked: 1, done: [], attempts: [], retried: [], delivered: 0 },
      });
      const second = await store.joinGroup(bob, "room:g", "w", 1);
      assert.deepEqual(second, {
        head: 4,
        created: false,
        progress: { acked: 1, done: [], attempts: [], retried: [], delivered: 0 },
      });
      assert.deepEqual((await store.joinGroup(bob, "room:g", "fresh")).progress.acked, 4);
      await store.subscribe(alice, "room:g");
      assert.deepEqual(await store.subscriptions(alice), [
        { topic: "room:g", acked: 4 },
        { topic: "room:g", acked: 1, group: "w" },
      ]);
      assert.deepEqual(
        (await store.groups()).map((g) => [g.topic, g.group, g.members]),
        [
          ["room:g", "fresh", 1],
          ["room:g", "w", 2],
        ],
      );
      // The group ends with its last member; joining again makes a new one at the head.
      assert.deepEqual(await store.leaveGroup(alice, "room:g", "w"), { ended: false });
      assert.deepEqual(await store.leaveGroup(bob, "room:g", "w"), { ended: true });
      assert.deepEqual(await store.leaveGroup(bob, "room:g", "w"), { ended: false });
      assert.equal((await store.joinGroup(bob, "room:g", "w", 1)).created, true);
    });

    it("writes a group's progress as its source gives it at commit time, and keeps it", async () => {
      const h = await open();
      await h.store.joinGroup(alice, "room:p", "w");
      let progress: GroupProgress = { acked: 0, done: [], attempts: [], retried: [], delivered: 0 };
      const source = () => progress;
      const saved = h.store.saveGroup("room:p", "w", source);
      progress = { acked: 2, done: [[4, 6]], attempts: [[3, 2]], retried: [1], delivered: 6 };
      await saved;
      const store = await h.reopen();
      assert.deepEqual((await store.groups())[0]!.progress, {
        acked: 2,
        done: [[4, 6]],
        attempts: [[3, 2]],
        retried: [1],
        delivered: 6,
      });
      // A lazy save is written before anything reads memberships.
      progress = { acked: 7, done: [], attempts: [], retried: [], delivered: 0 };
      store.saveGroupLater("room:p", "w", source);
      assert.deepEqual(await store.subscriptions(alice), [{ topic: "room:p", acked: 7, group: "w" }]);
    });

    it("stores dead letters under their original id and publisher, any number of times", async () => {
      const h = await open();
      const { message: original } = await h.store.append(msg("alice", "d1", "room:d"));
      await h.store.joinGroup(alice, "room:d", "w", 1);
      const progress: GroupProgress = { acked: 1, done: [], attempts: [], retried: [], delivered: 0 };
      const group = { topic: "room:d", group: "w", progress: () => progress };
      const dead = await h.store.deadLetter(msg("alice", "d1", "dead:room:d:w", original.payload), group);
      const again = await h.store.deadLetter(msg("alice", "d1", "dead:room:d:w", original.payload), group);
      assert.deepEqual([dead.seq, dead.id, dead.from, again.seq], [1, "d1", "alice", 2]);
      // The original id is still deduplicated against the original message only.
      const retry = await h.store.append(msg("alice", "d1", "room:d"));
      assert.deepEqual([retry.duplicate, retry.message.topic, retry.message.seq], [true, "room:d", 1]);
      assert.deepEqual(await h.store.published("alice", "d1"), original);
      assert.equal(await h.store.published("alice", "nope"), undefined);
      const store = await h.reopen();
      assert.equal((await store.groups())[0]!.progress.acked, 1);
      assert.deepEqual(
        (await store.read("dead:room:d:w", 0, 10)).messages.map((m) => [m.seq, m.id]),
        [
          [1, "d1"],
          [2, "d1"],
        ],
      );
    });

    it("keeps half messages apart from the log until committed, and across a restart", async () => {
      const harness = await open();
      let { store } = harness;
      const delivered: Message[] = [];
      store.onDurable((batch) => delivered.push(...batch));
      const half = (id: string, key?: string) => ({
        ...msg("alice", id, "room:t", { half: id }),
        ...(key === undefined ? {} : { key }),
        clientId: "a1",
        preparedAt: 1000,
        checks: 0,
      });
      assert.deepEqual(await store.prepare(half("t1", "k")), { duplicate: false });
      assert.deepEqual(await store.prepare(half("t1")), { duplicate: true }, "pending");
      await store.append(msg("alice", "p1", "room:t"));
      assert.deepEqual(await store.prepare(half("p1")), { duplicate: true }, "published");
      assert.deepEqual(await store.prepare({ ...half("t1"), from: "bob" }), { duplicate: false }, "per publisher");
      await store.prepare(half("t2"));
      assert.equal(await store.head("room:t"), 1, "no seq for a half message");
      await store.countTxnCheck("alice", "t2", 2);

      store = await harness.reopen();
      store.onDurable((batch) => delivered.push(...batch));
      assert.deepEqual(
        (await store.preparedMessages()).map((m) => [
          m.from,
          m.id,
          m.key,
          m.payload,
          m.checks,
          m.clientId,
          m.preparedAt,
        ]),
        [
          ["alice", "t1", "k", { half: "t1" }, 0, "a1", 1000],
          ["alice", "t2", undefined, { half: "t2" }, 2, "a1", 1000],
          ["bob", "t1", undefined, { half: "t1" }, 0, "a1", 1000],
        ],
      );
      const [pending] = await store.preparedMessages();
      assert.deepEqual(await store.pendingTxn("alice", "t1"), pending);
      const { message, duplicate } = await store.commitPrepared(pending!);
      assert.deepEqual([message.seq, message.id, message.key, message.payload], [2, "t1", "k", { half: "t1" }]);
      assert.equal(duplicate, false);
      // Committed already (as by another node): the same message, a duplicate, nothing appended.
      assert.deepEqual(await store.commitPrepared(pending!), { message, duplicate: true });
      assert.equal(await store.pendingTxn("alice", "t1"), undefined, "no longer pending");
      assert.deepEqual(await store.committed("alice", "t1"), message);
      assert.equal(await store.committed("alice", "t2"), undefined, "pending is not committed");
      assert.deepEqual(await store.prepare(half("t1")), { duplicate: true }, "committed");
      const t2 = await store.pendingTxn("alice", "t2");
      assert.equal(await store.rollbackPrepared("alice", "t2"), true);
      assert.equal(await store.rollbackPrepared("alice", "t1"), false, "committed: left as it is");
      await assert.rejects(
        store.commitPrepared(t2!),
        /NOT_FOUND|no prepared transaction/,
        "rolled back: not committed",
      );
      assert.equal(await store.head("room:t"), 2);
      assert.deepEqual(await store.committed("alice", "t1"), message);
      assert.deepEqual(
        (await store.preparedMessages()).map((m) => [m.from, m.id]),
        [["bob", "t1"]],
      );
      assert.deepEqual(await store.prepare(half("t2")), { duplicate: false }, "a rolled-back id is free");
      assert.deepEqual(
        delivered.map((m) => m.id),
        ["p1", "t1"],
      );
    });

    it("retention ends the groups of removed clients with their last member", async () => {
      const { store } = await open();
      const bob = { user: "bob", clientId: "b1" };
      await store.touchClient(alice, 1_000);
      await store.touchClient(bob, 1_000);
      await store.joinGroup(alice, "room:r", "solo");
      await store.joinGroup(alice, "room:r", "shared");
      await store.joinGroup(bob, "room:r", "shared");
      const swept = await store.sweep({ olderThan: 5_000, maxMessages: 100, live: (c) => c.user === "bob" });
      assert.deepEqual(swept.endedGroups, [{ topic: "room:r", group: "solo" }]);
      assert.deepEqual(
        (await store.groups()).map((g) => [g.group, g.members]),
        [["shared", 1]],
      );
    });
  });
}
