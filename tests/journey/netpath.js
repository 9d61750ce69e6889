'use strict';
// A user-space network path for the browser tests, to place between a browser and the
// media relay (the kernel here has no netem): loss, delay, jitter, outages.
//
//   const path = await udpPath({ target: { host: '127.0.0.1', port: relayPort } });
//   // the browser sends to 127.0.0.1:path.port; the relay sees the path's own sockets
//   path.set({ loss: 0.05, delayMs: 150, jitterMs: 0 });
//   await path.pause(2000);          // down for 2 s, then up again
//   path.stats();                    // forwarded and dropped, per direction
//   await path.close();
//
// udpPath forwards each datagram from a client (an address:port that sends to `port`)
// through an upstream socket of its own, so the target sees one distinct source per client
// and its replies go back to that client. Replies are taken from whatever address sends
// to that upstream socket (like a NAT with endpoint-independent filtering).
//
// tcpPath pipes each accepted connection to a new connection to the target, byte for
// byte and in order (so RFC 4571 framing passes through untouched); half-closes pass
// through too.
//
// Conditions apply to each direction alike:
// - loss (0..1, UDP only): the chance that a datagram is dropped;
// - delayMs: how long each datagram (UDP) or chunk (TCP) is held before it goes on;
// - jitterMs: a delay drawn evenly from delayMs ± jitterMs (at least 0). Only then may
//   UDP datagrams overtake each other; TCP bytes stay in order whatever the jitter, and
//   without jitter nothing is reordered, even when the delay is changed mid-stream.
// While down, UDP datagrams are dropped in both directions (those on their way too);
// TCP data is held (the sockets stop reading) until up, and new connections wait before
// reaching the target; `down({ cut: true })` instead resets every TCP connection, and
// resets new ones until up.

const dgram = require('node:dgram');
const net = require('node:net');
const { performance } = require('node:perf_hooks');

const END = Symbol('end of stream');

function counters() {
  return { forwarded: 0, bytes: 0, dropped: 0, droppedBytes: 0 };
}

/** The path's conditions and up/down state, and the controls both kinds share. */
class Link {
  constructor() {
    this.loss = 0;
    this.delayMs = 0;
    this.jitterMs = 0;
    this.isDown = false;
    this.cut = false;
    this.pauseTimer = null;
    this.listeners = new Set(); // called on each change of state
  }

  set(options = {}) {
    for (const key of ['loss', 'delayMs', 'jitterMs']) {
      if (options[key] === undefined) continue;
      const value = options[key];
      if (typeof value !== 'number' || !(value >= 0) || (key === 'loss' && value > 1)) {
        throw new RangeError(`netpath: bad ${key}: ${value}`);
      }
      this[key] = value;
    }
  }

  delay() {
    if (!this.jitterMs) return this.delayMs;
    return Math.max(0, this.delayMs + (Math.random() * 2 - 1) * this.jitterMs);
  }

  down({ cut = false } = {}) {
    clearTimeout(this.pauseTimer);
    this.isDown = true;
    this.cut = cut;
    this.notify();
  }

  up() {
    clearTimeout(this.pauseTimer);
    this.isDown = false;
    this.cut = false;
    this.notify();
  }

  /** Down for `ms`, then up; resolves when up again. */
  pause(ms, options) {
    this.down(options);
    return new Promise((resolve) => {
      this.pauseTimer = setTimeout(() => {
        this.up();
        resolve();
      }, ms);
    });
  }

  notify() {
    for (const listener of this.listeners) listener();
  }

  controls() {
    return {
      set: (options) => this.set(options),
      down: (options) => this.down(options),
      up: () => this.up(),
      pause: (ms, options) => this.pause(ms, options),
      isDown: () => this.isDown,
    };
  }
}

/**
 * One direction of one flow: items leave through `deliver` after the link's delay. In
 * order (each no earlier than the one before it) unless `mayReorder` and jitter is on.
 * A held lane keeps its items until released.
 */
class Lane {
  constructor(link, deliver, { mayReorder = false } = {}) {
    this.link = link;
    this.deliver = deliver;
    this.mayReorder = mayReorder;
    this.queue = [];
    this.lastDue = 0;
    this.timer = null;
    this.loose = new Set(); // timers of items sent out of order
    this.held = false;
  }

  push(item) {
    const delay = this.link.delay();
    if (this.mayReorder && this.link.jitterMs > 0) {
      const timer = setTimeout(() => {
        this.loose.delete(timer);
        this.deliver(item);
      }, delay);
      this.loose.add(timer);
      return;
    }
    const due = Math.max(performance.now() + delay, this.lastDue);
    this.lastDue = due;
    this.queue.push({ item, due });
    this.pump();
  }

  pump() {
    if (this.timer) return;
    while (this.queue.length && !this.held) {
      const wait = this.queue[0].due - performance.now();
      if (wait > 0) {
        this.timer = setTimeout(() => {
          this.timer = null;
          this.pump();
        }, wait);
        return;
      }
      this.deliver(this.queue.shift().item);
    }
  }

  hold() {
    this.held = true;
    clearTimeout(this.timer);
    this.timer = null;
  }

  release() {
    this.held = false;
    this.pump();
  }

  /** Stops the lane; returns the items it still had. */
  clear() {
    clearTimeout(this.timer);
    this.timer = null;
    for (const timer of this.loose) clearTimeout(timer);
    this.loose.clear();
    const left = this.queue.map((q) => q.item);
    this.queue = [];
    return left;
  }
}

function listen(server, port, host) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      resolve();
    };
    if (server instanceof net.Server) server.listen(port, host, done);
    else server.bind(port, host, done);
  });
}

/**
 * A UDP path to `target` ({host, port}); listens on `host`:`port` (127.0.0.1, any free
 * port by default). Resolves to `{ port, host, set, down, up, pause, isDown, stats, close }`.
 */
async function udpPath({ target, host = '127.0.0.1', port = 0 } = {}) {
  if (!target || !target.port) throw new TypeError('udpPath: target {host, port} is required');
  const targetHost = target.host || '127.0.0.1';
  const type = (h) => (net.isIPv6(h) ? 'udp6' : 'udp4');
  const link = new Link();
  const counts = { toTarget: counters(), toClient: counters() };
  const clients = new Map(); // "address|port" -> { upstream, lanes }
  let closed = false;

  // A datagram enters a lane unless lost or the link is down, and leaves it unless the
  // link went down in the meantime.
  const offer = (lane, count, msg) => {
    if (link.isDown || (link.loss > 0 && Math.random() < link.loss)) {
      count.dropped++;
      count.droppedBytes += msg.length;
    } else {
      lane.push(msg);
    }
  };
  const sender = (count, send) => (msg) => {
    if (closed) return;
    if (link.isDown) {
      count.dropped++;
      count.droppedBytes += msg.length;
      return;
    }
    count.forwarded++;
    count.bytes += msg.length;
    send(msg);
  };

  const front = dgram.createSocket(type(host));
  front.on('error', () => {});
  front.on('message', (msg, rinfo) => {
    const key = `${rinfo.address}|${rinfo.port}`;
    let client = clients.get(key);
    if (!client) {
      const upstream = dgram.createSocket(type(targetHost));
      upstream.on('error', () => {});
      // On loopback, the upstream socket stays there too.
      upstream.bind(0, /^127\.|^::1$/.test(targetHost) ? targetHost : undefined);
      client = {
        upstream,
        toTarget: new Lane(link, sender(counts.toTarget, (m) => upstream.send(m, target.port, targetHost)), { mayReorder: true }),
        toClient: new Lane(link, sender(counts.toClient, (m) => front.send(m, rinfo.port, rinfo.address)), { mayReorder: true }),
      };
      upstream.on('message', (reply) => offer(client.toClient, counts.toClient, reply));
      clients.set(key, client);
    }
    offer(client.toTarget, counts.toTarget, msg);
  });
  await listen(front, port, host);

  return {
    host,
    port: front.address().port,
    ...link.controls(),
    /** `{ toTarget, toClient }`, each `{ forwarded, bytes, dropped, droppedBytes }` in datagrams and bytes, and `clients`. */
    stats: () => ({ toTarget: { ...counts.toTarget }, toClient: { ...counts.toClient }, clients: clients.size }),
    /** The upstream ports, one per client, as the target sees them. */
    upstreamPorts: () => [...clients.values()].map((c) => c.upstream.address().port),
    close: async () => {
      if (closed) return;
      closed = true;
      clearTimeout(link.pauseTimer);
      const closing = [new Promise((r) => front.close(r))];
      for (const c of clients.values()) {
        c.toTarget.clear();
        c.toClient.clear();
        closing.push(new Promise((r) => c.upstream.close(r)));
      }
      await Promise.all(closing);
    },
  };
}

/**
 * A TCP path to `target` ({host, port}); listens on `host`:`port` (127.0.0.1, any free
 * port by default). Resolves to `{ port, host, set, down, up, pause, isDown, stats, close }`.
 */
async function tcpPath({ target, host = '127.0.0.1', port = 0 } = {}) {
  if (!target || !target.port) throw new TypeError('tcpPath: target {host, port} is required');
  const targetHost = target.host || '127.0.0.1';
  const link = new Link();
  const counts = { toTarget: counters(), toClient: counters() };
  const conns = { open: 0, total: 0, cut: 0 };
  const live = new Set(); // each: { client, upstream, toTarget, toClient, flow, start, cut }

  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    conns.total++;
    if (link.isDown && link.cut) {
      conns.cut++;
      client.resetAndDestroy();
      return;
    }
    conns.open++;
    client.setNoDelay(true);
    const conn = { client, upstream: null };
    live.add(conn);

    // Each direction: chunks go through a lane, in order; END carries a half-close.
    const lane = (count, to) => new Lane(link, (chunk) => {
      const dst = to();
      if (chunk === END) {
        dst.end();
        return;
      }
      count.forwarded++;
      count.bytes += chunk.length;
      if (!dst.write(chunk)) dst.once('drain', conn.flow);
    });
    conn.toTarget = lane(counts.toTarget, () => conn.upstream);
    conn.toClient = lane(counts.toClient, () => client);

    // A socket reads while the link is up and the socket it feeds is not backed up.
    conn.flow = () => {
      const { upstream } = conn;
      if (!upstream || client.destroyed || upstream.destroyed) return;
      for (const [src, dst, l] of [[client, upstream, conn.toTarget], [upstream, client, conn.toClient]]) {
        if (link.isDown) {
          src.pause();
          l.hold();
        } else {
          if (!dst.writableNeedDrain) src.resume();
          l.release();
        }
      }
    };

    conn.start = () => {
      if (conn.upstream || link.isDown) return;
      const upstream = net.connect({ host: targetHost, port: target.port, allowHalfOpen: true });
      conn.upstream = upstream;
      upstream.setNoDelay(true);
      upstream.on('data', (chunk) => conn.toClient.push(chunk));
      upstream.on('end', () => conn.toClient.push(END));
      upstream.on('error', () => {});
      upstream.on('close', (hadError) => {
        if (hadError && !client.destroyed) client.resetAndDestroy();
        finish();
      });
      conn.flow();
    };

    const drop = (l, count) => {
      for (const chunk of l.clear()) {
        if (chunk === END) continue;
        count.dropped++;
        count.droppedBytes += chunk.length;
      }
    };
    conn.cut = () => {
      conns.cut++;
      drop(conn.toTarget, counts.toTarget);
      drop(conn.toClient, counts.toClient);
      if (!client.destroyed) client.resetAndDestroy();
      if (conn.upstream && !conn.upstream.destroyed) conn.upstream.resetAndDestroy();
    };

    let finished = false;
    const finish = () => {
      // Done once both sockets are closed (or the client is, before any upstream).
      if (finished || !client.destroyed || (conn.upstream && !conn.upstream.destroyed)) return;
      finished = true;
      conn.toTarget.clear();
      conn.toClient.clear();
      conns.open--;
      live.delete(conn);
    };

    client.on('data', (chunk) => conn.toTarget.push(chunk));
    client.on('end', () => conn.toTarget.push(END));
    client.on('error', () => {});
    client.on('close', (hadError) => {
      if (hadError && conn.upstream && !conn.upstream.destroyed) conn.upstream.resetAndDestroy();
      finish();
    });
    conn.start();
  });

  link.listeners.add(() => {
    for (const conn of [...live]) {
      if (link.isDown && link.cut) conn.cut();
      else if (!conn.upstream) conn.start();
      else conn.flow();
    }
  });
  server.on('error', () => {});
  await listen(server, port, host);

  return {
    host,
    port: server.address().port,
    ...link.controls(),
    /**
     * `{ toTarget, toClient }`, each `{ forwarded, bytes, dropped, droppedBytes }` in
     * chunks and bytes (dropped: held data lost to a cut), and `connections`:
     * `{ open, total, cut }`.
     */
    stats: () => ({ toTarget: { ...counts.toTarget }, toClient: { ...counts.toClient }, connections: { ...conns } }),
    close: async () => {
      clearTimeout(link.pauseTimer);
      const closing = new Promise((r) => server.close(r));
      for (const conn of [...live]) {
        conn.toTarget.clear();
        conn.toClient.clear();
        conn.client.destroy();
        if (conn.upstream) conn.upstream.destroy();
      }
      await closing;
    },
  };
}

module.exports = { udpPath, tcpPath };
