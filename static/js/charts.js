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
