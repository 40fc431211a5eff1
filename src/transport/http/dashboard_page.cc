#include "transport/http/dashboard_page.h"

namespace brainstem {

// The page is written by hand: a few hundred lines of plain JavaScript draw every chart, so it
// works offline, behind a proxy, and in a headless browser, and needs no front-end toolchain.
// Every value may be null (nothing observed yet); the drawing code treats null as a gap.
const std::string& DashboardPage() {
  static const std::string page = R"HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>brainstem dashboard</title>
<style>
  :root { --bg:#0f1419; --panel:#1a2129; --text:#d8dee6; --dim:#8a96a3; --grid:#2c3642; }
  * { box-sizing: border-box; }
  body { margin:0; background:var(--bg); color:var(--text);
         font:13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; }
  header { padding:10px 16px; display:flex; flex-wrap:wrap; gap:6px 22px; align-items:baseline;
           border-bottom:1px solid var(--grid); }
  header h1 { font-size:17px; margin:0 8px 0 0; }
  header .kv span { color:var(--dim); margin-right:4px; }
  #state.ok { color:#5fd38d; } #state.bad { color:#ff6b6b; }
  main { display:grid; grid-template-columns:repeat(auto-fill, minmax(400px, 1fr)); gap:12px;
         padding:12px 16px; }
  .panel { background:var(--panel); border-radius:6px; padding:8px 10px 6px; }
  .panel h2 { font-size:13px; font-weight:600; margin:0 0 4px; display:flex;
              justify-content:space-between; }
  .panel h2 small { color:var(--dim); font-weight:400; }
  canvas { width:100%; height:170px; display:block; }
  .na { height:170px; display:flex; align-items:center; justify-content:center; color:var(--dim);
        font-size:22px; }
  table { border-collapse:collapse; width:100%; font-size:12px; }
  td, th { text-align:left; padding:2px 6px; border-bottom:1px solid var(--grid); }
  th { color:var(--dim); font-weight:400; }
</style>
</head>
<body>
<header>
  <h1>brainstem</h1>
  <div class="kv"><span>model</span><b id="model">-</b></div>
  <div class="kv"><span>format</span><b id="format">-</b></div>
  <div class="kv"><span>uptime</span><b id="uptime">-</b></div>
  <div class="kv"><span>startup</span><b id="startup">-</b></div>
  <div class="kv"><span>requests</span><b id="total">-</b></div>
  <div class="kv"><span>placement</span><b id="rule">-</b></div>
  <div class="kv"><span>status</span><b id="state">connecting</b></div>
</header>
<main>
  <div class="panel"><h2>Latency, HTTP /predict (server time) <small id="lat-now">µs</small></h2>
    <canvas id="c-latency"></canvas></div>
  <div class="panel"><h2>Latency histogram, last window <small>HTTP, µs</small></h2>
    <canvas id="c-hist"></canvas></div>
  <div class="panel"><h2>Throughput <small id="tp-now">/s</small></h2>
    <canvas id="c-rate"></canvas></div>
  <div class="panel"><h2>Batch size <small id="batch-now">observations per backend call</small></h2>
    <canvas id="c-batch"></canvas></div>
  <div class="panel"><h2>Batch sizes, last window <small>calls per size</small></h2>
    <canvas id="c-batchdist"></canvas></div>
  <div class="panel"><h2>Queue depth <small id="queue-now">requests waiting</small></h2>
    <canvas id="c-queue"></canvas></div>
  <div class="panel"><h2>Load per core kind <small id="kinds-now">% busy</small></h2>
    <canvas id="c-kinds"></canvas></div>
  <div class="panel"><h2>Load per CPU <small>% busy, last sample</small></h2>
    <canvas id="c-cpus"></canvas></div>
  <div class="panel"><h2>Memory <small id="mem-now">MiB</small></h2>
    <canvas id="c-mem"></canvas></div>
  <div class="panel"><h2>Server CPU <small id="cpu-now">% of one core</small></h2>
    <canvas id="c-cpu"></canvas></div>
  <div class="panel"><h2>Shared memory <small id="shm-now"></small></h2>
    <canvas id="c-shm"></canvas></div>
  <div class="panel"><h2>OCR frames/s <small>perception</small></h2>
    <div class="na" id="ocr">n/a</div></div>
  <div class="panel"><h2>Targets <small>from the config</small></h2>
    <table id="targets"></table></div>
  <div class="panel"><h2>Thread placement <small id="pinning"></small></h2>
    <table id="placement"></table></div>
</main>
<script>
"use strict";
// Errors are also written into the page (body[data-errors]) so that a headless test can
// read them from the DOM; samples counts polls that were drawn.
window.addEventListener("error", e => {
  document.body.dataset.errors = (document.body.dataset.errors || "") + e.message + "; ";
});
const HISTORY = 120;        // points kept per series (2 minutes at one poll per second)
const COLORS = ["#4aa3ff", "#ffb347", "#ff6b6b", "#5fd38d", "#c792ea", "#f7d154", "#7fdbda"];
const history = { t: [] };

function push(name, value) {
  if (!history[name]) history[name] = new Array(history.t.length - 1).fill(null);
  history[name].push(value === undefined ? null : value);
}
function trim() {
  for (const key of Object.keys(history)) {
    while (history[key].length > HISTORY) history[key].shift();
  }
}
function num(v) { return (typeof v === "number" && isFinite(v)) ? v : null; }
function fmt(v, digits) {
  if (v === null || v === undefined) return "n/a";
  const a = Math.abs(v);
  if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
  return v.toFixed(digits === undefined ? (a >= 100 ? 0 : 1) : digits);
}
function setText(id, text) { document.getElementById(id).textContent = text; }

function setup(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 380, h = canvas.clientHeight || 170;
  if (canvas.width !== Math.round(w * ratio)) {
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.font = "11px system-ui, sans-serif";
  return { ctx, w, h };
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function axes(ctx, w, h, left, max, unit) {
  ctx.strokeStyle = "#2c3642"; ctx.fillStyle = "#8a96a3"; ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = 8 + (h - 28) * (1 - i / 4);
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(w - 4, y); ctx.stroke();
    ctx.fillText(fmt(max * i / 4) + (i === 4 && unit ? " " + unit : ""), 2, y + 4);
  }
}

// series: [{name, values:[number|null], color}]
function lineChart(id, series, unit, fixedMax) {
  const { ctx, w, h } = setup(document.getElementById(id));
  const left = 46, bottom = h - 20, top = 8;
  let max = 0;
  for (const s of series) for (const v of s.values) if (v !== null && v > max) max = v;
  max = fixedMax || niceMax(max * 1.1);
  axes(ctx, w, h, left, max, unit);
  const n = HISTORY, dx = (w - 4 - left) / (n - 1);
  series.forEach((s, k) => {
    const color = s.color || COLORS[k % COLORS.length];
    ctx.strokeStyle = color; ctx.lineWidth = 1.8; ctx.beginPath();
    let pen = false;
    const offset = n - s.values.length;
    s.values.forEach((v, i) => {
      if (v === null) { pen = false; return; }
      const x = left + (offset + i) * dx;
      const y = top + (bottom - top) * (1 - Math.min(v, max) / max);
      if (pen) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      pen = true;
    });
    ctx.stroke();
    ctx.fillStyle = color;
    const lx = left + 4 + k * 92;
    ctx.fillRect(lx, h - 12, 10, 3);
    ctx.fillText(s.name, lx + 14, h - 7);
  });
}

// labels: [string], values: [number]
function barChart(id, labels, values, unit, fixedMax) {
  const { ctx, w, h } = setup(document.getElementById(id));
  const left = 46, bottom = h - 20, top = 8;
  let max = 0;
  for (const v of values) if (v !== null && v > max) max = v;
  max = fixedMax || niceMax(max * 1.1);
  axes(ctx, w, h, left, max, unit);
  if (values.length === 0) {
    ctx.fillStyle = "#8a96a3"; ctx.fillText("no data in this window", left + 10, h / 2);
    return;
  }
  const slot = (w - 4 - left) / values.length;
  const every = Math.max(1, Math.ceil(values.length / 8));
  values.forEach((v, i) => {
    const x = left + i * slot + slot * 0.15, bw = Math.max(1, slot * 0.7);
    const bh = (bottom - top) * Math.min(v || 0, max) / max;
    ctx.fillStyle = COLORS[0]; ctx.fillRect(x, bottom - bh, bw, bh);
    if (i % every === 0) { ctx.fillStyle = "#8a96a3"; ctx.fillText(labels[i], x, h - 6); }
  });
}

function table(id, rows) {
  const el = document.getElementById(id);
  el.textContent = "";
  rows.forEach((r, i) => {
    const tr = document.createElement("tr");
    r.forEach(cell => {
      const td = document.createElement(i === 0 ? "th" : "td");
      td.textContent = cell;
      tr.appendChild(td);
    });
    el.appendChild(tr);
  });
}

function bucketLabel(le) { return le === null ? "+Inf" : fmt(le, 0); }

let staticDone = false;
function render(s) {
  const lat = s.latency_us.http.window;
  const rates = s.rates;
  push("p50", num(lat.p50)); push("p90", num(lat.p90)); push("p99", num(lat.p99));
  push("compute", num(s.latency_us.compute.window.p50));
  push("rps", num(rates.requests_per_s)); push("ops", num(rates.observations_per_s));
  push("bmean", num(s.batch.window.mean)); push("bp90", num(s.batch.window.p90));
  push("queue", num(s.queue.depth));
  push("rss", s.process.rss_bytes / 1048576);
  push("shmmap", s.shm.bytes_mapped / 1048576);
  push("cpu", num(s.process.cpu_percent));
  push("sessions", num(s.shm.sessions));
  push("frames", num(rates.frames_per_s));
  const kinds = (s.system && s.system.kinds) ? s.system.kinds : [];
  for (const k of kinds) push("kind:" + k.kind, num(k.percent));
  trim();

  setText("model", s.model + " " + s.version);
  setText("format", s.format + " / " + s.device);
  setText("uptime", fmt(s.uptime_seconds, 0) + " s");
  setText("startup", (s.startup_seconds * 1000).toFixed(0) + " ms (model " +
          (s.model_load_seconds * 1000).toFixed(0) + " ms)");
  setText("total", String(s.requests.total));
  setText("rule", s.placement.rule || "n/a");
  setText("lat-now", "p50 " + fmt(num(lat.p50)) + " · p99 " + fmt(num(lat.p99)) + " µs");
  setText("tp-now", fmt(rates.requests_per_s) + " req/s · " + fmt(rates.observations_per_s) +
          " obs/s");
  setText("batch-now", "mean " + fmt(num(s.batch.window.mean)) + " · max " +
          s.batch.max_batch_size);
  setText("queue-now", s.queue.depth + " / " + s.queue.capacity + " · rejected " +
          s.requests.rejected_queue_full);
  setText("kinds-now", kinds.map(k => k.kind + " " + fmt(k.percent) + "%").join(" · ") || "n/a");
  setText("mem-now", "RSS " + fmt(s.process.rss_bytes / 1048576) + " MiB");
  setText("cpu-now", fmt(num(s.process.cpu_percent)) + "% of one core");
  setText("shm-now", s.shm.enabled ? (s.shm.sessions + " sessions · " +
          fmt(s.shm.bytes_mapped / 1048576) + " MiB mapped · " + s.shm.checksum_failures +
          " checksum failures") : "disabled");
  setText("ocr", s.ocr && s.ocr.available ? fmt(num(s.ocr.images_per_s)) : "n/a");

  lineChart("c-latency", [{ name: "p50", values: history.p50 }, { name: "p90", values: history.p90 },
                          { name: "p99", values: history.p99 },
                          { name: "compute p50", values: history.compute }], "µs");
  const hist = s.latency_histogram_us;
  barChart("c-hist", hist.map(b => bucketLabel(b.le)), hist.map(b => b.count), "");
  lineChart("c-rate", [{ name: "requests/s", values: history.rps },
                       { name: "observations/s", values: history.ops }], "/s");
  lineChart("c-batch", [{ name: "mean", values: history.bmean }, { name: "p90", values: history.bp90 }],
            "");
  const dist = s.batch.window_distribution;
  barChart("c-batchdist", dist.map(b => bucketLabel(b.le)), dist.map(b => b.count), "");
  lineChart("c-queue", [{ name: "depth", values: history.queue }], "");
  lineChart("c-kinds", kinds.map(k => ({ name: k.kind, values: history["kind:" + k.kind] })), "%",
            100);
  const cpus = (s.system && s.system.cpus) ? s.system.cpus : [];
  barChart("c-cpus", cpus.map(c => String(c.cpu)), cpus.map(c => c.percent), "%", 100);
  lineChart("c-mem", [{ name: "RSS", values: history.rss },
                      { name: "shm mapped", values: history.shmmap }], "MiB");
  lineChart("c-cpu", [{ name: "server CPU", values: history.cpu }], "%");
  lineChart("c-shm", [{ name: "sessions", values: history.sessions },
                      { name: "frames/s", values: history.frames }], "");

  if (!staticDone) {
    const t = s.targets;
    table("targets", [["target", "value"], ["startup", t.startup_ms + " ms"],
                      ["idle CPU", t.idle_cpu_percent + " %"], ["idle RSS", t.idle_rss_mb + " MiB"],
                      ["HTTP p50 / p99", t.http_p50_us + " / " + t.http_p99_us + " µs"],
                      ["shm p50 / p99", t.shm_p50_us + " / " + t.shm_p99_us + " µs"],
                      ["shm throughput", t.shm_throughput_rps + " req/s"]]);
    table("placement", [["thread", "role", "CPUs"]].concat(
        s.placement.threads.map(th => [th.name, th.role, th.cpus.join(",")])));
    setText("pinning", "pinning " + (s.placement.pinning ? "on" : "off"));
    staticDone = true;
  }
}

async function poll() {
  const state = document.getElementById("state");
  try {
    const r = await fetch("/v1/status?window=2", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    const s = await r.json();
    history.t.push(Date.now());
    render(s);
    document.body.dataset.samples = String(history.t.length);
    state.textContent = "live"; state.className = "ok";
  } catch (e) {
    console.error("dashboard: " + e.message);
    document.body.dataset.errors = (document.body.dataset.errors || "") + e.message + "; ";
    state.textContent = "unreachable (" + e.message + ")"; state.className = "bad";
  }
  setTimeout(poll, 1000);
}
poll();
</script>
</body>
</html>
)HTML";
  return page;
}

}  // namespace brainstem
