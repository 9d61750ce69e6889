// The auditor's console: a work queue (customer, agent, date, call length, how long each
// case has waited; searchable, filterable by agent) and the review of one case: both
// sides of the recording played together, a marker on the timeline for each event of
// the call (a click seeks there), the stills beside the Aadhaar photo, the agent's
// answers and remarks, and the decision, all on one screen.
import { $, api, clock, ekycChecks, el, qualitySummary, setImage, waited } from "./common.js";

let poll = null;
let openCase = null;
let searchTimer = null;

export function start() {
  $("auditor").hidden = false;
  refreshCases();
  poll = setInterval(refreshCases, 5000);
}

export function stop() {
  clearInterval(poll);
  poll = null;
  $("auditor").hidden = true;
  closeCase();
}

async function refreshCases() {
  const params = new URLSearchParams();
  const q = $("queue-search").value.trim();
  if (q) params.set("q", q);
  if ($("queue-agent").value) params.set("agent", $("queue-agent").value);
  const res = await api(`audit/cases${params.size ? `?${params}` : ""}`);
  if (!res.ok) return;
  const cases = res.data.cases;
  $("cases-empty").hidden = cases.length > 0;
  $("cases-empty").textContent = q || $("queue-agent").value ? "No case matches." : "No case is waiting.";
  rememberAgents(cases);
  $("cases").replaceChildren(...cases.map((c) => {
    const b = el("button", { type: "button", class: "case", "data-reference": c.reference_id,
      "aria-current": String(c.reference_id === openCase) },
      el("strong", { text: c.verification_id }),
      el("span", { text: c.customer_name || "name not given" }),
      el("span", { class: "hint", text: [
        c.agent ? `agent ${c.agent}` : "",
        new Date(c.created_at).toLocaleDateString("en-IN", { timeZone: "Asia/Kolkata" }),
        c.call_ms !== null && c.call_ms !== undefined ? `call ${clock(c.call_ms)}` : "no call",
        `waiting ${waited(c.waiting_ms)}`,
      ].filter(Boolean).join(" · ") }));
    b.addEventListener("click", () => showCase(c.reference_id));
    return el("li", {}, b);
  }));
}

// The agents seen in the queue, for the filter (kept while filtering).
const agents = new Map();
function rememberAgents(cases) {
  let added = false;
  for (const c of cases) {
    if (c.agent_id && !agents.has(c.agent_id)) { agents.set(c.agent_id, c.agent); added = true; }
  }
  if (!added) return;
  const select = $("queue-agent");
  const chosen = select.value;
  select.replaceChildren(el("option", { value: "", text: "All agents" }),
    ...[...agents].map(([id, name]) => el("option", { value: id, text: name })));
  select.value = chosen;
}

$("queue-search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(refreshCases, 250);
});
$("queue-agent").addEventListener("change", refreshCases);

function closeCase() {
  openCase = null;
  $("case").hidden = true;
  for (const id of ["recording", "recording-agent"]) {
    $(id).pause();
    $(id).removeAttribute("src");
    $(id).load();
  }
}

// ---- one case ----

const SIDE = { customer: "Customer", agent: "Agent" };

/** What each event of the call is called on the timeline. */
function label(e, questions, seen) {
  const d = e.detail || {};
  const n = typeof d.index === "number" ? d.index + 1 : "";
  switch (e.kind) {
    case "started": return "Call started";
    case "connected": {
      const again = seen.has(d.side);
      seen.add(d.side);
      return `${SIDE[d.side] || d.side} ${again ? "reconnected" : "joined"}`;
    }
    case "lost": return `${SIDE[d.side] || d.side}'s connection lost`;
    case "question_asked": return `Question ${n} asked: ${(questions[d.index] || {}).question || ""}`;
    case "question_answered": return `Question ${n} answered: ${d.answer}`;
    case "liveness_asked": return "Liveness number asked";
    case "liveness_marked": return `Liveness ${d.result}`;
    case "capture": return d.kind === "pan" ? "PAN card still" : "Face still";
    case "pan_entered": return "PAN entered";
    case "location_confirmed": return "Location confirmed";
    case "ended": return `Call ended (${d.state}, by ${d.by})`;
    default: return e.kind;
  }
}

/** The recording's start: the time of its first frame as the server gives it, else the
 * first moment a side's media connected. */
function recordingStart(view) {
  if (view.recording_started_at) return Date.parse(view.recording_started_at);
  const first = (view.call.events || []).find((e) => e.kind === "connected");
  return Date.parse(first ? first.at : view.call.accepted_at);
}

function drawMarkers(view) {
  const bar = $("timeline-bar");
  bar.querySelectorAll(".marker").forEach((m) => m.remove());
  const call = view.call;
  if (!call) return;
  const player = $("recording");
  const duration = Number.isFinite(player.duration) && player.duration > 0
    ? player.duration : (call.duration_ms || 0) / 1000;
  if (!duration) return;
  const start = recordingStart(view);
  const seen = new Set();
  for (const e of call.events || []) {
    const text = label(e, call.questions || [], seen);
    const at = Math.min(duration, Math.max(0, (Date.parse(e.at) - start) / 1000));
    const marker = el("button", { type: "button", class: `marker ${e.kind}`, "data-kind": e.kind,
      "data-at": at.toFixed(3), title: `${clock(at * 1000)} ${text}`, "aria-label": `${clock(at * 1000)} ${text}` });
    marker.style.left = `${(at / duration) * 100}%`;
    marker.addEventListener("click", () => seek(at));
    bar.append(marker);
  }
}

function seek(at) {
  $("recording").currentTime = at;
  $("recording-agent").currentTime = at;
}

// The agent's side (video and the agent's voice) follows the customer's player (video and
// the customer's voice), so the two play as one call.
function follow() {
  const main = $("recording");
  const other = $("recording-agent");
  main.addEventListener("play", () => other.src && other.play().catch(() => {}));
  main.addEventListener("pause", () => other.pause());
  main.addEventListener("seeked", () => { if (other.src) other.currentTime = main.currentTime; });
  main.addEventListener("ratechange", () => { other.playbackRate = main.playbackRate; });
  main.addEventListener("volumechange", () => { other.volume = main.volume; other.muted = main.muted; });
  main.addEventListener("timeupdate", () => {
    if (other.src && Math.abs(other.currentTime - main.currentTime) > 0.3) other.currentTime = main.currentTime;
    const d = main.duration;
    if (Number.isFinite(d) && d > 0) $("playhead").style.left = `${(main.currentTime / d) * 100}%`;
  });
}
follow();

async function showCase(id) {
  const res = await api(`audit/cases/${id}`);
  if (!res.ok) {
    $("audit-error").textContent = res.data.message || "That case cannot be opened.";
    return;
  }
  $("audit-error").textContent = "";
  openCase = id;
  document.querySelectorAll("#cases button").forEach((b) =>
    b.setAttribute("aria-current", String(Number(b.dataset.reference) === id)));
  const view = res.data;
  $("case").hidden = false;
  $("case-title").textContent = `Case ${view.verification_id}: ${view.sub_status}`;
  $("case").dataset.verificationId = view.verification_id;
  const sides = view.recording_sides || {};
  $("recording").src = sides.customer || view.recording_url || "";
  if (sides.agent) $("recording-agent").src = sides.agent; else $("recording-agent").removeAttribute("src");
  $("recording-agent").closest("figure").hidden = !sides.agent;
  $("recording").addEventListener("loadedmetadata", () => drawMarkers(view), { once: true });
  drawMarkers(view);
  details(view);
}

function details(view) {
  const box = $("case-details");
  const a = (view.aadhaar && view.aadhaar.details) || {};
  const call = view.call;
  const parts = [];
  // The stills beside the Aadhaar photo: the face match at a glance.
  const match = el("div", { class: "match" });
  const photo = el("img", { alt: "Photo from Aadhaar", class: "photo" });
  setImage(photo, view.aadhaar_photo && view.aadhaar_photo.url);
  match.append(el("figure", {}, view.aadhaar_photo ? photo : el("span", { class: "none", text: "No Aadhaar photo" }),
    el("figcaption", { text: "Aadhaar photo" })));
  const caps = el("div", { class: "captures" });
  // Labels from the case's agent template (a signature on paper, ...).
  const labels = Object.fromEntries(((view.checklist && view.checklist.captures) || []).map((c) => [c.kind, c.label]));
  const label = (kind) => labels[kind] || kind;
  for (const c of (call && call.captures) || []) {
    const caption = c.kind === "face" ? "Face still" : c.kind === "pan" ? "PAN card" : label(c.kind).charAt(0).toUpperCase() + label(c.kind).slice(1);
    caps.append(el("figure", {}, el("img", { src: c.url, alt: c.kind === "face" ? "Captured face" : `Captured ${label(c.kind)}` }),
      el("figcaption", { text: caption })));
  }
  match.append(caps);
  parts.push(match);

  const facts = el("div", { class: "facts" });
  const p = (text, id) => facts.append(el("p", { text, id }));
  if (view.brand_logo) facts.append(el("img", { src: view.brand_logo, alt: `${view.display_name} logo`, class: "brand-logo", id: "case-logo" }));
  if (view.display_name) p(`For ${view.display_name}`, "case-display-name");
  p(`Customer: ${a.name || (view.user && view.user.name) || "?"}; Aadhaar ${a.aadhaar_last4 ? "XXXX XXXX " + a.aadhaar_last4 : "(from the merchant)"}`);
  if (a.aadhaar_last4) {
    const checks = ekycChecks(view);
    p(`Mobile on Aadhaar: ${checks.mobile}. Name on Aadhaar: ${checks.name}.`);
  }
  const gps = view.location || {};
  if (gps.latitude !== undefined) {
    p(`Location: ${gps.latitude}, ${gps.longitude} (${gps.accuracy_m ? `±${gps.accuracy_m} m` : "accuracy not given"})`);
  }
  if (view.personal_details) {
    p(`Personal details: ${view.personal_details.map((d) => `${d.label}: ${d.value}`).join("; ")}`, "case-personal-details");
  }
  if (view.ip) p(`IP address: ${view.ip.ip}`);
  if (view.consent) p(`Consent given ${view.consent.time} from ${view.consent.ip}`);
  if (view.templates) {
    const t = view.templates;
    p(`Templates: journey ${t.user.name} v${t.user.version}; checklist ${t.agent.name} v${t.agent.version}`, "case-templates");
  }
  p(`Agent's remarks: ${view.agent_remarks || ""}`);
  if (call) {
    p(`Liveness (${call.liveness_code}): ${call.liveness_result || "not marked"}; PAN: ${call.pan || "not entered"}`);
    // As asked: the Hindi text beside the English when the bank has one.
    facts.append(el("ol", { id: "case-questions" }, ...call.questions.map((q) => el("li", {},
      el("span", { text: `${q.question}: ${q.answer || "not marked"}` }),
      ...(q.question_hi ? [" ", el("span", { class: "q-hi", lang: "hi", text: `(${q.question_hi})` })] : [])))));
    const q = call.quality || {};
    p(`${qualitySummary("Customer's connection", q.customer && q.customer.summary)} ` +
      qualitySummary("Agent's connection", q.agent && q.agent.summary), "case-quality");
  }
  facts.append(el("ol", { id: "timeline", class: "hint" }, ...(view.timeline || []).map((h) =>
    el("li", { text: `${h.time} ${h.actor}: ${h.to_sub_status}` }))));
  parts.push(facts);
  box.replaceChildren(...parts);
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
  closeCase();
  refreshCases();
});
