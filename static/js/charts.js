// Time-series charts on uPlot (served from the app under /vendor).
import uPlot from "/vendor/uplot.js";

const COLORS = ["#4fa3ff", "#3ecf8e", "#f5b74e", "#ff6b6b", "#b48cff", "#5fd3e6"];

/** A value on an axis or in a legend: at most 3 significant digits, thousands grouped. */
export function fmtValue(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  return Number(v).toLocaleString("en-US", { maximumSignificantDigits: 3 });
}

/** Seconds as they read best: 41 µs, 1.2 ms, 3.4 s, 2 min, 1.5 h. */
export function fmtSeconds(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  const a = Math.abs(v);
  if (a === 0) return "0";
  if (a < 1e-3) return `${fmtValue(v * 1e6)} µs`;
  if (a < 1) return `${fmtValue(v * 1e3)} ms`;
  if (a < 120) return `${fmtValue(v)} s`;
  if (a < 7200) return `${fmtValue(v / 60)} min`;
  return `${fmtValue(v / 3600)} h`;
}

/** An axis as wide as its longest tick label (uPlot's axis `size` callback). */
function fitLabels(self, values, axisIdx, cycleNum) {
  const axis = self.axes[axisIdx];
  // After the first cycles the size is settled: keep it, so the layout converges.
  if (cycleNum > 1) return axis._size;
  let size = axis.ticks.size + axis.gap;
  const longest = (values ?? []).reduce(
    (a, v) => (String(v).length > a.length ? String(v) : a),
    "",
  );
  if (longest) {
    self.ctx.font = axis.font[0];
    size += self.ctx.measureText(longest).width / devicePixelRatio;
  }
  return Math.ceil(size) + 4;
}

/**
 * A live line chart: `push(tsSeconds, [v1, v2, ...])` appends a point, `set(xs, ...ys)` replaces
 * the data. `series` are labels; values read with `format` (default: 3 significant digits and
 * `unit`). `right: { series, format }` puts those series on a second axis on the right, with
 * their own scale (a bitrate beside frame rates). Each y axis is as wide as its labels.
 */
export function lineChart(
  container,
  { title, series, unit = "", maxPoints = 3600, format, right },
) {
  const data = [[], ...series.map(() => [])];
  const width = () => Math.max(300, container.clientWidth - 4);
  const left = format ?? ((v) => `${fmtValue(v)}${unit}`);
  const onRight = new Set(right?.series ?? []);
  const rightFormat = right?.format ?? fmtValue;
  const formatOf = (label) => (onRight.has(label) ? rightFormat : left);
  const yAxis = (scale, fmt, side) => ({
    scale,
    side,
    stroke: "#93a0b0",
    grid: { stroke: "#2b3440", show: side === 3 },
    values: (_u, ticks) => ticks.map(fmt),
    size: fitLabels,
  });
  const plot = new uPlot(
    {
      title,
      width: width(),
      height: 200,
      series: [
        {},
        ...series.map((label, i) => ({
          label,
          scale: onRight.has(label) ? "right" : "y",
          stroke: COLORS[i % COLORS.length],
          width: 1.5,
          value: (_u, v) => (v === null || v === undefined ? "–" : formatOf(label)(v)),
        })),
      ],
      axes: [
        { stroke: "#93a0b0", grid: { stroke: "#2b3440" } },
        yAxis("y", left, 3),
        ...(onRight.size ? [yAxis("right", rightFormat, 1)] : []),
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
