'use strict';
// A whole case in three browser contexts: the customer (phone, fake camera and
// microphone), the agent and the auditor (desk). From the link to AUDITOR_APPROVED, with
// the live call relayed and recorded by vkyc itself; GET /vkyc is checked at each step,
// a webhook receiver sees every event, and the recording is checked with ffprobe and
// ffmpeg (Debian's ffmpeg).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const {
  Deployment, AADHAAR_DETAILS, BACKEND, shot, atStep, axeViolations, passChecks, startReceiver, goOnline, playing, probe, decodesCleanly,
} = require('./support.js');

const AGENT = { username: `agent-${BACKEND}`, password: 'agent password 1234' };
const AUDITOR = { username: `auditor-${BACKEND}`, password: 'auditor password 1234' };
const QUESTIONS = [
  { order: 1, question: 'What is the name of your first school?', answer: 'Kendriya Vidyalaya' },
  { order: 2, question: 'Which city were you born in?', answer: 'Pune' },
];

let d;
let receiver;

describe(`a whole case: customer, agent and auditor (${BACKEND})`, () => {
  before(async () => {
    receiver = await startReceiver();
    d = await new Deployment().start(['webhook_allow_private_addresses = true', 'webhook_interval_ms = 100'],
      { calls: ['drop_grace_seconds = 8'] });
    d.vkyc(['merchant', 'webhook', '--client-id', d.clientId, '--url', receiver.url]);
    d.createStaff(AGENT.username, 'agent', AGENT.password);
    d.createStaff(AUDITOR.username, 'auditor', AUDITOR.password);
  });

  after(async () => {
    await d.stop();
    receiver.close();
  });

  it('goes from the link to AUDITOR_APPROVED over a relayed, recorded call', async () => {
    const agent = await d.staffPage(AGENT.username, AGENT.password);
    await goOnline(agent.page);

    // The merchant's Aadhaar details link a photo, which the server fetches for the desk.
    const { id, link } = await d.newRequest({ aadhaar_details: { ...AADHAAR_DETAILS, photo_link: receiver.photoUrl }, security_questions: QUESTIONS });
    const customer = await d.customerPage({ axe: true });
    await customer.page.goto(link);
    await passChecks(customer.page);
    await customer.page.locator('#join-queue').click();
    await d.expectStatus(id, 'AGENT_ASSIGNED_TO_USER');
    await atStep(customer.page, 'call');
    await agent.page.waitForSelector('#call[data-state="invited"]');

    // Told before joining that the call is recorded.
    assert.match(await customer.page.locator('#call-recording-notice').textContent(), /The call is recorded/);
    assert.deepEqual(await axeViolations(customer.page), [], 'the invitation passes axe-core');
    const started = Date.now();
    await customer.page.getByRole('button', { name: 'Start the video call' }).click();
    await d.expectStatus(id, 'USER_ACCEPTED_MEETING');
    await agent.page.waitForSelector('#call[data-state="active"]', { timeout: 10_000 });

    // Each side sees the other's live video, through the relay.
    await playing('#remote-video', customer.page);
    await playing('#remote', agent.page);
    // On the phone the agent is large and the customer's own picture small, and the
    // customer sees that the call is recorded.
    const remoteBox = await customer.page.locator('#remote-video').boundingBox();
    const ownBox = await customer.page.locator('#local-video').boundingBox();
    assert.ok(ownBox.width * ownBox.height < remoteBox.width * remoteBox.height / 4,
      `own ${JSON.stringify(ownBox)} against the agent's ${JSON.stringify(remoteBox)}`);
    assert.equal(await customer.page.locator('#recording-mark').textContent(), 'Recording');
    // The customer's own picture is labelled on screen, over its corner.
    assert.equal(await customer.page.locator('#local-label').textContent(), 'You');
    const label = await customer.page.locator('#local-label').boundingBox();
    assert.ok(label.x >= ownBox.x && label.y >= ownBox.y && label.x + label.width <= ownBox.x + ownBox.width
      && label.y + label.height <= ownBox.y + ownBox.height, `label ${JSON.stringify(label)} on ${JSON.stringify(ownBox)}`);
    assert.ok(await customer.page.locator('#recording-mark').isVisible());
    // Who is calling, the call's time running, and the controls: "End call" in view on a
    // 390×844 phone without scrolling.
    assert.equal(await customer.page.locator('#heading').textContent(), `Video call with ${AGENT.username}`);
    const timeShown = await customer.page.locator('#rec-timer').textContent();
    await customer.page.waitForFunction((was) => document.querySelector('#rec-timer').textContent !== was, timeShown, { timeout: 5000 });
    const endBox = await customer.page.locator('#call-end').boundingBox();
    assert.ok(endBox.y + endBox.height <= 844, `End call at ${JSON.stringify(endBox)}`);
    assert.equal(await customer.page.evaluate(() => window.scrollY), 0);
    await customer.page.locator('#call-mute').click();
    assert.equal(await customer.page.locator('#call-mute').getAttribute('aria-pressed'), 'true');
    await customer.page.locator('#call-mute').click();
    assert.equal(await customer.page.locator('#call-mute').getAttribute('aria-pressed'), 'false');
    assert.ok(await customer.page.locator('#call-camera').isVisible());
    assert.deepEqual(await axeViolations(customer.page), [], 'the call page passes axe-core');
    await shot(customer.page, '20-customer-in-call');

    // The agent sees the customer's details, asks the questions, checks liveness,
    // captures the face and the PAN card, and enters the PAN.
    await agent.page.getByText('Asha Rao').first().waitFor();
    assert.match(await agent.page.locator('#liveness-code').textContent(), /^\d{4}$/);
    const questions = await agent.page.locator('#questions li').allTextContents();
    assert.ok(questions.some((q) => q.includes('first school')), questions.join('\n'));
    assert.ok(questions.length >= QUESTIONS.length + 1, 'the deployment\'s questions are asked too');
    const approveEarly = await fetch(`${d.base}/desk/api/agent/call`).then((r) => r.status);
    assert.equal(approveEarly, 401, 'staff APIs need a desk session');
    // The checklist opens on its first item not done, and moves on as each is done.
    const item = (name) => agent.page.locator(`#checklist li[data-item="${name}"]`);
    assert.equal(await item('questions').getAttribute('data-done'), 'false');
    assert.ok(await agent.page.locator('#questions').isVisible());
    assert.equal(await agent.page.locator('#decision-form').isVisible(), false, 'no decision before the checks');
    for (let i = 0; i < questions.length - 1; i++) {
      await agent.page.locator(`#questions button[data-index="${i}"][data-answer="asked"]`).click();
      await agent.page.waitForSelector(`#questions button[data-index="${i}"][data-answer="asked"][aria-pressed="true"]`);
      await agent.page.locator(`#questions button[data-index="${i}"][data-answer="correct"]`).click();
      await agent.page.waitForSelector(`#questions button[data-index="${i}"][data-answer="correct"][aria-pressed="true"]`);
    }
    // The last question by the keys: Q asks the current one, C marks it correct.
    const lastQ = questions.length - 1;
    await agent.page.keyboard.press('q');
    await agent.page.waitForSelector(`#questions button[data-index="${lastQ}"][data-answer="asked"][aria-pressed="true"]`);
    await agent.page.keyboard.press('c');
    await item('questions').and(agent.page.locator('[data-done="true"]')).waitFor();
    assert.match(await agent.page.locator('#checklist-progress').textContent(), /^1 of 5 checks done$/);
    await agent.page.getByRole('button', { name: 'Ask now' }).click();
    await agent.page.getByRole('button', { name: 'Read correctly', exact: true }).click();
    await item('liveness').locator('.summary').filter({ hasText: '✓ passed' }).waitFor();
    await agent.page.getByRole('button', { name: 'Capture the face' }).click();
    await agent.page.waitForSelector('#captures img[data-kind="face"]');
    // The face match is one glance: the Aadhaar photo beside the latest face still.
    const photoBox = await agent.page.locator('#aadhaar-photo').boundingBox();
    const faceBox = await agent.page.locator('#captures img[data-kind="face"]').boundingBox();
    assert.ok(photoBox && faceBox && Math.abs(photoBox.y - faceBox.y) < 5 && faceBox.x > photoBox.x,
      `photo ${JSON.stringify(photoBox)}, face ${JSON.stringify(faceBox)}`);
    assert.ok(await agent.page.locator('#aadhaar-photo').evaluate((img) => img.complete && img.naturalWidth > 0));
    await agent.page.getByRole('button', { name: 'Capture the PAN card' }).click();
    await agent.page.waitForSelector('#captures img[data-kind="pan"]');
    await agent.page.getByLabel('PAN (as on the card)').fill('ABCDE1234F');
    await agent.page.getByRole('button', { name: 'Save PAN' }).click();
    await agent.page.waitForFunction(() => document.querySelector('#call-error').textContent === '');
    // The location on India's outline, then confirmed by its key.
    await agent.page.locator('#agent-map svg.india-map path').first().waitFor();
    assert.match(await agent.page.locator('#agent-map .map-caption').textContent(), /^\d+\.\d+, \d+\.\d+ \((±\d+ m|accuracy not given)\)$/);
    await agent.page.keyboard.press('g');
    await agent.page.waitForFunction(() => document.querySelector('#checks').dataset.complete === 'true');
    assert.equal(await agent.page.locator('#checklist-progress').textContent(), '5 of 5 checks done');
    // With every check done the decision opens, still during the call.
    await agent.page.waitForSelector('#decision-form:not([hidden])');
    assert.match(await agent.page.locator('#call-timer').textContent(), /^\d+:\d\d$/);
    assert.notEqual(await agent.page.locator('#call-timer').textContent(), '0:00');
    // All of it on a 1366×768 laptop with no scrolling.
    const fits = await agent.page.evaluate(() => [document.scrollingElement.scrollHeight, innerHeight]);
    assert.ok(fits[0] <= fits[1], `the agent's page is ${fits[0]} px tall in a ${fits[1]} px window`);
    const remoteAgentBox = await agent.page.locator('#remote').boundingBox();
    const localAgentBox = await agent.page.locator('#local').boundingBox();
    assert.ok(localAgentBox.width * localAgentBox.height < remoteAgentBox.width * remoteAgentBox.height / 4);
    await shot(agent.page, '21-agent-in-call');

    // Let the call run, then the agent ends it.
    await new Promise((r) => setTimeout(r, Math.max(0, 8000 - (Date.now() - started))));
    await agent.page.getByRole('button', { name: 'End call' }).click();
    const callSeconds = (Date.now() - started) / 1000;
    await d.expectStatus(id, 'AGENT_ENDED_CALL');
    await atStep(customer.page, 'done');

    await agent.page.waitForSelector('#decision-form:not([hidden])');
    await agent.page.locator('#decision').selectOption('approved');
    await agent.page.locator('#remarks').fill('Face matches the Aadhaar photo; PAN verified.');
    await agent.page.getByRole('button', { name: 'Submit decision' }).click();
    const approved = await d.expectStatus(id, 'AGENT_APPROVED');
    assert.equal(approved.agent_remarks, 'Face matches the Aadhaar photo; PAN verified.');
    assert.match(approved.recording_link, /\/recordings\/\d+\.webm\?expires=\d+&sig=[0-9a-f]{64}$/);

    // The recording: customer video, customer audio and agent audio, decodable, as
    // long as the call.
    const file = path.join(d.dataDir, 'downloaded.webm');
    const download = await fetch(approved.recording_link);
    assert.equal(download.status, 200);
    fs.writeFileSync(file, Buffer.from(await download.arrayBuffer()));
    const probed = probe(file);
    const kinds = probed.streams.map((s) => `${s.codec_type}/${s.codec_name}`);
    assert.ok(kinds.includes('video/vp8'), kinds.join());
    assert.ok(kinds.filter((k) => k === 'audio/opus').length >= 2, kinds.join());
    // Within each stream the file's times strictly increase (frames that reached the
    // relay late are written a millisecond apart, never at one time).
    const packets = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'packet=stream_index,pts', '-of', 'csv=p=0', file], { encoding: 'utf8' });
    assert.equal(packets.status, 0, packets.stderr);
    const last = new Map();
    for (const line of packets.stdout.trim().split('\n')) {
      const [stream, pts] = line.split(',').map(Number);
      assert.ok(!last.has(stream) || pts > last.get(stream), `stream ${stream}: ${pts} after ${last.get(stream)}`);
      last.set(stream, pts);
    }
    // Every frame decodes.
    decodesCleanly(file);
    const duration = Number(probed.format.duration);
    assert.ok(Math.abs(duration - callSeconds) <= callSeconds * 0.1, `recording ${duration} s, call ${callSeconds} s`);

    // Playback supports ranges; an altered or expired link is refused.
    const ranged = await fetch(approved.recording_link, { headers: { range: 'bytes=0-99' } });
    assert.equal(ranged.status, 206);
    assert.equal((await ranged.arrayBuffer()).byteLength, 100);
    const altered = approved.recording_link.replace(/sig=(.)/, (_, c) => `sig=${c === 'a' ? 'b' : 'a'}`);
    assert.equal((await fetch(altered)).status, 403);
    const expired = approved.recording_link.replace(/expires=\d+/, 'expires=1000');
    assert.equal((await fetch(expired)).status, 403);

    // The auditor reviews: plays both sides of the recording, sees the captures beside
    // the Aadhaar photo and the answers, and seeks by the markers of the call's events.
    const auditor = await d.staffPage(AUDITOR.username, AUDITOR.password);
    const row = auditor.page.locator(`#cases button`).filter({ hasText: id });
    assert.match(await row.textContent(), /Asha Rao.*agent agent-\w+.*call \d+:\d\d.*waiting/s);
    await auditor.page.locator('#queue-search').fill('no such case');
    await auditor.page.getByText('No case matches.').waitFor();
    await auditor.page.locator('#queue-search').fill('asha');
    await row.click();
    await auditor.page.waitForSelector('#case:not([hidden])');
    await auditor.page.waitForFunction(() => document.querySelector('#recording').readyState >= 1, null, { timeout: 10_000 });
    await auditor.page.waitForFunction(() => document.querySelector('#recording-agent').readyState >= 1, null, { timeout: 10_000 });
    const sides = await auditor.page.evaluate(() => [document.querySelector('#recording').src, document.querySelector('#recording-agent').src]);
    assert.match(sides[0], /\/recording\/customer\.webm$/);
    assert.match(sides[1], /\/recording\/agent\.webm$/);
    assert.equal(await auditor.page.locator('#case-details .captures img').count(), 2);
    await auditor.page.getByText('Agent\'s remarks: Face matches').waitFor();
    // The call's connection quality, as the relay measured it, is kept for the review.
    assert.match(await auditor.page.locator('#case-quality').textContent(),
      /Customer's connection: video \d+–\d+ kbit\/s .* Agent's connection: video \d+–\d+ kbit\/s/);
    // A marker per event; the face still's marker seeks both players to within 1 s of
    // the moment it was taken, on the recording's own clock (its DateUTC).
    const markerKinds = await auditor.page.locator('#timeline-bar .marker').evaluateAll((ms) => ms.map((m) => m.dataset.kind));
    for (const k of ['connected', 'question_asked', 'question_answered', 'liveness_asked', 'liveness_marked', 'capture', 'pan_entered', 'location_confirmed', 'ended']) {
      assert.ok(markerKinds.includes(k), `${k} in ${markerKinds.join()}`);
    }
    const recordedFrom = Date.parse(probed.format.tags.creation_time || probed.format.tags.DATE_UTC);
    const events = (await (await auditor.page.request.get(`${d.base}/desk/api/audit/cases/${approved.reference_id}`)).json()).call?.events;
    const face = (events || []).find((e) => e.kind === 'capture' && e.detail.kind === 'face');
    const faceMarker = auditor.page.locator('#timeline-bar .marker[data-kind="capture"]').first();
    await faceMarker.click();
    await auditor.page.waitForFunction(() => !document.querySelector('#recording').seeking);
    const at = await auditor.page.evaluate(() => [document.querySelector('#recording').currentTime, document.querySelector('#recording-agent').currentTime]);
    const expected = (Date.parse(face.at) - recordedFrom) / 1000;
    assert.ok(Math.abs(at[0] - expected) < 1, `the player is at ${at[0]} s, the face still was taken at ${expected} s`);
    assert.ok(Math.abs(at[1] - at[0]) < 0.5, `the agent's side follows: ${at[1]} s against ${at[0]} s`);
    // The decision is on the screen with the rest: no scrolling at 1366×768.
    const auditFits = await auditor.page.evaluate(() => [document.scrollingElement.scrollHeight, innerHeight]);
    assert.ok(auditFits[0] <= auditFits[1], `the auditor's page is ${auditFits[0]} px tall in a ${auditFits[1]} px window`);
    const submit = await auditor.page.getByRole('button', { name: 'Submit review' }).boundingBox();
    assert.ok(submit && submit.y + submit.height <= 768, `the review's button is at ${JSON.stringify(submit)}`);
    await shot(auditor.page, '22-auditor-case');
    await auditor.page.locator('#audit-decision').selectOption('approved');
    await auditor.page.locator('#audit-remarks').fill('Recording and captures reviewed.');
    await auditor.page.getByRole('button', { name: 'Submit review' }).click();
    const final = await d.expectStatus(id, 'AUDITOR_APPROVED');
    assert.equal(final.auditor_remarks, 'Recording and captures reviewed.');

    // The merchant's receiver heard each step of the call.
    for (const sub of ['USER_QUEUED', 'AGENT_ASSIGNED_TO_USER', 'USER_ACCEPTED_MEETING', 'AGENT_ENDED_CALL', 'AGENT_APPROVED', 'AUDITOR_APPROVED']) {
      assert.ok(await receiver.heard(id, sub), `webhook for ${sub}`);
    }
    for (const c of [agent, customer, auditor]) await c.context.close();
  });

  it('a customer who closes the browser mid-call has dropped off; the recording so far is kept', async () => {
    const agent = await d.staffPage(AGENT.username, AGENT.password);
    await goOnline(agent.page);
    const { id, link } = await d.newRequest({ aadhaar_details: AADHAAR_DETAILS });
    const customer = await d.customerPage();
    await customer.page.goto(link);
    await passChecks(customer.page);
    await customer.page.locator('#join-queue').click();
    await atStep(customer.page, 'call');
    await customer.page.getByRole('button', { name: 'Start the video call' }).click();
    await customer.page.waitForFunction(() => {
      const v = document.querySelector('#remote-video');
      return v && v.videoWidth > 0 && v.currentTime > 1;
    }, null, { timeout: 20_000 });
    await new Promise((r) => setTimeout(r, 3000));
    await customer.context.close();
    const dropped = await d.expectStatus(id, 'USER_DROPPED_OFF', 30);
    assert.match(dropped.recording_link || '', /\/recordings\//);
    const file = path.join(d.dataDir, 'dropped.webm');
    fs.writeFileSync(file, Buffer.from(await (await fetch(dropped.recording_link)).arrayBuffer()));
    const kinds = probe(file).streams.map((s) => s.codec_type);
    assert.ok(kinds.includes('video'), kinds.join());

    // The agent records an outcome; the customer could come back and queue again.
    await agent.page.waitForSelector('#decision-form:not([hidden])');
    await agent.page.locator('#decision').selectOption('approved');
    await agent.page.locator('#remarks').fill('Customer left.');
    await agent.page.getByRole('button', { name: 'Submit decision' }).click();
    await agent.page.getByText('approval needs a whole call').waitFor();
    await agent.page.locator('#decision').selectOption('unable_to_validate');
    await agent.page.getByRole('button', { name: 'Submit decision' }).click();
    const last = await d.expectStatus(id, 'AGENT_UNABLE_TO_VALIDATE');
    assert.equal(last.agent_remarks, 'Customer left.');
    await agent.context.close();
  });

  it('an agent whose browser goes away mid-call has dropped off; the customer may queue again', async () => {
    const agent = await d.staffPage(AGENT.username, AGENT.password);
    await goOnline(agent.page);
    const { id, link } = await d.newRequest({ aadhaar_details: AADHAAR_DETAILS });
    const customer = await d.customerPage();
    await customer.page.goto(link);
    await passChecks(customer.page);
    await customer.page.locator('#join-queue').click();
    await atStep(customer.page, 'call');
    await customer.page.getByRole('button', { name: 'Start the video call' }).click();
    await agent.page.waitForFunction(() => {
      const v = document.querySelector('#remote');
      return v && v.videoWidth > 0 && v.currentTime > 1;
    }, null, { timeout: 20_000 });
    // The agent's browser crashes; their presence lapses with it.
    await agent.context.close();
    await d.expectStatus(id, 'AGENT_DROPPED_OFF', 30);
    // The customer's page offers the queue again (a new call, never the old one).
    await atStep(customer.page, 'waiting', 45_000);
    await customer.page.getByRole('alert').filter({ hasText: 'Your call was interrupted' }).waitFor();
    await shot(customer.page, '23-agent-dropped');
    await customer.context.close();
  });

  it('a queue socket that a proxy holds open and silent does not hide the invitation', async () => {
    // An agent of their own: the one above is in wrap-up with the dropped call.
    d.createStaff(`${AGENT.username}-2`, 'agent', AGENT.password);
    const agent = await d.staffPage(`${AGENT.username}-2`, AGENT.password);
    const { id, link } = await d.newRequest({ aadhaar_details: AADHAAR_DETAILS });
    const customer = await d.customerPage();
    // The page's WebSocket "connects" but nothing ever comes through it.
    let held = 0;
    await customer.page.routeWebSocket(/\/ws$/, () => { held += 1; });
    await customer.page.goto(link);
    await passChecks(customer.page);
    await goOnline(agent.page);
    await customer.page.locator('#join-queue').click();
    await d.expectStatus(id, 'AGENT_ASSIGNED_TO_USER');
    await atStep(customer.page, 'call', 10_000);
    assert.ok(held >= 1, 'the socket was held');
    await customer.context.close();
    await agent.context.close();
  });
});
