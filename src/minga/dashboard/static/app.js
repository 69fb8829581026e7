/* The minga dashboard: one page, hash routes, live over Server-Sent Events. No dependencies. */
(function () {
  "use strict";
  const { lineChart, depMap, esc, PALETTE } = window.MingaCharts;
  const $ = (sel) => document.querySelector(sel);
  const view = $("#view");
  const state = { overview: null, route: null, tail: null, lastMetrics: 0, renderToken: 0 };

  // -- helpers -------------------------------------------------------------------------------

  async function api(path) {
    const resp = await fetch(path, { headers: { Accept: "application/json" } });
    if (resp.status === 401) {  // no token, or a stale one: log in once, then come back here
      location.assign("/login?next=" + encodeURIComponent(location.pathname + location.hash));
      throw new Error("log in to see the dashboard");
    }
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(body.error || `${path}: HTTP ${resp.status}`);
    return body;
  }
  const pill = (s) => `<span class="pill ${esc(s)}">${esc(s)}</span>`;
  const lvl = (s) => `<span class="lvl ${esc(s)}">${esc(s)}</span>`;
  function bytes(n) {
    if (n == null) return "—";
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return `${n.toFixed(n >= 100 || i === 0 ? 0 : 1)} ${u[i]}`;
  }
  function dur(s) {
    if (s == null) return "—";
    if (s === 0) return "0";
    if (s < 0.001) return `${(s * 1e6).toFixed(0)} µs`;
    if (s < 1) return `${(s * 1000).toFixed(s < 0.01 ? 2 : 1)} ms`;
    if (s < 120) return `${s.toFixed(2)} s`;
    return `${Math.floor(s / 60)}m ${Math.round(s % 60)}s`;
  }
  const num = (v, d = 1) => (v == null || isNaN(v) ? "—" : Number(v).toFixed(d));
  const time = (iso) => (iso ? new Date(iso).toLocaleTimeString([], { hour12: false }) : "—");
  const datetime = (iso) => (iso ? new Date(iso).toLocaleString([], { hour12: false }) : "—");
  function last(series) { return series && series.length ? series[series.length - 1][1] : null; }
  function card(label, value, cls = "") { return `<div class="card ${cls}"><div class="label">${esc(label)}</div><div class="value">${value}</div></div>`; }
  function panel(title, body, aside = "", attrs = "") {
    return `<div class="panel" ${attrs}><h2>${esc(title)}<span class="aside">${aside}</span></h2>${body}</div>`;
  }
  function setHead(title, crumbs) {
    $("#title").textContent = title;
    $("#crumbs").innerHTML = crumbs || "";
    document.title = `${title} · minga`;
  }
  function highlight(text, needle) {
    const t = esc(text);
    if (!needle) return t;
    // each word on its own: the search matches words, wherever they are in the line
    const words = needle.split(/\s+/).filter(Boolean).map((w) => esc(w).replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
    if (!words.length) return t;
    return t.replace(new RegExp(words.join("|"), "gi"), (m) => `<mark>${m}</mark>`);
  }
  function services() { return (state.overview && state.overview.status.services) || []; }

  // -- live channel ----------------------------------------------------------------------------

  function connect() {
    const es = new EventSource("api/events");
    const conn = $("#conn");
    es.addEventListener("overview", (ev) => {
      state.overview = JSON.parse(ev.data);
      conn.className = "conn live";
      conn.querySelector(".conn-text").textContent = "live";
      $("#updated").textContent = `updated ${new Date().toLocaleTimeString([], { hour12: false })}`;
      renderNav();
      refresh();
    });
    es.onerror = () => {
      conn.className = "conn down";
      conn.querySelector(".conn-text").textContent = "reconnecting";
    };
  }

  function renderNav() {
    const st = state.overview.status;
    $("#system-name").textContent = st.name || "system";
    $("#nav-services").innerHTML = services().map((s) => {
      const h = s.health || (s.healthy ? "passing" : "unknown");  // the server's word, the same as the CLI's
      return `<a href="#/service/${encodeURIComponent(s.name)}" data-page="service:${esc(s.name)}"><span class="dots"><i class="${h}"></i></span>${esc(s.name)}</a>`;
    }).join("");
    markNav();
  }
  function markNav() {
    const r = state.route || { page: "overview" };
    const key = r.page === "service" ? `service:${r.arg}` : r.page;
    document.querySelectorAll(".nav nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === key));
  }

  // -- routes ----------------------------------------------------------------------------------

  function parseRoute() {
    const h = location.hash.replace(/^#\/?/, "");
    const [path, qs] = h.split("?");
    const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
    return { page: parts[0] || "overview", arg: parts[1] || null, params: new URLSearchParams(qs || "") };
  }

  function navigate() {
    if (state.tail) { state.tail.close(); state.tail = null; }
    state.route = parseRoute();
    state.lastMetrics = 0;
    markNav();
    render(true);
  }

  /* a live overview event arrived: redraw what depends on it (pages with their own data refetch at a calmer pace) */
  function refresh() {
    const p = state.route ? state.route.page : "overview";
    if (p === "overview") render(false);
    else if (p !== "logs" && !(p === "traces" && state.route.arg) && Date.now() - state.lastMetrics > 1500) render(false);
  }

  async function render(first) {
    const r = state.route || parseRoute();
    const token = ++state.renderToken;
    try {
      if (!state.overview) state.overview = await api("api/overview");
      if (r.page !== "logs") state.lastMetrics = Date.now();
      const pages = { overview, service, logs, traces, jobs };
      const fn = pages[r.page] || notFound;
      const html = await fn(r, first);
      if (token !== state.renderToken || html == null) return;
      view.innerHTML = html;
      after(r);
    } catch (err) {
      if (token === state.renderToken) view.innerHTML = panel("Error", `<div class="empty">${esc(err.message)}</div>`);
    }
  }

  function after(r) {
    if (r.page === "logs") wireLogs(r);
    view.querySelectorAll("tr[data-href]").forEach((tr) => tr.addEventListener("click", () => (location.hash = tr.dataset.href)));
  }

  async function notFound() {
    setHead("Not found");
    return panel("Not found", `<div class="empty">No such page. <a href="#/">Back to the overview</a>.</div>`);
  }

  // -- overview --------------------------------------------------------------------------------

  async function overview() {
    if (!state.overview) state.overview = await api("api/overview");
    setHead("Overview", esc(state.overview.status.name || ""));
    const svcs = services();
    const insts = svcs.flatMap((s) => s.instances);
    const want = svcs.reduce((n, s) => n + s.replicas, 0);
    const passing = insts.filter((i) => i.health === "passing").length;
    const restarts = insts.reduce((n, i) => n + (i.restarts || 0), 0);
    const alerts = state.overview.alerts || [];
    const firing = alerts.filter((a) => a.state === "firing");
    let html = '<div class="cards">';
    html += card("Services", `${svcs.length}`);
    html += card("Replicas", `${insts.filter((i) => i.pid).length}<small> / ${want}</small>`);
    html += card("Healthy", `${passing}<small> / ${insts.length}</small>`, passing === insts.length && insts.length ? "ok" : "warn");
    html += card("Restarts", `${restarts}`, restarts ? "warn" : "");
    html += card("Alerts firing", `${firing.length}`, firing.length ? "bad" : "ok");
    html += "</div>";
    const alertRows = alerts.map((a) => `<tr><td>${pill(a.state)}</td><td><b>${esc(a.name)}</b></td><td>${esc(a.service || "")}</td><td>${esc(a.summary || "")}</td></tr>`).join("");
    html += panel("Alerts", alerts.length ? `<table id="alerts"><thead><tr><th>State</th><th>Alert</th><th>Service</th><th>Summary</th></tr></thead><tbody>${alertRows}</tbody></table>`
      : '<div class="empty" id="alerts">No alert is firing.</div>', firing.length ? `${firing.length} firing` : "");
    const rows = svcs.map((s) => {
      const running = s.instances.filter((i) => i.pid).length;
      const r = s.instances.reduce((n, i) => n + (i.restarts || 0), 0);
      const loop = s.instances.some((i) => i.crashloop);
      const dots = s.instances.map((i) => `<i class="${esc(i.health)}" title="${esc(i.id)}: ${esc(i.health)}"></i>`).join("");
      const red = (state.overview.summaries || {})[s.name] || {};
      return `<tr class="clickable service-row" data-href="#/service/${encodeURIComponent(s.name)}" data-service="${esc(s.name)}">
        <td><a href="#/service/${encodeURIComponent(s.name)}"><b>${esc(s.name)}</b></a></td>
        <td class="num replicas">${running}/${s.replicas}</td>
        <td class="num rps">${red.rps == null ? "—" : num(red.rps, red.rps < 10 ? 2 : 0)}</td>
        <td class="num">${red.error_pct == null || red.rps == null ? "—" : `${num(red.error_pct, 1)}%`}</td>
        <td class="num">${dur(red.p99)}</td>
        <td><span class="dots">${dots}</span> ${pill(s.health || (s.healthy ? "passing" : "unknown"))}</td>
        <td class="num restarts">${r}</td>
        <td>${loop ? pill("crash loop") : esc([...new Set(s.instances.map((i) => i.phase))].join(", "))}</td>
        <td class="note">${esc((s.depends_on || []).join(", ") || "—")}</td></tr>`;
    }).join("");
    html += panel("Services", `<table id="services"><thead><tr><th>Service</th><th class="num">Replicas</th><th class="num">Req/s</th><th class="num">Errors</th><th class="num">p99</th><th>Health</th><th class="num">Restarts</th><th>State</th><th>Depends on</th></tr></thead><tbody>${rows}</tbody></table>`,
      `${insts.length} replicas`);
    const st = state.overview.status;
    const partState = { ok: "passing", behind: "warning", slow: "warning", restarting: "warning" };
    const partRows = (st.parts || []).map((p) => `<tr data-part="${esc(p.name)}"><td><b>${esc(p.name)}</b></td><td>${esc(p.runs)}</td>
      <td><span class="pill ${partState[p.state] || "critical"}">${esc(p.state)}</span></td><td class="note">${esc(p.detail || "")}</td></tr>`).join("");
    if (partRows) {
      const troubled = (st.parts || []).filter((p) => p.state !== "ok").length;
      html += panel("Control plane", `<table id="parts"><thead><tr><th>Part</th><th>Runs in</th><th>State</th><th>Detail</th></tr></thead><tbody>${partRows}</tbody></table>`,
        troubled ? `${troubled} not ok` : "all ok");
    }
    const links = [["Control plane", st.control], ["Broker", st.broker], ["Gateway", st.gateway], ["Discovery", st.discovery]]
      .filter(([, v]) => v).map(([k, v]) => `<dt>${k}</dt><dd class="mono">${esc(v)}</dd>`).join("");
    html += panel("Endpoints", `<div class="body"><dl class="kv">${links}<dt>Home</dt><dd class="mono">${esc(st.home || "")}</dd></dl></div>`);
    return html;
  }

  // -- one service -----------------------------------------------------------------------------

  const METRICS = [
    { key: "rps", title: "Requests / s", fmt: (v) => num(v, v < 10 ? 1 : 0) },
    { key: "error_pct", title: "Errors %", fmt: (v) => `${num(v, 1)}%` },
    { key: "latency", title: "Latency", fmt: dur, keys: ["p50", "p95", "p99"] },
    { key: "cpu", title: "CPU % (one core = 100)", fmt: (v) => num(v, 0) },
    { key: "rss", title: "Memory (RSS)", fmt: bytes },
  ];

  async function service(r) {
    const name = r.arg;
    const win = Number(r.params.get("window") || 900);
    const doc = await api(`api/services/${encodeURIComponent(name)}?window=${win}`);
    state.lastMetrics = Date.now();
    const s = doc.service, m = doc.metrics, series = m.series || {};
    setHead(name, `<a href="#/">Overview</a> › service`);
    const has = (k) => (m.available || []).includes(k);
    const running = s.instances.filter((i) => i.pid).length;
    let html = '<div class="cards">';
    html += card("Replicas", `${running}<small> / ${s.replicas}</small>`, s.healthy ? "ok" : "warn");
    html += card("Requests / s", has("rps") ? num(last(series.rps)) : "—");
    html += card("Errors", has("error_pct") ? `${num(last(series.error_pct))}<small> %</small>` : "—");
    html += card("p50 / p95 / p99", has("p99") ? `<small>${["p50", "p95", "p99"].map((k) => dur(last(series[k]))).join(" · ")}</small>` : "—");
    html += card("CPU", has("cpu") ? `${num(last(series.cpu), 0)}<small> %</small>` : "—");
    html += card("Memory", has("rss") ? bytes(last(series.rss)) : "—");
    html += "</div>";
    const markers = m.markers || [];
    const wins = [[300, "5m"], [900, "15m"], [3600, "1h"]].map(([w, l]) => w === win ? `<b>${l}</b>` : `<a href="#/service/${encodeURIComponent(name)}?window=${w}">${l}</a>`).join(" · ");
    html += '<div class="grid2">';
    for (const spec of METRICS) {
      const keys = spec.keys || [spec.key];
      const present = keys.filter((k) => has(k));
      const lines = present.map((k, i) => ({ name: k, points: series[k] || [], color: PALETTE[i] }));
      const body = present.length
        ? lineChart(lines, { format: spec.fmt, markers, window: win, now: Date.now() / 1000, label: spec.title })
        : '<div class="nodata">not measured for this service yet</div>';
      html += panel(spec.title, `<div class="chart" data-metric="${spec.key}">${body}</div>`, markers.length ? `${markers.length} deploy markers` : "");
    }
    html += "</div><div style=\"height:18px\"></div>";
    html += `<div class="note" style="margin:-8px 0 12px">window ${wins} · dashed lines mark replica starts and restarts</div>`;
    const rows = s.instances.map((i) => `<tr><td class="mono">${esc(i.id)}</td><td class="num">${esc(i.pid || "—")}</td>
      <td>${pill(i.health)}</td><td>${esc(i.crashloop ? "crash loop" : i.phase)}</td><td class="mono">${esc(i.address || "—")}</td>
      <td class="num">${i.restarts}</td><td class="note check">${esc(i.check || "—")}</td>
      <td class="note">${esc([i.last_exit, i.last_error].filter((v) => v != null && v !== "").join(" · "))}</td>
      <td><a href="#/logs?instance=${encodeURIComponent(i.id)}">logs</a></td></tr>`).join("");
    html += panel("Replicas", `<table id="instances"><thead><tr><th>Instance</th><th class="num">PID</th><th>Health</th><th>Phase</th><th>Address</th><th class="num">Restarts</th><th>Last check</th><th>Last exit</th><th></th></tr></thead><tbody>${rows}</tbody></table>`);
    const recent = await api(`api/logs?service=${encodeURIComponent(name)}&limit=12`);
    html += panel("Recent logs", logTable(recent.lines, ""), `<a href="#/logs?service=${encodeURIComponent(name)}">search</a>`);
    return html;
  }

  // -- logs ------------------------------------------------------------------------------------

  function logRow(l, needle, fresh) {
    const trace = l.trace_id ? ` <a class="trace-link mono" href="#/traces/${esc(l.trace_id)}" title="trace ${esc(l.trace_id)}">⤷ trace</a>` : "";
    return `<tr class="${fresh ? "fresh" : ""}" data-at="${esc(l.at)}"><td class="when">${esc(time(l.at))}</td><td><a href="#/logs?instance=${encodeURIComponent(l.instance)}">${esc(l.instance)}</a></td>
      <td>${lvl(l.level)}</td><td class="msg">${highlight(l.message, needle)}${trace}</td></tr>`;
  }
  function logTable(lines, needle) {
    if (!lines.length) return '<div class="empty">No log line matches.</div>';
    return `<table class="loglines"><tbody>${lines.map((l) => logRow(l, needle)).join("")}</tbody></table>`;
  }

  async function logs(r, first) {
    if (!first) return null; // the log page changes only when asked (search) or by its own tail
    const p = r.params;
    const q = new URLSearchParams();
    for (const k of ["q", "service", "instance", "level", "trace", "since"]) if (p.get(k)) q.set(k, p.get(k));
    q.set("limit", "300");
    const found = await api(`api/logs?${q}`);
    setHead("Logs", "search and live tail");
    const opt = (v, label, cur) => `<option value="${esc(v)}" ${v === (cur || "") ? "selected" : ""}>${esc(label)}</option>`;
    const svcOpts = opt("", "all services", p.get("service")) + services().map((s) => opt(s.name, s.name, p.get("service"))).join("");
    const lvlOpts = opt("", "any level", p.get("level")) + ["debug", "info", "warning", "error"].map((l) => opt(l, `${l} and up`, p.get("level"))).join("");
    const sinceOpts = opt("", "all time", p.get("since")) + [["5m", "last 5 minutes"], ["15m", "last 15 minutes"], ["1h", "last hour"], ["24h", "last day"]].map(([v, l]) => opt(v, l, p.get("since"))).join("");
    const scope = p.get("instance") ? `<span class="pill">${esc(p.get("instance"))} <a href="#/logs">×</a></span>` : "";
    const form = `<form class="search" id="log-search">
      <input type="search" name="q" placeholder="Search messages (free text)" value="${esc(p.get("q") || "")}">
      <select name="service">${svcOpts}</select><select name="level">${lvlOpts}</select><select name="since">${sinceOpts}</select>
      <input name="trace" placeholder="trace id" size="14" value="${esc(p.get("trace") || "")}">
      ${scope}<button type="submit">Search</button><button type="button" class="secondary" id="tail-toggle">▶ Live tail</button></form>`;
    return panel("Log search", form + `<div id="log-results">${logTable(found.lines, p.get("q"))}</div>`,
      `<span id="log-count">${found.lines.length} line${found.lines.length === 1 ? "" : "s"}${found.lines.length >= 300 ? " (newest 300)" : ""}</span>`);
  }

  function wireLogs(r) {
    const form = $("#log-search");
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const q = new URLSearchParams();
      for (const [k, v] of new FormData(form)) if (v) q.set(k, v);
      if (r.params.get("instance")) q.set("instance", r.params.get("instance"));
      location.hash = `#/logs?${q}`;
    });
    $("#tail-toggle").addEventListener("click", () => toggleTail(r));
  }

  function toggleTail(r) {
    const btn = $("#tail-toggle");
    if (state.tail) {
      state.tail.close(); state.tail = null;
      btn.classList.remove("on"); btn.textContent = "▶ Live tail";
      return;
    }
    const q = new URLSearchParams();
    for (const k of ["q", "service", "instance", "level", "trace"]) if (r.params.get(k)) q.set(k, r.params.get(k));
    const es = new EventSource(`api/logs/tail?${q}`);
    state.tail = es;
    btn.classList.add("on"); btn.textContent = "■ Live tail on";
    let n = 0;
    es.addEventListener("line", (ev) => {
      const l = JSON.parse(ev.data);
      let tbody = view.querySelector("#log-results tbody");
      if (!tbody) { $("#log-results").innerHTML = '<table class="loglines"><tbody></tbody></table>'; tbody = view.querySelector("#log-results tbody"); }
      // rows stay newest first: a line collected late (another replica's, written earlier) goes to its place
      const at = Date.parse(l.at);
      const after = Array.from(tbody.rows).find((row) => Date.parse(row.dataset.at) <= at);
      if (after) after.insertAdjacentHTML("beforebegin", logRow(l, r.params.get("q"), true));
      else tbody.insertAdjacentHTML("beforeend", logRow(l, r.params.get("q"), true));
      while (tbody.rows.length > 1000) tbody.deleteRow(-1);
      $("#log-count").textContent = `${++n} new lines (live)`;
    });
  }

  // -- traces ----------------------------------------------------------------------------------

  async function traces(r) {
    if (r.arg) return trace(r.arg);
    const svc = r.params.get("service") || "";
    const [list, deps] = await Promise.all([api(`api/traces?limit=50${svc ? `&service=${encodeURIComponent(svc)}` : ""}`), api("api/dependencies")]);
    setHead("Traces", "requests across services, and who calls whom");
    let html = panel("Dependency map", `<div class="depmap body" id="depmap">${depMap(deps)}</div>`, `${(deps.edges || []).length} edges`);
    const rows = list.traces.map((t) => `<tr class="clickable trace-row" data-href="#/traces/${esc(t.trace_id)}">
      <td class="when mono">${esc(time(typeof t.start === "number" ? new Date(t.start * 1000).toISOString() : t.start))}</td>
      <td><b>${esc(t.root || "")}</b></td><td>${esc(t.service || "")}</td><td class="num">${t.spans}</td>
      <td class="num">${dur(t.duration)}</td><td>${t.error ? pill("failed") : pill("succeeded")}</td>
      <td class="mono note">${esc(t.trace_id.slice(0, 16))}…</td></tr>`).join("");
    html += panel("Recent traces", list.traces.length
      ? `<table id="traces"><thead><tr><th>Start</th><th>Root</th><th>Service</th><th class="num">Spans</th><th class="num">Duration</th><th>Outcome</th><th>Trace</th></tr></thead><tbody>${rows}</tbody></table>`
      : '<div class="empty">No trace recorded yet: traces appear once services handle requests.</div>', `${list.traces.length} shown`);
    return html;
  }

  async function trace(id) {
    const t = await api(`api/traces/${encodeURIComponent(id)}`);
    setHead(`Trace ${id.slice(0, 16)}…`, `<a href="#/traces">Traces</a> › trace`);
    const spans = t.spans || [];
    const byParent = {};
    const ids = new Set(spans.map((s) => s.span_id));
    spans.forEach((s) => { const p = ids.has(s.parent_id) ? s.parent_id : ""; (byParent[p] = byParent[p] || []).push(s); });
    const t0 = Math.min(...spans.map((s) => s.start));
    const t1 = Math.max(...spans.map((s) => s.start + s.duration));
    const total = Math.max(t1 - t0, 1e-6);
    const svcs = [...new Set(spans.map((s) => s.service))];
    const rows = [];
    (function walk(parent, depth) {
      for (const s of (byParent[parent] || []).sort((a, b) => a.start - b.start)) {
        const left = ((s.start - t0) / total) * 100, width = Math.max((s.duration / total) * 100, 0.3);
        const color = PALETTE[svcs.indexOf(s.service) % PALETTE.length];
        rows.push(`<tr class="span-row"><td class="name" style="padding-left:${16 + depth * 18}px">${depth ? "└ " : ""}<b>${esc(s.service)}</b> ${esc(s.name)}</td>
          <td class="num mono">${dur(s.duration)}</td>
          <td style="width:55%"><div class="track"><div class="span${s.error ? " error" : ""}" style="left:${left}%;width:${width}%;background:${color}" title="${esc(s.name)}: ${dur(s.duration)}"></div></div></td></tr>`);
        walk(s.span_id, depth + 1);
      }
    })("", 0);
    let html = '<div class="cards">' + card("Duration", dur(total)) + card("Spans", spans.length) + card("Services", svcs.length)
      + card("Errors", spans.filter((s) => s.error).length, spans.some((s) => s.error) ? "bad" : "ok") + "</div>";
    html += panel("Spans", `<table class="waterfall" id="waterfall"><thead><tr><th>Span</th><th class="num">Duration</th><th>Timeline</th></tr></thead><tbody>${rows.join("")}</tbody></table>`,
      `<a href="#/logs?trace=${encodeURIComponent(id)}">logs of this trace</a>`);
    return html;
  }

  // -- jobs ------------------------------------------------------------------------------------

  function progress(j) {
    const p = j.progress;
    if (j.status === "running" && p) {
      const total = (p.maps_total || 0) + (p.reduces_total || 0);
      const done = (p.maps_done || 0) + (p.reduces_done || 0);
      const pct = total ? (100 * done) / total : 0;
      return `<div class="bar"><div style="width:${pct.toFixed(1)}%"></div></div><div class="note">${p.steps > 1 ? `step ${p.step + 1}/${p.steps} · ` : ""}map ${p.maps_done}/${p.maps_total} · reduce ${p.reduces_done}/${p.reduces_total}</div>`;
    }
    return `<div class="bar ${j.status === "failed" ? "failed" : "done"}"><div style="width:100%"></div></div>`;
  }

  /* the job class, and the file it came from (the module name of a job file is generated) */
  function jobName(j) { return (j.job || "").split(":").pop(); }
  function jobFile(j) { return (j.job_file || "").split("/").pop(); }

  async function jobs(r) {
    const doc = await api("api/jobs");
    state.lastMetrics = Date.now();
    if (r.arg) return job(doc.jobs.find((j) => j.id === r.arg), r.arg);
    setHead("Jobs", "MapReduce runs: progress and history");
    const list = doc.jobs;
    const ok = list.filter((j) => j.status === "succeeded").length;
    let html = '<div class="cards">' + card("Jobs", list.length) + card("Running", list.filter((j) => j.status === "running").length)
      + card("Succeeded", ok, "ok") + card("Failed", list.filter((j) => j.status === "failed").length, list.some((j) => j.status === "failed") ? "bad" : "") + "</div>";
    const rows = list.map((j) => {
      const mapIn = j.counters && j.counters.minga ? j.counters.minga["map input records"] : j.progress ? j.progress.records_done : null;
      return `<tr class="clickable job-row" data-href="#/jobs/${encodeURIComponent(j.id)}"><td><b>${esc(jobName(j))}</b> <span class="note">${esc(jobFile(j))}</span></td><td>${esc(j.engine)}</td><td>${pill(j.status)}</td>
        <td style="min-width:160px">${progress(j)}</td><td class="num">${dur(j.seconds)}</td><td class="num">${bytes(j.input_bytes)}</td>
        <td class="num">${mapIn == null ? "—" : Number(mapIn).toLocaleString()}</td><td class="when">${esc(datetime(j.finished_at || j.started_at))}</td></tr>`;
    }).join("");
    html += panel("History", list.length
      ? `<table id="jobs"><thead><tr><th>Job</th><th>Engine</th><th>Status</th><th>Progress</th><th class="num">Time</th><th class="num">Input</th><th class="num">Records</th><th>Started / finished</th></tr></thead><tbody>${rows}</tbody></table>`
      : '<div class="empty">No job has run against this system yet: <code>minga run JOB.py INPUT -o OUT</code> records each run here.</div>');
    return html;
  }

  function job(j, id) {
    setHead(j ? jobName(j) : id, `<a href="#/jobs">Jobs</a> › job`);
    if (!j) return panel("Not found", `<div class="empty">No job record ${esc(id)}.</div>`);
    const phases = Object.entries(j.phases || {});
    const ptotal = phases.reduce((n, [, v]) => n + v, 0) || 1;
    const a = j.attempts || {};
    let html = '<div class="cards">' + card("Status", pill(j.status)) + card("Time", dur(j.seconds)) + card("Input", bytes(j.input_bytes))
      + card("Attempts", `${a.started || 0}<small> · ${a.failed || 0} failed · ${a.speculative || 0} backups</small>`) + "</div>";
    html += panel("Progress", `<div class="body">${progress(j)}</div>`);
    html += panel("Phases", phases.length ? `<table id="phases"><tbody>${phases.map(([k, v]) => `<tr><td>${esc(k)}</td><td class="num">${dur(v)}</td>
      <td style="width:60%"><div class="bar"><div style="width:${((100 * v) / ptotal).toFixed(1)}%"></div></div></td></tr>`).join("")}</tbody></table>` : '<div class="empty">—</div>');
    const counters = Object.entries(j.counters || {}).flatMap(([g, names]) => Object.entries(names).map(([n, v]) => `<tr><td class="note">${esc(g)}</td><td>${esc(n)}</td><td class="num">${Number(v).toLocaleString()}</td></tr>`));
    html += panel("Counters", counters.length ? `<table id="counters"><tbody>${counters.join("")}</tbody></table>` : '<div class="empty">—</div>');
    const cfg = j.config || {};
    html += panel("Configuration", `<div class="body"><dl class="kv"><dt>Job file</dt><dd class="mono">${esc(j.job_file || "")}</dd>
      <dt>Inputs</dt><dd class="mono">${esc((cfg.inputs || []).join(", "))}</dd><dt>Output</dt><dd class="mono">${esc(cfg.output_dir || "")}</dd>
      <dt>Reducers</dt><dd>${esc(cfg.reducers ?? "")}</dd>${j.error ? `<dt>Error</dt><dd class="mono">${esc(j.error)}</dd>` : ""}</dl></div>`);
    return html;
  }

  window.addEventListener("hashchange", navigate);
  navigate();
  connect();
})();
