/** A live time-series chart: uPlot on a canvas, redrawn with each new point, as wide as its card. */
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface ChartSeries {
  label: string;
  color: string;
}

export function Chart({
  title,
  unit,
  series,
  data,
  testId,
}: {
  title: string;
  unit: string;
  series: ChartSeries[];
  /** [unix seconds[], ...one array per series] */
  data: (number | null)[][];
  testId: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);

  // biome-ignore lint/correctness/useExhaustiveDependencies: made once; the data effect below feeds it.
  useEffect(() => {
    const el = box.current!;
    const format = (v: number | null) => (v === null ? "-" : `${compact(v)}${unit ? ` ${unit}` : ""}`);
    plot.current = new uPlot(
      {
        width: Math.max(200, el.clientWidth),
        height: 160,
        legend: { live: false },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true } },
        axes: [
          { stroke: "#8b919c", grid: { stroke: "rgba(139,145,156,0.15)" } },
          {
            stroke: "#8b919c",
            grid: { stroke: "rgba(139,145,156,0.15)" },
            size: 56,
            values: (_u, vs) => vs.map((v) => compact(v)),
          },
        ],
        series: [
          {},
          ...series.map((s) => ({
            label: s.label,
            stroke: s.color,
            width: 2,
            value: (_u: uPlot, v: number | null) => format(v),
          })),
        ],
      },
      data as uPlot.AlignedData,
      el,
    );
    const resize = new ResizeObserver(() =>
      plot.current?.setSize({ width: Math.max(200, el.clientWidth), height: 160 }),
    );
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = undefined;
    };
  }, []);

  useEffect(() => {
    plot.current?.setData(data as uPlot.AlignedData);
  }, [data]);

  const last = data[1]?.length ?? 0;
  return (
    <section className="admin-card chart" data-testid={testId} data-points={last}>
      <h2>
        {title}
        {unit && <span className="muted"> ({unit})</span>}
      </h2>
      <div ref={box} />
    </section>
  );
}

/** An axis tick or a legend value in a few characters: 0.25, 12, 3.4k, 1.2M. */
function compact(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${Math.round(v / 1e3)}k`;
  if (a >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  if (a >= 10 || v === 0) return String(Math.round(v));
  return v.toFixed(a >= 1 ? 1 : 2);
}
