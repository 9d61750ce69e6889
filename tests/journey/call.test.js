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
const { Deployment, AADHAAR_DETAILS, BACKEND, shot, atStep, passChecks, startReceiver } = require('./support.js');

const AGENT = { username: `agent-${BACKEND}`, password: 'agent password 1234' };
const AUDITOR = { username: `auditor-${BACKEND}`, password: 'auditor password 1234' };
const QUESTIONS = [
  { order: 1, question: 'What is the name of your first school?', answer: 'Kendriya Vidyalaya' },
  { order: 2, question: 'Which city were you born in?', answer: 'Pune' },
];

let d;
let receiver;

function ffprobe(file) {
  const r = spawnSync('ffprobe', ['-v', 'error', '-show_streams', '-show_format', '-of', 'json', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

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
    await agent.page.getByRole('button', { name: 'Go online' }).click();
    await agent.page.getByText('You are online').waitFor();

    const { id, link } = await d.newRequest({ aadhaar_details: AADHAAR_DETAILS, security_questions: QUESTIONS });
    const customer = await d.customerPage();
    await customer.page.goto(link);
    await passChecks(customer.page);
    await customer.page.locator('#join-queue').click();
    await d.expectStatus(id, 'AGENT_ASSIGNED_TO_USER');
    await atStep(customer.page, 'call');
    await agent.page.waitForSelector('#call[data-state="invited"]');

    const started = Date.now();
    await customer.page.getByRole('button', { name: 'Start the video call' }).click();
    await d.expectStatus(id, 'USER_ACCEPTED_MEETING');
    await agent.page.waitForSelector('#call[data-state="active"]', { timeout: 10_000 });

    // Each side sees the other's live video, through the relay.
    const playing = (selector) => (page) => page.waitForFunction((s) => {
      const v = document.querySelector(s);
      return v && v.videoWidth > 0 && v.currentTime > 0.5;
    }, selector, { timeout: 20_000 });
    await playing('#remote-video')(customer.page);
    await playing('#remote')(agent.page);
    // On the phone the agent is large and the customer's own picture small, and the
    // customer sees that the call is recorded.
    const remoteBox = await customer.page.locator('#remote-video').boundingBox();
    const ownBox = await customer.page.locator('#local-video').boundingBox();
    assert.ok(ownBox.width * ownBox.height < remoteBox.width * remoteBox.height / 4,
      `own ${JSON.stringify(ownBox)} against the agent's ${JSON.stringify(remoteBox)}`);
    assert.equal(await customer.page.locator('#recording-mark').textContent(), 'Recording');
    assert.ok(await customer.page.locator('#recording-mark').isVisible());
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
    for (let i = 0; i < questions.length; i++) {
      await agent.page.locator(`#questions button[data-index="${i}"][data-answer="correct"]`).click();
      await agent.page.waitForSelector(`#questions button[data-index="${i}"][data-answer="correct"][aria-pressed="true"]`);
    }
    await agent.page.getByRole('button', { name: 'Read correctly', exact: true }).click();
    await agent.page.getByText('Marked: passed').waitFor();
    await agent.page.getByRole('button', { name: 'Capture the face' }).click();
    await agent.page.waitForSelector('#captures img[data-kind="face"]');
    await agent.page.getByRole('button', { name: 'Capture the PAN card' }).click();
    await agent.page.waitForSelector('#captures img[data-kind="pan"]');
    await agent.page.getByLabel('PAN (as on the card)').fill('ABCDE1234F');
    await agent.page.getByRole('button', { name: 'Save PAN' }).click();
    await agent.page.waitForFunction(() => document.querySelector('#call-error').textContent === '');
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
    const probe = ffprobe(file);
    const kinds = probe.streams.map((s) => `${s.codec_type}/${s.codec_name}`);
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
    // Every frame decodes. The file's own time base (milliseconds) is kept for ffmpeg's
    // output: with its default (the frame rate) two frames a millisecond apart would
    // fall on one output tick, and its null muxer would complain of its own timestamps.
    const decode = spawnSync('ffmpeg', ['-v', 'error', '-i', file, '-fps_mode', 'passthrough', '-enc_time_base', '-1', '-f', 'null', '-'], { encoding: 'utf8' });
    assert.equal(decode.status, 0);
    assert.equal(decode.stderr.trim(), '', 'ffmpeg prints no error');
    const duration = Number(probe.format.duration);
    assert.ok(Math.abs(duration - callSeconds) <= callSeconds * 0.1, `recording ${duration} s, call ${callSeconds} s`);

    // Playback supports ranges; an altered or expired link is refused.
    const ranged = await fetch(approved.recording_link, { headers: { range: 'bytes=0-99' } });
    assert.equal(ranged.status, 206);
    assert.equal((await ranged.arrayBuffer()).byteLength, 100);
    const altered = approved.recording_link.replace(/sig=(.)/, (_, c) => `sig=${c === 'a' ? 'b' : 'a'}`);
    assert.equal((await fetch(altered)).status, 403);
    const expired = approved.recording_link.replace(/expires=\d+/, 'expires=1000');
    assert.equal((await fetch(expired)).status, 403);

    // The auditor reviews: plays the recording, sees the captures and answers, approves.
    const auditor = await d.staffPage(AUDITOR.username, AUDITOR.password);
    await auditor.page.locator(`#cases button`).filter({ hasText: id }).click();
    await auditor.page.waitForSelector('#case:not([hidden])');
    await auditor.page.waitForFunction(() => document.querySelector('#recording').readyState >= 1, null, { timeout: 10_000 });
    assert.equal(await auditor.page.locator('#case-details .captures img').count(), 2);
    await auditor.page.getByText('Agent\'s remarks: Face matches').waitFor();
    // The call's connection quality, as the relay measured it, is kept for the review.
    assert.match(await auditor.page.locator('#case-quality').textContent(),
      /Customer's connection: video \d+–\d+ kbit\/s .* Agent's connection: video \d+–\d+ kbit\/s/);
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
    const toggle = agent.page.locator('#toggle');
    if ((await toggle.textContent()) === 'Go online') await toggle.click();
    await agent.page.getByText('You are online').waitFor();
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
    const kinds = ffprobe(file).streams.map((s) => s.codec_type);
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
    const toggle = agent.page.locator('#toggle');
    if ((await toggle.textContent()) === 'Go online') await toggle.click();
    await agent.page.getByText('You are online').waitFor();
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
});
