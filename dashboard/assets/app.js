// verdict dashboard: reads the JSON API and draws it. Plain DOM and SVG, no
// dependencies, nothing loaded from elsewhere. Every number shown is a number the
// API returned, formatted; nothing is recomputed here.
"use strict";

(() => {
  const TOKEN_KEY = "verdict-api-token";
  const SVG = "http://www.w3.org/2000/svg";
  const state = {
    token: sessionStorage.getItem(TOKEN_KEY) || "",
    settings: null,
    window: "",
    paused: false,
    timer: 0,
    loading: false,
    sort: { key: "divergence", dir: "desc" },
    compare: [],
  };
  const $ = (id) => document.getElementById(id);

  // --- DOM helpers -----------------------------------------------------------

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === "text") e.textContent = v;
      else e.setAttribute(k, String(v));
    }
    for (const c of children.flat()) if (c) e.append(c);
    return e;
  }

  function replace(id, ...nodes) {
    $(id).replaceChildren(...nodes.flat().filter(Boolean));
  }

  // --- formatting ------------------------------------------------------------

  const pct = (v) => (v === null || v === undefined ? "—" : (v * 100).toFixed(1) + "%");
  const num = (v, d) => (v === null || v === undefined ? "—" : Number(v).toFixed(d));
  const int = (v) => (v === null || v === undefined ? "—" : Math.round(v).toLocaleString("en-US"));
  const signed = (v, d) => (v === null || v === undefined ? "—" : (v >= 0 ? "+" : "") + Number(v).toFixed(d));
  const hhmm = (t) => new Date(t).toISOString().slice(11, 16);
  const hhmmss = (t) => new Date(t).toISOString().slice(11, 19);
  const interval = (ci) => (ci ? `[${pct(ci.lower)}, ${pct(ci.upper)}]` : "");
  const early = (est) => !!(est && est.note && est.note.startsWith("early"));

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 90) return seconds.toFixed(1) + " s";
    if (seconds < 5400) return (seconds / 60).toFixed(1) + " min";
    if (seconds < 172800) return (seconds / 3600).toFixed(1) + " h";
    return (seconds / 86400).toFixed(1) + " d";
  }

  // --- API -------------------------------------------------------------------

  class Unauthorized extends Error {}

  async function api(path) {
    const headers = { Accept: "application/json" };
    if (state.token) headers.Authorization = "Bearer " + state.token;
    const res = await fetch(path, { headers, cache: "no-store" });
    if (res.status === 401) throw new Unauthorized("the API wants a bearer token");
    let body = null;
    try {
      body = await res.json();
    } catch (e) {
      throw new Error(`${path}: ${res.status} ${res.statusText} (not JSON)`);
    }
    if (!res.ok) throw new Error(`${path}: ${(body && body.error) || res.statusText}`);
    return body;
  }

  // --- token -----------------------------------------------------------------

  function tokenFromFragment() {
    // #token=... lets a link carry the token without sending it to the server;
    // it is moved to session storage and removed from the address bar.
    const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (!m) return;
    state.token = decodeURIComponent(m[1]).trim();
    sessionStorage.setItem(TOKEN_KEY, state.token);
    history.replaceState(null, "", location.pathname + location.search);
  }

  function askForToken(message) {
    stopTimer();
    $("token-section").hidden = false;
    $("token-error").textContent = message || "";
    setStatus("waiting for the API token");
    $("token").focus();
  }

  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.token = $("token").value.trim();
    sessionStorage.setItem(TOKEN_KEY, state.token);
    $("token").value = "";
    start();
  });

  // --- refresh loop ------------------------------------------------------------

  function setStatus(text) {
    $("status").textContent = text;
  }

  function stopTimer() {
    clearTimeout(state.timer);
    state.timer = 0;
  }

  function schedule() {
    stopTimer();
    if (state.paused || !state.settings) return;
    state.timer = setTimeout(refresh, state.settings.refresh_seconds * 1000);
  }

  $("pause").addEventListener("click", () => {
    state.paused = !state.paused;
    $("pause").setAttribute("aria-pressed", String(state.paused));
    $("pause").textContent = state.paused ? "Resume auto-refresh" : "Pause auto-refresh";
    if (state.paused) {
      stopTimer();
      setStatus("auto-refresh paused");
    } else {
      refresh();
    }
  });
  $("refresh").addEventListener("click", () => refresh());
  $("window").addEventListener("change", () => {
    state.window = $("window").value;
    refresh();
  });

  async function start() {
    try {
      state.settings = await api("/v1/dashboard");
    } catch (e) {
      if (e instanceof Unauthorized) {
        askForToken(state.token ? "That token was refused." : "");
        return;
      }
      setStatus("cannot reach verdict: " + e.message);
      state.timer = setTimeout(start, 5000);
      return;
    }
    $("token-section").hidden = true;
    const s = state.settings;
    $("version").textContent = s.version;
    const sel = $("window");
    sel.replaceChildren(...s.windows.map((w) => el("option", { value: w, text: w })));
    state.window = state.window && s.windows.includes(state.window) ? state.window : s.windows[0];
    sel.value = state.window;
    sel.disabled = false;
    const who = s.baseline
      ? `baseline ${s.baseline}` + (s.candidates.length ? ` · candidate${s.candidates.length > 1 ? "s" : ""} ${s.candidates.join(", ")}` : "")
      : "no baseline configured";
    $("subtitle").textContent = who + (s.segment_keys.length ? ` · segments by ${s.segment_keys.join(", ")}` : "");
    await refresh();
  }

  async function refresh() {
    if (state.loading || !state.settings) return;
    state.loading = true;
    stopTimer();
    setStatus("updating…");
    const s = state.settings;
    const w = encodeURIComponent(state.window);
    const pairs = s.baseline ? s.candidates.map((c) => [s.baseline, c]) : [];
    const jobs = [
      section("variants-body", api(`/v1/metrics?window=${w}`), renderVariants),
      section("charts-body", api(`/v1/series?window=${w}&metric=precision,recall,flag_rate,label_coverage`), renderCharts),
      section("ingest-body", api("/v1/ingest"), renderIngest),
      section("alarms-body", api("/v1/alarms"), renderAlarms),
      section("judge-body", Promise.all(pairs.map(([b, c]) => api(`/v1/judge?baseline=${encodeURIComponent(b)}&candidate=${encodeURIComponent(c)}`))), renderJudge),
      section("segments-body", Promise.all(pairs.map(([b, c]) => api(`/v1/compare?baseline=${encodeURIComponent(b)}&candidate=${encodeURIComponent(c)}&sort=divergence`))), renderSegments),
    ];
    const results = await Promise.all(jobs);
    state.loading = false;
    if (results.some((r) => r instanceof Unauthorized)) {
      askForToken("The token was refused.");
      return;
    }
    const failed = results.filter((r) => r instanceof Error).length;
    document.body.dataset.loaded = "true";
    setStatus(`updated ${hhmmss(Date.now())} UTC` + (failed ? ` · ${failed} part(s) failed to load` : "") + (state.paused ? " · auto-refresh paused" : ""));
    schedule();
  }

  // section renders one part of the page, or says why it could not.
  async function section(id, promise, render) {
    try {
      const data = await promise;
      render(data);
      $(id).removeAttribute("aria-busy");
      return null;
    } catch (e) {
      if (e instanceof Unauthorized) return e;
      replace(id, el("p", { class: "error", role: "alert", text: "Could not load: " + e.message }));
      return e;
    }
  }

  // --- judge -------------------------------------------------------------------

  function renderJudge(judgements) {
    if (!judgements.length) {
      replace("judge-body", el("p", { class: "muted", text: "No baseline and candidate configured (VERDICT_BASELINE, VERDICT_CANDIDATES): nothing to judge." }));
      return;
    }
    replace("judge-body", judgements.map(judgement));
  }

  function judgement(j) {
    const since = j.window_start ? `comparison period since ${hhmm(j.window_start)} UTC` : `window ${j.window}`;
    const what = {
      pass: "PASS",
      fail: "FAIL",
      inconclusive: "INCONCLUSIVE",
    }[j.decision] || j.decision.toUpperCase();
    const box = el("div", { class: "verdict " + j.decision, "data-candidate": j.candidate, "data-decision": j.decision },
      el("p", { class: "headline" },
        el("span", { class: "badge " + j.decision, text: what }), " ",
        el("strong", { text: `candidate ${j.candidate} against baseline ${j.baseline}` }),
        el("span", { class: "muted", text: ` · ${since} · ${j.design}` })),
      j.decision === "inconclusive" ? el("p", { text: "Not decided yet: inconclusive is not a pass. The candidate has not been shown to be as good as the baseline." }) : null,
      j.decision === "pass" ? el("p", { text: "Evidence that the candidate is not worse than the baseline by more than the tolerance, overall and in every required segment." }) : null,
      el("p", { class: "reason", text: j.reason }),
      j.segment_regressions ? el("p", {}, el("strong", { text: `${j.segment_regressions} segment(s) regressed` }),
        j.worst_segment ? ` · worst recall: ${j.worst_segment.segment_key}=${j.worst_segment.segment} (${signed(j.worst_segment_recall_delta, 3)})` : "") : null,
      j.decision === "inconclusive" && j.waiting && j.waiting.length ? el("div", {}, el("h3", { text: "Waiting for" }), el("ul", {}, j.waiting.map((w) => el("li", { text: w })))) : null,
      j.warnings && j.warnings.length ? el("div", {}, el("h3", { text: "Label-free signals (do not change the decision)" }), el("ul", {}, j.warnings.map((w) => el("li", { text: w })))) : null);
    return box;
  }

  // --- variants table ------------------------------------------------------------

  function renderVariants(m) {
    $("variants-window").textContent = `· window ${m.window}` + (m.start ? `, predictions since ${hhmm(m.start)} UTC` : "");
    if (!m.variants.length) {
      replace("variants-body", el("p", { class: "muted", text: "No predictions in this window yet." }));
      return;
    }
    const head = el("tr", {}, ["variant", "predictions", "flag rate", "label coverage", "pending", "precision", "recall (95 % CI)", "F1"].map((h, i) => el("th", { scope: "col", class: i === 0 ? "text" : null, text: h })));
    const rows = m.variants.map((v) => {
      const cell = (field, ...content) => el("td", { "data-variant": v.variant, "data-field": field }, ...content);
      return el("tr", {},
        el("th", { scope: "row", class: "text", text: v.variant }),
        cell("predictions", int(v.predictions)),
        cell("flag_rate", pct(v.flag_rate)),
        cell("label_coverage", pct(v.label_coverage)),
        cell("pending", int(v.pending)),
        precisionCell(v, cell),
        recallCell(v, cell),
        cell("f1", v.f1 === null ? notEstimable(v.estimable.f1) : num(v.f1, 3)));
    });
    replace("variants-body", el("div", { class: "table-wrap", role: "region", "aria-labelledby": "variants-h", tabindex: 0 },
      el("table", {}, el("thead", {}, head), el("tbody", {}, rows))));
  }

  function notEstimable(est) {
    return el("span", { class: "ne", title: (est && est.reason) || "", text: est && est.reason && est.reason.startsWith("undefined") ? "undefined" : "not yet estimable" });
  }

  function precisionCell(v, cell) {
    if (v.precision === null) {
      return cell("precision", notEstimable(v.estimable.precision),
        v.precision_bounds ? el("span", { class: "sub", text: `lies in [${pct(v.precision_bounds.lower)}, ${pct(v.precision_bounds.upper)}]` }) : null);
    }
    return cell("precision", pct(v.precision), el("span", { class: "sub", text: interval(v.precision_ci) }));
  }

  function recallCell(v, cell) {
    if (v.recall === null) return cell("recall", notEstimable(v.estimable.recall));
    return cell("recall", pct(v.recall), early(v.estimable.recall) ? [" ", el("span", { class: "badge early", title: v.estimable.recall.note, text: "early" })] : null,
      el("span", { class: "sub", text: interval(v.recall_ci) }));
  }

  // --- charts -------------------------------------------------------------------

  const PALETTE = ["#1d4ed8", "#b45309", "#7c3aed", "#047857", "#be185d"];
  const BASELINE_COLOUR = "#475569";
  const CHARTS = [
    { metric: "precision", title: "Precision", unit: 1 },
    { metric: "recall", title: "Recall", unit: 1 },
    { metric: "flag_rate", title: "Flag rate", unit: 0 },
    { metric: "label_coverage", title: "Label coverage", unit: 1 },
  ];

  function styleOf(variant, i) {
    const s = state.settings;
    if (s && variant === s.baseline) return { colour: BASELINE_COLOUR, dash: "5 3", label: `${variant} (baseline)` };
    const cands = s ? s.candidates : [];
    const k = cands.includes(variant) ? cands.indexOf(variant) : i;
    return { colour: PALETTE[k % PALETTE.length], dash: null, label: cands.includes(variant) ? `${variant} (candidate)` : variant };
  }

  function renderCharts(r) {
    $("charts-window").textContent = `· window ${r.window} in ${r.step} steps`;
    if (!r.series.length) {
      replace("charts-body", el("p", { class: "muted", text: "No predictions in this window yet." }));
      return;
    }
    replace("charts-body", CHARTS.filter((c) => r.metrics.includes(c.metric)).map((c) => chart(c, r)));
  }

  function chart(spec, r) {
    const W = 520, H = 210, L = 46, R = 10, T = 10, B = 26;
    const series = r.series.map((s, i) => ({ s, style: styleOf(s.variant, i) }));
    // The axis starts at the first step with predictions: a window's empty past is
    // not drawn.
    let x0 = Date.parse(r.start);
    const firstSeen = Math.min(...series.map(({ s }) => {
      const p = s.points.find((q) => q.predictions > 0);
      return p ? Date.parse(p.start) : Infinity;
    }));
    if (Number.isFinite(firstSeen)) x0 = Math.max(x0, firstSeen);
    const x1 = Math.max(Date.parse(r.end), x0 + 1);
    let top = 1;
    if (!spec.unit) {
      let m = 0;
      for (const { s } of series) for (const p of s.points) {
        const st = p.statistics[spec.metric];
        if (st && st.value !== null) m = Math.max(m, st.ci ? st.ci.upper : st.value);
      }
      top = niceTop(m);
    }
    const X = (t) => L + ((t - x0) / (x1 - x0)) * (W - L - R);
    const Y = (v) => T + (1 - Math.min(Math.max(v / top, 0), 1)) * (H - T - B);
    const id = `chart-${spec.metric}`;
    const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": `${id}-t ${id}-d`, "data-metric": spec.metric });
    g.append(svg("title", { id: `${id}-t`, text: `${spec.title} per ${r.step} step, last ${r.window}` }));
    g.append(svg("desc", { id: `${id}-d`, text: describe(spec, series) }));
    const defs = svg("defs", {});
    defs.append(svg("pattern", { id: `${id}-hatch`, width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" },
      svg("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#d1d5db", "stroke-width": 3 })));
    g.append(defs);
    // grid and axes
    for (let i = 0; i <= 4; i++) {
      const v = (top * i) / 4;
      g.append(svg("line", { x1: L, x2: W - R, y1: Y(v), y2: Y(v), stroke: i ? "#e5e7eb" : "#6b7280" }));
      g.append(svg("text", { x: L - 4, y: Y(v) + 4, "text-anchor": "end", text: spec.unit ? Math.round(v * 100) + "%" : +(v * 100).toFixed(top <= 0.1 ? 1 : 0) + "%" }));
    }
    for (const t of timeTicks(x0, x1)) {
      g.append(svg("line", { x1: X(t), x2: X(t), y1: H - B, y2: H - B + 4, stroke: "#6b7280" }));
      g.append(svg("text", { x: X(t), y: H - 8, "text-anchor": "middle", text: hhmm(t) }));
    }
    // steps where no variant's statistic is estimable yet, though predictions exist
    const steps = series.length ? series[0].s.points.map((p) => [Date.parse(p.start), Date.parse(p.end)]) : [];
    let lastLabelled = -Infinity;
    steps.forEach(([a, b], k) => {
      if (b <= x0) return;
      const blocked = series.every(({ s }) => {
        const p = s.points[k];
        const st = p && p.statistics[spec.metric];
        return p && p.predictions > 0 && st && st.value === null && !st.estimable;
      });
      if (!blocked) return;
      const xa = X(Math.max(a, x0)), xb = X(Math.min(b, x1));
      g.append(svg("rect", { x: xa, y: T, width: Math.max(1, xb - xa), height: H - T - B, fill: `url(#${id}-hatch)`, class: "not-estimable" },
        svg("title", { text: "not yet estimable: " + reasonAt(series, k, spec.metric) })));
      if (lastLabelled === -Infinity) {
        g.append(svg("text", { x: xa + 3, y: T + 12, text: "not yet estimable" }));
        lastLabelled = xa;
      }
    });
    // bands, then lines and points
    for (const { s, style } of series) {
      const pts = s.points.map((p) => ({ p, st: p.statistics[spec.metric], t: (Date.parse(p.start) + Math.min(Date.parse(p.end), x1)) / 2 }));
      for (const run of runs(pts, (q) => q.st && q.st.value !== null && q.st.ci)) {
        const up = run.map((q) => `${X(q.t).toFixed(1)},${Y(q.st.ci.upper).toFixed(1)}`);
        const down = run.slice().reverse().map((q) => `${X(q.t).toFixed(1)},${Y(q.st.ci.lower).toFixed(1)}`);
        g.append(svg("polygon", { points: up.concat(down).join(" "), fill: style.colour, "fill-opacity": 0.14, stroke: "none", class: "band", "data-variant": s.variant }));
      }
      let d = "";
      let pen = false;
      for (const q of pts) {
        if (!q.st || q.st.value === null || Date.parse(q.p.end) <= x0) {
          pen = false;
          continue;
        }
        d += `${pen ? "L" : "M"}${X(q.t).toFixed(1)},${Y(q.st.value).toFixed(1)}`;
        pen = true;
      }
      if (d) g.append(svg("path", { d, fill: "none", stroke: style.colour, "stroke-width": 2, "stroke-dasharray": style.dash, class: "line", "data-variant": s.variant }));
      for (const q of pts) {
        if (!q.st || q.st.value === null || Date.parse(q.p.end) <= x0) continue;
        const title = `${s.variant}, predictions ${hhmm(q.p.start)}–${hhmm(q.p.end)} UTC: ${spec.title.toLowerCase()} ${pct(q.st.value)}` +
          (q.st.ci ? ` ${interval(q.st.ci)}` : "") + (early(q.st) ? " (early)" : "") + (q.p.partial ? " (step in progress)" : "");
        g.append(svg("circle", {
          cx: X(q.t).toFixed(1), cy: Y(q.st.value).toFixed(1), r: 2.6, fill: q.p.partial ? "#fff" : style.colour, stroke: style.colour, "stroke-width": 1.5,
          class: "point", "data-variant": s.variant, "data-start": q.p.start, "data-value": q.st.value,
        }, svg("title", { text: title })));
      }
    }
    const legend = el("ul", { class: "legend" }, series.map(({ s, style }) => el("li", {},
      (() => {
        const sw = svg("svg", { width: 22, height: 10, "aria-hidden": "true" });
        sw.append(svg("line", { x1: 1, x2: 21, y1: 5, y2: 5, stroke: style.colour, "stroke-width": 2.5, "stroke-dasharray": style.dash }));
        return sw;
      })(), " " + style.label)));
    return el("figure", { class: "chart" }, el("figcaption", { text: spec.title }), g, legend);
  }

  function reasonAt(series, k, metric) {
    for (const { s } of series) {
      const st = s.points[k] && s.points[k].statistics[metric];
      if (st && st.reason) return `${s.variant}: ${st.reason}`;
    }
    return "";
  }

  function describe(spec, series) {
    const last = series.map(({ s }) => {
      for (let i = s.points.length - 1; i >= 0; i--) {
        const st = s.points[i].statistics[spec.metric];
        if (st && st.value !== null) return `${s.variant} ${pct(st.value)} (step from ${hhmm(s.points[i].start)} UTC)`;
      }
      return `${s.variant}: no estimable step`;
    });
    return `${spec.title} by variant. Latest value: ${last.join("; ")}.`;
  }

  function runs(items, ok) {
    const out = [];
    let cur = [];
    for (const it of items) {
      if (ok(it)) cur.push(it);
      else if (cur.length) {
        out.push(cur);
        cur = [];
      }
    }
    if (cur.length) out.push(cur);
    return out;
  }

  function niceTop(m) {
    if (!(m > 0)) return 0.1;
    const steps = [0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1];
    for (const s of steps) if (m * 1.1 <= s) return s;
    return 1;
  }

  function timeTicks(x0, x1) {
    const span = x1 - x0;
    const candidates = [60e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 7200e3, 21600e3, 43200e3, 86400e3];
    const step = candidates.find((c) => span / c <= 6) || 86400e3;
    const out = [];
    for (let t = Math.ceil(x0 / step) * step; t <= x1; t += step) out.push(t);
    return out;
  }

  // --- segments ------------------------------------------------------------------

  const SORTS = {
    segment: { label: "segment", value: (r) => (r.segment_key ? `${r.segment_key}=${r.segment}` : ""), text: true },
    decision: { label: "decision", value: (r) => ({ fail: 0, inconclusive: 1, pass: 2 })[r.decision] ?? 3 },
    divergence: { label: "divergence (PSI)", value: (r) => r.psi },
    flag_rate: { label: "Δ flag rate", value: (r) => (r.flag_rate_delta === null ? null : Math.abs(r.flag_rate_delta)) },
    disagreement: { label: "disagreement", value: (r) => (r.discordance ? r.discordance.rate : null) },
    recall: { label: "Δ recall", value: (r) => r.recall_delta },
  };

  function renderSegments(reports) {
    state.compare = reports;
    if (!reports.length) {
      replace("segments-body", el("p", { class: "muted", text: "No baseline and candidate configured (VERDICT_BASELINE, VERDICT_CANDIDATES)." }));
      return;
    }
    replace("segments-body", reports.map(segmentTable));
  }

  function sortedRows(rep) {
    const { key, dir } = state.sort;
    const f = SORTS[key].value;
    const rows = rep.segments.slice();
    rows.sort((a, b) => {
      const va = f(a), vb = f(b);
      if (va === null || va === undefined) return vb === null || vb === undefined ? 0 : 1;
      if (vb === null || vb === undefined) return -1;
      const c = SORTS[key].text ? String(va).localeCompare(String(vb)) : va - vb;
      return dir === "asc" ? c : -c;
    });
    return [rep.overall, ...rows];
  }

  function sortHeader(key) {
    const s = SORTS[key];
    const active = state.sort.key === key;
    const th = el("th", { scope: "col", class: s.text ? "text" : null, "aria-sort": active ? (state.sort.dir === "asc" ? "ascending" : "descending") : "none" });
    const b = el("button", { type: "button", class: "sort", text: s.label, title: `sort by ${s.label}` });
    b.addEventListener("click", () => {
      state.sort = { key, dir: active && state.sort.dir === "desc" ? "asc" : s.text && !active ? "asc" : "desc" };
      renderSegments(state.compare);
      const again = document.querySelector(`#segments-body th[data-key="${key}"] button`);
      if (again) again.focus();
    });
    th.dataset.key = key;
    th.append(b);
    return th;
  }

  function segmentTable(rep) {
    const rows = sortedRows(rep).map((r) => {
      const scope = r.segment_key ? `${r.segment_key}=${r.segment}` : "overall";
      const regressed = r.decision === "fail";
      const cell = (field, ...content) => el("td", { "data-segment": scope, "data-field": field }, ...content);
      const disc = r.discordance;
      const rowClass = regressed ? "regressed" : r.decision === "inconclusive" ? "inconclusive-row" : null;
      return [el("tr", { class: rowClass, "data-segment": scope, "data-decision": r.decision },
        el("th", { scope: "row", class: "text" }, scope, regressed ? [" ", el("span", { class: "badge regressed", text: "regressed" })] : null),
        cell("decision", el("span", { class: "badge " + r.decision, text: r.decision })),
        cell("psi", num(r.psi, 3), r.psi_level && r.psi_level !== "ok" ? el("span", { class: "sub", text: r.psi_level }) : null),
        cell("flag_rate", `${pct(r.baseline.flag_rate)} → ${pct(r.candidate.flag_rate)}`, el("span", { class: "sub", text: signed(r.flag_rate_delta === null ? null : r.flag_rate_delta * 100, 1) + " pp" })),
        cell("disagreement", disc && disc.rate !== null ? pct(disc.rate) : "—",
          disc ? el("span", { class: "sub", text: `only ${rep.baseline}: ${int(disc.only_baseline)} · only ${rep.candidate}: ${int(disc.only_candidate)}` + (disc.level === "warn" ? " · lopsided" : "") }) : null),
        cell("recall", `${pct(r.baseline.recall)} → ${pct(r.candidate.recall)}`, el("span", { class: "sub", text: `Δ ${signed(r.recall_delta, 3)}` })),
        cell("precision", precisionPair(r.baseline, r.candidate)),
        cell("labeled", `${int(r.baseline.resolved)} / ${int(r.candidate.resolved)}`)),
      el("tr", { class: ["why", rowClass].filter(Boolean).join(" ") },
        el("td", { colspan: 8, class: "reason", "data-segment": scope, "data-field": "reason" }, el("span", { class: "muted", text: "why: " }), r.reason))];
    });
    const head = el("tr", {}, sortHeader("segment"), sortHeader("decision"), sortHeader("divergence"), sortHeader("flag_rate"),
      sortHeader("disagreement"), sortHeader("recall"), el("th", { scope: "col", text: "precision" }), el("th", { scope: "col", text: "labeled (B / C)" }));
    const since = rep.window_start ? `comparison period since ${hhmm(rep.window_start)} UTC` : `window ${rep.window}`;
    const capId = `cmp-${rep.candidate}`;
    return el("div", { "data-candidate": rep.candidate },
      el("p", { id: capId, class: "muted small", text: `${rep.candidate} against ${rep.baseline}, ${since}; values are baseline → candidate; disagreement is label-free (paired inferences only one model flagged). Sort by a column's heading.` }),
      el("div", { class: "table-wrap", role: "region", "aria-labelledby": capId, tabindex: 0 },
        el("table", {}, el("thead", {}, head), el("tbody", {}, rows.flat()))));
  }

  function precisionText(v) {
    if (v.precision === null && v.precision_bounds) return "not yet estimable";
    return pct(v.precision);
  }

  function precisionPair(b, c) {
    const tb = precisionText(b), tc = precisionText(c);
    if (tb === "not yet estimable" && tc === tb) return el("span", { class: "ne", text: tb });
    return `${tb} → ${tc}`;
  }

  // --- alarms --------------------------------------------------------------------

  function renderAlarms(a) {
    if (!a.configured) {
      replace("alarms-body", el("p", { class: "muted", text: a.reason }));
      return;
    }
    const head = el("tr", {}, ["alarm", "state", "datapoints (oldest first)", "period in progress", "if it ended now", "breaches when"].map((h, i) => el("th", { scope: "col", class: i === 0 ? "text" : null, text: h })));
    const rows = a.alarms.map((x) => {
      const cell = (field, ...c) => el("td", { "data-alarm": x.name, "data-field": field }, ...c);
      const pts = el("span", { class: "points" }, x.points.map((p) => {
        const cls = p.value === null ? "pt" : p.breaching ? "pt breach" : "pt ok";
        const label = `${hhmm(p.start)} UTC: ${p.value === null ? "missing" : num(p.value, 4) + (p.breaching ? " breaching" : " ok")}`;
        return el("span", { class: cls, title: label, role: "img", "aria-label": label });
      }));
      return el("tr", {},
        el("th", { scope: "row", class: "text", title: x.description, text: x.name }),
        cell("state", el("span", { class: "badge " + x.state, text: x.state.replaceAll("_", " ") })),
        cell("points", x.evaluated_locally ? [pts, el("span", { class: "sub", text: `${x.breaching_datapoints} of the last ${x.evaluation_periods} breaching; fires at ${x.datapoints_to_alarm}` })] : el("span", { class: "muted", text: "SageMaker's own metric: see CloudWatch" })),
        cell("current", x.current === null ? "no datapoint" : num(x.current, 4), x.current !== null && x.current_breaching ? el("span", { class: "sub", text: "breaching" }) : null),
        cell("if_period_ended_now", x.if_period_ended_now ? el("span", { class: "badge " + x.if_period_ended_now, title: x.if_period_ended_now_reason, text: x.if_period_ended_now.replaceAll("_", " ") }) : "—"),
        cell("threshold", `value ${x.comparison} ${x.threshold}`, el("span", { class: "sub", text: `missing data: ${x.treat_missing_data}` })));
    });
    replace("alarms-body",
      el("p", { class: "muted small", text: `Alarm set ${a.alarm_set} (${a.file}) on endpoint ${a.endpoint}: ${a.period} periods, values over ${a.window}, recorded every ${a.recorded_every}` + (a.evaluated_at ? `, evaluated ${hhmmss(a.evaluated_at)} UTC` : ", not evaluated yet") + `. ${a.note}.` }),
      el("div", { class: "table-wrap", role: "region", "aria-label": "rollback alarms", tabindex: 0 }, el("table", {}, el("thead", {}, head), el("tbody", {}, rows))));
  }

  // --- ingest --------------------------------------------------------------------

  function renderIngest(h) {
    const parts = [el("p", {}, el("span", { class: "badge " + (h.ready ? "OK" : "ALARM"), text: h.ready ? "READY" : "NOT READY" }),
      h.ready ? " the join store commits what arrives" : " the join store cannot commit: see /readyz")];
    const dl = el("dl", { class: "kv" });
    for (const k of h.kinds) {
      const rate = (v) => (v === null ? "measuring…" : v.toFixed(1) + "/s");
      dl.append(el("dt", { text: `${k.kind}s` }),
        el("dd", { "data-kind": k.kind, "data-field": "rate" }, `${rate(k.accepted_per_second)} accepted, ${rate(k.rejected_per_second)} rejected`),
        el("dt", { text: `${k.kind} totals` }),
        el("dd", { "data-kind": k.kind, "data-field": "totals" }, `${int(k.accepted)} accepted (${int(k.duplicates)} duplicates), ${int(k.rejected)} rejected`),
        el("dt", { text: `newest ${k.kind}` }),
        el("dd", { "data-kind": k.kind, "data-field": "lag" }, k.newest_event ? `${hhmmss(k.newest_event)} UTC, ${duration(k.lag_seconds)} ago` : "none yet"));
    }
    if (h.labels_unmatched !== null) dl.append(el("dt", { text: "labels waiting" }), el("dd", { text: `${int(h.labels_unmatched)} for their prediction` }));
    dl.append(el("dt", { text: "store commit errors" }), el("dd", { text: int(h.sink_errors) }));
    parts.push(dl);
    if (h.rejections.length) {
      parts.push(el("h3", { text: "Rejections by class (since start)" }),
        el("table", {}, el("thead", {}, el("tr", {}, el("th", { scope: "col", class: "text", text: "kind" }), el("th", { scope: "col", class: "text", text: "class" }), el("th", { scope: "col", text: "lines" }))),
          el("tbody", {}, h.rejections.slice(0, 8).map((r) => el("tr", {}, el("td", { class: "text", text: r.kind }), el("td", { class: "text", text: r.class }), el("td", { "data-class": r.class, text: int(r.count) }))))));
    }
    const failed = h.requests_failed.filter((r) => r.count > 0);
    if (failed.length) parts.push(el("p", { class: "small", text: "Requests not served in full: " + failed.map((r) => `${r.reason} ${int(r.count)}`).join(", ") }));
    replace("ingest-body", parts);
  }

  tokenFromFragment();
  start();
})();
