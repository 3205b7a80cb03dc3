// fer-edge live view. Served from the Pi itself (the CSP allows nothing else): state from /api/state every
// two seconds, each log record from /events as it is written, the stream as an <img> on /stream.mjpg.
"use strict";

const MAX_EVENTS = 50;
let colours = {};
let labels = [];

const $ = (id) => document.getElementById(id);

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function swatch(label) {
  const mark = el("span", null, "swatch");
  mark.style.background = colours[label] || "#ffffff";
  return mark;
}

function labelled(label) {
  const cell = el("span");
  cell.append(swatch(label), document.createTextNode(label));
  return cell;
}

function fixed(value, digits) {
  return typeof value === "number" ? value.toFixed(digits) : "–";
}

function duration(seconds) {
  const s = Math.floor(seconds || 0);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return (h ? h + " h " : "") + (h || m ? m + " min " : "") + (s % 60) + " s";
}

function renderFaces(state) {
  const body = $("faces").querySelector("tbody");
  body.replaceChildren();
  for (const face of state.faces) {
    const row = el("tr");
    row.dataset.label = face.label;
    const score = el("td");
    const bar = el("span", null, "bar");
    bar.style.width = Math.round((face.score || 0) * 80) + "px";
    bar.style.background = colours[face.label] || "#fff";
    score.append(bar, document.createTextNode(fixed(face.score, 2)));
    const expression = el("td");
    expression.append(labelled(face.label));
    row.append(el("td", "#" + face.track), expression, score);
    body.append(row);
  }
  $("face-count").textContent = state.faces.length;
  $("no-faces").hidden = state.faces.length > 0;
  const started = $("started");
  started.replaceChildren();
  for (const label of labels) {
    if (!state.tracks_by_label[label]) continue;
    const chip = el("li");
    chip.append(labelled(label), document.createTextNode(" " + state.tracks_by_label[label]));
    started.append(chip);
  }
}

function throttling(value) {
  if (!value) return "not a Raspberry Pi (vcgencmd not available)";
  const now = ["under_voltage", "arm_frequency_capped", "throttled", "soft_temperature_limit"].filter((k) => value[k]);
  const past = ["under_voltage_occurred", "throttled_occurred"].filter((k) => value[k]);
  return (now.length ? "now: " + now.join(", ") : "none now") + (past.length ? "; since boot: " + past.join(", ") : "") + " (" + value.raw + ")";
}

function accuracy(model) {
  const entries = Object.entries(model.accuracy || {}).map(([split, value]) => split + " " + (value * 100).toFixed(1) + "%");
  if (!entries.length) return "not recorded";
  return entries.join(", ") + " against " + (model.accuracy_judged_by || "its labels") + (model.verified ? " (verified: sidecar digest matches)" : " (unverified sidecar)");
}

function balanced(model) {
  const entries = Object.entries(model.balanced_accuracy || {}).map(([split, value]) => split + " " + (value * 100).toFixed(1) + "%");
  const tau = "class-prior correction tau " + (model.balance || 0);
  return (entries.length ? entries.join(", ") + " (mean per-class recall); " : "not recorded; ") + tau;
}

// --realtime holds each frame of a file until its time: that wait is pacing, not work.
const STAGE_NAMES = { pace: "waiting for the file's frame rate" };

function measuring(state) {
  const every = state.stats_interval ? " (every " + state.stats_interval + " s)" : "";
  return "measuring: the first figures come with the first stats record" + every;
}

function renderBanner(state) {
  const banner = $("live-banner");
  banner.dataset.kind = state.source_kind;
  $("banner-text").textContent = state.source_kind === "camera"
    ? "A camera is live: this page shows what it sees now. Nothing is recorded by the live view."
    : "Playing a video file, not a camera: " + state.source + ". Nothing is recorded by the live view.";
}

function renderHealth(state) {
  const stats = state.stats || {};
  const stages = Object.entries(stats.stage_ms || {}).map(([name, ms]) => (STAGE_NAMES[name] || name) + " " + ms.toFixed(1)).join(", ");
  const source = state.source_kind === "camera" ? "camera" : "video file";
  const rows = [
    ["status", state.health],
    ["processing", fixed(state.processing_fps, 1) + " FPS now" + (stats.processing_fps !== undefined ? ", " + fixed(stats.processing_fps, 1) + " FPS last interval" : "")],
    [source, stats.camera_fps !== undefined ? fixed(stats.camera_fps, 1) + " FPS delivered" : measuring(state)],
    ["per stage (ms)", stages || measuring(state)],
    ["dropped frames", (stats.dropped || 0) + " last interval, " + state.dropped_total + " in all"],
    ["CPU temperature", stats.cpu_temp_c === null || stats.cpu_temp_c === undefined ? "not available here" : stats.cpu_temp_c.toFixed(1) + " °C"],
    ["throttling", stats.event ? throttling(stats.throttled) : "–"],
    ["uptime", duration(state.uptime_s)],
    ["model", state.model.name + " (trained on " + (state.model.trained_on || "?") + ", " + state.model.interpreter
      + (state.model.inferences_per_face ? ", " + state.model.inferences_per_face + " inferences a face" : "") + ")"],
    ["accuracy", accuracy(state.model)],
    ["balanced accuracy", balanced(state.model)],
    ["stream", "at most " + state.stream.max_fps + " FPS, " + (state.stream.max_width || "full") + " px wide; " + state.viewers + " watching"],
  ];
  const list = $("health");
  list.replaceChildren();
  for (const [name, value] of rows) list.append(el("dt", name), el("dd", value));
  const badge = $("health-badge");
  badge.textContent = state.healthy ? "ok" : "not ok";
  badge.className = "badge " + (state.healthy ? "ok" : "bad");
  $("source").textContent = state.source;
}

// A round step for about three y-ticks: 1, 2, 5, 10, 20, 50 ... (never 37/19/0).
function tickStep(peak) {
  const rough = Math.max(1, peak / 3);
  const power = Math.pow(10, Math.floor(Math.log10(rough)));
  return [1, 2, 5, 10].map((f) => f * power).find((step) => step >= rough);
}

let lastTimeline = null;

function renderTimeline(state) {
  lastTimeline = state;
  const canvas = $("timeline");
  // Drawn at the element's own size times the screen's pixel ratio: sharp, and text stays 12 CSS px.
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const left = 30, bottom = 20, top = 10;
  const minutes = state.timeline;
  const totals = minutes.map((m) => Object.values(m.counts).reduce((a, b) => a + b, 0));
  const tick = tickStep(Math.max(1, ...totals));
  const peak = Math.ceil(Math.max(1, ...totals) / tick) * tick;
  const step = (width - left) / minutes.length;
  ctx.font = "12px system-ui, sans-serif";
  ctx.fillStyle = "#8f99a8";
  ctx.strokeStyle = "#2c333d";
  const ticks = [];
  for (let value = 0; value <= peak; value += tick) ticks.push(value);
  for (const value of ticks) {
    const y = height - bottom - (value / peak) * (height - bottom - top);
    ctx.fillText(String(value), 4, y + 4);
    ctx.beginPath();
    ctx.moveTo(left, y);
    ctx.lineTo(width, y);
    ctx.stroke();
  }
  canvas.dataset.ticks = ticks.join(",");
  minutes.forEach((minute, i) => {
    let y = height - bottom;
    for (const label of labels) {
      const count = minute.counts[label] || 0;
      if (!count) continue;
      const h = (count / peak) * (height - bottom - top);
      ctx.fillStyle = colours[label] || "#fff";
      ctx.fillRect(left + i * step + 1, y - h, Math.max(1, step - 2), h);
      y -= h;
    }
  });
  // Time labels from the newest minute back, every fifth bar or more, never closer than 56 px.
  ctx.fillStyle = "#8f99a8";
  ctx.textAlign = "center";
  let previous = Infinity;
  for (let i = minutes.length - 1; i >= 0; i -= 5) {
    const x = Math.min(Math.max(left + (i + 0.5) * step, left + 18), width - 18);
    if (previous - x < 56) continue;
    ctx.fillText(minutes[i].minute.slice(11, 16), x, height - 5);
    previous = x;
  }
  ctx.textAlign = "start";
  canvas.dataset.faces = totals.reduce((a, b) => a + b, 0);
  const legend = $("legend");
  if (!legend.children.length) for (const label of labels) { const item = el("li"); item.append(labelled(label)); legend.append(item); }
}

function describe(record) {
  const time = (record.time || "").slice(11, 19);
  if (["new", "update", "end"].includes(record.event)) {
    return time + "  " + record.event.padEnd(6) + " track #" + record.track + "  " + record.label + " " + fixed(record.score, 2);
  }
  if (record.event === "source_lost") return time + "  source lost: " + record.error;
  if (record.event === "source_gap") return time + "  source back after " + fixed(record.seconds, 1) + " s";
  if (record.event === "start") return time + "  start: " + String(record.source).replace(/^video .*[\\/]/, "video ");
  if (record.event === "stop") return time + "  stop: " + record.reason;
  return time + "  " + record.event;
}

function addEvent(record, fresh) {
  const list = $("events");
  const item = el("li", describe(record), fresh ? "fresh" : "");
  item.dataset.event = record.event;
  list.prepend(item);
  while (list.children.length > MAX_EVENTS) list.lastChild.remove();
}

let seeded = false;

async function refresh() {
  try {
    const response = await fetch("/api/state", { cache: "no-store", credentials: "same-origin" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    const state = await response.json();
    labels = state.labels;
    colours = state.colours;
    renderBanner(state);
    renderFaces(state);
    renderHealth(state);
    renderTimeline(state);
    if (!seeded) {
      for (const record of state.events.slice().reverse()) addEvent(record, false);
      seeded = true;
    }
    $("connection").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (error) {
    $("connection").textContent = "no answer from the runtime (" + error.message + ")";
  }
}

function listen() {
  const feed = new EventSource("/events", { withCredentials: true });
  feed.onmessage = (message) => {
    const record = JSON.parse(message.data);
    if (record.event !== "stats") addEvent(record, true);
  };
  feed.onerror = () => { $("connection").textContent = "event feed interrupted, reconnecting…"; };
}

document.addEventListener("DOMContentLoaded", () => {
  refresh().then(listen);
  window.addEventListener("resize", () => { if (lastTimeline) renderTimeline(lastTimeline); });
  setInterval(refresh, 2000);
  const stream = $("stream");
  stream.addEventListener("error", () => setTimeout(() => { stream.src = "/stream.mjpg?t=" + Date.now(); }, 2000));
});
