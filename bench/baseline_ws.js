'use strict';
// The bare Node.js `ws` baseline: the same rooms and protocol as bench/baseline.py (join by URL,
// each frame relayed to the room as {"seq":N,"from":user,...frame}, a long-poll pull by cursor),
// on the library hack.chat runs on, so the benchmark compares Sealchat with what the field uses.
// No validation, authentication or limits, as in the Tornado baseline.
// Run: node bench/baseline_ws.js --port 0   (prints the same start-up line as the other servers).

const http = require('http');
const { WebSocketServer, WebSocket } = require('ws');

const KEEP = 1000;
const POLL_WAIT_MS = 25000;
const PING_INTERVAL_MS = 10000;
const MAX_BODY = 1 << 20;
const TEXT = { binary: false };

class Room {
  constructor() {
    this.seq = 0;
    this.sockets = new Set();
    this.events = [];  // [seq, Buffer], the newest KEEP
    this.waiters = [];
  }

  publish(user, frame) {
    this.seq += 1;
    // Built once per event; ws frames the same Buffer for every member.
    const raw = Buffer.concat([Buffer.from(`{"seq":${this.seq},"from":${JSON.stringify(user)},`), frame.subarray(1)]);
    this.events.push([this.seq, raw]);
    if (this.events.length > KEEP) this.events.shift();
    for (const sock of this.sockets) {
      if (sock.readyState === WebSocket.OPEN) sock.send(raw, TEXT);
    }
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  since(cursor) {
    return this.events.filter((e) => e[0] > cursor).map((e) => e[1]);
  }
}

const rooms = new Map();

function room(name) {
  let r = rooms.get(name);
  if (r === undefined) {
    r = new Room();
    rooms.set(name, r);
  }
  return r;
}

function readBody(req, done) {
  const parts = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY) {
      req.destroy();
      return;
    }
    parts.push(chunk);
  });
  req.on('end', () => done(Buffer.concat(parts)));
}

function reply(res, body) {
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length });
  res.end(body);
}

function onRequest(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const q = url.searchParams;
  if (req.method === 'POST' && url.pathname === '/send') {
    readBody(req, (body) => {
      room(q.get('room')).publish(q.get('user'), body);
      reply(res, Buffer.from('{"ok":true}'));
    });
  } else if (req.method === 'POST' && url.pathname === '/poll') {
    readBody(req, () => {
      const r = room(q.get('room'));
      const cursor = parseInt(q.get('cursor'), 10);
      const answer = () => {
        const events = r.since(cursor);
        reply(res, Buffer.concat([Buffer.from(`{"cursor":${r.seq},"events":[`), ...join(events),
          Buffer.from(']}')]));
      };
      if (r.seq > cursor) {
        answer();
        return;
      }
      let timer = null;
      const wake = () => {
        clearTimeout(timer);
        if (!res.writableEnded && !res.destroyed) answer();
      };
      timer = setTimeout(() => {
        r.waiters = r.waiters.filter((w) => w !== wake);
        wake();
      }, POLL_WAIT_MS);
      r.waiters.push(wake);
    });
  } else {
    res.writeHead(404);
    res.end();
  }
}

function join(buffers) {
  const out = [];
  const comma = Buffer.from(',');
  buffers.forEach((b, i) => {
    if (i) out.push(comma);
    out.push(b);
  });
  return out;
}

function main() {
  const args = process.argv.slice(2);
  const opt = (name, fallback) => {
    const i = args.indexOf(name);
    return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
  };
  const host = opt('--host', '127.0.0.1');
  const port = parseInt(opt('--port', '0'), 10);

  const server = http.createServer({ maxHeaderSize: 16384 }, onRequest);
  server.keepAliveTimeout = 0;  // as Tornado's: a keep-alive connection may stay idle
  const wss = new WebSocketServer({ server, path: '/ws', maxPayload: MAX_BODY, perMessageDeflate: false });
  wss.on('connection', (sock, req) => {
    const q = new URL(req.url, 'http://localhost').searchParams;
    const r = room(q.get('room'));
    const user = q.get('user');
    sock.alive = true;
    r.sockets.add(sock);
    sock.send(Buffer.from(`{"type":"welcome","cursor":${r.seq}}`), TEXT);
    sock.on('message', (data) => r.publish(user, data));
    sock.on('pong', () => { sock.alive = true; });
    sock.on('close', () => r.sockets.delete(sock));
    sock.on('error', () => {});
  });
  // Pings every 10 s, as the Tornado baseline's websocket_ping_interval; a member that did not
  // answer the last one is dropped.
  setInterval(() => {
    for (const sock of wss.clients) {
      if (!sock.alive) {
        sock.terminate();
        continue;
      }
      sock.alive = false;
      sock.ping();
    }
  }, PING_INTERVAL_MS).unref();

  server.listen(port, host, () => {
    console.log(`Baseline ws listening on http://${host}:${server.address().port} (TLS off)`);
  });
  // A clean exit on a stop signal lets `node --cpu-prof` write its profile.
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
}

main();
