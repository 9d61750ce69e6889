// The staff desk's shell: sign in and out, the agents' online/offline toggle with
// heartbeats, and the console of the signed-in role (agent.js, auditor.js, admin.js).
import { $, api, setSession } from "./common.js";
import * as agent from "./agent.js";
import * as auditor from "./auditor.js";

const HEARTBEAT_MS = 10_000;

let online = false;
let admin = null;          // the admin console's module, loaded for admins only
let reports = null;        // the admin's reports, likewise

// Admins and auditors have more than one screen: one at a time, chosen in the top bar.
const VIEWS = {
  admin: [["admin", "Administration"], ["reports", "Reports"], ["case-search", "Case search"]],
  auditor: [["auditor", "Review queue"], ["case-search", "Case search"]],
};

function showViews(role) {
  const nav = $("views");
  const buttons = VIEWS[role].map(([id, label]) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.dataset.view = id;
    b.addEventListener("click", () => showView(role, id));
    return b;
  });
  nav.replaceChildren(...buttons);
  nav.hidden = false;
  showView(role, VIEWS[role][0][0]);
}

function showView(role, shown) {
  for (const [id] of VIEWS[role]) {
    const section = document.getElementById(id);
    if (section) section.hidden = id !== shown;
  }
  for (const b of $("views").querySelectorAll("button")) {
    b.setAttribute("aria-pressed", String(b.dataset.view === shown));
  }
  document.body.dataset.view = shown;
  if (shown === "reports" && reports) reports.show();
}
let heartbeat = null;

function show(section) {
  for (const id of ["loading", "login", "desk"]) $(id).hidden = id !== section;
}

function renderPresence() {
  const text = $("presence");
  text.textContent = online ? "You are online and can receive calls." : "You are offline.";
  text.classList.toggle("online", online);
  const toggle = $("toggle");
  toggle.textContent = online ? "Go offline" : "Go online";
  toggle.setAttribute("aria-pressed", String(online));
  clearInterval(heartbeat);
  heartbeat = online ? setInterval(beat, HEARTBEAT_MS) : null;
  agent.setOnline(online);
}

async function beat() {
  const res = await api("agent/heartbeat", {});
  if (res.ok && !res.data.online) { online = false; renderPresence(); }
}

function stopConsoles() {
  agent.stop();
  auditor.stop();
  if (admin) admin.unmount();
  if (reports) reports.unmount();
  document.getElementById("case-search")?.remove();
  $("views").replaceChildren();
  $("views").hidden = true;
}

function signedIn(me) {
  setSession(me.csrf_token, signedOut);
  stopConsoles();
  $("who").textContent = me.username;
  $("role").textContent = me.role;
  $("agent").hidden = me.role !== "agent";
  document.body.dataset.role = me.role;
  online = me.role === "agent" && me.online === true;
  renderPresence();
  $("desk-error").textContent = "";
  show("desk");
  if (me.role === "agent") agent.start();
  else if (me.role === "auditor") {
    auditor.start();
    import("./cases.js").then((cases) => { cases.mount($("desk")); showViews(me.role); });
  } else if (me.role === "admin") {
    Promise.all([
      import("./admin.js").then((module) => { admin = module; admin.mount({ api, signedOut }); }),
      import("./reports.js").then((module) => { reports = module; reports.mount($("desk")); }),
      import("./cases.js").then((cases) => cases.mount($("desk"), { admin: true })),
    ]).then(() => showViews(me.role));
  }
}

function signedOut() {
  setSession("");
  stopConsoles();
  delete document.body.dataset.role;
  online = false;
  renderPresence();
  show("login");
  $("username").focus();
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("login-error").textContent = "";
  const body = { username: $("username").value, password: $("password").value };
  if ($("otp").value.trim()) body.otp = $("otp").value.trim();
  const res = await api("login", body);
  if (res.ok) {
    $("password").value = "";
    $("otp").value = "";
    const me = await api("me");
    if (me.ok) return signedIn(me.data);
  }
  if (res.data.code === "otp_required") {
    $("login-error").textContent = "Enter the one-time code from your authenticator app.";
    $("otp").focus();
  } else {
    $("login-error").textContent = res.data.message || "Sign-in failed.";
  }
});

$("toggle").addEventListener("click", async () => {
  const res = await api(online ? "agent/offline" : "agent/online", {});
  if (!res.ok) { $("desk-error").textContent = res.data.message || "That did not work."; return; }
  $("desk-error").textContent = "";
  online = res.data.online === true;
  renderPresence();
});

$("logout").addEventListener("click", async () => {
  await api("logout", {});
  signedOut();
});

const me = await api("me");
if (me.ok) signedIn(me.data); else signedOut();
