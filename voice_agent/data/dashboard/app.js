// The live dashboard: polls /v1/dashboard/live for the seconds after the last one it has (the
// service aggregates, so the page draws a point a second however many calls run), draws them
// with uPlot, lists calls and opens one into its turns, changes flags through the admin API,
// and holds a test call over /v1/calls. No framework, no build step beyond the vendored uPlot.
"use strict";

const KEY_STORE = "voice-agent-key";
const SOURCES = ["quick", "cache", "llm", "fallback"];
const COLORS = { quick: "#1f8a4c", cache: "#2f6fd0", llm: "#8a4fd0", fallback: "#c0392b", all: "#333" };
const KEEP_S = 900;
const POLL_MS = 1000;
const COMPARISON_MS = 3000;

const state = {
  points: [], // the service's seconds, oldest first
  last: 0, // the newest point's t
  alerts: [],
  lines: null, // quality baseline and alert lines
  flags: null,
  charts: {},
  openCall: null,
  polls: 0,
  polling: false,
  inFlight: false,
  process: null, // the process whose figures are shown
};

const $ = (id) => document.getElementById(id);
const esc = (text) => String(text ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function key() { return sessionStorage.getItem(KEY_STORE) || ""; }

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (key()) headers["X-API-Key"] = key();
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    showKeyForm(key() ? "that key was refused" : "");
    throw new Error("a valid API key is needed");
  }
  return response;
}

function showKeyForm(message) {
  $("key-form").hidden = false;
  $("key-message").textContent = message;
}

// -- charts ----------------------------------------------------------------------------------

function chart(id, series, extra = {}) {
  const el = $(id);
  const opts = {
    width: Math.max(el.clientWidth, 300),
    height: 190,
    legend: { live: false },
    scales: { x: { time: true, range: xRange } },
    series: [{}, ...series.map((s) => ({ spanGaps: true, width: 1.5, ...s }))],
    axes: [{}, { size: 48 }],
    ...extra,
  };
  const data = [[], ...series.map(() => [])];
  const plot = new uPlot(opts, data, el);
  state.charts[id.replace("chart-", "")] = plot;
  return plot;
}

// Charts span the seconds there are data for, up to the selected window and at least
// MIN_SPAN_S (a single point still gets a readable time axis).
const MIN_SPAN_S = 20;
function xRange() {
  const span = Number($("window").value);
  const first = state.points.length ? state.points[0].t : state.last;
  return [Math.max(state.last - span, Math.min(first, state.last - MIN_SPAN_S)), state.last];
}

function makeCharts() {
  // Logarithmic: templates' few milliseconds and the LLM's hundreds on one chart.
  chart("chart-latency", [
    ...SOURCES.map((s) => ({ label: `${s} p95`, stroke: COLORS[s] })),
    { label: "all p50", stroke: COLORS.all, dash: [4, 4] },
  ], { scales: { x: { time: true, range: xRange }, y: { distr: 3, log: 10 } } });
  chart("chart-mix", SOURCES.map((s) => ({ label: s, stroke: COLORS[s] })));
  chart("chart-cache", [{ label: "hit rate %", stroke: COLORS.cache }]);
  chart("chart-saved", [
    { label: "LLM calls saved", stroke: COLORS.quick },
    { label: "LLM calls made", stroke: COLORS.llm },
  ]);
  chart("chart-quality", [
    ...SOURCES.map((s) => ({ label: s, stroke: COLORS[s] })),
    { label: "baseline", stroke: "#999", dash: [2, 4] },
    { label: "degraded", stroke: "#d9a13b", dash: [6, 4] },
    { label: "poor", stroke: "#c0392b", dash: [6, 4] },
  ]);
  window.addEventListener("resize", () => {
    for (const [name, plot] of Object.entries(state.charts)) {
      plot.setSize({ width: Math.max($(`chart-${name}`).clientWidth, 300), height: 190 });
    }
  });
}

function windowPoints() {
  const span = Number($("window").value);
  return state.points.filter((p) => p.t > state.last - span);
}

function draw() {
  const points = windowPoints();
  const xs = points.map((p) => p.t);
  const val = (v) => (v === undefined ? null : v);
  const positive = (v) => (v === undefined ? null : Math.max(v, 0.1));
  state.charts.latency.setData([xs, ...SOURCES.map((s) => points.map((p) => positive(p.p95[s]))),
    points.map((p) => positive(p.p50.all))]);
  state.charts.mix.setData([xs, ...SOURCES.map((s) => points.map((p) => p.turns[s] || 0))]);
  // Hit rate over the last 30 s of points, so one lookup does not swing it 0-100%.
  const rate = points.map((p, i) => {
    let hits = 0, lookups = 0;
    for (let j = i; j >= 0 && points[j].t > p.t - 30; j--) {
      hits += points[j].cache[0]; lookups += points[j].cache[1];
    }
    return lookups ? (100 * hits) / lookups : null;
  });
  state.charts.cache.setData([xs, rate]);
  let saved = 0, made = 0;
  state.charts.saved.setData([xs,
    points.map((p) => (saved += p.saved)),
    points.map((p) => (made += p.turns.llm || 0))]);
  const lines = state.lines || { baseline: null, degraded: null, poor: null };
  state.charts.quality.setData([xs,
    ...SOURCES.map((s) => points.map((p) => val(p.quality[s]))),
    xs.map(() => lines.baseline), xs.map(() => lines.degraded), xs.map(() => lines.poor)]);
  drawStages(points);
}

function drawStages(points) {
  const sums = {}, counts = {};
  for (const p of points) {
    for (const [stage, [sum, n]] of Object.entries(p.stages)) {
      sums[stage] = (sums[stage] || 0) + sum; counts[stage] = (counts[stage] || 0) + n;
    }
  }
  const means = Object.keys(sums).map((s) => [s, sums[s] / counts[s], counts[s]]);
  const top = Math.max(1, ...means.map((m) => m[1]));
  $("stages").innerHTML = means.length ? means.map(([stage, ms, n]) =>
    `<div class="bar" data-stage="${esc(stage)}"><span class="name">${esc(stage)}</span>` +
    `<span class="fill" data-width="${Math.max(2, (200 * ms) / top).toFixed(0)}"></span>` +
    `<span>${ms.toFixed(1)} ms (${n} turns)</span></div>`).join("")
    : '<span class="muted">no turns in the window</span>';
  for (const fill of $("stages").querySelectorAll(".fill")) fill.style.width = `${fill.dataset.width}px`;
}

// -- polling ---------------------------------------------------------------------------------

async function poll() {
  if (state.inFlight) return; // one poll at a time: two with the same `after` would add twice
  state.inFlight = true;
  try {
    const response = await api(`/v1/dashboard/live?after=${state.last}`);
    if (!response.ok) throw new Error(`live: HTTP ${response.status}`);
    const live = await response.json();
    $("key-form").hidden = true;
    // With `serve --workers N` each process keeps its own figures: when another one answers,
    // start afresh rather than mix two processes' seconds.
    const process = JSON.stringify(live.process);
    if (state.process !== null && process !== state.process) {
      state.points = []; state.last = 0;
    }
    state.process = process;
    for (const point of live.points) {
      if (point.t > state.last) { state.points.push(point); state.last = point.t; }
    }
    state.last = Math.max(state.last, Math.floor(live.now) - 1);
    while (state.points.length && state.points[0].t <= state.last - KEEP_S) state.points.shift();
    state.lines = live.quality_lines;
    showHeader(live);
    showCalls(live.calls);
    showAlerts(live.alerts);
    fillFlows(live.flows, live.default_flow);
    draw();
    state.polls += 1;
    const worker = live.process && live.process.workers > 1 ? `, process ${live.process.name}` : "";
    $("status").textContent = `updated ${new Date().toLocaleTimeString()}${worker}`;
  } catch (error) {
    $("status").textContent = String(error.message || error);
  } finally {
    state.inFlight = false;
  }
}

function showHeader(live) {
  const flags = live.flags;
  state.flags = flags;
  const mode = $("mode");
  mode.textContent = `mode ${live.mode_now}`;
  mode.className = `badge ${live.mode_now}`;
  $("rollout").textContent = flags.mode === "enabled" ? `rollout ${flags.rollout_percent}%` : "";
  $("tiers").textContent = `templates ${flags.quick_responses ? "on" : "off"}, cache ${flags.response_cache ? "on" : "off"}`;
  $("active-count").textContent = live.active_calls;
  // The form follows the service unless someone is typing or choosing in it.
  const editing = document.activeElement && $("flags-form").contains(document.activeElement)
    && ["INPUT", "SELECT"].includes(document.activeElement.tagName);
  if (!editing) {
    $("flag-mode").value = flags.mode;
    $("flag-rollout").value = flags.rollout_percent;
    $("flag-quick").checked = flags.quick_responses;
    $("flag-cache").checked = flags.response_cache;
  }
}

function callRow(call) {
  const sources = Object.entries(call.sources).map(([s, n]) => `<span class="tag ${esc(s)}">${esc(s)} ${n}</span>`).join(" ");
  const at = new Date(call.last_at * 1000).toLocaleTimeString();
  return `<tr class="call-row" data-call="${esc(call.call_id)}"><td>${esc(call.call_id.slice(0, 18))}</td>` +
    `<td>${esc(call.flow)}</td><td>${esc(call.mode)}</td><td>${call.turns}</td><td>${sources}</td><td>${at}</td></tr>`;
}

function showCalls(calls) {
  $("calls-active").innerHTML = calls.active.map(callRow).join("");
  $("calls-recent").innerHTML = calls.recent.map(callRow).join("");
  $("calls-note").textContent = `${calls.active_count} active, showing ${calls.active.length}; ${calls.recent.length} recent (grey)`;
}

function showAlerts(alerts) {
  if (!alerts.length) return;
  $("alerts").innerHTML = alerts.slice().reverse().map((a) =>
    `<li data-kind="${esc(a.kind)}"><b>${new Date(a.at * 1000).toLocaleTimeString()}</b> ${esc(a.text)}</li>`).join("");
}

async function pollComparison() {
  try {
    const response = await api("/v1/dashboard/comparison");
    if (response.ok) showComparison(await response.json());
  } catch (error) { /* the live poll shows the state */ }
}

function spread(s) { return s ? `${s.p50} / ${s.p95} / ${s.p99} (${s.n})` : "-"; }

function showComparison(c) {
  if (!c.turns) return;
  const bySource = Object.entries(c.served_by_source).map(([s, v]) => `<tr><td>served by ${esc(s)}</td><td>${spread(v)}</td></tr>`).join("");
  const quality = Object.entries(c.quality).map(([s, q]) => `<tr><td>${esc(s)}</td><td>${q.mean} (p10 ${q.p10}, ${q.n} scored)</td></tr>`).join("");
  const sim = c.shadow_similarity ? `median ${c.shadow_similarity.median}, lowest ${c.shadow_similarity.lowest} (${c.shadow_similarity.n})` : "-";
  $("comparison").innerHTML = `<table>
    <tr><th>first word ms</th><th>p50 / p95 / p99 (n)</th></tr>
    <tr><td>served</td><td>${spread(c.served)}</td></tr>
    <tr><td>would-be (fast tiers)</td><td>${spread(c.would_be)}</td></tr>${bySource}
    <tr><th>quality</th><th>mean</th></tr>${quality}
    <tr><td>fast tiers answered</td><td>${(100 * c.fast_share).toFixed(0)}% of ${c.turns} turns (${c.calls} calls, modes ${esc(c.modes.join(", "))})</td></tr>
    <tr><td>cache hit rate</td><td>${(100 * c.cache_hit_rate).toFixed(0)}%</td></tr>
    <tr><td>LLM calls saved</td><td>${c.llm_calls_saved} (about ${c.tokens_saved} tokens, $${c.cost_saved_usd})</td></tr>
    <tr><td>shadow similarity</td><td>${sim}</td></tr></table>`;
}

// -- one call --------------------------------------------------------------------------------

async function openCall(callId) {
  const response = await api(`/v1/dashboard/calls/${encodeURIComponent(callId)}`);
  if (!response.ok) {
    $("call-panel").hidden = false;
    $("call-title").textContent = callId;
    $("call-detail").textContent = response.status === 404
      ? "this process no longer keeps that call (or, with several workers, another one served it)"
      : `HTTP ${response.status}`;
    return;
  }
  const call = await response.json();
  state.openCall = callId;
  $("call-panel").hidden = false;
  $("call-title").textContent = `${call.call_id} (${call.flow}, ${call.mode})`;
  $("call-detail").innerHTML = call.turn_records.map(turnHtml).join("");
}

function matchOf(detail) {
  const cache = detail.cache || {};
  if (cache.similarity !== undefined) return `cache ${cache.kind || ""} match ${cache.similarity}${cache.stored_for ? ` for "${cache.stored_for}"` : ""}`;
  const quick = detail.quick || detail.template;
  if (quick && typeof quick === "object") return `template ${quick.intent || ""} ${quick.score ?? ""}`;
  return "";
}

function turnHtml(t) {
  const stages = Object.entries(t.latency_ms).map(([k, v]) => `${esc(k)} ${Number(v).toFixed(1)}`).join(", ");
  const q = t.quality ? `quality ${t.quality.score} (${Object.entries(t.quality.parts).map(([k, v]) => `${esc(k)} ${v}`).join(", ")})` : "quality not scored";
  const intent = t.outcome && t.outcome.intent_score !== undefined ? ` intent score ${t.outcome.intent_score}` : "";
  const wouldBe = t.would_be ? `<div class="wouldbe"><b>would-be (${esc(t.would_be.source)}, ${Number(t.would_be.latency_ms).toFixed(1)} ms):</b> ${esc(t.would_be.answer)}` +
    `${t.shadow ? ` <span class="muted">similarity ${t.shadow.similarity}</span>` : ""}` +
    `${t.would_be_quality ? ` <span class="muted">quality ${t.would_be_quality.score}</span>` : ""}</div>` : "";
  return `<div class="turn" data-turn="${t.turn}"><div class="said">${t.turn}. ${esc(t.question)}</div>
    <div class="pair"><div><span class="tag ${esc(t.source)}">${esc(t.source)}</span> ${esc(t.answer)}</div>${wouldBe}</div>
    <div class="muted">state ${esc(t.state)}, mode ${esc(t.mode)}; ${esc(matchOf(t.detail || {}))}${intent}</div>
    <div class="muted">ms: ${stages}</div><div class="muted">${q}${t.outcome && t.outcome.fallback_reason ? `; fallback: ${esc(t.outcome.fallback_reason)}` : ""}</div></div>`;
}

// -- flags -----------------------------------------------------------------------------------

async function patchFlags(body) {
  const response = await api("/v1/admin/flags", {
    method: "PATCH",
    headers: { "Content-Type": "application/json", "X-Actor": "dashboard" },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  $("flags-message").textContent = response.ok
    ? `applied at ${new Date().toLocaleTimeString()}: ${JSON.stringify(body)}`
    : `refused (HTTP ${response.status}): ${answer.detail ? JSON.stringify(answer.detail) : ""}`;
  $("flags-message").className = response.ok ? "muted" : "error";
  poll();
}

// -- the test console ------------------------------------------------------------------------

const consoleCall = { ws: null, sent: 0, first: null, reply: "" };

function logLine(cls, html) {
  const line = document.createElement("div");
  line.className = cls;
  line.innerHTML = html;
  $("console-log").appendChild(line);
  $("console-log").scrollTop = $("console-log").scrollHeight;
}

function fillFlows(flows, fallback) {
  const select = $("console-flow");
  if (select.options.length) return;
  select.innerHTML = flows.map((f) => `<option${f === fallback ? " selected" : ""}>${esc(f)}</option>`).join("");
}

function setConsoleOpen(open) {
  $("console-text").disabled = !open;
  $("console-send").disabled = !open;
  $("console-mic").disabled = !open;
  $("console-start").textContent = open ? "End call" : "Start call";
}

function startCall() {
  if (consoleCall.ws) { consoleCall.ws.send(JSON.stringify({ type: "call.end" })); return; }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const token = key() ? `?token=${encodeURIComponent(key())}` : "";
  const ws = new WebSocket(`${scheme}://${location.host}/v1/calls${token}`);
  consoleCall.ws = ws;
  ws.onopen = () => ws.send(JSON.stringify({ type: "call.start", flow: $("console-flow").value,
    call_id: `console-${Date.now()}` }));
  ws.onmessage = (message) => onFrame(JSON.parse(message.data));
  ws.onclose = (event) => {
    consoleCall.ws = null;
    setConsoleOpen(false);
    $("console-state").textContent = `call closed${event.reason ? `: ${event.reason}` : ""}`;
  };
}

function onFrame(frame) {
  if (frame.type === "call.ready") {
    setConsoleOpen(true);
    $("console-state").textContent = `call ${frame.call_id}, state ${frame.state}, mode ${frame.mode}`;
    $("console-text").focus();
  } else if (frame.type === "agent.delta") {
    if (consoleCall.first === null) consoleCall.first = performance.now() - consoleCall.sent;
    consoleCall.reply += frame.text;
  } else if (frame.type === "agent.done") {
    const text = frame.text || consoleCall.reply;
    const first = consoleCall.first === null ? performance.now() - consoleCall.sent : consoleCall.first;
    logLine("agent", `<b>agent:</b> ${esc(text)}`);
    logLine("meta", `<span class="tag ${esc(frame.source)}">${esc(frame.source)}</span> first word ${first.toFixed(0)} ms in this browser, ` +
      `${Number(frame.latency_ms.first_token || 0).toFixed(1)} ms in the service; state ${esc(frame.state)}`);
    if ($("console-speak").checked && "speechSynthesis" in window && text) {
      speechSynthesis.speak(new SpeechSynthesisUtterance(text));
    }
    consoleCall.reply = ""; consoleCall.first = null;
  } else if (frame.type === "error") {
    logLine("meta error", `error ${esc(frame.code)}: ${esc(frame.message)}`);
  } else if (frame.type === "call.ended") {
    logLine("meta", `call ended: ${esc(frame.reason)}`);
  }
}

function say(text) {
  if (!consoleCall.ws || !text.trim()) return;
  if ("speechSynthesis" in window) speechSynthesis.cancel();
  logLine("caller", `<b>you:</b> ${esc(text)}`);
  consoleCall.sent = performance.now();
  consoleCall.first = null; consoleCall.reply = "";
  consoleCall.ws.send(JSON.stringify({ type: "user.utterance", text }));
}

function setUpMic() {
  const Recognition = window.SpeechRecognition || window.webkitSpeechRecognition;
  if (!Recognition) return;
  $("console-mic").hidden = false;
  $("console-mic").addEventListener("click", () => {
    const recognition = new Recognition();
    recognition.lang = "en-US";
    recognition.onresult = (event) => say(event.results[0][0].transcript);
    recognition.start();
  });
}

// -- start -----------------------------------------------------------------------------------

function start() {
  makeCharts();
  $("window").addEventListener("change", draw);
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORE, $("key").value.trim());
    $("key").value = "";
    $("key-form").hidden = true;
    if (state.polling) poll(); else startPolling();
  });
  $("flags-form").addEventListener("submit", (event) => {
    event.preventDefault();
    patchFlags({ mode: $("flag-mode").value, rollout_percent: Number($("flag-rollout").value),
      quick_responses: $("flag-quick").checked, response_cache: $("flag-cache").checked });
  });
  $("rollback").addEventListener("click", () => patchFlags({ mode: "shadow" }));
  for (const body of [$("calls-active"), $("calls-recent")]) {
    body.addEventListener("click", (event) => {
      const row = event.target.closest("tr[data-call]");
      if (row) openCall(row.dataset.call);
    });
  }
  $("call-close").addEventListener("click", () => { $("call-panel").hidden = true; state.openCall = null; });
  $("console-start").addEventListener("click", startCall);
  $("console-form").addEventListener("submit", (event) => {
    event.preventDefault();
    say($("console-text").value);
    $("console-text").value = "";
  });
  setUpMic();
  begin();
}

// Polling starts once the page has what it needs to ask: a key, where the service wants one.
async function begin() {
  const access = await (await fetch("/dashboard/access")).json();
  if (access.keys_required && !key()) {
    showKeyForm("");
    return;
  }
  startPolling();
}

function startPolling() {
  if (state.polling) return;
  state.polling = true;
  poll();
  pollComparison();
  setInterval(poll, POLL_MS);
  setInterval(pollComparison, COMPARISON_MS);
}

window.dashboard = state; // for people poking at it in the console, and for the browser tests
start();
