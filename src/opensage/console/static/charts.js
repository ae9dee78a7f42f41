/* opensage console charts: small SVG line, objective and scatter charts, no dependencies.
   Each <figure data-chart> holds its data in a <script type="application/json"> child. */
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7ea4",
                  "#57606a"];

  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function ticks(lo, hi, count) {
    if (!(hi > lo)) { hi = lo + 1; lo = lo - 1; }
    const raw = (hi - lo) / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || mag * 10;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
    return out;
  }

  function fmt(v) {
    if (typeof v !== "number") return String(v);
    if (v !== 0 && (Math.abs(v) >= 1e5 || Math.abs(v) < 1e-3)) return v.toExponential(2);
    return +v.toPrecision(4) + "";
  }

  function clock(t) {
    const d = new Date(t * 1000);
    return d.toISOString().slice(11, 19);
  }

  /* series: [{name, points: [[x, y]...], color, dots, dashed}]; opts: {xlabel, ylabel, time} */
  function plot(box, series, opts) {
    box.textContent = "";
    const all = series.flatMap((s) => s.points).filter((p) => typeof p[1] === "number" && isFinite(p[1]));
    if (!all.length) { box.textContent = "No data yet."; return; }
    const width = Math.max(box.clientWidth || 480, 260), height = 220;
    const m = {l: 56, r: 12, t: 10, b: 38};
    const numericX = all.every((p) => typeof p[0] === "number");
    const categories = numericX ? null : [...new Set(all.map((p) => String(p[0])))];
    const xv = (x) => (numericX ? x : categories.indexOf(String(x)));
    let x0 = Math.min(...all.map((p) => xv(p[0]))), x1 = Math.max(...all.map((p) => xv(p[0])));
    let y0 = Math.min(...all.map((p) => p[1])), y1 = Math.max(...all.map((p) => p[1]));
    if (x0 === x1) { x0 -= 1; x1 += 1; }
    if (y0 === y1) { y0 -= Math.abs(y0) * 0.1 || 1; y1 += Math.abs(y1) * 0.1 || 1; }
    const pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad;
    const sx = (x) => m.l + (xv(x) - x0) / (x1 - x0) * (width - m.l - m.r);
    const sy = (y) => height - m.b - (y - y0) / (y1 - y0) * (height - m.t - m.b);
    const svg = el("svg", {viewBox: `0 0 ${width} ${height}`, width: "100%", height: height,
                           focusable: "false", "aria-hidden": "true"}, box);
    for (const t of ticks(y0, y1, 4)) {
      el("line", {x1: m.l, x2: width - m.r, y1: sy(t), y2: sy(t), class: "grid"}, svg);
      el("text", {x: m.l - 6, y: sy(t) + 4, "text-anchor": "end", class: "tick"}, svg).textContent = fmt(t);
    }
    const relative = opts.time && x1 - x0 < 600;  /* a short run: seconds from its first point */
    const origin = x0, count = Math.max(2, Math.floor(width / 110));
    const xt = !numericX ? categories
      : relative ? ticks(0, x1 - x0, count).map((v) => v + origin) : ticks(x0, x1, count);
    for (const t of xt) {
      const x = sx(t);
      if (x < m.l - 1 || x > width - m.r + 1) continue;
      el("line", {x1: x, x2: x, y1: height - m.b, y2: height - m.b + 4, class: "axis"}, svg);
      el("text", {x: x, y: height - m.b + 16, "text-anchor": "middle", class: "tick"}, svg)
        .textContent = relative ? "+" + fmt(t - origin) + " s" : opts.time ? clock(t) : fmt(t);
    }
    el("line", {x1: m.l, x2: width - m.r, y1: height - m.b, y2: height - m.b, class: "axis"}, svg);
    el("line", {x1: m.l, x2: m.l, y1: m.t, y2: height - m.b, class: "axis"}, svg);
    el("text", {x: (width + m.l) / 2, y: height - 4, "text-anchor": "middle", class: "label"}, svg)
      .textContent = relative ? "seconds from " + clock(origin) + " UTC"
        : opts.time ? "time (UTC)" : (opts.xlabel || "");
    series.forEach((s, i) => {
      const color = s.color || COLORS[i % COLORS.length];
      const pts = s.points.filter((p) => typeof p[1] === "number" && isFinite(p[1]));
      if (!s.dotsOnly && pts.length > 1) {
        el("path", {d: pts.map((p, j) => (j ? "L" : "M") + sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1)).join(""),
                    fill: "none", stroke: color, "stroke-width": 2,
                    "stroke-dasharray": s.dashed ? "5 4" : "none"}, svg);
      }
      if (s.dots || s.dotsOnly || pts.length === 1) {
        for (const p of pts) {
          const c = el("circle", {cx: sx(p[0]), cy: sy(p[1]), r: s.best && s.best(p) ? 6 : 3.5,
                                  fill: s.best && s.best(p) ? "#1a7f37" : color}, svg);
          el("title", {}, c).textContent = (s.label ? s.label(p) + ": " : "") + fmt(p[1]);
        }
      }
    });
    if (series.length > 1 || opts.legend) {
      const legend = document.createElement("ul");
      legend.className = "legend";
      series.forEach((s, i) => {
        const li = document.createElement("li");
        const sw = document.createElement("span");
        sw.className = "swatch"; sw.style.background = s.color || COLORS[i % COLORS.length];
        li.append(sw, document.createTextNode(" " + s.name));
        legend.appendChild(li);
      });
      box.appendChild(legend);
    }
  }

  function bestSoFar(points, minimize) {
    let best = null;
    return points.map((p) => {
      if (best === null || (minimize ? p[1] < best : p[1] > best)) best = p[1];
      return [p[0], best];
    });
  }

  function render(fig) {
    const data = JSON.parse(fig.querySelector("script[type='application/json']").textContent);
    const box = fig.querySelector(".plot");
    const kind = fig.dataset.chart;
    if (kind === "line") {
      const series = Object.entries(data).map(([name, points]) => ({name, points}));
      plot(box, series, {time: fig.dataset.xlabel === "time", xlabel: fig.dataset.xlabel});
    } else if (kind === "objective") {
      const best = bestSoFar(data.order, data.minimize);
      const top = best.length ? best[best.length - 1][1] : null;
      plot(box, [
        {name: data.metric + " by job", points: data.order, dots: true, dotsOnly: true,
         label: (p) => data.names[p[0]], best: (p) => p[1] === top},
        {name: "best so far", points: best, color: "#1a7f37", dashed: true},
      ], {xlabel: fig.dataset.xlabel, legend: true});
    }
  }

  function scatter(select) {
    const fig = select.closest("figure");
    const source = document.querySelector("figure[data-chart='objective'] script[type='application/json']");
    const data = JSON.parse(source.textContent);
    const points = data.hp[select.value] || [];
    plot(fig.querySelector(".plot"), [{name: select.value, points, dotsOnly: true}],
         {xlabel: select.value});
  }

  function renderAll(root) {
    (root || document).querySelectorAll("figure[data-chart]").forEach(render);
    (root || document).querySelectorAll("select[data-scatter]").forEach((s) => {
      if (!s.dataset.bound) { s.dataset.bound = "1"; s.addEventListener("change", () => scatter(s)); }
      scatter(s);
    });
  }

  window.opensageCharts = {renderAll};
  /* drawn on the next frame: the page is readable (and DOMContentLoaded ends) first */
  document.addEventListener("DOMContentLoaded", () => requestAnimationFrame(() => renderAll()));
})();
