'use strict';
// The customer journey in a real browser: Debian's Chromium, driven by playwright-core,
// with fake camera and microphone, geolocation set per context, permissions granted or
// refused per context, and the customer's address given by X-Forwarded-For (loopback
// is the test's trusted proxy). Each test checks what the customer sees, what
// GET /vkyc then says, and takes a phone-size screenshot of each step
// (target/journey-screenshots/).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  Deployment, AADHAAR_DETAILS, BACKEND, DELHI, LONDON, INDIAN_IP,
  shot, atStep, confirmMobile, consent, uploadAadhaar, passIp, passLocation, passDevices, passChecks, startReceiver,
} = require('./support.js');

let d, base, fixtures, receiver;

describe(`customer journey in Chromium (${BACKEND})`, () => {
  before(async () => {
    receiver = await startReceiver();
    d = await new Deployment().start(['webhook_allow_private_addresses = true', 'webhook_interval_ms = 100']);
    ({ base, fixtures } = d);
    d.vkyc(['merchant', 'webhook', '--client-id', d.clientId, '--url', receiver.url]);
  });

  after(async () => {
    await d.stop();
    receiver.close();
  });

  async function agentOnline(username) {
    const password = 'correct horse battery staple 42';
    d.createStaff(username, 'agent', password);
    const login = await fetch(`${base}/desk/api/login`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }),
    });
    assert.equal(login.status, 200, await login.clone().text());
    const cookie = login.headers.get('set-cookie').split(';')[0];
    const { csrf_token: csrf } = await login.json();
    const post = (p) => fetch(`${base}/desk/api/agent/${p}`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrf } });
    assert.equal((await post('online')).status, 200);
    const timer = setInterval(() => post('heartbeat').catch(() => {}), 5000);
    return async () => {
      clearInterval(timer);
      await post('offline');
    };
  }

  it('walks the whole journey to USER_QUEUED, with Aadhaar retried, and shows the live position', async () => {
    const stopAgent = await agentOnline(`agent-${BACKEND}-1`);
    try {
      // The one agent is given a first customer (the queue assigns at once), so the
      // customer followed below waits in the queue behind that call.
      const first = await d.newRequest({ aadhaar_details: AADHAAR_DETAILS });
      const other = await d.customerPage();
      await other.page.goto(first.link);
      await passChecks(other.page);
      await other.page.locator('#join-queue').click();
      await d.expectStatus(first.id, 'AGENT_ASSIGNED_TO_USER');
      await atStep(other.page, 'call');
      await other.page.getByRole('button', { name: 'Start the video call' }).waitFor();
      // The time left to answer counts down.
      const left = async () => Number(await other.page.locator('#call-countdown').getAttribute('data-seconds'));
      const shown = await left();
      await other.page.waitForFunction((s) => Number(document.querySelector('#call-countdown').dataset.seconds) < s, shown, { timeout: 5000 });
      assert.match(await other.page.locator('#call-countdown').textContent(), /^\d+ seconds left to answer\.$/);
      await shot(other.page, '09-call-invitation');
      await other.context.close();

      const { id, link } = await d.newRequest();
      const { context, page } = await d.customerPage();
      await page.goto(link);
      // The default template confirms the mobile number first.
      await atStep(page, 'mobile_otp');
      await shot(page, '00-mobile-otp');
      await confirmMobile(page);
      await atStep(page, 'consent');
      // The bar of steps by name: the mobile number done, consent the current step.
      assert.deepEqual(await page.locator('#steps li').allTextContents(),
        ['Mobile', 'Consent', 'Aadhaar', 'Network', 'Location', 'Camera', 'Video call']);
      assert.equal(await page.locator('#steps li[aria-current="step"]').textContent(), 'Consent');
      assert.equal(await page.locator('#steps li.done').count(), 1);
      await shot(page, '01-consent');
      // Nothing can be skipped: Continue stays disabled until the box is ticked.
      assert.equal(await page.getByRole('button', { name: 'Agree and continue' }).isDisabled(), true);
      await consent(page);

      await atStep(page, 'aadhaar');
      await shot(page, '02-aadhaar');
      await uploadAadhaar(page, fixtures.good, 'ZZ99');
      await page.getByRole('alert').filter({ hasText: 'The share code does not open this file.' }).waitFor();
      // The cause first; the file kept for the next try; the tries left said.
      assert.match(await page.getByRole('alert').textContent(), /^The share code does not open this file\./);
      assert.equal(await page.locator('#aadhaar-file').evaluate((i) => i.files.length && i.files[0].name), 'good.zip');
      assert.equal(await page.locator('#aadhaar-attempts').textContent(), 'You have 4 more attempts in the next 15 minutes.');
      await page.getByText('How do I get this file?').click();
      await page.getByText("UIDAI's myAadhaar website").waitFor();
      await d.expectStatus(id, 'AADHAAR_VERIFICATION_FAILED');
      await shot(page, '03-aadhaar-failed');
      await uploadAadhaar(page, fixtures.tampered);
      await page.getByRole('alert').filter({ hasText: 'not signed by UIDAI or has been changed' }).waitFor();
      await uploadAadhaar(page, fixtures.old);
      await page.getByRole('alert').filter({ hasText: 'more than 3 days old' }).waitFor();
      await uploadAadhaar(page, fixtures.good);

      await atStep(page, 'ip');
      await d.expectStatus(id, 'AADHAAR_VERIFICATION_SUCCESS');
      await shot(page, '04-ip');
      await passIp(page);
      await atStep(page, 'location');
      await d.expectStatus(id, 'USER_IP_VERIFICATION_SUCCESSFUL');
      await shot(page, '05-location');
      await passLocation(page);
      await atStep(page, 'devices');
      await d.expectStatus(id, 'USER_LOCATION_VERIFICATION_SUCCESS');
      await shot(page, '06-devices');
      await passDevices(page);
      await atStep(page, 'waiting');
      await d.expectStatus(id, 'USER_DEVICE_CHECK_SUCCESS');
      await shot(page, '07-waiting');
      await page.locator('#join-queue').click();
      await atStep(page, 'queue');
      await d.expectStatus(id, 'USER_QUEUED');
      await page.waitForSelector('#queue-position[data-position="1"]');
      // The bar stays on the queue: every check done, the video call to come.
      assert.equal(await page.locator('#steps li[aria-current="step"]').textContent(), 'Video call');
      assert.equal(await page.locator('#steps li.done').count(), 6);
      assert.match(await page.locator('#queue-wait').textContent(), /about 5 min/);
      await shot(page, '08-queue');

      // The merchant sees what the decisions rest on.
      const journey = await d.merchant('GET', `/vkyc/journey?verification_id=${id}`);
      assert.equal(journey.aadhaar.source, 'offline_ekyc');
      assert.equal(journey.aadhaar.details.name, 'Asha Rao');
      assert.equal(journey.aadhaar.details.aadhaar_last4, '4321');
      const ipStep = journey.steps.find((s) => s.step === 'ip' && s.outcome);
      assert.equal(ipStep.evidence.ip, INDIAN_IP);
      const devices = journey.steps.find((s) => s.step === 'devices' && s.outcome);
      assert.equal(devices.evidence.camera, 'ok');
      assert.ok(devices.evidence.bandwidth_kbps > 0, JSON.stringify(devices.evidence));
      assert.ok(devices.evidence.video_width > 0, JSON.stringify(devices.evidence));
      assert.equal(journey.consent.user_agent.includes('Chrome'), true);
      // The merchant's webhook receiver heard every step.
      for (const sub of ['AADHAAR_VERIFICATION_FAILED', 'AADHAAR_VERIFICATION_SUCCESS', 'USER_IP_VERIFICATION_SUCCESSFUL',
        'USER_LOCATION_VERIFICATION_SUCCESS', 'USER_DEVICE_CHECK_SUCCESS', 'USER_QUEUED']) {
        assert.ok(await receiver.heard(id, sub), `webhook for ${sub}`);
      }
      await context.close();
    } finally {
      await stopAgent();
    }
  });

  it('refuses a VPN address and an address outside India, then lets the customer retry', async () => {
    const { id, link } = await d.newRequest({ aadhaar_details: AADHAAR_DETAILS });
    const { context, page } = await d.customerPage({ ip: '103.10.4.4' });
    await page.goto(link);
    await consent(page);
    await passIp(page);
    await page.getByRole('alert').filter({ hasText: 'VPN or proxy' }).waitFor();
    assert.match(await page.getByRole('alert').textContent(), /Turn off any VPN app or proxy/);
    await d.expectStatus(id, 'USER_PROXY_DETECTED');
    await shot(page, '10-ip-proxy');
    await context.setExtraHTTPHeaders({ 'x-forwarded-for': '8.8.8.8' });
    await page.locator('#ip-submit').click();
    await page.getByRole('alert').filter({ hasText: 'does not come from India' }).waitFor();
    await d.expectStatus(id, 'USER_LOCATION_OUTSIDE_INDIA');
    await context.setExtraHTTPHeaders({ 'x-forwarded-for': INDIAN_IP });
    await page.locator('#ip-submit').click();
    await atStep(page, 'location');
    await d.expectStatus(id, 'USER_IP_VERIFICATION_SUCCESSFUL');
    await context.close();
  });

  it('refuses a position outside India and a refused permission, then accepts Delhi', async () => {
    const { id, link } = await d.newRequest({ aadhaar_details: AADHAAR_DETAILS });
    const { context, page } = await d.customerPage({ geo: LONDON });
    await page.goto(link);
    await consent(page);
    await passIp(page);
    await passLocation(page);
    await page.getByRole('alert').filter({ hasText: 'outside India' }).waitFor();
    await d.expectStatus(id, 'USER_LOCATION_OUTSIDE_INDIA');
    // An end for now: what to do next, and only a quiet way to check again.
    assert.match(await page.locator('#location-next').textContent(), /When you are in India, open this link again: it works until .* IST\./);
    assert.equal(await page.locator('#location-submit').textContent(), 'I am in India now: check again');
    assert.match(await page.locator('#location-submit').getAttribute('class'), /secondary/);
    await shot(page, '11-location-outside');
    await context.clearPermissions();
    await page.locator('#location-submit').click();
    await page.getByRole('alert').filter({ hasText: 'Location access was not allowed' }).waitFor();
    await d.expectStatus(id, 'USER_LOCATION_PERMISSION_DISABLED');
    // Where to allow it in this browser; no promise that the browser will ask.
    assert.match(await page.locator('#location-help').textContent(), /set Location to Allow/);
    assert.equal(await page.getByText('Your browser will ask for permission').count(), 0);
    await shot(page, '12-location-denied');
    await context.grantPermissions(['geolocation']);
    await context.setGeolocation(DELHI);
    await page.locator('#location-submit').click();
    await atStep(page, 'devices');
    await d.expectStatus(id, 'USER_LOCATION_VERIFICATION_SUCCESS');
    await context.close();
  });

  it('fails the camera, then the microphone, when the browser refuses them', async () => {
    const { id, link } = await d.newRequest({ aadhaar_details: AADHAAR_DETAILS });
    const camera = await d.customerPage({ strict: true, permissions: ['geolocation', 'microphone'] });
    await camera.page.goto(link);
    await consent(camera.page);
    await passIp(camera.page);
    await passLocation(camera.page);
    await passDevices(camera.page);
    // Not allowed (not "not available"): where to allow it.
    await camera.page.getByRole('alert').filter({ hasText: 'Camera access was not allowed' }).waitFor();
    await d.expectStatus(id, 'USER_VIDEO_CHECK_FAILED');
    await shot(camera.page, '13-camera-failed');
    await camera.context.close();

    const mic = await d.customerPage({ strict: true, permissions: ['geolocation', 'camera'] });
    await mic.page.goto(link);
    await passDevices(mic.page);
    await mic.page.getByRole('alert').filter({ hasText: 'Microphone access was not allowed' }).waitFor();
    await d.expectStatus(id, 'USER_AUDIO_CHECK_FAILED');
    await mic.context.close();

    const both = await d.customerPage();
    await both.page.goto(link);
    await passDevices(both.page);
    await atStep(both.page, 'waiting');
    await d.expectStatus(id, 'USER_DEVICE_CHECK_SUCCESS');
    await both.context.close();
  });

  it('with no agent online offers slots; books, reschedules and cancels one', async () => {
    // An agent on the roster gives each slot a seat; nobody is online.
    d.createStaff(`roster-${BACKEND}`, 'agent', 'a long enough password');
    const { id, link } = await d.newRequest({ aadhaar_details: AADHAAR_DETAILS, notification_types: ['email'] });
    const { context, page } = await d.customerPage();
    await page.goto(link);
    await consent(page);
    await passIp(page);
    await passLocation(page);
    await passDevices(page);
    await atStep(page, 'waiting');
    await page.locator('#join-queue').click();
    // An ordinary state, said calmly: a status, not a red alert.
    await page.getByRole('status').filter({ hasText: 'No agent is available' }).waitFor();
    assert.equal(await page.getByRole('alert').count(), 0);
    await d.expectStatus(id, 'NO_AGENT_FOUND');
    await page.waitForSelector('#slot option', { state: 'attached' });
    await shot(page, '14-no-agent-slots');
    const first = await page.locator('#slot option').first().getAttribute('value');
    await page.getByRole('button', { name: 'Book this time' }).click();
    await atStep(page, 'scheduled');
    let now = await d.expectStatus(id, 'USER_MEETING_SCHEDULED');
    assert.equal(now.meeting_schedule, first);
    await shot(page, '15-scheduled');

    await page.locator('#reschedule').click();
    await page.waitForSelector('#slot option', { state: 'attached' });
    const second = await page.locator('#slot option').nth(1).getAttribute('value');
    await page.selectOption('#slot', second);
    await page.getByRole('button', { name: 'Book this time' }).click();
    await page.waitForFunction((s) => document.querySelector('#slot-time') && !document.querySelector('#slots'), second);
    now = await d.expectStatus(id, 'USER_MEETING_SCHEDULED');
    assert.equal(now.meeting_schedule, second);
    const history = await d.merchant('GET', `/vkyc/history?verification_id=${id}`);
    const moves = history.history.map((h) => h.to_sub_status);
    assert.deepEqual(moves.slice(-3), ['USER_MEETING_SCHEDULED', 'USER_MEETING_CANCELLED', 'USER_MEETING_SCHEDULED']);

    await page.locator('#cancel-slot').click();
    await atStep(page, 'waiting');
    now = await d.expectStatus(id, 'USER_MEETING_CANCELLED');
    assert.equal(now.meeting_schedule, null);
    await shot(page, '16-cancelled');

    const messages = await d.merchant('GET', `/vkyc/notifications?verification_id=${id}`);
    const kinds = messages.notifications.map((n) => n.kind);
    assert.ok(kinds.includes('link') && kinds.includes('slot_booked') && kinds.includes('slot_cancelled'), kinds.join());
    await context.close();
  });

  it('speaks Hindi, and stores the consent in the language shown', async () => {
    const { id, link } = await d.newRequest();
    const { context, page } = await d.customerPage({ locale: 'hi-IN' });
    await page.goto(`${link}?lang=hi`);
    await atStep(page, 'mobile_otp');
    await page.getByRole('heading', { name: 'अपना मोबाइल नंबर पुष्टि करें' }).waitFor();
    await confirmMobile(page);
    await atStep(page, 'consent');
    assert.equal(await page.getAttribute('html', 'lang'), 'hi');
    await page.getByRole('heading', { name: 'आपकी सहमति' }).waitFor();
    await shot(page, '17-consent-hindi');
    await page.getByLabel('मैंने इसे पढ़ लिया है और मैं सहमत हूँ').check();
    await page.getByRole('button', { name: 'सहमत हूँ, आगे बढ़ें' }).click();
    await atStep(page, 'aadhaar');
    const journey = await d.merchant('GET', `/vkyc/journey?verification_id=${id}`);
    assert.equal(journey.consent.lang, 'hi');
    await context.close();
  });

  it('shows clear pages for an unknown, a tampered and an expired link', async () => {
    const { link } = await d.newRequest();
    const { context, page } = await d.customerPage();
    const tampered = link.slice(0, -1) + (link.endsWith('0') ? '1' : '0');
    let response = await page.goto(tampered);
    assert.equal(response.status(), 404);
    await page.getByRole('heading', { name: 'Link not found' }).waitFor();
    await page.getByText('contact the bank or company that sent it').waitFor();
    await shot(page, '18-link-not-found');
    response = await page.goto(`${base}/v/not-a-link`);
    assert.equal(response.status(), 404);

    const expiring = await d.newRequest({ link_expiry: new Date(Date.now() + 3000).toISOString() });
    await new Promise((r) => setTimeout(r, 4000));
    response = await page.goto(expiring.link);
    assert.equal(response.status(), 410);
    await page.getByRole('heading', { name: 'Link expired' }).waitFor();
    // The bank that sent it and whom to ask for a new one; a switch to Hindi, and back.
    assert.equal(await page.locator('#brand').textContent(), 'Bootstrap test merchant · Video KYC');
    await page.getByText('contact Bootstrap test merchant the way you usually do').waitFor();
    assert.equal(await page.locator('html').getAttribute('lang'), 'en');
    await page.locator('a.lang-link').click();
    await page.getByRole('heading', { name: 'लिंक की अवधि समाप्त' }).waitFor();
    assert.equal(await page.locator('html').getAttribute('lang'), 'hi');
    assert.equal(await page.getByText('Link expired').count(), 0, 'one language at a time');
    await shot(page, '19-link-expired-hi');
    await page.getByRole('link', { name: 'English' }).click();
    await page.getByRole('heading', { name: 'Link expired' }).waitFor();
    await d.expectStatus(expiring.id, 'VKYC_EXPIRED');
    await shot(page, '19-link-expired');
    await context.close();
  });

  it('refuses out-of-order calls to the journey API and changes nothing', async () => {
    const { id, link } = await d.newRequest();
    const key = link.split('/').pop();
    const post = (p, body) => fetch(`${base}/v/${key}/api/${p}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body || {}) });
    for (const [p, body] of [['ip'], ['location', { permission: 'granted', latitude: 28.6, longitude: 77.2 }], ['devices', { camera: 'ok', microphone: 'ok' }], ['queue']]) {
      const r = await post(p, body);
      const answer = await r.text();
      assert.equal(r.status, 409, `${p}: ${answer}`);
      assert.equal(JSON.parse(answer).code, 'journey_step_invalid');
    }
    assert.equal((await d.status(id)).sub_status, 'LINK_GENERATED');
  });
});
