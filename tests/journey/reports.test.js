'use strict';
// The admin opens the desk's Reports: the funnel shows the requests this test made (one
// never opened, one that failed the IP check), its "Download CSV" gives exactly the table
// on screen, and the live board shows the agent who is online. The reports are read each
// time they come on screen, never left as they were at sign-in.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Deployment, BACKEND, shot, goOnline, screenTable, downloadReportCsv } = require('./support.js');

const ADMIN = { username: `rep-admin-${BACKEND}`, password: 'reports admin password 1234' };
const AGENT = { username: `rep-agent-${BACKEND}`, password: 'reports agent password 1234' };

let d;

/** Waits until the live board on `page` shows `want` in `column`. */
async function liveShows(page, column, want) {
  await page.waitForFunction(([column, want]) => {
    const t = document.querySelector('#report-live-table table');
    if (!t) return false;
    const cols = [...t.rows[0].cells].map((c) => c.textContent);
    return t.rows[1].cells[cols.indexOf(column)].textContent === want;
  }, [column, want], { timeout: 15_000 });
}

describe(`reports: the admin's funnel, CSV and live board (${BACKEND})`, () => {
  before(async () => {
    d = await new Deployment().start();
    d.createStaff(ADMIN.username, 'admin', ADMIN.password);
    d.createStaff(AGENT.username, 'agent', AGENT.password);
  });

  after(async () => {
    await d.stop();
  });

  it('shows the funnel the test made, downloads it as CSV, and shows the online agent', async () => {
    const agent = await d.staffPage(AGENT.username, AGENT.password);
    await goOnline(agent.page);

    // The admin's desk is open before the requests are made: the reports read what is
    // there when they come on screen, not what was there at sign-in.
    const admin = await d.staffPage(ADMIN.username, ADMIN.password);
    await d.newRequest();
    const failed = await d.newRequest();
    await d.merchant('POST', '/sandbox/vkyc/advance', { verification_id: failed.id, sub_status: 'USER_PROXY_DETECTED' });

    await admin.page.locator('#views').getByRole('button', { name: 'Reports' }).click();
    await admin.page.getByRole('heading', { name: 'Reports' }).waitFor();
    await admin.page.locator('#report-funnel-table table').waitFor();
    const table = await screenTable(admin.page, 'funnel');
    const header = table[0];
    assert.equal(table.length, 2, JSON.stringify(table));
    const row = Object.fromEntries(header.map((c, i) => [c, table[1][i]]));
    assert.equal(row.created, '2');
    assert.equal(row.opened, '0');
    assert.equal(row.opened_drop_pct, '100');
    assert.equal(row.ip_failed, '1');
    assert.equal(row.ip_passed, '0');
    await admin.page.locator('#report-failures-table table').waitFor();
    const failures = await screenTable(admin.page, 'failures');
    const reason = failures[0].indexOf('reason');
    assert.equal(failures[1][reason], 'USER_PROXY_DETECTED');

    // The CSV download holds exactly the table on screen.
    const csv = await downloadReportCsv(admin.page, 'funnel');
    assert.match(csv.filename, /^vkyc-funnel-\d{4}-\d\d-\d\d-to-\d{4}-\d\d-\d\d\.csv$/);
    assert.deepEqual(csv.rows, table);

    // The live board shows the agent online and nobody waiting (its queue figures are
    // the queue's latest reading, taken every second).
    await liveShows(admin.page, 'agents_online', '1');
    const live = await screenTable(admin.page, 'live');
    const liveRow = Object.fromEntries(live[0].map((c, i) => [c, live[1][i]]));
    assert.equal(liveRow.agents_online, '1');
    assert.equal(liveRow.customers_waiting, '0');
    assert.equal(liveRow.calls_in_progress, '0');
    await shot(admin.page, '40-admin-reports');

    // The board refreshes: once the agent goes offline it shows nobody online.
    await agent.page.getByRole('button', { name: 'Go offline' }).click();
    await liveShows(admin.page, 'agents_online', '0');

    // Away to another screen and back: the funnel counts the request made meanwhile.
    await admin.page.locator('#views').getByRole('button', { name: 'Administration' }).click();
    await d.newRequest();
    await admin.page.locator('#views').getByRole('button', { name: 'Reports' }).click();
    await admin.page.waitForFunction(() => {
      const t = document.querySelector('#report-funnel-table table');
      const cols = t ? [...t.rows[0].cells].map((c) => c.textContent) : [];
      return t && t.rows[1].cells[cols.indexOf('created')].textContent === '3';
    }, null, { timeout: 10_000 });
  });
});
