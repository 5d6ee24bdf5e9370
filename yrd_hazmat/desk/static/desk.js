// The police desk page: one triage list of what needs handling (severity, then age), the
// trucks on a map drawn from the desk's own data (no tiles, no CDN), a truck's and an
// incident's panels, plate search, history, shift handover and the region's summary.
//
// Rules this file keeps:
// - every name or text from the server is inserted as text (el() and textContent, never
//   innerHTML): zone, resource and plate names are data, not markup;
// - one user per page load: signing out, a 401, or another user signing in (this tab or
//   another) reloads the page, so nothing of the previous user stays on it or in memory;
// - every word comes from labels.js (Chinese by default, English the other language).
"use strict";

const SEVERITIES = ["critical", "warning", "info"];
const STATES = ["new", "acknowledged", "assigned", "handled"];
const PROVINCES = ["SH", "JS", "ZJ", "AH"];
const JSON_HEADERS = { "Content-Type": "application/json" };
const TRIAGE_PAGE = 200;          // items drawn at a time: 3,000 open alerts stay one scroll
const CELL_PX = 60;               // clustering: trucks in one cell of this size are one marker
const SINGLE_ZOOM = 16;           // from this zoom every truck is its own marker
const STALE_LEGEND_MIN = 10;      // the server's default YRD_DESK_STALE_S, for the legend
const STORE = { lang: "yrd-desk-lang", mute: "yrd-desk-mute" };  // preferences only, no data

const prefs = {
  lang: localStorage.getItem(STORE.lang) === "en" ? "en" : "zh",
  muted: localStorage.getItem(STORE.mute) === "1",
};

// Everything of the signed-in user lives here (and in the DOM); a reload drops it all.
const desk = {
  me: null, map: null, home: null, layers: {}, legend: null, markers: new Map(),
  trucks: [], trucksById: new Map(), triage: null, triageShown: TRIAGE_PAGE,
  triageItems: new Map(), seenAlarms: null, truck: null, selection: null, incident: null,
  scene: null, resources: {}, feed: null, timers: {}, views: {}, audio: null, playback: null,
};

// --- words and times ----------------------------------------------------------------------

function t(key, vars = {}) {
  const table = LABELS[prefs.lang];
  const template = key in table ? table[key] : key;
  return template.replace(/\{(\w+)\}/g, (_, name) => text(vars[name]));
}

function text(value) { return value === null || value === undefined ? "" : String(value); }

// a label, or the code itself when no table knows it (a type added on the server first)
function labelOr(key, code) { return key in LABELS[prefs.lang] ? t(key) : code; }

function typeLabel(type) { return labelOr(`type_${type}`, type); }

function provinceLabel(p) { return p ? t(`province_${p}`) : t("province_none"); }

// "DEVICE_ALARM" + {alarm: "collision"} -> "设备报警 · 碰撞" (an emergency listed after its
// alert cleared has only its record's subject)
function alertLabel(type, details) {
  const d = details || {};
  const alarm = d.alarm || (type === "DEVICE_ALARM" ? d.subject : null);
  const zone = d.zone_name;
  return typeLabel(type) + (alarm ? ` · ${labelOr(`alarm_${alarm}`, alarm)}` : "") + (zone ? ` · ${zone}` : "");
}

function timeOf(ts) {
  if (!ts) return null;
  const ms = Date.parse(String(ts).replace(/(\.\d{3})\d+/, "$1"));
  return Number.isNaN(ms) ? null : ms;
}

// An instant as a person reads it in China time: "12-07 14:21" (with seconds on demand)
function when(ts, seconds = false) {
  const ms = timeOf(ts);
  if (ms === null) return "";
  const d = new Date(ms + 8 * 3600_000);
  const two = (n) => String(n).padStart(2, "0");
  const hm = `${two(d.getUTCMonth() + 1)}-${two(d.getUTCDate())} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}`;
  return seconds ? `${hm}:${two(d.getUTCSeconds())}` : hm;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return t("duration_s", { s });
  if (s < 3600) return t("duration_m", { m: Math.floor(s / 60), s: String(s % 60).padStart(2, "0") });
  return t("duration_h", { h: Math.floor(s / 3600), m: String(Math.floor(s / 60) % 60).padStart(2, "0") });
}

function ago(ts) {
  const ms = timeOf(ts);
  if (ms === null) return "";
  const s = (Date.now() - ms) / 1000;
  const m = Math.floor(s / 60);
  if (m < 1) return t("just_now");
  return m < 60 ? t("ago_m", { m }) : t("ago_h", { h: Math.floor(m / 60), m: m % 60 });
}

// China time for a datetime-local input, and back to RFC 3339 (+08:00)
function localInput(ms) { return new Date(ms + 8 * 3600_000).toISOString().slice(0, 16); }
function fromLocalInput(value) { return value ? `${value}:00+08:00` : ""; }

// --- the DOM, as text ------------------------------------------------------------------------

// el("li", {className: "x", dataset: {a: 1}}, "text", child): strings become text nodes
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "onclick") node.addEventListener("click", value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function button(label, className, onClick) {
  return el("button", { type: "button", className, onclick: onClick }, label);
}

function $(selector) { return document.querySelector(selector); }

function applyLabels(root = document) {
  for (const node of root.querySelectorAll("[data-l10n]")) node.textContent = t(node.dataset.l10n);
  for (const node of root.querySelectorAll("[data-l10n-placeholder]")) node.placeholder = t(node.dataset.l10nPlaceholder);
  for (const node of root.querySelectorAll("[data-l10n-title]")) node.title = t(node.dataset.l10nTitle);
  for (const node of root.querySelectorAll("[data-l10n-aria]")) node.setAttribute("aria-label", t(node.dataset.l10nAria));
  for (const node of root.querySelectorAll(".lang-switch")) node.textContent = t("other_lang");
  document.documentElement.lang = prefs.lang === "zh" ? "zh-CN" : "en";
  if (desk.me) $("#who").textContent = `${desk.me.name} · ${desk.me.jurisdiction === "region" ? t("region") : desk.me.jurisdiction === "carrier" ? desk.me.carrier : provinceLabel(desk.me.jurisdiction)}`;
  fillChoices();
  showMute();
  showBadge();
}

// the filter selects of every list: their options are words too
function fillChoices() {
  const fill = (selector, anyKey, options) => {
    for (const select of document.querySelectorAll(selector)) {
      const value = select.value;
      select.replaceChildren(el("option", { value: "" }, t(anyKey)),
        ...options.map(([v, label]) => el("option", { value: v }, label)));
      select.value = value;
    }
  };
  const provinces = desk.me ? desk.me.provinces : PROVINCES;
  fill(".province-choice", "any_province", provinces.map((p) => [p, p === "none" ? t("outside_region") : provinceLabel(p)]));
  fill(".type-choice", "any_type", ALERT_TYPES.map((x) => [x, typeLabel(x)]));
  fill(".severity-choice", "any_severity", SEVERITIES.map((s) => [s, t(`sev_${s}`)]));
  fill(".state-choice", "any_state", STATES.map((s) => [s, t(`state_${s}`)]));
}

function switchLanguage() {
  prefs.lang = prefs.lang === "zh" ? "en" : "zh";
  localStorage.setItem(STORE.lang, prefs.lang);
  applyLabels();
  if (!desk.me) return;
  drawLegend();
  drawTriage();
  drawTrucks();
  if (desk.truck) drawTruck(desk.truck);
  showPlayback();
  if (desk.incident) drawIncident(desk.incident);
  for (const view of Object.values(desk.views)) if (view.data) view.draw(view.data);
  if (desk.links.uplink) drawUplink();
  if (desk.incident) loadSupervision(desk.incident.incident_id).catch(() => {});
  if (desk.truck) loadTruckPlatform(desk.truck.vehicle_id).catch(() => {});
}

for (const b of document.querySelectorAll(".lang-switch")) b.addEventListener("click", switchLanguage);

// --- the server, and who is signed in ------------------------------------------------------

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  if (response.status === 401 && path !== "/api/login") {
    resetPage();
    throw new Error("signed out");
  }
  return response;
}

async function getJSON(path) {
  const response = await api(path);
  if (!response.ok) throw new Error((await answerOf(response)).error);
  return response.json();
}

async function post(path, body) {
  return api(path, { method: "POST", headers: JSON_HEADERS, body: JSON.stringify(body) });
}

async function answerOf(response) {
  return response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
}

// Drop the page and everything in it: the next user starts from a fresh load.
function resetPage() {
  if (desk.feed) desk.feed.close();
  for (const timer of Object.values(desk.timers)) clearTimeout(timer);
  location.replace("/");
}

const tabs = "BroadcastChannel" in window ? new BroadcastChannel("yrd-desk") : null;
if (tabs) {
  // another tab of this browser signed in or out: the cookie is theirs now, start afresh
  tabs.onmessage = (event) => {
    const user = event.data.user;
    if (desk.me ? user !== desk.me.name : user) resetPage();
  };
}

function showLogin(message = "") {
  $("#desk").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message;
}

$("#login").addEventListener("submit", async (event) => {
  event.preventDefault();
  unlockSound();
  const form = new FormData(event.target);
  const response = await fetch("/api/login", {
    method: "POST", headers: JSON_HEADERS, credentials: "same-origin",
    body: JSON.stringify({ name: form.get("name"), password: form.get("password") }),
  });
  event.target.elements.password.value = "";
  if (response.ok) {
    const me = await response.json();
    if (tabs) tabs.postMessage({ user: me.name });
    start(me);
  } else if (response.status === 429) {
    showLogin(t("too_many_logins", { s: response.headers.get("Retry-After") || "60" }));
  } else {
    showLogin(t("wrong_login"));
  }
});

$("#logout").addEventListener("click", async () => {
  await fetch("/api/logout", { method: "POST", credentials: "same-origin" }).catch(() => {});
  if (tabs) tabs.postMessage({ user: null });
  resetPage();
});

// the same user still? (a sign-in in another window of this browser replaces the cookie)
async function checkUser() {
  const me = await getJSON("/api/me");
  if (me.name !== desk.me.name) resetPage();
}

// --- the alarm: a sound and a title badge for a new critical alert or emergency --------------

function unlockSound() {
  // browsers start an AudioContext only from a user's gesture: sign-in is one
  if (!desk.audio && window.AudioContext) desk.audio = new AudioContext();
  if (desk.audio && desk.audio.state === "suspended") desk.audio.resume().catch(() => {});
}

function soundAlarm() {
  if (prefs.muted) return;
  unlockSound();
  const ctx = desk.audio;
  if (!ctx) return;
  const gain = ctx.createGain();
  gain.gain.value = 0.2;
  gain.connect(ctx.destination);
  [880, 660, 880].forEach((hz, i) => {   // three short tones, no audio file needed
    const tone = ctx.createOscillator();
    tone.frequency.value = hz;
    tone.connect(gain);
    tone.start(ctx.currentTime + i * 0.22);
    tone.stop(ctx.currentTime + i * 0.22 + 0.18);
  });
}

function alarming(item) { return item.emergency || item.severity === "critical"; }
function alarmKey(item) { return `${item.incident_id}${item.emergency ? ":e" : ""}`; }

// sound once per newly listed critical item (not for those already there at sign-in)
function alarmOnNew(items) {
  const keys = new Set(items.filter(alarming).map(alarmKey));
  const fresh = desk.seenAlarms ? [...keys].filter((k) => !desk.seenAlarms.has(k)) : [];
  desk.seenAlarms = new Set([...(desk.seenAlarms || []), ...keys]);
  if (!fresh.length) return;
  soundAlarm();
  const header = $("header");
  header.classList.remove("flash");
  void header.offsetWidth;  // restart the animation
  header.classList.add("flash");
}

// "(2) 危化品车辆值守台": critical items nobody has acted on yet
function showBadge() {
  const items = desk.triage ? desk.triage.items : [];
  const waiting = items.filter((i) => alarming(i) && i.state === "new").length + (desk.uplinkOpen || 0);
  document.title = (waiting ? `(${waiting}) ` : "") + t("app_title");
  document.body.dataset.unhandled = String(waiting);
}

function showMute() {
  $("#mute").textContent = prefs.muted ? t("unmute") : t("mute");
  $("#mute").setAttribute("aria-pressed", String(prefs.muted));
}

$("#mute").addEventListener("click", () => {
  prefs.muted = !prefs.muted;
  localStorage.setItem(STORE.mute, prefs.muted ? "1" : "0");
  if (!prefs.muted) unlockSound();
  showMute();
});

// --- triage: one list of what needs handling ------------------------------------------------

async function loadTriage() {
  const triage = await getJSON("/api/triage");
  desk.triage = triage;
  for (const s of SEVERITIES) {
    $(`#counts .count.${s} b`).textContent = String(triage.counts[s] || 0);
  }
  alarmOnNew(triage.items);
  showBadge();
  drawTriage();
  if (desk.incident) refreshIncidentFromTriage();
}

function triageFilter() {
  const value = (id) => document.getElementById(id).value;
  const province = value("f-province"), type = value("f-type");
  const severity = value("f-severity"), state = value("f-state");
  return (i) => (!province || (i.province || "none") === province) && (!type || i.type === type)
    && (!severity || i.severity === severity) && (!state || i.state === state);
}

function drawTriage() {
  if (!desk.triage) return;
  const items = desk.triage.items.filter(triageFilter());
  const shown = items.slice(0, desk.triageShown);
  const reuse = desk.triageItems;
  desk.triageItems = new Map();
  const nodes = shown.map((item) => {
    const signature = `${JSON.stringify(item)}|${prefs.lang}|${Math.floor(Date.now() / 60000)}`;
    const old = reuse.get(alarmKey(item));
    const li = old && old.signature === signature ? old.li : triageItem(item);
    desk.triageItems.set(alarmKey(item), { signature, li });
    return li;
  });
  $("#triage").replaceChildren(...(nodes.length ? nodes : [el("li", { className: "empty" }, t("nothing_to_handle"))]));
  $("#triage-total").textContent = t("shown_of", { shown: shown.length, total: items.length });
  const more = $("#triage-more");
  more.hidden = items.length <= shown.length;
  more.textContent = t("show_more", { n: Math.min(TRIAGE_PAGE, items.length - shown.length) });
  for (const li of nodes) li.classList.toggle("selected", !!desk.incident && li.dataset.incident === desk.incident.incident_id);
}

$("#triage-more").addEventListener("click", () => { desk.triageShown += TRIAGE_PAGE; drawTriage(); });
for (const id of ["f-province", "f-type", "f-severity", "f-state"]) {
  document.getElementById(id).addEventListener("change", () => { desk.triageShown = TRIAGE_PAGE; drawTriage(); });
}
for (const b of document.querySelectorAll("#counts .count")) {
  b.addEventListener("click", () => {
    const select = $("#f-severity");
    select.value = select.value === b.dataset.severity ? "" : b.dataset.severity;
    select.dispatchEvent(new Event("change"));
  });
}

function stateChip(state) { return el("span", { className: `state state-${state}` }, t(`state_${state}`)); }

function lastActionLine(item) {
  const a = item.last_action;
  const parts = [];
  if (item.assignee) parts.push(t("assigned_to", { who: item.assignee }));
  if (a) parts.push(`${when(a.at)} ${a.by} ${t(`kind_${a.kind}`)}`);
  return parts.join(" · ");
}

function triageItem(item) {
  const li = el("li", {
    className: `item sev-${item.severity} state-${item.state}${item.emergency ? " emergency" : ""}`,
    dataset: { incident: item.incident_id, state: item.state, severity: item.severity, vehicle: item.vehicle_id },
  });
  const head = el("div", { className: "head" },
    el("span", { className: `sev sev-${item.severity}` }, t(`sev_${item.severity}`)), " ",
    item.emergency ? el("span", { className: "tag emergency-tag" }, t("emergency")) : null, " ",
    el("b", { className: "what" }, alertLabel(item.type, item.details)), " ",
    stateChip(item.state));
  const where = el("div", { className: "where" },
    el("span", { className: "plate" }, item.vehicle_id), ` · ${provinceLabel(item.province)} ${text(item.city)} · `,
    el("time", {}, when(item.ts)), ` (${ago(item.ts)})`);
  const acts = el("div", { className: "acts" }, lastActionLine(item));
  const buttons = el("div", { className: "buttons" });
  const error = el("span", { className: "error", role: "alert" });
  if (item.state === "new") buttons.append(button(t("ack"), "do-ack", () => act(item.incident_id, { kind: "ack" }, error)));
  buttons.append(button(t("assign"), "do-assign", () => openIncident(item, "#i-assign")),
                 button(t("note"), "do-note", () => openIncident(item, "#i-note")),
                 button(t("locate"), "do-locate", () => locate(item)), error);
  li.append(head, where, ...[clockLine(item)].filter(Boolean), acts, buttons);
  li.addEventListener("click", (event) => {
    if (event.target.closest("button")) return;
    openIncident(item).then(() => locate(item)).catch(() => {});
  });
  return li;
}

// an open alert's clock (the server's, from the deadline policy): the time left to acknowledge
// and to close, counting down here; red once a deadline passed unmet; the level it reached
function clockLine(item) {
  if (!item || !item.level) return null;
  const node = el("div", { className: `clock${item.overdue ? " overdue" : ""}` },
    el("span", { className: `tag level-tag level-${item.level}` }, t(`level_${item.level}`)));
  if (item.ack_due && !item.acknowledged_at) node.append(" ", el("span", { className: "countdown", dataset: { due: item.ack_due, label: "ack_due" } }));
  if (item.close_due) node.append(" ", el("span", { className: "countdown", dataset: { due: item.close_due, label: "close_due" } }));
  tickClocks(node);
  return node;
}

function tickClocks(root = document) {
  // only what changed is written: a page of many clocks does no layout for the others
  const now = Date.now();
  for (const node of root.querySelectorAll(".clock [data-due]")) {
    const s = (timeOf(node.dataset.due) - now) / 1000;
    const shown = t(node.dataset.label, { left: s >= 0 ? t("due_in", { left: duration(s) }) : t("overdue_by", { late: duration(-s) }) });
    if (node.textContent !== shown) node.textContent = shown;
    if (node.classList.contains("overdue") !== s < 0) node.classList.toggle("overdue", s < 0);
  }
}

// an action from the page: recorded, the lists follow; a refusal says why where it was asked
async function act(incidentId, body, errorAt = null) {
  const response = await post(`/api/incidents/${encodeURIComponent(incidentId)}/actions`, body);
  const answer = await answerOf(response);
  const error = errorAt || (desk.incident && desk.incident.incident_id === incidentId ? $("#incident > .error") : null);
  if (!response.ok) {
    if (error) error.textContent = t("error", { why: answer.error });
    return false;
  }
  if (error) error.textContent = "";
  if (desk.incident && desk.incident.incident_id === incidentId) mergeIncident(answer);
  if (desk.me.jurisdiction === "carrier") soon("carrier", () => desk.views.carrier.load(), 100);
  else soon("triage", loadTriage, 100);
  if (/^appeal/.test(body.kind)) soon("appeals", loadAppeals, 100);
  return true;
}

// --- an incident's panel: what, where, the emergency card, forms, the action log ------------

async function openIncident(item, focus = null) {
  desk.incident = { incident_id: item.incident_id, item, record: null, commands: [] };
  drawIncident(desk.incident);
  drawTriage();
  $("#incident").hidden = false;
  $("#incident > .error").textContent = "";
  if (focus) $(focus).querySelector("input, textarea").focus();
  $("#i-supervision").hidden = true;
  $("#i-orders").replaceChildren();
  $("#supervise-form .error").textContent = "";
  loadSupervision(item.incident_id).catch(() => {});
  await loadIncident(item.incident_id);
}

async function loadIncident(incidentId) {
  const [response, emergencies] = await Promise.all([
    api(`/api/incidents/${encodeURIComponent(incidentId)}`),
    desk.incident && desk.incident.item && desk.incident.item.emergency ? getJSON("/api/incidents") : [],
  ]);
  if (!desk.incident || desk.incident.incident_id !== incidentId) return;
  const listed = emergencies.find((r) => r.incident_id === incidentId);
  desk.incident.record = listed || (response.ok ? await response.json() : null);
  desk.incident.commands = listed ? listed.commands || [] : desk.incident.commands;
  drawIncident(desk.incident);
}

function mergeIncident(record) {
  if (!desk.incident || desk.incident.incident_id !== record.incident_id) return;
  desk.incident.record = record;
  drawIncident(desk.incident);
  if (record.emergency && desk.scene && desk.scene.incidentId === record.incident_id) showScene(record, false);
}

function refreshIncidentFromTriage() {
  const item = desk.triage.items.find((i) => i.incident_id === desk.incident.incident_id);
  if (item && JSON.stringify(item) !== JSON.stringify(desk.incident.item)) {
    desk.incident.item = item;
    drawIncident(desk.incident);
  }
}

function drawIncident(incident) {
  const item = incident.item || {};
  const record = incident.record;
  const type = item.type || (record && record.alert_type);
  const severity = item.severity || (record && record.severity) || "info";
  $("#incident").dataset.incident = incident.incident_id;
  $("#i-title").replaceChildren(
    el("span", { className: `sev sev-${severity}` }, t(`sev_${severity}`)), " ",
    (item.emergency || (record && record.emergency)) ? el("span", { className: "tag emergency-tag" }, t("emergency")) : "", " ",
    alertLabel(type, item.details || (record ? { subject: record.subject } : {})), " ",
    item.state ? stateChip(item.state) : "");
  const vehicle = item.vehicle_id || (record && record.vehicle_id);
  $("#i-where").replaceChildren(el("span", { className: "plate" }, vehicle),
    ` · ${provinceLabel(item.province || (record && record.province))} ${text(item.city)} · ${when(item.ts || (record && record.raised_at))}`,
    item.assignee ? ` · ${t("assigned_to", { who: item.assignee })}` : "");
  $("#incident .do-ack").hidden = item.state !== "new";
  const emergency = record && record.emergency;
  $("#i-emergency").replaceChildren(...(emergency ? emergencyCard(record, incident.commands) : []));
  $("#i-close").hidden = !(emergency && !record.closed_at);
  $("#i-appeal").replaceChildren(...appealBox(record));
  const actions = record ? record.actions : [];
  $("#i-log").replaceChildren(...(actions.length ? actions.map(logItem)
    : [el("li", { className: "empty" }, t("no_actions"))]));
}

function logItem(a) {
  return el("li", { className: `log-${a.kind}` },
    el("time", {}, when(a.at, true)), " ", el("b", {}, a.by), " ", t(`kind_${a.kind}`),
    a.assignee ? ` → ${a.assignee}` : "",
    a.level ? ` → ${t(`level_${a.level}`)}` : "",
    a.resource_id ? ` · ${resourceName(a.resource_id)}` : "",
    a.text ? el("span", { className: "note-text" }, `: ${a.text}`) : null);
}

function resourceName(id) { return desk.resources[id] ? desk.resources[id].name : id; }

function emergencyCard(r, commands) {
  const exposure = r.exposure || {};
  const trucks = exposure.trucks;
  const zones = (exposure.zones || []).map((z) => `${z.zone_name} (${z.zone_kind}, ${z.distance_m} m)`).join(", ");
  const truckText = trucks === null || trucks === undefined ? t("trucks_unknown", { why: exposure.trucks_unknown })
    : t("trucks_n", { n: trucks.length }) + (trucks.length ? ": " + trucks.map((x) => `${x.vehicle_id} ${x.distance_m} m`).join(", ") : "");
  const out = [
    el("div", {}, t("raised_at", { when: when(r.raised_at) }), r.cleared_at ? ` · ${t("alarm_cleared")}` : ""),
    el("div", {}, t("cargo_line", { cargo: r.cargo_name || t("unknown"), un: r.un_number, cls: r.hazard_class || "?", m: r.isolation_distance_m })),
    el("div", { className: "exposure" }, t("exposed", { zones: zones || t("no_zone"), trucks: truckText })),
  ];
  const sent = new Set(r.responses.filter((x) => !x.released_at).map((x) => x.resource_id));
  const proposed = el("ol", { className: "responders" });
  for (const p of r.responders) {
    const li = el("li", { dataset: { resource: p.resource_id } },
      t("responder_line", { name: p.name, province: provinceLabel(p.province), km: p.distance_km, min: p.eta_min }),
      p.crosses_border ? el("span", { className: "tag" }, t("cross_border_tag")) : null, " ");
    if (!sent.has(p.resource_id) && !r.closed_at) {
      li.append(button(t("dispatch"), "do-dispatch", () => act(r.incident_id, { kind: "dispatch", resource_id: p.resource_id })));
    }
    proposed.append(li);
  }
  const responses = el("ol", { className: "responses" });
  for (const x of r.responses) {
    const li = el("li", { dataset: { resource: x.resource_id } },
      t("response_line", { name: x.name, province: provinceLabel(x.province), when: when(x.dispatched_at) }),
      x.crosses_border ? el("span", { className: "tag" }, t("cross_border_tag")) : null,
      x.arrived_at ? ` · ${t("arrived_at", { when: when(x.arrived_at) })}` : "",
      x.released_at ? ` · ${t("released_at", { when: when(x.released_at) })}` : " ");
    if (!x.released_at) {
      if (!x.arrived_at) li.append(button(t("arrived"), "do-arrive", () => act(r.incident_id, { kind: "arrive", resource_id: x.resource_id })));
      li.append(button(t("release"), "do-release", () => act(r.incident_id, { kind: "release", resource_id: x.resource_id })));
    }
    responses.append(li);
  }
  out.push(el("h3", {}, t("responders")), proposed, el("h3", {}, t("responses")), responses,
           el("ol", { className: "commands told" }, ...commands.map(commandItem)));
  if (trucks && trucks.length && !r.closed_at) out.push(button(t("tell_all"), "do-tell", () => openTell(r)));
  return out;
}

$("#incident .do-ack").addEventListener("click", () => act(desk.incident.incident_id, { kind: "ack" }));
$("#incident .do-locate").addEventListener("click", () => {
  const i = desk.incident;
  if (i.record && i.record.emergency) showScene(i.record);
  else if (i.item) locate(i.item);
});
for (const [id, body] of [["#i-assign", (f) => ({ kind: "assign", assignee: f.elements.assignee.value.trim() })],
                          ["#i-note", (f) => ({ kind: "note", text: f.elements.text.value.trim() })],
                          ["#i-close", (f) => ({ kind: "close", text: f.elements.text.value.trim() || null })]]) {
  $(id).addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    await busy(form, async () => {
      if (await act(desk.incident.incident_id, body(form))) form.reset();
    });
  });
}

// --- commands to trucks: a text, a position, a photo; each listed with what became of it --

function commandWhat(c) {
  if (c.kind === "text") {
    return t("cmd_text", { text: c.text }) + (c.tts ? ` · ${t("cmd_read_aloud")}` : "") + (c.emergency ? ` · ${t("cmd_emergency")}` : "");
  }
  return c.kind === "photo" ? t("cmd_photo", { camera: c.camera }) : t(`cmd_${c.kind}`);
}

function positionText(p) {
  if (!p.fix_valid) return t("no_fix", { when: when(p.ts, true) });
  return t("position_at", { lat: p.lat.toFixed(5), lon: p.lon.toFixed(5), when: when(p.ts, true), speed: p.speed_kmh });
}

function commandItem(c) {
  const li = el("li", { className: `command ${c.status}`, dataset: { command: c.command_id, status: c.status } });
  li.append(el("b", { className: "status" },
               c.status === "waiting" ? t("command_waiting", { when: when(c.expires_at) }) : t(`status_${c.status}`)),
            el("div", { className: "what" }, commandWhat(c)),
            el("div", { className: "who" }, t("cmd_by", { vehicle: c.vehicle_id, who: c.issued_by, when: when(c.issued_at, true) })));
  if (c.steps.length) {
    li.append(el("div", { className: "steps" }, c.steps.map((s) =>
      `${t(`status_${s.status}`)} ${when(s.at, true).slice(6)}${s.gateway ? ` (${s.gateway})` : ""}`).join(" → ")));
  }
  const last = c.steps[c.steps.length - 1];
  if (last && last.detail && !["claimed", "sent"].includes(last.status)) li.append(el("div", { className: "detail" }, last.detail));
  if (last && last.position) li.append(el("div", { className: "position" }, positionText(last.position)));
  if (last && last.media_id) {
    li.append(el("a", { href: `/api/media/${encodeURIComponent(last.media_id)}`, target: "_blank",
                        rel: "noopener", className: "photo" }, t("photo")));
  }
  return li;
}

// the command's item replaces its older one, or comes first
function upsertCommand(list, c) {
  const item = commandItem(c);
  const old = [...list.children].find((li) => li.dataset.command === c.command_id);
  if (old) old.replaceWith(item);
  else list.prepend(item);
}

// a form's buttons are off while its request runs: one click, one command
async function busy(form, work) {
  const buttons = [...form.querySelectorAll("button")];
  for (const b of buttons) b.disabled = true;
  try { return await work(); } finally { for (const b of buttons) b.disabled = false; }
}

// a form's JSON sent (its buttons held meanwhile): a refusal shown in the form's .error;
// once taken, the form emptied and ``then`` run
async function submitForm(form, method, path, body, then) {
  await busy(form, async () => {
    const response = await api(path, { method, headers: JSON_HEADERS, body: JSON.stringify(body) });
    const answer = await answerOf(response);
    form.querySelector(".error").textContent = response.ok ? "" : t("error", { why: answer.error });
    if (response.ok) {
      form.reset();
      await then(answer);
    }
  });
}

async function loadCommands(vehicleId) {
  const response = await api(`/api/trucks/${encodeURIComponent(vehicleId)}/commands`);
  if (!response.ok || !desk.truck || desk.truck.vehicle_id !== vehicleId) return;
  $("#d-commands").replaceChildren(...(await response.json()).map(commandItem));
}

async function sendCommand(body) {
  const form = $("#d-message");
  const vehicleId = desk.truck.vehicle_id;
  return busy(form, async () => {
    const response = await post(`/api/trucks/${encodeURIComponent(vehicleId)}/commands`, body);
    const answer = await answerOf(response);
    form.querySelector(".error").textContent = response.ok ? "" : answer.error;
    if (response.ok && desk.truck && desk.truck.vehicle_id === vehicleId) upsertCommand($("#d-commands"), answer);
    return response.ok;
  });
}

$("#d-message").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const data = new FormData(form);
  const sent = await sendCommand({ kind: "text", text: data.get("text"), tts: data.get("tts") === "on",
                                   emergency: data.get("emergency") === "on" });
  if (sent) form.elements.text.value = "";
});
$("#d-message .do-position").addEventListener("click", () => sendCommand({ kind: "position_query" }));
$("#d-message .do-photo").addEventListener("click", () => sendCommand({ kind: "photo" }));

// "tell them all": one warning to every exposed truck of the jurisdiction, from a form
// the server fills with its default text
async function openTell(r) {
  const response = await api(`/api/incidents/${encodeURIComponent(r.incident_id)}/tell-exposed`);
  if (!response.ok) return;
  const plan = await response.json();
  const names = (trucks) => trucks.map((x) => `${x.vehicle_id} (${text(x.distance_m)} m)`).join(", ");
  const yours = plan.trucks.filter((x) => x.yours);
  const others = plan.trucks.filter((x) => !x.yours);
  const form = $("#tell");
  form.dataset.incident = r.incident_id;
  form.querySelector(".about").textContent =
    t("tell_about", { what: `${alertLabel(r.alert_type, { subject: r.subject })} · ${r.vehicle_id}`, yours: names(yours) || t("none_of_yours") }) +
    (others.length ? t("not_told", { others: names(others) }) : "");
  form.elements.text.value = plan.text;
  form.querySelector(".error").textContent = "";
  form.hidden = false;
  form.elements.text.focus();
}

$("#tell").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  await busy(form, async () => {
    const response = await post(`/api/incidents/${encodeURIComponent(form.dataset.incident)}/tell-exposed`,
                                { text: form.elements.text.value });
    if (!response.ok) {
      form.querySelector(".error").textContent = (await answerOf(response)).error;
      return;
    }
    form.hidden = true;
    if (desk.incident) await loadIncident(desk.incident.incident_id);
  });
});
$("#tell .do-tell-cancel").addEventListener("click", () => { $("#tell").hidden = true; });

function commandArrived(c) {
  if (desk.truck && c.vehicle_id === desk.truck.vehicle_id) upsertCommand($("#d-commands"), c);
  if (c.incident_id && desk.incident && desk.incident.incident_id === c.incident_id) {
    const told = $("#i-emergency ol.told");
    desk.incident.commands = [c, ...desk.incident.commands.filter((x) => x.command_id !== c.command_id)];
    if (told) upsertCommand(told, c);
  }
}

// --- the map: outlines, zones, trucks in clusters, the scene of an emergency -----------------

function textTooltip(value) { return el("span", {}, value); }   // Leaflet puts strings in as HTML

async function drawLayers() {
  const [provinces, cities, zones] = await Promise.all(
    ["/api/geo/provinces", "/api/geo/cities", "/api/zones"].map(getJSON));
  const outline = L.geoJSON(provinces, { style: { color: "#1d2b3a", weight: 2, fill: false }, interactive: false }).addTo(desk.map);
  L.geoJSON(cities, { style: { color: "#8895a7", weight: 0.6, fill: false }, interactive: false }).addTo(desk.map);
  L.geoJSON(zones, {
    style: (f) => ({ color: f.properties.banned_now ? "#c0392b" : "#7f8c8d", weight: 1,
                     fillOpacity: f.properties.banned_now ? 0.25 : 0.08,
                     dashArray: f.properties.banned_now ? null : "4" }),
    onEachFeature: (f, layer) => layer.bindTooltip(() => textTooltip(
      `${f.properties.name} (${f.properties.kind}) · ${t(f.properties.banned_now ? "legend_zone_ban" : "legend_zone_idle")}`)),
  }).addTo(desk.map);
  const mine = L.geoJSON(provinces, { filter: (f) => desk.me.provinces.includes(f.properties.abbr) });
  desk.home = mine.getLayers().length ? mine.getBounds() : outline.getBounds();
  desk.map.fitBounds(desk.home);
}

// a button back to the whole jurisdiction, after following an alert down to a street
function drawHomeButton() {
  const control = L.control({ position: "topleft" });
  control.onAdd = () => {
    const b = el("button", { type: "button", className: "home-button", dataset: { l10nTitle: "home" },
                             title: t("home") }, "⌂");
    L.DomEvent.disableClickPropagation(b);
    b.addEventListener("click", () => desk.map.fitBounds(desk.home));
    return b;
  };
  control.addTo(desk.map);
}

function drawLegend() {
  if (desk.legend) desk.legend.remove();
  desk.legend = L.control({ position: "bottomleft" });
  desk.legend.onAdd = () => {
    const row = (swatch, label) => el("li", {}, swatch, " ", label);
    const dot = (cls, glyph = "▲") => el("span", { className: `truck-icon ${cls}` }, glyph);
    return el("div", { className: "legend" }, el("b", {}, t("legend")), el("ul", {},
      row(dot("sev-critical"), t("legend_critical")), row(dot("sev-warning"), t("legend_warning")),
      row(dot("sev-info"), t("legend_info")), row(dot("sev-none"), t("legend_none")),
      row(dot("sev-none stale"), t("legend_stale", { min: STALE_LEGEND_MIN })),
      row(el("span", { className: "cluster-icon small sev-warning" }, "12"), t("legend_cluster")),
      row(el("span", { className: "swatch zone-ban" }), t("legend_zone_ban")),
      row(el("span", { className: "swatch zone-idle" }), t("legend_zone_idle")),
      row(el("span", { className: "swatch isolation" }), t("isolation_circle")),
      row(el("span", { className: "swatch route" }), t("responder_route"))));
  };
  desk.legend.addTo(desk.map);
}

async function loadTrucks() {
  desk.trucks = await getJSON("/api/trucks");
  desk.trucksById = new Map(desk.trucks.map((x) => [x.vehicle_id, x]));
  drawTrucks();
}

function worstOf(trucks) {
  let rank = 0;
  for (const x of trucks) rank = Math.max(rank, { info: 1, warning: 2, critical: 3 }[x.worst] || 0);
  return ["none", "info", "warning", "critical"][rank];
}

// Trucks drawn in cells of CELL_PX: one marker per cell (a truck alone shows as itself),
// only in and near the view. Markers whose look did not change are kept.
function drawTrucks() {
  if (!desk.map) return;
  const map = desk.map, zoom = map.getZoom(), bounds = map.getBounds().pad(0.25);
  const cells = new Map();
  for (const truck of desk.trucks) {
    if (!bounds.contains([truck.lat, truck.lon])) continue;
    let key = `t:${truck.vehicle_id}`;
    if (zoom < SINGLE_ZOOM) {
      const p = map.project([truck.lat, truck.lon], zoom);
      key = `c:${Math.floor(p.x / CELL_PX)}:${Math.floor(p.y / CELL_PX)}`;
    }
    const cell = cells.get(key);
    if (cell) cell.push(truck);
    else cells.set(key, [truck]);
  }
  const keep = new Map();
  for (const [cellKey, trucks] of cells) {
    const single = trucks.length === 1;
    const key = single ? `t:${trucks[0].vehicle_id}` : cellKey;
    const look = single ? truckLook(trucks[0]) : clusterLook(trucks);
    const old = desk.markers.get(key);
    if (old && old.look === look) {
      keep.set(key, old);
      continue;
    }
    if (old) old.marker.remove();
    const marker = single ? truckMarker(trucks[0]) : clusterMarker(trucks);
    marker.addTo(desk.layers.trucks);
    keep.set(key, { look, marker });
  }
  for (const [key, old] of desk.markers) if (!keep.has(key)) old.marker.remove();
  desk.markers = keep;
}

function truckLook(x) {
  const selected = desk.truck && desk.truck.vehicle_id === x.vehicle_id;
  return `${x.lat},${x.lon},${x.worst},${x.stale},${x.heading},${selected},${prefs.lang}`;
}

function clusterLook(trucks) {
  let lat = 0, lon = 0;
  for (const x of trucks) { lat += x.lat; lon += x.lon; }
  return `${trucks.length},${worstOf(trucks)},${trucks.every((x) => x.stale)},${(lat / trucks.length).toFixed(4)},${(lon / trucks.length).toFixed(4)}`;
}

function truckMarker(x) {
  const arrow = el("span", {
    className: `truck-icon sev-${x.worst || "none"}${x.stale ? " stale" : ""}` +
               `${desk.truck && desk.truck.vehicle_id === x.vehicle_id ? " selected" : ""}`,
    title: `${x.vehicle_id}${x.stale ? ` · ${t("stale")}` : ""}`,
    dataset: { vehicle: x.vehicle_id },
  }, x.heading === null || x.heading === undefined ? "●" : "▲");
  arrow.style.transform = `rotate(${x.heading || 0}deg)`;  // CSSOM: allowed by the CSP
  const icon = L.divIcon({ className: "truck", iconSize: [18, 18], html: arrow });
  const marker = L.marker([x.lat, x.lon], { icon, keyboard: false });
  marker.on("click", () => openTruck(x.vehicle_id).catch(() => {}));
  return marker;
}

function clusterMarker(trucks) {
  let lat = 0, lon = 0;
  for (const x of trucks) { lat += x.lat; lon += x.lon; }
  const size = trucks.length < 10 ? "small" : trucks.length < 100 ? "medium" : "large";
  const stale = trucks.every((x) => x.stale) ? " stale" : "";
  const label = el("span", { className: `cluster-icon ${size} sev-${worstOf(trucks)}${stale}`,
                             title: t("trucks_here", { n: trucks.length }) }, String(trucks.length));
  const px = { small: 26, medium: 32, large: 40 }[size];
  const icon = L.divIcon({ className: "cluster", iconSize: [px, px], html: label });
  const marker = L.marker([lat / trucks.length, lon / trucks.length], { icon, keyboard: false });
  marker.on("click", () => openCluster(marker, trucks));
  return marker;
}

// A click on a group zooms to it; trucks on (almost) one spot are listed to choose from.
function openCluster(marker, trucks) {
  const bounds = L.latLngBounds(trucks.map((x) => [x.lat, x.lon]));
  const span = desk.map.distance(bounds.getSouthWest(), bounds.getNorthEast());
  if (span > 50 && desk.map.getZoom() < desk.map.getMaxZoom() - 1) {
    desk.map.fitBounds(bounds.pad(0.3), { maxZoom: SINGLE_ZOOM });
    return;
  }
  const list = el("ol", { className: "cluster-list" }, ...trucks.slice(0, 50).map((x) =>
    el("li", {}, button(`${x.vehicle_id}${x.stale ? ` · ${t("stale")}` : ""}`, "do-open-truck",
                        () => { desk.map.closePopup(); openTruck(x.vehicle_id); }))));
  L.popup().setLatLng(marker.getLatLng()).setContent(list).openOn(desk.map);
}

// an alert leads to its truck: fly there, open its panel; an emergency also shows its scene
async function locate(item) {
  if (item.emergency) {
    if (!desk.incident || desk.incident.incident_id !== item.incident_id || !desk.incident.record) await openIncident(item);
    const record = desk.incident && desk.incident.record;
    if (record && record.emergency) {
      showScene(record);
      await openTruck(item.vehicle_id, { fly: false });
      return;
    }
  }
  const known = item.lat !== null && item.lat !== undefined;
  if (known) desk.map.flyTo([item.lat, item.lon], Math.max(desk.map.getZoom(), SINGLE_ZOOM), { duration: 0.8 });
  await openTruck(item.vehicle_id, { fly: !known });
}

// the isolation circle and straight lines from each proposed or dispatched responder;
// the view fits the circle (not the responders, which may be an hour away)
function showScene(r, fit = true) {
  if (desk.scene) desk.scene.remove();
  const scene = L.layerGroup().addTo(desk.map);
  scene.incidentId = r.incident_id;
  desk.scene = scene;
  const circle = L.circle([r.lat, r.lon], { radius: r.isolation_distance_m || 100, color: "#c0392b", weight: 2, fillOpacity: 0.15 })
    .bindTooltip(textTooltip(`${t("isolation_circle")} ${text(r.isolation_distance_m)} m`)).addTo(scene);
  const responding = new Map(r.responses.filter((x) => !x.released_at).map((x) => [x.resource_id, x]));
  const from = new Map(r.responders.map((p) => [p.resource_id, p]));
  for (const x of responding.values()) if (!from.has(x.resource_id)) from.set(x.resource_id, x);
  for (const [id, p] of from) {
    const resource = desk.resources[id];
    if (!resource) continue;
    const dispatched = responding.has(id);
    L.polyline([[resource.lat, resource.lon], [r.lat, r.lon]], {
      color: p.crosses_border ? "#8e44ad" : "#27ae60", weight: dispatched ? 3 : 1.5,
      dashArray: dispatched ? null : "5", className: `route${dispatched ? " dispatched" : ""}`,
    }).bindTooltip(textTooltip(`${p.name}${p.eta_min !== undefined ? `: ${p.eta_min} min` : ""}`)).addTo(scene);
  }
  if (fit) desk.map.fitBounds(circle.getBounds().pad(0.6), { maxZoom: 17 });
}

async function loadResources() {
  const resources = await getJSON("/api/resources");
  desk.resources = Object.fromEntries(resources.map((x) => [x.resource_id, x]));
}

// --- a truck's panel, refreshed while it is open ----------------------------------------------

async function openTruck(vehicleId, { fly = true } = {}) {
  const truck = await getJSON(`/api/trucks/${encodeURIComponent(vehicleId)}`);
  const changed = !desk.truck || desk.truck.vehicle_id !== truck.vehicle_id;
  desk.truck = truck;
  if (changed) {
    $("#d-commands").replaceChildren();
    $("#d-message .error").textContent = "";
    resetPlayback();
  }
  drawTruck(truck);
  $("#details").hidden = false;
  if (fly && truck.latest) desk.map.flyTo([Number(truck.latest.lat), Number(truck.latest.lon)], Math.max(desk.map.getZoom(), SINGLE_ZOOM), { duration: 0.8 });
  drawTrucks();
  if (changed) {
    $("#d-platform").hidden = true;
    $("#d-platform-form .error").textContent = "";
  }
  await Promise.all([loadCommands(truck.vehicle_id), loadTruckPlatform(truck.vehicle_id)]);
}

async function refreshTruck() {
  if (!desk.truck) return;
  const vehicleId = desk.truck.vehicle_id;
  const response = await api(`/api/trucks/${encodeURIComponent(vehicleId)}`);
  if (!response.ok || !desk.truck || desk.truck.vehicle_id !== vehicleId) return;
  desk.truck = await response.json();
  drawTruck(desk.truck);
}

function drawTruck(truck) {
  if (desk.selection) desk.selection.remove();
  desk.selection = L.layerGroup().addTo(desk.map);
  const permit = truck.permit;
  if (permit && permit.route) {
    L.geoJSON(permit.route, { style: { color: "#8e44ad", weight: 10, opacity: 0.2 }, interactive: false }).addTo(desk.selection);
    L.geoJSON(permit.route, { style: { color: "#8e44ad", weight: 2, dashArray: "6" }, interactive: false }).addTo(desk.selection);
  }
  const points = truck.track.map((p) => [p.lat, p.lon]);
  if (points.length) L.polyline(points, { color: "#2c3e50", weight: 3, interactive: false }).addTo(desk.selection);
  const latest = truck.latest || {};
  const listed = desk.trucksById.get(truck.vehicle_id);
  const stale = !!(listed && listed.stale);
  $("#details").dataset.vehicle = truck.vehicle_id;
  $("#details").classList.toggle("stale", stale);
  $("#d-vehicle").textContent = truck.vehicle_id;
  $("#d-stale").hidden = !stale;
  $("#d-latest").textContent = [t("last_seen", { when: when(latest.ts, true), ago: ago(latest.ts) }),
    t("speed", { v: latest.speed_kmh }), text(latest.city_name),
    latest.heading ? t("heading", { deg: latest.heading }) : ""].filter(Boolean).join(" · ");
  $("#d-permit").textContent = permit
    ? t("permit", { id: permit.permit_id, cargo: permit.cargo_name, un: permit.un_number, cls: permit.hazard_class,
                    kg: permit.quantity_kg, from: permit.origin, to: permit.destination, m: permit.corridor_m })
    : t("no_permit");
  $("#d-track").textContent = t("track_points", { n: truck.track.length });
  $("#d-alerts").replaceChildren(...truck.open_alerts.map((a) => el("li", { className: `item sev-${a.severity}`, dataset: { incident: a.incident_id } },
    el("span", { className: `sev sev-${a.severity}` }, t(`sev_${a.severity}`)), " ",
    el("b", {}, alertLabel(a.type, a.details)), ` · ${when(a.ts)}`)));
  document.body.dataset.selected = truck.vehicle_id;
}

for (const b of document.querySelectorAll(".close-pane")) {
  b.addEventListener("click", () => {
    const pane = b.closest(".pane");
    pane.hidden = true;
    if (pane.id === "details") {
      desk.truck = null;
      if (desk.selection) desk.selection.remove();
      clearPlayback();
      drawTrucks();
    } else {
      desk.incident = null;
      if (desk.scene) desk.scene.remove();
      desk.scene = null;
      $("#tell").hidden = true;
      drawTriage();
    }
  });
}

// --- a truck's track of any period from the archive, played back on the map ----------------

const PLAYBACK_SPAN_MS = 24 * 3600_000;   // the period the form offers first: the last 24 h
const SEVERITY_COLOURS = { critical: "#c0392b", warning: "#e67e22", info: "#2e86c1" };

// the form back to the last 24 h, nothing drawn
function resetPlayback() {
  clearPlayback();
  const form = $("#playback-form");
  const now = Date.now();
  form.elements.from.value = localInput(now - PLAYBACK_SPAN_MS);
  form.elements.to.value = localInput(now);
  $("#d-playback .error").textContent = "";
}

function clearPlayback() {
  const p = desk.playback;
  if (p) {
    p.playing = false;
    if (p.frame) cancelAnimationFrame(p.frame);
    p.layer.remove();
  }
  desk.playback = null;
  const box = $("#d-playback");
  for (const key of ["points", "alerts", "state", "at"]) delete box.dataset[key];
  $("#playback-controls").hidden = true;
  $("#playback-summary").textContent = "";
  $("#playback-form .do-track-clear").hidden = true;
}

async function loadPlayback() {
  const form = $("#playback-form");
  const vehicleId = desk.truck.vehicle_id;
  const error = $("#d-playback .error");
  const query = new URLSearchParams({ from: fromLocalInput(form.elements.from.value), to: fromLocalInput(form.elements.to.value) });
  await busy(form, async () => {
    error.textContent = "";
    $("#playback-summary").textContent = t("track_loading");
    const response = await api(`/api/trucks/${encodeURIComponent(vehicleId)}/track?${query}`);
    if (!desk.truck || desk.truck.vehicle_id !== vehicleId) return;
    if (!response.ok) {
      $("#playback-summary").textContent = "";
      error.textContent = t("error", { why: (await answerOf(response)).error });
      return;
    }
    drawPlayback(await response.json());
  });
}

// the track as a line, its alerts as dots coloured by severity, a marker at the slider's time
function drawPlayback(track) {
  clearPlayback();
  const layer = L.layerGroup().addTo(desk.map);
  const points = track.points;
  const line = L.polyline(points.map((p) => [p[1], p[2]]), { color: "#16a085", weight: 3, opacity: 0.85, interactive: false }).addTo(layer);
  let marked = 0;
  for (const a of track.alerts) {
    if (a.lat === null || a.lon === null) continue;
    const colour = SEVERITY_COLOURS[a.severity] || "#7f8c8d";
    L.circleMarker([a.lat, a.lon], { radius: 7, color: colour, weight: 2, fillColor: colour,
                                     fillOpacity: a.state === "cleared" ? 0.25 : 0.9 })
      .bindPopup(() => el("div", { className: "track-alert" }, t("track_alert", {
        sev: t(`sev_${a.severity}`), what: typeLabel(a.type), state: labelOr(`state_${a.state}`, a.state), when: when(a.ts, true) })))
      .addTo(layer);
    marked += 1;
  }
  const p = { vehicleId: track.vehicle_id, track, layer, points, playing: false, frame: null, speed: Number($("#playback-speed").value) || 1,
              start: points.length ? points[0][0] : 0, end: points.length ? points[points.length - 1][0] : 0, at: 0, marker: null };
  desk.playback = p;
  const box = $("#d-playback");
  box.dataset.points = String(line.getLatLngs().length);
  box.dataset.alerts = String(marked);
  box.dataset.state = "loaded";
  $("#playback-form .do-track-clear").hidden = false;
  if (points.length) {
    const arrow = el("span", { className: "playback-icon" }, "▲");
    p.label = el("span", {});
    p.arrow = arrow;
    p.marker = L.marker([points[0][1], points[0][2]], { icon: L.divIcon({ className: "playback-marker", iconSize: [22, 22], html: arrow }),
                                                       keyboard: false, interactive: false })
      .bindTooltip(p.label, { permanent: true, direction: "top", offset: [0, -10] }).addTo(layer);
    const slider = $("#playback-time");
    slider.max = String(Math.round((p.end - p.start) / 1000));
    $("#playback-controls").hidden = false;
    desk.map.fitBounds(line.getBounds().pad(0.15), { maxZoom: 16 });
  }
  seekPlayback(p.start);
  showPlayback();
}

// words of the playback (again after a language switch)
function showPlayback() {
  const p = desk.playback;
  if (!p) return;
  const period = { from: when(p.track.from), to: when(p.track.to) };
  $("#playback-summary").textContent = p.points.length
    ? t("track_summary", { ...period, n: p.points.length, alerts: p.track.alerts.length }) + (p.track.truncated ? t("track_thinned") : "")
    : t("track_empty", period);
  $("#playback-controls .do-play").textContent = t(p.playing ? "pause" : "play");
  if (p.points.length) seekPlayback(p.at);
}

// where the truck was at ms: between the fixes around it, and the speed of the one before
function positionAt(points, ms) {
  let lo = 0, hi = points.length - 1;
  if (ms <= points[0][0]) return { lat: points[0][1], lon: points[0][2], fix: points[0] };
  if (ms >= points[hi][0]) return { lat: points[hi][1], lon: points[hi][2], fix: points[hi] };
  while (hi - lo > 1) {   // points[lo].ts <= ms < points[hi].ts
    const mid = (lo + hi) >> 1;
    if (points[mid][0] <= ms) lo = mid; else hi = mid;
  }
  const a = points[lo], b = points[hi];
  const f = (ms - a[0]) / (b[0] - a[0]);
  return { lat: a[1] + (b[1] - a[1]) * f, lon: a[2] + (b[2] - a[2]) * f, fix: a };
}

function seekPlayback(ms) {
  const p = desk.playback;
  if (!p || !p.points.length) return;
  p.at = Math.min(p.end, Math.max(p.start, ms));
  const here = positionAt(p.points, p.at);
  const [, , , speed, heading] = here.fix;
  p.marker.setLatLng([here.lat, here.lon]);
  p.arrow.style.transform = `rotate(${heading || 0}deg)`;  // CSSOM: allowed by the CSP
  const words = t("playback_at", { when: when(new Date(p.at).toISOString(), true),
                                   speed: speed === null ? "–" : t("speed", { v: speed }) });
  p.label.textContent = words;
  $("#playback-now").textContent = words;
  $("#playback-time").value = String(Math.round((p.at - p.start) / 1000));
  $("#d-playback").dataset.at = String(Math.round(p.at));
}

function playPlayback(on) {
  const p = desk.playback;
  if (!p || !p.points.length) return;
  p.playing = on;
  if (p.frame) cancelAnimationFrame(p.frame);
  p.frame = null;
  $("#d-playback").dataset.state = on ? "playing" : "paused";
  $("#playback-controls .do-play").textContent = t(on ? "pause" : "play");
  if (!on) return;
  if (p.at >= p.end) seekPlayback(p.start);   // from the start again
  let last = performance.now();
  const step = (now) => {
    if (!p.playing || desk.playback !== p) return;
    seekPlayback(p.at + (now - last) * p.speed);
    last = now;
    if (p.at >= p.end) playPlayback(false);
    else p.frame = requestAnimationFrame(step);
  };
  p.frame = requestAnimationFrame(step);
}

$("#playback-form").addEventListener("submit", (event) => {
  event.preventDefault();
  if (desk.truck) loadPlayback().catch(() => {});
});
$("#playback-form .do-track-clear").addEventListener("click", () => clearPlayback());
$("#playback-controls .do-play").addEventListener("click", () => { if (desk.playback) playPlayback(!desk.playback.playing); });
$("#playback-speed").addEventListener("change", (event) => { if (desk.playback) desk.playback.speed = Number(event.target.value) || 1; });
$("#playback-time").addEventListener("input", (event) => {
  if (desk.playback) seekPlayback(desk.playback.start + Number(event.target.value) * 1000);
});

// --- plate search ---------------------------------------------------------------------------

async function search(query) {
  const list = $("#search-results");
  if (!query) { list.hidden = true; list.replaceChildren(); return; }
  const found = await getJSON(`/api/trucks?q=${encodeURIComponent(query)}`);
  if ($("#q").value.trim() !== query) return;  // a newer query is on its way
  list.replaceChildren(...(found.length ? found.map((x) => el("li", {},
    button(`${x.vehicle_id} · ${provinceLabel(x.province)} ${text(x.city)}${x.stale ? ` · ${t("stale")}` : ""}`,
           `do-open-truck${x.stale ? " stale" : ""}`, () => pick(x.vehicle_id))))
    : [el("li", { className: "empty" }, t("no_match"))]));
  list.hidden = false;
}

function pick(vehicleId) {
  $("#search-results").hidden = true;
  showView("triage");
  openTruck(vehicleId).catch(() => {});
}

$("#q").addEventListener("input", () => soon("search", () => search($("#q").value.trim()), 250));
$("#search").addEventListener("submit", async (event) => {
  event.preventDefault();
  await search($("#q").value.trim());
  const first = $("#search-results button");
  if (first) first.click();
});
document.addEventListener("click", (event) => {
  if (!event.target.closest("#search")) $("#search-results").hidden = true;
});

// --- views: duty (map and triage), history, handover, region ---------------------------------

function showView(name) {
  for (const b of document.querySelectorAll("#views button")) b.classList.toggle("active", b.dataset.view === name);
  for (const [key, view] of Object.entries(desk.views)) {
    const section = document.getElementById(`view-${key}`);
    if (section) section.hidden = key !== name;
    if (key === name && view.open) view.open();
  }
  if (name === "triage" && desk.map) desk.map.invalidateSize();
}

for (const b of document.querySelectorAll("#views button")) b.addEventListener("click", () => showView(b.dataset.view));

function cell(value, className = "") { return el("td", { className }, value); }

function historyQuery(form) {
  const query = new URLSearchParams();
  query.set("from", fromLocalInput(form.elements.from.value));
  query.set("to", fromLocalInput(form.elements.to.value));
  for (const key of ["province", "type", "severity", "vehicle"]) {
    const value = form.elements[key].value.trim();
    if (value) query.set(key, value);
  }
  return query;
}

// a view's answer drawn only if no newer question was asked meanwhile (an automatic
// first load must not overwrite the filtered one a person asked for after it)
async function latest(view, path) {
  view.asked = (view.asked || 0) + 1;
  const mine = view.asked;
  const data = await getJSON(path);
  if (mine !== view.asked) return null;
  view.data = data;
  return data;
}

desk.views.history = {
  data: null,
  open() {
    const form = $("#history-form");
    if (!form.elements.from.value) {
      form.elements.from.value = localInput(Date.now() - 24 * 3600_000);
      form.elements.to.value = localInput(Date.now() + 60_000);
    }
    if (!this.data) this.load().catch(() => {});
  },
  async load() {
    const query = historyQuery($("#history-form"));
    if (!await latest(this, `/api/history?${query}`)) return;
    const csv = $("#history-csv");
    query.set("format", "csv");
    csv.href = `/api/history?${query}`;
    csv.hidden = false;
    this.draw(this.data);
  },
  draw(data) {
    $("#history-summary").textContent = t("history_summary", { from: when(data.from), to: when(data.to), n: data.items.length })
      + (data.truncated ? t("truncated") : "");
    $("#history-table tbody").replaceChildren(...data.items.map((a) => el("tr", { className: `sev-${a.severity}`, dataset: { incident: a.incident_id } },
      cell(when(a.ts, true)), cell(alertLabel(a.type, a.details)), el("td", {}, el("span", { className: `sev sev-${a.severity}` }, t(`sev_${a.severity}`))),
      cell(t(`state_${a.state}`)), cell(a.vehicle_id, "plate"),
      cell(`${provinceLabel(a.province)} ${a.city ? a.city.name || "" : ""}`), cell(detailsSummary(a.details)))));
  },
};

// the alert's details in a line: what a person checks first
function detailsSummary(details) {
  if (!details) return "";
  const keys = ["speed_kmh", "limit_kmh", "zone_name", "distance_m", "dwell_s", "reason", "silent_for_s", "alarm"];
  return keys.filter((k) => details[k] !== undefined && details[k] !== null).map((k) => `${k}=${details[k]}`).join(", ");
}

$("#history-form").addEventListener("submit", (event) => {
  event.preventDefault();
  busy(event.target, () => desk.views.history.load().catch((e) => { $("#history-summary").textContent = t("error", { why: e.message }); }));
});

desk.views.handover = {
  data: null,
  open() {
    const form = $("#handover-form");
    if (!form.elements.since.value) form.elements.since.value = localInput(Date.now() - 8 * 3600_000);
    if (!this.data) this.load().catch(() => {});
  },
  async load() {
    const since = fromLocalInput($("#handover-form").elements.since.value);
    if (!await latest(this, `/api/handover?since=${encodeURIComponent(since)}`)) return;
    this.draw(this.data);
  },
  draw(data) {
    $("#handover-body").hidden = false;
    $("#handover-period").textContent = t("handover_period", { since: when(data.since), until: when(data.until) });
    const came = data.came;
    $("#handover-came").textContent = t("came_total", { n: came.total }) + " " +
      SEVERITIES.map((s) => `${t(`sev_${s}`)} ${came.by_severity[s] || 0}`).join(" · ");
    $("#handover-types").replaceChildren(...Object.entries(came.by_type).sort((a, b) => b[1] - a[1])
      .map(([type, n]) => el("li", {}, `${typeLabel(type)}: ${n}`)));
    $("#handover-handled tbody").replaceChildren(...(data.handled.length ? data.handled.map((h) => el("tr", {},
      cell(when(h.at, true)), cell(h.by), cell(t(`kind_${h.kind}`)), cell(h.vehicle_id, "plate"),
      cell(typeLabel(h.type)), cell(text(h.text)))) : [el("tr", {}, el("td", { colSpan: 6 }, t("nothing")))]));
    $("#handover-open").replaceChildren(...(data.open.length ? data.open.map(handoverOpenItem)
      : [el("li", { className: "empty" }, t("nothing"))]));
  },
};

function handoverOpenItem(item) {
  return el("li", { className: `item sev-${item.severity} state-${item.state}${item.emergency ? " emergency" : ""}`,
                    dataset: { incident: item.incident_id, state: item.state } },
    el("span", { className: `sev sev-${item.severity}` }, t(`sev_${item.severity}`)), " ",
    item.emergency ? el("span", { className: "tag emergency-tag" }, t("emergency")) : null, " ",
    el("b", {}, alertLabel(item.type, item.details)), " ", stateChip(item.state), " · ",
    el("span", { className: "plate" }, item.vehicle_id), ` · ${when(item.ts)}`,
    lastActionLine(item) ? ` · ${lastActionLine(item)}` : "");
}

$("#handover-form").addEventListener("submit", (event) => {
  event.preventDefault();
  busy(event.target, () => desk.views.handover.load().catch((e) => { $("#handover-period").textContent = t("error", { why: e.message }); }));
});

desk.views.region = {
  data: null,
  open() { this.load().catch(() => {}); },
  async load() {
    if (!await latest(this, "/api/region")) return;
    this.draw(this.data);
  },
  draw(data) {
    $("#region-table tbody").replaceChildren(...Object.entries(data.provinces).map(([p, s]) =>
      el("tr", { dataset: { province: p } }, cell(provinceLabel(p)),
        ...SEVERITIES.map((sev) => cell(String(s.open[sev] || 0), `num sev-${sev}`)),
        cell(String(s.emergencies_open), "num"), cell(String(s.cross_border_responses), "num"),
        cell(duration(s.ack_median_s), "num"), cell(duration(s.close_median_s), "num"))));
    $("#cross-border-table tbody").replaceChildren(...(data.cross_border.length ? data.cross_border.map((x) =>
      el("tr", {}, cell(x.incident_id), cell(provinceLabel(x.from_province)), cell(provinceLabel(x.to_province)),
         cell(resourceName(x.resource)), cell(when(x.dispatched_at)), cell(when(x.released_at))))
      : [el("tr", {}, el("td", { colSpan: 6 }, t("nothing")))]));
  },
};

desk.views.assessment = {
  open() { this.load().catch(() => {}); },
  async load() {
    const list = $("#assessment-months");
    const response = await api("/api/assessments");
    if (!response.ok) {
      list.replaceChildren(el("li", {}, t("assessment_unavailable")));
      return;
    }
    const data = await response.json();
    list.replaceChildren(...(data.months.length ? data.months.map((m) =>
      el("li", {}, el("a", { href: `/api/assessments/${encodeURIComponent(m)}`, target: "_blank",
                              rel: "noopener", dataset: { month: m } }, m)))
      : [el("li", {}, t("assessment_none"))]));
  },
};

// --- the JT/T 809 chain: link health, our requests down, the national platform's requests -----

const ANSWERED_KINDS = ["inspection", "supervision"];

function countdown(deadline) {
  const ms = timeOf(deadline);
  if (ms === null) return "";
  const s = (ms - Date.now()) / 1000;
  return s >= 0 ? t("due_in", { left: duration(s) }) : t("overdue_by", { late: duration(-s) });
}

// an open item past its deadline turns late where it stands (no reload, no server round)
function tickDeadlines() {
  for (const node of document.querySelectorAll(".requests .countdown[data-deadline]")) {
    node.textContent = countdown(node.dataset.deadline);
    const li = node.closest("li.request");
    if (li && li.dataset.open === "1" && timeOf(node.dataset.deadline) < Date.now() && li.dataset.late !== "1") {
      li.dataset.late = "1";
      li.classList.add("late");
      li.querySelector(".head").append(" ", el("span", { className: "tag late-tag" }, t("late_tag")));
    }
  }
  showLinksBadge();
}

function lateTag(late) { return late ? el("span", { className: "tag late-tag" }, t("late_tag")) : null; }

function deadlineLine(deadline, open) {
  if (!deadline) return null;
  return el("div", { className: "deadline" }, t("deadline_at", { when: when(deadline, true) }),
    open ? " · " : "", open ? el("span", { className: "countdown", dataset: { deadline } }, countdown(deadline)) : null);
}

function linkRow(x) {
  const uplink = x.link === "uplink";
  const name = uplink ? t("link_uplink") + (x.access_code !== null ? ` (${x.access_code})` : "")
    : `${x.name || "?"} (${x.access_code})${x.configured ? "" : t("link_unconfigured")}${x.enabled === false ? t("link_disabled") : ""}`;
  const tr = el("tr", { className: `link status-${x.status}`, dataset: { link: x.link, code: text(x.access_code), status: x.status } },
    cell(name), cell(uplink ? "" : (x.province ? provinceLabel(x.province) : t("region"))),
    el("td", {}, el("span", { className: `link-status status-${x.status}` }, t(`link_${x.status}`))),
    cell(x.since ? `${when(x.since, true)} (${ago(x.since)})` : t("never")),
    cell(String(x.positions), "num"),
    cell(x.last_position_at ? when(x.last_position_at, true) : "–"),
    cell(x.resend_lag_s === null || x.resend_lag_s === undefined ? "–" : duration(x.resend_lag_s), "num"),
    cell(String(x.reconnects), "num"));
  const actions = el("td");
  if (!uplink && desk.links.mayInspect.has(x.access_code) && x.enabled !== false) {
    actions.append(button(t("inspect"), "do-inspect", () => openInspect(x)));
  }
  tr.append(actions);
  return tr;
}

function openInspect(x) {
  const form = $("#inspect-form");
  form.dataset.platform = String(x.access_code);
  form.querySelector(".about").textContent = t("inspect_about", { name: x.name, code: x.access_code });
  form.querySelector(".error").textContent = "";
  form.hidden = false;
  form.elements.question.focus();
}

$("#inspect-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  await busy(form, async () => {
    const minutes = Number(form.elements.deadline_min.value);
    const response = await post(`/api/platforms/${encodeURIComponent(form.dataset.platform)}/inspections`,
      { question: form.elements.question.value, deadline_min: minutes > 0 ? minutes : null });
    const answer = await answerOf(response);
    if (!response.ok) {
      form.querySelector(".error").textContent = t("error", { why: answer.error });
      return;
    }
    form.hidden = true;
    form.elements.question.value = "";
    await desk.views.links.loadDown();
  });
});
$("#inspect-form .do-inspect-cancel").addEventListener("click", () => { $("#inspect-form").hidden = true; });

function downAnswerText(a) {
  const fields = Object.entries(a.answer || {}).filter(([k]) => k !== "text").map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`);
  return [a.answer && a.answer.text ? a.answer.text : null, fields.length ? fields.join(", ") : null].filter(Boolean).join(" · ");
}

// a request of ours to a lower platform, with what became of it
function downItem(r) {
  const open = r.open;
  const li = el("li", { className: `request down kind-${r.kind} status-${r.status}${r.late ? " late" : ""}`,
                        dataset: { request: r.request_id, status: r.status, late: r.late ? "1" : "0", open: open ? "1" : "0" } });
  li.append(el("div", { className: "head" },
    el("b", {}, labelOr(`req_${r.kind}`, r.kind)), ` · ${r.platform_name || "?"} (${r.platform}) · `,
    el("span", { className: "rstatus" }, labelOr(`dstatus_${r.status}`, r.status)), " ", lateTag(r.late)));
  if (r.kind === "supervision") {
    li.append(el("div", { className: "what" }, t("order_about", { plate: r.vehicle_id,
      level: t(r.level === 0 ? "level_urgent" : "level_normal"), who: r.supervisor })));
  } else if (r.text) {
    li.append(el("div", { className: "what" }, r.vehicle_id ? `${r.vehicle_id} · ${r.text}` : r.text));
  } else if (r.kind === "photo") {
    li.append(el("div", { className: "what" }, `${r.vehicle_id} · ${t("photo_camera", { camera: r.camera })}`));
  } else if (r.vehicle_id) {
    li.append(el("div", { className: "what" }, r.vehicle_id));
  }
  li.append(el("div", { className: "who" }, t("issued_by", { who: r.issued_by, when: when(r.issued_at, true) }),
    r.sent_at ? ` · ${t("sent_route", { route: t(`route_${r.route}`), when: when(r.sent_at, true) })}` : ""));
  const due = deadlineLine(r.deadline, open);
  if (due) li.append(due);
  for (const a of r.answers) {
    li.append(el("div", { className: "answer" }, t("answered_after", { when: when(a.at, true), took: duration(a.took_s) }),
      " ", lateTag(a.late), ": ", el("span", { className: "answer-text" }, downAnswerText(a))));
  }
  if (r.detail && ["failed", "expired"].includes(r.status)) li.append(el("div", { className: "detail" }, r.detail));
  const picture = r.answers.find((a) => a.media_id);
  if (picture) {
    li.append(el("a", { href: `/api/media/${encodeURIComponent(picture.media_id)}`, target: "_blank",
                        rel: "noopener", className: "photo" }, t("photo")));
  }
  return li;
}

// a result as its kind means it: an order's handling, a text's delivery, a photo's outcome
function resultLabel(result, kind = "supervision") {
  const prefix = { text: "tresult", photo: "presult" }[kind] || "result";
  return labelOr(`${prefix}_${result}`, String(result));
}

// a request of the national platform: its deadline, its answers, the form to answer it
function uplinkItem(r) {
  const open = r.status === "open";
  const li = el("li", { className: `request up kind-${r.kind} status-${r.status}${r.late ? " late" : ""}`,
                        dataset: { request: r.request_id, status: r.status, late: r.late ? "1" : "0", open: open ? "1" : "0" } });
  li.append(el("div", { className: "head" },
    el("b", {}, labelOr(`up_${r.kind}`, r.kind)), " · ", el("span", { className: "rstatus" }, t(`rstatus_${r.status}`)),
    ` · ${t("received_at", { when: when(r.received_at, true) })}`, " ", lateTag(r.late)));
  if (r.question) li.append(el("div", { className: "what question" }, r.question));
  if (r.kind === "text" || r.kind === "photo") li.append(el("div", { className: "what" }, r.plate || "–"));
  if (r.kind === "supervision" || r.kind === "notice") {
    const warn = r.warn_type === null || r.warn_type === undefined ? "?" : r.warn_type.toString(16).padStart(4, "0");
    li.append(el("div", { className: "what" }, t("up_order_about", { plate: r.plate || "–", warn, who: r.supervisor || "–",
      tel: r.tel || "", level: r.level === null || r.level === undefined ? "" : t(r.level === 0 ? "level_urgent" : "level_normal") })));
  }
  const due = deadlineLine(r.deadline, open);
  if (due) li.append(due);
  for (const a of r.answers) {
    const who = r.kind === "text" || r.kind === "photo" ? t("terminal") : a.answered_by;
    const answer = el("div", { className: "answer" }, t("answer_by", { who, when: when(a.answered_at, true) }), " ",
      lateTag(a.late), ": ",
      a.result !== null && a.result !== undefined ? el("b", {}, resultLabel(a.result, r.kind)) : null,
      a.content ? el("span", { className: "answer-text" }, (a.result !== null && a.result !== undefined ? " · " : "") + a.content) : null);
    if (a.media_id) {
      answer.append(" ", el("a", { href: `/api/media/${encodeURIComponent(a.media_id)}`, target: "_blank",
                                   rel: "noopener", className: "photo" }, t("photo")));
    }
    li.append(answer);
  }
  if (open && desk.me.jurisdiction === "region") li.append(uplinkForm(r));
  return li;
}

function uplinkForm(r) {
  const error = el("p", { className: "error", role: "alert" });
  const form = el("form", { className: "command-form answer-form" });
  if (r.kind === "inspection") {
    form.append(el("label", {}, el("span", {}, t("answer_content")),
      el("textarea", { name: "content", rows: 2, maxLength: 1000, required: true })));
  } else {
    const select = el("select", { name: "result" }, ...[0, 1, 2, 3].map((n) => el("option", { value: String(n) }, resultLabel(n, r.kind))));
    select.value = "1";
    form.append(el("label", { className: "inline" }, el("span", {}, t("result")), " ", select),
      el("label", {}, el("span", {}, t("remark_optional")), el("input", { name: "content", maxLength: 1000 })));
  }
  form.append(el("button", { type: "submit", className: "do-answer" }, t("answer_send")), error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await busy(form, async () => {
      const content = form.elements.content.value.trim();
      const body = r.kind === "inspection" ? { content }
        : { result: Number(form.elements.result.value), content: content || null };
      const response = await post(`/api/uplink/requests/${encodeURIComponent(r.request_id)}/answer`, body);
      const answer = await answerOf(response);
      if (!response.ok) {
        error.textContent = t("error", { why: answer.error });
        return;
      }
      upsertUplink(answer);
    });
  });
  return form;
}

function upsertUplink(r) {
  const items = desk.links.uplink || [];
  desk.links.uplink = [r, ...items.filter((x) => x.request_id !== r.request_id)]
    .sort((a, b) => (timeOf(b.received_at) || 0) - (timeOf(a.received_at) || 0));
  drawUplink();
}

function drawUplink() {
  const items = desk.links.uplink || [];
  const list = $("#uplink-list");
  // an answer being written is not thrown away by a refresh
  const typing = document.activeElement && list.contains(document.activeElement) ? document.activeElement.closest("li.request") : null;
  const nodes = items.map((r) => (typing && typing.dataset.request === r.request_id && r.status === "open" ? typing : uplinkItem(r)));
  list.replaceChildren(...(nodes.length ? nodes : [el("li", { className: "empty" }, t("nothing_upper"))]));
  showLinksBadge();
}

// the open requests of the national platform, on the Links button and in the title badge
function showLinksBadge() {
  const open = (desk.links.uplink || []).filter((r) => r.status === "open" && ANSWERED_KINDS.includes(r.kind));
  const badge = $("#links-badge");
  badge.hidden = !open.length;
  badge.textContent = String(open.length);
  badge.classList.toggle("late", open.some((r) => timeOf(r.deadline) !== null && timeOf(r.deadline) < Date.now()));
  desk.uplinkOpen = open.length;
  showBadge();
}

async function loadUplink() {
  if (!desk.me || desk.me.jurisdiction !== "region") return;
  const data = await getJSON("/api/uplink/requests");
  desk.links.uplink = data.items;
  drawUplink();
}

// a new request of the national platform: heard and seen as an alarm is
function uplinkArrived(r) {
  const fresh = !(desk.links.uplink || []).some((x) => x.request_id === r.request_id);
  upsertUplink(r);
  if (fresh && ANSWERED_KINDS.includes(r.kind)) {
    soundAlarm();
    const header = $("header");
    header.classList.remove("flash");
    void header.offsetWidth;
    header.classList.add("flash");
  }
}

desk.links = { uplink: null, down: null, mayInspect: new Set() };

desk.views.links = {
  data: null,
  polling: false,
  open() {
    this.load().catch(() => {});
    if (!this.polling) {   // one refresh loop, working only while the view shows
      this.polling = true;
      every("links", () => (this.shown() ? this.load() : null), 10000);
    }
  },
  shown() { return !$("#view-links").hidden; },
  async load() {
    await Promise.all([this.loadLinks(), this.loadDown(), loadUplink()]);
  },
  async loadLinks() {
    if (!await latest(this, "/api/links")) return;
    this.draw(this.data);
  },
  async loadDown() {
    const data = await getJSON(`/api/platform-requests?state=${encodeURIComponent($("#down-state").value)}`);
    desk.links.down = data.items;
    desk.links.mayInspect = new Set(data.platforms.map((p) => p.access_code));
    this.drawDown();
    if (this.data) this.draw(this.data);
  },
  draw(data) {
    $("#links-table tbody").replaceChildren(...data.links.map(linkRow));
    $("#uplink-section").hidden = desk.me.jurisdiction !== "region";
    this.drawDown();
    if (desk.links.uplink) drawUplink();
  },
  drawDown() {
    const items = desk.links.down || [];
    $("#down-list").replaceChildren(...(items.length ? items.map(downItem) : [el("li", { className: "empty" }, t("nothing_down"))]));
  },
};

$("#down-state").addEventListener("change", () => desk.views.links.loadDown().catch(() => {}));

// a request down moved on: its item (list, incident panel) follows
function platformRequestArrived(r) {
  if (!$("#view-links").hidden) soon("down", () => desk.views.links.loadDown(), 300);
  if (desk.incident && r.incident_id === desk.incident.incident_id) soon("orders", () => loadSupervision(r.incident_id), 300);
  if (desk.truck && r.vehicle_id === desk.truck.vehicle_id) soon("truck-platform", () => loadTruckPlatform(r.vehicle_id), 300);
}

// --- a text, a tip or a photo for a truck, through the lower platform it came from ------------

async function loadTruckPlatform(vehicleId) {
  const response = await api(`/api/trucks/${encodeURIComponent(vehicleId)}/platform-requests`);
  if (!desk.truck || desk.truck.vehicle_id !== vehicleId) return;
  const box = $("#d-platform");
  if (!response.ok) { box.hidden = true; return; }
  const plan = await response.json();
  box.hidden = !plan.platform && !plan.items.length;
  $("#d-platform-form").hidden = !plan.platform;
  if (plan.platform) {
    $("#d-platform-form .about").textContent = t("via_platform_about", { name: plan.platform.name, code: plan.platform.access_code });
  }
  $("#d-platform-requests").replaceChildren(...plan.items.map(downItem));
}

async function askTruckPlatform(body) {
  const form = $("#d-platform-form");
  const vehicleId = desk.truck.vehicle_id;
  return busy(form, async () => {
    const response = await post(`/api/trucks/${encodeURIComponent(vehicleId)}/platform-requests`, body);
    const answer = await answerOf(response);
    form.querySelector(".error").textContent = response.ok ? "" : t("error", { why: answer.error });
    if (response.ok) await loadTruckPlatform(vehicleId);
    return response.ok;
  });
}

$("#d-platform-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  if (await askTruckPlatform({ kind: "text", text: form.elements.text.value, urgent: form.elements.urgent.checked })) {
    form.elements.text.value = "";
  }
});
$("#d-platform-form .do-platform-tip").addEventListener("click", async () => {
  const form = $("#d-platform-form");
  if (await askTruckPlatform({ kind: "tip", text: form.elements.text.value })) form.elements.text.value = "";
});
$("#d-platform-form .do-platform-photo").addEventListener("click", () => askTruckPlatform({ kind: "photo" }));

// --- a supervision order from an incident, to the lower platform its truck came from --------

async function loadSupervision(incidentId) {
  const box = $("#i-supervision");
  const response = await api(`/api/incidents/${encodeURIComponent(incidentId)}/supervision`);
  if (!desk.incident || desk.incident.incident_id !== incidentId) return;
  if (!response.ok) { box.hidden = true; return; }
  const plan = await response.json();
  const form = $("#supervise-form");
  box.hidden = !plan.platform && !plan.orders.length;
  form.hidden = !plan.platform;
  form.dataset.incident = incidentId;
  if (plan.platform) {
    const vehicle = desk.incident.item ? desk.incident.item.vehicle_id : (desk.incident.record || {}).vehicle_id;
    form.querySelector(".about").textContent = t("supervise_about", { name: plan.platform.name, code: plan.platform.access_code, plate: vehicle });
    if (!form.elements.supervisor.value) form.elements.supervisor.value = desk.me.name.slice(0, 16);
  }
  $("#i-orders").replaceChildren(...plan.orders.map(downItem));
}

$("#supervise-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  await busy(form, async () => {
    const body = { deadline_min: Number(form.elements.deadline_min.value), level: form.elements.level.value,
                   supervisor: form.elements.supervisor.value.trim(), tel: form.elements.tel.value.trim() };
    const response = await post(`/api/incidents/${encodeURIComponent(form.dataset.incident)}/supervision`, body);
    const answer = await answerOf(response);
    form.querySelector(".error").textContent = response.ok ? "" : t("error", { why: answer.error });
    if (response.ok) await loadSupervision(form.dataset.incident);
  });
});

// --- the live feed, and refreshes ----------------------------------------------------------

// run fn after ms unless it is already due: a burst of events makes one request
function soon(name, fn, ms) {
  if (desk.timers[name]) return;
  desk.timers[name] = setTimeout(() => {
    desk.timers[name] = null;
    Promise.resolve(fn()).catch(() => {});
  }, ms);
}

function every(name, fn, ms) {
  const tick = () => {
    desk.timers[`every-${name}`] = setTimeout(async () => {
      await Promise.resolve(fn()).catch(() => {});
      tick();
    }, ms);
  };
  tick();
}

function connectFeed() {
  desk.feed = new EventSource("/api/feed");
  desk.feed.addEventListener("alert", (event) => {
    const alert = JSON.parse(event.data);
    soon("triage", loadTriage, alert.severity === "critical" ? 300 : 1500);
    soon("trucks", loadTrucks, 2000);
    if (desk.truck && alert.vehicle_id === desk.truck.vehicle_id) soon("truck", refreshTruck, 500);
  });
  desk.feed.addEventListener("command", (event) => commandArrived(JSON.parse(event.data)));
  desk.feed.addEventListener("uplink-request", (event) => uplinkArrived(JSON.parse(event.data)));
  desk.feed.addEventListener("uplink-answer", (event) => upsertUplink(JSON.parse(event.data)));
  desk.feed.addEventListener("platform-request", (event) => platformRequestArrived(JSON.parse(event.data)));
  desk.feed.addEventListener("incident", (event) => {
    const record = JSON.parse(event.data);
    if (desk.incident && desk.incident.incident_id === record.incident_id) {
      mergeIncident(record);
      if (record.emergency) soon("incident", () => loadIncident(record.incident_id), 500);
    }
    soon("triage", loadTriage, 500);
  });
}

async function start(me) {
  desk.me = me;
  $("#login").hidden = true;
  $("#desk").hidden = false;
  applyLabels();
  if (me.jurisdiction === "carrier") {  // a carrier's account: its own trucks (carrier.js)
    startCarrier();
    return;
  }
  $('#views button[data-view="accounts"]').hidden = !(me.may || []).includes("manage_users");
  desk.map = L.map("map", { preferCanvas: true, zoomSnap: 0.25, maxZoom: 18 }).setView([31.3, 119.8], 7);
  if (me.tile_url) L.tileLayer(me.tile_url, { maxZoom: 18 }).addTo(desk.map);
  desk.layers.trucks = L.layerGroup().addTo(desk.map);
  desk.map.on("zoomend moveend", () => drawTrucks());
  drawLegend();
  drawHomeButton();
  showView("triage");
  connectFeed();
  await drawLayers();
  await Promise.all([loadTrucks(), loadTriage(), loadResources()]);
  every("trucks", async () => { await loadTrucks(); await refreshTruck(); }, 5000);
  every("triage", loadTriage, 15000);
  every("user", checkUser, 15000);
  every("resources", loadResources, 60000);
  every("deadlines", tickDeadlines, 1000);
  every("clocks", tickClocks, 1000);
  await loadAppeals().catch(() => {});
  every("appeals", loadAppeals, 30000);
  if (me.jurisdiction === "region") {
    await loadUplink().catch(() => {});
    every("uplink", loadUplink, 30000);
  }
  document.body.dataset.ready = "1";
}

window.addEventListener("pageshow", (event) => { if (event.persisted) location.reload(); });

applyLabels();
(async () => {
  const response = await fetch("/api/me", { credentials: "same-origin" });
  if (response.ok) start(await response.json());
  else showLogin();
})();
