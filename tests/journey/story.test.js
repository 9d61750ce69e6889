'use strict';
// The operations side as one story, through the screens, in the browser contexts of one
// server: an admin (made by the command line) creates an agent and an auditor in the
// console and hands them the passwords it shows once, sets the deployment's questions,
// the desk's hours, a holiday and the merchant's webhook URL. One case runs through the
// merchant API's sandbox; another through a real call: the customer's journey on a
// phone, the agent's checklist with the admin's question, the auditor's review. The admin
// then finds the called case, reads its case file, exports it (the export verifies, and a
// byte changed in it does not), and the reports show exactly what the story made.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const {
  Deployment, BACKEND, shot, atStep, consent, uploadAadhaar, passIp, passLocation, passDevices, startReceiver,
  goOnline, playing, completeChecklist, createStaffOnScreen, openCaseFile, downloadExport, screenTable,
  downloadReportCsv, probe,
} = require('./support.js');

const ADMIN = { username: `story-admin-${BACKEND}`, password: 'story admin password 1234' };
const AGENT = `story-agent-${BACKEND}`;
const AUDITOR = `story-auditor-${BACKEND}`;
const QUESTION = { en: 'Which bank holds your salary account?', hi: 'आपका वेतन खाता किस बैंक में है?' };
const WEEK = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

/** The IST day `offset` days from today: `{ date: 'YYYY-MM-DD', weekday: 'mon' }`. */
function istDay(offset = 0) {
  const t = new Date(Date.now() + 19_800_000 + offset * 86_400_000);
  return { date: t.toISOString().slice(0, 10), weekday: WEEK[t.getUTCDay()] };
}

/** A report's table as rows of {column: cell}. */
async function reportRows(page, name) {
  const [header, ...rows] = await screenTable(page, name);
  return rows.map((r) => Object.fromEntries(header.map((c, i) => [c, r[i]])));
}

let d;
let receiver;

describe(`the operations story: admin, agent and auditor (${BACKEND})`, () => {
  before(async () => {
    receiver = await startReceiver();
    d = await new Deployment().start(['webhook_allow_private_addresses = true', 'webhook_interval_ms = 100']);
    d.createStaff(ADMIN.username, 'admin', ADMIN.password);
  });

  after(async () => {
    await d.stop();
    receiver.close();
  });

  it('from an empty desk to a reviewed, exported, reported case', async () => {
    // ---- 1. The admin sets the desk up ----
    const admin = await d.staffPage(ADMIN.username, ADMIN.password);
    const page = admin.page;
    await page.waitForSelector('#admin:not([hidden])');
    const agentPassword = await createStaffOnScreen(page, AGENT, 'agent');
    const auditorPassword = await createStaffOnScreen(page, AUDITOR, 'auditor');
    assert.notEqual(agentPassword, auditorPassword);

    // The questions: the configuration's become optional, one drawn per call; the
    // admin's own, in English and Hindi, is always asked.
    await page.getByRole('button', { name: 'Questions', exact: true }).click();
    await page.locator('#bank-questions li').nth(2).waitFor();
    const configured = await page.locator('#bank-questions .q-en').evaluateAll((inputs) => inputs.map((i) => i.value));
    assert.equal(configured.length, 3, configured.join('\n'));
    for (let n = 1; n <= configured.length; n++) await page.getByLabel(`Must be asked ${n}`).uncheck();
    await page.getByRole('button', { name: 'Add a question' }).click();
    await page.getByLabel('English 4').fill(QUESTION.en);
    await page.getByLabel('Hindi 4').fill(QUESTION.hi);
    await page.getByLabel('Must be asked 4').check();
    await page.getByLabel('Random questions per call (besides the mandatory ones)').fill('1');
    await page.getByRole('button', { name: 'Save questions' }).click();
    await page.getByText('Questions saved as version 1.').waitFor();

    // The hours: round the clock, but not on the day after tomorrow; a holiday in ten
    // days. Today stays a working day, or no call could be made.
    const today = istDay(0);
    const dayOff = istDay(2).weekday;
    const holiday = istDay(10).date;
    await page.getByRole('button', { name: 'Hours', exact: true }).click();
    for (const day of WEEK) await page.locator(`#day-${day}`).setChecked(day !== dayOff);
    await page.getByLabel('Working hours (IST)').fill('00:00-24:00');
    await page.getByRole('button', { name: 'Save hours' }).click();
    await page.getByText('Working hours saved.').waitFor();
    assert.equal(await page.locator('#hours-source').textContent(), 'Set in this console.');
    await page.getByLabel('Holiday', { exact: true }).fill(holiday);
    await page.getByRole('button', { name: 'Add holiday' }).click();
    await page.getByText(`${holiday} is a holiday.`).waitFor();
    assert.deepEqual(await page.locator('#holiday-list li').allTextContents(), [`${holiday} Remove`]);

    // The merchant's webhooks go to its receiver.
    await page.getByRole('button', { name: 'Merchants', exact: true }).click();
    await page.getByLabel('Webhook URL (empty: none)').fill(receiver.url);
    await page.getByRole('button', { name: 'Save webhook URL' }).click();
    await page.getByText(`webhooks go to ${receiver.url}.`).waitFor();
    await shot(page, '50-story-admin');

    // ---- 2. The agent and the auditor sign in with the passwords the console showed ----
    const agent = await d.staffPage(AGENT, agentPassword);
    assert.equal(await agent.page.locator('#role').textContent(), 'agent');
    await goOnline(agent.page);
    const auditor = await d.staffPage(AUDITOR, auditorPassword);
    assert.equal(await auditor.page.locator('#role').textContent(), 'auditor');

    // ---- 3a. A case through the sandbox, in two moves ----
    const sandbox = await d.newRequest();
    await d.merchant('POST', '/sandbox/vkyc/advance', { verification_id: sandbox.id, sub_status: 'USER_DEVICE_CHECK_SUCCESS' });
    assert.equal((await d.status(sandbox.id)).sub_status, 'USER_DEVICE_CHECK_SUCCESS');
    await d.merchant('POST', '/sandbox/vkyc/advance', { verification_id: sandbox.id, sub_status: 'AUDITOR_APPROVED' });
    assert.equal((await d.status(sandbox.id)).sub_status, 'AUDITOR_APPROVED');
    assert.ok(await receiver.heard(sandbox.id, 'AUDITOR_APPROVED'), 'the sandbox case\'s last webhook');

    // ---- 3b. A case through a real call ----
    const real = await d.newRequest();
    const customer = await d.customerPage();
    await customer.page.goto(real.link);
    await consent(customer.page);
    await uploadAadhaar(customer.page, d.fixtures.good);
    await passIp(customer.page);
    await passLocation(customer.page);
    await passDevices(customer.page);
    await atStep(customer.page, 'waiting');
    await customer.page.locator('#join-queue').click();
    await d.expectStatus(real.id, 'AGENT_ASSIGNED_TO_USER', 15);
    await atStep(customer.page, 'call');
    await customer.page.getByRole('button', { name: 'Start the video call' }).click();
    await d.expectStatus(real.id, 'USER_ACCEPTED_MEETING');
    await agent.page.waitForSelector('#call[data-state="active"]', { timeout: 10_000 });
    await playing('#remote', agent.page);

    // The checklist asks the admin's question, in both languages, and one of the others.
    const asked = await agent.page.locator('#questions li').evaluateAll((items) => items.map((li) => ({
      en: li.querySelector('.q').textContent, hi: li.querySelector('.q-hi')?.textContent ?? null,
    })));
    // (A call's questions come in a random order.)
    assert.equal(asked.length, 2, JSON.stringify(asked));
    const other = asked.find((q) => q.en !== QUESTION.en);
    assert.deepEqual(asked.filter((q) => q !== other), [QUESTION]);
    assert.ok(configured.includes(other.en), `${other.en} is one of the configuration's`);
    assert.equal(other.hi, null);
    await completeChecklist(agent.page);
    await shot(agent.page, '51-story-agent');
    await agent.page.getByRole('button', { name: 'End call' }).click();
    await d.expectStatus(real.id, 'AGENT_ENDED_CALL');
    await atStep(customer.page, 'done');
    await agent.page.waitForSelector('#decision-form:not([hidden])');
    await agent.page.locator('#decision').selectOption('approved');
    await agent.page.locator('#remarks').fill('Face matches the Aadhaar photo; PAN verified.');
    await agent.page.getByRole('button', { name: 'Submit decision' }).click();
    await agent.page.locator('#decision-saved').getByText(`Decision saved for ${real.id}: Approve.`).waitFor();
    await d.expectStatus(real.id, 'AGENT_APPROVED');

    // The auditor's queue (refreshed every few seconds) brings the case; they approve it.
    await auditor.page.locator('#cases button').filter({ hasText: real.id }).click();
    await auditor.page.waitForSelector('#case:not([hidden])');
    await auditor.page.locator('#case-details').getByText(QUESTION.en).waitFor();
    // As the customer was asked it: the Hindi beside the English.
    await auditor.page.locator('#case-questions .q-hi').filter({ hasText: QUESTION.hi }).waitFor();
    await auditor.page.locator('#audit-decision').selectOption('approved');
    await auditor.page.locator('#audit-remarks').fill('Recording, captures and answers reviewed.');
    await auditor.page.getByRole('button', { name: 'Submit review' }).click();
    await d.expectStatus(real.id, 'AUDITOR_APPROVED');
    assert.ok(await receiver.heard(real.id, 'AUDITOR_APPROVED'), 'the called case\'s last webhook');

    // ---- 4. The admin finds the called case and reads its file ----
    const file = await openCaseFile(page, real.id);
    const moves = (await page.locator('#case-timeline-list li').allTextContents()).map((t) => t.split(' → ').pop());
    assert.deepEqual(moves, ['LINK_GENERATED', 'AADHAAR_VERIFICATION_SUCCESS', 'USER_IP_VERIFICATION_SUCCESSFUL',
      'USER_LOCATION_VERIFICATION_SUCCESS', 'USER_DEVICE_CHECK_SUCCESS', 'USER_QUEUED', 'AGENT_ASSIGNED_TO_USER',
      'USER_ACCEPTED_MEETING', 'AGENT_ENDED_CALL', 'AGENT_APPROVED', 'AUDITOR_APPROVED']);
    // Every step shown has ended, the call with the agent's ending it (a queue step is
    // there when the page showed the queue before an agent was given).
    const steps = await page.locator('#case-journey li > strong').allTextContents();
    assert.deepEqual(steps.filter((s) => !s.startsWith('queue: ')), ['mobile_otp: MOBILE_VERIFIED', 'consent: CONSENT_GIVEN',
      'aadhaar: AADHAAR_VERIFICATION_SUCCESS', 'ip: USER_IP_VERIFICATION_SUCCESSFUL',
      'location: USER_LOCATION_VERIFICATION_SUCCESS', 'devices: USER_DEVICE_CHECK_SUCCESS', 'waiting: USER_QUEUED',
      'call: AGENT_ENDED_CALL']);
    for (const s of steps.filter((s) => s.startsWith('queue: '))) assert.equal(s, 'queue: AGENT_ASSIGNED_TO_USER');
    assert.match(await page.locator('#case-aadhaar').textContent(), /XXXX XXXX 4321/);
    assert.doesNotMatch(await file.textContent(), /\d{4} ?\d{4} ?4321/);
    const call = page.locator('#case-calls article.case-call');
    assert.equal(await call.count(), 1);
    assert.match(await call.locator('h5').textContent(), new RegExp(`^Call \\d+ with ${AGENT}: ended, approved$`));
    assert.deepEqual(await call.locator('.case-answers li').allTextContents(), asked.map((q) => `${q.en}: correct`));
    await page.waitForFunction(() => {
      const v = document.querySelector('#case-calls video.case-recording');
      return v && v.readyState >= 1 && v.duration > 1;
    }, null, { timeout: 10_000 });
    assert.match(await page.locator('#case-reviews').textContent(), new RegExp(`${AUDITOR}: approved — Recording, captures`));
    // Every webhook of the case went to the receiver and was delivered.
    const hooks = await page.locator('#case-webhooks > ul > li > span').allTextContents();
    assert.ok(hooks.length >= 10, hooks.join('\n'));
    for (const hook of hooks) assert.ok(hook.endsWith(`to ${receiver.url}: delivered`), hook);
    await shot(page, '52-story-case-file');

    // The export verifies under the deployment's published key ...
    const zip = await downloadExport(page, path.join(d.dataDir, 'story-export.zip'));
    const key = path.join(d.dataDir, 'deployment.pem');
    fs.writeFileSync(key, await (await fetch(`${d.base}/desk/api/cases/signing-key.pem`)).text());
    assert.match(d.vkyc(['export', 'verify', zip, '--public-key', key]), new RegExp(`^OK: case ${real.id} `));
    // ... and holds the call's recording.
    const unpacked = path.join(d.dataDir, 'story-export');
    assert.equal(spawnSync('unzip', ['-q', zip, '-d', unpacked]).status, 0);
    const [recording] = fs.readdirSync(path.join(unpacked, 'recordings'));
    assert.match(recording, /^call-\d+\.webm$/);
    const member = `recordings/${recording}`;
    assert.ok(probe(path.join(unpacked, member)).streams.some((s) => s.codec_type === 'video'));

    // One byte changed in the recording's data within the archive: refused.
    const bytes = fs.readFileSync(zip);
    const header = bytes.indexOf(Buffer.from(member));
    assert.equal(bytes.readUInt32LE(header - 30), 0x04034b50, 'the recording\'s local header');
    const data = header + bytes.readUInt16LE(header - 4) + bytes.readUInt16LE(header - 2);
    const flipped = Buffer.from(bytes);
    flipped[data + 1000] ^= 0x01;
    const flippedZip = path.join(d.dataDir, 'flipped.zip');
    fs.writeFileSync(flippedZip, flipped);
    const refused = d.vkycRun(['export', 'verify', flippedZip, '--public-key', key]);
    assert.notEqual(refused.status, 0, refused.stdout);
    assert.match(refused.stderr, new RegExp(`${member} cannot be read from the archive`));
    // The same byte changed and the archive re-packed with good ZIP checksums: the
    // manifest's hash is what refuses it.
    const copy = fs.readFileSync(path.join(unpacked, member));
    copy[1000] ^= 0x01;
    fs.writeFileSync(path.join(unpacked, member), copy);
    const repacked = path.join(d.dataDir, 'repacked.zip');
    fs.copyFileSync(zip, repacked);
    assert.equal(spawnSync('zip', ['-q', '-0', repacked, member], { cwd: unpacked }).status, 0);
    const mismatch = d.vkycRun(['export', 'verify', repacked, '--public-key', key]);
    assert.notEqual(mismatch.status, 0, mismatch.stdout);
    assert.match(mismatch.stderr, new RegExp(`${member} does not match the manifest`));

    // ---- 5. The reports show what the story made ----
    await page.locator('#views').getByRole('button', { name: 'Reports' }).click();
    await page.getByRole('heading', { name: 'Reports' }).waitFor();
    await page.locator('#report-funnel-table table').waitFor();
    const funnel = await reportRows(page, 'funnel');
    assert.equal(funnel.length, 1, JSON.stringify(funnel));
    assert.equal(funnel[0].day, today.date);
    // Both cases reached the call and both approvals; only the real one opened its link
    // and proved Aadhaar (the sandbox's moves skip it).
    const made = {
      created: '2', opened: '1', aadhaar_passed: '1', aadhaar_failed: '0', ip_passed: '2', ip_failed: '0',
      location_passed: '2', location_failed: '0', devices_passed: '2', devices_failed: '0', queued: '2', call: '2',
      agent_approved: '2', agent_rejected: '0', agent_unable: '0', auditor_approved: '2', auditor_rejected: '0', expired: '0',
    };
    for (const [column, want] of Object.entries(made)) assert.equal(funnel[0][column], want, `funnel ${column}`);
    await page.locator('#report-agents-table table').waitFor();
    const agents = await reportRows(page, 'agents');
    assert.equal(agents.length, 1, JSON.stringify(agents));
    const theAgent = { agent: AGENT, calls: '1', approved: '1', rejected: '0', unable: '0', audited: '1', reversed: '0' };
    for (const [column, want] of Object.entries(theAgent)) assert.equal(agents[0][column], want, `agents ${column}`);
    await shot(page, '53-story-reports');
    for (const name of ['funnel', 'agents']) {
      assert.deepEqual((await downloadReportCsv(page, name)).rows, await screenTable(page, name), `${name}.csv`);
    }
    for (const c of [customer, agent, auditor, admin]) await c.context.close();
  });
});
