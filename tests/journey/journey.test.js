'use strict';
// The customer journey in a real browser: Debian's Chromium, driven by playwright-core,
// with fake camera and microphone, geolocation set per context, permissions granted or
// refused per context, and the customer's address given by X-Forwarded-For (loopback
// is the test's trusted proxy). Each test checks what the customer sees, what
// GET /vkyc then says, and takes a phone-size screenshot of each step
// (target/journey-screenshots/).
//
// Runs on SQLite; with VKYC_JOURNEY_PG_URL set (a PostgreSQL server URL), on a fresh
// PostgreSQL database instead.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { REPO_ROOT, serverBinary, serverEnv, startServer, stopServer, MERCHANT_API_LINE, CLIENT_ID_LINE, CLIENT_SECRET_LINE } = require('../sdk/server.js');

const SUPPORT = path.join(REPO_ROOT, 'tests', 'support');
const SHOTS = path.join(REPO_ROOT, 'target', 'journey-screenshots');
const PHONE = { width: 390, height: 844 };
const DELHI = { latitude: 28.6139, longitude: 77.209 };
const LONDON = { latitude: 51.5072, longitude: -0.1276 };
const INDIAN_IP = '49.36.10.20';
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-device-for-media-stream', '--allow-loopback-in-peer-connection'];
const PG_URL = process.env.VKYC_JOURNEY_PG_URL;
const BACKEND = PG_URL ? 'postgres' : 'sqlite';

let bin, dataDir, server, base, apiUrl, clientId, clientSecret, fixtures;
let browser; // camera and microphone allowed by the fake UI
let strictBrowser; // permissions only as each context grants them
let pgDatabase;
let vkycEnv;

/** A `vkyc` command on the server's data directory and configuration. */
function vkyc(args, input) {
  const r = spawnSync(bin, args, { input, encoding: 'utf8', env: vkycEnv, cwd: dataDir });
  if (r.status !== 0) throw new Error(`vkyc ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function run(cmd, args, input) {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function makeFixtures(dir) {
  run(path.join(SUPPORT, 'make-uidai-cert'), [dir]);
  const key = path.join(dir, 'uidai-test.key');
  const cert = path.join(dir, 'uidai-test.crt');
  const zip = (name, ...args) => {
    const out = path.join(dir, name);
    run(path.join(SUPPORT, 'make-aadhaar-zip'), ['--key', key, '--cert', cert, '--out', out, '--share-code', 'AB12',
      '--name', 'Asha Rao', '--last4', '4321', ...args]);
    return out;
  };
  const spec = (file, body) => {
    fs.writeFileSync(`${file}.json`, JSON.stringify(body));
    return `${file}.json`;
  };
  const country = path.join(dir, 'country.mmdb');
  run(path.join(SUPPORT, 'make-mmdb'), ['--type', 'GeoIP2-Country', '--out', country, spec(country, {
    '49.36.0.0/14': { country: { iso_code: 'IN' } },
    '103.10.0.0/16': { country: { iso_code: 'IN' } },
    '8.8.8.0/24': { country: { iso_code: 'US' } },
    '127.0.0.0/8': { country: { iso_code: 'IN' } },
  })]);
  const anonymous = path.join(dir, 'anonymous.mmdb');
  run(path.join(SUPPORT, 'make-mmdb'), ['--type', 'GeoIP2-Anonymous-IP', '--out', anonymous, spec(anonymous, {
    '103.10.0.0/16': { is_anonymous: true, is_anonymous_vpn: true },
  })]);
  return {
    cert, country, anonymous,
    good: zip('good.zip'),
    tampered: zip('tampered.zip', '--tamper'),
    old: zip('old.zip', '--generated', '2020-01-01 10:00:00'),
  };
}

async function merchant(method, p, body) {
  const response = await fetch(`${apiUrl}${p}`, {
    method,
    headers: { 'x-client-id': clientId, 'x-client-secret': clientSecret, 'x-api-version': '2024-12-01', 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json();
  assert.ok(response.ok, `${method} ${p}: ${response.status} ${JSON.stringify(data)}`);
  return data;
}

let serial = 0;
/** A new user and Video KYC request; returns its id and link. */
async function newRequest(extra = {}) {
  const id = `web-${BACKEND}-${process.pid}-${++serial}`;
  await merchant('POST', '/user', { user_id: id, phone: '9876543210', name: 'Asha Rao', email: 'asha@example.in' });
  const created = await merchant('POST', '/vkyc', { verification_id: id, user_id: id, ...extra });
  return { id, link: created.vkyc_link };
}

const AADHAAR_DETAILS = {
  last_verified_at: '2026-11-30T10:00:00.000Z', care_of: 'S/O Ravi Rao', dob: '1990-05-17', gender: 'F',
  name: 'Asha Rao', photo_link: 'https://example.in/photos/asha.jpg',
};

async function status(id) {
  return merchant('GET', `/vkyc?verification_id=${id}`);
}

async function expectStatus(id, sub) {
  let last;
  for (let i = 0; i < 50; i++) {
    last = await status(id);
    if (last.sub_status === sub) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(last.sub_status, sub, `GET /vkyc for ${id}`);
}

/** A phone-size page for one customer. */
async function customerPage(options = {}) {
  const { ip = INDIAN_IP, geo = DELHI, permissions = ['geolocation', 'camera', 'microphone'], strict = false, locale = 'en-IN' } = options;
  const context = await (strict ? strictBrowser : browser).newContext({
    viewport: PHONE, deviceScaleFactor: 1, isMobile: true, hasTouch: true, locale,
    geolocation: geo, permissions, extraHTTPHeaders: { 'x-forwarded-for': ip },
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  return { context, page };
}

async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${BACKEND}-${name}.png`), fullPage: true });
}

async function atStep(page, step) {
  await page.waitForSelector(`#app[data-step="${step}"]`, { timeout: 15_000 });
}

async function consent(page) {
  await atStep(page, 'consent');
  await page.getByLabel('I have read this and I agree').check();
  await page.getByRole('button', { name: 'Agree and continue' }).click();
}

async function uploadAadhaar(page, file, code = 'AB12') {
  await atStep(page, 'aadhaar');
  await page.setInputFiles('#aadhaar-file', file);
  await page.fill('#share-code', code);
  await page.getByRole('button', { name: 'Verify Aadhaar' }).click();
}

async function passIp(page) {
  await atStep(page, 'ip');
  await page.locator('#ip-submit').click();
}

async function passLocation(page) {
  await atStep(page, 'location');
  await page.locator('#location-submit').click();
}

async function passDevices(page) {
  await atStep(page, 'devices');
  await page.locator('#devices-submit').click();
}

/** Logs an agent in at the desk and keeps it online (heartbeats) until stopped. */
async function agentOnline(username) {
  const password = 'correct horse battery staple 42';
  vkyc(['staff', 'create', '--username', username, '--role', 'agent', '--password-stdin'], `${password}\n`);
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

describe(`customer journey in Chromium (${BACKEND})`, () => {
  before(async () => {
    bin = serverBinary();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkyc-journey-'));
    fixtures = makeFixtures(dataDir);
    const config = path.join(dataDir, 'vkyc.toml');
    fs.writeFileSync(config, [
      'trusted_proxies = ["127.0.0.1/32"]',
      'default_rate_limit_per_minute = 0',
      '[journey]',
      `uidai_certificate = ${JSON.stringify(fixtures.cert)}`,
      `ip_country_db = ${JSON.stringify(fixtures.country)}`,
      `ip_anonymous_db = ${JSON.stringify(fixtures.anonymous)}`,
      'working_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]',
      'working_hours = "00:00-24:00"',
      'queue_interval_ms = 200',
      '',
    ].join('\n'));
    const extra = { VKYC_CONFIG: config };
    if (PG_URL) {
      pgDatabase = `vkyc_test_journey_${process.pid}`;
      run('psql', [PG_URL, '-qc', `CREATE DATABASE ${pgDatabase}`]);
      extra.VKYC_DATABASE_URL = PG_URL.replace(/\/[^/]*$/, `/${pgDatabase}`);
    }
    server = await startServer(bin, dataDir, { apiUrl: MERCHANT_API_LINE, clientId: CLIENT_ID_LINE, clientSecret: CLIENT_SECRET_LINE }, extra);
    ({ apiUrl, clientId, clientSecret } = server.values);
    base = apiUrl.replace(/\/verification$/, '');
    vkycEnv = serverEnv(dataDir, extra);
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: [...CHROMIUM_FLAGS, '--use-fake-ui-for-media-stream'] });
    strictBrowser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_FLAGS });
  });

  after(async () => {
    if (browser) await browser.close();
    if (strictBrowser) await strictBrowser.close();
    await stopServer(server);
    if (pgDatabase) spawnSync('psql', [PG_URL, '-qc', `DROP DATABASE IF EXISTS ${pgDatabase}`]);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('walks the whole journey to USER_QUEUED, with Aadhaar retried, and shows the live position', async () => {
    const stopAgent = await agentOnline(`agent-${BACKEND}-1`);
    try {
      const { id, link } = await newRequest();
      const { context, page } = await customerPage();
      await page.goto(link);
      await atStep(page, 'consent');
      await shot(page, '01-consent');
      // Nothing can be skipped: Continue stays disabled until the box is ticked.
      assert.equal(await page.getByRole('button', { name: 'Agree and continue' }).isDisabled(), true);
      await consent(page);

      await atStep(page, 'aadhaar');
      await shot(page, '02-aadhaar');
      await uploadAadhaar(page, fixtures.good, 'ZZ99');
      await page.getByRole('alert').filter({ hasText: 'The share code does not open this file.' }).waitFor();
      await expectStatus(id, 'AADHAAR_VERIFICATION_FAILED');
      await shot(page, '03-aadhaar-failed');
      await uploadAadhaar(page, fixtures.tampered);
      await page.getByRole('alert').filter({ hasText: 'not signed by UIDAI or has been changed' }).waitFor();
      await uploadAadhaar(page, fixtures.old);
      await page.getByRole('alert').filter({ hasText: 'more than 3 days old' }).waitFor();
      await uploadAadhaar(page, fixtures.good);

      await atStep(page, 'ip');
      await expectStatus(id, 'AADHAAR_VERIFICATION_SUCCESS');
      await shot(page, '04-ip');
      await passIp(page);
      await atStep(page, 'location');
      await expectStatus(id, 'USER_IP_VERIFICATION_SUCCESSFUL');
      await shot(page, '05-location');
      await passLocation(page);
      await atStep(page, 'devices');
      await expectStatus(id, 'USER_LOCATION_VERIFICATION_SUCCESS');
      await shot(page, '06-devices');
      await passDevices(page);
      await atStep(page, 'waiting');
      await expectStatus(id, 'USER_DEVICE_CHECK_SUCCESS');
      await shot(page, '07-waiting');
      await page.locator('#join-queue').click();
      await atStep(page, 'queue');
      await expectStatus(id, 'USER_QUEUED');
      await page.waitForSelector('#queue-position[data-position="1"]');
      assert.match(await page.locator('#queue-wait').textContent(), /about 5 min/);
      await shot(page, '08-queue');

      // The merchant sees what the decisions rest on.
      const journey = await merchant('GET', `/vkyc/journey?verification_id=${id}`);
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
      await context.close();
    } finally {
      await stopAgent();
    }
  });

  it('refuses a VPN address and an address outside India, then lets the customer retry', async () => {
    const { id, link } = await newRequest({ aadhaar_details: AADHAAR_DETAILS });
    const { context, page } = await customerPage({ ip: '103.10.4.4' });
    await page.goto(link);
    await consent(page);
    await passIp(page);
    await page.getByRole('alert').filter({ hasText: 'VPN or proxy' }).waitFor();
    await expectStatus(id, 'USER_PROXY_DETECTED');
    await shot(page, '10-ip-proxy');
    await context.setExtraHTTPHeaders({ 'x-forwarded-for': '8.8.8.8' });
    await page.locator('#ip-submit').click();
    await page.getByRole('alert').filter({ hasText: 'does not come from India' }).waitFor();
    await expectStatus(id, 'USER_LOCATION_OUTSIDE_INDIA');
    await context.setExtraHTTPHeaders({ 'x-forwarded-for': INDIAN_IP });
    await page.locator('#ip-submit').click();
    await atStep(page, 'location');
    await expectStatus(id, 'USER_IP_VERIFICATION_SUCCESSFUL');
    await context.close();
  });

  it('refuses a position outside India and a refused permission, then accepts Delhi', async () => {
    const { id, link } = await newRequest({ aadhaar_details: AADHAAR_DETAILS });
    const { context, page } = await customerPage({ geo: LONDON });
    await page.goto(link);
    await consent(page);
    await passIp(page);
    await passLocation(page);
    await page.getByRole('alert').filter({ hasText: 'outside India' }).waitFor();
    await expectStatus(id, 'USER_LOCATION_OUTSIDE_INDIA');
    await shot(page, '11-location-outside');
    await context.clearPermissions();
    await page.locator('#location-submit').click();
    await page.getByRole('alert').filter({ hasText: 'Location access was not allowed' }).waitFor();
    await expectStatus(id, 'USER_LOCATION_PERMISSION_DISABLED');
    await shot(page, '12-location-denied');
    await context.grantPermissions(['geolocation']);
    await context.setGeolocation(DELHI);
    await page.locator('#location-submit').click();
    await atStep(page, 'devices');
    await expectStatus(id, 'USER_LOCATION_VERIFICATION_SUCCESS');
    await context.close();
  });

  it('fails the camera, then the microphone, when the browser refuses them', async () => {
    const { id, link } = await newRequest({ aadhaar_details: AADHAAR_DETAILS });
    const camera = await customerPage({ strict: true, permissions: ['geolocation', 'microphone'] });
    await camera.page.goto(link);
    await consent(camera.page);
    await passIp(camera.page);
    await passLocation(camera.page);
    await passDevices(camera.page);
    await camera.page.getByRole('alert').filter({ hasText: 'camera is not available' }).waitFor();
    await expectStatus(id, 'USER_VIDEO_CHECK_FAILED');
    await shot(camera.page, '13-camera-failed');
    await camera.context.close();

    const mic = await customerPage({ strict: true, permissions: ['geolocation', 'camera'] });
    await mic.page.goto(link);
    await passDevices(mic.page);
    await mic.page.getByRole('alert').filter({ hasText: 'microphone is not available' }).waitFor();
    await expectStatus(id, 'USER_AUDIO_CHECK_FAILED');
    await mic.context.close();

    const both = await customerPage();
    await both.page.goto(link);
    await passDevices(both.page);
    await atStep(both.page, 'waiting');
    await expectStatus(id, 'USER_DEVICE_CHECK_SUCCESS');
    await both.context.close();
  });

  it('with no agent online offers slots; books, reschedules and cancels one', async () => {
    // An agent on the roster gives each slot a seat; nobody is online.
    vkyc(['staff', 'create', '--username', `roster-${BACKEND}`, '--role', 'agent', '--password-stdin'], 'a long enough password\n');
    const { id, link } = await newRequest({ aadhaar_details: AADHAAR_DETAILS, notification_types: ['email'] });
    const { context, page } = await customerPage();
    await page.goto(link);
    await consent(page);
    await passIp(page);
    await passLocation(page);
    await passDevices(page);
    await atStep(page, 'waiting');
    await page.locator('#join-queue').click();
    await page.getByRole('alert').filter({ hasText: 'No agent is available' }).waitFor();
    await expectStatus(id, 'NO_AGENT_FOUND');
    await page.waitForSelector('#slot option', { state: 'attached' });
    await shot(page, '14-no-agent-slots');
    const first = await page.locator('#slot option').first().getAttribute('value');
    await page.getByRole('button', { name: 'Book this time' }).click();
    await atStep(page, 'scheduled');
    let now = await expectStatus(id, 'USER_MEETING_SCHEDULED');
    assert.equal(now.meeting_schedule, first);
    await shot(page, '15-scheduled');

    await page.locator('#reschedule').click();
    await page.waitForSelector('#slot option', { state: 'attached' });
    const second = await page.locator('#slot option').nth(1).getAttribute('value');
    await page.selectOption('#slot', second);
    await page.getByRole('button', { name: 'Book this time' }).click();
    await page.waitForFunction((s) => document.querySelector('#slot-time') && !document.querySelector('#slots'), second);
    now = await expectStatus(id, 'USER_MEETING_SCHEDULED');
    assert.equal(now.meeting_schedule, second);
    const history = await merchant('GET', `/vkyc/history?verification_id=${id}`);
    const moves = history.history.map((h) => h.to_sub_status);
    assert.deepEqual(moves.slice(-3), ['USER_MEETING_SCHEDULED', 'USER_MEETING_CANCELLED', 'USER_MEETING_SCHEDULED']);

    await page.locator('#cancel-slot').click();
    await atStep(page, 'waiting');
    now = await expectStatus(id, 'USER_MEETING_CANCELLED');
    assert.equal(now.meeting_schedule, null);
    await shot(page, '16-cancelled');

    const messages = await merchant('GET', `/vkyc/notifications?verification_id=${id}`);
    const kinds = messages.notifications.map((n) => n.kind);
    assert.ok(kinds.includes('link') && kinds.includes('slot_booked') && kinds.includes('slot_cancelled'), kinds.join());
    await context.close();
  });

  it('speaks Hindi, and stores the consent in the language shown', async () => {
    const { id, link } = await newRequest();
    const { context, page } = await customerPage({ locale: 'hi-IN' });
    await page.goto(`${link}?lang=hi`);
    await atStep(page, 'consent');
    assert.equal(await page.getAttribute('html', 'lang'), 'hi');
    await page.getByRole('heading', { name: 'आपकी सहमति' }).waitFor();
    await shot(page, '17-consent-hindi');
    await page.getByLabel('मैंने इसे पढ़ लिया है और मैं सहमत हूँ').check();
    await page.getByRole('button', { name: 'सहमत हूँ, आगे बढ़ें' }).click();
    await atStep(page, 'aadhaar');
    const journey = await merchant('GET', `/vkyc/journey?verification_id=${id}`);
    assert.equal(journey.consent.lang, 'hi');
    await context.close();
  });

  it('shows clear pages for an unknown, a tampered and an expired link', async () => {
    const { link } = await newRequest();
    const { context, page } = await customerPage();
    const tampered = link.slice(0, -1) + (link.endsWith('0') ? '1' : '0');
    let response = await page.goto(tampered);
    assert.equal(response.status(), 404);
    await page.getByRole('heading', { name: 'Link not found' }).waitFor();
    await shot(page, '18-link-not-found');
    response = await page.goto(`${base}/v/not-a-link`);
    assert.equal(response.status(), 404);

    const expiring = await newRequest({ link_expiry: new Date(Date.now() + 3000).toISOString() });
    await new Promise((r) => setTimeout(r, 4000));
    response = await page.goto(expiring.link);
    assert.equal(response.status(), 410);
    await page.getByRole('heading', { name: 'Link expired' }).waitFor();
    await expectStatus(expiring.id, 'VKYC_EXPIRED');
    await shot(page, '19-link-expired');
    await context.close();
  });

  it('refuses out-of-order calls to the journey API and changes nothing', async () => {
    const { id, link } = await newRequest();
    const key = link.split('/').pop();
    const post = (p, body) => fetch(`${base}/v/${key}/api/${p}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body || {}) });
    for (const [p, body] of [['ip'], ['location', { permission: 'granted', latitude: 28.6, longitude: 77.2 }], ['devices', { camera: 'ok', microphone: 'ok' }], ['queue']]) {
      const r = await post(p, body);
      const answer = await r.text();
      assert.equal(r.status, 409, `${p}: ${answer}`);
      assert.equal(JSON.parse(answer).code, 'journey_step_invalid');
    }
    assert.equal((await status(id)).sub_status, 'LINK_GENERATED');
  });
});
