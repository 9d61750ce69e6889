// The customer journey: draws the step the server says the customer is at, runs that
// step's check in the browser, sends the result, and draws the next step. The server
// decides every outcome; this page only collects what it needs.
import { drawMobileOtp, drawPersonalDetails } from "./evidence.js";
import { drawCall, hangUp } from "./call.js";

const key = location.pathname.split("/")[2];
const api = (path) => `/v/${key}/api/${path}`;
const app = document.getElementById("app");
// The steps before the call, as the request's user template lists them (its state says).
let steps = ["consent", "aadhaar", "ip", "location", "devices", "waiting"];
// The languages the template offers, the first being the one it opens in.
let languages = ["en", "hi"];

let lang = pickLanguage();
let text = {};
let socket = null;
// The Aadhaar file last chosen: kept for the next attempt after a failed one.
let aadhaarFile = null;
// What the browser answered for the camera and the microphone at the last check.
let lastDevices = null;

/** Where to change a permission, for the customer's own browser. */
function browserKind() {
  const ua = navigator.userAgent;
  if (/iPhone|iPad|iPod/.test(ua)) return "iphone";
  if (/Android/.test(ua)) return "android";
  return "desktop";
}
let stream = null;

function pickLanguage() {
  const asked = new URLSearchParams(location.search).get("lang");
  const saved = safeStorage("get", "vkyc-lang");
  const choice = asked || saved || (navigator.language || "en").slice(0, 2);
  return choice === "hi" ? "hi" : "en";
}

function safeStorage(op, name, value) {
  try {
    return op === "get" ? localStorage.getItem(name) : localStorage.setItem(name, value);
  } catch (_) {
    return null;
  }
}

function t(name, values = {}) {
  let s = text[name];
  if (Array.isArray(s)) s = s.join("\n\n");
  if (typeof s !== "string") return name;
  return s.replace(/\{(\w+)\}/g, (_, k) => (k in values ? String(values[k]) : `{${k}}`));
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

async function loadText() {
  const response = await fetch(`/assets/journey/i18n/${lang}.json`);
  text = await response.json();
  document.documentElement.lang = lang;
  document.title = t("title");
  document.getElementById("brand").textContent = t("title");
  const toggle = document.getElementById("lang");
  toggle.textContent = t("other_lang");
  toggle.lang = lang === "en" ? "hi" : "en";
  toggle.hidden = languages.length < 2;
}

/** Keeps the page in a language the request's template offers. */
async function followLanguages(state) {
  if (!Array.isArray(state.languages) || !state.languages.length) return;
  languages = state.languages;
  if (!languages.includes(lang)) {
    lang = languages[0];
    await loadText();
  } else {
    document.getElementById("lang").hidden = languages.length < 2;
  }
}

async function call_(method, path, body, headers = {}) {
  const options = { method, headers: { ...headers } };
  if (body instanceof Blob) options.body = body;
  else if (body !== undefined) {
    options.body = JSON.stringify(body);
    options.headers["content-type"] = "application/json";
  }
  const response = await fetch(api(path), options);
  let data = null;
  try {
    data = await response.json();
  } catch (_) {}
  if (!response.ok) {
    const error = new Error((data && data.message) || response.statusText);
    error.status = response.status;
    error.code = data && data.code;
    error.retryAfter = Number(response.headers.get("retry-after")) || 0;
    throw error;
  }
  return data;
}

// ---- drawing ----

// The queue, a booked slot and the call are all the last step's: the video call.
const AT_CALL = ["queue", "scheduled", "call"];

/** The bar of steps with their names: done, current, to come. */
function progressBar(step) {
  const at = steps.indexOf(AT_CALL.includes(step) ? "waiting" : step);
  if (at < 0) return null;
  return el("ol", { class: steps.length > 6 ? "steps many" : "steps", id: "steps", "aria-label": t("progress_label") },
    ...steps.map((s, i) => el("li", {
      class: i < at ? "done" : i === at ? "current" : null,
      "aria-current": i === at ? "step" : null,
      "data-step": s,
      text: t(`step_name_${s}`),
    })));
}

function screen(step, heading, ...body) {
  closeSocket();
  app.replaceChildren();
  const index = steps.indexOf(step);
  const bar = progressBar(step);
  if (bar) app.append(bar);
  if (index >= 0) app.append(el("p", { class: "progress", text: t("step_of", { n: index + 1, total: steps.length }) }));
  const h1 = el("h1", { id: "heading", tabindex: "-1", text: heading });
  app.append(h1, ...body.filter(Boolean));
  app.dataset.step = step;
  h1.focus();
}

function alertBox(message) {
  return el("p", { class: "alert", role: "alert", id: "message", text: message });
}

/** An ordinary state the customer should know of (no agent free now, a booking they
 * cancelled): said calmly, not as an error. */
function infoBox(message) {
  return el("p", { class: "info", role: "status", id: "message", text: message });
}

function reasonText(reason, fallback) {
  return reason && text[`reason_${reason}`] ? t(`reason_${reason}`) : t(fallback);
}

function busy(button, on) {
  button.disabled = on;
  button.setAttribute("aria-busy", on ? "true" : "false");
}

async function refresh(notice) {
  let state;
  try {
    state = await call_("GET", "state");
  } catch (error) {
    if (error.status === 404 || error.status === 410) return location.reload();
    return screen("error", t("error_generic"), alertBox(error.message));
  }
  await followLanguages(state);
  draw(state, notice);
}

// After a step: show the next step, with a message when the step has to be retried.
async function after(promise, button) {
  if (button) busy(button, true);
  try {
    const result = await promise;
    draw(result.state, result.reason);
  } catch (error) {
    if (button) busy(button, false);
    const box = document.getElementById("message") || app.appendChild(alertBox(""));
    box.textContent = error.code === "slot_full" ? t("slots_taken") : error.message || t("error_generic");
    if (error.status === 409 && error.code === "journey_step_invalid") refresh();
  }
}

const DONE_NEXT = {
  AUDITOR_APPROVED: "done_reviewed",
  AUDITOR_REJECTED: "done_reviewed",
  TECHNICAL_ERROR: "done_problem",
  INSUFFICIENT_BALANCE: "done_problem",
};

/** The bank's own name and colour, from the request's user template: a customer who
 * cannot see which bank is calling may take the link for phishing. */
function applyBrand(brand) {
  if (!brand) return;
  const title = brand.name ? t("brand_title", { name: brand.name }) : t("title");
  const name = document.getElementById("brand");
  name.textContent = title;
  // The bank's logo, served by this server from the template's upload.
  if (brand.logo && /^\/brand\/[0-9a-f]{64}\.png$/.test(brand.logo)) {
    name.prepend(el("img", { id: "brand-logo", src: brand.logo, alt: "", class: "logo" }));
  }
  document.title = title;
  const bar = document.querySelector(".bar");
  const colour = /^#[0-9a-fA-F]{6}$/.test(brand.colour || "") ? brand.colour : "";
  bar.style.background = colour;
  // Text that stays readable on the bank's colour (WCAG relative luminance).
  const lum = colour ? [1, 3, 5].map((i) => parseInt(colour.slice(i, i + 2), 16) / 255)
    .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4))
    .reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0) : 0;
  bar.classList.toggle("light", lum > 0.18);
}

/** What to keep ready, how long it takes, and when the bank's officials take calls. */
function beforeYouStart(ready) {
  if (!ready) return null;
  const items = [ready.pan_card && t("ready_pan"), ready.paper_and_pen && t("ready_paper"),
    t("ready_light"), t("ready_network")].filter(Boolean);
  const days = (ready.days || []).map((d) => t(`day_${d}`)).join(", ");
  return el("section", { class: "ready", id: "before-you-start", "aria-labelledby": "ready-heading" },
    el("h2", { id: "ready-heading", text: t("ready_heading") }),
    el("p", { text: t("ready_intro", { minutes: ready.minutes }) }),
    el("ul", {}, ...items.map((i) => el("li", { text: i }))),
    days && ready.hours ? el("p", { id: "ready-hours", text: t("ready_hours", { days, hours: ready.hours.replace("-", "–") }) }) : null);
}

function draw(state, reason) {
  const s = state.sub_status;
  if (Array.isArray(state.steps)) steps = state.steps;
  applyBrand(state.brand);
  switch (state.step) {
    case "mobile_otp": return drawMobileOtp(ui(), state, reason);
    case "personal_details": return drawPersonalDetails(ui(), state, reason);
    case "consent": return drawConsent(state);
    case "aadhaar": return drawAadhaar(state, reason);
    case "ip": return drawIp(state);
    case "location": return drawLocation(state);
    case "devices": return drawDevices(state);
    case "waiting": return drawWaiting(state);
    case "queue": return drawQueue(state);
    case "scheduled": return drawScheduled(state);
    case "call": return drawCall(ui(), state);
    case "expired": return location.reload();
    // What happens next, in words: never a raw status code.
    default: return screen("done", t("done_heading"), el("p", { text: t("done_intro") }),
      el("p", { id: "done-next", text: t(DONE_NEXT[s] || "done_review") }));
  }
}

// ---- steps ----

async function sha256Hex(value) {
  const bytes = new TextEncoder().encode(value);
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function drawConsent(state) {
  // The template's own consent text for this language, else vkyc's; the server keeps
  // the consent only for the text it holds, by its digest.
  const own = state.consent_text && state.consent_text[lang];
  const source = own ? own.trim().split("\n\n") : Array.isArray(text.consent_text) ? text.consent_text : [text.consent_text];
  const paragraphs = source.map((p) => el("p", { text: p }));
  const box = el("input", { type: "checkbox", id: "agree" });
  const button = el("button", { type: "submit", id: "consent-submit", disabled: true, text: t("consent_submit") });
  box.addEventListener("change", () => (button.disabled = !box.checked));
  const form = el("form", {}, el("label", { class: "check", for: "agree" }, box, el("span", { text: t("consent_agree") })), button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const shown = paragraphs.map((p) => p.textContent).join("\n\n");
    const digest = await sha256Hex(shown);
    after(call_("POST", "consent", { lang, agree: box.checked, text_sha256: digest }), button);
  });
  screen("consent", t("consent_heading"), firstScreen(state) ? beforeYouStart(state.before_you_start) : null,
    el("div", { class: "consent" }, ...paragraphs), form);
}

/** Whether this step opens the journey (it then says what to keep ready). */
function firstScreen(state) {
  return steps[0] === state.step;
}

/** What the evidence steps' screens (evidence.js) draw with. */
function ui() {
  return { t, el, lang, app, screen, alertBox, busy, call_, refresh, draw, after, stopStream, beforeYouStart, firstScreen };
}

function drawAadhaar(state, reason) {
  const failed = state.sub_status === "AADHAAR_VERIFICATION_FAILED";
  const expired = state.sub_status === "AADHAAR_VERIFICATION_EXPIRED";
  const file = el("input", { type: "file", id: "aadhaar-file", accept: ".zip,application/zip", required: true });
  if (aadhaarFile) {
    const kept = new DataTransfer();
    kept.items.add(aadhaarFile);
    file.files = kept.files;
  }
  file.addEventListener("change", () => (aadhaarFile = file.files[0] || null));
  const code = el("input", { type: "text", id: "share-code", autocomplete: "off", required: true, maxlength: "16", inputmode: "text", "aria-describedby": "share-code-hint" });
  const button = el("button", { type: "submit", id: "aadhaar-submit", text: t("aadhaar_submit") });
  const clock = el("p", { class: "muted", id: "aadhaar-clock" });
  if (state.step_started_at) {
    const ends = Date.parse(state.step_started_at) + state.aadhaar_session_seconds * 1000;
    const tick = () => {
      const left = Math.max(0, Math.round((ends - Date.now()) / 1000));
      clock.textContent = t("aadhaar_time_left", { time: `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}` });
      if (left === 0) return refresh();
      if (document.body.contains(clock)) setTimeout(tick, 1000);
    };
    setTimeout(tick, 0);
  }
  const form = el("form", {},
    el("label", { for: "aadhaar-file", text: t("aadhaar_file") }), file,
    el("label", { for: "share-code", text: t("aadhaar_share_code") }), code,
    el("p", { class: "muted", id: "share-code-hint", text: t("aadhaar_share_code_hint") }),
    button);
  // How to get the file, step by step, for a customer who has never downloaded it.
  const howto = el("details", { id: "aadhaar-howto" }, el("summary", { text: t("aadhaar_howto_summary") }),
    el("ol", {}, ...[1, 2, 3].map((n) => el("li", { text: t(`aadhaar_howto_${n}`) }))));
  const left = state.aadhaar_attempts_left;
  const attempts = failed && left != null
    ? el("p", { id: "aadhaar-attempts", text: left > 0 ? t("aadhaar_attempts_left", { n: left }) : t("aadhaar_attempts_none") })
    : null;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!file.files[0]) return;
    after(call_("POST", "aadhaar", file.files[0], { "x-share-code": code.value.trim(), "content-type": "application/zip" }), button);
  });
  // A DigiLocker-style provider, where the template offers one: the customer leaves for
  // the provider's page and comes back here with the outcome.
  // One primary action: DigiLocker when it is offered (fewer steps), the upload else.
  let digilocker = null;
  if ((state.aadhaar_methods || []).includes("digilocker")) {
    button.classList.add("secondary");
    const go = el("button", { type: "button", id: "digilocker", text: t("aadhaar_digilocker") });
    go.addEventListener("click", async () => {
      busy(go, true);
      try {
        location.assign((await call_("POST", "digilocker", {})).url);
      } catch (error) {
        busy(go, false);
        refresh();
      }
    });
    digilocker = el("section", { id: "digilocker-box" }, el("p", { text: t("aadhaar_digilocker_intro") }), go,
      el("h2", { text: t("aadhaar_or_upload") }));
  }
  const lastReason = reason || state.last_reason;
  screen("aadhaar", t("aadhaar_heading"),
    // The cause first, then what to do.
    failed ? alertBox(lastReason && lastReason.startsWith("digilocker") ? reasonText(lastReason, "error_generic") : `${reasonText(lastReason, "error_generic")} ${t("aadhaar_failed")}`) : null,
    attempts,
    expired ? alertBox(t("aadhaar_expired")) : null,
    state.sub_status === "TECHNICAL_FAILURE" ? alertBox(t("technical_failure")) : null,
    digilocker, el("p", { text: t("aadhaar_intro") }), howto, form, clock);
}

function drawIp(state) {
  const button = el("button", { type: "button", id: "ip-submit", text: state.sub_status === "USER_PROXY_DETECTED" || state.sub_status === "USER_LOCATION_OUTSIDE_INDIA" || state.sub_status === "TECHNICAL_FAILURE" ? t("try_again") : t("ip_submit") });
  button.addEventListener("click", () => after(call_("POST", "ip"), button));
  const notice = {
    USER_PROXY_DETECTED: `${t("ip_proxy")} ${t("ip_proxy_howto")}`,
    USER_LOCATION_OUTSIDE_INDIA: t("ip_outside"),
    TECHNICAL_FAILURE: t("technical_failure"),
  }[state.sub_status];
  screen("ip", t("ip_heading"), notice ? alertBox(notice) : null, el("p", { text: t("ip_intro") }), button);
}

function drawLocation(state) {
  // Outside India is an end for now, not a retry: what to do next, and a quiet way to
  // check again once the customer is in India.
  const outside = state.sub_status === "USER_LOCATION_OUTSIDE_INDIA";
  const button = el("button", { type: "button", id: "location-submit", class: outside ? "secondary" : null,
    text: outside ? t("location_outside_again") : t("location_submit") });
  const notice = {
    USER_LOCATION_PERMISSION_DISABLED: t("location_denied"),
    USER_LOCATION_OUTSIDE_INDIA: t("location_outside"),
  }[state.sub_status];
  button.addEventListener("click", () => {
    busy(button, true);
    const send = (body) => after(call_("POST", "location", body), button);
    if (!navigator.geolocation) return send({ permission: "unavailable" });
    navigator.geolocation.getCurrentPosition(
      (p) => send({ permission: "granted", latitude: p.coords.latitude, longitude: p.coords.longitude, accuracy: p.coords.accuracy }),
      (e) => send({ permission: e.code === 1 ? "denied" : "unavailable" }),
      { enableHighAccuracy: true, timeout: 20000, maximumAge: 0 },
    );
  });
  // Denied: the browser will not ask again by itself, so say where to allow it.
  const denied = state.sub_status === "USER_LOCATION_PERMISSION_DISABLED";
  const help = denied ? el("p", { id: "location-help", text: t(`location_denied_${browserKind()}`) }) : null;
  const until = new Date(state.link_expiry).toLocaleString(lang === "hi" ? "hi-IN" : "en-IN",
    { dateStyle: "medium", timeStyle: "short", timeZone: "Asia/Kolkata" });
  const next = outside
    ? el("p", { id: "location-next", text: t("location_outside_next", { expiry: `${until} IST` }) })
    : el("p", { text: denied ? t("location_retry_intro") : t("location_intro") });
  screen("location", t("location_heading"), notice ? alertBox(notice) : null, help, next, button);
}

function classify(error) {
  if (!error) return "ok";
  if (error.name === "NotAllowedError" || error.name === "SecurityError") return "denied";
  if (error.name === "NotFoundError" || error.name === "OverconstrainedError") return "missing";
  return "error";
}

async function tryDevice(constraints) {
  try {
    return { stream: await navigator.mediaDevices.getUserMedia(constraints), result: "ok" };
  } catch (error) {
    return { stream: null, result: classify(error) };
  }
}

async function measureBandwidth() {
  const started = performance.now();
  const response = await fetch(api("bandwidth"), { cache: "no-store" });
  const bytes = (await response.arrayBuffer()).byteLength;
  const seconds = Math.max((performance.now() - started) / 1000, 0.001);
  return Math.round((bytes * 8) / 1000 / seconds);
}

async function measureLevel(audioStream, meter, millis) {
  const context = new AudioContext();
  const source = context.createMediaStreamSource(audioStream);
  const analyser = context.createAnalyser();
  analyser.fftSize = 1024;
  source.connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  let peak = 0;
  const until = performance.now() + millis;
  while (performance.now() < until) {
    analyser.getFloatTimeDomainData(samples);
    for (const v of samples) peak = Math.max(peak, Math.abs(v));
    meter.value = Math.min(1, peak);
    await new Promise((r) => setTimeout(r, 50));
  }
  context.close();
  return Math.round(peak * 1000) / 1000;
}

function stopStream() {
  if (stream) stream.getTracks().forEach((track) => track.stop());
  stream = null;
}

function drawDevices(state) {
  const button = el("button", { type: "button", id: "devices-submit", text: t("devices_submit") });
  const video = el("video", { id: "preview", autoplay: true, muted: true, playsinline: true, "aria-label": t("devices_preview") });
  const meter = el("meter", { id: "level", min: "0", max: "1", value: "0" });
  const speed = el("p", { class: "muted", id: "bandwidth" });
  const status = el("p", { class: "muted", id: "devices-status" });
  // Not allowed and not available are told apart: each has its own fix.
  const why = (device) => {
    const result = lastDevices && lastDevices[device];
    if (result === "denied") return t(`devices_${device}_denied`);
    if (result === "missing" || result === "error") return t(`devices_${device}_missing`);
    return t(`devices_${device}_failed`);
  };
  const notice = {
    USER_VIDEO_CHECK_FAILED: why("camera"),
    USER_AUDIO_CHECK_FAILED: why("microphone"),
  }[state.sub_status];
  button.addEventListener("click", async () => {
    busy(button, true);
    status.textContent = t("devices_checking");
    const camera = await tryDevice({ video: true });
    const microphone = await tryDevice({ audio: true });
    stopStream();
    stream = new MediaStream([...(camera.stream ? camera.stream.getTracks() : []), ...(microphone.stream ? microphone.stream.getTracks() : [])]);
    const body = { camera: camera.result, microphone: microphone.result };
    lastDevices = body;
    if (camera.stream) {
      video.srcObject = camera.stream;
      const settings = camera.stream.getVideoTracks()[0].getSettings();
      body.video_width = settings.width || 0;
      body.video_height = settings.height || 0;
    }
    if (microphone.stream) body.audio_peak = await measureLevel(microphone.stream, meter, 1500);
    try {
      body.bandwidth_kbps = await measureBandwidth();
      speed.textContent = t("devices_bandwidth", { kbps: body.bandwidth_kbps });
    } catch (_) {}
    stopStream();
    after(call_("POST", "devices", body), button);
  });
  screen("devices", t("devices_heading"), notice ? alertBox(notice) : null, el("p", { text: t("devices_intro") }),
    video, el("label", { for: "level", text: t("devices_level") }), meter, speed, status, button);
}

function slotPicker(afterBooking) {
  const wrap = el("section", { id: "slots", "aria-labelledby": "slots-heading" }, el("h2", { id: "slots-heading", text: t("slots_heading") }));
  call_("GET", "slots").then((data) => {
    if (!data.slots.length) return wrap.append(el("p", { id: "no-slots", text: t("slots_none") }));
    const select = el("select", { id: "slot" }, ...data.slots.map((s) => el("option", { value: s.start, text: s.label })));
    const button = el("button", { type: "submit", id: "slot-submit", text: t("slots_submit") });
    const form = el("form", {}, el("label", { for: "slot", text: t("slots_label") }), select, button);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      after(call_("POST", "slots", { slot_start: select.value }), button).then(afterBooking);
    });
    wrap.append(form);
  }).catch((error) => wrap.append(alertBox(error.message)));
  return wrap;
}

function drawWaiting(state) {
  const calm = { NO_AGENT_FOUND: t("no_agent"), USER_MEETING_CANCELLED: t("meeting_cancelled") }[state.sub_status];
  const problem = {
    USER_MISSED_MEETING: t("missed_meeting"),
    USER_DROPPED_OFF: t("dropped"),
    AGENT_DROPPED_OFF: t("dropped"),
  }[state.sub_status];
  const join = el("button", { type: "button", id: "join-queue", text: state.sub_status === "NO_AGENT_FOUND" ? t("try_again") : t("join_queue") });
  join.addEventListener("click", () => after(call_("POST", "queue"), join));
  const book = el("button", { type: "button", id: "book-slot", class: "secondary", text: t("book_slot") });
  book.addEventListener("click", () => {
    book.remove();
    app.append(slotPicker());
  });
  const notice = calm ? infoBox(calm) : problem ? alertBox(problem) : el("p", { text: t("waiting_intro") });
  screen("waiting", t("waiting_heading"), notice, join,
    state.sub_status === "NO_AGENT_FOUND" ? slotPicker() : book);
}

function closeSocket() {
  if (socket) {
    socket.onclose = null;
    socket.close();
  }
  socket = null;
}

function drawQueue(state) {
  const position = el("p", { class: "big", id: "queue-position", text: "…" });
  const wait = el("p", { id: "queue-wait", text: t("queue_wait_unknown") });
  const book = el("button", { type: "button", id: "book-slot", class: "secondary", text: t("book_slot") });
  book.addEventListener("click", () => {
    book.remove();
    app.append(slotPicker());
  });
  screen("queue", t("queue_heading"),
    state.sub_status === "SCHEDULED_USER_QUEUED" ? el("p", { class: "ok", text: t("queue_scheduled") }) : null,
    position, wait, el("p", { class: "muted", text: t("queue_keep_open") }),
    state.sub_status === "USER_QUEUED" ? book : null);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/v/${key}/ws`);
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "queue") {
      position.textContent = t("queue_position", { position: message.position });
      position.dataset.position = message.position;
      wait.textContent = message.expected_wait_seconds == null
        ? t("queue_wait_unknown")
        : t("queue_wait", { minutes: Math.max(1, Math.round(message.expected_wait_seconds / 60)) });
    } else if (message.type === "status" && message.step !== "queue") {
      refresh();
    }
  };
  socket.onclose = () => setTimeout(() => app.dataset.step === "queue" && refresh(), 2000);
  // A proxy may hold a WebSocket open and pass nothing: look at the state now and then
  // all the same, so an invitation is never missed.
  clearInterval(queueWatch);
  queueWatch = setInterval(async () => {
    if (app.dataset.step !== "queue") return clearInterval(queueWatch);
    const now = await call_("GET", "state").catch(() => null);
    if (now && now.step !== "queue" && app.dataset.step === "queue") {
      closeSocket();
      draw(now);
    }
  }, 5000);
}
let queueWatch = null;

function drawScheduled(state) {
  const slot = Date.parse(state.meeting_schedule);
  const open = Date.now() >= slot - 10 * 60 * 1000;
  // Not the primary action before the slot opens: there is nothing to join yet.
  const join = el("button", { type: "button", id: "join-slot", disabled: !open, class: open ? null : "secondary", text: t("scheduled_join") });
  join.addEventListener("click", () => after(call_("POST", "queue"), join));
  const cancel = el("button", { type: "button", id: "cancel-slot", class: "secondary", text: t("scheduled_cancel") });
  cancel.addEventListener("click", () => after(call_("DELETE", "slots"), cancel));
  const move = el("button", { type: "button", id: "reschedule", class: "secondary", text: t("scheduled_reschedule") });
  move.addEventListener("click", () => {
    move.remove();
    app.append(slotPicker());
  });
  screen("scheduled", t("scheduled_heading"),
    el("p", { class: "ok", id: "slot-time", text: t("scheduled_at", { time: state.meeting_schedule_text }) }),
    open ? null : el("p", { class: "muted", text: t("scheduled_not_yet") }),
    join, move, cancel);
}

// ---- start ----

document.getElementById("lang").addEventListener("click", async () => {
  lang = lang === "en" ? "hi" : "en";
  safeStorage("set", "vkyc-lang", lang);
  await loadText();
  refresh();
});

window.addEventListener("pagehide", () => {
  hangUp();
  stopStream();
  closeSocket();
});

await loadText();
await refresh();
