/**
 * Reconnect backoff: capped exponential with full jitter (each delay is uniform in
 * [0, min(cap, base * 2^attempt)]), so that a fleet of clients cut off by one server restart does
 * not come back in lock step.
 */

export interface BackoffOptions {
  /** The ceiling of the first delay. @default 250 */
  baseMs?: number;
  /** No delay is longer than this. @default 10000 */
  capMs?: number;
  /** A source of numbers in [0, 1); tests pass their own. @default Math.random */
  random?: () => number;
}

export const BACKOFF_DEFAULTS = { baseMs: 250, capMs: 10_000 } as const;

/** The delay before retry number `attempt` (0 for the first retry). */
export function backoffDelay(attempt: number, baseMs: number, capMs: number, random: () => number): number {
  // 2^attempt overflows into Infinity long before it matters; min() caps it either way.
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt));
  return Math.floor(random() * ceiling);
}

export class Backoff {
  private attempt = 0;
  private readonly baseMs: number;
  private readonly capMs: number;
  private readonly random: () => number;

  constructor(options: BackoffOptions = {}) {
    this.baseMs = options.baseMs ?? BACKOFF_DEFAULTS.baseMs;
    this.capMs = options.capMs ?? BACKOFF_DEFAULTS.capMs;
    this.random = options.random ?? Math.random;
    if (!(this.baseMs > 0) || !(this.capMs >= this.baseMs)) {
      throw new RangeError("backoff: expected 0 < baseMs <= capMs");
    }
  }

  /** The number of delays handed out since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  /** The next delay; each call doubles the ceiling up to the cap. */
  next(): number {
    return backoffDelay(this.attempt++, this.baseMs, this.capMs, this.random);
  }

  /** After a successful connect the next failure starts again from the base. */
  reset(): void {
    this.attempt = 0;
  }
}
