'use strict';
// A customer proves Aadhaar offline and passes the checks in the browser; an admin finds
// the case on the desk, opens its case file (timeline, masked Aadhaar, the position on
// India's outline) and downloads its export, which `vkyc export verify` accepts. An
// auditor has the same search; an agent does not.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const {
  Deployment, BACKEND, shot, atStep, consent, uploadAadhaar, passIp, passLocation, passDevices, openCaseFile, downloadExport,
} = require('./support.js');

const ADMIN = { username: `case-admin-${BACKEND}`, password: 'case admin password 1234' };
const AUDITOR = { username: `case-auditor-${BACKEND}`, password: 'case auditor password 1234' };
const AGENT = { username: `case-agent-${BACKEND}`, password: 'case agent password 1234' };

let d;

describe(`case search and the case file (${BACKEND})`, () => {
  before(async () => {
    d = await new Deployment().start();
    d.createStaff(ADMIN.username, 'admin', ADMIN.password);
    d.createStaff(AUDITOR.username, 'auditor', AUDITOR.password);
    d.createStaff(AGENT.username, 'agent', AGENT.password);
  });

  after(async () => {
    await d.stop();
  });

  it('finds a case, shows its file and exports it signed', async () => {
    const request = await d.newRequest();
    const customer = await d.customerPage();
    await customer.page.goto(request.link);
    await consent(customer.page);
    await uploadAadhaar(customer.page, d.fixtures.good);
    await passIp(customer.page);
    await passLocation(customer.page);
    await passDevices(customer.page);
    await atStep(customer.page, 'waiting');

    const admin = await d.staffPage(ADMIN.username, ADMIN.password);
    const page = admin.page;
    const file = await openCaseFile(page, request.id);
    const timeline = await page.locator('#case-timeline-list li').allTextContents();
    assert.match(timeline[0], /LINK_GENERATED/);
    assert.ok(timeline.some((t) => /AADHAAR_VERIFICATION_SUCCESS/.test(t)), timeline.join('\n'));
    assert.ok(timeline.some((t) => /USER_DEVICE_CHECK_SUCCESS/.test(t)), timeline.join('\n'));
    const aadhaar = await page.locator('#case-aadhaar').textContent();
    assert.match(aadhaar, /XXXX XXXX 4321/);
    assert.doesNotMatch(await file.textContent(), /\d{4} ?\d{4} ?4321/);
    await page.locator('#case-map svg.india-map path.india-outline').first().waitFor();
    assert.match(await page.locator('#case-map .map-caption').textContent(), /28\.61390, 77\.20900/);
    assert.equal(await page.locator('#case-map circle.india-point').count(), 1);
    assert.match(await page.locator('#case-consent-text').textContent(), /\S/);
    await shot(page, '40-case-file');

    const saved = await downloadExport(page, path.join(d.dataDir, 'export.zip'));
    assert.match(d.vkyc(['export', 'verify', saved]), new RegExp(`^OK: case ${request.id}`));

    // A legal hold, placed and released from the case file, with the reason shown.
    const retention = page.locator('#case-retention');
    assert.match(await retention.textContent(), /Legal hold\s*none/);
    await page.getByLabel('Reason (kept and audited)').fill('court order 17/2026');
    await page.getByRole('button', { name: 'Place a legal hold' }).click();
    await page.getByRole('button', { name: 'Release the legal hold' }).waitFor();
    assert.match(await retention.textContent(), /court order 17\/2026/);
    await page.getByLabel('Reason (kept and audited)').fill('order lifted');
    await page.getByRole('button', { name: 'Release the legal hold' }).click();
    await page.getByRole('button', { name: 'Place a legal hold' }).waitFor();
    assert.match(await page.locator('#case-retention').textContent(), /Legal hold\s*none/);

    // The auditor has the same search; the agent's desk has none.
    const auditor = await d.staffPage(AUDITOR.username, AUDITOR.password);
    await auditor.page.locator('#views').getByRole('button', { name: 'Case search' }).click();
    await auditor.page.locator('#case-search').waitFor();
    const agent = await d.staffPage(AGENT.username, AGENT.password);
    await agent.page.getByRole('button', { name: 'Go online' }).waitFor();
    assert.equal(await agent.page.locator('#case-search').count(), 0);
  });
});
