'use strict';
// The admin console in a browser: the admin creates an agent and an auditor (reading each
// one-time password off the screen), the agent signs in with it; the admin edits the
// deployment's questions in English and Hindi, sets the desk's hours and uploads a file
// of holidays, and rotates a merchant's secret, shown once and gone after a reload.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Deployment, BACKEND, createStaffOnScreen } = require('./support.js');

const ADMIN = { username: `admin-${BACKEND}`, password: 'admin console password 1234' };

let d;

describe(`the admin console (${BACKEND})`, () => {
  before(async () => {
    d = await new Deployment().start();
    d.createStaff(ADMIN.username, 'admin', ADMIN.password);
  });

  after(async () => {
    await d.stop();
  });

  it('manages staff, questions, hours and a merchant secret', async () => {
    const { page } = await d.staffPage(ADMIN.username, ADMIN.password);
    await page.waitForSelector('#admin:not([hidden])');
    await page.locator(`#staff-list tr[data-username="${ADMIN.username}"]`).waitFor();

    // Two accounts, each password read off the screen.
    const passwords = {};
    for (const [username, role] of [['desk-agent', 'agent'], ['desk-auditor', 'auditor']]) {
      passwords[username] = await createStaffOnScreen(page, username, role);
      assert.equal(passwords[username].length, 24);
    }
    const agent = await d.staffPage('desk-agent', passwords['desk-agent']);
    assert.equal(await agent.page.locator('#role').textContent(), 'agent');
    await agent.page.getByRole('button', { name: 'Go online' }).waitFor();
    await agent.context.close();

    // A question in English and Hindi, added to the configuration's.
    await page.getByRole('button', { name: 'Questions', exact: true }).click();
    await page.locator('#bank-questions li').nth(2).waitFor();
    await page.getByRole('button', { name: 'Add a question' }).click();
    await page.getByLabel('English 4').fill('What is your occupation?');
    await page.getByLabel('Hindi 4').fill('आपका व्यवसाय क्या है?');
    await page.getByLabel('Must be asked 4').check();
    await page.getByRole('button', { name: 'Save questions' }).click();
    await page.getByText('Questions saved as version 1.').waitFor();

    // Hours, and holidays from a file.
    await page.getByRole('button', { name: 'Hours', exact: true }).click();
    await page.locator('#day-sun').uncheck();
    await page.getByLabel('Working hours (IST)').fill('09:00-18:00');
    await page.getByRole('button', { name: 'Save hours' }).click();
    await page.getByText('Working hours saved.').waitFor();
    await page.getByLabel(/Import a file of dates/).setInputFiles({
      name: 'holidays.csv', mimeType: 'text/csv',
      buffer: Buffer.from('date,name\n2030-01-26,Republic Day\n15/08/2030,Independence Day\n'),
    });
    await page.getByRole('button', { name: 'Import dates' }).click();
    await page.getByText('2 new holidays imported.').waitFor();

    // A merchant's secret: shown once, and it works.
    await page.getByRole('button', { name: 'Merchants', exact: true }).click();
    await page.getByRole('button', { name: 'Rotate secret' }).click();
    const secret = (await page.locator('#merchant-secret .secret').textContent()).trim();
    assert.match(secret, /^cfsk_ma_test_/);
    const res = await fetch(`${d.apiUrl}/vkyc?verification_id=nobody`, {
      headers: { 'x-client-id': d.clientId, 'x-client-secret': secret, 'x-api-version': '2024-12-01' },
    });
    assert.equal(res.status, 404, 'the new secret authenticates');

    // After a reload: the saved settings are there, the secrets are not.
    await page.reload();
    await page.waitForSelector('#admin:not([hidden])');
    await page.getByRole('button', { name: 'Hours', exact: true }).click();
    await page.locator('#holiday-list li').nth(1).waitFor();
    assert.deepEqual(await page.locator('#holiday-list li').allTextContents(),
      ['2030-01-26 Remove', '2030-08-15 Remove']);
    assert.equal(await page.getByLabel('Working hours (IST)').inputValue(), '09:00-18:00');
    assert.equal(await page.locator('#day-sun').isChecked(), false);
    await page.getByRole('button', { name: 'Questions', exact: true }).click();
    await page.getByText('Version 1.').waitFor();
    assert.equal(await page.getByLabel('Hindi 4').inputValue(), 'आपका व्यवसाय क्या है?');
    assert.equal(await page.locator('#merchant-secret').isHidden(), true);
    const html = await page.content();
    assert.ok(!html.includes(secret), 'the secret is not shown again');
    assert.ok(!html.includes(passwords['desk-auditor']), 'nor a password');
    assert.ok((await page.locator('#merchant-list').textContent()).includes('(2 secrets)'));
  });
});
