// Time-series charts on uPlot (served from the app under /vendor).
import uPlot from "/vendor/uplot.js";

const COLORS = ["#4fa3ff", "#3ecf8e", "#f5b74e", "#ff6b6b", "#b48cff", "#5fd3e6"];

/**
 * A live line chart: `push(tsSeconds, [v1, v2, ...])` appends a point, `set(xs, ...ys)` replaces
 * the data. `series` are labels; `unit` is appended to axis values.
 */
export function lineChart(container, { title, series, unit = "", maxPoints = 3600 }) {
  const data = [[], ...series.map(() => [])];
  const width = () => Math.max(300, container.clientWidth - 4);
  const plot = new uPlot(
    {
      title,
      width: width(),
      height: 200,
      series: [
        {},
        ...series.map((label, i) => ({
          label,
          stroke: COLORS[i % COLORS.length],
          width: 1.5,
          value: (
            _u,
            v,
          ) => (v === null || v === undefined
            ? "–"
            : `${Number(v).toFixed(v < 10 ? 2 : 0)}${unit}`),
        })),
      ],
      axes: [
        { stroke: "#93a0b0", grid: { stroke: "#2b3440" } },
        {
          stroke: "#93a0b0",
          grid: { stroke: "#2b3440" },
          values: (_u, ticks) => ticks.map((t) => `${t}${unit}`),
          size: 60,
        },
      ],
      scales: { x: { time: true } },
      legend: { live: true },
    },
    data,
    container,
  );
  new ResizeObserver(() => plot.setSize({ width: width(), height: 200 })).observe(container);
  container.classList.add("chart");
  container.dataset.points = "0";
  return {
    plot,
    push(ts, values) {
      data[0].push(ts);
      values.forEach((v, i) => data[i + 1].push(v));
      if (data[0].length > maxPoints) data.forEach((s) => s.shift());
      plot.setData(data);
      container.dataset.points = String(data[0].length);
    },
    set(xs, ...ys) {
      data[0] = xs;
      ys.forEach((y, i) => (data[i + 1] = y));
      plot.setData(data);
      container.dataset.points = String(xs.length);
    },
  };
}

/**
 * Measured points and fitted curves over concurrency: `measured` as [{ label, points: [{ n, y }] }],
 * `curves` as [{ label, f(n), dashed? }] drawn from 0 to `maxN`; `format(y)` labels the y axis.
 */
export function fitChart(container, { title, measured, curves, maxN, format = (v) => v }) {
  const xs = new Set(measured.flatMap((m) => m.points.map((p) => p.n)));
  for (let i = 1; i <= 40; i++) xs.add(Math.round((maxN * i / 40) * 100) / 100);
  const x = [...xs].sort((a, b) => a - b);
  const fmt = (_u, v) => (v === null || v === undefined ? "–" : format(v));
  const data = [
    x,
    ...measured.map((m) => {
      const at = new Map(m.points.map((p) => [p.n, p.y]));
      return x.map((n) => at.get(n) ?? null);
    }),
    ...curves.map((c) => x.map((n) => c.f(n))),
  ];
  const width = () => Math.max(300, container.clientWidth - 4);
  const plot = new uPlot(
    {
      title,
      width: width(),
      height: 220,
      series: [
        { label: "users" },
        ...measured.map((m, i) => ({
          label: m.label,
          stroke: COLORS[(1 + 2 * i) % COLORS.length],
          width: 0,
          points: { show: true, size: 9, fill: COLORS[(1 + 2 * i) % COLORS.length] },
          paths: () => null,
          value: fmt,
        })),
        ...curves.map((c, i) => ({
          label: c.label,
          stroke: COLORS[(i * 2) % COLORS.length],
          width: 1.5,
          dash: c.dashed ? [6, 4] : undefined,
          points: { show: false },
          value: fmt,
        })),
      ],
      axes: [
        { stroke: "#93a0b0", grid: { stroke: "#2b3440" }, label: "concurrent users" },
        {
          stroke: "#93a0b0",
          grid: { stroke: "#2b3440" },
          values: (_u, ticks) => ticks.map((t) => format(t)),
          size: 70,
        },
      ],
      scales: { x: { time: false } },
      legend: { live: true },
    },
    data,
    container,
  );
  new ResizeObserver(() => plot.setSize({ width: width(), height: 220 })).observe(container);
  container.classList.add("chart");
  container.dataset.points = String(measured.reduce((a, m) => a + m.points.length, 0));
  return { plot };
}
