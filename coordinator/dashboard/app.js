// app.js: the dashboard. Reads the coordinator's /api/ (the same JSON as
// `mlopsctl -o json`) every 2 s and redraws the page the path names:
// /, /jobs/ID, /workers, /models. Every value from the API is escaped
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
    const cur = f.stages.find((s) => s.state === "running");
    const cls = j.state === "succeeded" ? "done" : j.state === "failed" ? "failed" : "";
    const where = cur ? `${esc(cur.name)} ${cur.tasks_done}/${cur.tasks_total}` : `${j.stages_done}/${j.stages_total} stages`;
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
function timeline(stages) {
  const W = 1100, rowH = 26, left = 110, right = 150, H = stages.length * rowH + 30;
  const total = stages.reduce((a, s) => a + (s.seconds || 0), 0) || 1;
  const scale = (W - left - right) / total;
  let x = left, out = "";
  const colour = { done: "#1f9d55", running: "#2f6fdf", failed: "#d64545", pending: "#c5cad4" };
  stages.forEach((s, i) => {
    const w = Math.max(3, (s.seconds || 0) * scale), y = 8 + i * rowH;
    out += `<text x="${left - 10}" y="${y + 15}" text-anchor="end">${esc(s.name)}</text>
      <rect x="${x.toFixed(1)}" y="${y + 3}" width="${w.toFixed(1)}" height="16" rx="3" fill="${colour[s.state] || "#9aa1ae"}"><title>${esc(s.name)}: ${esc(s.state)}</title></rect>
      <text x="${(x + w + 8).toFixed(1)}" y="${y + 15}">${s.tasks_done}/${s.tasks_total} tasks · ${secs(s.seconds)}</text>`;
    x += (s.seconds || 0) * scale;
  });
  out += `<line class="axis" x1="${left}" y1="${H - 16}" x2="${W - right}" y2="${H - 16}"/>
    <text x="${left}" y="${H - 3}">0 s</text><text x="${W - right}" y="${H - 3}" text-anchor="end">${secs(total)}</text>`;
  return `<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="stage timeline">${out}</svg>`;
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
  const [j, logs] = await Promise.all([api(`/api/jobs/${encodeURIComponent(id)}`), api(`/api/jobs/${encodeURIComponent(id)}/logs`)]);
  const m = j.metrics || {};
  const scalars = Object.keys(m).filter((k) => k !== "train_loss" && k !== "model")
    .map((k) => `<div><span title="${esc(k)}">${esc(k)}</span><span>${num(m[k])}</span></div>`).join("");
  const exportable = j.stages.filter((s) => s.state === "done").map((s) => s.name);
  const last = exportable.length ? exportable[exportable.length - 1] : null;
  return `<h1><span class="mono">${esc(j.job)}</span> ${esc(j.name)} ${badge(j.state)}</h1>
    <div class="summary"><div><small>Submitted</small>${esc(j.submitted)}</div>
      <div><small>Finished</small>${esc(j.finished || "—")}</div><div><small>Duration</small>${secs(j.seconds)}</div>
      <div><small>Stages</small>${j.stages.filter((s) => s.state === "done").length}/${j.stages.length} done</div>
      ${j.model ? `<div><small>Model</small><span class="mono">${esc(j.model)}</span></div>` : ""}</div>
    ${j.error ? `<div class="card"><h2>Failure reason</h2><div class="error">${esc(j.error)}</div></div>` : ""}
    <div class="card"><h2>Stages</h2>${timeline(j.stages)}</div>
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
async function pageWorkers() {
  const ws = (await api("/api/workers")).workers;
  if (!ws.length) return `<h1>Workers</h1><div class="card empty">No worker has registered. Start one with <code>mlops-worker --coordinator ENDPOINT</code>.</div>`;
  const rows = ws.map((w) => `<tr><td><b>${esc(w.name)}</b><div class="muted mono">${esc(w.id)}</div></td>
    <td>${badge(w.state)}</td><td class="num">${w.slots}</td>
    <td><div class="progress">${bar(w.running, w.slots)}<small>${w.running} running</small></div></td>
    <td class="num">${num(w.tasks_done)}</td><td class="num">${num(w.shards)}</td>
    <td class="num">${"store_bytes" in w ? bytes(w.store_bytes) : "—"}</td><td class="num">${"rss_bytes" in w ? bytes(w.rss_bytes) : "—"}</td>
    <td class="num">${secs(w.last_seen_ms / 1000)} ago</td><td class="mono muted">${esc(w.endpoint)}<br>pid ${w.pid}</td></tr>`).join("");
  return `<h1>Workers <span class="muted">(${ws.filter((w) => w.state === "alive").length} alive)</span></h1><div class="card"><table>
    <tr><th>Worker</th><th>State</th><th class="num">Slots</th><th>Running</th><th class="num">Tasks done</th><th class="num">Shards</th>
    <th class="num">Store</th><th class="num">Memory</th><th class="num">Last heartbeat</th><th>Endpoint</th></tr>${rows}</table></div>`;
}

// ---- /models -----------------------------------------------------------
function cell(v) {
  if (Array.isArray(v)) return v.map((x) => (typeof x === "object" && x ? esc(JSON.stringify(x)) : esc(x))).join(", ");
  if (v && typeof v === "object") return Object.keys(v).map((k) => `${esc(k)}: ${cell(v[k])}`).join("; ");
  return num(v);
}
async function pageModels() {
  let doc;
  try { doc = await api("/api/models"); } catch (e) {
    if (e.status === 404) return `<h1>Models</h1><div class="card empty">No models registered. This coordinator has no model registry yet.</div>`;
    throw e;
  }
  const models = doc.models || [];
  if (!models.length) return `<h1>Models</h1><div class="card empty">No models registered.</div>`;
  const keys = [...new Set(models.flatMap((m) => Object.keys(m)))];
  return `<h1>Models <span class="muted">(${models.length})</span></h1><div class="card"><table>
    <tr>${keys.map((k) => `<th>${esc(k)}</th>`).join("")}</tr>
    ${models.map((m) => `<tr>${keys.map((k) => `<td>${cell(m[k])}</td>`).join("")}</tr>`).join("")}</table></div>`;
}

// ---- routing and refresh -----------------------------------------------
function route() {
  const p = location.pathname;
  if (p === "/workers") return ["workers", pageWorkers];
  if (p === "/models") return ["models", pageModels];
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
