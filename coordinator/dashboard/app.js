// app.js: the dashboard. Reads the coordinator's /api/ (the same JSON as
// `mlopsctl -o json`) every 2 s and redraws the page the path names:
// /, /jobs/ID, /workers, /models, /models/NAME. Every value from the API is escaped
// before it reaches the DOM: job names and log lines come from users.
"use strict";
const REFRESH_MS = 2000;
const main = document.getElementById("main");

function esc(v) {
  return String(v === null || v === undefined ? "" : v).replace(/[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
function badge(state) { return `<span class="badge s-${esc(state)}">${esc(state)}</span>`; }
function secs(s) {
  if (s === null || s === undefined) return "";
  if (s < 1) return `${(s * 1000).toFixed(0)} ms`;
  if (s < 90) return `${s.toFixed(1)} s`;
  if (s < 5400) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${(s / 3600).toFixed(1)} h`;
}
function bytes(b) {
  if (b === null || b === undefined) return "";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
  return `${b.toFixed(i ? 1 : 0)} ${u[i]}`;
}
function num(v) {
  if (typeof v !== "number") return esc(v);
  if (Number.isInteger(v)) return v.toLocaleString("en-US");
  return Math.abs(v) >= 1000 ? v.toFixed(1) : v.toPrecision(6).replace(/\.?0+$/, "");
}
function bar(done, total, cls) {
  const pct = total > 0 ? Math.min(100, (100 * done) / total) : 0;
  return `<div class="bar ${cls || ""}"><span style="width:${pct.toFixed(1)}%"></span></div>`;
}
async function api(path) {
  const r = await fetch(path, { credentials: "same-origin", cache: "no-store" });
  const body = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
  if (!r.ok) { const e = new Error(body.error || `HTTP ${r.status}`); e.status = r.status; throw e; }
  return body;
}

// ---- /: the jobs -------------------------------------------------------
async function pageJobs() {
  const list = (await api("/api/jobs")).jobs;
  const recent = list.slice(-100).reverse();
  const full = await Promise.all(recent.map((j) => api(`/api/jobs/${encodeURIComponent(j.job)}`).catch(() => null)));
  if (!recent.length)
    return `<h1>Jobs</h1><div class="card empty">No jobs yet. Submit one with <code>mlopsctl submit job.yaml</code>.</div>`;
  const rows = recent.map((j, i) => {
    const f = full[i] || { stages: [], error: null, seconds: null };
    // stages that do not need each other run side by side: list them all
    const running = f.stages.filter((s) => s.state === "running");
    const cls = j.state === "succeeded" ? "done" : j.state === "failed" ? "failed" : "";
    const where = running.length ? running.map((s) => `${esc(s.name)} ${s.tasks_done}/${s.tasks_total}`).join(", ") : `${j.stages_done}/${j.stages_total} stages`;
    return `<tr><td><a class="mono" href="/jobs/${encodeURIComponent(j.job)}">${esc(j.job)}</a></td>
      <td>${esc(j.name)}</td><td>${badge(j.state)}</td>
      <td><div class="progress">${bar(j.stages_done, j.stages_total, cls)}<small>${where}</small></div></td>
      <td class="num">${secs(f.seconds)}</td><td class="muted">${esc(j.submitted)}</td>
      <td class="error">${esc(f.error)}</td></tr>`;
  }).join("");
  return `<h1>Jobs <span class="muted">(${list.length})</span></h1><div class="card"><table>
    <tr><th>Job</th><th>Name</th><th>State</th><th>Stages</th><th class="num">Duration</th><th>Submitted</th><th>Failure reason</th></tr>
    ${rows}</table></div>`;
}

// ---- /jobs/ID: one job -------------------------------------------------
// Each stage a bar from its start (seconds after submission) for its
// seconds; a stage not started yet has no bar.
function timeline(stages) {
  const W = 1100, rowH = 26, left = 110, right = 230, H = stages.length * rowH + 30;
  const end = (s) => (s.started_s === null || s.started_s === undefined ? 0 : s.started_s + (s.seconds || 0));
  const total = Math.max(...stages.map(end), 0) || 1;
  const scale = (W - left - right) / total, out = [];
  const colour = { done: "#1f9d55", running: "#2f6fdf", failed: "#d64545", pending: "#c5cad4", cancelled: "#c98a00" };
  stages.forEach((s, i) => {
    const y = 8 + i * rowH, started = s.started_s !== null && s.started_s !== undefined;
    const x = left + (started ? s.started_s : 0) * scale, w = started ? Math.max(3, (s.seconds || 0) * scale) : 0;
    const what = started ? `starts +${secs(s.started_s)} · ${secs(s.seconds)} · ${s.tasks_done}/${s.tasks_total} tasks` : "not started";
    out.push(`<g data-stage="${esc(s.name)}" data-started="${dj(s.started_s)}" data-seconds="${dj(s.seconds)}">
      <text x="${left - 10}" y="${y + 15}" text-anchor="end">${esc(s.name)}</text>
      ${started ? `<rect x="${x.toFixed(1)}" y="${y + 3}" width="${w.toFixed(1)}" height="16" rx="3" fill="${colour[s.state] || "#9aa1ae"}"><title>${esc(s.name)}: ${esc(s.state)}</title></rect>` : ""}
      <text x="${(x + w + 8).toFixed(1)}" y="${y + 15}">${what}</text></g>`);
  });
  out.push(`<line class="axis" x1="${left}" y1="${H - 16}" x2="${W - right}" y2="${H - 16}"/>
    <text x="${left}" y="${H - 3}">0 s</text><text x="${W - right}" y="${H - 3}" text-anchor="end">${secs(total)}</text>`);
  return `<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="stage timeline">${out.join("")}</svg>`;
}
function workerLink(name) {
  return name ? `<a href="/workers#w-${encodeURIComponent(name)}">${esc(name)}</a>` : `<span class="muted">—</span>`;
}
// The task table: the stages' tasks as the coordinator lists them (the
// first ones of each stage, then every running, failed or retried one).
function taskTable(t) {
  if (!t) return `<div class="empty">The task table is not available right now.</div>`;
  const rows = [];
  let hidden = 0;
  for (const st of t.stages) {
    hidden += st.tasks_total - st.tasks_shown;
    for (const k of st.tasks)
      rows.push(`<tr data-stage="${esc(st.name)}" data-task="${k.task}" class="${k.state !== "failed" ? "" : /^abandoned/.test(k.error || "") ? "stopped" : "bad"}">
        <td>${esc(st.name)}</td><td class="num" data-key="task">${k.task}</td><td data-key="state">${badge(k.state)}</td>
        <td data-key="worker" data-value="${dj(k.worker)}">${workerLink(k.worker)}</td>
        <td class="num" data-key="attempts" data-value="${k.attempts}">${k.attempts}${k.retries ? ` <span class="muted">(${k.retries} retried)</span>` : ""}</td>
        <td class="num" data-key="seconds" data-value="${dj(k.seconds)}">${k.seconds === null ? "" : secs(k.seconds)}</td>
        <td class="num" data-key="rows" data-value="${dj(k.rows)}">${k.rows === null ? "" : num(k.rows)}</td>
        <td class="error" data-key="error" data-value="${dj(k.error)}">${esc(k.error)}</td></tr>`);
  }
  if (!rows.length) return `<div class="empty">No tasks planned yet.</div>`;
  return `<div class="scroll"><table class="dense"><tr><th>Stage</th><th class="num">Task</th><th>State</th><th>Worker</th><th class="num">Attempts</th>
    <th class="num">Seconds</th><th class="num">Rows</th><th>Error</th></tr>${rows.join("")}</table></div>
    ${hidden ? `<p class="muted">${num(hidden)} more done tasks not listed (<code>mlopsctl tasks ${esc(t.job)}</code> lists the same).</p>` : ""}`;
}
function lossCurve(loss) {
  if (!loss || !loss.length) return `<div class="empty">No training loss: this job has no train stage.</div>`;
  const W = 520, H = 240, l = 58, r = 16, t = 14, b = 36;
  const vals = loss.filter((v) => typeof v === "number");
  let lo = Math.min(...vals), hi = Math.max(...vals);
  if (hi - lo < 1e-12) { lo -= 0.5; hi += 0.5; }
  const X = (i) => l + (loss.length === 1 ? (W - l - r) / 2 : (i * (W - l - r)) / (loss.length - 1));
  const Y = (v) => t + (H - t - b) * (1 - (v - lo) / (hi - lo));
  let g = "";
  for (let k = 0; k <= 4; k++) {
    const v = lo + ((hi - lo) * k) / 4, y = Y(v);
    g += `<line class="gridl" x1="${l}" x2="${W - r}" y1="${y}" y2="${y}"/><text x="${l - 6}" y="${y + 4}" text-anchor="end">${v.toPrecision(4)}</text>`;
  }
  const step = Math.max(1, Math.ceil(loss.length / 10));
  for (let i = 0; i < loss.length; i += step)
    g += `<text x="${X(i)}" y="${H - b + 16}" text-anchor="middle">${i + 1}</text>`;
  const pts = loss.map((v, i) => `${X(i).toFixed(1)},${Y(v).toFixed(1)}`).join(" ");
  const dots = loss.map((v, i) => `<circle cx="${X(i).toFixed(1)}" cy="${Y(v).toFixed(1)}" r="3" fill="#2f6fdf"><title>epoch ${i + 1}: ${v}</title></circle>`).join("");
  return `<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="training loss per epoch">${g}
    <line class="axis" x1="${l}" y1="${H - b}" x2="${W - r}" y2="${H - b}"/><line class="axis" x1="${l}" y1="${t}" x2="${l}" y2="${H - b}"/>
    <polyline points="${pts}" fill="none" stroke="#2f6fdf" stroke-width="2"/>${dots}
    <text x="${(l + W - r) / 2}" y="${H - 4}" text-anchor="middle">epoch</text></svg>`;
}
async function pageJob(id) {
  const enc = encodeURIComponent(id);
  const [j, logs, tasks] = await Promise.all([api(`/api/jobs/${enc}`), api(`/api/jobs/${enc}/logs`),
    api(`/api/jobs/${enc}/tasks`).catch(() => null)]);
  const reg = j.registered ? /^(.*)@(\d+)$/.exec(j.registered) : null;
  const workers = tasks ? [...new Set(tasks.stages.flatMap((s) => s.tasks.map((k) => k.worker)).filter(Boolean))].sort() : [];
  const m = j.metrics || {};
  const scalars = Object.keys(m).filter((k) => k !== "train_loss" && k !== "model")
    .map((k) => `<div><span title="${esc(k)}">${esc(k)}</span><span>${num(m[k])}</span></div>`).join("");
  const exportable = j.stages.filter((s) => s.state === "done").map((s) => s.name);
  const last = exportable.length ? exportable[exportable.length - 1] : null;
  return `<h1><span class="mono">${esc(j.job)}</span> ${esc(j.name)} ${badge(j.state)}</h1>
    <div class="summary"><div><small>Submitted</small>${esc(j.submitted)}</div>
      <div><small>Finished</small>${esc(j.finished || "—")}</div><div><small>Duration</small>${secs(j.seconds)}</div>
      <div><small>Stages</small>${j.stages.filter((s) => s.state === "done").length}/${j.stages.length} done</div>
      ${j.model ? `<div><small>Model</small><span class="mono">${esc(j.model)}</span></div>` : ""}
      ${reg ? `<div><small>Registered</small><a data-registered="${esc(j.registered)}" href="/models/${encodeURIComponent(reg[1])}">${esc(reg[1])} v${reg[2]}</a></div>` : ""}
      ${j.promotion ? `<div><small>Promotion gate</small><span class="badge ${j.promotion.decision === "promoted" ? "s-succeeded" : "s-failed"}">${j.promotion.decision === "promoted" ? "passed" : "failed"}</span> ${esc(j.promotion.alias)}</div>` : ""}
      ${workers.length ? `<div><small>Workers</small>${workers.map(workerLink).join(", ")}</div>` : ""}</div>
    ${j.error ? `<div class="card"><h2>Failure reason</h2><div class="error">${esc(j.error)}</div></div>` : ""}
    <div class="card"><h2>Stages</h2>${timeline(j.stages)}</div>
    <div class="card"><h2>Tasks</h2>${taskTable(tasks)}</div>
    <div class="grid2"><div class="card"><h2>Training loss per epoch</h2>${lossCurve(m.train_loss)}</div>
      <div class="card"><h2>Metrics</h2>${scalars ? `<div class="kv">${scalars}</div>` : `<div class="empty">No metrics yet.</div>`}</div></div>
    <div class="card"><h2>Log</h2><pre class="log">${logs.lines.map(esc).join("\n") || "(no log lines)"}</pre></div>
    <div class="card"><h2>Export</h2>${last
      ? `<code class="cmd">mlopsctl export ${esc(j.job)} --stage ${esc(last)} -o ${esc(j.job)}-${esc(last)}.csv</code>
         <code class="cmd">mlopsctl report ${esc(j.job)} -o ${esc(j.job)}-report.html</code>
         <span class="muted">Stages with output: ${exportable.map(esc).join(", ")}. Raw JSON: <a href="/api/jobs/${encodeURIComponent(j.job)}">/api/jobs/${esc(j.job)}</a></span>`
      : `<span class="muted">No stage has finished yet.</span>`}</div>`;
}

// ---- /workers ----------------------------------------------------------
// one colour per stage kind, so a stage reads the same in every row
const STAGE_COLOURS = { ingest: "#2f6fdf", clean: "#0e9aa7", join: "#4b6584", scale: "#7a8b1f", hash: "#c98a00",
  split: "#a0522d", train: "#6b4fd8", evaluate: "#1f9d55", promote: "#e67e22", profile: "#d6457a",
  knn: "#8e44ad", idx: "#16a085", predict: "#2c3e50", noop: "#7f8c8d" };
const PALETTE = ["#5d8aa8", "#b5651d", "#3b7a57", "#915c83", "#8b8000", "#36454f"];
function stageColour(name) {
  if (STAGE_COLOURS[name]) return STAGE_COLOURS[name];
  let h = 0;
  for (const ch of String(name)) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
}
// Dask's task stream: one row per worker, one bar per finished task from
// its start to its end (the worker's own seconds), coloured by stage;
// failed ones red. The span is that of the tasks the coordinator keeps.
function taskStream(st, names) {
  const ts = st.tasks;
  if (!ts.length) return `<div class="empty">No task has finished yet.</div>`;
  const W = 1100, left = 110, right = 20, rowH = 24, H = names.length * rowH + 34;
  const t0 = Math.min(...ts.map((t) => t.start)), t1 = Math.max(...ts.map((t) => t.end));
  const span = Math.max(t1 - t0, 1e-3), X = (t) => left + ((t - t0) / span) * (W - left - right);
  const rows = names.map((n, i) => {
    const mine = ts.filter((t) => t.worker === n), y = 6 + i * rowH;
    const bars = mine.map((t) => `<rect x="${X(t.start).toFixed(2)}" y="${y + 3}" width="${Math.max(1, X(t.end) - X(t.start)).toFixed(2)}" height="16"
      fill="${t.ok ? stageColour(t.stage) : "#d64545"}"><title>${esc(t.job)} ${esc(t.stage)} task ${t.task}: ${secs(t.end - t.start)}${t.ok ? "" : " (failed)"}</title></rect>`).join("");
    return `<g data-worker="${esc(n)}" data-tasks="${mine.length}"><text x="${left - 10}" y="${y + 15}" text-anchor="end">${esc(n)}</text>${bars}</g>`;
  }).join("");
  const stages = [...new Set(ts.map((t) => t.stage))];
  const legend = stages.map((n) => `<span class="chip"><span class="sw" style="background:${stageColour(n)}"></span>${esc(n)}</span>`).join(" ");
  return `<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="task stream">${rows}
    <line class="axis" x1="${left}" y1="${H - 20}" x2="${W - right}" y2="${H - 20}"/>
    <text x="${left}" y="${H - 6}">${esc(new Date(t0 * 1000).toLocaleTimeString())}</text>
    <text x="${W - right}" y="${H - 6}" text-anchor="end">${esc(new Date(t1 * 1000).toLocaleTimeString())} (${secs(span)} shown, last ${ts.length} tasks)</text></svg>
    <div class="legend">${legend} <span class="chip"><span class="sw" style="background:#d64545"></span>failed</span></div>`;
}
// A worker's resident memory and store bytes over its heartbeats.
function usageChart(w) {
  const xs = w.samples;
  if (!xs.length) return `<div class="empty">No heartbeat with usage yet.</div>`;
  const W = 520, H = 150, l = 64, r = 12, t = 10, b = 24;
  const t0 = xs[0].time, t1 = xs[xs.length - 1].time, span = Math.max(t1 - t0, 1);
  const hi = Math.max(1, ...xs.map((x) => Math.max(x.rss_bytes, x.store_bytes)));
  const X = (v) => l + ((v - t0) / span) * (W - l - r), Y = (v) => t + (H - t - b) * (1 - v / hi);
  const line = (k, colour) => `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${xs.map((x) => `${X(x.time).toFixed(1)},${Y(x[k]).toFixed(1)}`).join(" ")}"/>`;
  const last = xs[xs.length - 1];
  return `<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="memory of ${esc(w.name)}" data-worker="${esc(w.name)}" data-samples="${xs.length}" data-last-rss="${last.rss_bytes}" data-last-store="${last.store_bytes}">
    <line class="gridl" x1="${l}" x2="${W - r}" y1="${Y(hi)}" y2="${Y(hi)}"/><text x="${l - 6}" y="${Y(hi) + 4}" text-anchor="end">${bytes(hi)}</text>
    <line class="axis" x1="${l}" x2="${W - r}" y1="${H - b}" y2="${H - b}"/><text x="${l - 6}" y="${H - b + 4}" text-anchor="end">0</text>
    ${line("rss_bytes", "#2f6fdf")}${line("store_bytes", "#1f9d55")}
    <text x="${l}" y="${H - 6}">${secs(span)} ago</text><text x="${W - r}" y="${H - 6}" text-anchor="end">now · ${last.running} running</text></svg>
    <div class="legend"><span class="chip"><span class="sw" style="background:#2f6fdf"></span>memory ${bytes(last.rss_bytes)}</span>
      <span class="chip"><span class="sw" style="background:#1f9d55"></span>store ${bytes(last.store_bytes)}</span></div>`;
}
async function pageWorkers() {
  const [doc, st] = await Promise.all([api("/api/workers"), api("/api/stream").catch(() => null)]);
  const ws = doc.workers;
  if (!ws.length) return `<h1>Workers</h1><div class="card empty">No worker has registered. Start one with <code>mlops-worker --coordinator ENDPOINT</code>.</div>`;
  const rows = ws.map((w) => `<tr id="w-${esc(w.name)}"><td><b>${esc(w.name)}</b><div class="muted mono">${esc(w.id)}</div></td>
    <td>${badge(w.state)}</td><td class="num">${w.slots}</td>
    <td><div class="progress">${bar(w.running, w.slots)}<small>${w.running} running</small></div></td>
    <td class="num">${num(w.tasks_done)}</td><td class="num">${num(w.shards)}</td>
    <td class="num">${"store_bytes" in w ? bytes(w.store_bytes) : "—"}</td><td class="num">${"rss_bytes" in w ? bytes(w.rss_bytes) : "—"}</td>
    <td class="num">${secs(w.last_seen_ms / 1000)} ago</td><td class="mono muted">${esc(w.endpoint)}<br>pid ${w.pid}</td></tr>`).join("");
  const charts = st ? st.workers.map((w) => `<div class="card"><h2>${esc(w.name)} <span class="muted">memory and store over time</span></h2>${usageChart(w)}</div>`).join("") : "";
  return `<h1>Workers <span class="muted">(${ws.filter((w) => w.state === "alive").length} alive)</span></h1><div class="card"><table>
    <tr><th>Worker</th><th>State</th><th class="num">Slots</th><th>Running</th><th class="num">Tasks done</th><th class="num">Shards</th>
    <th class="num">Store</th><th class="num">Memory</th><th class="num">Last heartbeat</th><th>Endpoint</th></tr>${rows}</table></div>
    <div class="card"><h2>Task stream</h2>${st ? taskStream(st, ws.map((w) => w.name)) : `<div class="empty">The task stream is not available right now.</div>`}</div>
    <div class="grid2">${charts}</div>`;
}

// ---- /models and /models/NAME -----------------------------------------
// Every shown value also sits exact in data-value (numbers in JSON's own
// form), so a test can compare the page with `mlopsctl model ... -o json`.
function dj(v) { return esc(JSON.stringify(v === undefined ? null : v)); }
function dv(v) { return esc(typeof v === "string" ? v : JSON.stringify(v === undefined ? null : v)); }
function metricsCell(m) {
  const ks = Object.keys(m || {});
  if (!ks.length) return `<span class="muted">—</span>`;
  return ks.map((k) => `<span class="chip" data-metric="${esc(k)}" data-value="${dv(m[k])}">${esc(k)} <b>${num(m[k])}</b></span>`).join(" ");
}
function aliasChips(list) {
  return (list || []).map((a) => `<span class="badge alias">${esc(a)}</span>`).join(" ");
}
function modelLink(name) { return `<a href="/models/${encodeURIComponent(name)}">${esc(name)}</a>`; }
function versionsTable(name, vs, full) {
  if (!vs.length) return `<div class="empty">No versions: every one was removed.</div>`;
  const rows = vs.slice().reverse().map((v) => `<tr data-model="${esc(name)}" data-version="${v.version}">
    <td class="num" data-key="version" data-value="${v.version}"><b>v${v.version}</b></td>
    <td data-key="aliases" data-value="${dv(v.aliases)}">${aliasChips(v.aliases)}</td>
    <td data-key="job" data-value="${esc(v.job)}"><a class="mono" href="/jobs/${encodeURIComponent(v.job)}">${esc(v.job)}</a></td>
    <td class="muted nowrap" data-key="created" data-value="${esc(v.created)}">${esc(String(v.created).replace("T", " "))}</td>
    <td data-key="metrics">${metricsCell(v.metrics)}</td>
    <td data-key="tags" data-value="${dv(v.tags || [])}">${(v.tags || []).map((t) => `<span class="chip">${esc(t)}</span>`).join(" ")}</td>
    <td class="mono sha" data-key="sha256" data-value="${esc(v.sha256)}" title="${esc(v.sha256)}">${esc(full ? v.sha256 : String(v.sha256 || "").slice(0, 12) + "…")}</td></tr>`).join("");
  return `<table><tr><th class="num">Version</th><th>Aliases</th><th>Job</th><th>Created</th><th>Metrics</th><th>Tags</th><th>sha256</th></tr>${rows}</table>`;
}
async function pageModels() {
  let doc;
  try { doc = await api("/api/models"); } catch (e) {
    if (e.status === 404) return `<h1>Models</h1><div class="card empty">No models registered. This coordinator has no model registry yet.</div>`;
    throw e;
  }
  const models = doc.models || [];
  if (!models.length) return `<h1>Models</h1><div class="card empty">No models registered. A job with <code>train</code> registers one when it succeeds.</div>`;
  const vers = await Promise.all(models.map((m) => api(`/api/models/${encodeURIComponent(m.name)}`).catch(() => ({ versions: [] }))));
  const cards = models.map((m, i) => {
    const al = Object.keys(m.aliases || {}).map((a) => `<span data-alias="${esc(a)}" data-value="${m.aliases[a]}"><span class="badge alias">${esc(a)}</span> v${m.aliases[a]}</span>`).join(" &nbsp; ");
    return `<div class="card" data-model="${esc(m.name)}"><h2>${modelLink(m.name)} <span class="muted">· ${m.versions} version${m.versions === 1 ? "" : "s"} · latest ${m.latest === null ? "—" : "v" + m.latest}</span></h2>
      <div class="aliases">${al || `<span class="muted">No aliases.</span>`}</div>
      ${versionsTable(m.name, vers[i].versions || [], false)}
      <p class="muted"><a href="/models/${encodeURIComponent(m.name)}">Alias history and promotion decisions of ${esc(m.name)} →</a></p></div>`;
  }).join("");
  return `<h1>Models <span class="muted">(${models.length})</span></h1>${cards}`;
}
const GATE = /^promotion gate \(job ([^)]+)\)/;
async function pageModel(name) {
  const enc = encodeURIComponent(name);
  const [v, h] = await Promise.all([api(`/api/models/${enc}`), api(`/api/models/${enc}/history`)]);
  const versions = v.versions || [], hist = h.history || [];
  // the gate's decision of each job that registered a version here: the
  // job's own record while it is kept (status.promotion), and the alias
  // move the gate journalled (which outlives the job)
  const jobs = [...new Set(versions.map((x) => x.job).concat(hist.map((m) => (GATE.exec(m.reason || "") || [])[1]).filter(Boolean)))];
  const st = await Promise.all(jobs.map((j) => api(`/api/jobs/${encodeURIComponent(j)}`).catch(() => null)));
  const decisions = jobs.map((j, i) => ({ job: j, status: st[i], move: hist.find((m) => (GATE.exec(m.reason || "") || [])[1] === j) }))
    .filter((d) => (d.status && d.status.promotion) || d.move);
  const holders = {};
  versions.forEach((x) => (x.aliases || []).forEach((a) => { holders[a] = x.version; }));
  const aliasList = Object.keys(holders).sort().map((a) => `<div class="holder" data-alias="${esc(a)}" data-value="${holders[a]}"><span class="badge alias">${esc(a)}</span> → <b>v${holders[a]}</b></div>`).join("");
  const hrows = hist.slice().reverse().map((m) => `<tr data-seq="${m.seq}">
    <td class="num" data-key="seq" data-value="${m.seq}">${m.seq}</td><td class="muted nowrap" data-key="time" data-value="${esc(m.time)}">${esc(String(m.time).replace("T", " "))}</td>
    <td data-key="alias" data-value="${esc(m.alias)}"><span class="badge alias">${esc(m.alias)}</span></td>
    <td data-key="from" data-value="${dv(m.from)}">${m.from === null ? `<span class="muted">—</span>` : "v" + m.from}</td>
    <td data-key="to" data-value="${dv(m.to)}">${m.to === null ? `<span class="muted">removed</span>` : "v" + m.to}${m.from === m.to && m.to !== null ? ` <span class="muted">(kept)</span>` : ""}</td>
    <td class="mono" data-key="fingerprint" data-value="${esc(m.fingerprint)}">${esc(m.fingerprint) || `<span class="muted">plain</span>`}</td>
    <td data-key="reason" data-value="${esc(m.reason)}">${esc(m.reason) || `<span class="muted">—</span>`}</td></tr>`).join("");
  const drows = decisions.map((d) => {
    const p = d.status && d.status.promotion;
    const passed = p ? p.decision === "promoted" : d.move.from !== d.move.to || d.move.from === null;
    const side = (x) => x ? `v${x.version} <b data-value="${dv(x.metric)}">${num(x.metric)}</b>` : `<span class="muted">none</span>`;
    return `<tr data-job="${esc(d.job)}">
      <td><a class="mono" href="/jobs/${encodeURIComponent(d.job)}">${esc(d.job)}</a></td>
      <td data-key="alias" data-value="${esc(p ? p.alias : d.move.alias)}"><span class="badge alias">${esc(p ? p.alias : d.move.alias)}</span></td>
      <td data-key="metric" data-value="${esc(p ? p.metric : "")}">${esc(p ? p.metric : "")}</td>
      <td data-key="challenger" data-value="${dv(p ? p.challenger : null)}">${p ? side(p.challenger) : ""}</td>
      <td data-key="champion" data-value="${dv(p ? p.champion : null)}">${p ? side(p.champion) : ""}</td>
      <td data-key="decision" data-value="${esc(p ? p.decision : passed ? "promoted" : "kept")}"><span class="badge ${passed ? "s-succeeded" : "s-failed"}">${passed ? "passed" : "failed"}</span> <span class="muted">${passed ? "promoted" : "kept"}</span></td>
      <td data-key="reason" data-value="${esc(d.move ? d.move.reason : "")}" class="muted">${esc(d.move ? d.move.reason : "(no alias move journalled)")}</td></tr>`;
  }).join("");
  const latest = versions.length ? versions[versions.length - 1].version : null;
  return `<h1>Model ${esc(v.name)}</h1>
    <div class="summary"><div><small>Versions</small>${versions.length}</div><div><small>Latest</small>${latest === null ? "—" : "v" + latest}</div>
      <div><small>Aliases</small>${Object.keys(holders).length}</div><div><small>Alias moves</small>${hist.length}</div></div>
    <div class="grid2"><div class="card"><h2>Aliases now</h2>${aliasList ? `<div class="holders">${aliasList}</div>` : `<div class="empty">No alias points at a version.</div>`}</div>
      <div class="card"><h2>Commands</h2><code class="cmd">mlopsctl model versions ${esc(v.name)}</code><code class="cmd">mlopsctl model history ${esc(v.name)}</code>
      <code class="cmd">mlopsctl model alias ${esc(v.name)} VERSION ALIAS --reason TEXT</code></div></div>
    <div class="card"><h2>Versions</h2>${versionsTable(v.name, versions, true)}</div>
    <div class="card"><h2>Promotion decisions</h2>${drows ? `<table><tr><th>Job</th><th>Alias</th><th>Metric</th><th>Challenger</th><th>Champion</th><th>Gate</th><th>Reason</th></tr>${drows}</table>`
      : `<div class="empty">No job with a <code>promote</code> section registered a version of this model.</div>`}</div>
    <div class="card"><h2>Alias history</h2>${hrows ? `<table><tr><th class="num">Seq</th><th>Time</th><th>Alias</th><th>From</th><th>To</th><th>By (key fingerprint)</th><th>Reason</th></tr>${hrows}</table>`
      : `<div class="empty">No alias was ever moved.</div>`}</div>`;
}

// ---- routing and refresh -----------------------------------------------
function route() {
  const p = location.pathname;
  if (p === "/workers") return ["workers", pageWorkers];
  if (p === "/models") return ["models", pageModels];
  if (p.startsWith("/models/")) return ["models", () => pageModel(decodeURIComponent(p.slice(8)))];
  if (p.startsWith("/jobs/")) return ["jobs", () => pageJob(decodeURIComponent(p.slice(6)))];
  return ["jobs", pageJobs];
}
async function refresh() {
  const [nav, draw] = route();
  document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("on", a.dataset.nav === nav));
  try {
    const html = await draw();
    main.innerHTML = html;
    document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()} · every ${REFRESH_MS / 1000} s`;
  } catch (e) {
    document.getElementById("updated").textContent = `cannot reach the coordinator: ${e.message}`;
  }
}
refresh();
setInterval(refresh, REFRESH_MS);
