// The admin console: staff, question banks, the desk's hours and holidays, merchants,
// templates.
// Secrets (a new password, TOTP URI or client secret) are shown once, in the page only:
// the server never lists them again, so a reload no longer shows them.

import { $, upload } from "./common.js";
const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

let api = null;
let signedOut = () => {};
let staff = [];
let merchants = [];
let bank = null;

export function mount(desk) {
  api = desk.api;
  signedOut = () => { forgetSecrets(); desk.signedOut(); };
  forgetSecrets();
  $("admin").hidden = false;
  if (!$("admin").dataset.wired) wire();
  $("admin").dataset.wired = "1";
  refreshAll();
}

/** Leaves the page: the console hidden, its secrets gone. */
export function unmount() {
  forgetSecrets();
  $("admin").hidden = true;
}

/** Secrets leave the page when the admin signs out. */
function forgetSecrets() {
  for (const id of ["staff-secret", "merchant-secret"]) {
    $(id).replaceChildren();
    $(id).hidden = true;
  }
}

function say(text) {
  $("admin-error").textContent = "";
  $("admin-status").textContent = text;
}

/** A call to /desk/api/admin/…; an error is shown and null returned. */
async function call(path, body) {
  const res = await api(`admin/${path}`, body);
  if (res.status === 401) { signedOut(); return null; }
  if (!res.ok) {
    $("admin-status").textContent = "";
    $("admin-error").textContent = res.data.message || "That did not work.";
    return null;
  }
  $("admin-error").textContent = "";
  return res.data;
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  row.append(td);
}

function options(select, items, keep = true) {
  const before = select.value;
  select.replaceChildren(...items.map(([value, label]) => {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = label;
    return o;
  }));
  if (keep && items.some(([v]) => v === before)) select.value = before;
}

/** Shows a value that will not be shown again. */
function once(box, label, value) {
  const strong = document.createElement("strong");
  strong.textContent = label;
  const code = document.createElement("code");
  code.className = "secret";
  code.textContent = value;
  const note = document.createElement("p");
  note.className = "hint";
  note.textContent = "Shown only this once: copy it now.";
  box.replaceChildren(strong, document.createElement("br"), code, note);
  box.hidden = false;
}

async function refreshAll() {
  await Promise.all([refreshStaff(), refreshMerchants(), refreshHours(), refreshTemplates()]);
  await loadBank();
}

// ---- templates ----

async function refreshTemplates() {
  const data = await call("templates");
  if (!data) return;
  const body = $("template-list").querySelector("tbody");
  body.replaceChildren();
  for (const t of data.templates) {
    const row = body.insertRow();
    row.dataset.name = t.name;
    for (const text of [t.kind, t.name, String(t.version), t.description || "", t.created_by]) cell(row, text);
  }
  options($("template-pick"), data.templates.map((t) => [`${t.kind}/${t.name}`, `${t.name} (${t.kind}, v${t.version})`]));
  await showTemplate();
}

async function showTemplate() {
  const pick = $("template-pick").value;
  if (!pick) return;
  const data = await call(`templates/${pick}`);
  if (data) $("template-text").textContent = `# ${data.kind} template ${data.name}, version ${data.version}\n${data.toml}`;
}

async function importTemplate() {
  const kind = $("template-kind").value;
  const data = await call(`templates/${kind}`, { text: $("template-import").value, format: "toml" });
  if (!data) return;
  say(data.added ? `${data.name}: version ${data.version} added.` : `${data.name}: unchanged, still version ${data.version}.`);
  $("template-pick").value = `${data.kind}/${data.name}`;
  await refreshTemplates();
}

/** A bank's logo for a user template: redrawn by the server, named by its id. */
async function uploadLogo() {
  const file = $("logo-file").files[0];
  if (!file) return;
  const res = await upload("admin/logos", file);
  if (!res.ok) {
    $("admin-status").textContent = "";
    $("admin-error").textContent = res.data.message || "That did not work.";
    return;
  }
  const { id, width, height, url } = res.data;
  say(`Logo uploaded (${width}×${height}): in a user template, logo = "${id}"`);
  $("logo-preview").src = url;
  $("logo-preview").hidden = false;
}

// ---- staff ----

async function refreshStaff() {
  const data = await call("staff");
  if (!data) return;
  staff = data.staff;
  const body = $("staff-list").tBodies[0];
  body.replaceChildren(...staff.map((s) => {
    const tr = document.createElement("tr");
    tr.dataset.username = s.username;
    const hours = s.working_hours ? `${s.working_hours.days.join(",")} ${s.working_hours.hours}` : "desk's";
    [s.username, s.role, s.state, s.totp ? "yes" : "no", s.presence || "–", hours].forEach((t) => cell(tr, t));
    return tr;
  }));
  options($("staff-pick"), staff.map((s) => [String(s.id), `${s.username} (${s.role}, ${s.state})`]));
}

function picked() {
  return staff.find((s) => String(s.id) === $("staff-pick").value);
}

async function staffAction(path, body, done) {
  const member = picked();
  if (!member) return;
  const data = await call(`staff/${member.id}/${path}`, body);
  if (!data) return;
  say(done(member, data));
  await refreshStaff();
}

// ---- questions ----

function questionRow(q = { en: "", hi: "", mandatory: false }) {
  const li = document.createElement("li");
  li.className = "question";
  const n = document.querySelectorAll("#bank-questions li").length + 1;
  const field = (label, value, cls) => {
    const wrap = document.createElement("label");
    wrap.textContent = label;
    const input = document.createElement("input");
    input.className = cls;
    input.value = value || "";
    input.setAttribute("aria-label", `${label} ${n}`);
    wrap.append(input);
    return wrap;
  };
  const mandatory = document.createElement("label");
  const box = document.createElement("input");
  box.type = "checkbox";
  box.className = "q-mandatory";
  box.checked = q.mandatory;
  box.setAttribute("aria-label", `Must be asked ${n}`);
  mandatory.append(box, " must be asked");
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "plain";
  remove.textContent = "Remove";
  remove.addEventListener("click", () => li.remove());
  li.append(field("English", q.en, "q-en"), field("Hindi", q.hi, "q-hi"), mandatory, remove);
  return li;
}

async function loadBank() {
  const which = $("bank-pick").value;
  const data = await call(which === "deployment" ? "questions" : `merchants/${which}/questions`);
  if (!data) return;
  bank = data;
  $("bank-version").textContent = data.version
    ? `Version ${data.version}.`
    : (which === "deployment" ? "Not edited yet: the configuration's questions apply." : "This merchant has no questions of its own yet.");
  const list = $("bank-questions");
  list.replaceChildren();
  for (const q of data.questions) list.append(questionRow(q));
  $("bank-random").value = data.random_count;
}

async function saveBank() {
  const which = $("bank-pick").value;
  const questions = [...document.querySelectorAll("#bank-questions li")].map((li) => ({
    en: li.querySelector(".q-en").value,
    hi: li.querySelector(".q-hi").value || null,
    mandatory: li.querySelector(".q-mandatory").checked,
  }));
  const body = { base_version: bank ? bank.version : 0, questions, random_count: Number($("bank-random").value || 0) };
  const data = await call(which === "deployment" ? "questions" : `merchants/${which}/questions`, body);
  if (!data) return;
  say(`Questions saved as version ${data.version}.`);
  await loadBank();
}

// ---- hours and holidays ----

async function refreshHours() {
  const data = await call("hours");
  if (!data) return;
  showHours(data);
}

function showHours(data) {
  $("hours-source").textContent = data.from_config
    ? "The configuration's hours apply until you save others."
    : "Set in this console.";
  for (const day of DAYS) $(`day-${day}`).checked = data.working_days.includes(day);
  $("desk-hours").value = data.working_hours;
  showHolidays(data.holidays);
}

function showHolidays(days) {
  $("holiday-list").replaceChildren(...days.map((day) => {
    const li = document.createElement("li");
    li.textContent = `${day} `;
    const b = document.createElement("button");
    b.type = "button";
    b.className = "plain";
    b.textContent = "Remove";
    b.setAttribute("aria-label", `Remove ${day}`);
    b.addEventListener("click", async () => {
      const done = await call("holidays/remove", { date: day });
      if (done) { say(`${day} is a working day again.`); showHolidays(done.holidays); }
    });
    li.append(b);
    return li;
  }));
}

// ---- merchants ----

async function refreshMerchants() {
  const data = await call("merchants");
  if (!data) return;
  merchants = data.merchants;
  $("merchant-list").tBodies[0].replaceChildren(...merchants.map((m) => {
    const tr = document.createElement("tr");
    tr.dataset.merchant = String(m.id);
    const ids = m.credentials.map((c) => c.active_secrets > 1 ? `${c.client_id} (2 secrets)` : c.client_id).join(", ");
    const rate = m.rate_limit_per_minute === null ? `default (${data.default_rate_limit_per_minute || "unlimited"})`
      : (m.rate_limit_per_minute === 0 ? "unlimited" : `${m.rate_limit_per_minute}/min`);
    const factor = m.second_factor === "ip" ? `IP: ${(m.ip_allowlist || []).join(", ")}` : m.second_factor;
    [m.name, m.env, ids, m.webhook_url || "none", rate, factor].forEach((t) => cell(tr, t));
    return tr;
  }));
  options($("merchant-pick"), merchants.map((m) => [String(m.id), `${m.name} (${m.env})`]));
  const banks = [["deployment", "The deployment's questions"],
    ...merchants.map((m) => [String(m.id), `${m.name}'s own questions`])];
  options($("bank-pick"), banks);
  showMerchant();
}

function merchant() {
  return merchants.find((m) => String(m.id) === $("merchant-pick").value);
}

function showMerchant() {
  const m = merchant();
  if (!m) return;
  $("merchant-webhook").value = m.webhook_url || "";
  $("merchant-rate").value = m.rate_limit_per_minute === null ? "default" : String(m.rate_limit_per_minute);
  $("merchant-ips").value = (m.ip_allowlist || []).join("\n");
  options($("merchant-client"), m.credentials.map((c) => [c.client_id, c.client_id]));
}

async function merchantAction(path, body, done) {
  const m = merchant();
  if (!m) return;
  const data = await call(`merchants/${m.id}/${path}`, body);
  if (!data) return null;
  say(done(m, data));
  await refreshMerchants();
  return data;
}

// ---- wiring ----

function wire() {
  $("logout").addEventListener("click", forgetSecrets);
  for (const tab of document.querySelectorAll(".admin-tabs button")) {
    tab.addEventListener("click", () => {
      for (const other of document.querySelectorAll(".admin-tabs button")) {
        other.setAttribute("aria-pressed", String(other === tab));
        $(other.dataset.tab).hidden = other !== tab;
      }
    });
  }

  $("template-pick").addEventListener("change", showTemplate);
  $("template-save").addEventListener("click", importTemplate);
  $("logo-save").addEventListener("click", uploadLogo);

  $("staff-create").addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = await call("staff", { username: $("new-username").value, role: $("new-role").value });
    if (!data) return;
    once($("staff-secret"), `Password for ${data.username} (${data.role}):`, data.password);
    $("new-username").value = "";
    say(`${data.username} can now sign in.`);
    await refreshStaff();
  });
  $("staff-disable").addEventListener("click", () =>
    staffAction("disable", {}, (m) => `${m.username} is disabled and signed out.`));
  $("staff-unlock").addEventListener("click", () =>
    staffAction("unlock", {}, (m) => `${m.username} may sign in again.`));
  $("staff-totp").addEventListener("click", () =>
    staffAction("totp", {}, (m, data) => {
      once($("staff-secret"), `Authenticator link for ${m.username}:`, data.otpauth_uri);
      return `${m.username} must now give a one-time code at sign-in.`;
    }));
  $("staff-set-role").addEventListener("click", () =>
    staffAction("role", { role: $("staff-role").value }, (m, data) => `${m.username} is now ${data.role}.`));
  $("staff-set-hours").addEventListener("click", () => {
    const days = $("staff-days").value.split(",").map((d) => d.trim()).filter(Boolean);
    staffAction("hours", { days, hours: $("staff-hours").value }, (m) => `${m.username}'s own hours are saved.`);
  });
  $("staff-clear-hours").addEventListener("click", () =>
    staffAction("hours", { clear: true }, (m) => `${m.username} works the desk's hours.`));

  $("bank-pick").addEventListener("change", loadBank);
  $("bank-add").addEventListener("click", () => $("bank-questions").append(questionRow()));
  $("bank-save").addEventListener("click", saveBank);

  const fieldset = $("desk-days");
  for (const day of DAYS) {
    const label = document.createElement("label");
    label.className = "day";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.id = `day-${day}`;
    label.append(box, ` ${day}`);
    fieldset.append(label);
  }
  $("hours-save").addEventListener("click", async () => {
    const working_days = DAYS.filter((d) => $(`day-${d}`).checked);
    const data = await call("hours", { working_days, working_hours: $("desk-hours").value });
    if (data) { showHours(data); say("Working hours saved."); }
  });
  $("hours-default").addEventListener("click", async () => {
    const data = await call("hours", { default: true });
    if (data) { showHours(data); say("The configuration's hours apply."); }
  });
  $("holiday-add").addEventListener("click", async () => {
    if (!$("holiday-date").value) { $("admin-error").textContent = "Choose a date first."; return; }
    const data = await call("holidays", { dates: [$("holiday-date").value] });
    if (data) { showHolidays(data.holidays); say(`${$("holiday-date").value} is a holiday.`); }
  });
  $("holiday-import").addEventListener("click", async () => {
    const file = $("holiday-file").files[0];
    if (!file) { $("admin-error").textContent = "Choose a file first."; return; }
    if (file.size > 32 * 1024) { $("admin-error").textContent = "The file is too large (at most 32 KiB)."; return; }
    const data = await call("holidays", { file: await file.text() });
    if (data) { showHolidays(data.holidays); say(`${data.added} new holidays imported.`); }
  });

  $("merchant-pick").addEventListener("change", showMerchant);
  $("merchant-set-webhook").addEventListener("click", () =>
    merchantAction("webhook", { url: $("merchant-webhook").value.trim() || null },
      (m, d) => d.webhook_url ? `${m.name}'s webhooks go to ${d.webhook_url}.` : `${m.name} has no webhook URL.`));
  $("merchant-set-rate").addEventListener("click", () =>
    merchantAction("rate-limit", { limit: $("merchant-rate").value.trim() }, (m) => `${m.name}'s rate limit is saved.`));
  $("merchant-set-ips").addEventListener("click", () => {
    const ips = $("merchant-ips").value.split(/[\s,]+/).filter(Boolean);
    merchantAction("allow-ips", { ips }, (m) => `${m.name} may call only from the listed addresses.`);
  });
  $("merchant-signature").addEventListener("click", () =>
    merchantAction("signature", {}, (m, d) => {
      once($("merchant-secret"), `Public key for ${m.name} (give it to the merchant):`, d.public_key_pem);
      return `${m.name} must now sign its calls.`;
    }));
  $("merchant-clear-factor").addEventListener("click", () =>
    merchantAction("second-factor/clear", {}, (m) => `${m.name} has no second factor.`));
  $("merchant-rotate").addEventListener("click", () =>
    merchantAction("rotate-secret", { client_id: $("merchant-client").value }, (m, d) => {
      once($("merchant-secret"), `New secret for ${d.client_id}:`, d.client_secret);
      return "Both secrets work until the old one is revoked.";
    }));
  $("merchant-revoke").addEventListener("click", () =>
    merchantAction("revoke-secret", { client_id: $("merchant-client").value }, (m, d) => `The old secret of ${d.client_id} is revoked.`));
  $("merchant-create").addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = await call("merchants", { name: $("merchant-name").value, env: $("merchant-env").value });
    if (!data) return;
    once($("merchant-secret"), `Client id ${data.client_id}, secret:`, data.client_secret);
    $("merchant-name").value = "";
    say(`${data.name} created.`);
    await refreshMerchants();
  });
}
