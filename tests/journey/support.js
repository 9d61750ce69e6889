'use strict';
// Shared by the browser tests: starts a real `vkyc` server with test fixtures (a UIDAI
// certificate and signed Aadhaar files, IP databases), launches Debian's Chromium through
// playwright-core, and drives the customer journey's steps the way a customer does.
//
// Runs on SQLite; with VKYC_JOURNEY_PG_URL set (a PostgreSQL server URL), on a fresh
// PostgreSQL database instead.

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
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
const AADHAAR_DETAILS = {
  last_verified_at: '2026-11-30T10:00:00.000Z', care_of: 'S/O Ravi Rao', dob: '1990-05-17', gender: 'F',
  name: 'Asha Rao', photo_link: 'https://example.in/photos/asha.jpg',
};

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

/** A server's vkyc.toml for the test fixtures: the desk open all day, a free UDP port.
 * `extraConfig`: more top-level lines; `tables`: more lines per table. */
function configText(fixtures, extraConfig = [], tables = {}) {
  const table = (name, lines) => [`[${name}]`, ...lines, ...(tables[name] || [])];
  return [
    'trusted_proxies = ["127.0.0.1/32"]',
    'default_rate_limit_per_minute = 0',
    ...extraConfig,
    ...table('journey', [
      `uidai_certificate = ${JSON.stringify(fixtures.cert)}`,
      `ip_country_db = ${JSON.stringify(fixtures.country)}`,
      `ip_anonymous_db = ${JSON.stringify(fixtures.anonymous)}`,
      'working_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]',
      'working_hours = "00:00-24:00"',
      'queue_interval_ms = 200',
    ]),
    ...table('calls', []),
    ...table('media', ['udp_bind = "127.0.0.1:0"', 'advertised_ip = "127.0.0.1"']),
    '',
  ].join('\n');
}

/** A running server with its fixtures and browsers. `extraConfig`: more TOML lines. */
class Deployment {
  async start(extraConfig = [], tables = {}) {
    this.bin = serverBinary();
    this.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkyc-journey-'));
    this.fixtures = makeFixtures(this.dataDir);
    const config = path.join(this.dataDir, 'vkyc.toml');
    fs.writeFileSync(config, configText(this.fixtures, extraConfig, tables));
    const extra = { VKYC_CONFIG: config };
    if (PG_URL) {
      this.pgDatabase = `vkyc_test_journey_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
      run('psql', [PG_URL, '-qc', `CREATE DATABASE ${this.pgDatabase}`]);
      extra.VKYC_DATABASE_URL = PG_URL.replace(/\/[^/]*$/, `/${this.pgDatabase}`);
    }
    this.server = await startServer(this.bin, this.dataDir, { apiUrl: MERCHANT_API_LINE, clientId: CLIENT_ID_LINE, clientSecret: CLIENT_SECRET_LINE }, extra);
    ({ apiUrl: this.apiUrl, clientId: this.clientId, clientSecret: this.clientSecret } = this.server.values);
    this.base = this.apiUrl.replace(/\/verification$/, '');
    this.env = serverEnv(this.dataDir, extra);
    this.serial = 0;
    // One browser where the fake UI allows camera and microphone; one where only what
    // a context grants is allowed.
    this.browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: [...CHROMIUM_FLAGS, '--use-fake-ui-for-media-stream'] });
    this.strictBrowser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_FLAGS });
    return this;
  }

  async stop() {
    if (this.browser) await this.browser.close();
    if (this.strictBrowser) await this.strictBrowser.close();
    await stopServer(this.server);
    if (this.pgDatabase) spawnSync('psql', [PG_URL, '-qc', `DROP DATABASE IF EXISTS ${this.pgDatabase}`]);
    if (this.dataDir) fs.rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** A `vkyc` command on the server's data directory and configuration: its stdout. */
  vkyc(args, input) {
    const r = this.vkycRun(args, input);
    if (r.status !== 0) throw new Error(`vkyc ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }

  /** The same, for a command that may fail: `{ status, stdout, stderr }`. */
  vkycRun(args, input) {
    return spawnSync(this.bin, args, { input, encoding: 'utf8', env: this.env, cwd: this.dataDir });
  }

  async merchant(method, p, body) {
    const response = await fetch(`${this.apiUrl}${p}`, {
      method,
      headers: { 'x-client-id': this.clientId, 'x-client-secret': this.clientSecret, 'x-api-version': '2024-12-01', 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json();
    assert.ok(response.ok, `${method} ${p}: ${response.status} ${JSON.stringify(data)}`);
    return data;
  }

  /** A new user and Video KYC request; returns its id and link. */
  async newRequest(extra = {}) {
    const id = `web-${BACKEND}-${process.pid}-${++this.serial}`;
    await this.merchant('POST', '/user', { user_id: id, phone: '9876543210', name: 'Asha Rao', email: 'asha@example.in' });
    const created = await this.merchant('POST', '/vkyc', { verification_id: id, user_id: id, ...extra });
    return { id, link: created.vkyc_link };
  }

  async status(id) {
    return this.merchant('GET', `/vkyc?verification_id=${id}`);
  }

  /** Waits (up to `seconds`) for GET /vkyc to show `sub`. */
  async expectStatus(id, sub, seconds = 5) {
    let last;
    for (let i = 0; i < seconds * 10; i++) {
      last = await this.status(id);
      if (last.sub_status === sub) return last;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(last.sub_status, sub, `GET /vkyc for ${id}`);
  }

  /** A phone-size page for one customer. */
  async customerPage(options = {}) {
    const { ip = INDIAN_IP, geo = DELHI, permissions = ['geolocation', 'camera', 'microphone'], strict = false, locale = 'en-IN', axe = false } = options;
    const context = await (strict ? this.strictBrowser : this.browser).newContext({
      viewport: PHONE, deviceScaleFactor: 1, isMobile: true, hasTouch: true, locale,
      geolocation: geo, permissions, extraHTTPHeaders: { 'x-forwarded-for': ip },
      // axe-core is injected as a script, which the pages' CSP would refuse.
      bypassCSP: axe,
    });
    const page = await context.newPage();
    page.on('pageerror', (e) => console.error('page error:', e.message));
    return { context, page };
  }

  /** A page for a staff member on a 1366×768 laptop, signed in at /desk. */
  async staffPage(username, password) {
    const context = await this.browser.newContext({ viewport: { width: 1366, height: 768 }, permissions: ['camera', 'microphone'] });
    const page = await context.newPage();
    page.on('pageerror', (e) => console.error('desk page error:', e.message));
    await page.goto(`${this.base}/desk`);
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForSelector('#desk:not([hidden])');
    return { context, page };
  }

  createStaff(username, role, password) {
    this.vkyc(['staff', 'create', '--username', username, '--role', role, '--password-stdin'], `${password}\n`);
  }
}

/** A local webhook receiver: `events` collects every JSON body it is sent. */
// An 8×8 JPEG: the merchant's Aadhaar photo that the receiver below serves.
const PHOTO_JPEG = Buffer.from('/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2P/wAARCAAIAAgDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwAooooA/9k=', 'base64');

/** The merchant's side: a webhook receiver that also serves an Aadhaar photo at
 * `photoUrl` (for `aadhaar_details.photo_link`). */
function startReceiver() {
  const events = [];
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      if (req.method === 'GET' && req.url === '/photo.jpg') {
        res.writeHead(200, { 'content-type': 'image/jpeg' }).end(PHOTO_JPEG);
        return;
      }
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        try {
          events.push(JSON.parse(body));
        } catch (_) {}
        res.writeHead(200).end('ok');
      });
    });
    server.listen(0, '127.0.0.1', () => {
      server.events = events;
      server.url = `http://127.0.0.1:${server.address().port}/hook`;
      server.photoUrl = `http://127.0.0.1:${server.address().port}/photo.jpg`;
      /** Waits up to 5 s for an event of `id` at `sub`. */
      server.heard = async (id, sub) => {
        for (let i = 0; i < 50; i++) {
          if (events.some((e) => e.data.verification_id === id && e.data.sub_status === sub)) return true;
          await new Promise((r) => setTimeout(r, 100));
        }
        return false;
      };
      resolve(server);
    });
  });
}

async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${BACKEND}-${name}.png`), fullPage: true });
}

async function atStep(page, step, timeout = 15_000) {
  await page.waitForSelector(`#app[data-step="${step}"]`, { timeout });
}

/** The mobile OTP step with the sandbox's code (by ids: the page may speak Hindi). */
async function confirmMobile(page) {
  await atStep(page, 'mobile_otp');
  await page.locator('#otp-send').click();
  await page.locator('#otp-code').fill('123456');
  await page.locator('#otp-submit').click();
}

/** The steps a user template puts before consent (mobile OTP, personal details). */
async function reachConsent(page) {
  for (;;) {
    await page.waitForSelector('#app[data-step="mobile_otp"], #app[data-step="personal_details"], #app[data-step="consent"]', { timeout: 15_000 });
    const step = await page.getAttribute('#app', 'data-step');
    if (step === 'consent') return;
    if (step === 'mobile_otp') {
      await confirmMobile(page);
      await page.waitForSelector('#app:not([data-step="mobile_otp"])');
    } else {
      for (const select of await page.locator('#details-form select').all()) await select.selectOption({ index: 1 });
      for (const input of await page.locator('#details-form input').all()) await input.fill('Ramesh Kumar');
      await page.locator('#details-submit').click();
      await page.waitForSelector('#app:not([data-step="personal_details"])');
    }
  }
}

async function consent(page) {
  await reachConsent(page);
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

/** The serious and critical WCAG 2.1 A/AA violations axe-core finds on the page now,
 *  as "rule: target" lines (empty when clean). The page needs `axe: true`. */
async function axeViolations(page) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) {
    await page.addScriptTag({ path: require.resolve('axe-core/axe.min.js') });
  }
  const result = await page.evaluate(() => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
  }));
  // A run that checked nothing would pass anything.
  if (result.passes.length < 5) throw new Error(`axe-core checked only ${result.passes.length} rules`);
  if (process.env.VKYC_AXE_VERBOSE) console.log(`axe: ${result.passes.length} rules passed, ${result.violations.length} violations (${result.violations.map((v) => `${v.id}/${v.impact}`).join(', ')})`);
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .flatMap((v) => v.nodes.map((n) => `${v.id}: ${n.target.join(' ')} (${n.failureSummary.split('\n').slice(1).join(' ')})`));
}

/** Consent through devices, for a request whose merchant sent aadhaar_details. */
async function passChecks(page) {
  await consent(page);
  await passIp(page);
  await passLocation(page);
  await passDevices(page);
  await atStep(page, 'waiting');
}

// ---- the staff desk ----

/** Puts the agent on `page` online (if not already) and waits until the desk says so. */
async function goOnline(page) {
  const toggle = page.locator('#toggle');
  if ((await toggle.textContent()) === 'Go online') await toggle.click();
  await page.getByText('You are online').waitFor();
}

/** Waits until the video in `selector` on `page` shows frames and has played `minTime` s. */
const playing = (selector, page, minTime = 0.5) => page.waitForFunction(([s, t]) => {
  const v = document.querySelector(s);
  return v && v.videoWidth > 0 && v.currentTime > t;
}, [selector, minTime], { timeout: 30_000 });

/** On the agent's desk during a call: every check of the checklist done by its buttons
 * (each question asked and answered correctly, the liveness number read, the face and
 * the PAN card captured, the PAN entered, the location confirmed). */
async function completeChecklist(page, pan = 'ABCDE1234F') {
  const count = await page.locator('#questions li').count();
  for (let i = 0; i < count; i++) {
    for (const answer of ['asked', 'correct']) {
      await page.locator(`#questions button[data-index="${i}"][data-answer="${answer}"]`).click();
      // (Once the last is answered the next check opens and the questions fold away.)
      await page.waitForSelector(`#questions button[data-index="${i}"][data-answer="${answer}"][aria-pressed="true"]`, { state: 'attached' });
    }
  }
  await page.getByRole('button', { name: 'Ask now' }).click();
  await page.getByRole('button', { name: 'Read correctly', exact: true }).click();
  await page.getByRole('button', { name: 'Capture the face' }).click();
  await page.waitForSelector('#captures img[data-kind="face"]:not([hidden])');
  await page.getByRole('button', { name: 'Capture the PAN card' }).click();
  await page.waitForSelector('#captures img[data-kind="pan"]:not([hidden])');
  await page.getByLabel('PAN (as on the card)').fill(pan);
  await page.getByRole('button', { name: 'Save PAN' }).click();
  await page.getByRole('button', { name: 'Confirm location' }).click();
  await page.waitForSelector('#checks[data-complete="true"]');
}

/** In the admin console's Staff tab: creates an account; answers the password the
 * console shows once. */
async function createStaffOnScreen(page, username, role) {
  await page.getByLabel("New account's sign-in name").fill(username);
  await page.getByLabel("New account's role").selectOption(role);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.locator(`#staff-list tr[data-username="${username}"]`).waitFor();
  return (await page.locator('#staff-secret .secret').textContent()).trim();
}

/** Case search (admin or auditor): finds `verificationId` and opens its case file. */
async function openCaseFile(page, verificationId) {
  await page.locator('#views').getByRole('button', { name: 'Case search' }).click();
  await page.getByLabel('Verification ID').fill(verificationId);
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await page.locator('#case-results').getByRole('button', { name: verificationId, exact: true }).click();
  const file = page.locator('#case-file');
  await file.getByRole('heading', { name: `Case ${verificationId}` }).waitFor();
  return file;
}

/** Downloads the open case file's signed export to `saveAs`; checks that it is a ZIP. */
async function downloadExport(page, saveAs) {
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Export (signed ZIP)' }).click(),
  ]);
  await download.saveAs(saveAs);
  assert.deepEqual([...fs.readFileSync(saveAs).subarray(0, 2)], [0x50, 0x4b], 'a ZIP');
  return saveAs;
}

/** CSV text to rows of cells (quoted cells may hold commas and doubled quotes). */
function parseCsv(text) {
  const rows = [];
  for (const line of text.split('\r\n').filter((l) => l !== '')) {
    const cells = [];
    let cur = '';
    let quoted = false;
    for (let i = 0; i < line.length; i++) {
      const ch = line[i];
      if (quoted) {
        if (ch === '"' && line[i + 1] === '"') { cur += '"'; i++; } else if (ch === '"') quoted = false; else cur += ch;
      } else if (ch === '"') quoted = true;
      else if (ch === ',') { cells.push(cur); cur = ''; } else cur += ch;
    }
    cells.push(cur);
    rows.push(cells);
  }
  return rows;
}

/** The table of report `name` as on screen: the header row, then each row's cells. */
async function screenTable(page, name) {
  return page.locator(`#report-${name}-table table`).evaluate((t) =>
    [...t.rows].map((r) => [...r.cells].map((c) => c.textContent)));
}

/** Report `name`'s "Download CSV", parsed: `{ filename, rows }`. */
async function downloadReportCsv(page, name) {
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.locator(`#report-${name}-csv`).click(),
  ]);
  return { filename: download.suggestedFilename(), rows: parseCsv(fs.readFileSync(await download.path(), 'utf8')) };
}

// ---- recordings ----

/** ffprobe's streams and format of a media file. */
function probe(file) {
  const r = spawnSync('ffprobe', ['-v', 'error', '-show_streams', '-show_format', '-of', 'json', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** ffmpeg decodes every frame and prints nothing. The file's own time base (milliseconds)
 * is kept for the output: with its default (the frame rate) two frames a millisecond
 * apart would fall on one output tick, and its null muxer would complain of its own
 * timestamps. */
function decodesCleanly(file) {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-i', file, '-fps_mode', 'passthrough', '-enc_time_base', '-1', '-f', 'null', '-'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr.trim(), '', 'ffmpeg prints no error');
}

// ---- the relay's answers, rewritten on their way to a page (network tests, bench) ----

const dropLines = (sdp, re) => sdp.replace(re, '').replace(/\r\n(\r\n)+/g, '\r\n');

/** Rewrites the relay's answer on its way to `page` (the customer's or the agent's offer). */
async function rewriteAnswers(page, rewrite) {
  await page.route(/\/(api\/call\/offer|desk\/api\/calls\/\d+\/offer)$/, async (route) => {
    const response = await route.fetch();
    const json = await response.json();
    if (json.sdp) json.sdp = await rewrite(json.sdp);
    await route.fulfill({ response, json });
  });
}

/** Only the relay's TCP candidate: as if UDP were blocked on this network. */
const tcpOnly = (sdp) => dropLines(sdp, /^a=candidate:\S+ \d+ udp .*$/gim);

module.exports = {
  Deployment, makeFixtures, configText, CHROMIUM_FLAGS, PG_URL, AADHAAR_DETAILS, BACKEND, DELHI, LONDON, INDIAN_IP, SHOTS, startReceiver,
  shot, atStep, axeViolations, confirmMobile, reachConsent, consent, uploadAadhaar, passIp, passLocation, passDevices, passChecks,
  rewriteAnswers, tcpOnly, dropLines, goOnline, playing, completeChecklist, createStaffOnScreen, openCaseFile, downloadExport,
  parseCsv, screenTable, downloadReportCsv, probe, decodesCleanly,
};
