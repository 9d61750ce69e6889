'use strict';
// One agent, two customers, E and F, in the queue. The agent ends E's call; F is not
// invited while E's decision is still to be made, so E's form never ends up below F's
// live call. Each decision lands on its own case; the forms start with no outcome chosen
// and confirm what was saved; E's page says in words what happens next.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Deployment, AADHAAR_DETAILS, BACKEND, shot, atStep, passChecks, goOnline } = require('./support.js');

const AGENT = { username: `wrap-agent-${BACKEND}`, password: 'wrap agent password 1234' };

let d;

describe(`wrap-up: one case at a time on the agent's desk (${BACKEND})`, () => {
  before(async () => {
    d = await new Deployment().start([], { calls: ['drop_grace_seconds = 20'] });
    d.createStaff(AGENT.username, 'agent', AGENT.password);
  });

  after(async () => {
    await d.stop();
  });

  it('gives F only after E is decided, and each decision lands on its own case', async () => {
    const agent = await d.staffPage(AGENT.username, AGENT.password);
    await goOnline(agent.page);

    const e = await d.newRequest({ aadhaar_details: AADHAAR_DETAILS });
    const eCustomer = await d.customerPage();
    await eCustomer.page.goto(e.link);
    await passChecks(eCustomer.page);
    await eCustomer.page.locator('#join-queue').click();
    await d.expectStatus(e.id, 'AGENT_ASSIGNED_TO_USER', 15);
    await atStep(eCustomer.page, 'call');
    await eCustomer.page.getByRole('button', { name: 'Start the video call' }).click();
    await d.expectStatus(e.id, 'USER_ACCEPTED_MEETING');
    await agent.page.waitForSelector('#call[data-state="active"]', { timeout: 10_000 });

    // F arrives while E is in the call.
    const f = await d.newRequest({ aadhaar_details: AADHAAR_DETAILS });
    const fCustomer = await d.customerPage();
    await fCustomer.page.goto(f.link);
    await passChecks(fCustomer.page);
    await fCustomer.page.locator('#join-queue').click();
    await d.expectStatus(f.id, 'USER_QUEUED');

    await agent.page.getByRole('button', { name: 'End call' }).click();
    await d.expectStatus(e.id, 'AGENT_ENDED_CALL');
    await agent.page.waitForSelector('#decision-form:not([hidden])');
    assert.equal(await agent.page.locator('#decision').inputValue(), '', 'no outcome is chosen for the agent');
    await agent.page.locator('#decision').selectOption('rejected');
    await agent.page.locator('#remarks').fill('E: the face does not match the Aadhaar photo.');

    // Several sweeps later F still waits and E's form is still E's, as the agent left it.
    await new Promise((r) => setTimeout(r, 4000));
    assert.equal((await d.status(f.id)).sub_status, 'USER_QUEUED');
    assert.equal(await agent.page.locator('#call').getAttribute('data-state'), 'ended');
    assert.equal(await agent.page.locator('#remarks').inputValue(), 'E: the face does not match the Aadhaar photo.');
    assert.match(await agent.page.locator('#call-status').textContent(), new RegExp(e.id));
    await shot(agent.page, '30-agent-wrap-up');

    await agent.page.getByRole('button', { name: 'Submit decision' }).click();
    await agent.page.locator('#decision-saved').getByText(`Decision saved for ${e.id}: Reject.`).waitFor();
    const eDecided = await d.expectStatus(e.id, 'AGENT_REJECTED');
    assert.equal(eDecided.agent_remarks, 'E: the face does not match the Aadhaar photo.');

    // E's page says what happens next in words, never a status code.
    await atStep(eCustomer.page, 'done');
    const next = await eCustomer.page.locator('#app').textContent();
    assert.match(next, /What happens next/);
    assert.doesNotMatch(next, /[A-Z]+_[A-Z_]+/, next);
    await shot(eCustomer.page, '31-customer-done');

    // Now F is invited, and F's call gets a fresh form.
    await d.expectStatus(f.id, 'AGENT_ASSIGNED_TO_USER', 15);
    await atStep(fCustomer.page, 'call');
    await fCustomer.page.getByRole('button', { name: 'Start the video call' }).click();
    await d.expectStatus(f.id, 'USER_ACCEPTED_MEETING');
    await agent.page.waitForSelector('#call[data-state="active"]', { timeout: 10_000 });
    await agent.page.getByRole('button', { name: 'End call' }).click();
    await d.expectStatus(f.id, 'AGENT_ENDED_CALL');
    await agent.page.waitForSelector('#decision-form:not([hidden])');
    assert.equal(await agent.page.locator('#decision').inputValue(), '');
    assert.equal(await agent.page.locator('#remarks').inputValue(), '');
    await agent.page.locator('#decision').selectOption('unable_to_validate');
    await agent.page.locator('#remarks').fill('F: no PAN card at hand.');
    await agent.page.getByRole('button', { name: 'Submit decision' }).click();
    await agent.page.locator('#decision-saved').getByText(`Decision saved for ${f.id}: Unable to validate.`).waitFor();
    const fDecided = await d.expectStatus(f.id, 'AGENT_UNABLE_TO_VALIDATE');
    assert.equal(fDecided.agent_remarks, 'F: no PAN card at hand.');
    const eAfter = await d.status(e.id);
    assert.equal(eAfter.sub_status, 'AGENT_REJECTED');
    assert.equal(eAfter.agent_remarks, 'E: the face does not match the Aadhaar photo.');
    for (const c of [agent, eCustomer, fCustomer]) await c.context.close();
  });
});
