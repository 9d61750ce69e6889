// The call on the customer's page: the invitation with its countdown, then the agent's
// video large and the customer's own small, with mute, camera and end under them, the
// recording mark and timer, and the connection's quality. Drawn with the page's own
// helpers (journey.js passes them).

import { openCall } from "./rtc.js";

let peer = null;
let watcher = null;
// The camera and microphone of the call.
let stream = null;
let stopCheck = null;

export function hangUp() {
  clearInterval(watcher);
  watcher = null;
  if (peer) peer.close();
  peer = null;
  if (stream) for (const track of stream.getTracks()) track.stop();
  stream = null;
  // The devices check's camera, if it is still open.
  if (stopCheck) stopCheck();
}

export async function drawCall(ui, state) {
  const { t, el, app, screen, call_, refresh, draw, after } = ui;
  stopCheck = ui.stopStream;
  let call;
  try {
    call = await call_("GET", "call");
  } catch (_) {
    return screen("call", t("call_heading"), el("p", { text: t("call_waiting") }));
  }
  if (call.state === "invited") {
    const accept = el("button", { type: "button", id: "call-accept", text: t("call_accept") });
    const decline = el("button", { type: "button", id: "call-decline", class: "secondary", text: t("call_decline") });
    const seconds = Math.max(0, Math.round((Date.parse(call.invite_expires_at) - Date.now()) / 1000));
    accept.addEventListener("click", () => after(call_("POST", "call/accept").then(() => call_("GET", "state").then((s) => ({ state: s }))), accept));
    decline.addEventListener("click", () => after(call_("POST", "call/decline").then(() => call_("GET", "state").then((s) => ({ state: s }))), decline));
    // The invitation may lapse or be taken back: look again now and then.
    clearInterval(watcher);
    watcher = setInterval(() => app.dataset.step === "call" && app.dataset.callState === "invited" && refresh(), 3000);
    // A live countdown of the time left to answer.
    const countdown = el("p", { class: "muted", id: "call-countdown", role: "timer", "aria-live": "off", text: t("call_invite_countdown", { seconds }) });
    const ends = Date.parse(call.invite_expires_at);
    const tick = () => {
      if (!document.body.contains(countdown)) return;
      const left = Math.max(0, Math.round((ends - Date.now()) / 1000));
      countdown.textContent = t("call_invite_countdown", { seconds: left });
      countdown.dataset.seconds = left;
      if (left > 0) setTimeout(tick, 1000);
    };
    // Before joining, the customer is told the call is recorded.
    screen("call", t("call_heading"), el("p", { class: "ok", text: t("call_invite") }),
      el("p", { id: "call-recording-notice", text: t("call_recording_notice") }),
      el("p", { class: "muted", text: t("call_invite_time", { seconds }) }), countdown, accept, decline);
    app.dataset.callState = "invited";
    tick();
    return;
  }
  const remote = el("video", { id: "remote-video", autoplay: true, playsinline: true, "aria-label": t("call_agent_video") });
  const local = el("video", { id: "local-video", autoplay: true, playsinline: true, muted: true, "aria-label": t("call_your_video") });
  const status = el("p", { class: "muted", id: "call-status", role: "status", text: t("call_connecting") });
  const quality = el("p", { class: "muted", id: "call-quality", "aria-live": "off" });
  const end = el("button", { type: "button", id: "call-end", class: "danger", text: t("call_end") });
  // Mute and camera: the customer's own tracks, switched off without leaving the call.
  const toggle = (id, kind, on, off) => {
    const button = el("button", { type: "button", id, class: "secondary", "aria-pressed": "false", text: t(on) });
    button.addEventListener("click", () => {
      const muted = button.getAttribute("aria-pressed") !== "true";
      for (const track of (stream ? stream.getTracks() : []).filter((tr) => tr.kind === kind)) track.enabled = !muted;
      button.setAttribute("aria-pressed", String(muted));
      button.textContent = t(muted ? off : on);
    });
    return button;
  };
  const mute = toggle("call-mute", "audio", "call_mute", "call_unmute");
  const camera = toggle("call-camera", "video", "call_camera_off", "call_camera_on");
  end.addEventListener("click", () => {
    hangUp();
    after(call_("POST", "call/end").then(() => call_("GET", "state").then((s) => ({ state: s }))), end);
  });
  // The agent large, the customer's own picture small in a corner, and a mark that
  // says the call is recorded (V-CIP: the customer must know).
  // The REC badge counts the call's time since the customer answered.
  const timer = el("span", { id: "rec-timer", text: "00:00" });
  const stage = el("div", { class: "stage" }, remote,
    el("div", { class: "self" }, local, el("span", { class: "you", id: "local-label", "aria-hidden": "true", text: t("call_you") })),
    el("span", { class: "rec", id: "recording-mark", text: t("call_recording") }),
    el("span", { class: "rec-time", "aria-hidden": "true" }, `${t("call_rec")} `, timer));
  const since = Date.parse(call.accepted_at || "") || Date.now();
  const tickTimer = () => {
    if (!document.body.contains(timer)) return;
    const s = Math.max(0, Math.floor((Date.now() - since) / 1000));
    timer.textContent = `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
    setTimeout(tickTimer, 1000);
  };
  const heading = call.official ? t("call_with", { official: call.official }) : t("call_active_heading");
  // Controls right under the video, so "End call" shows without scrolling on a phone.
  screen("call", heading, stage, el("div", { class: "controls" }, mute, camera, end), status, quality,
    el("p", { class: "muted", text: t("call_active_intro") }));
  app.dataset.callState = "active";
  tickTimer();
  const shown = (state) => {
    app.dataset.media = state;
    status.textContent = t(`call_${state}`);
  };
  const showQuality = (q) => {
    quality.classList.toggle("error", q.poor);
    quality.textContent = t(q.poor ? "call_quality_poor" : "call_quality_good", {
      up: q.upKbps, down: q.downKbps, rtt: q.rttMs ?? "–", loss: q.lossPct,
    });
  };
  try {
    await startMedia(call_, call, remote, local, shown, showQuality);
  } catch (error) {
    status.textContent = error.message;
  }
  // The agent may end the call: follow the request's status.
  clearInterval(watcher);
  watcher = setInterval(async () => {
    try {
      const now = await call_("GET", "state");
      if (now.step !== "call") {
        hangUp();
        draw(now);
      }
    } catch (_) {}
  }, 2000);
}

async function startMedia(call_, call, remote, local, onState, onQuality) {
  hangUp();
  stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
  local.srcObject = stream;
  peer = await openCall({
    stream,
    remote,
    iceServers: call.ice_servers || [],
    send: async (sdp) => (await call_("POST", "call/offer", { sdp })).sdp,
    onState,
    onQuality,
  });
}
