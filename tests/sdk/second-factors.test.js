'use strict';
// The official Cashfree Node SDK (`cashfree-verification` 4.0.1), unchanged, against a real
// `vkyc` server whose merchant has a second factor: an IP allow-list, then a public-key
// signature (docs/security.md). The factors are switched with the `vkyc merchant` commands
// on the running server's data directory; the server caches no credential
// (VKYC_CREDENTIAL_CACHE_SECONDS=0), so each switch applies to the next call.
//
// About `x-cf-signature`: the SDK's methods take an `x_cf_signature` argument, but 4.0.1
// never sends it. The header goes out only when given in the last argument, the axios
// options: `{ headers: { 'x-cf-signature': signature } }`. The tests below pass it both
// ways, as an integrator following the SDK's documentation should, and show that the
// argument alone gets the "x-cf-signature missing" answer.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Cashfree } = require('cashfree-verification');
const {
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
} = require('./server');

const SERVER_SETTINGS = {
  VKYC_CREDENTIAL_CACHE_SECONDS: '0', // `vkyc merchant ...` changes apply at once
  VKYC_DEFAULT_RATE_LIMIT_PER_MINUTE: '0', // no rate limit
};
const CLI_TIMEOUT_MS = 60_000;

const IP_REFUSED = {
  type: 'authentication_error',
  code: 'ip_validation_failed',
  message: 'IP not whitelisted your current ip is 127.0.0.1.For IP whitelisting assistance, visit our guide at https://www.cashfree.com/docs/secure-id/get-started/integration/ip-whitelisting-verification',
};
const SIGNATURE_MISSING = validation('authentication_failed', 'x-cf-signature missing in the request header');
const signatureInvalid = (message) => ({
  type: 'authentication_error',
  code: 'x-cf-signature_value_invalid',
  message,
});

/** `x-cf-signature` as a merchant makes it: RSA-OAEP (SHA-1) of "<client id>.<unix seconds>". */
function sign(publicKeyPem, clientId, seconds = Math.floor(Date.now() / 1000)) {
  return crypto.publicEncrypt(
    { key: publicKeyPem, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
    Buffer.from(`${clientId}.${seconds}`),
  ).toString('base64');
}

/** The SDK's last argument, the only way 4.0.1 sends the header. */
const withSignature = (signature) => ({ headers: { 'x-cf-signature': signature } });

describe('cashfree-verification 4.0.1 with each second factor', () => {
  let bin;
  let dataDir;
  let server;
  let apiUrl;
  let clientId;
  let clientSecret;

  /** Runs `vkyc merchant ...args` on the server's data directory; returns its stdout. */
  function merchantCli(...args) {
    const run = spawnSync(bin, ['merchant', ...args], {
      cwd: dataDir,
      env: serverEnv(dataDir, SERVER_SETTINGS),
      encoding: 'utf8',
      timeout: CLI_TIMEOUT_MS,
      killSignal: 'SIGKILL',
    });
    assert.equal(run.status, 0,
      `vkyc merchant ${args.join(' ')} failed (${run.error || `status ${run.status}, signal ${run.signal}`})`
      + `\n--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`);
    return run.stdout;
  }

  before(async () => {
    bin = serverBinary();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkyc-sdk-2fa-'));
    server = await startServer(bin, dataDir, {
      apiUrl: MERCHANT_API_LINE,
      clientId: CLIENT_ID_LINE,
      clientSecret: CLIENT_SECRET_LINE,
    }, SERVER_SETTINGS);
    ({ apiUrl, clientId, clientSecret } = server.values);

    Cashfree.XEnableErrorAnalytics = false; // never report to the SDK's analytics service
    Cashfree.XClientId = clientId;
    Cashfree.XClientSecret = clientSecret;
    Cashfree.basePath = apiUrl;
  });

  after(async () => {
    await stopServer(server);
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const phone = '9876543210';
  const newUser = (userId) => ({
    user_id: userId,
    phone,
    name: 'Suresh Kumar',
    email: 'suresh@example.com',
    address: '12, 3rd Cross, MG Road, Bengaluru 560001',
  });
  const newVkyc = (verificationId, userId) => ({
    verification_id: verificationId,
    user_id: userId,
    notification_types: ['sms'],
    aadhaar_details: AADHAAR_DETAILS,
  });
  const tokenRequest = (referenceId) => ({
    app_id: clientId,
    product: 'VKYC',
    metadata: { vkyc_request_id: String(referenceId) },
    authenticated_user: { identifier_type: 'phone', identifier_value: phone },
  });

  describe('IP allow-list', () => {
    const userId = `sdk_ip_user_${process.pid}`;
    const verificationId = `sdk_ip_vkyc_${process.pid}`;
    const refusedUserId = `sdk_ip_refused_${process.pid}`;
    let initiated;

    it('a range holding the caller: create user, initiate, status by both ids work', async () => {
      assert.match(merchantCli('allow-ip', '--client-id', clientId, '--ip', '127.0.0.0/8'),
        new RegExp(`^${clientId} may call only from: 127\\.0\\.0\\.0/8$`, 'm'));

      const user = await Cashfree.VrsCreateUser(VER, newUser(userId));
      assert.equal(user.status, 200);
      assert.equal(user.data.user_id, userId);

      const res = await Cashfree.VrsInitiateVKYC(VER, newVkyc(verificationId, userId));
      assert.equal(res.status, 200);
      initiated = res.data;
      assert.equal(initiated.verification_id, verificationId);
      assert.equal(initiated.status, 'RECEIVED');
      assert.equal(initiated.user_reference_id, user.data.user_reference_id);

      const byVid = await Cashfree.VrsVkycGetStatus(VER, undefined, verificationId, undefined);
      assert.equal(byVid.status, 200);
      assert.equal(byVid.data.reference_id, initiated.reference_id);
      assert.equal(byVid.data.status, 'RECEIVED');

      const byRef = await Cashfree.VrsVkycGetStatus(VER, undefined, undefined, String(initiated.reference_id));
      assert.equal(byRef.status, 200);
      assert.deepEqual(byRef.data, byVid.data);
    });

    it('a list of several entries: the caller matching any one is enough', async () => {
      merchantCli('allow-ip', '--client-id', clientId, '--ip', '10.1.2.3', '--ip', '2001:db8::/32',
        '--ip', '127.0.0.1');
      const res = await Cashfree.VrsVkycGetStatus(VER, undefined, verificationId, undefined);
      assert.equal(res.status, 200);
    });

    it('an address elsewhere: every call gets 403 ip_validation_failed', async () => {
      assert.match(merchantCli('allow-ip', '--client-id', clientId, '--ip', '10.1.2.3'),
        new RegExp(`^${clientId} may call only from: 10\\.1\\.2\\.3/32$`, 'm'));

      await expectApiError(() => Cashfree.VrsCreateUser(VER, newUser(refusedUserId)), 403, IP_REFUSED);
      await expectApiError(() => Cashfree.VrsGetUser(VER, undefined, undefined, userId), 403, IP_REFUSED);
      await expectApiError(
        () => Cashfree.VrsUpdateUser(VER, { user_id: userId, name: 'Refused' }), 403, IP_REFUSED);
      await expectApiError(
        () => Cashfree.VrsInitiateVKYC(VER, newVkyc(`${verificationId}_refused`, userId)), 403, IP_REFUSED);
      await expectApiError(
        () => Cashfree.VrsVkycGetStatus(VER, undefined, verificationId, undefined), 403, IP_REFUSED);
      await expectApiError(
        () => Cashfree.VrsVkycGetStatus(VER, undefined, undefined, String(initiated.reference_id)),
        403, IP_REFUSED);
      await expectApiError(
        () => Cashfree.VrsVkycGenerateAuthToken(VER, tokenRequest(initiated.reference_id)), 403, IP_REFUSED);
    });

    it('an X-Forwarded-For header from an untrusted peer does not get a call through', async () => {
      await expectApiError(
        () => Cashfree.VrsVkycGetStatus(VER, undefined, verificationId, undefined,
          { headers: { 'x-forwarded-for': '10.1.2.3' } }),
        403, IP_REFUSED);
    });

    it('clear-second-factor: calls work again, and the refused calls changed nothing', async () => {
      assert.match(merchantCli('clear-second-factor', '--client-id', clientId),
        new RegExp(`^${clientId} has no second factor$`, 'm'));

      const user = await Cashfree.VrsGetUser(VER, undefined, undefined, userId);
      assert.equal(user.status, 200);
      assert.equal(user.data.name, 'Suresh Kumar', 'the refused update was applied');
      await expectApiError(() => Cashfree.VrsGetUser(VER, undefined, undefined, refusedUserId),
        404, validation('user_id_not_found', 'user_id does not exist.'));
      await expectApiError(
        () => Cashfree.VrsVkycGetStatus(VER, undefined, `${verificationId}_refused`, undefined),
        404, validation('verification_id_not_found', 'verification_id does not exist.'));
    });
  });

  describe('signature', () => {
    const userId = `sdk_sig_user_${process.pid}`;
    const verificationId = `sdk_sig_vkyc_${process.pid}`;
    let publicKey;
    let user;
    let initiated;
    /** A fresh signature for now. */
    const fresh = () => sign(publicKey, clientId);

    before(() => {
      const out = merchantCli('keygen', '--client-id', clientId);
      const start = out.indexOf('-----BEGIN PUBLIC KEY-----');
      assert.ok(start >= 0, `keygen printed no public key:\n${out}`);
      publicKey = out.slice(start);
      assert.match(publicKey, /^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+-----END PUBLIC KEY-----\n?$/);
      const key = crypto.createPublicKey(publicKey);
      assert.equal(key.asymmetricKeyType, 'rsa');
      assert.equal(key.asymmetricKeyDetails.modulusLength, 2048);
    });

    // Each call passes the signature as the SDK documents it (the x_cf_signature
    // argument, which 4.0.1 drops) and in options.headers (which it sends).
    it('the full SDK flow, a fresh signature per call', async () => {
      let sig = fresh();
      const created = await Cashfree.VrsCreateUser(VER, newUser(userId), sig, withSignature(sig));
      assert.equal(created.status, 200);
      user = created.data;
      assert.equal(user.user_id, userId);

      sig = fresh();
      const got = await Cashfree.VrsGetUser(VER, sig, undefined, userId, withSignature(sig));
      assert.equal(got.status, 200);
      assert.deepEqual(got.data, user);

      sig = fresh();
      const updated = await Cashfree.VrsUpdateUser(VER,
        { user_id: userId, name: 'Suresh K', email: 'suresh.k@example.com' }, sig, withSignature(sig));
      assert.equal(updated.status, 200);
      user = { ...user, name: 'Suresh K', email: 'suresh.k@example.com' };
      assert.deepEqual(updated.data, user);

      sig = fresh();
      const res = await Cashfree.VrsInitiateVKYC(VER, newVkyc(verificationId, userId), sig, withSignature(sig));
      assert.equal(res.status, 200);
      initiated = res.data;
      assert.equal(initiated.verification_id, verificationId);
      assert.equal(initiated.user_reference_id, user.user_reference_id);

      sig = fresh();
      const byVid = await Cashfree.VrsVkycGetStatus(VER, sig, verificationId, undefined, withSignature(sig));
      assert.equal(byVid.status, 200);
      assert.equal(byVid.data.reference_id, initiated.reference_id);
      assert.equal(byVid.data.status, 'RECEIVED');

      sig = fresh();
      const byRef = await Cashfree.VrsVkycGetStatus(VER, sig, undefined, String(initiated.reference_id),
        withSignature(sig));
      assert.equal(byRef.status, 200);
      assert.deepEqual(byRef.data, byVid.data);

      sig = fresh();
      const token = await Cashfree.VrsVkycGenerateAuthToken(VER, tokenRequest(initiated.reference_id), sig,
        withSignature(sig));
      assert.equal(token.status, 200);
      assert.deepEqual(Object.keys(token.data).sort(), ['access_token', 'expiry']);
    });

    it('no header: 403 "x-cf-signature missing in the request header"', async () => {
      await expectApiError(() => Cashfree.VrsVkycGetStatus(VER, undefined, verificationId, undefined),
        403, SIGNATURE_MISSING);
      await expectApiError(() => Cashfree.VrsCreateUser(VER, newUser(`${userId}_nosig`)),
        403, SIGNATURE_MISSING);
    });

    it('the signature only as the x_cf_signature argument: 403 missing, because the SDK never sends it',
      async () => {
        const sig = fresh();
        await expectApiError(() => Cashfree.VrsVkycGetStatus(VER, sig, verificationId, undefined),
          403, SIGNATURE_MISSING);
        await expectApiError(() => Cashfree.VrsGetUser(VER, sig, undefined, userId), 403, SIGNATURE_MISSING);
        await expectApiError(() => Cashfree.VrsCreateUser(VER, newUser(`${userId}_argonly`), sig),
          403, SIGNATURE_MISSING);
        await expectApiError(
          () => Cashfree.VrsVkycGenerateAuthToken(VER, tokenRequest(initiated.reference_id), sig),
          403, SIGNATURE_MISSING);
        // The server never saw it: the same signature, now in the header, is accepted once.
        const res = await Cashfree.VrsVkycGetStatus(VER, sig, verificationId, undefined, withSignature(sig));
        assert.equal(res.status, 200);
      });

    it('a replayed signature: 403 "x-cf-signature has already been used."', async () => {
      const sig = fresh();
      const first = await Cashfree.VrsVkycGetStatus(VER, sig, verificationId, undefined, withSignature(sig));
      assert.equal(first.status, 200);
      await expectApiError(
        () => Cashfree.VrsVkycGetStatus(VER, sig, verificationId, undefined, withSignature(sig)),
        403, signatureInvalid('x-cf-signature has already been used.'));
      // Also on another endpoint.
      await expectApiError(
        () => Cashfree.VrsGetUser(VER, sig, undefined, userId, withSignature(sig)),
        403, signatureInvalid('x-cf-signature has already been used.'));
    });

    it('one signature sent ten times at once: accepted exactly once', async () => {
      const sig = fresh();
      const results = await Promise.allSettled(Array.from({ length: 10 },
        () => Cashfree.VrsVkycGetStatus(VER, sig, verificationId, undefined, withSignature(sig))));
      const accepted = results.filter((r) => r.status === 'fulfilled');
      assert.equal(accepted.length, 1, 'accepted more or less than once');
      assert.equal(accepted[0].value.status, 200);
      for (const r of results.filter((x) => x.status === 'rejected')) {
        assert.ok(r.reason && r.reason.response, `expected an HTTP error answer, got: ${r.reason && r.reason.stack}`);
        assert.equal(r.reason.response.status, 403);
        assert.deepEqual(r.reason.response.data, signatureInvalid('x-cf-signature has already been used.'));
      }
    });

    it('a fractional timestamp is accepted', async () => {
      const sig = sign(publicKey, clientId, (Date.now() / 1000).toFixed(3));
      const res = await Cashfree.VrsVkycGetStatus(VER, sig, verificationId, undefined, withSignature(sig));
      assert.equal(res.status, 200);
    });

    it('a little ahead of the server clock (skew under a minute) is accepted', async () => {
      const sig = sign(publicKey, clientId, Math.floor(Date.now() / 1000) + 30);
      const res = await Cashfree.VrsVkycGetStatus(VER, sig, verificationId, undefined, withSignature(sig));
      assert.equal(res.status, 200);
    });

    it('10 minutes old: 403 "x-cf-signature has expired."', async () => {
      const sig = sign(publicKey, clientId, Math.floor(Date.now() / 1000) - 600);
      await expectApiError(
        () => Cashfree.VrsVkycGetStatus(VER, sig, verificationId, undefined, withSignature(sig)),
        403, signatureInvalid('x-cf-signature has expired.'));
    });

    it('too far ahead, or in milliseconds: 403 "x-cf-signature has expired."', async () => {
      for (const seconds of [Math.floor(Date.now() / 1000) + 180, Date.now()]) {
        const sig = sign(publicKey, clientId, seconds);
        await expectApiError(
          () => Cashfree.VrsVkycGetStatus(VER, sig, verificationId, undefined, withSignature(sig)),
          403, signatureInvalid('x-cf-signature has expired.'));
      }
    });

    it('another client id, another key, or not Base64: 403 "x-cf-signature is invalid."', async () => {
      const { publicKey: otherKey } = crypto.generateKeyPairSync('rsa', {
        modulusLength: 2048,
        publicKeyEncoding: { type: 'spki', format: 'pem' },
      });
      const signatures = [
        sign(publicKey, 'CF0000000000000000000000'),
        sign(otherKey, clientId),
        'not a signature!',
      ];
      for (const sig of signatures) {
        await expectApiError(
          () => Cashfree.VrsVkycGetStatus(VER, sig, verificationId, undefined, withSignature(sig)),
          403, signatureInvalid('x-cf-signature is invalid.'));
      }
    });

    it('clear-second-factor: calls work without the header again', async () => {
      assert.match(merchantCli('clear-second-factor', '--client-id', clientId),
        new RegExp(`^${clientId} has no second factor$`, 'm'));

      const got = await Cashfree.VrsGetUser(VER, undefined, undefined, userId);
      assert.equal(got.status, 200);
      assert.deepEqual(got.data, user);
      const res = await Cashfree.VrsVkycGetStatus(VER, undefined, verificationId, undefined);
      assert.equal(res.status, 200);
      assert.equal(res.data.reference_id, initiated.reference_id);
      const token = await Cashfree.VrsVkycGenerateAuthToken(VER, tokenRequest(initiated.reference_id));
      assert.equal(token.status, 200);
      // Nothing was created by the calls refused for a missing signature.
      await expectApiError(() => Cashfree.VrsGetUser(VER, undefined, undefined, `${userId}_nosig`),
        404, validation('user_id_not_found', 'user_id does not exist.'));
      await expectApiError(() => Cashfree.VrsGetUser(VER, undefined, undefined, `${userId}_argonly`),
        404, validation('user_id_not_found', 'user_id does not exist.'));
    });
  });

  it('the server logged neither the secret nor a signature', () => {
    assert.ok(!server.stderr().includes(clientSecret), 'the client secret was logged');
    assert.doesNotMatch(server.stderr(), /x-cf-signature: ?[A-Za-z0-9+/]{40}/, 'a signature was logged');
  });
});
