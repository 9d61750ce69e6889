// The agent's console during a working day: the customer's video large and the agent's
// own small, the Aadhaar photo beside the latest face still, a checklist whose decision
// opens when it is complete, a call timer, the location on India's outline, and keys for
// every check. It fits a 1366×768 screen without scrolling.
import { openCall } from "./rtc.js";
import { drawIndia } from "./map.js";
import { $, api, clock, ekycChecks, el, setImage } from "./common.js";

// The call view is read every 2 s; while a customer is deciding on the invitation,
// every 250 ms, so the agent joins the call the moment it starts (the customer's first
// picture of the agent waits on it).
const CALL_POLL_MS = 2000;
const INVITED_POLL_MS = 250;

let poll = null;
let pollEvery = CALL_POLL_MS;
let peer = null;
let localStream = null;
let currentCall = null;
let online = false;
let view = null;
let openItem = null;       // the checklist item the agent opened (null: the first not done)
const wasDone = {};         // each item's state at the last render
let clockSkew = 0;         // server time minus this browser's
let timer = null;
let mapKey = "";

export function setOnline(value) { online = value; }

export function start() {
  $("call").hidden = false;
  pollCallEvery(CALL_POLL_MS);
  refreshCall();
}

export function stop() {
  clearInterval(poll);
  poll = null;
  hangUp();
  $("call").hidden = true;
  document.body.classList.remove("in-call");
}

function pollCallEvery(ms) {
  if (ms === pollEvery && poll) return;
  clearInterval(poll);
  pollEvery = ms;
  poll = setInterval(refreshCall, ms);
}

async function post(path, body = {}) {
  const res = await api(path, body);
  $("call-error").textContent = res.ok ? "" : res.data.message || "That did not work.";
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
      $("own-quality").textContent = `You: ${q.upKbps} kbit/s up, ${q.downKbps} kbit/s down, ` +
        `${q.rttMs ?? "–"} ms, ${q.lossPct} % lost${q.transport ? ` (${q.transport})` : ""}.`;
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

function details(v) {
  const dl = el("dl");
  const row = (name, value) => {
    if (value === undefined || value === null || value === "") return;
    dl.append(el("dt", { text: name }), el("dd", { text: value }));
  };
  const a = (v.aadhaar && v.aadhaar.details) || {};
  // The bank as the customer sees it on their pages (the request's user template).
  row("For", v.display_name);
  row("Name", a.name || (v.user && v.user.name));
  row("Date of birth", a.dob);
  row("Gender", a.gender);
  row("Address", a.address ? Object.values(a.address).filter(Boolean).join(", ") : a.care_of);
  row("Aadhaar", a.aadhaar_last4 ? `XXXX XXXX ${a.aadhaar_last4}` : v.aadhaar && v.aadhaar.source);
  if (a.aadhaar_last4) {
    const checks = ekycChecks(v);
    row("Mobile on Aadhaar", checks.mobile);
    row("Name on Aadhaar", checks.name);
  }
  // The personal-details form, as the customer filled it (its user template's labels).
  for (const d of v.personal_details || []) row(d.label, d.value);
  row("IP address", v.ip && v.ip.ip);
  row("Consent", v.consent && v.consent.time);
  const logo = v.brand_logo ? el("img", { src: v.brand_logo, alt: `${v.display_name} logo`, class: "brand-logo", id: "case-logo" }) : null;
  $("customer").replaceChildren(...(logo ? [logo] : []), dl);
  setImage($("aadhaar-photo"), v.aadhaar_photo && v.aadhaar_photo.url);
  $("aadhaar-photo-none").hidden = Boolean(v.aadhaar_photo);
}

// ---- the checklist ----

const BASE_ITEMS = ["questions", "liveness", "face", "pan", "location"];
let ITEMS = BASE_ITEMS;

/** The request's agent template decides what is required; the captures other than the
 * face and the PAN card make a sixth item. */
function template() {
  return view.checklist || { captures: [], liveness_required: true, pan_required: true, rejection_reasons: [] };
}
function otherCaptures() {
  return template().captures.filter((c) => c.kind !== "face" && c.kind !== "pan");
}

function has(call, kind, pred = () => true) {
  return (call.events || []).some((e) => e.kind === kind && pred(e.detail || {}));
}

/** Each item's state: done, and a short summary for its heading. */
function checklist(call) {
  const t = template();
  const answered = call.questions.filter((q) => q.answer).length;
  const taken = (kind) => call.captures.some((c) => c.kind === kind);
  const needed = (kind) => t.captures.some((c) => c.kind === kind && c.required);
  const face = taken("face");
  const panStill = taken("pan");
  const panDone = (panStill || !needed("pan")) && (Boolean(call.pan) || !t.pan_required);
  const others = otherCaptures();
  const othersTaken = others.filter((c) => taken(c.kind)).length;
  return {
    questions: { done: answered === call.questions.length, summary: `${answered}/${call.questions.length}` },
    liveness: {
      done: Boolean(call.liveness_result) || !t.liveness_required,
      summary: call.liveness_result || (t.liveness_required ? "to do" : "optional"),
    },
    face: { done: face || !needed("face"), summary: face ? "captured" : needed("face") ? "to do" : "optional" },
    pan: { done: panDone, summary: [panStill ? "card captured" : "", call.pan ? call.pan : ""].filter(Boolean).join(", ") || (panDone ? "optional" : "to do") },
    location: { done: has(call, "location_confirmed"), summary: has(call, "location_confirmed") ? "confirmed" : "to do" },
    other: {
      done: others.every((c) => !c.required || taken(c.kind)),
      summary: `${othersTaken}/${others.length}`,
    },
  };
}

/** The other captures' buttons and stills, drawn once per case's template. */
function renderOtherCaptures(call) {
  const others = otherCaptures();
  ITEMS = others.length ? [...BASE_ITEMS, "other"] : BASE_ITEMS;
  document.querySelector('#checklist li[data-item="other"]').hidden = !others.length;
  $("checklist-meter").max = ITEMS.length;
  const key = others.map((c) => c.kind).join(",");
  if ($("other-captures").dataset.kinds !== key) {
    $("other-captures").dataset.kinds = key;
    $("other-captures").replaceChildren(...others.map((c) => {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.kind = c.kind;
      button.textContent = `Capture the ${c.label}`;
      button.addEventListener("click", () => capture(c.kind));
      return button;
    }));
    $("other-stills").replaceChildren(...others.map((c) => {
      const figure = document.createElement("figure");
      const img = document.createElement("img");
      img.dataset.kind = c.kind;
      img.alt = `Captured ${c.label}`;
      img.hidden = true;
      const caption = document.createElement("figcaption");
      caption.textContent = c.label.charAt(0).toUpperCase() + c.label.slice(1);
      figure.append(img, caption);
      return figure;
    }));
  }
  for (const c of others) {
    const still = call.captures.filter((x) => x.kind === c.kind).pop();
    const img = document.querySelector(`#other-stills img[data-kind="${c.kind}"]`);
    if (still) setImage(img, still.url); else img.hidden = true;
  }
}

function renderChecks(call) {
  renderOtherCaptures(call);
  const state = checklist(call);
  const done = ITEMS.filter((i) => state[i].done).length;
  $("checklist-progress").textContent = `${done} of ${ITEMS.length} checks done`;
  $("checklist-meter").value = done;
  // An item the agent opened stays open until it becomes done; then the next one opens.
  if (openItem && state[openItem].done && wasDone[openItem] === false) openItem = null;
  for (const i of ITEMS) wasDone[i] = state[i].done;
  const open = openItem || ITEMS.find((i) => !state[i].done) || null;
  for (const item of ITEMS) {
    const li = document.querySelector(`#checklist li[data-item="${item}"]`);
    li.dataset.done = String(state[item].done);
    li.querySelector(".summary").textContent = state[item].done ? `✓ ${state[item].summary}` : state[item].summary;
    li.querySelector("button.item").setAttribute("aria-expanded", String(item === open));
    li.querySelector(".item-body").hidden = item !== open;
  }
  $("checks").dataset.complete = String(done === ITEMS.length);

  $("liveness-code").textContent = call.liveness_code;
  $("liveness-result").textContent = call.liveness_result ? `Marked: ${call.liveness_result}` : "";
  renderQuestions(call);
  const latest = (kind) => call.captures.filter((c) => c.kind === kind).pop();
  for (const kind of ["face", "pan"]) {
    const img = document.querySelector(`#captures img[data-kind="${kind}"]`);
    const still = latest(kind);
    if (still) setImage(img, still.url); else img.hidden = true;
  }
  $("latest-face-none").hidden = Boolean(latest("face"));
  if (call.pan && document.activeElement !== $("pan")) $("pan").value = call.pan;
  const gps = view.location || {};
  const key = `${gps.latitude},${gps.longitude},${gps.accuracy_m}`;
  if (key !== mapKey) {
    mapKey = key;
    drawIndia($("agent-map"), { lat: gps.latitude, lon: gps.longitude, accuracy_m: gps.accuracy_m });
  }
}

function renderQuestions(call) {
  const asked = new Set((call.events || []).filter((e) => e.kind === "question_asked").map((e) => e.detail.index));
  const current = currentQuestion(call);
  const items = call.questions.map((q, index) => {
    const li = el("li", { "data-index": index, class: index === current ? "current" : "" });
    li.append(el("span", { class: "q", text: q.question }));
    if (q.question_hi) li.append(el("span", { class: "q-hi", lang: "hi", text: q.question_hi }));
    if (q.expected) li.append(el("span", { class: "hint", text: ` expected: ${q.expected}` }));
    const ask = el("button", { type: "button", class: "secondary small", "data-index": index, "data-answer": "asked",
      "aria-pressed": String(asked.has(index)), text: asked.has(index) ? "Asked" : "Ask" });
    ask.addEventListener("click", () => askQuestion(index));
    li.append(ask);
    for (const answer of ["correct", "incorrect"]) {
      const b = el("button", { type: "button", class: "small", "data-index": index, "data-answer": answer,
        "aria-pressed": String(q.answer === answer), text: answer === "correct" ? "Correct" : "Incorrect" });
      b.addEventListener("click", () => markQuestion(index, answer));
      li.append(b);
    }
    return li;
  });
  $("questions").replaceChildren(...items);
}

/** The question being asked: the first unanswered one. */
function currentQuestion(call) {
  const i = call.questions.findIndex((q) => !q.answer);
  return i < 0 ? null : i;
}

async function askQuestion(index) {
  const res = await post(`calls/${currentCall}/events`, { kind: "question_asked", index });
  if (res.ok) refreshCall();
}

async function markQuestion(index, answer) {
  const res = await post(`calls/${currentCall}/answers`, { index, answer });
  if (res.ok) refreshCall();
}

function openCheck(item) {
  openItem = item;
  if (view && view.call && view.call.state === "active") renderChecks(view.call);
}

function tick() {
  const call = view && view.call;
  if (!call || !call.accepted_at) { $("call-timer").textContent = "0:00"; return; }
  const end = call.ended_at ? Date.parse(call.ended_at) : Date.now() + clockSkew;
  $("call-timer").textContent = clock(end - Date.parse(call.accepted_at));
}

// ---- the view ----

async function refreshCall() {
  const before = Date.now();
  const res = await api("agent/call");
  if (!res.ok) return;
  view = res.data;
  const call = view.call;
  if (view.server_time) clockSkew = Date.parse(view.server_time) - (before + Date.now()) / 2;
  if (poll) pollCallEvery(call && call.state === "invited" ? INVITED_POLL_MS : CALL_POLL_MS);
  document.body.classList.toggle("in-call", Boolean(call));
  if (!call) {
    if (currentCall) hangUp();
    currentCall = null;
    openItem = null;
    clearInterval(timer);
    timer = null;
    $("call-status").textContent = online ? "Waiting for the queue to assign you a customer." : "Go online to receive calls.";
    $("customer").replaceChildren();
    $("checks").hidden = true;
    $("workspace").hidden = true;
    $("decision-form").hidden = true;
    $("call").dataset.state = "none";
    return;
  }
  $("workspace").hidden = false;
  $("call").dataset.state = call.state;
  $("call").dataset.callId = call.id;
  details(view);
  if (!timer) timer = setInterval(tick, 1000);
  tick();
  if (call.state === "invited") {
    $("call-status").textContent = "A customer has been assigned to you. Waiting for them to accept.";
    $("checks").hidden = true;
    $("decision-form").hidden = true;
  } else if (call.state === "active") {
    $("call-status").textContent = "In call.";
    $("checks").hidden = false;
    renderChecks(call);
    customerQuality(call.quality);
    // The decision opens once every check is done; submitting it ends the call first.
    const complete = $("checks").dataset.complete === "true";
    const opening = complete && $("decision-form").hidden;
    showDecision(call, complete);
    if (opening) $("decision-form").scrollIntoView({ block: "nearest" });
    if (!peer || currentCall !== call.id) {
      currentCall = call.id;
      openItem = null;
      hangUp();
      connect(`calls/${call.id}/offer`, call.ice_servers || [])
        .catch((e) => ($("call-error").textContent = `Could not connect: ${e.message}`));
    }
  } else {
    hangUp();
    currentCall = null;
    $("checks").hidden = true;
    $("call-status").textContent = `The call with ${view.verification_id} is over (${call.state}, ended by ${call.ended_by}). Record your decision.`;
    showDecision(call, true);
  }
}

/** The decision form belongs to one call: emptied when another call's takes its place,
 * and its decision names this call, so it can never land on another case. */
function showDecision(call, open) {
  const form = $("decision-form");
  if (form.dataset.callId !== String(call.id)) {
    form.dataset.callId = String(call.id);
    form.dataset.verificationId = view.verification_id;
    $("decision").value = "";
    $("remarks").value = "";
    // The template's rejection reasons, offered when the outcome is a rejection.
    const reasons = template().rejection_reasons || [];
    $("reason").replaceChildren($("reason").options[0], ...reasons.map((r) => {
      const option = document.createElement("option");
      option.value = r;
      option.textContent = r;
      return option;
    }));
    $("reason").value = "";
    $("reason-field").hidden = true;
  }
  $("decision-hint").hidden = call.state !== "active";
  form.hidden = !open;
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

const askLiveness = () => post(`calls/${currentCall}/events`, { kind: "liveness_asked" }).then(refreshCall);
const markLiveness = (result) => post(`calls/${currentCall}/liveness`, { result }).then(refreshCall);
const confirmLocation = () => post(`calls/${currentCall}/events`, { kind: "location_confirmed" }).then(refreshCall);
const endCall = () => post(`calls/${currentCall}/end`).then(refreshCall);

for (const item of [...BASE_ITEMS, "other"]) {
  document.querySelector(`#checklist li[data-item="${item}"] button.item`)
    .addEventListener("click", () => openCheck(item));
}
$("capture-face").addEventListener("click", () => capture("face"));
$("capture-pan").addEventListener("click", () => capture("pan"));
$("liveness-ask").addEventListener("click", askLiveness);
$("liveness-pass").addEventListener("click", () => markLiveness("passed"));
$("liveness-fail").addEventListener("click", () => markLiveness("failed"));
$("location-confirm").addEventListener("click", confirmLocation);
$("pan-save").addEventListener("click", () => post(`calls/${currentCall}/pan`, { pan: $("pan").value }).then(refreshCall));
$("end-call").addEventListener("click", endCall);

// Keys for the checklist while a call is live (never while typing in a field).
const KEYS = {
  1: () => openCheck("questions"), 2: () => openCheck("liveness"), 3: () => openCheck("face"),
  4: () => openCheck("pan"), 5: () => openCheck("location"),
  6: () => { if (ITEMS.includes("other")) openCheck("other"); },
  q: () => { const i = currentQuestion(view.call); if (i !== null) { openCheck("questions"); askQuestion(i); } },
  c: () => { const i = currentQuestion(view.call); if (i !== null) markQuestion(i, "correct"); },
  x: () => { const i = currentQuestion(view.call); if (i !== null) markQuestion(i, "incorrect"); },
  l: () => { openCheck("liveness"); askLiveness(); },
  p: () => markLiveness("passed"),
  f: () => markLiveness("failed"),
  s: () => capture("face"),
  n: () => { openCheck("pan"); capture("pan"); },
  g: () => { openCheck("location"); confirmLocation(); },
  e: endCall,
};
document.addEventListener("keydown", (event) => {
  if (!view || !view.call || view.call.state !== "active" || $("call").hidden) return;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target.closest("input, textarea, select")) return;
  const action = KEYS[event.key.toLowerCase()];
  if (!action) return;
  event.preventDefault();
  action();
});

$("decision").addEventListener("change", () => {
  $("reason-field").hidden = $("decision").value !== "rejected" || $("reason").options.length < 2;
});

$("decision-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = $("decision-form");
  const id = Number(form.dataset.callId);
  const choice = $("decision");
  const label = choice.options[choice.selectedIndex].textContent;
  if (view && view.call && view.call.id === id && view.call.state === "active") {
    const ended = await post(`calls/${id}/end`);
    if (!ended.ok) return;
  }
  const body = { call_id: id, decision: choice.value, remarks: $("remarks").value };
  if (choice.value === "rejected" && $("reason").value) body.reason = $("reason").value;
  const res = await post(`calls/${id}/decision`, body);
  if (!res.ok) {
    $("call-error").textContent = res.data.message || "The decision was not saved.";
    refreshCall();
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
