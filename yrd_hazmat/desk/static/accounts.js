// 用户管理: the region's administrators (manage_users) list the desk's accounts and make,
// change, disable or remove them; a password is set here only (never shown back). Words:
// labels.js. The server refuses what the role may not do (its table: access.py).
"use strict";

function accountScope(a) {
  if (a.role === "carrier") return a.carrier;
  return a.province ? provinceLabel(a.province) : t("region");
}

function accountRow(a) {
  return el("tr", { dataset: { account: a.name } },
    cell(a.name), cell(t(`role_${a.role}`)), cell(accountScope(a)),
    cell(a.disabled ? t("account_disabled") : t("account_enabled"), a.disabled ? "account-off" : ""),
    cell(text(a.updated_by)), cell(a.updated_at ? when(a.updated_at, true) : ""),
    cell(el("span", {}, button(t("edit"), "do-edit", () => editAccount(a)),
      a.name === desk.me.name ? "" : button(t("delete"), "do-delete", () => deleteAccount(a.name)))));
}

function editAccount(a) {
  const form = $("#account-form");
  form.elements.name.value = a.name;
  form.elements.role.value = a.role;
  form.elements.province.value = a.province || "";
  form.elements.carrier.value = a.carrier || "";
  form.elements.password.value = "";
  form.elements.disabled.checked = a.disabled;
  form.elements.role.focus();
}

async function deleteAccount(name) {
  const response = await api(`/api/accounts/${encodeURIComponent(name)}`, { method: "DELETE" });
  $("#account-form .error").textContent = response.ok ? "" : t("error", { why: (await answerOf(response)).error });
  await desk.views.accounts.load();
}

$("#account-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const name = form.elements.name.value.trim();
  const role = form.elements.role.value;
  const body = { role, disabled: form.elements.disabled.checked };
  if (role === "carrier") body.carrier = form.elements.carrier.value.trim();
  else if (form.elements.province.value) body.province = form.elements.province.value;
  if (form.elements.password.value) body.password = form.elements.password.value;
  await submitForm(form, "PUT", `/api/accounts/${encodeURIComponent(name)}`, body,
    () => desk.views.accounts.load());
});

desk.views.accounts = {
  open() { this.load().catch(() => {}); },
  async load() {
    const accounts = await getJSON("/api/accounts");
    $("#accounts-table tbody").replaceChildren(...accounts.map(accountRow));
  },
};
