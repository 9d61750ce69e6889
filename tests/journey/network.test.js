'use strict';
// The call on hard networks, in real Chromium against the real relay: a network with no
// UDP (ICE-TCP), one where only a TURN server gets out (Debian's coturn, the browsers
// forced to relay-only), a customer whose network drops for 3 s and comes back (one call,
// one recording, a visible gap), one who never comes back, and a lossy, slow path (5 %
// loss, 150 ms each way). The customer's path runs through netpath.js, a user-space
// forwarder, placed there by rewriting the relay's candidate in the answer the page gets.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const {
  Deployment, AADHAAR_DETAILS, BACKEND, shot, atStep, passChecks, rewriteAnswers, tcpOnly, dropLines, goOnline, playing, probe,
  decodesCleanly,
} = require('./support.js');
const { udpPath } = require('./netpath.js');
const { startTurn, turnCredentials } = require('./turn.js');

const AGENT = { username: `net-agent-${BACKEND}`, password: 'agent password 1234' };
const TURN_SECRET = 'turn shared secret for tests';

const UDP_CANDIDATE = /^a=candidate:\S+ \d+ udp \d+ (\S+) (\d+) typ host.*$/gim;
const TCP_CANDIDATE = /^a=candidate:\S+ \d+ tcp .*$/gim;

/** The relay's UDP candidate swapped for a forwarder in front of it (made at the first answer). */
function throughPath(holder) {
  return async (sdp) => {
    const match = [...sdp.matchAll(UDP_CANDIDATE)][0];
    assert.ok(match, `a UDP candidate in the answer:\n${sdp}`);
    if (!holder.path) holder.path = await udpPath({ target: { host: match[1], port: Number(match[2]) } });
    holder.path.set(holder.conditions || {});
    const viaPath = sdp.replace(UDP_CANDIDATE, (line, _host, port) => line.replace(` ${port} typ host`, ` ${holder.path.port} typ host`));
    return dropLines(viaPath, TCP_CANDIDATE);
  };
}

/** Both browsers forced to relay through TURN, as on a network where nothing else gets out. */
async function relayOnly(context) {
  await context.addInitScript(() => {
    const Native = window.RTCPeerConnection;
    window.RTCPeerConnection = class extends Native {
      constructor(config = {}) {
        super({ ...config, iceTransportPolicy: 'relay' });
      }
    };
  });
}

/** The longest pause between two packets of the stream titled `title`, in seconds. */
function longestGap(file, title) {
  const streams = probe(file).streams;
  const stream = streams.find((s) => (s.tags && (s.tags.title || s.tags.TITLE)) === title);
  assert.ok(stream, `a stream "${title}" in ${JSON.stringify(streams.map((s) => s.tags))}`);
  const r = spawnSync('ffprobe', ['-v', 'error', '-select_streams', String(stream.index), '-show_entries', 'packet=pts_time', '-of', 'csv=p=0', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const times = r.stdout.trim().split('\n').map(Number).filter((t) => !Number.isNaN(t));
  let gap = 0;
  for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i] - times[i - 1]);
  return gap;
}

/** The video in `selector` moves on by at least a second within `seconds`. */
async function keepsMoving(page, selector, seconds = 10) {
  const start = await page.evaluate((s) => document.querySelector(s).currentTime, selector);
  await page.waitForFunction(([s, t]) => document.querySelector(s).currentTime > t + 1, [selector, start], { timeout: seconds * 1000 });
}

/** An agent online and a customer through the checks and into a call; media flowing both ways. */
async function startCall(d, { agentContext = () => {}, customerContext = () => {}, agentAnswer, customerAnswer } = {}) {
  const agent = await d.staffPage(AGENT.username, AGENT.password);
  await agentContext(agent.context);
  // What the context's scripts change applies from the next page load on.
  await agent.page.reload();
  await agent.page.waitForSelector('#desk:not([hidden])');
  if (agentAnswer) await rewriteAnswers(agent.page, agentAnswer);
  await goOnline(agent.page);
  const { id, link } = await d.newRequest({ aadhaar_details: AADHAAR_DETAILS });
  const customer = await d.customerPage();
  await customerContext(customer.context);
  if (customerAnswer) await rewriteAnswers(customer.page, customerAnswer);
  await customer.page.goto(link);
  await passChecks(customer.page);
  await customer.page.locator('#join-queue').click();
  await atStep(customer.page, 'call');
  await customer.page.getByRole('button', { name: 'Start the video call' }).click();
  await d.expectStatus(id, 'USER_ACCEPTED_MEETING');
  await playing('#remote-video', customer.page);
  await playing('#remote', agent.page);
  return { id, agent, customer };
}

/** The agent ends the call and decides; the recording is downloaded. */
async function endAndDecide(d, { id, agent }, name) {
  await agent.page.getByRole('button', { name: 'End call' }).click();
  await d.expectStatus(id, 'AGENT_ENDED_CALL', 10);
  return decide(d, { id, agent }, name);
}

/** The agent records an outcome for the ended call (so the next customer can come). */
async function decide(d, { id, agent }, name) {
  await agent.page.waitForSelector('#decision-form:not([hidden])');
  await agent.page.locator('#decision').selectOption('unable_to_validate');
  await agent.page.locator('#remarks').fill('Network test call.');
  await agent.page.getByRole('button', { name: 'Submit decision' }).click();
  const decided = await d.expectStatus(id, 'AGENT_UNABLE_TO_VALIDATE');
  const file = path.join(d.dataDir, `${name}.webm`);
  fs.writeFileSync(file, Buffer.from(await (await fetch(decided.recording_link)).arrayBuffer()));
  return file;
}

const recordings = (d) => fs.readdirSync(path.join(d.dataDir, 'recordings')).filter((f) => f.endsWith('.webm'));

/** The agent's console view of the call, as its page fetches it. */
const agentView = (agent) => agent.page.evaluate(() => fetch('/desk/api/agent/call').then((r) => r.json()));

describe(`the call on hard networks (${BACKEND})`, () => {
  let d;
  let turn;

  before(async () => {
    turn = await startTurn({ secret: TURN_SECRET });
    d = await new Deployment().start([], {
      calls: ['drop_grace_seconds = 8'],
      media: [`turn_urls = ${JSON.stringify(turn.urls)}`, `turn_shared_secret = ${JSON.stringify(TURN_SECRET)}`],
    });
    d.createStaff(AGENT.username, 'agent', AGENT.password);
  });

  after(async () => {
    if (d) await d.stop();
    if (turn) await turn.stop();
  });

  it('holds a whole call over ICE-TCP when UDP is blocked', async () => {
    const call = await startCall(d, { agentAnswer: tcpOnly, customerAnswer: tcpOnly });
    // The agent sees the customer's connection as the relay measures it: over TCP.
    await call.agent.page.locator('#customer-quality').filter({ hasText: 'over tcp' }).waitFor({ timeout: 15_000 });
    await call.agent.page.locator('#own-quality').filter({ hasText: '(tcp)' }).waitFor({ timeout: 15_000 });
    await call.customer.page.locator('#call-quality').filter({ hasText: 'kbit/s' }).waitFor({ timeout: 15_000 });
    await keepsMoving(call.customer.page, '#remote-video');
    await keepsMoving(call.agent.page, '#remote');
    await shot(call.agent.page, '30-agent-call-over-tcp');
    const file = await endAndDecide(d, call, 'tcp');
    const kinds = probe(file).streams.map((s) => `${s.codec_type}/${s.codec_name}`);
    assert.ok(kinds.includes('video/vp8') && kinds.includes('audio/opus'), kinds.join());
    decodesCleanly(file);
    for (const c of [call.agent, call.customer]) await c.context.close();
  });

  it('holds a whole call relayed through TURN (coturn) with relay-only browsers', async () => {
    const call = await startCall(d, { agentContext: relayOnly, customerContext: relayOnly });
    // Each browser got credentials minted for its call and side, valid for an hour.
    const offered = await call.customer.page.evaluate(() => fetch(`/v/${location.pathname.split('/')[2]}/api/call`).then((r) => r.json()));
    const [server] = offered.ice_servers;
    assert.deepEqual(server.urls, turn.urls);
    const [expiry, subject] = server.username.split(':');
    assert.match(subject, /^vkyc-call-\d+-customer$/);
    assert.ok(Math.abs(Number(expiry) - (Date.now() / 1000 + 3600)) < 120, server.username);
    assert.equal(server.credential, turnCredentials(TURN_SECRET, subject, 0, Number(expiry)).credential);
    await call.agent.page.locator('#own-quality').filter({ hasText: '(turn)' }).waitFor({ timeout: 15_000 });
    await keepsMoving(call.customer.page, '#remote-video');
    await keepsMoving(call.agent.page, '#remote');
    const file = await endAndDecide(d, call, 'turn');
    assert.ok(probe(file).streams.some((s) => s.codec_name === 'vp8'));
    decodesCleanly(file);
    assert.match(turn.log(), /vkyc-call-\d+-customer/, 'coturn saw the customer allocate a relay');
    for (const c of [call.agent, call.customer]) await c.context.close();
  });

  it('a customer whose network drops for 3 s comes back into the same call and recording', async () => {
    const holder = {};
    const before = recordings(d).length;
    const call = await startCall(d, { customerAnswer: throughPath(holder) });
    await keepsMoving(call.agent.page, '#remote');
    holder.path.down();
    await new Promise((r) => setTimeout(r, 3000));
    holder.path.up();
    // The video comes back; nothing about the call changed.
    await keepsMoving(call.agent.page, '#remote', 20);
    await keepsMoving(call.customer.page, '#remote-video', 20);
    assert.equal((await d.status(call.id)).sub_status, 'USER_ACCEPTED_MEETING');
    await shot(call.customer.page, '31-customer-after-drop');
    // The agent's console counted the video stopping while the network was down.
    const { quality } = (await agentView(call.agent)).call;
    assert.ok(quality.customer.summary.freezes >= 1, JSON.stringify(quality));
    assert.equal(quality.customer.now.state, 'connected', JSON.stringify(quality));
    const file = await endAndDecide(d, call, 'gap');
    assert.equal(recordings(d).length, before + 1, 'one recording file for the call');
    decodesCleanly(file);
    const gap = longestGap(file, 'customer video');
    assert.ok(gap >= 2.5 && gap < 9, `the customer's video shows the 3 s gap (longest pause ${gap} s)`);
    await holder.path.close();
    for (const c of [call.agent, call.customer]) await c.context.close();
  });

  it('a customer whose network stays down past the grace period has dropped off', async () => {
    const holder = {};
    const call = await startCall(d, { customerAnswer: throughPath(holder) });
    holder.path.down();
    // Both pages say so while the grace period runs.
    await call.customer.page.waitForSelector('#app[data-media="reconnecting"]', { timeout: 15_000 });
    await call.agent.page.locator('#customer-quality').filter({ hasText: 'Waiting for them to reconnect' }).waitFor({ timeout: 15_000 });
    await shot(call.customer.page, '32-customer-reconnecting');
    const dropped = await d.expectStatus(call.id, 'USER_DROPPED_OFF', 40);
    assert.match(dropped.recording_link || '', /\/recordings\//);
    await decide(d, call, 'dropped');
    await holder.path.close();
    for (const c of [call.agent, call.customer]) await c.context.close();
  });

  it('holds a call under 5 % loss and 150 ms delay each way; the recording decodes cleanly', async () => {
    const holder = { conditions: { loss: 0.05, delayMs: 150 } };
    const call = await startCall(d, { customerAnswer: throughPath(holder) });
    for (let i = 0; i < 3; i++) {
      await keepsMoving(call.agent.page, '#remote', 15);
      await keepsMoving(call.customer.page, '#remote-video', 15);
    }
    const stats = holder.path.stats();
    // Much worse (40 % lost): the agent is warned the video is too poor to judge.
    holder.path.set({ loss: 0.4 });
    await call.agent.page.locator('#customer-quality').filter({ hasText: 'too poor to judge' }).waitFor({ timeout: 20_000 });
    await shot(call.agent.page, '33-agent-poor-video-warning');
    holder.path.set({ loss: 0.05 });
    // The relay measured the loss and the delay on the customer's side.
    const view = await agentView(call.agent);
    const summary = view.call.quality.customer.summary;
    assert.ok(summary.loss_pct_max > 0, JSON.stringify(summary));
    assert.ok(summary.rtt_ms_max >= 250, JSON.stringify(summary));
    const file = await endAndDecide(d, call, 'lossy');
    decodesCleanly(file);
    // The path really was lossy: about 5 % of what went each way was dropped.
    for (const way of [stats.toTarget, stats.toClient]) {
      const share = way.dropped / (way.dropped + way.forwarded);
      assert.ok(share > 0.02 && share < 0.1, JSON.stringify(stats));
    }
    await holder.path.close();
    for (const c of [call.agent, call.customer]) await c.context.close();
  });
});
