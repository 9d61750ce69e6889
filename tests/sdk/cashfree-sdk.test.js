'use strict';
// The official Cashfree Node SDK (`cashfree-verification` 4.0.1), unchanged, against a real
// `vkyc` server. Run from the repository root with `node --test tests/sdk/` after
// `npm ci --prefix tests/sdk`.
//
// The server is `$VKYC_BIN`, or `target/debug/vkyc` (built with `cargo build` when
// missing). It runs on a random port with a fresh data directory, and its first start
// prints the merchant API address and the bootstrap test credentials (see ./server.js).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Cashfree } = require('cashfree-verification');
const {
  VER,
  serverBinary,
  startServer,
  stopServer,
  MERCHANT_API_LINE,
  CLIENT_ID_LINE,
  CLIENT_SECRET_LINE,
  expectApiError,
  validation,
  AADHAAR_DETAILS,
} = require('./server');

// ---- the tests ----

describe('cashfree-verification 4.0.1 against vkyc', () => {
  let bin;
  let dataDir;
  let server;
  let apiUrl;
  let clientId;
  let clientSecret;

  before(async () => {
    bin = serverBinary();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkyc-sdk-'));
    server = await startServer(bin, dataDir, {
      apiUrl: MERCHANT_API_LINE,
      clientId: CLIENT_ID_LINE,
      clientSecret: CLIENT_SECRET_LINE,
    });
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
  const userId = `sdk_user_${process.pid}`;
  const verificationId = `sdk_vkyc_${process.pid}`;
  const securityQuestions = [
    { order: 1, question: 'What is your date of birth?', answer: '17-05-1990' },
    { order: 2, question: 'What is your father\u2019s name?', answer: 'Ramesh Kumar' },
  ];

  let user; // the body of POST /user
  let initiated; // the body of POST /vkyc

  it('printed the bootstrap test credentials on first start, and not into the log', () => {
    assert.match(apiUrl, /^http:\/\/127\.0\.0\.1:\d+\/verification$/);
    assert.match(clientId, /^CF[0-9A-F]+$/);
    assert.match(clientSecret, /^cfsk_ma_test_[0-9a-f]+$/);
    assert.ok(!server.stderr().includes(clientSecret), 'the secret must not be logged to stderr');
  });

  it('creates a user', async () => {
    const res = await Cashfree.VrsCreateUser(VER, {
      user_id: userId,
      phone,
      name: 'Suresh Kumar',
      email: 'suresh@example.com',
      address: '12, 3rd Cross, MG Road, Bengaluru 560001',
    });
    assert.equal(res.status, 200);
    user = res.data;
    assert.ok(Number.isSafeInteger(user.user_reference_id) && user.user_reference_id > 0,
      `user_reference_id must be a positive integer, got ${JSON.stringify(user.user_reference_id)}`);
    assert.deepEqual(user, {
      user_id: userId,
      user_reference_id: user.user_reference_id,
      phone,
      email: 'suresh@example.com',
      name: 'Suresh Kumar',
      address: '12, 3rd Cross, MG Road, Bengaluru 560001',
    });
  });

  it('gets the user by user_id and by user_reference_id', async () => {
    const byId = await Cashfree.VrsGetUser(VER, undefined, undefined, userId);
    assert.equal(byId.status, 200);
    assert.deepEqual(byId.data, user);

    const byRef = await Cashfree.VrsGetUser(VER, undefined, String(user.user_reference_id), undefined);
    assert.equal(byRef.status, 200);
    assert.deepEqual(byRef.data, user);
  });

  it('updates the user name and email', async () => {
    const res = await Cashfree.VrsUpdateUser(VER, {
      user_id: userId,
      name: 'Suresh K',
      email: 'suresh.k@example.com',
    });
    assert.equal(res.status, 200);
    user = { ...user, name: 'Suresh K', email: 'suresh.k@example.com' };
    assert.deepEqual(res.data, user);

    const again = await Cashfree.VrsGetUser(VER, undefined, undefined, userId);
    assert.deepEqual(again.data, user);
  });

  it('initiates a Video KYC request', async () => {
    const before = Date.now();
    const res = await Cashfree.VrsInitiateVKYC(VER, {
      verification_id: verificationId,
      user_id: userId,
      notification_types: ['sms', 'email'],
      aadhaar_details: AADHAAR_DETAILS,
      security_questions: securityQuestions,
    });
    const afterCall = Date.now();
    assert.equal(res.status, 200);
    initiated = res.data;

    assert.deepEqual(Object.keys(initiated).sort(), [
      'aadhaar_details', 'link_expiry', 'reference_id', 'security_questions', 'status',
      'sub_status', 'user_id', 'user_reference_id', 'verification_id', 'vkyc_link',
    ]);
    assert.ok(Number.isSafeInteger(initiated.reference_id) && initiated.reference_id > 0,
      `reference_id must be a positive integer, got ${JSON.stringify(initiated.reference_id)}`);
    assert.equal(initiated.verification_id, verificationId);
    assert.equal(initiated.status, 'RECEIVED');
    assert.equal(initiated.sub_status, 'LINK_GENERATED');
    assert.match(initiated.vkyc_link, /^http:\/\/127\.0\.0\.1:\d+\/v\/[0-9a-f]{40}$/);
    assert.equal(new URL(initiated.vkyc_link).origin, new URL(apiUrl).origin);
    assert.equal(initiated.user_reference_id, user.user_reference_id);
    assert.equal(initiated.user_id, userId);
    assert.deepEqual(initiated.aadhaar_details, AADHAAR_DETAILS);
    assert.deepEqual(initiated.security_questions, securityQuestions);

    // 72 hours from now, in the hosted API's form.
    assert.match(initiated.link_expiry, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    const expiry = Date.parse(initiated.link_expiry);
    const hours72 = 72 * 3600 * 1000;
    assert.ok(expiry >= before + hours72 - 2000 && expiry <= afterCall + hours72 + 2000,
      `link_expiry ${initiated.link_expiry} is not 72 h after ${new Date(before).toISOString()}`);
  });

  it('gets the status by verification_id and by reference_id, as seed 000 shows it', async () => {
    const expected = {
      verification_id: verificationId,
      reference_id: initiated.reference_id,
      user_reference_id: user.user_reference_id,
      user_id: userId,
      status: 'RECEIVED',
      sub_status: 'LINK_GENERATED',
      vkyc_link: initiated.vkyc_link,
      link_expiry: initiated.link_expiry,
      recording_link: null,
      meeting_schedule: null,
      auditor_remarks: null,
      agent_remarks: null,
    };
    const byVid = await Cashfree.VrsVkycGetStatus(VER, undefined, verificationId, undefined);
    assert.equal(byVid.status, 200);
    assert.deepEqual(Object.keys(byVid.data), Object.keys(expected));
    assert.deepEqual(byVid.data, expected);

    const byRef = await Cashfree.VrsVkycGetStatus(VER, undefined, undefined, String(initiated.reference_id));
    assert.equal(byRef.status, 200);
    assert.deepEqual(Object.keys(byRef.data), Object.keys(expected));
    assert.deepEqual(byRef.data, expected);
  });

  it('generates an access token for the embeddable journey', async () => {
    const before = Date.now();
    const res = await Cashfree.VrsVkycGenerateAuthToken(VER, {
      app_id: clientId,
      product: 'VKYC',
      metadata: { vkyc_request_id: String(initiated.reference_id) },
      authenticated_user: { identifier_type: 'phone', identifier_value: phone },
    });
    assert.equal(res.status, 200);
    assert.deepEqual(Object.keys(res.data).sort(), ['access_token', 'expiry']);
    assert.equal(typeof res.data.access_token, 'string');
    assert.ok(res.data.access_token.length >= 32, 'access_token is too short');
    assert.equal(typeof res.data.expiry, 'string');
    const expiry = Date.parse(res.data.expiry);
    assert.ok(Number.isFinite(expiry), `expiry ${res.data.expiry} is not a date`);
    assert.ok(expiry > before, `expiry ${res.data.expiry} is not in the future`);
    assert.ok(expiry <= Date.parse(initiated.link_expiry), 'the token outlives the link');
  });

  describe('GET /vkyc errors of seed 000', () => {
    it('no id: 400 verification_id_missing', async () => {
      await expectApiError(
        () => Cashfree.VrsVkycGetStatus(VER, undefined, undefined, undefined),
        400, validation('verification_id_missing', 'verification_id is missing in the request.'));
    });

    it('special characters: 400 verification_id_value_invalid', async () => {
      await expectApiError(
        () => Cashfree.VrsVkycGetStatus(VER, undefined, 'bad id!#', undefined),
        400, validation('verification_id_value_invalid',
          'verification_id can include only alphanum, dot, hyphen and underscores.'));
    });

    it('too long: 400 verification_id_value_invalid', async () => {
      await expectApiError(
        () => Cashfree.VrsVkycGetStatus(VER, undefined, 'a'.repeat(51), undefined),
        400, validation('verification_id_value_invalid', 'verification ID entered is invalid.'));
    });

    it('empty verification_id: 400 verification_id_value_missing', async () => {
      await expectApiError(
        () => Cashfree.VrsVkycGetStatus(VER, undefined, '', undefined),
        400, validation('verification_id_value_missing', 'verification_id is missing in the request.'));
    });

    it('invalid reference_id: 400 reference_id_value_invalid', async () => {
      await expectApiError(
        () => Cashfree.VrsVkycGetStatus(VER, undefined, undefined, 'abc'),
        400, validation('reference_id_value_invalid', 'reference ID value is invalid.'));
    });

    it('empty reference_id: 400 reference_id_value_missing', async () => {
      await expectApiError(
        () => Cashfree.VrsVkycGetStatus(VER, undefined, undefined, ''),
        400, validation('reference_id_value_missing', 'reference_id is missing in the request.'));
    });

    it('unknown verification_id: 404 verification_id_not_found', async () => {
      await expectApiError(
        () => Cashfree.VrsVkycGetStatus(VER, undefined, 'no_such_verification', undefined),
        404, validation('verification_id_not_found', 'verification_id does not exist.'));
    });

    it('unknown reference_id: 404 reference_id_not_found', async () => {
      await expectApiError(
        () => Cashfree.VrsVkycGetStatus(VER, undefined, undefined, String(initiated.reference_id + 1_000_000)),
        404, validation('reference_id_not_found', 'reference_id does not exist.'));
    });

    it('wrong secret: 401 authentication_failed', async () => {
      const saved = Cashfree.XClientSecret;
      Cashfree.XClientSecret = `cfsk_ma_test_${'0'.repeat(64)}`;
      try {
        await expectApiError(
          () => Cashfree.VrsVkycGetStatus(VER, undefined, verificationId, undefined),
          401, {
            type: 'authentication_error',
            code: 'authentication_failed',
            message: 'Invalid clientId and clientSecret combination',
          });
      } finally {
        Cashfree.XClientSecret = saved;
      }
    });

    it('no client id: 400 x-client-id_missing', async () => {
      const saved = Cashfree.XClientId;
      Cashfree.XClientId = null;
      try {
        await expectApiError(
          () => Cashfree.VrsVkycGetStatus(VER, undefined, verificationId, undefined),
          400, validation('x-client-id_missing', 'x-client-id is missing in the request.'));
      } finally {
        Cashfree.XClientId = saved;
      }
    });

    it('the restored credentials work again', async () => {
      const res = await Cashfree.VrsVkycGetStatus(VER, undefined, verificationId, undefined);
      assert.equal(res.status, 200);
    });
  });

  describe('POST /vkyc errors', () => {
    it('a repeated verification_id: 409 verification_id_already_exists', async () => {
      await expectApiError(
        () => Cashfree.VrsInitiateVKYC(VER, { verification_id: verificationId, user_id: userId }),
        409, validation('verification_id_already_exists', 'verification id already exists'));
    });

    it('an unknown user_id: 404 user_id_not_found', async () => {
      await expectApiError(
        () => Cashfree.VrsInitiateVKYC(VER, { verification_id: `${verificationId}_2`, user_id: 'no_such_user' }),
        404, validation('user_id_not_found', 'user_id does not exist.'));
      // Nothing was created under that verification_id.
      await expectApiError(
        () => Cashfree.VrsVkycGetStatus(VER, undefined, `${verificationId}_2`, undefined),
        404, validation('verification_id_not_found', 'verification_id does not exist.'));
    });
  });

  // Last: stops the first server. The secret is shown once, and what it created lasts.
  it('a second start on the same data directory does not print a client secret', async () => {
    await stopServer(server);
    server = await startServer(bin, dataDir, { apiUrl: MERCHANT_API_LINE });
    Cashfree.basePath = server.values.apiUrl;

    const res = await Cashfree.VrsVkycGetStatus(VER, undefined, verificationId, undefined);
    assert.equal(res.status, 200, 'the bootstrap credentials and the request survive a restart');
    assert.equal(res.data.reference_id, initiated.reference_id);

    // Read everything the second server prints, up to its exit.
    await stopServer(server);
    const out = server.stdout();
    assert.match(out, MERCHANT_API_LINE);
    assert.doesNotMatch(out, /client secret/i, `second start printed:\n${out}`);
    assert.ok(!out.includes(clientSecret), 'the bootstrap secret was printed again');
    assert.ok(!server.stderr().includes(clientSecret), 'the bootstrap secret was logged');
  });
});
