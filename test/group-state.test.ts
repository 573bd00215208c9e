/**
 * A consumer group's rules alone (server/group-state.ts), with no socket, timer or store: who gets
 * what, in which order, with which attempt, and when a message counts as finished.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GroupState, type Slot } from "../server/group-state.js";
import type { GroupProgress } from "../server/store/store.js";
import type { Message } from "../shared/protocol.js";

interface TestMember extends Slot {
  name: string;
}

const member = (name: string, held = false): TestMember => ({ name, inflight: 0, held });
const fresh: GroupProgress = { acked: 0, done: [], attempts: [], retried: [], delivered: 0 };
const msg = (seq: number, key?: string): Message => ({
  id: `m${seq}`,
  topic: "room:g",
  seq,
  from: "p",
  ts: seq,
  payload: seq,
  ...(key === undefined ? {} : { key }),
});

function group(progress: GroupProgress = fresh, head = 0) {
  const g = new GroupState<TestMember>("room:g", "g", progress, head);
  const feed = (...messages: Message[]) => {
    for (const m of messages) g.queue(m);
    g.head = Math.max(g.head, ...messages.map((m) => m.seq));
    g.next = g.head;
  };
  /** One hand-out as { member: [seq/attempt] }. */
  const handOut = (max = 10, deadline = 1000) => {
    const out: Record<string, string[]> = {};
    for (const [m, batch] of g.handOut(deadline, max)) out[m.name] = batch.map((d) => `${d.seq}/${d.attempt}`);
    return out;
  };
  return { g, feed, handOut };
}

describe("group state", () => {
  it("hands out round robin, each member up to its window, none to a held member", () => {
    const { g, feed, handOut } = group();
    const [a, b, c] = [member("a"), member("b"), member("c", true)];
    g.live.push(a, b, c);
    feed(msg(1), msg(2), msg(3), msg(4), msg(5));
    assert.deepEqual(handOut(2), { a: ["1/1", "3/1"], b: ["2/1", "4/1"] });
    assert.equal(g.buffered, 1, "5 waits for room");
    assert.deepEqual([a.inflight, b.inflight, c.inflight], [2, 2, 0]);
    g.finish(1);
    assert.deepEqual(handOut(2), { a: ["5/1"] });
    assert.equal(g.delivered, 5);
  });

  it("keeps a key's order: the next message of a key waits until the one before is finished", () => {
    const { g, feed, handOut } = group();
    g.live.push(member("a"), member("b"));
    feed(msg(1, "k"), msg(2, "k"), msg(3, "other"));
    assert.deepEqual(handOut(), { a: ["1/1"], b: ["3/1"] });
    assert.equal(g.waitingCount, 1);
    assert.deepEqual(handOut(), {}, "2 waits for 1");
    g.finish(1);
    assert.deepEqual(handOut(), { a: ["2/1"] });
  });

  it("hands a failed lease on to another member, and back to the same one only when no other has room", () => {
    const { g, feed, handOut } = group();
    const [a, b] = [member("a"), member("b")];
    g.live.push(a, b);
    feed(msg(1));
    assert.deepEqual(handOut(1), { a: ["1/1"] });
    assert.equal(g.fail(g.leases.get(1)!, 5), false);
    assert.deepEqual(handOut(1), { b: ["1/2"] }, "to the other member, attempt 2");
    assert.equal(g.fail(g.leases.get(1)!, 5), false);
    feed(msg(2));
    assert.deepEqual(handOut(1), { a: ["1/3"], b: ["2/1"] });
    assert.equal(g.fail(g.leases.get(1)!, 5), false);
    assert.deepEqual(handOut(1), { a: ["1/4"] }, "b is full: back to a, which it failed on");
  });

  it("says when the last attempt failed, so the caller dead-letters it; finishing it keeps its key", () => {
    const { g, feed, handOut } = group();
    g.live.push(member("a"));
    feed(msg(1, "k"), msg(2, "k"));
    for (let attempt = 1; attempt < 3; attempt++) {
      assert.deepEqual(handOut(), { a: [`1/${attempt}`] });
      assert.equal(g.fail(g.leases.get(1)!, 3), false);
    }
    assert.deepEqual(handOut(), { a: ["1/3"] });
    assert.equal(g.fail(g.leases.get(1)!, 3), true, "the third of three");
    g.finish(1, true);
    assert.equal(g.acked, 1);
    assert.deepEqual(handOut(), {}, "2 waits until the dead letter is stored");
    g.release("k", 1);
    assert.deepEqual(handOut(), { a: ["2/1"] });
  });

  it("moves the low-water mark only over finished seqs, and counts the backlog", () => {
    const { g, feed, handOut } = group();
    g.live.push(member("a"));
    feed(msg(1), msg(2), msg(3));
    handOut();
    g.finish(2);
    g.finish(3);
    assert.equal(g.acked, 0);
    assert.equal(g.backlog, 1);
    assert.deepEqual(g.progress().done, [[2, 3]]);
    g.finish(1);
    assert.equal(g.acked, 3);
    assert.equal(g.backlog, 0);
    assert.deepEqual(g.progress(), { acked: 3, done: [], attempts: [], retried: [], delivered: 3 });
  });

  it("after a restart counts deliveries on: seqs handed out before are redeliveries, recorded attempts go on", () => {
    const progress: GroupProgress = { acked: 1, done: [[3, 3]], attempts: [[2, 2]], retried: [], delivered: 4 };
    const { g, feed, handOut } = group(progress, 5);
    g.live.push(member("a"));
    feed(msg(2), msg(3), msg(4), msg(5));
    assert.deepEqual(handOut(), { a: ["2/3", "4/2", "5/1"] }, "3 was finished before the restart");
  });

  it("lets a member ack only what it could have been given, and a retried dead letter only once handed out again", () => {
    const { g, feed, handOut } = group();
    g.live.push(member("a"));
    feed(msg(1), msg(2));
    assert.equal(g.ackable(3), false, "above the head");
    assert.equal(g.ackable(2), true, "unfinished in the log: a delivery before a restart");
    handOut();
    g.finish(1);
    assert.equal(g.ackable(1), false, "finished");
    g.revive(msg(1));
    assert.equal(g.backlog, 2);
    assert.equal(g.ackable(1), false, "retried, not yet handed out");
    assert.deepEqual(handOut(), { a: ["1/1"] }, "first, with its count reset");
    assert.equal(g.ackable(1), true);
    g.finish(1);
    assert.equal(g.revived.size, 0);
    assert.equal(g.acked, 1, "the mark stays where it was");
  });

  it("returns expired leases oldest first, the first deadline, and a leaving member's leases", () => {
    const { g, feed, handOut } = group();
    const [a, b] = [member("a"), member("b")];
    g.live.push(a, b);
    feed(msg(1));
    handOut(10, 100);
    feed(msg(2), msg(3));
    handOut(10, 200);
    assert.equal(g.firstDeadline(), 100);
    assert.deepEqual(
      g.expired(150).map((l) => l.message.seq),
      [1],
    );
    assert.deepEqual(
      g.expired(200).map((l) => l.message.seq),
      [1, 2, 3],
    );
    assert.deepEqual(
      g.remove(b).map((l) => l.message.seq),
      [2],
    );
    assert.deepEqual(g.live, [a]);
    assert.deepEqual(g.remove(b), [], "gone already");
  });

  it("moves past a gap at once, as finished", () => {
    const { g } = group();
    g.skip(1, 4);
    assert.equal(g.acked, 4);
    assert.equal(g.next, 4);
  });
});
