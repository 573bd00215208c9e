/**
 * Reading Prometheus text (what `/metrics` answers) back: a metric's sum, and a histogram's
 * quantile between two scrapes as PromQL's histogram_quantile computes it. Used by `herald top`,
 * the operator's page (`/admin`) and the bench's trace, all of which poll `/metrics`.
 */

/** Cumulative bucket counts of one series in a /metrics text: [upper bound, count][]. */
function buckets(text: string, series: string): [number, number][] {
  const [name, labels] = series.split("{") as [string, string];
  const out: [number, number][] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}_bucket{`) || !line.includes(labels)) continue;
    const le = /le="([^"]+)"/.exec(line)![1]!;
    out.push([le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le), Number(line.slice(line.lastIndexOf(" ") + 1))]);
  }
  return out;
}

/**
 * The q-quantile of a histogram's observations between two scrapes of /metrics, interpolated within
 * its bucket as PromQL's histogram_quantile does. `series` is `name{label="value"` (or `name{`).
 */
export function histogramQuantile(before: string, after: string, series: string, q: number): number | undefined {
  const a = buckets(before, series);
  const b = buckets(after, series);
  const delta = b.map(([le, n], i) => [le, n - (a[i]?.[1] ?? 0)] as [number, number]);
  const total = delta[delta.length - 1]?.[1] ?? 0;
  if (total === 0) return undefined;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, n] of delta) {
    if (n >= rank) {
      if (!Number.isFinite(le)) return lower;
      return lower + ((le - lower) * (rank - below)) / Math.max(1, n - below);
    }
    lower = le;
    below = n;
  }
  return lower;
}

/** The sum of a metric's samples in a /metrics text (every label set), 0 when absent. */
export function metricSum(text: string, name: string): number {
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name) || (line[name.length] !== " " && line[name.length] !== "{")) continue;
    total += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return total;
}
