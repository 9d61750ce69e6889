'use strict';
// A real TURN server for the media tests: Debian's coturn (package `coturn`, binary
// /usr/bin/turnserver), on 127.0.0.1 over UDP and TCP, with the TURN REST API's
// shared-secret credentials.
//
//   const turn = await startTurn({ secret: 'turn secret' });
//   const { username, credential } = turnCredentials('turn secret', 'customer-1', 600);
//   new RTCPeerConnection({ iceServers: [{ urls: turn.urls, username, credential }] });
//   ...
//   await turn.stop();
//
// Its configuration file, log and pid file live in a temporary directory of its own (and
// nothing else is read: not /etc/turnserver.conf, not a user database), so it runs the
// same as root or as any other user. Relay addresses are on 127.0.0.1 in a small port
// range, and loopback peers are allowed (coturn refuses them by default), since the relay
// under test is on 127.0.0.1 too.

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const dgram = require('node:dgram');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const TURNSERVER = process.env.VKYC_TURNSERVER || '/usr/bin/turnserver';
const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 10_000;

/**
 * TURN REST API credentials for `subject`, valid for `ttlSeconds` from `nowSeconds`:
 * `{ username: "<expiry>:<subject>", credential: base64(HMAC-SHA1(secret, username)) }`
 * (just "<expiry>" without a subject). To check a username minted elsewhere, pass
 * `nowSeconds = expiry - ttlSeconds`.
 */
function turnCredentials(secret, subject, ttlSeconds = 3600, nowSeconds = Date.now() / 1000) {
  const expiry = Math.floor(nowSeconds) + ttlSeconds;
  const username = subject === undefined || subject === null || subject === '' ? `${expiry}` : `${expiry}:${subject}`;
  const credential = crypto.createHmac('sha1', secret).update(username).digest('base64');
  return { username, credential };
}

/** Whether `port` on 127.0.0.1 can be bound now, over UDP and TCP both. */
async function portFree(port) {
  const udp = await new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.once('error', () => resolve(false));
    s.bind(port, HOST, () => s.close(() => resolve(true)));
  });
  if (!udp) return false;
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, HOST, () => s.close(() => resolve(true)));
  });
}

/**
 * `count` consecutive ports, free over UDP and TCP, below Linux's ephemeral range
 * (32768 and up) so that the sockets other programs open do not take them meanwhile.
 */
async function freePorts(count) {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + Math.floor(Math.random() * (12000 - count));
    let ok = true;
    for (let p = base; ok && p < base + count; p++) ok = await portFree(p);
    if (ok) return base;
  }
  throw new Error(`startTurn: found no ${count} free ports in a row`);
}

/** Resolves once a STUN Binding request to 127.0.0.1:`port` over UDP gets an answer. */
function stunAnswers(port, timeoutMs = 200) {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const request = Buffer.alloc(20);
    request.writeUInt16BE(0x0001, 0); // Binding request, no attributes
    request.writeUInt32BE(0x2112a442, 4); // magic cookie
    crypto.randomFillSync(request, 8, 12); // transaction id
    const done = (answered) => {
      clearTimeout(timer);
      s.close();
      resolve(answered);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.on('error', () => done(false));
    s.on('message', (m) => done(m.length >= 20 && m.readUInt16BE(0) === 0x0101 && m.subarray(8, 20).equals(request.subarray(8, 20))));
    s.send(request, port, HOST);
  });
}

function tcpAccepts(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, HOST);
    s.on('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/**
 * Starts coturn as a TURN server on 127.0.0.1, over UDP and TCP, with the TURN REST API
 * shared `secret`. Options: `realm` ("vkyc.test"), `relayPorts` (how many relay ports,
 * 20), `extra` (more turnserver.conf lines). Resolves once it answers, to
 * `{ urls, host, port, realm, relayPorts: {min, max}, dir, stop(), log() }`.
 */
async function startTurn({ secret, realm = 'vkyc.test', relayPorts = 20, extra = [] } = {}) {
  if (!secret) throw new TypeError('startTurn: a secret is required');
  if (!fs.existsSync(TURNSERVER)) throw new Error(`startTurn: no ${TURNSERVER}: apt-get install coturn`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkyc-turn-'));
  const logFile = path.join(dir, 'turn.log');
  const port = await freePorts(1);
  let min = await freePorts(relayPorts);
  while (port >= min && port < min + relayPorts) min = await freePorts(relayPorts);
  const max = min + relayPorts - 1;

  const config = path.join(dir, 'turnserver.conf');
  fs.writeFileSync(config, [
    `listening-ip=${HOST}`,
    `listening-port=${port}`,
    `relay-ip=${HOST}`,
    `min-port=${min}`,
    `max-port=${max}`,
    `realm=${realm}`,
    'use-auth-secret',
    `static-auth-secret=${secret}`,
    'fingerprint',
    // The relay under test is on 127.0.0.1: coturn denies loopback peers unless told.
    'allow-loopback-peers',
    'no-multicast-peers',
    'no-tls',
    'no-dtls',
    'no-cli',
    'no-rfc5780',
    'no-stun-backward-compatibility',
    'relay-threads=1',
    // Everything it writes stays here: no syslog, no /var/log, no /var/run pid file, and
    // no user database (the REST API needs none).
    `log-file=${logFile}`,
    'simple-log',
    'no-stdout-log',
    'verbose',
    `pidfile=${path.join(dir, 'turnserver.pid')}`,
    `userdb=${path.join(dir, 'turndb')}`,
    ...extra,
    '',
  ].join('\n'));

  const proc = spawn(TURNSERVER, ['-c', config], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (c) => (stderr += c));
  let exited = null;
  const exit = new Promise((resolve) => proc.on('exit', (code, signal) => {
    exited = { code, signal };
    resolve(exited);
  }));
  // A test that dies must not leave coturn behind.
  const killOnExit = () => proc.kill('SIGKILL');
  process.on('exit', killOnExit);

  let lastLog = '';
  const log = () => {
    try {
      lastLog = fs.readFileSync(logFile, 'utf8');
    } catch (_) {}
    return lastLog;
  };

  const stop = async () => {
    process.off('exit', killOnExit);
    if (!exited) {
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exit;
      clearTimeout(timer);
    }
    log(); // kept for log() after the directory is gone
    fs.rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (exited) break;
    if ((await stunAnswers(port)) && (await tcpAccepts(port))) {
      return {
        urls: [`turn:${HOST}:${port}?transport=udp`, `turn:${HOST}:${port}?transport=tcp`],
        host: HOST, port, realm, relayPorts: { min, max }, dir, stop, log,
      };
    }
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const why = exited ? `exited (${JSON.stringify(exited)})` : `did not answer within ${START_TIMEOUT_MS} ms`;
  const text = `${log()}\n${stderr}`;
  await stop();
  throw new Error(`startTurn: turnserver ${why}:\n${text}`);
}

module.exports = { startTurn, turnCredentials, TURNSERVER };
