/** SeqRanges, the finished seqs of a consumer group above its low-water mark, against a plain Set. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SeqRanges } from "../server/seq-ranges.js";

describe("seq ranges", () => {
  it("merges adjacent and overlapping ranges and counts each seq once", () => {
    const r = new SeqRanges();
    r.add(5);
    r.add(7);
    r.add(6);
    r.addRange(10, 12);
    r.addRange(11, 20);
    r.add(9);
    assert.deepEqual(r.toJSON(), [
      [5, 7],
      [9, 20],
    ]);
    assert.equal(r.size, 15);
    assert.equal(r.has(8), false);
    assert.equal(r.has(9), true);
  });

  it("moves a low-water mark only over the range right above it", () => {
    const r = new SeqRanges([
      [3, 4],
      [6, 6],
    ]);
    assert.equal(r.advance(1), 1);
    r.add(2);
    assert.equal(r.advance(1), 4);
    assert.deepEqual(r.toJSON(), [[6, 6]]);
    r.dropThrough(6);
    assert.equal(r.size, 0);
  });

  it("agrees with a Set on random adds, advances and drops", () => {
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const r = new SeqRanges();
    const set = new Set<number>();
    let mark = 0;
    for (let step = 0; step < 5000; step++) {
      const op = rand(10);
      if (op < 7) {
        const from = mark + 1 + rand(60);
        const to = from + (op === 0 ? rand(5) : 0);
        r.addRange(from, to);
        for (let s = from; s <= to; s++) set.add(s);
      } else if (op < 9) {
        const next = r.advance(mark);
        while (set.has(mark + 1)) set.delete(++mark);
        assert.equal(next, mark);
      } else {
        mark += rand(5);
        r.dropThrough(mark);
        for (const s of set) if (s <= mark) set.delete(s);
      }
      assert.equal(r.size, set.size);
    }
    const flat = r.toJSON().flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, i) => a + i));
    assert.deepEqual(
      flat,
      [...set].sort((a, b) => a - b),
    );
  });
});
