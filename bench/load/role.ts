/** What every load role implements, and the bits they share: payloads and latency histograms. */
import * as hdr from "hdr-histogram-js";

export interface Role {
  /** Connects and subscribes; load starts only with go(). */
  setup(): Promise<unknown>;
  go(): void;
  /** What this role counts (acked publishes, deliveries, connections, calls). */
  count(): number;
  /** Called when the coordinator marks the start of the measured window. */
  mark?(): void;
  /** Stops the load, closes connections, and reports. */
  stop(): Promise<Record<string, unknown>>;
}

/** How a publisher sends: a window of publishes per connection, or a fixed rate over them all. */
export interface Pace {
  /** Publishes outstanding per connection (windowed mode). */
  inflight: number;
  /** Fixed rate in msg/s over all connections instead of a window (latency mode). */
  rate?: number;
  /** Stop after this many publishes from this process (bounds the run in count). */
  limit?: number;
  /** Time each answered call from its send (W4's store alone, W9's requests): reported as `latency` at stop. */
  timed?: boolean;
}

/**
 * The publishing role of every system: the window or the pacing, the counts, and the bounded wait
 * for the acks in flight at the end. A subclass connects and sends one publish (or whatever call
 * is counted: a request in W9, a prepare and its commit in W10).
 */
export abstract class Publisher<C> implements Role {
  protected conns: C[] = [];
  private acked = 0;
  private sent = 0;
  private errors = 0;
  private firstError: string | undefined;
  private stopped = false;
  private pacer: NodeJS.Timeout | undefined;
  private readonly limit: number;
  private readonly lat = new Latency();

  constructor(private readonly pace: Pace) {
    this.limit = pace.limit ?? Number.POSITIVE_INFINITY;
  }

  abstract setup(): Promise<unknown>;
  /** Sends publish number `n` on `conn` and calls `answered` once the system acks or refuses it. */
  protected abstract publish(conn: C, n: number, answered: (error?: string) => void): void;
  protected abstract close(): Promise<void>;

  private send(conn: C, windowed: boolean): void {
    if (this.stopped || this.sent >= this.limit) return;
    const t = this.pace.timed ? performance.now() : 0;
    this.publish(conn, this.sent++, (error) => {
      if (error === undefined) {
        this.acked++;
        if (this.pace.timed) this.lat.record(performance.now() - t);
      } else {
        this.errors++;
        this.firstError ??= error;
      }
      if (windowed) this.send(conn, true);
    });
  }

  go() {
    if (this.pace.rate === undefined) {
      for (const c of this.conns) for (let i = 0; i < this.pace.inflight; i++) this.send(c, true);
      return;
    }
    const rate = this.pace.rate;
    const start = performance.now();
    let k = 0;
    this.pacer = setInterval(() => {
      const due = Math.floor(((performance.now() - start) * rate) / 1000) - this.sent;
      for (let i = 0; i < due && !this.stopped; i++) this.send(this.conns[k++ % this.conns.length]!, false);
    }, 1);
  }

  count() {
    return this.acked;
  }

  mark() {
    this.lat.reset();
  }

  async stop() {
    this.stopped = true;
    if (this.pacer) clearInterval(this.pacer);
    // Let the acks in flight come back (bounded), then close.
    const deadline = performance.now() + 3000;
    while (this.acked + this.errors < this.sent && performance.now() < deadline) await sleep(20);
    await this.close();
    return {
      sent: this.sent,
      acked: this.acked,
      errors: this.errors,
      firstError: this.firstError,
      ...(this.pace.timed ? { latency: this.lat.summary() } : {}),
    };
  }
}

/**
 * Subscribers of every system: they count what they receive and may record its latency. As the
 * members of a group (W7) they count the distinct messages they processed instead.
 */
export abstract class Subscriber implements Role {
  protected received = 0;
  readonly lat = new Latency();
  protected processed: Processed | undefined;

  abstract setup(): Promise<unknown>;
  abstract stop(): Promise<Record<string, unknown>>;

  go() {}
  count() {
    return this.processed?.distinct ?? this.received;
  }
  mark() {
    this.lat.reset();
  }
}

/** What a group's members in one load process processed, as they report it at stop. */
export interface ProcessedReport {
  distinct: number;
  /** Deliveries of a message this process had processed already. */
  again: number;
  /** Deliveries the system marked as redeliveries (Herald `attempt` >= 2, JetStream, MQTT DUP). */
  flagged: number;
  /** Deliveries numbered outside 1..total (none expected). */
  outside: number;
  /** When the last new message came (clock()), the end of the drain. */
  lastAt: number;
  /** Base64 of one byte per number 0..total, 1 where processed: the coordinator ORs the processes. */
  seen: string;
}

/**
 * W7: which of the messages numbered 1..total (Herald and JetStream: the seq; MQTT: the number
 * the publisher wrote in front of the payload) a group's members processed. A redelivered message
 * counts once, and the coordinator can check that none is missing, also across load processes.
 */
export class Processed {
  distinct = 0;
  private readonly seen: Uint8Array;
  private again = 0;
  private flagged = 0;
  private outside = 0;
  private lastAt = 0;

  constructor(private readonly total: number) {
    this.seen = new Uint8Array(total + 1);
  }

  add(n: number, redelivery: boolean): void {
    if (redelivery) this.flagged++;
    if (!(n >= 1 && n <= this.total)) this.outside++;
    else if (this.seen[n] === 1) this.again++;
    else {
      this.seen[n] = 1;
      this.distinct++;
      this.lastAt = clock();
    }
  }

  report(): ProcessedReport {
    const { distinct, again, flagged, outside, lastAt } = this;
    return { distinct, again, flagged, outside, lastAt, seen: Buffer.from(this.seen).toString("base64") };
  }
}

/**
 * W4's role for every system: one paced publisher and one subscriber in the same process, so both
 * read the same clock. The subscriber's count and latency are the figures.
 */
export class LatencyPair implements Role {
  constructor(
    private readonly sub: Role,
    private readonly pub: Role,
  ) {}
  async setup() {
    await this.sub.setup();
    await this.pub.setup();
    return {};
  }
  go() {
    this.pub.go();
  }
  count() {
    return this.sub.count();
  }
  mark() {
    this.sub.mark?.();
  }
  async stop() {
    const pub = await this.pub.stop();
    return { ...(await this.sub.stop()), pub };
  }
}

export const PAYLOAD_BYTES = 200;

/** A JSON string payload of exactly PAYLOAD_BYTES bytes once JSON-encoded (the quotes count). */
export function jsonPayload(stamp?: number): string {
  const head = stamp === undefined ? "" : `${stamp.toFixed(3)}:`;
  return head + "x".repeat(PAYLOAD_BYTES - 2 - head.length);
}

/** A binary payload of PAYLOAD_BYTES bytes (MQTT, NATS), with an optional time stamp in front. */
export function binaryPayload(stamp?: number): Buffer {
  return Buffer.from(jsonPayload(stamp).padEnd(PAYLOAD_BYTES, "x").slice(0, PAYLOAD_BYTES));
}

/** The stamp written by jsonPayload/binaryPayload, or NaN. */
export function readStamp(text: string): number {
  const i = text.indexOf(":");
  return i > 0 ? Number(text.slice(0, i)) : Number.NaN;
}

/** A monotonic clock in ms that is the same for every process on this machine. */
export const clock = (): number => performance.timeOrigin + performance.now();

/** Latency percentiles in ms, as the load processes report them. */
export interface LatencySummary {
  n: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

export class Latency {
  private hist = newHist();
  recording = false;

  /** ms */
  record(ms: number): void {
    if (!this.recording) return;
    this.hist.recordValue(Math.max(1, Math.round(ms * 1000)));
  }

  reset(): void {
    this.hist = newHist();
    this.recording = true;
  }

  summary(): LatencySummary {
    const h = this.hist;
    return {
      n: h.totalCount,
      p50: h.getValueAtPercentile(50) / 1000,
      p99: h.getValueAtPercentile(99) / 1000,
      p999: h.getValueAtPercentile(99.9) / 1000,
      max: h.maxValue / 1000,
    };
  }
}

function newHist() {
  return hdr.build({ useWebAssembly: false, lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000 });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * W9's responders stop together with their callers: they keep answering until no request came for
 * `quietMs` (at most `maxMs`), so that what a caller has in flight at its stop is answered, not
 * failed by a responder that left.
 */
export async function whileAsked(count: () => number, quietMs = 50, maxMs = 3000): Promise<void> {
  const deadline = performance.now() + maxMs;
  let last = -1;
  while (count() !== last && performance.now() < deadline) {
    last = count();
    await sleep(quietMs);
  }
}
