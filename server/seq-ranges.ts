/**
 * A set of seqs kept as ascending, disjoint, non-adjacent inclusive ranges: the finished messages
 * of a consumer group above its low-water mark. Members finish out of order, but mostly near each
 * other, so a few ranges hold thousands of seqs, and the group's progress is written as those
 * ranges (a `gap` of a whole removed stretch is one range too).
 */
export type Range = [from: number, to: number];

export class SeqRanges {
  private ranges: Range[] = [];
  private count = 0;

  constructor(ranges: readonly Range[] = []) {
    for (const [from, to] of ranges) this.addRange(from, to);
  }

  /** How many seqs the set holds. */
  get size(): number {
    return this.count;
  }

  has(seq: number): boolean {
    const i = this.find(seq);
    return i < this.ranges.length && this.ranges[i]![0] <= seq;
  }

  add(seq: number): void {
    this.addRange(seq, seq);
  }

  /** Adds from..to (inclusive), merging with the ranges it touches. */
  addRange(from: number, to: number): void {
    if (to < from) return;
    // The first range that ends at or after from - 1 is the first one this may touch.
    const i = this.find(from - 1);
    let j = i;
    let lo = from;
    let hi = to;
    let covered = 0;
    while (j < this.ranges.length && this.ranges[j]![0] <= to + 1) {
      const [a, b] = this.ranges[j]!;
      lo = Math.min(lo, a);
      hi = Math.max(hi, b);
      covered += b - a + 1;
      j++;
    }
    this.count += hi - lo + 1 - covered;
    if (j === i) this.ranges.splice(i, 0, [lo, hi]);
    else if (j === i + 1) this.ranges[i] = [lo, hi];
    else this.ranges.splice(i, j - i, [lo, hi]);
  }

  /**
   * Moves a low-water mark over the set: when the first range starts right above `mark`, it is
   * taken out and the mark moves to its end. Returns the new mark.
   */
  advance(mark: number): number {
    const first = this.ranges[0];
    if (!first || first[0] > mark + 1) return mark;
    this.ranges.shift();
    this.count -= first[1] - first[0] + 1;
    return Math.max(mark, first[1]);
  }

  /** Drops every seq at or below `mark` (a low-water mark moved by other means). */
  dropThrough(mark: number): void {
    while (this.ranges.length > 0 && this.ranges[0]![0] <= mark) {
      const [a, b] = this.ranges[0]!;
      if (b <= mark) {
        this.ranges.shift();
        this.count -= b - a + 1;
      } else {
        this.ranges[0] = [mark + 1, b];
        this.count -= mark + 1 - a;
      }
    }
  }

  toJSON(): Range[] {
    return this.ranges.map(([a, b]) => [a, b]);
  }

  /** The index of the first range that ends at or after `seq`. */
  private find(seq: number): number {
    let lo = 0;
    let hi = this.ranges.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ranges[mid]![1] < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
