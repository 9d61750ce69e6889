// The admin's reports: the funnel, failure reasons, times, agents (for a range of IST
// days, optionally one merchant) and the live board, refreshed every few seconds. Each
// table shows exactly the columns and rows of its CSV download.

import { api, el } from "./common.js";

const LIVE_MS = 5000;
const REPORTS = [
  ["funnel", "Funnel (requests by the day they were created)"],
  ["failures", "Failed checks and their reasons"],
  ["times", "Times (seconds, median and 90th percentile)"],
  ["agents", "Agents"],
];

let liveTimer = null;

/// Today in India Standard Time, as YYYY-MM-DD.
function istDay(offsetDays = 0) {
  const t = Date.now() + 19_800_000 + offsetDays * 86_400_000;
  return new Date(t).toISOString().slice(0, 10);
}

// A cell as the CSV writes it: numbers and text as they are, nothing for null.
function cell(value) {
  return value === null || value === undefined ? "" : String(value);
}

function renderTable(box, body) {
  box.replaceChildren();
  if (body.rows.length === 0) {
    box.append(el("p", { class: "hint" }, "No data for this range."));
    return;
  }
  const table = el("table");
  const head = el("tr");
  for (const c of body.columns) head.append(el("th", { scope: "col" }, c));
  table.append(el("thead"), el("tbody"));
  table.tHead.append(head);
  for (const row of body.rows) {
    const tr = el("tr");
    for (const c of body.columns) tr.append(el("td", {}, cell(row[c])));
    table.tBodies[0].append(tr);
  }
  box.append(table);
}

async function load(name, query, box, link) {
  const { ok, status, data } = await api(`reports/${name}?${query}`);
  if (!ok) {
    box.replaceChildren(el("p", { class: "error", role: "alert" }, data.message || `Error ${status}`));
    return;
  }
  renderTable(box, data);
  link.href = `/desk/api/reports/${name}.csv?${query}`;
}

export function mount(desk) {
  let section = document.getElementById("reports");
  if (!section) {
    section = el("section", { id: "reports", "aria-labelledby": "reports-title" });
    section.innerHTML = `
      <h3 id="reports-title">Reports</h3>
      <form id="reports-form">
        <div class="field"><label for="reports-from">From (IST day)</label>
          <input id="reports-from" type="date" required></div>
        <div class="field"><label for="reports-to">To (IST day, included)</label>
          <input id="reports-to" type="date" required></div>
        <div class="field"><label for="reports-merchant">Merchant id <span class="hint">(empty: all)</span></label>
          <input id="reports-merchant" inputmode="numeric"></div>
        <button type="submit">Show</button>
      </form>`;
    const live = el("section", { id: "report-live", "aria-labelledby": "report-live-title" });
    live.append(el("h4", { id: "report-live-title" }, "Live board"),
                el("div", { id: "report-live-table", "aria-live": "polite" }),
                el("a", { id: "report-live-csv", href: "/desk/api/reports/live.csv" }, "Download CSV"));
    section.append(live);
    for (const [name, title] of REPORTS) {
      const part = el("section", { id: `report-${name}`, "aria-labelledby": `report-${name}-title` });
      part.append(el("h4", { id: `report-${name}-title` }, title),
                  el("div", { id: `report-${name}-table` }),
                  el("a", { id: `report-${name}-csv`, href: "#" }, "Download CSV"));
      section.append(part);
    }
    desk.insertBefore(section, document.getElementById("desk-error"));
    document.getElementById("reports-from").value = istDay(-6);
    document.getElementById("reports-to").value = istDay(0);
    document.getElementById("reports-form").addEventListener("submit", (e) => {
      e.preventDefault();
      showAll();
    });
  }
  clearInterval(liveTimer);
  liveTimer = setInterval(() => {
    // Only while the reports are on screen (signing out hides the desk).
    if (section.isConnected && !section.hidden && !desk.hidden) refreshLive();
  }, LIVE_MS);
}

/** The reports come on screen: read afresh, so they never show figures from an earlier
 * visit (the desk stays open for hours while cases move on). */
export function show() {
  showAll();
  refreshLive();
}

export function unmount() {
  clearInterval(liveTimer);
  liveTimer = null;
  const section = document.getElementById("reports");
  if (section) section.hidden = true;
}

function refreshLive() {
  return load("live", "", document.getElementById("report-live-table"),
              document.getElementById("report-live-csv"));
}

function showAll() {
  const params = new URLSearchParams({
    from: document.getElementById("reports-from").value,
    to: document.getElementById("reports-to").value,
  });
  const merchant = document.getElementById("reports-merchant").value.trim();
  if (merchant) params.set("merchant", merchant);
  for (const [name] of REPORTS) {
    load(name, params.toString(), document.getElementById(`report-${name}-table`),
         document.getElementById(`report-${name}-csv`));
  }
}
