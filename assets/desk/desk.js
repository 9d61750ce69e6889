// The staff desk: sign in, and for agents an online/offline toggle with heartbeats.
import { openCall } from "./rtc.js";

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
  startConsole(me.role);
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
  stopConsole();
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

// ---- the agent's call ----

let poll = null;
let peer = null;
let localStream = null;
let currentCall = null;

function stopConsole() {
  clearInterval(poll);
  poll = null;
  hangUp();
  $("call").hidden = true;
  $("auditor").hidden = true;
  document.getElementById("case-search")?.remove();
}

// The agent's call view is read every 2 s; while a customer is deciding on the
// invitation, every 250 ms, so the agent joins the call the moment it starts (the
// customer's first picture of the agent waits on it).
const CALL_POLL_MS = 2000;
const INVITED_POLL_MS = 250;
let pollEvery = CALL_POLL_MS;

function pollCallEvery(ms) {
  if (ms === pollEvery && poll) return;
  clearInterval(poll);
  pollEvery = ms;
  poll = setInterval(refreshCall, ms);
}

function startConsole(role) {
  stopConsole();
  if (role === "admin" || role === "auditor") import("./cases.js").then((m) => m.mount($("desk")));
  if (role === "agent") {
    $("call").hidden = false;
    pollCallEvery(CALL_POLL_MS);
    refreshCall();
  } else if (role === "auditor") {
    $("auditor").hidden = false;
    refreshCases();
    poll = setInterval(refreshCases, 5000);
  }
}

async function post(path, body = {}) {
  const res = await api(path, body);
  if (res.status === 401) signedOut();
  if (!res.ok) $("call-error").textContent = res.data.message || "That did not work.";
  else $("call-error").textContent = "";
  return res;
}

function hangUp() {
  if (peer) peer.close();
  peer = null;
  $("media-state").textContent = "";
  $("own-quality").textContent = "";
  $("customer-quality").textContent = "";
  if (localStream) localStream.getTracks().forEach((t) => t.stop());
  localStream = null;
  $("remote").srcObject = null;
  $("local").srcObject = null;
}

/** One WebRTC connection to the server's relay (see rtc.js), with our own quality shown. */
async function connect(offerPath, iceServers) {
  localStream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
  $("local").srcObject = localStream;
  peer = await openCall({
    stream: localStream,
    remote: $("remote"),
    iceServers,
    send: async (sdp) => {
      const res = await post(offerPath, { sdp });
      if (!res.ok) throw new Error(res.data.message);
      return res.data.sdp;
    },
    onState: (state) => {
      $("call").dataset.media = state;
      $("media-state").textContent = MEDIA_WORDS[state];
    },
    onQuality: (q) => {
      $("own-quality").textContent = `Your connection: ${q.upKbps} kbit/s sent, ${q.downKbps} kbit/s received, ` +
        `${q.rttMs ?? "–"} ms round trip, ${q.lossPct} % lost${q.transport ? ` (${q.transport})` : ""}.`;
    },
  });
}

const MEDIA_WORDS = {
  connecting: "Connecting to the call…",
  connected: "Connected.",
  reconnecting: "Your connection dropped. Reconnecting…",
};

/** The customer's connection as the relay sees it, with a warning when too poor to judge. */
function customerQuality(quality) {
  const now = quality && quality.customer && quality.customer.now;
  const box = $("customer-quality");
  box.classList.toggle("error", Boolean(now && (now.poor || now.state === "reconnecting")));
  $("call").dataset.customerQuality = now ? (now.state === "connected" && now.poor ? "poor" : now.state) : "";
  if (!now) {
    box.textContent = "";
  } else if (now.state === "reconnecting") {
    box.textContent = "The customer's connection dropped. Waiting for them to reconnect…";
  } else if (now.state !== "connected") {
    box.textContent = "The customer is connecting…";
  } else {
    const figures = `${now.video_kbps} kbit/s video at ${now.video_fps} fps, ${now.rtt_ms ?? "–"} ms round trip, ` +
      `${now.loss_pct ?? 0} % lost${now.transport ? `, over ${now.transport}` : ""}`;
    box.textContent = now.poor
      ? `Warning: the customer's video is too poor to judge (${figures}${now.frozen ? ", frozen" : ""}). Ask them to move to a better network before you check their face or PAN.`
      : `Customer's connection: ${figures}.`;
  }
}

/** A call's quality summary as kept with the call, in a line. */
function qualitySummary(label, s) {
  if (!s || !s.seconds) return `${label}: no figures.`;
  return `${label}: video ${s.video_kbps_min}–${s.video_kbps_avg} kbit/s (min–avg), loss ${s.loss_pct_avg ?? 0} % avg / ` +
    `${s.loss_pct_max ?? 0} % max, round trip ${s.rtt_ms_avg ?? "–"} ms avg, ${s.freezes} freeze(s) (${s.frozen_ms} ms), ` +
    `${s.reconnections} reconnection(s)${s.transport ? `, over ${s.transport}` : ""}.`;
}

// How the Aadhaar file compares with the customer the merchant named.
const MATCH_WORDS = {
  match: "matches the customer's",
  mismatch: "does NOT match the customer's",
  not_available: "not available to compare",
};

function ekycChecks(view) {
  const c = view.aadhaar_checks || {};
  return {
    mobile: MATCH_WORDS[c.mobile] || MATCH_WORDS.not_available,
    name: MATCH_WORDS[c.name] || MATCH_WORDS.not_available,
  };
}

function details(view) {
  const box = $("customer");
  box.replaceChildren();
  const dl = document.createElement("dl");
  const row = (name, value) => {
    if (value === undefined || value === null || value === "") return;
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = value;
    dl.append(dt, dd);
  };
  const a = (view.aadhaar && view.aadhaar.details) || {};
  row("Name", a.name || (view.user && view.user.name));
  row("Date of birth", a.dob);
  row("Gender", a.gender);
  row("Address", a.address ? Object.values(a.address).filter(Boolean).join(", ") : a.care_of);
  row("Aadhaar", a.aadhaar_last4 ? `XXXX XXXX ${a.aadhaar_last4}` : view.aadhaar && view.aadhaar.source);
  if (a.aadhaar_last4) {
    const checks = ekycChecks(view);
    row("Mobile on Aadhaar", checks.mobile);
    row("Name on Aadhaar", checks.name);
  }
  const gps = view.location || {};
  row("Location", gps.latitude !== undefined ? `${gps.latitude}, ${gps.longitude} (${gps.accuracy_m ? `±${gps.accuracy_m} m` : "accuracy not given"})` : "");
  row("IP address", view.ip && view.ip.ip);
  row("Server time", new Date(view.server_time).toLocaleString("en-IN", { timeZone: "Asia/Kolkata" }) + " IST");
  row("Consent", view.consent && view.consent.time);
  box.append(dl);
  if (view.aadhaar_photo) {
    const img = document.createElement("img");
    img.src = view.aadhaar_photo;
    img.alt = "Photo from Aadhaar";
    img.className = "photo";
    box.append(img);
  }
}

function renderChecks(call) {
  $("liveness-code").textContent = call.liveness_code;
  $("liveness-result").textContent = call.liveness_result ? `Marked: ${call.liveness_result}` : "";
  const list = $("questions");
  list.replaceChildren();
  call.questions.forEach((q, index) => {
    const li = document.createElement("li");
    li.textContent = q.question + (q.expected ? ` (expected: ${q.expected})` : "") + " ";
    for (const answer of ["correct", "incorrect"]) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = answer === "correct" ? "Correct" : "Incorrect";
      b.setAttribute("aria-pressed", String(q.answer === answer));
      b.dataset.index = index;
      b.dataset.answer = answer;
      b.addEventListener("click", async () => {
        const res = await post(`calls/${call.id}/answers`, { index, answer });
        if (res.ok) refreshCall();
      });
      li.append(b);
    }
    list.append(li);
  });
  const caps = $("captures");
  caps.replaceChildren();
  for (const c of call.captures) {
    const img = document.createElement("img");
    img.src = c.url;
    img.alt = c.kind === "face" ? "Captured face" : "Captured PAN card";
    img.dataset.kind = c.kind;
    caps.append(img);
  }
  if (call.pan && document.activeElement !== $("pan")) $("pan").value = call.pan;
}

async function refreshCall() {
  const res = await api("agent/call");
  if (res.status === 401) return signedOut();
  if (!res.ok) return;
  const view = res.data;
  const call = view.call;
  if (poll) pollCallEvery(call && call.state === "invited" ? INVITED_POLL_MS : CALL_POLL_MS);
  if (!call) {
    if (currentCall) hangUp();
    currentCall = null;
    $("call-status").textContent = online ? "Waiting for the queue to assign you a customer." : "Go online to receive calls.";
    $("customer").replaceChildren();
    $("checks").hidden = true;
    $("decision-form").hidden = true;
    $("call").dataset.state = "none";
    return;
  }
  $("call").dataset.state = call.state;
  $("call").dataset.callId = call.id;
  details(view);
  if (call.state === "invited") {
    $("call-status").textContent = "A customer has been assigned to you. Waiting for them to accept.";
  } else if (call.state === "active") {
    $("call-status").textContent = "In call.";
    $("checks").hidden = false;
    renderChecks(call);
    customerQuality(call.quality);
    if (!peer || currentCall !== call.id) {
      currentCall = call.id;
      hangUp();
      connect(`calls/${call.id}/offer`, call.ice_servers || [])
        .catch((e) => ($("call-error").textContent = `Could not connect: ${e.message}`));
    }
  } else {
    hangUp();
    currentCall = null;
    $("checks").hidden = true;
    $("call-status").textContent = `The call with ${view.verification_id} is over (${call.state}, ended by ${call.ended_by}). Record your decision.`;
    // The form belongs to this call: it is emptied when another call's takes its place,
    // and its decision names this call, so it can never land on another case.
    const form = $("decision-form");
    if (form.dataset.callId !== String(call.id)) {
      form.dataset.callId = String(call.id);
      form.dataset.verificationId = view.verification_id;
      $("decision").value = "";
      $("remarks").value = "";
    }
    form.hidden = false;
  }
}

function capture(kind) {
  const video = $("remote");
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  if (!canvas.width) {
    $("call-error").textContent = "No video from the customer yet.";
    return;
  }
  canvas.getContext("2d").drawImage(video, 0, 0);
  const image = canvas.toDataURL("image/jpeg", 0.85);
  post(`calls/${currentCall}/captures`, { kind, image }).then((res) => res.ok && refreshCall());
}

$("capture-face").addEventListener("click", () => capture("face"));
$("capture-pan").addEventListener("click", () => capture("pan"));
$("liveness-pass").addEventListener("click", () => post(`calls/${currentCall}/liveness`, { result: "passed" }).then(refreshCall));
$("liveness-fail").addEventListener("click", () => post(`calls/${currentCall}/liveness`, { result: "failed" }).then(refreshCall));
$("pan-save").addEventListener("click", () => post(`calls/${currentCall}/pan`, { pan: $("pan").value }).then(refreshCall));
$("end-call").addEventListener("click", () => post(`calls/${currentCall}/end`).then(refreshCall));
$("decision-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = $("decision-form");
  const id = Number(form.dataset.callId);
  const choice = $("decision");
  const label = choice.options[choice.selectedIndex].textContent;
  const res = await post(`calls/${id}/decision`, { call_id: id, decision: choice.value, remarks: $("remarks").value });
  if (!res.ok) {
    $("call-error").textContent = res.data.message || "The decision was not saved.";
    return;
  }
  $("call-error").textContent = "";
  $("decision-saved").textContent = `Decision saved for ${form.dataset.verificationId}: ${label}.`;
  $("remarks").value = "";
  choice.value = "";
  form.hidden = true;
  delete form.dataset.callId;
  refreshCall();
});

// ---- the auditor's review ----

let openCase = null;

async function refreshCases() {
  const res = await api("audit/cases");
  if (res.status === 401) return signedOut();
  if (!res.ok) return;
  const list = $("cases");
  list.replaceChildren();
  $("cases-empty").hidden = res.data.cases.length > 0;
  for (const c of res.data.cases) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = `${c.verification_id} (${c.sub_status})`;
    b.dataset.reference = c.reference_id;
    b.addEventListener("click", () => showCase(c.reference_id));
    li.append(b);
    list.append(li);
  }
}

async function showCase(id) {
  const res = await api(`audit/cases/${id}`);
  if (!res.ok) {
    $("audit-error").textContent = res.data.message || "That case cannot be opened.";
    return;
  }
  openCase = id;
  const view = res.data;
  $("case").hidden = false;
  $("case-title").textContent = `Case ${view.verification_id}: ${view.sub_status}`;
  $("case").dataset.verificationId = view.verification_id;
  $("recording").src = view.recording_url || "";
  const box = $("case-details");
  box.replaceChildren();
  const add = (tag, text) => {
    const el = document.createElement(tag);
    el.textContent = text;
    box.append(el);
    return el;
  };
  const a = (view.aadhaar && view.aadhaar.details) || {};
  add("p", `Customer: ${a.name || (view.user && view.user.name) || "?"}; Aadhaar ${a.aadhaar_last4 ? "XXXX XXXX " + a.aadhaar_last4 : "(from the merchant)"}`);
  if (a.aadhaar_last4) {
    const checks = ekycChecks(view);
    add("p", `Mobile on Aadhaar: ${checks.mobile}. Name on Aadhaar: ${checks.name}.`);
  }
  if (view.location && view.location.latitude !== undefined) add("p", `Location: ${view.location.latitude}, ${view.location.longitude}`);
  if (view.ip) add("p", `IP address: ${view.ip.ip}`);
  if (view.consent) add("p", `Consent given ${view.consent.time} from ${view.consent.ip}`);
  add("p", `Agent's remarks: ${view.agent_remarks || ""}`);
  if (view.call) {
    add("p", `Liveness (${view.call.liveness_code}): ${view.call.liveness_result || "not marked"}; PAN: ${view.call.pan || "not entered"}`);
    const ol = document.createElement("ol");
    ol.id = "case-questions";
    for (const q of view.call.questions) {
      const li = document.createElement("li");
      li.textContent = `${q.question}: ${q.answer || "not marked"}`;
      ol.append(li);
    }
    box.append(ol);
    const caps = document.createElement("div");
    caps.className = "captures";
    for (const c of view.call.captures) {
      const img = document.createElement("img");
      img.src = c.url;
      img.alt = c.kind === "face" ? "Captured face" : "Captured PAN card";
      caps.append(img);
    }
    box.append(caps);
    const q = view.call.quality || {};
    const quality = add("p", `${qualitySummary("Customer's connection", q.customer && q.customer.summary)} ` +
      qualitySummary("Agent's connection", q.agent && q.agent.summary));
    quality.id = "case-quality";
  }
  if (view.aadhaar_photo) {
    const img = document.createElement("img");
    img.src = view.aadhaar_photo;
    img.alt = "Photo from Aadhaar";
    img.className = "photo";
    box.append(img);
  }
  const timeline = document.createElement("ol");
  timeline.id = "timeline";
  for (const h of view.timeline) {
    const li = document.createElement("li");
    li.textContent = `${h.time} ${h.actor}: ${h.to_sub_status}`;
    timeline.append(li);
  }
  box.append(timeline);
}

$("audit-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const res = await api(`audit/cases/${openCase}/decision`, { decision: $("audit-decision").value, remarks: $("audit-remarks").value });
  if (!res.ok) {
    $("audit-error").textContent = res.data.message || "That did not work.";
    return;
  }
  $("audit-error").textContent = "";
  const choice = $("audit-decision");
  $("audit-saved").textContent = `Review saved for ${$("case").dataset.verificationId}: ${choice.options[choice.selectedIndex].textContent}.`;
  choice.value = "";
  $("audit-remarks").value = "";
  $("case").hidden = true;
  $("recording").removeAttribute("src");
  openCase = null;
  refreshCases();
});

const me = await api("me");
if (me.ok) signedIn(me.data); else signedOut();
