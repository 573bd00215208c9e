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

  summary(): { n: number; p50: number; p99: number; p999: number; max: number } {
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
