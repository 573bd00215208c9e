/**
 * HERALD_RATE_LIMIT: a token bucket of `rate` tokens refilled continuously at `rate` a second, one
 * per connection (one per user over HTTP). `publish`, `prepare`, `commit`, `signal`, `request`,
 * `subscribe`, `history` and `presence` take a token each once they have passed every earlier check,
 * so refused calls take none. The reads count because a read costs the server more than a publish.
 */
import { HeraldError } from "../shared/errors.js";

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly rate: number,
    private readonly now: () => number = performance.now.bind(performance),
  ) {
    this.tokens = rate;
    this.last = this.now();
  }

  /** Takes a token, or throws RATE_LIMITED with the time until the next one. */
  take(): void {
    this.check();
    this.spend();
  }

  /**
   * Throws RATE_LIMITED when there is no token to take, and takes none: a check that comes after
   * this one in the protocol's order (BACKLOG_FULL) must refuse without spending a token. `spend`
   * then takes the token `check` found, in the same turn.
   */
  check(): void {
    const now = this.now();
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.last) * this.rate) / 1000);
    this.last = now;
    if (this.tokens >= 1) return;
    const retryAfterMs = Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.rate));
    throw new HeraldError("RATE_LIMITED", `over ${this.rate} calls a second`, { retryAfterMs });
  }

  spend(): void {
    this.tokens -= 1;
  }

  /** Gives back a token `take` took for a call that was then refused. */
  refund(): void {
    this.tokens = Math.min(this.rate, this.tokens + 1);
  }

  /** True once the bucket is full again, so a per-user map can forget it. */
  idle(): boolean {
    return this.tokens + ((this.now() - this.last) * this.rate) / 1000 >= this.rate;
  }
}
