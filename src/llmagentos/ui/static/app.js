// LLMAgentOS dashboard: every page is drawn here from the JSON API (/api/...); charts with the bundled plotly.js.
"use strict";

const app = document.getElementById("app");
const PLOT_CONFIG = {displaylogo: false, responsive: true};
const LIVE_EVERY_MS = 2000;

// -- small helpers ----------------------------------------------------------------------------------
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path) {
  const response = await fetch(path);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function fmt(x) {
  if (x === null || x === undefined) return "–";
  if (typeof x !== "number") return String(x);
  if (Number.isInteger(x)) return String(x);
  return Math.abs(x) >= 1000 ? x.toFixed(1) : x.toFixed(3);
}

function meanCi(m) {
  if (!m || m.mean === null || m.mean === undefined) return "–";
  return m.ci95 === null || m.ci95 === undefined ? fmt(m.mean) : `${fmt(m.mean)} ± ${fmt(m.ci95)}`;
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "–";
}

function table(headers, rows, attrs) {
  return el("table", attrs || {}, el("thead", {}, el("tr", {}, headers.map(h => el("th", {text: h})))),
            el("tbody", {}, rows.map(row => el("tr", {}, row.map(cell => el("td", {}, cell))))));
}

function link(href, text) { return el("a", {href, text: String(text)}); }
function runLink(id) { return id === null || id === undefined ? "–" : link(`/runs/${id}`, `#${id}`); }
function section(title, ...children) { return el("section", {}, el("h2", {text: title}), ...children); }
function plotDiv(id) { return el("div", {id, class: "plot"}); }
function pre(value) { return el("pre", {text: JSON.stringify(value, null, 1)}); }
function layout(title, xTitle, yTitle, extra) {
  return Object.assign({title: {text: title, font: {size: 15}}, margin: {t: 40, r: 20, b: 50, l: 60}, height: 360,
                        xaxis: {title: {text: xTitle}, automargin: true}, yaxis: {title: {text: yTitle}, automargin: true},
                        legend: {orientation: "h", y: -0.22}},
                       extra || {});
}

// a mean line with a shaded band between low and high (the band is two traces: low, then high filled to it)
function band(x, mean, low, high, name, color) {
  return [
    {x, y: low, mode: "lines", line: {width: 0}, showlegend: false, hoverinfo: "skip", name: `${name} low`},
    {x, y: high, mode: "lines", line: {width: 0}, fill: "tonexty", fillcolor: color.replace("rgb", "rgba").replace(")", ",0.2)"),
     showlegend: false, hoverinfo: "skip", name: `${name} high`},
    {x, y: mean, mode: "lines+markers", line: {color}, marker: {color}, name: `${name} (mean ± 95 % CI)`},
  ];
}
const COLORS = ["rgb(31,119,180)", "rgb(255,127,14)", "rgb(44,160,44)", "rgb(214,39,40)", "rgb(148,103,189)",
                "rgb(140,86,75)", "rgb(227,119,194)", "rgb(127,127,127)"];

function fail(err) { app.replaceChildren(el("p", {class: "error", text: `Could not load this page: ${err.message}`})); }

// -- agents -----------------------------------------------------------------------------------------
async function agentsPage() {
  const {agents} = await api("/api/agents");
  app.replaceChildren(el("h1", {text: `Agents (${agents.length})`}),
    agents.length ? table(["name", "algorithm", "version", "tasks", "runs", "observations", "actions", "updated"],
      agents.map(a => [link(`/agents/${encodeURIComponent(a.name)}`, a.name), a.algo, a.version, a.tasks, a.runs,
                       a.observation_space || "–", a.action_space || "–", when(a.updated)]), {id: "agents-table"})
      : el("p", {text: "No agents in this store yet: llmagentos train ... --agent NAME creates one."}));
}

async function agentPage(name) {
  const data = await api(`/api/agents/${encodeURIComponent(name)}`);
  const a = data.agent;
  app.replaceChildren(
    el("h1", {text: `${a.name}`}),
    el("p", {text: `${a.algo}, version ${a.version} · observations ${a.observation_space} · actions ${a.action_space}`}),
    section("Timeline", plotDiv("timeline")),
    section("Current performance per task", data.performance.length ? table(["task", "env", "descriptor", "score", "metric", "version"],
      data.performance.map(k => [k.task || `task ${k.task_id}`, k.env || "–", k.descriptor ? JSON.stringify(k.descriptor) : "–",
                                 fmt(k.score), k.metric, `v${k.version}`]), {id: "performance-table"})
      : el("p", {text: "No knowledge entries (evaluations) recorded yet."})),
    section("Versions and lineage", table(["version", "created", "task", "env", "from", "run", "how"],
      data.lineage.map((l, i) => [`v${l.version}`, when(data.versions[i].created), l.task || "–", data.versions[i].env || "–",
                                  l.from_version ? `v${l.from_version}` : "new", runLink(l.run_id), l.note]),
      {id: "versions-table"})),
    section("Runs", table(["run", "kind", "status", "env", "algorithm", "seed", "eval return", "created"],
      data.runs.map(r => [runLink(r.id), r.kind, r.status, r.env || "–", r.algo || "–", r.seed, fmt(r.eval), when(r.created)]),
      {id: "agent-runs-table"})));
  const version = {x: data.versions.map(v => new Date(v.created * 1000)), y: data.versions.map(v => v.task || v.env || "task ?"),
                   text: data.versions.map(v => `v${v.version}` + (v.run_id ? ` · run #${v.run_id}` : "")),
                   mode: "markers+text", textposition: "top center", marker: {size: 12, symbol: "diamond"}, name: "versions"};
  const runs = {x: data.runs.map(r => new Date(r.created * 1000)), y: data.runs.map(r => r.env || "run"),
                text: data.runs.map(r => `run #${r.id} ${r.algo || ""} ${r.status}`), mode: "markers", marker: {size: 9},
                name: "runs (start)", hoverinfo: "text+x"};
  const perf = {x: data.knowledge.map(k => new Date(k.created * 1000)), y: data.knowledge.map(k => k.task || k.env || "task"),
                text: data.knowledge.map(k => `${k.metric} ${fmt(k.score)} (v${k.version})`), mode: "markers",
                marker: {size: 7, symbol: "circle-open"}, name: "scores", hoverinfo: "text+x"};
  Plotly.newPlot("timeline", [version, runs, perf], layout(`${a.name}: versions, runs and scores per task`, "time", "",
                 {height: 260 + 20 * new Set(version.y.concat(runs.y)).size}), PLOT_CONFIG);
}

// -- runs -------------------------------------------------------------------------------------------
const RUN_FILTERS = ["kind", "agent", "env", "algo", "status"];

async function runsPage() {
  const params = new URLSearchParams(location.search);
  const data = await api(`/api/runs?${params}`);
  const form = el("form", {id: "run-filters", method: "get", action: "/runs"});
  for (const name of RUN_FILTERS) {
    const options = data.choices[name] || [];
    form.append(el("label", {}, name, el("select", {name},
      el("option", {value: "", text: "any"}),
      options.map(o => { const opt = el("option", {value: o, text: o}); if (params.get(name) === o) opt.selected = true; return opt; }))));
  }
  for (const name of ["since", "until"]) form.append(el("label", {}, name, el("input", {type: "date", name, value: params.get(name) || ""})));
  form.append(el("button", {type: "submit", text: "Filter"}));
  const pages = Math.max(1, Math.ceil(data.total / data.per_page));
  const goto = p => { const q = new URLSearchParams(params); q.set("page", p); return `/runs?${q}`; };
  const pager = el("p", {class: "pager"},
    data.page > 1 ? link(goto(data.page - 1), "← newer") : "", ` page ${data.page} of ${pages} · ${data.total} runs `,
    data.page < pages ? link(goto(data.page + 1), "older →") : "");
  const compare = el("button", {type: "button", text: "Overlay selected runs (mean ± 95 % CI)", onclick: () => {
    const ids = [...document.querySelectorAll("input.pick:checked")].map(c => c.value);
    if (ids.length) location.href = `/compare?ids=${ids.join(",")}`;
  }});
  app.replaceChildren(el("h1", {text: "Runs"}), form, pager, compare,
    table(["", "run", "kind", "status", "agent", "env", "algorithm", "seed", "eval return", "created"],
      data.runs.map(r => [el("input", {type: "checkbox", class: "pick", value: r.id}), runLink(r.id), r.kind,
                          el("span", {class: `status ${r.status}`, text: r.status}), r.agent ? link(`/agents/${encodeURIComponent(r.agent)}`, r.agent) : "–",
                          r.env || "–", r.algo || "–", r.seed ?? "–", fmt(r.eval), when(r.created)]), {id: "runs-table"}), pager.cloneNode(true));
}

async function runPage(id) {
  const run = await api(`/api/runs/${id}`);
  const summary = run.summary || {};
  const scalars = Object.entries(summary).filter(([, v]) => v === null || typeof v !== "object");
  const evalPoints = el("div", {id: "eval-points"});
  const status = el("span", {id: "run-status", class: `status ${run.status}`, text: run.status});
  app.replaceChildren(
    el("h1", {}, `Run #${run.id} `, status),
    el("p", {}, `${run.kind} · ${run.env || "–"} · ${run.algo || "–"} · seed ${run.seed ?? "–"}`,
       run.agent ? el("span", {}, " · agent ", link(`/agents/${encodeURIComponent(run.agent)}`, run.agent)) : "",
       run.sweep ? el("span", {}, " · part of ", link(`/result?path=${encodeURIComponent(run.sweep)}`, "its sweep")) : "",
       el("br"), el("code", {text: run.run_dir})),
    run.error ? el("p", {class: "error", text: run.error}) : "",
    section("Learning curve", plotDiv("curve"), plotDiv("episodes")),
    section("Evaluation points", evalPoints),
    section("Summary", scalars.length ? table(["key", "value"], scalars.map(([k, v]) => [k, fmt(v)]), {id: "summary-table"}) : "",
            summary.eval ? el("p", {text: `final evaluation: ${fmt(summary.eval.mean_return)} ± ${fmt(summary.eval.std_return)} (std over ${summary.eval.episodes} episodes)`}) : ""),
    section("Configuration", pre(run.config || {}), run.job ? el("details", {}, el("summary", {text: "job.json"}), pre(run.job)) : ""),
    section("Checkpoints and files", run.files.length ? table(["file", "bytes"],
      run.files.map(f => [link(`/files/${run.id}/${f.path.split("/").map(encodeURIComponent).join("/")}`, f.path), f.bytes]), {id: "files-table"})
      : el("p", {text: run.exists ? "No files." : "The run directory is gone."})));
  const evals = [], episodes = [];
  let offset = 0;
  async function update() {
    let m;
    do {  // a long log comes in several pieces
      m = await api(`/api/runs/${id}/metrics?offset=${offset}`);
      offset = m.offset;
      evals.push(...m.eval);
      episodes.push(...m.episodes);
    } while (m.more);
    Plotly.react("curve", [{x: evals.map(p => p[0]), y: evals.map(p => p[1]), mode: "lines+markers", name: "greedy evaluation",
                            error_y: {type: "data", array: evals.map(p => p[2] || 0), visible: true, thickness: 1}}],
                 layout("greedy evaluation return", "environment steps", "mean return"), PLOT_CONFIG);
    if (episodes.length)
      Plotly.react("episodes", [{x: episodes.map(p => p[0]), y: episodes.map(p => p[1]), mode: "lines", name: "online return",
                                 line: {width: 1}}], layout("online return per episode", "environment steps", "return"), PLOT_CONFIG);
    evalPoints.replaceChildren(evals.length ? table(["step", "mean return", "std"], evals.map(p => [p[0], fmt(p[1]), fmt(p[2])]),
                                                    {id: "eval-table"}) : el("p", {text: "No evaluation yet."}));
    status.textContent = m.status;
    status.className = `status ${m.status}`;
    return m.status;
  }
  if (await update() !== "running") return;
  (async () => {  // live: every few seconds, fetch what the run appended since the last look
    for (;;) {
      await new Promise(resolve => setTimeout(resolve, LIVE_EVERY_MS));
      if (await update() !== "running") return runPage(id);  // finished: draw it again with its summary and files
    }
  })().catch(fail);
}

async function comparePage(ids) {
  const data = await api(`/api/compare?ids=${encodeURIComponent(ids)}`);
  app.replaceChildren(el("h1", {text: `${data.runs.length} runs overlaid`}),
    section("Greedy evaluation return: mean ± 95 % CI over the runs", plotDiv("overlay"),
            el("p", {class: "note", text: "Student-t interval over the runs at each step, on the steps every run reached (curves interpolated)."})),
    table(["run", "env", "algorithm", "seed", "status", "eval return"],
          data.runs.map(r => [runLink(r.id), r.env || "–", r.algo || "–", r.seed ?? "–", r.status, fmt(r.eval)]), {id: "compare-table"}));
  const o = data.overlay;
  if (!o) { document.getElementById("overlay").append(el("p", {text: "These runs share no evaluation steps."})); return; }
  const traces = Object.entries(o.runs).map(([id, pts]) => ({x: pts.map(p => p[0]), y: pts.map(p => p[1]), mode: "lines",
    line: {width: 1, color: "rgba(120,120,120,0.5)"}, name: `run #${id}`, showlegend: false}));
  Plotly.newPlot("overlay", traces.concat(band(o.steps, o.mean, o.low, o.high, `${o.n} runs`, COLORS[0])),
                 layout("", "environment steps", "mean return"), PLOT_CONFIG);
}

// -- result directories: sweeps, lifelong, multi-agent, meta, transfer ------------------------------
async function resultsPage(kind) {
  const {results} = await api(`/api/results?kind=${encodeURIComponent(kind)}`);
  const titles = {sweep: "Sweeps", lifelong: "Lifelong", multiagent: "Multi-agent", meta: "Meta-learning", transfer: "Transfer",
                  multitask: "Multi-task"};
  app.replaceChildren(el("h1", {text: `${titles[kind] || "Results"} (${results.length})`}),
    results.length ? table(["name", "kind", "seeds", "jobs", "started", "directory"],
      results.map(r => [link(`/result?path=${encodeURIComponent(r.path)}`, r.name), r.kind, r.seeds ?? "–", r.jobs ?? "–",
                        r.started || when(r.modified), el("code", {text: r.path})]), {id: "results-table"})
      : el("p", {text: "None found under the run directories this dashboard looks in (llmagentos ui --runs DIR adds one)."}));
}

async function resultPage(path) {
  const r = await api(`/api/result?path=${encodeURIComponent(path)}`);
  app.replaceChildren(el("h1", {text: `${r.name}`}), el("p", {}, `${r.kind} · `, el("code", {text: r.path})));
  if (r.lifelong) lifelongView(r);
  if (r.outcomes) outcomesView(r.outcomes);
  if (r.meta) metaView(r.meta);
  if (r.transfer) transferView(r.transfer);
  if (r.groups && r.groups.some(g => g.curve || Object.keys(g.metrics).length)) groupsView(r.groups);
  if (r.jobs) app.append(section("Jobs", table(["run", "seed", "grid point", "finished", "directory"],
    r.jobs.map(j => [runLink(j.run_id), j.seed, JSON.stringify(j.params), j.finished ? "yes" : (j.error || "no"), el("code", {text: j.run_dir})]),
    {id: "jobs-table"})));
}

function groupsView(groups) {
  app.append(section("Grid points: mean ± 95 % CI over seeds",
    table(["grid point", "seeds", "eval return", "solved at step", "steps", "wall seconds"],
          groups.map(g => [g.label, g.seeds, meanCi(g.metrics.eval_return), meanCi(g.metrics.solved_at_step), meanCi(g.metrics.steps),
                           meanCi(g.metrics.wall_seconds)]), {id: "groups-table"}),
    plotDiv("sweep-curves")));
  const traces = [];
  groups.forEach((g, i) => { if (g.curve) traces.push(...band(g.curve.steps, g.curve.mean, g.curve.low, g.curve.high, g.label, COLORS[i % COLORS.length])); });
  if (traces.length) Plotly.newPlot("sweep-curves", traces, layout("greedy evaluation return per grid point", "environment steps", "mean return"), PLOT_CONFIG);
}

function lifelongView(r) {
  const names = Object.keys(r.lifelong);
  const metricNames = [...new Set(names.flatMap(n => Object.keys(r.lifelong[n].metrics).filter(k => !k.endsWith("_ci") && !k.endsWith("_per_seed")
                                                                                                  && typeof r.lifelong[n].metrics[k] === "number")))];
  app.append(section("Metrics per strategy (mean over seeds [95 % interval])",
    table(["strategy", ...metricNames.map(m => m.replaceAll("_", " "))], names.map(n => {
      const m = r.lifelong[n].metrics;
      return [n, ...metricNames.map(k => m[`${k}_ci`] ? `${fmt(m[k])} [${fmt(m[k + "_ci"][0])}, ${fmt(m[k + "_ci"][1])}]` : fmt(m[k]))];
    }), {id: "lifelong-metrics"})));
  const heat = el("div", {class: "row"});
  names.forEach(n => { if (r.lifelong[n].matrix) heat.append(el("div", {id: `matrix-${n}`, class: "plot matrix"})); });
  if (heat.children.length) app.append(section("R matrices: return on task j (column) after training through task i (row)", heat));
  const lives = el("div");
  names.forEach(n => { if (r.lifelong[n].lives.length) lives.append(el("div", {id: `life-${n}`, class: "plot"})); });
  if (lives.children.length) app.append(section("Return over the whole life: task boundaries (dashed) and detection alarms (red)", lives));
  for (const n of names) {
    const matrix = r.lifelong[n].matrix;
    if (matrix) {
      const labels = matrix.map((_, i) => `task ${i}`);
      Plotly.newPlot(`matrix-${n}`, [{z: matrix, x: labels, y: labels, type: "heatmap", colorscale: "Viridis",
        texttemplate: "%{z:.2f}", hovertemplate: "after training through %{y}<br>return on %{x}: %{z:.4f}<extra></extra>"}],
        layout(n, "evaluated on task j", "trained through task i", {height: 320, title: {text: n, x: 0.02, xanchor: "left"}, yaxis: {autorange: "reversed", title: {text: "trained through task i"}}}), PLOT_CONFIG);
    }
    const arm = r.lifelong[n].lives;
    if (!arm.length) continue;
    const traces = arm.map((life, i) => ({x: life.life.map(p => p[0]), y: life.life.map(p => p[1]), mode: "lines",
                                          name: `seed ${life.seed}`, line: {width: 1, color: COLORS[i % COLORS.length]}}));
    const first = arm[0];
    const shapes = first.boundaries.map(b => ({type: "line", x0: b, x1: b, yref: "paper", y0: 0, y1: 1, line: {dash: "dash", color: "#555"}}))
      .concat(first.alarms.map(a => ({type: "line", x0: a, x1: a, yref: "paper", y0: 0, y1: 1, line: {color: "red", width: 1}})));
    traces.push({x: first.alarms, y: first.alarms.map(() => null), mode: "markers", name: "alarm (seed " + first.seed + ")",
                 marker: {color: "red"}, showlegend: first.alarms.length > 0});
    const xaxis = {title: {text: "environment steps"}, range: first.steps ? [0, first.steps] : undefined};
    Plotly.newPlot(`life-${n}`, traces, layout(first.life.length ? `${n}: evaluation return over the life`
                                                                 : `${n}: world changes (dashed) and alarms (red); no returns recorded`,
                                               "environment steps", "return", {shapes, xaxis}), PLOT_CONFIG);
  }
}

function outcomesView(o) {
  app.append(section("Where the seeds end: greedy joint action per seed", plotDiv("outcomes"),
    el("p", {text: o.optimal_share === null ? "" : `share of seeds at an optimal joint action: ${fmt(o.optimal_share)}`}),
    table(["seed", "outcome", "optimal"], o.per_seed.map(s => [s.seed, s.outcome ?? "–", s.optimal === null ? "–" : String(s.optimal)]), {id: "outcomes-table"})));
  if (o.outcomes) Plotly.newPlot("outcomes", [{x: Object.keys(o.outcomes), y: Object.values(o.outcomes), type: "bar",
                                 hovertemplate: "%{x}: %{y} seeds<extra></extra>"}],
                                 layout("outcome distribution over seeds", "greedy joint action", "seeds"), PLOT_CONFIG);
}

function metaView(m) {
  if (!m.adaptation) { app.append(section("Summary", table(["key", "value"], Object.entries(m.values).map(([k, v]) => [k, fmt(v)])))); return; }
  const a = m.adaptation;
  app.append(section(`Return after k adaptation steps (${a.seeds} seed${a.seeds > 1 ? "s" : ""}; bars: 95 % interval)`, plotDiv("adaptation"),
    table(["method", ...a.steps.map(k => `${k} steps`)], Object.entries(a.methods).map(([n, v]) => [n, ...v.mean.map(fmt)]), {id: "adaptation-table"})));
  Plotly.newPlot("adaptation", Object.entries(a.methods).map(([n, v], i) => ({x: a.steps, y: v.mean, name: n, mode: "lines+markers",
    line: {color: COLORS[i % COLORS.length]}, marker: {color: COLORS[i % COLORS.length]}, error_y: {type: "data", array: v.ci95.map(c => c || 0), visible: true}})),
    layout("before and after adaptation", "adaptation steps k", "return on held-out tasks", {xaxis: {dtick: 1, title: {text: "adaptation steps k"}}}), PLOT_CONFIG);
}

function transferView(t) {
  app.append(section(`Transfer from ${t.source} to ${t.env} (${t.mode}, ${t.algo}, ${(t.seeds || []).length} seeds)`, plotDiv("transfer"),
    table(["metric", "mean", "95 % interval"], Object.entries(t.metrics).map(([k, v]) => [k.replaceAll("_", " "), fmt(v),
          t.ci[k] ? `[${fmt(t.ci[k][0])}, ${fmt(t.ci[k][1])}]` : "–"]), {id: "transfer-table"}),
    el("p", {text: `time to threshold ${fmt(t.threshold)}: transfer ${fmt(t.time_to_threshold?.transfer)} steps (${t.time_to_threshold?.transfer_reached}), ` +
                   `scratch ${fmt(t.time_to_threshold?.scratch)} steps (${t.time_to_threshold?.scratch_reached})`})));
  const traces = [];
  [["transfer", COLORS[0]], ["scratch", COLORS[1]]].forEach(([arm, color]) => {
    for (const seed of t[arm].per_seed) traces.push({x: t.steps, y: seed, mode: "lines", line: {width: 1, color: color.replace("rgb", "rgba").replace(")", ",0.3)")}, showlegend: false, hoverinfo: "skip"});
    traces.push({x: t.steps, y: t[arm].mean, mode: "lines", name: `${arm} (mean)`, line: {color, width: 3}});
  });
  const shapes = [{type: "line", xref: "paper", x0: 0, x1: 1, y0: t.threshold, y1: t.threshold, line: {dash: "dot", color: "green"}}];
  const annotations = [{x: t.steps[0], y: t.transfer.mean[0], ax: 0, ay: 0, axref: "x", ayref: "y", text: `jumpstart ${fmt(t.jumpstart)}`,
                        showarrow: false, xanchor: "left", yanchor: "bottom"},
                       {xref: "paper", x: 1, y: t.threshold, text: "threshold", showarrow: false, xanchor: "right", yanchor: "bottom"}];
  traces.push({x: [t.steps[0], t.steps[0]], y: [t.scratch.mean[0], t.transfer.mean[0]], mode: "lines+markers", name: "jumpstart",
               line: {color: "black", width: 2}, marker: {symbol: "line-ew-open", size: 12}});
  for (const [arm, color] of [["transfer", COLORS[0]], ["scratch", COLORS[1]]]) {
    const at = t.time_to_threshold?.[arm];
    if (typeof at === "number") shapes.push({type: "line", x0: at, x1: at, yref: "paper", y0: 0, y1: 1, line: {dash: "dot", color}});
  }
  Plotly.newPlot("transfer", traces, layout("transfer vs learning from scratch", "environment steps", "greedy return", {shapes, annotations}), PLOT_CONFIG);
}

// -- dispatch ---------------------------------------------------------------------------------------
const pages = {
  agents: () => agentsPage(), agent: d => agentPage(d.name), runs: () => runsPage(), run: d => runPage(d.id),
  compare: d => comparePage(d.ids), results: d => resultsPage(d.kind), result: d => resultPage(d.path),
};
(pages[app.dataset.page] || (() => Promise.reject(new Error("unknown page"))))(app.dataset)
  .then(() => { app.dataset.ready = "1"; })
  .catch(fail);
