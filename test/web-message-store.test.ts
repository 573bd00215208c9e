import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type ListItem, MessageStore, payloadText, type StoredMessage } from "../web/src/messageStore.js";

const msg = (seq: number, from = "bob", topic = "room:a", id = `${from}-${seq}`): StoredMessage => ({
  id,
  topic,
  seq,
  from,
  ts: 1000 + seq,
  payload: { text: `m${seq}` },
});
const view = (items: ListItem[]) =>
  items.map((i) => (i.kind === "gap" ? `gap ${i.from}-${i.to}` : `${i.id}#${i.seq ?? "-"}:${i.status}`));

describe("web message store - order and dedup", () => {
  it("keeps messages in seq order whatever order they arrive in", () => {
    const s = new MessageStore();
    s.deliver([msg(3), msg(1)]);
    s.deliver([msg(2)]);
    assert.deepEqual(
      s.items("room:a").map((i) => i.kind === "message" && i.seq),
      [1, 2, 3],
    );
  });

  it("drops a redelivered seq and reports only fresh messages", () => {
    const s = new MessageStore();
    assert.equal(s.deliver([msg(1), msg(2)]).length, 2);
    const fresh = s.deliver([msg(2), msg(3), msg(1)]);
    assert.deepEqual(
      fresh.map((m) => m.seq),
      [3],
    );
    assert.equal(s.items("room:a").length, 3);
  });

  it("merges history pages with delivered messages without duplicates", () => {
    const s = new MessageStore();
    s.deliver([msg(50), msg(51)]);
    s.addHistory("room:a", [msg(48), msg(49), msg(50)], { head: 51 });
    s.addHistory("room:a", [msg(46), msg(47)], { complete: false });
    assert.deepEqual(
      s.items("room:a").map((i) => i.kind === "message" && i.seq),
      [46, 47, 48, 49, 50, 51],
    );
    assert.equal(s.oldest("room:a"), 46);
    assert.equal(s.isComplete("room:a"), false);
    s.addHistory("room:a", [], { complete: true });
    assert.equal(s.isComplete("room:a"), true);
  });

  it("treats a log that starts at seq 1 as complete", () => {
    const s = new MessageStore();
    s.addHistory("room:a", [msg(1), msg(2)]);
    assert.equal(s.isComplete("room:a"), true);
  });

  it("keeps topics apart", () => {
    const s = new MessageStore();
    s.deliver([msg(1, "bob", "room:a"), msg(1, "bob", "room:b", "other")]);
    assert.equal(s.items("room:a").length, 1);
    assert.equal(s.items("room:b").length, 1);
  });

  it("returns the same array until something changes (a stable snapshot)", () => {
    const s = new MessageStore();
    s.deliver([msg(1)]);
    const a = s.items("room:a");
    assert.equal(s.items("room:a"), a);
    s.deliver([msg(1)]);
    assert.equal(s.items("room:a"), a, "a duplicate changes nothing");
    s.deliver([msg(2)]);
    assert.notEqual(s.items("room:a"), a);
  });
});

describe("web message store - own messages", () => {
  const own = (id: string, createdAt = 5) => ({
    id,
    topic: "room:a",
    from: "me",
    payload: { text: id },
    createdAt,
  });

  it("shows a pending message at the end, then sent, then the delivered copy under the same key", () => {
    const s = new MessageStore();
    s.deliver([msg(1)]);
    s.addPending(own("x"));
    assert.deepEqual(view(s.items("room:a")), ["bob-1#1:delivered", "x#-:pending"]);
    const key = s.items("room:a")[1]!.key;
    s.markSent("me", "x", { seq: 3, ts: 2000 });
    assert.deepEqual(view(s.items("room:a")), ["bob-1#1:delivered", "x#3:sent"]);
    s.deliver([msg(2)]);
    assert.deepEqual(view(s.items("room:a")), ["bob-1#1:delivered", "bob-2#2:delivered", "x#3:sent"]);
    s.deliver([{ id: "x", topic: "room:a", seq: 3, from: "me", ts: 2000, payload: { text: "x" } }]);
    assert.deepEqual(view(s.items("room:a")), ["bob-1#1:delivered", "bob-2#2:delivered", "x#3:delivered"]);
    assert.equal(s.items("room:a")[2]!.key, key);
    assert.equal(s.ownMessages().length, 0);
  });

  it("merges a delivered copy that comes before the publish reply", () => {
    const s = new MessageStore();
    s.addPending(own("x"));
    s.deliver([{ id: "x", topic: "room:a", seq: 1, from: "me", ts: 2000, payload: { text: "x" } }]);
    s.markSent("me", "x", { seq: 1, ts: 2000 });
    assert.deepEqual(view(s.items("room:a")), ["x#1:delivered"]);
  });

  it("keys own messages by (from, id): another user's id does not merge", () => {
    const s = new MessageStore();
    s.addPending(own("x"));
    s.deliver([{ id: "x", topic: "room:a", seq: 1, from: "mallory", ts: 2000, payload: "spoof" }]);
    assert.deepEqual(view(s.items("room:a")), ["x#1:delivered", "x#-:pending"]);
  });

  it("orders several pending messages by when they were written and ignores a second add", () => {
    const s = new MessageStore();
    s.addPending(own("b", 2));
    s.addPending(own("a", 1));
    s.addPending(own("a", 9));
    assert.deepEqual(view(s.items("room:a")), ["a#-:pending", "b#-:pending"]);
  });

  it("marks a refused publish failed", () => {
    const s = new MessageStore();
    s.addPending(own("x"));
    s.markFailed("me", "x", "FORBIDDEN");
    const [item] = s.items("room:a");
    assert.equal(item?.kind === "message" && item.status, "failed");
    assert.equal(item?.kind === "message" && item.error, "FORBIDDEN");
  });

  it("does not add a pending copy of a message already delivered (outbox after reload)", () => {
    const s = new MessageStore();
    s.deliver([{ id: "x", topic: "room:a", seq: 1, from: "me", ts: 2000, payload: "x" }]);
    s.addPending(own("x"));
    assert.deepEqual(view(s.items("room:a")), ["x#1:delivered"]);
  });
});

describe("web message store - gaps", () => {
  it("shows a gap at its place in seq order and merges overlapping gaps", () => {
    const s = new MessageStore();
    s.deliver([msg(1), msg(9)]);
    s.addGap("room:a", 2, 5);
    s.addGap("room:a", 4, 8);
    assert.deepEqual(view(s.items("room:a")), ["bob-1#1:delivered", "gap 2-8", "bob-9#9:delivered"]);
  });

  it("treats a gap down to seq 1 as the start of the topic", () => {
    const s = new MessageStore();
    s.addGap("room:a", 1, 4);
    s.deliver([msg(5)]);
    assert.equal(s.isComplete("room:a"), true);
    assert.deepEqual(view(s.items("room:a")), ["gap 1-4", "bob-5#5:delivered"]);
  });
});

describe("web message store - direct messages and unread", () => {
  it("merges my inbox and my sent copies by server time", () => {
    const s = new MessageStore();
    s.deliver([
      { id: "b1", topic: "user:alice", seq: 1, from: "bob", ts: 100, payload: "hi" },
      { id: "c1", topic: "user:alice", seq: 2, from: "carol", ts: 150, payload: "not bob" },
      { id: "b2", topic: "user:alice", seq: 3, from: "bob", ts: 300, payload: "?" },
    ]);
    s.addPending({ id: "a1", topic: "user:bob", from: "alice", payload: "hey", createdAt: 1 });
    s.markSent("alice", "a1", { seq: 7, ts: 200 });
    s.addPending({ id: "a2", topic: "user:bob", from: "alice", payload: "later", createdAt: 2 });
    assert.deepEqual(view(s.dmItems("alice", "bob")), [
      "b1#1:delivered",
      "a1#7:sent",
      "b2#3:delivered",
      "a2#-:pending",
    ]);
    assert.deepEqual(view(s.dmItems("alice", "carol")), ["c1#2:delivered"]);
  });

  it("counts unread messages of others after the last read seq", () => {
    const s = new MessageStore();
    s.deliver([msg(1), msg(2, "me"), msg(3), msg(4, "carol")]);
    assert.equal(s.unread("room:a", 0, "me"), 3);
    assert.equal(s.unread("room:a", 3, "me"), 1);
    assert.equal(s.unread("room:a", 0, "me", "carol"), 1);
    assert.equal(s.unread("room:none", 0, "me"), 0);
  });
});

describe("web message store - payload text", () => {
  it("reads { text }, strings and anything else as JSON", () => {
    assert.equal(payloadText({ text: "hi" }), "hi");
    assert.equal(payloadText("plain"), "plain");
    assert.equal(payloadText({ n: 1 }), '{"n":1}');
  });
});
