// The police desk page: trucks, zones and outlines on a map drawn from the desk's own
// data (no tiles, no CDN), open alerts with their handling, commands to trucks, and the
// live feed.
"use strict";

const COLOURS = { critical: "#c0392b", warning: "#e67e22", info: "#2e86c1" };
const state = { map: null, trucks: null, feed: null, selection: null, scene: null, resources: {},
                vehicle: null };
const JSON_HEADERS = { "Content-Type": "application/json" };

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  if (response.status === 401 && path !== "/api/login") { showLogin(); throw new Error("signed out"); }
  return response;
}

function showLogin(message = "") {
  document.getElementById("desk").hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("login-error").textContent = message;
}

document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const response = await api("/api/login", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: form.get("name"), password: form.get("password") }),
  });
  if (response.ok) start(await response.json());
  else showLogin("Wrong name or password.");
});

document.getElementById("logout").addEventListener("click", async () => {
  await api("/api/logout", { method: "POST" });
  if (state.feed) state.feed.close();
  showLogin();
});

function text(value) { return value === null || value === undefined ? "" : String(value); }
// "2026-11-29T16:33:23+08:00" -> "11-29 16:33:23" (times are China time, as sent)
function when(ts) { return ts ? ts.replace("T", " ").slice(5, 19) : ""; }

function alertItem(alert) {
  const li = document.createElement("li");
  li.className = `alert ${alert.severity}`;
  li.dataset.incident = alert.incident_id;
  li.innerHTML = `<b></b> <span class="what"></span><br><small></small><div class="acts"></div>`;
  li.querySelector("b").textContent = `${alert.type} ${alert.state}`;
  li.querySelector(".what").textContent = `${alert.vehicle_id} · ${text(alert.province)} ${alert.city ? alert.city.name : ""}`;
  li.querySelector("small").textContent = alert.ts;
  return li;
}

function describeLog(log) {
  if (!log || !log.actions.length) return "";
  return log.actions.map((a) => `${a.kind} by ${a.by}${a.assignee ? " → " + a.assignee : ""}${a.text ? ": " + a.text : ""}`).join(" · ");
}

function actionButtons(li, incidentId) {
  const labels = { ack: "Acknowledge", assign: "Assign", note: "Note" };
  for (const kind of ["ack", "assign", "note"]) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = labels[kind];
    button.className = `do-${kind}`;
    button.addEventListener("click", async () => {
      const note = kind === "note" ? prompt("Note") : null;
      const assignee = kind === "assign" ? prompt("Assign to") : null;
      if ((kind === "note" && !note) || (kind === "assign" && !assignee)) return;
      const response = await api(`/api/incidents/${incidentId}/actions`, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ kind, text: note, assignee }),
      });
      if (response.ok) showLog(await response.json());
    });
    li.appendChild(button);
  }
}

function showLog(log) {
  for (const li of document.querySelectorAll(`li[data-incident="${log.incident_id}"] .acts`)) {
    li.textContent = describeLog(log);
  }
}

async function loadOpen() {
  const list = document.getElementById("open");
  list.replaceChildren();
  for (const alert of await (await api("/api/alerts/open")).json()) {
    const li = alertItem(alert);
    li.querySelector(".acts").textContent = describeLog(alert.incident_log);
    actionButtons(li, alert.incident_id);
    list.appendChild(li);
  }
}

// --- emergencies: responders proposed, dispatch / arrive / release / close -------------

async function act(incidentId, body) {
  const response = await api(`/api/incidents/${incidentId}/actions`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  if (!response.ok) alert(`${body.kind}: ${(await response.json()).error}`);
  await loadEmergencies();
}

function button(label, className, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.className = className;
  b.addEventListener("click", onClick);
  return b;
}

function line(textContent, className = "") {
  const div = document.createElement("div");
  div.className = className;
  div.textContent = textContent;
  return div;
}

function emergencyItem(r) {
  const li = document.createElement("li");
  li.className = "alert critical emergency";
  li.dataset.emergency = r.incident_id;
  const exposure = r.exposure || {};
  const trucks = exposure.trucks;
  li.append(
    line(`${r.alert_type} ${text(r.subject)} · ${r.vehicle_id} · ${text(r.province || "outside → " + r.responders_province)}`, "head"),
    line(`raised ${when(r.raised_at)}${r.cleared_at ? " · alarm cleared" : ""}`),
    line(`cargo ${text(r.cargo_name) || "unknown"} ${text(r.un_number)} class ${text(r.hazard_class) || "?"} · isolate ${text(r.isolation_distance_m)} m`),
    line(`exposed: ${(exposure.zones || []).map((z) => `${z.zone_name} (${z.zone_kind}, ${z.distance_m} m)`).join(", ") || "no zone"}; ` +
         (trucks === null || trucks === undefined ? `trucks unknown (${text(exposure.trucks_unknown)})`
           : `${trucks.length} truck(s)${trucks.length ? ": " + trucks.map((t) => `${t.vehicle_id} ${t.distance_m} m`).join(", ") : ""}`), "exposure"),
  );
  const sent = new Set(r.responses.filter((x) => !x.released_at).map((x) => x.resource_id));
  const proposed = document.createElement("ol");
  proposed.className = "responders";
  for (const p of r.responders) {
    const item = document.createElement("li");
    item.dataset.resource = p.resource_id;
    item.textContent = `${p.name} (${p.province}) ${p.distance_km} km, ${p.eta_min} min${p.crosses_border ? " · cross-border" : ""} `;
    if (!sent.has(p.resource_id)) {
      item.append(button("Dispatch", "do-dispatch", () => act(r.incident_id, { kind: "dispatch", resource_id: p.resource_id })));
    }
    proposed.append(item);
  }
  li.append(proposed);
  const responses = document.createElement("ol");
  responses.className = "responses";
  for (const x of r.responses) {
    const item = document.createElement("li");
    item.dataset.resource = x.resource_id;
    item.textContent = `${x.name} (${x.province}${x.crosses_border ? ", cross-border" : ""}) dispatched ${when(x.dispatched_at)}` +
      (x.arrived_at ? ` · arrived ${when(x.arrived_at)}` : "") + (x.released_at ? ` · released ${when(x.released_at)}` : " ");
    if (!x.released_at) {
      if (!x.arrived_at) item.append(button("Arrived", "do-arrive", () => act(r.incident_id, { kind: "arrive", resource_id: x.resource_id })));
      item.append(button("Release", "do-release", () => act(r.incident_id, { kind: "release", resource_id: x.resource_id })));
    }
    responses.append(item);
  }
  li.append(responses);
  const told = document.createElement("ol");
  told.className = "commands told";
  told.append(...(r.commands || []).map(commandItem));
  li.append(told);
  li.append(button("Show", "do-show", () => showScene(r)));
  if (trucks && trucks.length) li.append(button("Tell them all", "do-tell", () => openTell(r)));
  li.append(button("Close incident", "do-close", () => {
    const why = prompt("Closing remark");
    if (why !== null) act(r.incident_id, { kind: "close", text: why || null });
  }));
  return li;
}

// --- commands to trucks: a text, a position, a photo; each listed with what became of it --

const KINDS = { position_query: "position request", alarm_confirm: "alarm confirmation" };

function commandWhat(c) {
  if (c.kind === "text") {
    return `text “${c.text}”${c.tts ? " · read aloud" : ""}${c.emergency ? " · emergency" : ""}`;
  }
  return c.kind === "photo" ? `photo request (camera ${c.camera})` : KINDS[c.kind] || c.kind;
}

function positionText(p) {
  if (!p.fix_valid) return `no satellite fix (${when(p.ts)})`;
  return `at ${p.lat.toFixed(5)}, ${p.lon.toFixed(5)} · ${when(p.ts)} · ${text(p.speed_kmh)} km/h`;
}

function commandItem(c) {
  const li = document.createElement("li");
  li.className = `command ${c.status}`;
  li.dataset.command = c.command_id;
  li.dataset.status = c.status;
  const status = document.createElement("b");
  status.className = "status";
  status.textContent = c.status === "waiting" ? `waiting for the truck until ${when(c.expires_at)}` : c.status;
  li.append(status, line(commandWhat(c), "what"),
            line(`${c.vehicle_id} · by ${c.issued_by} at ${when(c.issued_at)}`, "who"));
  if (c.steps.length) {
    li.append(line(c.steps.map((s) => `${s.status} ${when(s.at).slice(6)}${s.gateway ? ` (${s.gateway})` : ""}`)
                     .join(" → "), "steps"));
  }
  const last = c.steps[c.steps.length - 1];
  if (last && last.detail && !["claimed", "sent"].includes(last.status)) li.append(line(last.detail, "detail"));
  if (last && last.position) li.append(line(positionText(last.position), "position"));
  if (last && last.media_id) {
    const link = document.createElement("a");
    link.href = `/api/media/${encodeURIComponent(last.media_id)}`;
    link.target = "_blank";
    link.rel = "noopener";
    link.className = "photo";
    link.textContent = "photo";
    li.append(link);
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

async function answerOf(response) {
  return response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
}

// a form's buttons are off while its request runs: one click, one command
async function busy(form, work) {
  const buttons = [...form.querySelectorAll("button")];
  for (const b of buttons) b.disabled = true;
  try { return await work(); } finally { for (const b of buttons) b.disabled = false; }
}

async function loadCommands(vehicleId) {
  const response = await api(`/api/trucks/${encodeURIComponent(vehicleId)}/commands`);
  if (!response.ok || state.vehicle !== vehicleId) return;
  document.getElementById("d-commands").replaceChildren(...(await response.json()).map(commandItem));
}

async function sendCommand(body) {
  const form = document.getElementById("d-message");
  const vehicleId = state.vehicle;
  return busy(form, async () => {
    const response = await api(`/api/trucks/${encodeURIComponent(vehicleId)}/commands`, {
      method: "POST", headers: JSON_HEADERS, body: JSON.stringify(body),
    });
    const answer = await answerOf(response);
    form.querySelector(".error").textContent = response.ok ? "" : answer.error;
    if (response.ok && state.vehicle === vehicleId) upsertCommand(document.getElementById("d-commands"), answer);
    return response.ok;
  });
}

document.getElementById("d-message").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const data = new FormData(form);
  const sent = await sendCommand({ kind: "text", text: data.get("text"), tts: data.get("tts") === "on",
                                   emergency: data.get("emergency") === "on" });
  if (sent) form.elements.text.value = "";
});
document.querySelector("#d-message .do-position").addEventListener("click", () => sendCommand({ kind: "position_query" }));
document.querySelector("#d-message .do-photo").addEventListener("click", () => sendCommand({ kind: "photo" }));

// "tell them all": one warning to every exposed truck of the jurisdiction, from a form
// the server fills with its default text
async function openTell(r) {
  const response = await api(`/api/incidents/${encodeURIComponent(r.incident_id)}/tell-exposed`);
  if (!response.ok) return;
  const plan = await response.json();
  const names = (trucks) => trucks.map((t) => `${t.vehicle_id} (${text(t.distance_m)} m)`).join(", ");
  const yours = plan.trucks.filter((t) => t.yours);
  const others = plan.trucks.filter((t) => !t.yours);
  const form = document.getElementById("tell");
  form.dataset.incident = r.incident_id;
  form.querySelector(".about").textContent =
    `Warn the trucks exposed to ${r.alert_type} ${text(r.subject)} · ${r.vehicle_id}: ${names(yours) || "none of yours"}` +
    (others.length ? `; outside your jurisdiction, not told: ${names(others)}` : "");
  form.elements.text.value = plan.text;
  form.querySelector(".error").textContent = "";
  form.hidden = false;
  form.elements.text.focus();
}

document.getElementById("tell").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  await busy(form, async () => {
    const response = await api(`/api/incidents/${encodeURIComponent(form.dataset.incident)}/tell-exposed`, {
      method: "POST", headers: JSON_HEADERS, body: JSON.stringify({ text: form.elements.text.value }),
    });
    if (!response.ok) {
      form.querySelector(".error").textContent = (await answerOf(response)).error;
      return;
    }
    form.hidden = true;
    await loadEmergencies();
  });
});
document.querySelector("#tell .do-tell-cancel").addEventListener("click", () => {
  document.getElementById("tell").hidden = true;
});

function commandArrived(c) {
  if (c.vehicle_id === state.vehicle) upsertCommand(document.getElementById("d-commands"), c);
  if (!c.incident_id) return;
  for (const li of document.querySelectorAll("#emergencies li.emergency")) {
    if (li.dataset.emergency === c.incident_id) upsertCommand(li.querySelector("ol.told"), c);
  }
}

function showScene(r) {
  if (state.scene) state.scene.remove();
  state.scene = L.layerGroup().addTo(state.map);
  L.circle([r.lat, r.lon], { radius: r.isolation_distance_m || 100, color: "#c0392b" }).addTo(state.scene);
  for (const p of r.responders) {
    const resource = state.resources[p.resource_id];
    if (!resource) continue;
    L.polyline([[resource.lat, resource.lon], [r.lat, r.lon]], { color: p.crosses_border ? "#8e44ad" : "#27ae60", weight: 1, dashArray: "4" })
      .bindTooltip(`${p.name}: ${p.eta_min} min`).addTo(state.scene);
  }
  state.map.setView([r.lat, r.lon], 10);
}

async function loadEmergencies() {
  const [records, resources] = await Promise.all([
    (await api("/api/incidents")).json(), (await api("/api/resources")).json()]);
  state.resources = Object.fromEntries(resources.map((x) => [x.resource_id, x]));
  document.getElementById("emergencies").replaceChildren(...records.map(emergencyItem));
}

async function loadTrucks() {
  const trucks = await (await api("/api/trucks")).json();
  state.trucks.clearLayers();
  for (const t of trucks) {
    const colour = COLOURS[t.worst] || "#27ae60";
    const arrow = t.heading === null ? "●" : "▲";
    const icon = L.divIcon({
      className: "truck", iconSize: [18, 18],
      html: `<span data-vehicle="${t.vehicle_id}" title="${t.vehicle_id}" ` +
            `style="color:${colour};transform:rotate(${t.heading || 0}deg)">${arrow}</span>`,
    });
    const marker = L.marker([t.lat, t.lon], { icon, keyboard: false });
    marker.on("click", () => showTruck(t.vehicle_id).catch(() => {}));
    marker.addTo(state.trucks);
  }
  document.getElementById("counts").textContent = `${trucks.length} trucks`;
  document.body.dataset.trucks = trucks.map((t) => t.vehicle_id).join(",");
}

async function showTruck(vehicleId) {
  const response = await api(`/api/trucks/${encodeURIComponent(vehicleId)}`);
  if (!response.ok) return;
  const truck = await response.json();
  if (state.selection) state.selection.remove();
  state.selection = L.layerGroup().addTo(state.map);
  const permit = truck.permit;
  if (permit && permit.route) {
    L.geoJSON(permit.route, { style: { color: "#8e44ad", weight: 10, opacity: 0.2 } }).addTo(state.selection);
    L.geoJSON(permit.route, { style: { color: "#8e44ad", weight: 2, dashArray: "6" } }).addTo(state.selection);
  }
  const points = truck.track.map((p) => [p.lat, p.lon]);
  if (points.length) L.polyline(points, { color: "#2c3e50", weight: 3 }).addTo(state.selection);
  const latest = truck.latest;
  document.getElementById("details").hidden = false;
  document.getElementById("d-vehicle").textContent = truck.vehicle_id;
  document.getElementById("d-latest").textContent =
    `${latest.ts} · ${latest.speed_kmh} km/h · ${text(latest.city_name)}` +
    (latest.heading ? ` · heading ${latest.heading}°` : "");
  document.getElementById("d-permit").textContent = permit
    ? `Permit ${permit.permit_id}: ${permit.cargo_name}, ${permit.un_number} (class ${permit.hazard_class}), ` +
      `${text(permit.quantity_kg)} kg, ${permit.origin} → ${permit.destination}, corridor ${permit.corridor_m} m`
    : "No permit on record.";
  document.getElementById("d-track").textContent = `Last hour: ${truck.track.length} positions.`;
  const list = document.getElementById("d-alerts");
  list.replaceChildren(...truck.open_alerts.map(alertItem));
  if (state.vehicle !== truck.vehicle_id) {
    state.vehicle = truck.vehicle_id;
    document.getElementById("d-commands").replaceChildren();
    document.querySelector("#d-message .error").textContent = "";
  }
  await loadCommands(truck.vehicle_id);
  document.body.dataset.selected = truck.vehicle_id;
}

function connectFeed() {
  if (state.feed) state.feed.close();
  const query = new URLSearchParams();
  for (const [id, key] of [["f-province", "province"], ["f-type", "type"],
                           ["f-severity", "severity"], ["f-city", "city"]]) {
    const value = document.getElementById(id).value.trim();
    if (value) query.set(key, value);
  }
  state.feed = new EventSource(`/api/feed?${query}`);
  state.feed.addEventListener("alert", (event) => {
    const alert = JSON.parse(event.data);
    const list = document.getElementById("feed");
    const li = alertItem(alert);
    if (alert.state === "raised") actionButtons(li, alert.incident_id);
    list.prepend(li);
    while (list.children.length > 200) list.lastChild.remove();
    clearTimeout(state.refresh);  // the open list and the trucks' colours follow the feed
    state.refresh = setTimeout(() => { loadOpen().catch(() => {}); loadTrucks().catch(() => {}); }, 2000);
  });
  state.feed.addEventListener("command", (event) => commandArrived(JSON.parse(event.data)));
  state.feed.addEventListener("incident", (event) => {
    const log = JSON.parse(event.data);
    showLog(log);
    if (log.emergency) loadEmergencies().catch(() => {});
  });
}

async function drawLayers() {
  const provinces = await (await api("/api/geo/provinces")).json();
  const outline = L.geoJSON(provinces, { style: { color: "#1d2b3a", weight: 2, fill: false } }).addTo(state.map);
  L.geoJSON(await (await api("/api/geo/cities")).json(),
            { style: { color: "#8895a7", weight: 0.6, fill: false } }).addTo(state.map);
  L.geoJSON(await (await api("/api/zones")).json(), {
    style: (f) => ({ color: f.properties.banned_now ? "#c0392b" : "#7f8c8d", weight: 1,
                     fillOpacity: f.properties.banned_now ? 0.25 : 0.08,
                     dashArray: f.properties.banned_now ? null : "4" }),
    onEachFeature: (f, layer) => layer.bindTooltip(
      `${f.properties.name} (${f.properties.kind})${f.properties.banned_now ? " · ban in force" : ""}`),
  }).addTo(state.map);
  state.map.fitBounds(outline.getBounds());
}

async function start(me) {
  document.getElementById("login").hidden = true;
  document.getElementById("desk").hidden = false;
  document.getElementById("who").textContent = `${me.name} · ${me.jurisdiction}`;
  if (!state.map) {
    state.map = L.map("map", { preferCanvas: true, zoomSnap: 0.25 }).setView([31.3, 119.8], 7);
    if (me.tile_url) L.tileLayer(me.tile_url, { maxZoom: 18 }).addTo(state.map);
    state.trucks = L.layerGroup().addTo(state.map);
    await drawLayers();
    for (const id of ["f-province", "f-type", "f-severity", "f-city"]) {
      document.getElementById(id).addEventListener("change", connectFeed);
    }
    setInterval(() => { loadTrucks().catch(() => {}); }, 5000);
    setInterval(() => { loadOpen().catch(() => {}); loadEmergencies().catch(() => {}); }, 15000);
  }
  connectFeed();
  await Promise.all([loadTrucks(), loadOpen(), loadEmergencies()]);
}

(async () => {
  const response = await fetch("/api/me", { credentials: "same-origin" });
  if (response.ok) start(await response.json());
  else showLogin();
})();
