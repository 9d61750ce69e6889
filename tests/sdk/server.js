'use strict';
// Shared by the tests of this directory: starts and stops a real `vkyc` server, and
// checks the HTTP errors the SDK rejects with.
//
// The server is `$VKYC_BIN`, or `target/debug/vkyc` (built with `cargo build` when
// missing). It runs on a random port with a fresh data directory, and its first start
// prints the merchant API address and the bootstrap test credentials.

const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;
// The SDK ignores this argument (it sends Cashfree.XApiVersion), but it must not be null.
const VER = '2024-12-01';

// ---- the server ----

function serverBinary() {
  if (process.env.VKYC_BIN) return path.resolve(process.env.VKYC_BIN);
  const bin = path.join(REPO_ROOT, 'target', 'debug', 'vkyc');
  // Others may be building at the same time: cargo waits for its lock, and a failed
  // build (say, a half-edited source tree) is retried a few times.
  for (let attempt = 1; !fs.existsSync(bin) && attempt <= 3; attempt++) {
    const build = spawnSync('cargo', ['build'], { cwd: REPO_ROOT, stdio: ['ignore', 2, 2] }); // stdout is the runner's
    if (build.status !== 0 && attempt < 3) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5000);
  }
  if (!fs.existsSync(bin)) {
    throw new Error(`no server binary at ${bin}: build it with \`cargo build\` or set VKYC_BIN`);
  }
  return bin;
}

/**
 * The environment of a server (or of a `vkyc` command on its data directory): ours,
 * without any VKYC_* setting inherited from the caller, plus `extra`.
 */
function serverEnv(dataDir, extra = {}) {
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('VKYC_')) env[key] = value;
  }
  // Servers run side by side: each media relay takes a free UDP port.
  return { ...env, VKYC_DATA_DIR: dataDir, VKYC_LISTEN: '127.0.0.1:0', VKYC_DATABASE_URL: '',
    VKYC_MEDIA__UDP_BIND: '127.0.0.1:0', ...extra };
}

/**
 * Starts `vkyc serve` on `dataDir` and resolves once stdout has shown every line in
 * `wanted` (name -> regex with one capture group): `{ proc, values, stdout(), stderr(),
 * exited }`. Rejects with stdout and stderr on a timeout or an early exit. `extraEnv`
 * adds VKYC_* settings.
 */
function startServer(bin, dataDir, wanted, extraEnv = {}) {
  const proc = spawn(bin, ['serve'], {
    cwd: dataDir,
    env: serverEnv(dataDir, extraEnv),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  const exited = new Promise((resolve) => proc.once('close', (code, signal) => resolve({ code, signal })));
  const server = { proc, values: {}, stdout: () => out, stderr: () => err, exited };
  // Never leave a server behind, even when this process dies before `after` runs: on an
  // uncaught error the exit hook kills it; when this process is killed outright (the
  // test runner does that to its children when it is itself killed, or when its output
  // pipe closes) a detached watchdog does, and removes the data directory. SIGKILL,
  // because once this process is gone the server's stderr is closed, and the server then
  // ignores SIGTERM.
  const reap = () => proc.kill('SIGKILL');
  process.once('exit', reap);
  const watchdog = spawn('sh', ['-c',
    'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done; '
    + 'kill -0 "$1" 2>/dev/null || { kill -KILL "$2" 2>/dev/null; sleep 1; rm -rf "$3"; }',
    'vkyc-watchdog', String(process.pid), String(proc.pid), dataDir], { detached: true, stdio: 'ignore' });
  watchdog.on('error', () => {});
  watchdog.unref();
  exited.then(() => {
    process.removeListener('exit', reap);
    if (watchdog.exitCode === null && watchdog.signalCode === null) watchdog.kill('SIGKILL');
  });

  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (error) {
        proc.kill('SIGKILL');
        reject(error);
      } else {
        resolve(server);
      }
    };
    const describeOutput = () => `\n--- stdout ---\n${out}\n--- stderr ---\n${err}`;
    const check = () => {
      for (const [name, re] of Object.entries(wanted)) {
        const m = out.match(re);
        if (!m) return;
        server.values[name] = m[1];
      }
      finish();
    };
    const timer = setTimeout(() => {
      const missing = Object.keys(wanted).filter((name) => !wanted[name].test(out));
      finish(new Error(`vkyc serve did not print ${missing.join(', ')} within ${START_TIMEOUT_MS} ms${describeOutput()}`));
    }, START_TIMEOUT_MS);
    proc.stdout.on('data', (chunk) => {
      out += chunk;
      check();
    });
    proc.stderr.on('data', (chunk) => {
      err += chunk;
    });
    proc.once('error', (e) => finish(new Error(`could not start ${bin}: ${e.message}${describeOutput()}`)));
    exited.then(({ code, signal }) =>
      finish(new Error(`vkyc serve exited early (code ${code}, signal ${signal})${describeOutput()}`)),
    );
  });
}

/** SIGTERM, then SIGKILL if the server does not stop in time. */
async function stopServer(server) {
  if (!server || server.proc.exitCode !== null || server.proc.signalCode !== null) {
    return server && server.exited;
  }
  server.proc.kill('SIGTERM');
  let timer;
  const killed = new Promise((resolve) => {
    timer = setTimeout(() => {
      server.proc.kill('SIGKILL');
      resolve();
    }, STOP_TIMEOUT_MS);
  });
  await Promise.race([server.exited, killed]);
  clearTimeout(timer);
  return server.exited;
}

const MERCHANT_API_LINE = /^merchant API: (http:\/\/127\.0\.0\.1:\d+\/verification)$/m;
const CLIENT_ID_LINE = /^ {2}client id: +(CF\S+)$/m;
const CLIENT_SECRET_LINE = /^ {2}client secret: +(cfsk_ma_test_\S+)$/m;

// ---- assertions on SDK errors ----

/** The SDK call must reject with an HTTP answer of exactly `status` and `body`. */
async function expectApiError(call, status, body) {
  await assert.rejects(call, (err) => {
    assert.ok(err && err.response, `expected an HTTP error answer, got: ${err && err.stack}`);
    assert.equal(err.response.status, status, `status of ${JSON.stringify(err.response.data)}`);
    assert.deepEqual(err.response.data, body);
    return true;
  });
}

/** Verified Aadhaar details a merchant sends with POST /vkyc, used by both test files. */
const AADHAAR_DETAILS = {
  last_verified_at: '2025-01-15T10:00:00.000Z',
  care_of: 'S/O Ramesh Kumar',
  dob: '1990-05-17',
  gender: 'M',
  name: 'Suresh Kumar',
  photo_link: 'https://example.com/photos/suresh.jpg',
  split_address: {
    country: 'India',
    dist: 'Bengaluru Urban',
    house: '12, 3rd Cross',
    pincode: 560001,
    state: 'Karnataka',
    street: 'MG Road',
    po: 'Bengaluru GPO',
    subdist: 'Bengaluru North',
    vtc: 'Bengaluru',
  },
};

const validation = (code, message) => ({ type: 'validation_error', code, message });

module.exports = {
  REPO_ROOT,
  VER,
  serverBinary,
  serverEnv,
  startServer,
  stopServer,
  MERCHANT_API_LINE,
  CLIENT_ID_LINE,
  CLIENT_SECRET_LINE,
  expectApiError,
  validation,
  AADHAAR_DETAILS,
};
