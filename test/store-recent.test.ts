import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RecentMessages } from "../server/store/recent.js";
import type { Message } from "../shared/protocol.js";

const msg = (topic: string, seq: number): Message => ({ id: `m${seq}`, topic, seq, from: "u", ts: seq, payload: seq });
const seqs = (ms: Message[] | undefined) => ms?.map((m) => m.seq);

describe("store - recent messages in memory", () => {
  it("serves reads it holds completely and declines the rest", () => {
    const recent = new RecentMessages();
    for (let seq = 5; seq <= 10; seq++) recent.add(msg("room:a", seq), 10);
    assert.deepEqual(seqs(recent.read("room:a", 4, 10, 100)), [5, 6, 7, 8, 9, 10]);
    assert.deepEqual(seqs(recent.read("room:a", 6, 10, 2)), [7, 8]);
    assert.deepEqual(seqs(recent.read("room:a", 6, 8, 100)), [7, 8]);
    assert.deepEqual(seqs(recent.read("room:a", 10, 10, 100)), []);
    assert.equal(recent.read("room:a", 3, 10, 100), undefined, "seq 4 is not held: SQLite must answer");
    assert.equal(recent.read("room:b", 0, 10, 100), undefined);
  });

  it("evicts the oldest messages of the quietest topic past its byte budget", () => {
    const recent = new RecentMessages(10 * 170);
    for (let seq = 1; seq <= 5; seq++) recent.add(msg("room:quiet", seq), 10);
    for (let seq = 1; seq <= 7; seq++) recent.add(msg("room:busy", seq), 10);
    assert.equal(recent.read("room:quiet", 0, 5, 100), undefined);
    assert.deepEqual(seqs(recent.read("room:quiet", 2, 5, 100)), [3, 4, 5]);
    assert.deepEqual(seqs(recent.read("room:busy", 0, 7, 100)), [1, 2, 3, 4, 5, 6, 7]);
  });

  it("forgets what retention removed and restarts on a break in seqs", () => {
    const recent = new RecentMessages();
    for (let seq = 1; seq <= 6; seq++) recent.add(msg("room:a", seq), 10);
    recent.forget("room:a", 3);
    assert.equal(recent.read("room:a", 0, 6, 100), undefined);
    assert.deepEqual(seqs(recent.read("room:a", 3, 6, 100)), [4, 5, 6]);
    recent.add(msg("room:a", 9), 10);
    assert.equal(recent.read("room:a", 5, 9, 100), undefined);
    assert.deepEqual(seqs(recent.read("room:a", 8, 9, 100)), [9]);
  });
});
