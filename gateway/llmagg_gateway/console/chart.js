// A stacked bar chart drawn as SVG: one bar per time bucket, one colour per series. No library.
import { el, } from "./dom.js";
import { integer } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
export const COLOURS = ["#3b5bdb", "#f08c00", "#2b8a3e", "#c92a2a", "#7048e8", "#0c8599", "#e64980", "#5c940d"];

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

export const swatch = (colour) => {
  const box = svg("svg", { class: "swatch", viewBox: "0 0 10 10" });
  box.append(svg("rect", { width: 10, height: 10, fill: colour }));
  return box;
};

// buckets: [label]; series: [{name, values: [number per bucket]}].
export function stackedBars(buckets, series, testid) {
  const width = 900, height = 260, left = 50, bottom = 40, top = 10;
  const totals = buckets.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] || 0), 0));
  const max = Math.max(1, ...totals);
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "data-testid": testid });
  const plotHeight = height - top - bottom;
  for (const tick of [0, 0.5, 1]) {
    const y = top + plotHeight * (1 - tick);
    root.append(svg("line", { x1: left, x2: width, y1: y, y2: y, stroke: "#e4e7ec" }));
    root.append(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", "font-size": 11, fill: "#667085" },
      integer(max * tick)));
  }
  const slot = (width - left) / Math.max(1, buckets.length);
  const barWidth = Math.max(2, slot * 0.7);
  buckets.forEach((label, i) => {
    let y = top + plotHeight;
    const x = left + i * slot + (slot - barWidth) / 2;
    series.forEach((s, j) => {
      const value = s.values[i] || 0;
      if (!value) return;
      const h = (value / max) * plotHeight;
      y -= h;
      const rect = svg("rect", { x, y, width: barWidth, height: h, fill: COLOURS[j % COLOURS.length] });
      rect.append(svg("title", {}, `${s.name} · ${label}: ${integer(value)}`));
      root.append(rect);
    });
    const every = Math.ceil(buckets.length / 12);
    if (i % every === 0) {
      root.append(svg("text", { x: x + barWidth / 2, y: height - bottom + 16, "text-anchor": "middle",
        "font-size": 11, fill: "#667085" }, label));
    }
  });
  const legend = el("div", { class: "legend" },
    series.map((s, j) => el("span", {}, swatch(COLOURS[j % COLOURS.length]), s.name || "(none)")));
  return el("div", { class: "chart" }, root, legend);
}
