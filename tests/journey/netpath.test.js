'use strict';
// The user-space network path (netpath.js) that the media tests put between a browser and
// the relay: forwarding per client, loss, delay without reordering, outages, TCP byte
// order and holding. Echo servers on 127.0.0.1 stand for the relay.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const dgram = require('node:dgram');
const net = require('node:net');
const { performance } = require('node:perf_hooks');
const { udpPath, tcpPath } = require('./netpath.js');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Waits (up to `ms`) for `check()` to be true. */
async function until(check, ms = 2000) {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) return false;
    await sleep(5);
  }
  return true;
}

/**
 * A UDP echo server: sends each datagram back to its source (after 100 ms when it starts
 * with "later"), and remembers the sources it saw.
 */
async function udpEcho() {
  const socket = dgram.createSocket('udp4');
  socket.sources = new Set();
  socket.received = 0;
  socket.on('message', (msg, rinfo) => {
    socket.received++;
    socket.sources.add(rinfo.port);
    const reply = () => socket.send(msg, rinfo.port, rinfo.address);
    if (msg.toString().startsWith('later')) setTimeout(reply, 100);
    else reply();
  });
  await new Promise((r) => socket.bind(0, '127.0.0.1', r));
  return socket;
}

/** A UDP client of `port`: `received` collects the replies as strings, with their times. */
async function udpClient(port) {
  const socket = dgram.createSocket('udp4');
  socket.received = [];
  socket.on('message', (msg) => socket.received.push({ text: msg.toString(), at: performance.now() }));
  await new Promise((r) => socket.bind(0, '127.0.0.1', r));
  socket.say = (text) => socket.send(Buffer.from(text), port, '127.0.0.1');
  return socket;
}

describe('netpath: UDP', () => {
  let echo;
  let path;
  const clients = [];
  const client = async () => {
    const c = await udpClient(path.port);
    clients.push(c);
    return c;
  };

  before(async () => {
    echo = await udpEcho();
    path = await udpPath({ target: { host: '127.0.0.1', port: echo.address().port } });
  });

  after(async () => {
    await path.close();
    echo.close();
    for (const c of clients) c.close();
  });

  it('forwards each client through a source of its own, and replies back to it', async () => {
    const a = await client();
    const b = await client();
    a.say('from a');
    b.say('from b');
    assert.ok(await until(() => a.received.length === 1 && b.received.length === 1));
    assert.equal(a.received[0].text, 'from a');
    assert.equal(b.received[0].text, 'from b');
    assert.equal(echo.sources.size, 2, 'the target sees two distinct sources');
    assert.deepEqual([...echo.sources].sort(), path.upstreamPorts().sort());
    assert.ok(!echo.sources.has(a.address().port) && !echo.sources.has(b.address().port));
    const s = path.stats();
    assert.equal(s.clients, 2);
    assert.deepEqual(s.toTarget, { forwarded: 2, bytes: 12, dropped: 0, droppedBytes: 0 });
    assert.deepEqual(s.toClient, { forwarded: 2, bytes: 12, dropped: 0, droppedBytes: 0 });
  });

  it('drops about the share of datagrams asked for, in each direction', async () => {
    const c = await client();
    const before = path.stats();
    const since = (s, dir, key) => s[dir][key] - before[dir][key];
    const echoed = echo.received;
    path.set({ loss: 0.05 });
    const total = 2000;
    // Paced by the path's own count, so that no socket buffer overflows: every drop is
    // the path's.
    for (let i = 0; i < total; i += 25) {
      for (let j = i; j < i + 25; j++) c.say(`n${j}`);
      await until(() => since(path.stats(), 'toTarget', 'forwarded') + since(path.stats(), 'toTarget', 'dropped') === i + 25, 1000);
    }
    let s;
    const settled = () => {
      s = path.stats();
      const sent = since(s, 'toTarget', 'forwarded');
      return sent + since(s, 'toTarget', 'dropped') === total
        && since(s, 'toClient', 'forwarded') + since(s, 'toClient', 'dropped') === sent;
    };
    assert.ok(await until(settled), 'every datagram went through the path both ways');
    path.set({ loss: 0 });
    const sent = since(s, 'toTarget', 'forwarded');
    assert.equal(echo.received - echoed, sent, 'the target got every datagram the path forwarded');
    assert.ok(await until(() => c.received.length === since(s, 'toClient', 'forwarded')), 'and the client every reply');
    for (const [n, dropped] of [[total, since(s, 'toTarget', 'dropped')], [sent, since(s, 'toClient', 'dropped')]]) {
      const rate = dropped / n;
      assert.ok(rate > 0.025 && rate < 0.085, `drop rate ${rate} (${dropped} of ${n})`);
    }
  });

  it('delays each way, so a round trip takes both delays, in order', async () => {
    const c = await client();
    path.set({ delayMs: 150 });
    const sentAt = [];
    for (let i = 0; i < 20; i++) {
      sentAt.push(performance.now());
      c.say(`d${i}`);
      await sleep(2);
    }
    assert.ok(await until(() => c.received.length === 20));
    path.set({ delayMs: 0 });
    assert.deepEqual(c.received.map((r) => r.text), Array.from({ length: 20 }, (_, i) => `d${i}`));
    for (let i = 0; i < 20; i++) {
      const rtt = c.received[i].at - sentAt[i];
      assert.ok(rtt >= 299 && rtt < 1000, `round trip ${i}: ${rtt.toFixed(1)} ms`);
    }
  });

  it('does not reorder when the delay drops mid-stream', async () => {
    const c = await client();
    path.set({ delayMs: 150 });
    for (let i = 0; i < 10; i++) c.say(`e${i}`);
    await sleep(20); // they are on their way
    path.set({ delayMs: 0 }); // these must still wait behind them
    for (let i = 10; i < 20; i++) c.say(`e${i}`);
    assert.ok(await until(() => c.received.length === 20));
    assert.deepEqual(c.received.map((r) => r.text), Array.from({ length: 20 }, (_, i) => `e${i}`));
    assert.ok(c.received[19].at - c.received[0].at < 50, 'the later ones came right behind');
  });

  it('drops both ways while down, and forwards again once up', async () => {
    const c = await client();
    c.say('first');
    assert.ok(await until(() => c.received.length === 1));

    // A reply on its way back is lost when the path goes down before it arrives.
    let s = path.stats();
    c.say('later');
    assert.ok(await until(() => path.stats().toTarget.forwarded === s.toTarget.forwarded + 1));
    path.down();
    for (let i = 0; i < 10; i++) c.say(`lost${i}`);
    await sleep(200);
    assert.equal(c.received.length, 1);
    const d = path.stats();
    assert.equal(d.toTarget.dropped - s.toTarget.dropped, 10);
    assert.equal(d.toClient.dropped - s.toClient.dropped, 1, 'the late reply');
    assert.equal(path.isDown(), true);

    path.up();
    c.say('again');
    assert.ok(await until(() => c.received.length === 2));
    assert.equal(c.received[1].text, 'again');

    // pause(): down for a while, then up by itself.
    s = path.stats();
    const paused = path.pause(100);
    c.say('paused');
    await paused;
    c.say('resumed');
    assert.ok(await until(() => c.received.length === 3));
    assert.equal(c.received[2].text, 'resumed');
    assert.equal(path.stats().toTarget.dropped - s.toTarget.dropped, 1);
  });
});

/** A TCP echo server: writes back what it reads, and ends when its client ends. */
async function tcpEcho() {
  const server = net.createServer((socket) => {
    server.sources.add(socket.remotePort);
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  server.sources = new Set();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

/** A TCP client of `port`: `data()` is everything read so far; `gone` settles on close. */
async function tcpClient(port) {
  const socket = net.connect(port, '127.0.0.1');
  const chunks = [];
  socket.on('data', (c) => chunks.push(c));
  socket.gone = new Promise((r) => socket.on('close', r));
  socket.on('error', (e) => (socket.error = e));
  socket.data = () => Buffer.concat(chunks);
  await new Promise((r, j) => socket.once('connect', r).once('error', j));
  return socket;
}

/** `n` bytes of a pattern that any reordering or loss would break. */
function pattern(n, seed) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed + (i >> 8)) & 0xff;
  return b;
}

describe('netpath: TCP', () => {
  let echo;
  let path;

  before(async () => {
    echo = await tcpEcho();
    path = await tcpPath({ target: { host: '127.0.0.1', port: echo.address().port } });
  });

  after(async () => {
    await path.close();
    echo.close();
  });

  it('keeps byte order through delay and jitter, and round trips take both delays', async () => {
    const c = await tcpClient(path.port);
    path.set({ delayMs: 40, jitterMs: 30 });
    const sent = [];
    for (let i = 0; i < 100; i++) {
      const chunk = pattern(1000 + i * 37, i);
      sent.push(chunk);
      c.write(chunk);
      if (i % 10 === 9) await sleep(3);
    }
    const all = Buffer.concat(sent);
    assert.ok(await until(() => c.data().length === all.length, 5000), `${c.data().length} of ${all.length}`);
    assert.ok(c.data().equals(all), 'the bytes came back in order');

    path.set({ delayMs: 150, jitterMs: 0 });
    const at = performance.now();
    c.write('ping');
    assert.ok(await until(() => c.data().length === all.length + 4));
    const rtt = performance.now() - at;
    assert.ok(rtt >= 299 && rtt < 1000, `round trip ${rtt.toFixed(1)} ms`);
    path.set({ delayMs: 0 });

    // A half-close passes through after the data.
    c.end();
    await c.gone;
    assert.equal(c.error, undefined);
    assert.ok(await until(() => path.stats().connections.open === 0));
  });

  it('holds data while down and delivers it in order once up', async () => {
    const c = await tcpClient(path.port);
    c.write('before;');
    assert.ok(await until(() => c.data().toString() === 'before;'));
    path.down();
    const held = pattern(200_000, 7);
    c.write(held);
    await sleep(200);
    assert.equal(c.data().toString(), 'before;', 'nothing comes through while down');
    // A connection opened while down waits too.
    const d = await tcpClient(path.port);
    d.write('new while down');
    await sleep(50);
    assert.equal(d.data().length, 0);

    path.up();
    assert.ok(await until(() => c.data().length === 7 + held.length && d.data().length === 14));
    assert.ok(c.data().subarray(7).equals(held));
    assert.equal(d.data().toString(), 'new while down');
    assert.equal(echo.sources.size >= 2, true);
    c.destroy();
    d.destroy();
  });

  it('cuts the connections on down({ cut: true }), and refuses new ones until up', async () => {
    const c = await tcpClient(path.port);
    c.write('x');
    assert.ok(await until(() => c.data().length === 1));
    path.down({ cut: true });
    await c.gone;
    assert.equal(c.error && c.error.code, 'ECONNRESET');
    const refused = net.connect(path.port, '127.0.0.1');
    const err = await new Promise((r) => refused.on('error', r).on('close', () => r(null)));
    assert.ok(err === null || err.code === 'ECONNRESET', String(err));
    path.up();
    const again = await tcpClient(path.port);
    again.write('y');
    assert.ok(await until(() => again.data().toString() === 'y'));
    again.destroy();
    assert.ok(path.stats().connections.cut >= 2);
  });
});
