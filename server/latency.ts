/**
 * Latency histograms of the publish path (PROTOCOL.md "Running": `/metrics`), one series per stage.
 *
 * Hand-written rather than prom-client's Histogram, which stays for everything observed once per
 * batch or per event of its own: prom-client's `observe` costs about 0.2 µs (label hashing and a
 * scan of the bounds), and these are observed per message, several times, at up to a few hundred
 * thousand messages a second, where that was several percent of a core. Here an observation is one
 * `Math.log2` and an increment, and a batch's shared stages are one weighted observation. The
 * bounds grow by √2 from 10 µs to about 10 s, so a percentile read from the buckets (the bench does)
 * is within a few percent. What the registry gets is prom-client's own histogram shape.
 */
import type { MetricValueWithName, Registry } from "prom-client";

const MIN = 1e-5;
const STEPS = 40;
/** Upper bounds in seconds: MIN·√2^i. */
const BOUNDS = Array.from({ length: STEPS + 1 }, (_, i) => MIN * Math.SQRT2 ** i);

/** One stage's counts: bucket i holds the observations in (BOUNDS[i-1], BOUNDS[i]]; the last one the rest. */
export class Latency {
  private readonly counts = new Float64Array(BOUNDS.length + 1);
  private sum = 0;
  private count = 0;

  /** `n` observations of `seconds` (a batch whose messages shared the stage). */
  observe(seconds: number, n = 1): void {
    const i = seconds <= MIN ? 0 : Math.min(BOUNDS.length, Math.ceil(2 * Math.log2(seconds / MIN) - 1e-9));
    this.counts[i]! += n;
    this.sum += seconds * n;
    this.count += n;
  }

  /** Cumulative counts per bound, as Prometheus has them. */
  values(metric: string, labels: Record<string, string>): MetricValueWithName<string>[] {
    const out: MetricValueWithName<string>[] = [];
    let cumulative = 0;
    for (let i = 0; i < BOUNDS.length; i++) {
      cumulative += this.counts[i]!;
      out.push({
        metricName: `${metric}_bucket`,
        labels: { ...labels, le: Number(BOUNDS[i]!.toPrecision(3)) },
        value: cumulative,
      });
    }
    out.push({ metricName: `${metric}_bucket`, labels: { ...labels, le: "+Inf" }, value: this.count });
    out.push({ metricName: `${metric}_sum`, labels, value: this.sum });
    out.push({ metricName: `${metric}_count`, labels, value: this.count });
    return out;
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

/** A histogram metric with one `Latency` per value of one label (or one without a label), registered with prom-client. */
export class StageHistogram<S extends string> {
  readonly type = "histogram";
  readonly aggregator = "sum";
  private readonly stages: Record<S, Latency>;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly label: string | undefined,
    names: readonly S[],
    registry: Registry,
  ) {
    this.stages = Object.fromEntries(names.map((s) => [s, new Latency()])) as Record<S, Latency>;
    registry.registerMetric(this as never);
  }

  /** The stage's histogram, to keep on the hot path (no lookup per observation). */
  stage(name: S): Latency {
    return this.stages[name];
  }

  /** What prom-client's registry reads of a metric (its own histograms answer the same shape). */
  async get(): Promise<{
    name: string;
    help: string;
    type: "histogram";
    aggregator: "sum";
    values: MetricValueWithName<string>[];
  }> {
    const values = Object.entries<Latency>(this.stages).flatMap(([stage, l]) =>
      l.values(this.name, this.label === undefined ? {} : { [this.label]: stage }),
    );
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    for (const l of Object.values<Latency>(this.stages)) l.reset();
  }
}
