// Case search and the case file, for admins and auditors: a search form, a page of
// results at a time, and the whole case file of the case opened, with its export.
import { drawIndia, describe } from "./map.js";
import { api, el as h, qualitySummary } from "./common.js";

const STATUSES = ["RECEIVED", "PRE_VIDEO_CALL", "VIDEO_CALL", "AGENT_REVIEWED", "AUDITOR_REVIEWED",
  "REJECTED", "FAILED", "EXPIRED"];
const FIELDS = [
  ["verification_id", "Verification ID"], ["reference_id", "Reference ID"], ["user_id", "User ID"],
  ["phone", "Phone"], ["name", "Name"], ["sub_status", "Sub-status"], ["agent", "Agent (username)"],
];

const ist = (iso) => iso ? new Date(iso).toLocaleString("en-IN", { timeZone: "Asia/Kolkata" }) + " IST" : "–";

/** A definition list of [name, value] pairs, leaving out empty values. */
function facts(rows) {
  const dl = h("dl");
  for (const [name, value] of rows) {
    if (value === undefined || value === null || value === "") continue;
    dl.append(h("dt", { text: name }), h("dd", { text: String(value) }));
  }
  return dl;
}

function part(id, title, ...children) {
  return h("section", { id, class: "case-part", "aria-labelledby": `${id}-title` },
    h("h4", { id: `${id}-title`, text: title }), ...children);
}

/** A list, or "None." when it is empty. */
function list(items) {
  return items.length ? h("ul", {}, ...items) : h("p", { class: "hint", text: "None." });
}

function json(value) {
  return h("pre", { class: "case-json", text: JSON.stringify(value, null, 2) });
}

/** Retention: the legal hold (admins place and release it), the relationship's end, and
 *  whether the personal data has been removed (then the file is a tombstone). */
function retentionPart(view, admin, reopen) {
  const r = view.retention || {};
  const rows = facts([
    ["Legal hold", r.legal_hold ? `since ${ist(r.legal_hold.since)} by ${r.legal_hold.by}: ${r.legal_hold.reason}` : "none"],
    ["Relationship ended", r.relationship_end],
    ["Personal data removed", r.personal_data_purged_at && ist(r.personal_data_purged_at)],
  ]);
  const section = part("case-retention", "Retention", rows);
  if (!admin || r.personal_data_purged_at) return section;
  const reason = h("input", { id: "hold-reason", autocomplete: "off", maxlength: "500" });
  const status = h("p", { id: "hold-status", role: "status" });
  const action = r.legal_hold ? "release" : "hold";
  const button = h("button", { type: "submit", id: "hold-button",
    text: r.legal_hold ? "Release the legal hold" : "Place a legal hold" });
  const form = h("form", { id: "hold-form" },
    h("div", { class: "field" }, h("label", { for: "hold-reason", text: "Reason (kept and audited)" }), reason),
    button, status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const res = await api(`admin/cases/${view.reference_id}/${action}`, { reason: reason.value });
    if (!res.ok) { status.textContent = res.data.message || "That did not work."; return; }
    reopen(view.reference_id);
  });
  section.append(form);
  return section;
}

function renderCase(view, box, admin, reopen) {
  const a = view.aadhaar || {};
  const loc = (view.location && view.location.evidence) || {};
  const map = h("div", { id: "case-map" }, h("p", { class: "map-caption", text: describe({ lat: loc.latitude, lon: loc.longitude, accuracy_m: loc.accuracy_m }) }));
  const ip = (view.ip && view.ip.evidence) || {};
  // The verdict is one of Allowed, OutsideIndia, Proxy, Unavailable, with its details.
  const [verdict, about] = Object.entries(ip.verdict || {})[0] || ["not checked", {}];
  box.replaceChildren(
    ...(view.brand_logo ? [h("img", { src: view.brand_logo, alt: `${view.display_name} logo`, class: "brand-logo", id: "case-logo" })] : []),
    h("h3", { id: "case-file-title", text: `Case ${view.verification_id}` }),
    h("p", {}, h("a", { id: "case-export", class: "button", href: `/desk/api/cases/${view.reference_id}/export`,
      download: `case-${view.verification_id}.zip`, text: "Export (signed ZIP)" })),
    part("case-summary", "Summary", facts([
      ["Reference ID", view.reference_id], ["Merchant", view.merchant], ["Shown to the customer as", view.display_name],
      ["Status", view.status],
      ["Sub-status", `${view.sub_status} (${view.sub_status_description})`], ["Created", ist(view.created_at)],
      ["Link expiry", ist(view.link_expiry)], ["Agent's remarks", view.agent_remarks],
      ["Auditor's remarks", view.auditor_remarks],
      ["Journey template", view.templates && `${view.templates.user.name} v${view.templates.user.version}`],
      ["Agent template", view.templates && `${view.templates.agent.name} v${view.templates.agent.version}`],
    ])),
    retentionPart(view, admin, reopen),
    part("case-customer", "Customer", facts([
      ["User ID", view.user.user_id], ["Name", view.user.name], ["Phone", view.user.phone],
      ["E-mail", view.user.email], ["Address", view.user.address],
    ])),
    ...(view.personal_details ? [part("case-personal-details", "Personal details",
      facts(view.personal_details.map((d) => [d.label, d.value])))] : []),
    part("case-aadhaar", "Aadhaar", view.aadhaar ? facts([
      ["Aadhaar number", a.number || "not given (details from the merchant)"], ["Source", a.source],
      ["Name", a.name], ["Date of birth", a.dob], ["Gender", a.gender],
      ["Mobile on Aadhaar", a.checks && a.checks.mobile], ["Name on Aadhaar", a.checks && a.checks.name],
    ]) : h("p", { text: "No Aadhaar details." }),
    a.photo ? h("img", { src: a.photo, alt: "Photo from Aadhaar", class: "photo" }) : null),
    // drawIndia writes the coordinates under the outline; until it has, they are here.
    part("case-location", "Location", map),
    part("case-ip", "IP check", facts([
      ["Address", ip.ip], ["Verdict", verdict], ["Country", about && about.country],
      ["Reason", about && about.reason], ["Outcome", view.ip && view.ip.outcome], ["Note", ip.sandbox],
    ])),
    part("case-consent", "Consent", view.consent ? facts([
      ["Given", ist(view.consent.time)], ["From", view.consent.ip], ["Browser", view.consent.user_agent],
      ["Language", view.consent.lang], ["Text SHA-256", view.consent.text_sha256],
    ]) : h("p", { text: "No consent recorded." }),
    view.consent ? h("blockquote", { id: "case-consent-text", text: view.consent.text }) : null),
    part("case-timeline", "Timeline", h("ol", { id: "case-timeline-list" },
      ...view.timeline.map((t) => h("li", { text: `${ist(t.time)} — ${t.actor}: ${t.event} → ${t.to_sub_status}` })))),
    part("case-journey", "Journey evidence", h("ol", {},
      ...view.journey.map((s) => h("li", {}, h("strong", { text: `${s.step}: ${s.outcome || "open"}` }),
        h("span", { text: ` (${ist(s.started_at)} – ${ist(s.ended_at)})` }), s.evidence ? json(s.evidence) : null)))),
    part("case-calls", "Calls", view.calls.length ? null : h("p", { text: "No call." }),
      ...view.calls.map((c) => h("article", { class: "case-call", "data-call-id": c.id },
        h("h5", { text: `Call ${c.id} with ${c.agent || "?"}: ${c.state}${c.decision ? `, ${c.decision}` : ""}` }),
        facts([["Invited", ist(c.invited_at)], ["Accepted", c.accepted_at && ist(c.accepted_at)],
          ["Ended", c.ended_at && ist(c.ended_at)], ["Ended by", c.ended_by],
          ["Liveness", `${c.liveness_code}: ${c.liveness_result || "not marked"}`], ["PAN", c.pan],
          ["Remarks", c.remarks]]),
        h("ol", { class: "case-answers" }, ...(c.questions || []).map((q) => h("li", { text: `${q.question}: ${q.answer || "not marked"}` }))),
        h("p", { class: "case-quality", text: `${qualitySummary("Customer", c.quality && c.quality.customer && c.quality.customer.summary)} ${qualitySummary("Agent", c.quality && c.quality.agent && c.quality.agent.summary)}` }),
        h("div", { class: "captures" }, ...c.captures.map((p) => h("img", { src: p.url, alt: p.kind === "face" ? "Captured face" : "Captured PAN card" }))),
        c.recording ? h("video", { src: c.recording.url, controls: "", preload: "metadata", class: "case-recording",
          "aria-label": `Recording of call ${c.id}` }) : h("p", { text: "No recording." })))),
    part("case-reviews", "Auditor reviews", list(view.reviews.map((r) => h("li", { text: `${ist(r.time)} ${r.auditor}: ${r.decision} — ${r.remarks}` })))),
    part("case-webhooks", "Webhooks", list(view.webhooks.map((w) => h("li", {},
      h("span", { text: `${w.event_type} #${w.seq} to ${w.url}: ${w.status}` }),
      h("ol", {}, ...w.attempts.map((t) => h("li", { text: `${ist(t.time)}: ${t.status_code ?? "no answer"} in ${t.latency_ms} ms${t.error ? ` (${t.error})` : ""}` }))))))),
    part("case-notifications", "Notifications", list(view.notifications.map((n) => h("li", { text: `${n.kind} by ${n.channel} to ${n.recipient || "?"}: ${n.state}${n.sent_at ? ` at ${ist(n.sent_at)}` : ""}` })))),
  );
  drawIndia(map, { lat: loc.latitude, lon: loc.longitude, accuracy_m: loc.accuracy_m });
}

export function mount(container, { admin = false } = {}) {
  document.getElementById("case-search")?.remove();
  const form = h("form", { id: "case-search-form" });
  for (const [name, label] of FIELDS) {
    form.append(h("div", { class: "field" }, h("label", { for: `cs-${name}`, text: label }),
      h("input", { id: `cs-${name}`, name, autocomplete: "off", spellcheck: "false" })));
  }
  const status = h("select", { id: "cs-status", name: "status" }, h("option", { value: "", text: "Any" }),
    ...STATUSES.map((s) => h("option", { value: s, text: s })));
  form.append(
    h("div", { class: "field" }, h("label", { for: "cs-status", text: "Status" }), status),
    h("div", { class: "field" }, h("label", { for: "cs-from", text: "Created from (IST day)" }), h("input", { id: "cs-from", name: "from", type: "date" })),
    h("div", { class: "field" }, h("label", { for: "cs-to", text: "Created to (IST day)" }), h("input", { id: "cs-to", name: "to", type: "date" })),
    h("button", { type: "submit", text: "Search" }),
  );
  const error = h("p", { id: "case-search-error", class: "error", role: "alert" });
  const table = h("table", { id: "case-results" });
  const more = h("button", { type: "button", id: "case-more", class: "secondary", hidden: "", text: "Next page" });
  const file = h("div", { id: "case-file", hidden: "" });
  const section = h("section", { id: "case-search", "aria-labelledby": "case-search-title" },
    h("h3", { id: "case-search-title", text: "Case search" }), form, error, table, more, file);
  container.insertBefore(section, document.getElementById("desk-error"));

  let query = "";
  let cursor = null;

  async function open(id) {
    const res = await api(`cases/${id}`);
    if (!res.ok) { error.textContent = res.data.message || "That case cannot be opened."; return; }
    error.textContent = "";
    file.hidden = false;
    renderCase(res.data, file, admin, open);
    file.scrollIntoView({ block: "start" });
  }

  async function page(first) {
    const params = new URLSearchParams(query);
    if (!first && cursor) params.set("cursor", cursor);
    const res = await api(`cases?${params}`);
    if (!res.ok) { error.textContent = res.data.message || "The search failed."; return; }
    error.textContent = "";
    if (first) {
      table.replaceChildren(h("thead", {}, h("tr", {}, ...["Verification ID", "Reference", "Customer", "Phone",
        "Status", "Created", "Agent"].map((t) => h("th", { scope: "col", text: t })))), h("tbody"));
    }
    const body = table.querySelector("tbody");
    for (const c of res.data.cases) {
      const openIt = h("button", { type: "button", class: "link", text: c.verification_id });
      openIt.addEventListener("click", () => open(c.reference_id));
      body.append(h("tr", { "data-reference": c.reference_id }, h("td", {}, openIt), h("td", { text: c.reference_id }),
        h("td", { text: c.name || "" }), h("td", { text: c.phone }), h("td", { text: c.sub_status }),
        h("td", { text: ist(c.created_at) }), h("td", { text: c.agent || "" })));
    }
    if (first && !res.data.cases.length) body.append(h("tr", {}, h("td", { colspan: "7", text: "No case matches." })));
    cursor = res.data.next_cursor;
    more.hidden = !cursor;
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (String(v).trim()) params.set(k, String(v).trim());
    query = params.toString();
    cursor = null;
    page(true);
  });
  more.addEventListener("click", () => page(false));
}
