// The staff desk: sign in, and for agents an online/offline toggle with heartbeats.
const HEARTBEAT_MS = 10_000;
const $ = (id) => document.getElementById(id);

let csrf = "";
let online = false;
let heartbeat = null;

async function api(path, body) {
  const init = { method: body === undefined ? "GET" : "POST", credentials: "same-origin",
                 headers: {} };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    if (csrf) init.headers["x-csrf-token"] = csrf;
    init.body = JSON.stringify(body);
  }
  const res = await fetch(`/desk/api/${path}`, init);
  let data = {};
  try { data = await res.json(); } catch { /* not JSON */ }
  return { ok: res.ok, status: res.status, data };
}

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
}

async function beat() {
  const res = await api("agent/heartbeat", {});
  if (res.status === 401) return signedOut();
  if (res.ok && !res.data.online) { online = false; renderPresence(); }
}

function signedIn(me) {
  csrf = me.csrf_token;
  $("who").textContent = me.username;
  $("role").textContent = me.role;
  $("agent").hidden = me.role !== "agent";
  online = me.role === "agent" && me.online === true;
  renderPresence();
  $("desk-error").textContent = "";
  show("desk");
}

function signedOut() {
  csrf = "";
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
  if (res.status === 401) return signedOut();
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
