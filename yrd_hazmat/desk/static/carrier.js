// Appeals on the desk. A carrier's account (我的车辆): its trucks' open alerts with their
// clocks, 确认 / 说明 / 申诉, and its incidents of the last 7 days with their whole story
// (explanations, the appeal, the decision, escalations). The police (申诉待处理): the open
// appeals of the jurisdiction, each accepted or rejected with a reason; an incident's panel
// shows its appeal and, open, the same decision form. Words: labels.js; helpers: desk.js.
"use strict";

// a button opening a one-line form under it: the text of an explanation, an appeal, a decision
function textAction(incidentId, kind, labelKey, placeholderKey, className) {
  const box = el("span", { className: "text-action" });
  const form = el("form", { className: `action-form ${kind}-form`, hidden: true });
  const input = el("input", { name: "text", maxLength: 2000, required: true, placeholder: t(placeholderKey) });
  const error = el("span", { className: "error", role: "alert" });
  form.append(input, el("button", { type: "submit", className: `do-${kind}-send` }, t("send")), error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (await act(incidentId, { kind, text: input.value }, error)) {
      input.value = "";
      input.blur();  // the lists redraw once nobody is typing in them
      form.hidden = true;
    }
  });
  box.append(button(t(labelKey), className, () => { form.hidden = !form.hidden; if (!form.hidden) input.focus(); }), form);
  return box;
}

// the police's decision on an open appeal: one reason, accept or reject
function decisionForm(incidentId) {
  const form = el("form", { className: "action-form decision-form" });
  const input = el("input", { name: "text", maxLength: 2000, required: true, placeholder: t("decision_reason") });
  const error = el("span", { className: "error", role: "alert" });
  const decide = (kind) => async () => {
    if (!form.reportValidity()) return;
    if (await act(incidentId, { kind, text: input.value }, error)) {
      input.value = "";
      if (document.activeElement) document.activeElement.blur();
    }
  };
  form.addEventListener("submit", (event) => event.preventDefault());
  form.append(input, button(t("accept_appeal"), "do-accept", decide("appeal_accepted")),
              button(t("reject_appeal"), "do-reject", decide("appeal_rejected")), error);
  return form;
}

function appealChip(state) {
  return state ? el("span", { className: `tag appeal-tag appeal-${state}` }, t(`appeal_${state}`)) : null;
}

// what was explained, appealed, decided and escalated, by whom and when
function storyLines(record) {
  const lines = [...(record.escalations || []).map((e) => ({ kind: "escalate", ...e })),
                 ...(record.appeal_story || [])];
  lines.sort((a, b) => timeOf(a.at) - timeOf(b.at));
  return el("ol", { className: "log story" }, ...lines.map(logItem));
}

// the incident panel's part: the appeal's state, and the decision form while it is open
function appealBox(record) {
  if (!record || (!record.appeal && !record.level)) return [];
  const out = [el("div", { className: "appeal-state" }, appealChip(record.appeal), " ",
    record.level ? el("span", { className: `tag level-tag level-${record.level}` }, t("escalated_to", { level: t(`level_${record.level}`) })) : null)];
  if (record.appeal === "open" && (desk.me.may || []).includes("decide_appeal")) out.push(decisionForm(record.incident_id));
  return out;
}

function head(severity, type, details, vehicle, ts) {
  return [el("div", { className: "head" },
    el("span", { className: `sev sev-${severity}` }, t(`sev_${severity || "info"}`)), " ",
    el("b", { className: "what" }, alertLabel(type, details || {}))),
    el("div", { className: "where" }, el("span", { className: "plate" }, vehicle), " · ",
      el("time", {}, when(ts)), ` (${ago(ts)})`)];
}

function carrierAlertItem(a) {
  const record = a.incident_log;
  const acknowledged = !!a.acknowledged_at;
  const li = el("li", { className: `item sev-${a.severity}`, dataset: { incident: a.incident_id, vehicle: a.vehicle_id } },
    ...head(a.severity, a.type, a.details, a.vehicle_id, a.ts), clockLine(a) || "");
  const buttons = el("div", { className: "buttons" });
  const error = el("span", { className: "error", role: "alert" });
  if (!acknowledged) buttons.append(button(t("ack"), "do-ack", () => act(a.incident_id, { kind: "ack" }, error)));
  buttons.append(textAction(a.incident_id, "explain", "explain", "explain_text", "do-explain"));
  if (!record || !record.appeal) buttons.append(textAction(a.incident_id, "appeal", "appeal", "appeal_reason", "do-appeal"));
  li.append(buttons, error);
  if (record) li.append(el("div", { className: "acts" }, appealChip(record.appeal)));
  return li;
}

function carrierIncidentItem(r) {
  const li = el("li", { className: `item sev-${r.severity || "info"}`, dataset: { incident: r.incident_id, vehicle: r.vehicle_id } },
    ...head(r.severity, r.alert_type, { subject: r.subject }, r.vehicle_id, r.raised_at),
    el("div", { className: "acts" }, appealChip(r.appeal)), storyLines(r));
  const buttons = el("div", { className: "buttons" },
    textAction(r.incident_id, "explain", "explain", "explain_text", "do-explain"));
  if (!r.appeal) buttons.append(textAction(r.incident_id, "appeal", "appeal", "appeal_reason", "do-appeal"));
  li.append(buttons);
  return li;
}

desk.views.carrier = {
  open() { this.load().catch(() => {}); },
  async load() {
    const [open, recent] = await Promise.all([getJSON("/api/alerts/open"), getJSON("/api/incidents?view=recent")]);
    this.data = { open, recent };
    this.draw(this.data);
  },
  draw({ open, recent }) {
    const typing = document.activeElement && document.activeElement.closest("#view-carrier form");
    if (typing) return;  // not under someone's fingers: the next refresh draws it
    $("#carrier-open").replaceChildren(...(open.length ? open.map(carrierAlertItem) : [el("li", { className: "empty" }, t("nothing_open"))]));
    $("#carrier-incidents").replaceChildren(...(recent.length ? recent.map(carrierIncidentItem) : [el("li", { className: "empty" }, t("no_incidents"))]));
  },
};

function startCarrier() {
  const views = ["carrier", "notifications", "assessment"];
  for (const b of document.querySelectorAll("#views button")) b.hidden = !views.includes(b.dataset.view);
  for (const id of ["#map", "#triage-section", "#counts", "#search"]) $(id).hidden = true;
  document.body.classList.add("carrier-desk");
  showView("carrier");
  desk.feed = new EventSource("/api/feed");
  const reload = () => soon("carrier", () => desk.views.carrier.load(), 500);
  desk.feed.addEventListener("alert", reload);
  desk.feed.addEventListener("incident", reload);
  every("carrier", () => desk.views.carrier.load(), 15000);
  every("clocks", tickClocks, 1000);
  every("user", checkUser, 15000);
  document.body.dataset.ready = "1";
}

// --- the police: the open appeals --------------------------------------------------------------

async function loadAppeals() {
  const items = await getJSON("/api/incidents?view=appeals");
  desk.appeals = items;
  const badge = $("#appeals-badge");
  badge.hidden = !items.length;
  badge.textContent = String(items.length);
  if (!$("#view-appeals").hidden) desk.views.appeals.draw(items);
}

function appealItem(r) {
  const appeal = (r.appeal_story || []).filter((s) => s.kind === "appeal").pop();
  return el("li", { className: `item sev-${r.severity || "info"}`, dataset: { incident: r.incident_id, vehicle: r.vehicle_id } },
    ...head(r.severity, r.alert_type, { subject: r.subject }, r.vehicle_id, r.raised_at),
    appeal ? el("div", { className: "appeal-text" }, t("appealed_by", { who: appeal.by, when: when(appeal.at, true), text: appeal.text })) : null,
    storyLines(r), decisionForm(r.incident_id));
}

desk.views.appeals = {
  open() { loadAppeals().catch(() => {}); },
  draw(items) {
    const typing = document.activeElement && document.activeElement.closest("#appeals-list form");
    if (typing) return;
    $("#appeals-list").replaceChildren(...(items.length ? items.map(appealItem) : [el("li", { className: "empty" }, t("no_appeals"))]));
  },
};
