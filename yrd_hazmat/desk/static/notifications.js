// 通知: the latest deliveries of the user's jurisdiction (sent, retrying, given up, held for
// a digest, in a digest) and the subscriptions the user manages, channels masked by the
// server. The form makes or replaces a subscription of any channel (robot, webhook, SMS, e-mail) scoped to the user's
// province or carrier; a secret left empty (or ****) keeps the stored one. Words: labels.js.
"use strict";

function subscriptionScope() {
  const me = desk.me;
  if (me.jurisdiction === "carrier") return { carriers: [me.carrier] };
  if (me.jurisdiction === "region") return {};
  return { provinces: [me.jurisdiction] };
}

function deliveryRow(d) {
  return el("tr", { dataset: { delivery: d.delivery_id, state: d.state } },
    cell(when(d.sent_at || d.updated_at, true)),
    cell(labelOr(`delivery_state_${d.state}`, d.state), `delivery-${d.state}`),
    cell(d.channel), cell(text(d.subject)), cell(String(d.attempts)), cell(text(d.reason)));
}

function subscriptionItem(s) {
  const what = [s.provinces.length ? s.provinces.join(",") : "", s.carriers.join(","),
                s.severities.map((x) => t(`sev_${x}`)).join(","), s.events.join(",")].filter(Boolean).join(" · ");
  return el("li", { className: "request", dataset: { subscription: s.subscription_id } },
    el("div", { className: "head" }, el("b", {}, s.name), ` (${s.subscription_id}) · ${s.channel.kind}`,
      s.enabled ? "" : " · off"),
    el("div", {}, text(s.channel.url || (s.channel.to || []).join(", ")), " · ", what),
    el("div", { className: "buttons" },
      button(t("edit"), "do-edit", () => editSubscription(s)),
      button(t("delete"), "do-delete", () => deleteSubscription(s.subscription_id))));
}

function editSubscription(s) {
  const form = $("#subscription-form");
  desk.editing = s;
  form.elements.subscription_id.value = s.subscription_id;
  form.elements.name.value = s.name;
  form.elements.kind.value = s.channel.kind;
  form.elements.url.value = s.channel.url || "";
  form.elements.secret.value = "";
  form.elements.recipients.value = (s.channel.to || s.channel.phones || []).join(",");
  form.elements.sms_body.value = s.channel.kind === "sms" ? s.channel.body || "" : "";
  form.elements.severities.value = s.severities.join(",");
  form.elements.events.value = s.events.join(",");
  form.elements.name.focus();
}

async function deleteSubscription(id) {
  const response = await api(`/api/subscriptions/${encodeURIComponent(id)}`, { method: "DELETE" });
  const error = $("#subscription-form .error");
  error.textContent = response.ok ? "" : t("error", { why: (await answerOf(response)).error });
  await desk.views.notifications.load();
}

// the channel a form describes: a robot or webhook its URL (and secret); an SMS gateway its
// URL, the phones and the body's template; an e-mail its addresses
function channelOf(kind, kept, form, recipients) {
  if (kind === "email") return { kind, to: recipients };
  const channel = { ...kept, kind, url: form.elements.url.value.trim() };
  if (kind === "sms") {
    channel.phones = recipients;
    channel.body = form.elements.sms_body.value.trim() || kept.body || '{"mobile": "{phone}", "content": "{text}"}';
  }
  return channel;
}

$("#subscription-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const id = form.elements.subscription_id.value.trim();
  const before = desk.editing && desk.editing.subscription_id === id ? desk.editing : null;
  const kind = form.elements.kind.value;
  const secret = form.elements.secret.value.trim();
  const kept = before && before.channel.kind === kind ? before.channel : { kind };
  const list = (name) => form.elements[name].value.split(",").map((x) => x.trim()).filter(Boolean);
  const channel = channelOf(kind, kept, form, list("recipients"));
  if (secret && secret !== "****") channel.secret = secret;
  else if (before && before.channel.kind === kind) channel.secret = before.channel.secret;  // kept
  else delete channel.secret;
  if (["wecom", "sms", "email"].includes(kind)) delete channel.secret;
  const severities = list("severities");
  const events = list("events");
  const body = { ...(before || {}), ...subscriptionScope(), name: form.elements.name.value.trim(), channel, severities,
                 events: events.length ? events : ["raised"] };
  delete body.owner;
  await submitForm(form, "PUT", `/api/subscriptions/${encodeURIComponent(id)}`, body, () => {
    desk.editing = null;
    return desk.views.notifications.load();
  });
});

desk.views.notifications = {
  open() {
    const scope = subscriptionScope();
    $("#subscription-form .about").textContent = t("subscription_scope", {
      scope: scope.carriers ? scope.carriers[0] : scope.provinces ? provinceLabel(scope.provinces[0]) : t("region") });
    this.load().catch(() => {});
  },
  async load() {
    const [deliveries, subscriptions] = await Promise.all([getJSON("/api/notifications"), getJSON("/api/subscriptions")]);
    this.data = { deliveries: deliveries.items, subscriptions: subscriptions.items };
    this.draw(this.data);
  },
  draw({ deliveries, subscriptions }) {
    $("#deliveries-table tbody").replaceChildren(...(deliveries.length ? deliveries.map(deliveryRow)
      : [el("tr", {}, el("td", { colSpan: 6, className: "empty" }, t("no_deliveries")))]));
    $("#subscriptions-list").replaceChildren(...(subscriptions.length ? subscriptions.map(subscriptionItem)
      : [el("li", { className: "empty" }, t("no_subscriptions"))]));
  },
};
