// What every desk console shares: the element lookup and the API call, which carries
// the session's CSRF token and reports a lapsed session to whoever signed in.

export const $ = (id) => document.getElementById(id);

const session = { csrf: "", onSignedOut: () => {} };

export function setSession(csrf, onSignedOut) {
  session.csrf = csrf;
  if (onSignedOut) session.onSignedOut = onSignedOut;
}

export async function api(path, body) {
  const init = { method: body === undefined ? "GET" : "POST", credentials: "same-origin",
                 headers: {} };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    if (session.csrf) init.headers["x-csrf-token"] = session.csrf;
    init.body = JSON.stringify(body);
  }
  const res = await fetch(`/desk/api/${path}`, init);
  let data = {};
  try { data = await res.json(); } catch { /* not JSON */ }
  if (res.status === 401 && path !== "login" && path !== "me") session.onSignedOut();
  return { ok: res.ok, status: res.status, data };
}

/** A file as the body of a POST (a logo), with the session's CSRF token. */
export async function upload(path, file) {
  const res = await fetch(`/desk/api/${path}`, {
    method: "POST", credentials: "same-origin", body: file,
    headers: { "content-type": file.type || "application/octet-stream", "x-csrf-token": session.csrf },
  });
  let data = {};
  try { data = await res.json(); } catch { /* not JSON */ }
  if (res.status === 401) session.onSignedOut();
  return { ok: res.ok, status: res.status, data };
}

/** An element with attributes and text or children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.dataset[k.slice(5).replace(/-./g, (m) => m[1].toUpperCase())] = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children.filter((c) => c !== undefined && c !== null));
  return node;
}

/** Milliseconds as m:ss (or h:mm:ss). */
export function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(h ? 2 : 1, "0");
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** A duration in words, for how long something has waited. */
export function waited(ms) {
  const m = Math.floor(ms / 60000);
  if (m < 1) return "under a minute";
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h} h ${m % 60} min` : `${Math.floor(h / 24)} days`;
}

// How the Aadhaar file compares with the customer the merchant named.
const MATCH_WORDS = {
  match: "matches the customer's",
  mismatch: "does NOT match the customer's",
  not_available: "not available to compare",
};

export function ekycChecks(view) {
  const c = view.aadhaar_checks || {};
  return {
    mobile: MATCH_WORDS[c.mobile] || MATCH_WORDS.not_available,
    name: MATCH_WORDS[c.name] || MATCH_WORDS.not_available,
  };
}

/** Sets an image's source only when it changed, so a refresh does not fetch it again. */
export function setImage(img, src) {
  if (!src) { img.removeAttribute("src"); img.hidden = true; return; }
  if (img.getAttribute("src") !== src) img.src = src;
  img.hidden = false;
}

/** A call's quality summary as kept with the call, in a line. */
export function qualitySummary(name, s) {
  if (!s || !s.seconds) return `${name}: no figures.`;
  return `${name}: video ${s.video_kbps_min}–${s.video_kbps_avg} kbit/s (min–avg), loss ${s.loss_pct_avg ?? 0} % avg / ` +
    `${s.loss_pct_max ?? 0} % max, round trip ${s.rtt_ms_avg ?? "–"} ms avg, ${s.freezes} freeze(s) (${s.frozen_ms} ms), ` +
    `${s.reconnections} reconnection(s)${s.transport ? `, over ${s.transport}` : ""}.`;
}
