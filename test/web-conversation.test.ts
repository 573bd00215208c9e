import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { conversationKey, conversationPath, parsePath, publishTopic, readTopic } from "../web/src/conversation.js";

describe("web conversations - links and topics", () => {
  it("parses the shareable links /room/NAME, /dm/USER and /announcements", () => {
    assert.deepEqual(parsePath("/room/general"), { kind: "room", name: "general" });
    assert.deepEqual(parsePath("/room/a.b-c_d/"), { kind: "room", name: "a.b-c_d" });
    assert.deepEqual(parsePath("/dm/bob"), { kind: "dm", user: "bob" });
    assert.deepEqual(parsePath("/announcements"), { kind: "announcements" });
  });

  it("refuses names outside the protocol's grammar and unknown paths", () => {
    assert.equal(parsePath("/room/-bad"), undefined);
    assert.equal(parsePath("/room/a%20b"), undefined);
    assert.equal(parsePath("/room/"), undefined);
    assert.equal(parsePath("/admin"), undefined);
    assert.equal(parsePath("/"), undefined);
  });

  it("round-trips a conversation through its path", () => {
    for (const c of [{ kind: "room", name: "x" }, { kind: "dm", user: "y" }, { kind: "announcements" }] as const) {
      assert.deepEqual(parsePath(conversationPath(c)), c);
    }
  });

  it("maps a DM to the other's inbox for writing and my own for reading", () => {
    const dm = { kind: "dm", user: "bob" } as const;
    assert.equal(publishTopic(dm), "user:bob");
    assert.equal(readTopic(dm, "alice"), "user:alice");
    assert.equal(conversationKey(dm), "dm:bob");
    assert.equal(publishTopic({ kind: "announcements" }), "broadcast");
    assert.equal(readTopic({ kind: "room", name: "r" }, "alice"), "room:r");
  });
});
