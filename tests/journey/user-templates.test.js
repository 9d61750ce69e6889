'use strict';
// The journey under each built-in user template, in a real browser: the standard one's
// mobile OTP (five wrong codes make the step wait), vkyc_user_template_v1's
// personal-details form and Aadhaar from the DigiLocker sandbox, and the offline-KYC
// template asking for the e-KYC file even when the merchant sent Aadhaar details.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  Deployment, AADHAAR_DETAILS, BACKEND, shot, atStep, confirmMobile, consent, passIp, passLocation, passDevices,
} = require('./support.js');

let d;

describe(`the built-in user templates (${BACKEND})`, () => {
  before(async () => {
    d = await new Deployment().start();
  });

  after(async () => {
    await d.stop();
  });

  it('vkyc_standard_template: a wrong code five times makes the OTP step wait', async () => {
    const { id, link } = await d.newRequest({ notification_types: ['sms'] });
    const { context, page } = await d.customerPage();
    await page.goto(link);
    await atStep(page, 'mobile_otp');
    // The first screen says what to keep ready, and where the code goes.
    await page.locator('#before-you-start').waitFor();
    await page.getByText('to your mobile number ••••••3210').waitFor();
    assert.match(await page.locator('.progress').textContent(), /Step 1 of 7/);
    await page.getByRole('button', { name: 'Send the code' }).click();
    await page.getByText('We sent a 6-digit code to ••••••3210').waitFor();
    await page.getByText('Sandbox: no message is sent; the code is 123456.').waitFor();
    // A new code waits 30 s after the last.
    assert.equal(await page.getByRole('button', { name: 'Send a new code' }).isDisabled(), true);
    await shot(page, 'otp-sent');
    for (let i = 1; i <= 4; i++) {
      await page.getByLabel('The 6-digit code').fill('000000');
      await page.getByRole('button', { name: 'Confirm' }).click();
      await page.locator('#otp-left').filter({ hasText: `Tries left: ${5 - i}.` }).waitFor();
      await page.getByRole('alert').filter({ hasText: 'That code is not right' }).waitFor();
    }
    await page.getByLabel('The 6-digit code').fill('000000');
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByRole('alert').filter({ hasText: 'Too many codes were tried or sent' }).waitFor();
    assert.match(await page.getByRole('alert').textContent(), /at .*IST/);
    assert.equal(await page.locator('#otp-send').isDisabled(), true);
    assert.equal(await page.locator('#otp-code').count(), 0, 'no code can be typed while the step waits');
    await shot(page, 'otp-waiting');
    // Nothing moved, and the merchant's record of the message has the sandbox code.
    await d.expectStatus(id, 'LINK_GENERATED');
    const sent = await d.merchant('GET', `/vkyc/notifications?verification_id=${id}`);
    const otp = sent.notifications.find((n) => n.kind === 'otp');
    assert.equal(otp.state, 'recorded');
    assert.match(otp.body, /123456/);
    await context.close();
  });

  it('vkyc_user_template_v1: OTP, personal details, consent, then Aadhaar from DigiLocker', async () => {
    const { id, link } = await d.newRequest({ user_template: 'vkyc_user_template_v1' });
    const { context, page } = await d.customerPage();
    await page.goto(link);
    await confirmMobile(page);
    await atStep(page, 'personal_details');
    assert.match(await page.locator('.progress').textContent(), /Step 2 of 8/);
    await page.getByLabel('Employment type *').selectOption('Salaried');
    await page.getByLabel('Monthly income *').selectOption('₹50,000 to ₹1,00,000');
    await page.getByLabel('Gender *').selectOption('Female');
    // The browser holds the form until the required name is there.
    await page.getByRole('button', { name: 'Continue' }).click();
    assert.equal(await page.getByLabel("Father's or guardian's name *").evaluate((i) => i.validity.valueMissing), true);
    await page.getByLabel("Father's or guardian's name *").fill('Ramesh Rao');
    await shot(page, 'personal-details');
    await page.getByRole('button', { name: 'Continue' }).click();
    await atStep(page, 'consent');
    await consent(page);

    await atStep(page, 'aadhaar');
    await page.getByText('share your Aadhaar from DigiLocker').waitFor();
    // One primary action on the screen: DigiLocker; the upload is the secondary way.
    const primaries = await page.locator('#app button:not(.secondary):not(.danger):visible').evaluateAll((bs) => bs.map((b) => b.id));
    assert.deepEqual(primaries, ['digilocker']);
    await shot(page, 'aadhaar-digilocker');
    await page.getByRole('button', { name: 'Share from DigiLocker' }).click();
    await page.getByRole('heading', { name: 'DigiLocker (sandbox)' }).waitFor();
    await shot(page, 'digilocker-sandbox');
    await page.getByRole('link', { name: 'Allow' }).click();
    await atStep(page, 'ip');
    await d.expectStatus(id, 'AADHAAR_VERIFICATION_SUCCESS');
    await passIp(page);
    await passLocation(page);
    await passDevices(page);
    await atStep(page, 'waiting');

    const journey = await d.merchant('GET', `/vkyc/journey?verification_id=${id}`);
    assert.equal(journey.aadhaar.source, 'digilocker');
    assert.deepEqual(journey.personal_details, {
      employment_type: 'Salaried', monthly_income: '₹50,000 to ₹1,00,000', gender: 'Female',
      father_or_guardian_name: 'Ramesh Rao',
    });
    assert.deepEqual(journey.steps.filter((s) => s.ended_at).map((s) => s.step).slice(0, 4),
      ['mobile_otp', 'personal_details', 'consent', 'aadhaar']);
    await context.close();
  });

  it('vkyc_user_okyc_template_v1: the e-KYC file is asked for even with the merchant\'s details, in Hindi too', async () => {
    const { link } = await d.newRequest({ user_template: 'vkyc_user_okyc_template_v1', aadhaar_details: AADHAAR_DETAILS });
    const { context, page } = await d.customerPage({ locale: 'hi-IN' });
    await page.goto(`${link}?lang=hi`);
    await atStep(page, 'mobile_otp');
    await page.getByRole('heading', { name: 'अपना मोबाइल नंबर पुष्टि करें' }).waitFor();
    await confirmMobile(page);
    await atStep(page, 'personal_details');
    // The form's Hindi labels, from the template.
    await page.getByText('रोज़गार का प्रकार *').waitFor();
    for (const select of await page.locator('#details-form select').all()) await select.selectOption({ index: 1 });
    await page.locator('#details-form input').fill('रमेश राव');
    await page.locator('#details-submit').click();
    await atStep(page, 'consent');
    await page.getByLabel('मैंने इसे पढ़ लिया है और मैं सहमत हूँ').check();
    await page.getByRole('button', { name: 'सहमत हूँ, आगे बढ़ें' }).click();
    await atStep(page, 'aadhaar');
    await page.locator('#aadhaar-file').waitFor();
    assert.equal(await page.locator('#digilocker').count(), 0, 'no DigiLocker under this template');
    await shot(page, 'okyc-aadhaar-hindi');
    await context.close();
  });
});
