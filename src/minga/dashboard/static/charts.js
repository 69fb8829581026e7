/* Charts drawn as inline SVG: time series with deploy markers, and the service dependency map. */
(function () {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#2563eb", "#16a34a", "#d97706", "#7c3aed", "#dc2626", "#0891b2"];

  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  function niceStep(range, ticks) {
    const raw = range / Math.max(1, ticks);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const norm = raw / mag;
    return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  }

  function clock(t, seconds) {
    const d = new Date(t * 1000);
    return d.toTimeString().slice(0, seconds ? 8 : 5);
  }

  /* series: [{name, points: [[unixSeconds, value], ...]}]; opts: {format, markers: [{at, text}], window} */
  function lineChart(series, opts) {
    opts = opts || {};
    const W = 560, H = 200, L = 56, R = 12, T = 12, B = 26;
    const fmt = opts.format || ((v) => String(Math.round(v * 100) / 100));
    const all = series.flatMap((s) => s.points);
    if (!all.length) {
      return '<div class="nodata">' + esc(opts.empty || "no samples yet") + "</div>";
    }
    const now = opts.now || Math.max(...all.map((p) => p[0]));
    // a system younger than the window is drawn from its first sample, not squeezed to the right edge
    const first = Math.min(...all.map((p) => p[0]), ...(opts.markers || []).map((m) => m.at).filter((t) => t >= now - (opts.window || Infinity)));
    const t0 = opts.window ? Math.max(now - opts.window, first) : first;
    const t1 = Math.max(now, t0 + 1);
    let vmax = Math.max(...all.map((p) => p[1]), opts.min || 0);
    if (vmax <= 0) vmax = 1;
    const step = niceStep(vmax, 4);
    vmax = Math.ceil(vmax / step) * step;
    const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
    const y = (v) => T + (1 - v / vmax) * (H - T - B);
    let out = `<svg xmlns="${NS}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(opts.label || "chart")}">`;
    for (let v = 0; v <= vmax + step / 2; v += step) {
      out += `<line class="grid" x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}"/>`;
      out += `<text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${esc(fmt(v))}</text>`;
    }
    const span = t1 - t0;
    const tstep = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600].find((s) => span / s <= 6) || 43200;
    for (let t = Math.ceil(t0 / tstep) * tstep; t <= t1; t += tstep) {
      out += `<text x="${x(t)}" y="${H - 8}" text-anchor="middle">${clock(t, tstep < 60)}</text>`;
    }
    out += `<line class="axis" x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}"/>`;
    for (const m of opts.markers || []) {
      if (m.at < t0 || m.at > t1) continue;
      const mx = x(m.at).toFixed(1);
      out += `<g class="deploy-marker"><title>${esc(m.text)} · ${esc(new Date(m.at * 1000).toLocaleTimeString())}</title>`;
      out += `<line class="marker" x1="${mx}" x2="${mx}" y1="${T}" y2="${H - B}"/>`;
      out += `<circle class="marker-dot" cx="${mx}" cy="${T + 3}" r="3.5"/></g>`;
    }
    series.forEach((s, i) => {
      const color = s.color || PALETTE[i % PALETTE.length];
      const pts = s.points.filter((p) => p[0] >= t0).map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`);
      if (!pts.length) return;
      if (series.length === 1) {
        out += `<polygon points="${x(s.points.find((p) => p[0] >= t0)[0]).toFixed(1)},${H - B} ${pts.join(" ")} ${pts[pts.length - 1].split(",")[0]},${H - B}" fill="${color}" opacity="0.08"/>`;
      }
      out += `<polyline points="${pts.join(" ")}" fill="none" stroke="${color}" stroke-width="1.8" stroke-linejoin="round"/>`;
    });
    out += "</svg>";
    if (series.length > 1) {
      out += '<div class="legend">' + series.map((s, i) => `<span style="--c:${s.color || PALETTE[i % PALETTE.length]}">${esc(s.name)}</span>`).join("") + "</div>";
    }
    return out;
  }

  /* graph: {nodes: [names], edges: [{from, to, calls, errors}]}: callers left, callees right. */
  function depMap(graph) {
    const nodes = graph.nodes || [];
    const edges = graph.edges || [];
    if (!nodes.length) return '<div class="nodata">no calls between services recorded yet</div>';
    const depth = {};
    nodes.forEach((n) => (depth[n] = 0));
    for (let round = 0; round < nodes.length; round++) {
      let moved = false;
      for (const e of edges) {
        if (e.from !== e.to && depth[e.to] <= depth[e.from] && depth[e.from] < nodes.length) {
          depth[e.to] = depth[e.from] + 1;
          moved = true;
        }
      }
      if (!moved) break;
    }
    const cols = {};
    nodes.forEach((n) => (cols[depth[n]] = (cols[depth[n]] || []).concat([n])));
    const ncol = Math.max(...Object.keys(cols).map(Number)) + 1;
    const nrow = Math.max(...Object.values(cols).map((c) => c.length));
    const NW = 130, NH = 36, GX = 110, GY = 26;
    const W = ncol * NW + (ncol - 1) * GX + 40, H = nrow * NH + (nrow - 1) * GY + 40;
    const pos = {};
    Object.entries(cols).forEach(([c, names]) => {
      const offset = (H - (names.length * NH + (names.length - 1) * GY)) / 2;
      names.forEach((n, i) => (pos[n] = { x: 20 + Number(c) * (NW + GX), y: offset + i * (NH + GY) }));
    });
    let out = `<svg xmlns="${NS}" viewBox="0 0 ${W} ${H}" style="max-width:${W}px;margin:0 auto" role="img" aria-label="service dependency map">`;
    out += '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#94a3b8"/></marker></defs>';
    for (const e of edges) {
      const a = pos[e.from], b = pos[e.to];
      if (!a || !b) continue;
      const x1 = a.x + NW, y1 = a.y + NH / 2, x2 = b.x, y2 = b.y + NH / 2;
      const mx = (x1 + x2) / 2;
      out += `<path class="edge${e.errors ? " err" : ""}" d="M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2 - 2},${y2}" marker-end="url(#arrow)"/>`;
      const label = `${e.calls} calls` + (e.errors ? ` · ${e.errors} err` : "");
      out += `<text class="elabel" x="${mx}" y="${(y1 + y2) / 2 - 5}" text-anchor="middle">${esc(label)}</text>`;
    }
    for (const n of nodes) {
      const p = pos[n];
      out += `<g class="node" data-service="${esc(n)}"><rect x="${p.x}" y="${p.y}" width="${NW}" height="${NH}" rx="8"/>`;
      out += `<text x="${p.x + NW / 2}" y="${p.y + NH / 2 + 4}" text-anchor="middle">${esc(n)}</text></g>`;
    }
    return out + "</svg>";
  }

  window.MingaCharts = { lineChart, depMap, esc, PALETTE };
})();
