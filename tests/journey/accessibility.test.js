'use strict';
// Every screen of the customer journey, checked with axe-core (WCAG 2.1 A and AA) in
// English and in Hindi: no serious or critical violation on any step, from the mobile
// OTP through the personal-details form, consent, Aadhaar and the checks to the wait for
// an agent (with the slots offered),
// and on the pages for a link that is not valid.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  Deployment, BACKEND, atStep, axeViolations, passIp, passLocation, passDevices,
} = require('./support.js');

let d;

describe(`accessibility of the journey (${BACKEND})`, () => {
  before(async () => {
    d = await new Deployment().start();
  });

  after(async () => {
    await d.stop();
  });

  for (const lang of ['en', 'hi']) {
    it(`has no serious or critical axe-core violation on any step (${lang})`, async () => {
      const { link } = await d.newRequest({ user_template: 'vkyc_user_template_v1' });
      const { context, page } = await d.customerPage({ axe: true, locale: lang === 'hi' ? 'hi-IN' : 'en-IN' });
      const found = [];
      const check = async (step) => {
        await atStep(page, step);
        for (const v of await axeViolations(page)) found.push(`${step}: ${v}`);
      };
      await page.goto(`${link}?lang=${lang}`);
      await check('mobile_otp');
      await page.locator('#otp-send').click();
      await page.locator('#otp-code').waitFor();
      await check('mobile_otp');
      await page.locator('#otp-code').fill('000000');
      await page.locator('#otp-submit').click();
      await page.getByRole('alert').waitFor();
      await check('mobile_otp');
      await page.locator('#otp-code').fill('123456');
      await page.locator('#otp-submit').click();
      await check('personal_details');
      for (const select of await page.locator('#details-form select').all()) await select.selectOption({ index: 1 });
      await page.locator('#details-form input').fill('Ramesh Rao');
      await page.locator('#details-submit').click();
      await check('consent');
      await page.locator('#agree').check();
      await page.locator('#consent-submit').click();
      await check('aadhaar');
      await page.locator('#aadhaar-howto summary').click();
      await check('aadhaar');
      await page.getByRole('button', { name: lang === 'hi' ? 'DigiLocker से साझा करें' : 'Share from DigiLocker' }).click();
      await page.locator('#allow').click();
      await check('ip');
      await passIp(page);
      await check('location');
      await passLocation(page);
      await check('devices');
      await passDevices(page);
      await check('waiting');
      // No agent is online here: the calm "no agent" state, with the slots offered.
      await page.locator('#join-queue').click();
      await page.locator('#message[role="status"]').waitFor();
      await page.locator('#slot, #no-slots').first().waitFor();
      await check('waiting');
      assert.deepEqual(found, [], found.join('\n'));
      await context.close();
    });
  }

  it('has no serious or critical violation on the page for a link that is not valid', async () => {
    const { context, page } = await d.customerPage({ axe: true });
    await page.goto(`${d.base}/v/${'0'.repeat(40)}`);
    await page.locator('#notice').waitFor();
    assert.deepEqual(await axeViolations(page), []);
    await page.goto(`${d.base}/v/${'0'.repeat(40)}?lang=hi`);
    await page.locator('#notice').waitFor();
    assert.deepEqual(await axeViolations(page), [], 'in Hindi');
    await context.close();
  });
});
