'use strict';
// Several `vkyc` processes on one PostgreSQL database, behind a load balancer that picks
// a random process for every request (no sticky routing). A and B run no relay; C (and
// later D) do. A whole call runs in Chromium with its signalling spread over all of
// them and its media on C; the recording lands in the shared S3 bucket. Then C is
// killed mid-call: the call drops within the grace period, and the customer's next call
// is placed on D.
//
// PostgreSQL only: a SQLite database is one process's.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { serverBinary, serverEnv, startServer, stopServer, MERCHANT_API_LINE, CLIENT_ID_LINE, CLIENT_SECRET_LINE, REPO_ROOT } = require('../sdk/server.js');
const {
  Deployment, makeFixtures, configText, CHROMIUM_FLAGS, PG_URL, AADHAAR_DETAILS, atStep, passChecks, goOnline, playing, completeChecklist, probe, shot,
} = require('./support.js');

const AGENT = { username: 'agent-cluster', password: 'agent password 1234' };
const GRACE_SECONDS = 12;
const NODE_TIMEOUT_SECONDS = 4;
const BUCKET = 'vkyc-cluster';
const LISTENING = /listening on (127\.0\.0\.1:\d+)$/m;

/** What kind of request a path is, for counting who served the call's signalling. */
const isCall = (p) => /^\/v\/[^/]+\/api\/call|^\/desk\/api\/(calls\/|agent\/call)/.test(p);

/** A load balancer with no stickiness: each request goes to a random process; one that
 * refuses the connection (killed) is skipped, as a health-checking balancer would. */
function startBalancer() {
  const balancer = { upstreams: [], served: new Map() };
  const pick = (tried) => {
    const left = balancer.upstreams.filter((u) => !tried.has(u.name));
    return left[Math.floor(Math.random() * left.length)];
  };
  balancer.server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const tried = new Set();
      const attempt = () => {
        const up = pick(tried);
        if (!up) {
          res.writeHead(502).end();
          return;
        }
        tried.add(up.name);
        const out = http.request({ host: '127.0.0.1', port: up.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
          if (isCall(req.url.split('?')[0])) balancer.served.set(up.name, (balancer.served.get(up.name) || 0) + 1);
          res.writeHead(r.statusCode, r.headers);
          r.pipe(res);
        });
        out.on('error', (e) => {
          if (e.code === 'ECONNREFUSED' || e.code === 'ECONNRESET') attempt();
          else res.destroy(e);
        });
        out.end(body);
      };
      attempt();
    });
  });
  // WebSockets (the waiting customer's queue position) too: the upgrade goes to a random
  // process, and the connection then stays with it.
  balancer.server.on('upgrade', (req, socket, head) => {
    const up = pick(new Set());
    const out = net.connect(up.port, '127.0.0.1', () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      out.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length) out.write(head);
      out.pipe(socket);
      socket.pipe(out);
    });
    out.on('error', () => socket.destroy());
    socket.on('error', () => out.destroy());
  });
  return new Promise((resolve) => balancer.server.listen(0, '127.0.0.1', () => {
    balancer.url = `http://127.0.0.1:${balancer.server.address().port}`;
    resolve(balancer);
  }));
}

/** The S3 server of tests/support (moto), with an empty bucket. */
async function startS3() {
  const proc = spawn(path.join(REPO_ROOT, 'tests', 'support', 's3-server'), [], { stdio: ['pipe', 'pipe', 'inherit'] });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (c) => {
      out += c;
      if (out.includes('\n')) resolve(out.trim());
    });
    proc.once('exit', (code) => reject(new Error(`s3-server exited with ${code}`)));
  });
  const made = await fetch(`${url}/${BUCKET}`, { method: 'PUT', body: '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>ap-south-1</LocationConstraint></CreateBucketConfiguration>' });
  assert.equal(made.status, 200);
  return { proc, url };
}

/** The processes of one deployment, and what Deployment offers for one. */
class Cluster extends Deployment {
  async start() {
    this.bin = serverBinary();
    this.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkyc-cluster-'));
    this.fixtures = makeFixtures(this.dataDir);
    this.balancer = await startBalancer();
    this.s3 = await startS3();
    this.pgDatabase = `vkyc_test_cluster_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
    spawnSync('psql', [PG_URL, '-qc', `CREATE DATABASE ${this.pgDatabase}`]);
    this.databaseUrl = PG_URL.replace(/\/[^/]*$/, `/${this.pgDatabase}`);
    // One deployment: one database, one master key.
    this.masterKey = crypto.randomBytes(32).toString('hex');
    this.processes = {};
    for (const [name, relay] of [['A', false], ['B', false], ['C', true]]) await this.startProcess(name, relay);
    const first = this.processes.A;
    ({ clientId: this.clientId, clientSecret: this.clientSecret } = first.server.values);
    this.apiUrl = `${this.balancer.url}/verification`;
    this.base = this.balancer.url;
    this.env = first.env;
    this.serial = 0;
    this.browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: [...CHROMIUM_FLAGS, '--use-fake-ui-for-media-stream'] });
    this.strictBrowser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_FLAGS });
    return this;
  }

  async startProcess(name, relay) {
    const dir = path.join(this.dataDir, name);
    fs.mkdirSync(dir, { mode: 0o700 });
    const config = path.join(dir, 'vkyc.toml');
    fs.writeFileSync(config, configText(this.fixtures, [`public_base_url = "${this.balancer.url}"`], {
      calls: [`drop_grace_seconds = ${GRACE_SECONDS}`],
      media: [
        `enabled = ${relay}`,
        `node_timeout_seconds = ${NODE_TIMEOUT_SECONDS}`,
        `recordings_store = "s3://${BUCKET}/recordings"`,
        `recordings_s3_endpoint = "${this.s3.url}"`,
        'recordings_s3_access_key = "testing"',
        'recordings_s3_secret_key = "testing"',
      ],
    }));
    const extra = { VKYC_CONFIG: config, VKYC_DATABASE_URL: this.databaseUrl, VKYC_MASTER_KEY: this.masterKey };
    const wanted = { listen: LISTENING, apiUrl: /^merchant API: (\S+)$/m };
    if (name === 'A') Object.assign(wanted, { clientId: CLIENT_ID_LINE, clientSecret: CLIENT_SECRET_LINE });
    const server = await startServer(this.bin, dir, wanted, extra);
    const port = Number(server.values.listen.split(':')[1]);
    this.processes[name] = { name, relay, server, port, url: `http://${server.values.listen}`, env: serverEnv(dir, extra) };
    this.balancer.upstreams.push({ name, port });
    if (relay) await this.waitForNodes();
  }

  sql(query) {
    const r = spawnSync('psql', [this.databaseUrl, '-AtXqc', query], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  }

  /** Waits until every process with a relay is a registered, live node. */
  async waitForNodes() {
    const want = Object.values(this.processes).filter((p) => p.relay).map((p) => p.url);
    for (let i = 0; i < 100; i++) {
      const live = this.sql(`SELECT internal_url FROM relay_nodes WHERE heartbeat_at > ${Date.now() - 3000}`).split('\n');
      if (want.every((u) => live.includes(u))) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail('the relay nodes never registered');
  }

  /** Which process's relay has the latest call of `verificationId`. */
  nodeOf(verificationId) {
    const url = this.sql(`SELECT n.internal_url FROM calls c JOIN requests r ON r.id = c.request_id
      JOIN relay_nodes n ON n.id = c.relay_node WHERE r.verification_id = '${verificationId}' ORDER BY c.id DESC LIMIT 1`);
    return Object.values(this.processes).find((p) => p.url === url)?.name;
  }

  async stop() {
    if (this.browser) await this.browser.close();
    if (this.strictBrowser) await this.strictBrowser.close();
    for (const p of Object.values(this.processes || {})) await stopServer(p.server);
    if (this.balancer) this.balancer.server.close();
    if (this.s3) this.s3.proc.kill();
    if (this.pgDatabase) spawnSync('psql', [PG_URL, '-qc', `DROP DATABASE IF EXISTS ${this.pgDatabase}`]);
    if (this.dataDir) fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** The customer from the link into a call, both videos playing. */
async function intoCall(d, customer, agent, link) {
  await customer.page.goto(link);
  await passChecks(customer.page);
  await customer.page.locator('#join-queue').click();
  await atStep(customer.page, 'call');
  await agent.page.waitForSelector('#call[data-state="invited"]');
  await customer.page.getByRole('button', { name: 'Start the video call' }).click();
  await playing('#remote-video', customer.page, 1);
  await playing('#remote', agent.page, 1);
}

let d;

describe('several processes, one database, calls on relay nodes', { skip: !PG_URL && 'several processes share a PostgreSQL database' }, () => {
  before(async () => {
    d = await new Cluster().start();
    d.createStaff(AGENT.username, 'agent', AGENT.password);
  });

  after(async () => {
    if (d) await d.stop();
  });

  it('runs a whole call with its signalling on every process and its media on C', async () => {
    assert.deepEqual(d.sql('SELECT internal_url FROM relay_nodes').split('\n'), [d.processes.C.url], 'only C runs a relay');
    const agent = await d.staffPage(AGENT.username, AGENT.password);
    await goOnline(agent.page);
    const { id, link } = await d.newRequest({ aadhaar_details: AADHAAR_DETAILS });
    const customer = await d.customerPage();
    d.balancer.served.clear();
    await intoCall(d, customer, agent, link);
    assert.equal(d.nodeOf(id), 'C');
    await shot(customer.page, '60-cluster-call');

    await completeChecklist(agent.page);
    await agent.page.getByRole('button', { name: 'End call' }).click();
    await d.expectStatus(id, 'AGENT_ENDED_CALL');
    await agent.page.waitForSelector('#decision-form:not([hidden])');
    await agent.page.locator('#decision').selectOption('approved');
    await agent.page.locator('#remarks').fill('Face matches; PAN verified.');
    await agent.page.getByRole('button', { name: 'Submit decision' }).click();
    const approved = await d.expectStatus(id, 'AGENT_APPROVED');

    // Every process took part in the call's signalling, relay or not.
    for (const name of ['A', 'B', 'C']) assert.ok(d.balancer.served.get(name) > 0, `${name}: ${JSON.stringify([...d.balancer.served])}`);
    // The recording is in the shared bucket, and every process serves it.
    assert.match(d.sql(`SELECT c.recording_path FROM calls c JOIN requests r ON r.id = c.request_id WHERE r.verification_id = '${id}'`),
      new RegExp(`^s3://${BUCKET}/recordings/\\d+\\.webm$`));
    const linkPath = new URL(approved.recording_link);
    for (const p of Object.values(d.processes)) {
      const got = await fetch(`${p.url}${linkPath.pathname}${linkPath.search}`);
      assert.equal(got.status, 200, `${p.name} serves the recording`);
      const file = path.join(d.dataDir, `from-${p.name}.webm`);
      fs.writeFileSync(file, Buffer.from(await got.arrayBuffer()));
      const kinds = probe(file).streams.map((s) => `${s.codec_type}/${s.codec_name}`);
      assert.ok(kinds.includes('video/vp8') && kinds.includes('audio/opus'), kinds.join());
    }
    await customer.context.close();
    await agent.context.close();
  });

  it('a killed relay node drops its call within the grace period, and the next call goes to another node', async () => {
    await d.startProcess('D', true);
    const agent = await d.staffPage(AGENT.username, AGENT.password);
    await goOnline(agent.page);
    const { id, link } = await d.newRequest({ aadhaar_details: AADHAAR_DETAILS });
    const customer = await d.customerPage();
    await intoCall(d, customer, agent, link);
    // Both nodes are empty: the longer-running one, C, has it.
    assert.equal(d.nodeOf(id), 'C');

    const killedAt = Date.now();
    d.processes.C.server.proc.kill('SIGKILL');
    await d.processes.C.server.exited;
    d.processes.C.relay = false;
    const dropped = await d.expectStatus(id, 'USER_DROPPED_OFF', GRACE_SECONDS + 5);
    const took = Date.now() - killedAt;
    assert.ok(took <= GRACE_SECONDS * 1000, `dropped ${took} ms after the kill`);
    assert.ok(!dropped.recording_link, 'the recording in progress was on C');

    // The customer queues again and the new call runs on D.
    await atStep(customer.page, 'waiting', 30_000);
    await customer.page.locator('#join-queue').click();
    await atStep(customer.page, 'call');
    await customer.page.getByRole('button', { name: 'Start the video call' }).click();
    await playing('#remote-video', customer.page, 1);
    await playing('#remote', agent.page, 1);
    assert.equal(d.nodeOf(id), 'D');
    await shot(agent.page, '61-cluster-after-kill');
    await customer.context.close();
    await agent.context.close();
  });
});
