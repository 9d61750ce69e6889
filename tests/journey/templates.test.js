'use strict';
// A call under an agent template that requires a signature on paper: the agent's
// checklist has a sixth item with a capture button for it, the decision stays closed
// until the signature is captured, the auditor sees the still under the template's
// label, and the decision form offers the template's rejection reasons.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Deployment, AADHAAR_DETAILS, BACKEND, shot, atStep, passChecks, goOnline } = require('./support.js');

const AGENT = { username: `tpl-agent-${BACKEND}`, password: 'template agent password 1234' };
const AUDITOR = { username: `tpl-auditor-${BACKEND}`, password: 'template auditor password 1234' };
const ADMIN = { username: `tpl-admin-${BACKEND}`, password: 'template admin password 1234' };

let d, pngFile;

describe(`an agent template that requires a signature (${BACKEND})`, () => {
  before(async () => {
    d = await new Deployment().start([], { calls: ['drop_grace_seconds = 20'] });
    d.createStaff(AGENT.username, 'agent', AGENT.password);
    d.createStaff(AUDITOR.username, 'auditor', AUDITOR.password);
    d.createStaff(ADMIN.username, 'admin', ADMIN.password);
    // The bank's logo (a 1×1 PNG), uploaded once and named by the template.
    const png = require('node:path').join(require('node:os').tmpdir(), `asha-bank-${process.pid}.png`);
    require('node:fs').writeFileSync(png, Buffer.from(
      'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64'));
    pngFile = png;
    const logo = d.vkyc(['template', 'logo', png]).split(' ')[1];
    const file = require('node:path').join(require('node:os').tmpdir(), `asha-bank-${process.pid}.toml`);
    require('node:fs').writeFileSync(file,
      `name = "asha_bank_journey"\ndisplay_name = "Asha Bank"\nprimary_colour = "#7a1f5c"\nminutes = 8\nlogo = "${logo}"\n`);
    d.vkyc(['template', 'import', 'user', file]);
  });

  after(async () => {
    await d.stop();
  });

  it('asks for the signature, holds the decision until it is captured, and shows it', async () => {
    const agent = await d.staffPage(AGENT.username, AGENT.password);
    await goOnline(agent.page);

    const { id, link } = await d.newRequest({
      aadhaar_details: AADHAAR_DETAILS, agent_template: 'vkyc_agent_template_signature_v1',
      user_template: 'asha_bank_journey',
    });
    const customer = await d.customerPage();
    await customer.page.goto(link);
    // The bank's own face, and what to keep ready: a paper and pen for the signature.
    await customer.page.locator('#brand').filter({ hasText: 'Asha Bank · Video KYC' }).waitFor();
    await customer.page.waitForFunction(() => {
      const img = document.querySelector('#brand-logo');
      return img && img.complete && img.naturalWidth === 1;
    });
    assert.equal(await customer.page.locator('.bar').evaluate((b) => getComputedStyle(b).backgroundColor), 'rgb(122, 31, 92)');
    const ready = customer.page.locator('#before-you-start');
    await ready.getByText('Before you start').waitFor();
    await ready.getByText('It takes about 8 minutes.').waitFor();
    await ready.getByText('Your original PAN card (not a copy)').waitFor();
    await ready.getByText('A blank sheet of paper and a pen, to sign during the call').waitFor();
    assert.match(await ready.locator('#ready-hours').textContent(), /Mon, Tue, Wed, Thu, Fri, Sat, Sun/);
    await shot(customer.page, 'template-before-you-start');
    await passChecks(customer.page);
    await customer.page.locator('#join-queue').click();
    await d.expectStatus(id, 'AGENT_ASSIGNED_TO_USER', 15);
    await atStep(customer.page, 'call');
    await customer.page.getByRole('button', { name: 'Start the video call' }).click();
    await d.expectStatus(id, 'USER_ACCEPTED_MEETING');
    await agent.page.waitForSelector('#call[data-state="active"]', { timeout: 10_000 });
    await agent.page.waitForFunction(() => {
      const v = document.querySelector('#remote');
      return v && v.videoWidth > 0;
    }, null, { timeout: 30_000 });

    // Every standard check, by its buttons.
    const page = agent.page;
    const count = await page.locator('#questions li').count();
    for (let i = 0; i < count; i++) {
      for (const answer of ['asked', 'correct']) {
        await page.locator(`#questions button[data-index="${i}"][data-answer="${answer}"]`).click();
        await page.waitForSelector(`#questions button[data-index="${i}"][data-answer="${answer}"][aria-pressed="true"]`, { state: 'attached' });
      }
    }
    await page.getByRole('button', { name: 'Ask now' }).click();
    await page.getByRole('button', { name: 'Read correctly', exact: true }).click();
    await page.getByRole('button', { name: 'Capture the face' }).click();
    await page.waitForSelector('#captures img[data-kind="face"]:not([hidden])');
    await page.getByRole('button', { name: 'Capture the PAN card' }).click();
    await page.waitForSelector('#captures img[data-kind="pan"]:not([hidden])');
    await page.getByLabel('PAN (as on the card)').fill('ABCDE1234F');
    await page.getByRole('button', { name: 'Save PAN' }).click();
    await page.getByRole('button', { name: 'Confirm location' }).click();

    // Five of six: the signature is still to do, and the decision stays closed.
    const other = page.locator('#checklist li[data-item="other"]');
    await other.waitFor();
    await page.getByText('5 of 6 checks done').waitFor();
    assert.equal(await page.locator('#checks').getAttribute('data-complete'), 'false');
    assert.ok(await page.locator('#decision-form').isHidden());
    assert.match(await other.locator('.summary').textContent(), /0\/1/);
    await shot(page, 'template-signature-to-do');

    await page.getByRole('button', { name: 'Capture the signature on paper' }).click();
    await page.waitForSelector('#other-stills img[data-kind="signature"]:not([hidden])');
    await page.waitForSelector('#checks[data-complete="true"]');
    await page.getByText('6 of 6 checks done').waitFor();
    await page.waitForSelector('#decision-form:not([hidden])');

    // A rejection offers the template's reasons; an approval does not ask for one.
    await page.locator('#decision').selectOption('rejected');
    assert.ok(await page.locator('#reason-field').isVisible());
    const reasons = await page.locator('#reason option').allTextContents();
    assert.ok(reasons.includes('Signature not shown or not legible'), reasons.join(' | '));
    await page.locator('#decision').selectOption('approved');
    assert.ok(await page.locator('#reason-field').isHidden());
    await page.locator('#remarks').fill('Face, PAN card and signature seen on the call.');
    await page.getByRole('button', { name: 'Submit decision' }).click();
    await page.getByText(`Decision saved for ${id}: Approve.`).waitFor();
    await d.expectStatus(id, 'AGENT_APPROVED');

    // The auditor sees the signature still under the template's label, and the template.
    const auditor = await d.staffPage(AUDITOR.username, AUDITOR.password);
    await auditor.page.locator('#cases button').filter({ hasText: id }).click();
    await auditor.page.waitForSelector('#case:not([hidden])');
    await auditor.page.locator('#case-details figcaption').filter({ hasText: 'Signature on paper' }).waitFor();
    assert.equal(await auditor.page.locator('#case-display-name').textContent(), 'For Asha Bank');
    await auditor.page.waitForFunction(() => {
      const img = document.querySelector('#case-logo');
      return img && img.complete && img.naturalWidth === 1;
    });
    assert.equal(await auditor.page.locator('#case-details .captures img').count(), 3);
    const templates = await auditor.page.locator('#case-templates').textContent();
    assert.match(templates, /checklist vkyc_agent_template_signature_v1 v1/);
    assert.match(templates, /journey asha_bank_journey v1/);
    await shot(auditor.page, 'template-auditor');
  });

  it('lets an admin read a template and import a new one as its next version', async () => {
    const { page } = await d.staffPage(ADMIN.username, ADMIN.password);
    await page.getByRole('button', { name: 'Templates', exact: true }).click();
    await page.locator('#template-list tr[data-name="vkyc_agent_template_signature_v1"]').waitFor();
    await page.getByLabel('Template', { exact: true }).selectOption('agent/vkyc_agent_template_signature_v1');
    await page.locator('#template-text').filter({ hasText: 'signature on paper' }).waitFor();

    const toml = 'name = "branch_checklist"\ndescription = "Face and passbook"\n' +
      '[[captures]]\nkind = "face"\nlabel = "face"\n[[captures]]\nkind = "passbook"\nlabel = "bank passbook"\n';
    await page.getByLabel('Template (TOML)').fill('name = "branch checklist"\ncaptures = []\n');
    await page.getByRole('button', { name: 'Import as a new version' }).click();
    await page.getByText('the template is not valid: name').waitFor();
    await page.getByLabel('Template (TOML)').fill(toml);
    await page.getByRole('button', { name: 'Import as a new version' }).click();
    await page.getByText('branch_checklist: version 1 added.').waitFor();
    const row = page.locator('#template-list tr[data-name="branch_checklist"]');
    assert.match(await row.textContent(), /agent.*branch_checklist.*1.*Face and passbook/);
    await page.locator('#template-text').filter({ hasText: 'bank passbook' }).waitFor();
    await page.getByRole('button', { name: 'Import as a new version' }).click();
    await page.getByText('branch_checklist: unchanged, still version 1.').waitFor();

    // A logo for a user template, uploaded here and shown back as the server drew it.
    await page.setInputFiles('#logo-file', pngFile);
    await page.getByRole('button', { name: 'Upload the logo' }).click();
    await page.locator('#admin-status').filter({ hasText: /Logo uploaded \(1×1\): in a user template, logo = "[0-9a-f]{64}"/ }).waitFor();
    await page.waitForFunction(() => document.querySelector('#logo-preview').naturalWidth === 1);

    // A request may now name it.
    const { id } = await d.newRequest({ agent_template: 'branch_checklist' });
    assert.equal((await d.status(id)).sub_status, 'LINK_GENERATED');
    await shot(page, 'template-admin');
  });
});
