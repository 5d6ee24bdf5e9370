// 通知: the latest deliveries of the user's jurisdiction (sent, retrying, given up, held for
// a digest, in a digest) and the subscriptions the user manages, channels masked by the
// server. The form makes or replaces a robot or webhook subscription scoped to the user's
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
  form.elements.severities.value = s.severities.join(",");
  form.elements.name.focus();
}

async function deleteSubscription(id) {
  const response = await api(`/api/subscriptions/${encodeURIComponent(id)}`, { method: "DELETE" });
  const error = $("#subscription-form .error");
  error.textContent = response.ok ? "" : t("error", { why: (await answerOf(response)).error });
  await desk.views.notifications.load();
}

$("#subscription-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const id = form.elements.subscription_id.value.trim();
  const before = desk.editing && desk.editing.subscription_id === id ? desk.editing : null;
  const kind = form.elements.kind.value;
  const secret = form.elements.secret.value.trim();
  const kept = before && before.channel.kind === kind ? before.channel : { kind };
  const channel = { ...kept, kind, url: form.elements.url.value.trim() };
  if (secret && secret !== "****") channel.secret = secret;
  else if (before && before.channel.kind === kind) channel.secret = before.channel.secret;  // kept
  else delete channel.secret;
  if (kind === "wecom") delete channel.secret;
  const severities = form.elements.severities.value.split(",").map((x) => x.trim()).filter(Boolean);
  const body = { ...(before || {}), ...subscriptionScope(), name: form.elements.name.value.trim(), channel, severities };
  delete body.owner;
  await busy(form, async () => {
    const response = await api(`/api/subscriptions/${encodeURIComponent(id)}`, {
      method: "PUT", headers: JSON_HEADERS, body: JSON.stringify(body) });
    const answer = await answerOf(response);
    form.querySelector(".error").textContent = response.ok ? "" : t("error", { why: answer.error });
    if (response.ok) {
      form.reset();
      desk.editing = null;
      await desk.views.notifications.load();
    }
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
