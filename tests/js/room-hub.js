'use strict';
// A stand-in for the server's room relay, for tests/js/room.test.js and epochs.test.js: it numbers
// room events, delivers each grant to its addressee only, keeps every member's latest
// announcement for newcomers' welcomes, names the host (the member present longest), and relays
// kick, lock and unlock from the host. Members are real Seal.Room objects (room.js, epochs.js and
// the real sealcrypto.js) in one imitated browser, each with its own transport stub.

const path = require('node:path');
const env = require('./browser-env.js');

const { staticDir, makeBrowser, runFile } = env;
// Waits long enough that a loaded machine's crypto never hits them by accident; tests of the
// waits themselves pass shorter ones.
const TIMING = { keyWaitMs: 4000, newcomerWaitMs: 4000, oldKeyMs: 4000 };

// A page with tweetnacl, sealcrypto.js, i18n.js, epochs.js and room.js (what the chat page loads for
// rooms), its crypto engine detected as the page does before it starts. catalog: the page's
// translations (root.SealCatalog, as the server sets it before i18n.js), English without one.
async function page(mode = 'webcrypto', { catalog } = {}) {
  const { ctx, SC } = makeBrowser(mode);
  await env.detect(SC);
  ctx.Seal = { dom: { byId: () => null }, api: { makeError: (code, message) => ({ code, message }) } };
  if (catalog) ctx.SealCatalog = catalog;
  runFile(ctx, path.join(staticDir, 'js', 'i18n.js'));
  runFile(ctx, path.join(staticDir, 'js', 'epochs.js'));
  runFile(ctx, path.join(staticDir, 'js', 'room.js'));
  return { ctx, SC };
}

function later(fn) {
  setTimeout(fn, 0);
}

// Every relay made: closeAll() shuts their rooms after a test, passed or failed (the keyrings'
// timers would otherwise keep node running).
const hubs = [];

function closeAll() {
  for (const hub of hubs.splice(0)) {
    for (const m of hub.opened) m.room.close();
  }
}

class Hub {
  constructor(p, { roomId = 'lobby', timing = TIMING } = {}) {
    hubs.push(this);
    this.opened = new Set();
    this.p = p;
    this.SC = p.SC;
    this.roomId = roomId;
    this.timing = timing;
    this.seq = 0;
    this.members = new Map(); // name -> member, in join order
    this.memberKey = p.SC.b64u(p.SC.randomBytes(32));
    this.locked = false;
    this.log = [];            // every event as published: {ev, to}
    this.dropGrantsTo = new Set();
  }

  get host() {
    const first = this.members.keys().next();
    return first.done ? null : first.value;
  }

  names() {
    return Array.from(this.members.keys());
  }

  // A vault as the join page seals it: member_key and fresh private halves, under resume_key.
  vaultFor(name, resumeKey) {
    const SC = this.SC;
    const state = { member_key: this.memberKey, dh_sk: SC.b64u(SC.randomBytes(32)), sig_seed: SC.b64u(SC.randomBytes(32)),
      epochs: {}, floor: 0, seen: [] };
    return env.call(SC, 'vaultSeal', resumeKey, this.roomId, name, state);
  }

  // Admits name and opens its page: returns the member {name, room, views, sent, vaults, ...}.
  async join(name, { vault, resumeKey, cursor, keepSeq } = {}) {
    const SC = this.SC;
    resumeKey = resumeKey || SC.b64u(SC.randomBytes(32));
    if (!keepSeq) {
      this.publish({ type: 'joined', user: name });
    }
    const m = { name, resumeKey, views: [], sent: [], vaults: [], connected: true, announcement: null, hub: this };
    m.vault = vault || await this.vaultFor(name, resumeKey);
    m.floor = keepSeq ? cursor : this.seq;
    this.members.set(name, m);
    this.open(m, cursor === undefined ? m.floor : cursor);
    return m;
  }

  // (Re)opens the member's page: a new Seal.Room with its stored vault and cursor, then a welcome.
  open(m, cursor) {
    const hub = this;
    this.opened.add(m);
    m.room = new this.p.ctx.Seal.Room({
      roomId: this.roomId, username: m.name, token: 't-' + m.name, cursor, members: [m.name],
      limits: { max_file_bytes: 5242880 }, vault: m.vault, timing: this.timing,
      onView: (v) => m.views.push(v),
      onVault: (v) => { m.vault = v; m.vaults.push(v); },
    });
    m.room.attach({
      send(frame) {
        if (!m.connected) return false;
        const copy = JSON.parse(JSON.stringify(frame));
        m.sent.push(copy);
        later(() => hub.frame(m.name, copy));
        return true;
      },
    });
    m.room.transportState({ mode: 'ws', state: 'connected' });
    this.welcome(m, cursor);
  }

  welcome(m, cursor) {
    const keys = [];
    for (const other of this.members.values()) {
      if (other.announcement) keys.push({ from: other.name, ...other.announcement });
    }
    const ev = { type: 'welcome', room_id: this.roomId, name: this.roomId, you: m.name, members: this.names(),
      host: this.host, locked: this.locked, keys, cursor: this.seq, resume_key: m.resumeKey, limits: {} };
    const replay = this.log.filter((e) => e.ev.seq > Math.max(cursor, m.floor) && (!e.to || e.to === m.name));
    later(() => {
      m.room.receive(ev);
      for (const e of replay) m.room.receive(e.ev);
    });
  }

  publish(ev, to) {
    ev.seq = ++this.seq;
    this.log.push({ ev, to });
    for (const m of this.members.values()) {
      if (to && m.name !== to) continue;
      if (m.connected) later(() => m.room.receive(JSON.parse(JSON.stringify(ev))));
    }
    return ev;
  }

  error(name, code, message, ref) {
    const m = this.members.get(name);
    if (m) later(() => m.room.receive({ type: 'error', code, message, ref }));
  }

  frame(from, f) {
    if (!this.members.has(from)) return;
    if (f.type === 'announce') {
      this.members.get(from).announcement = { a: f.a, t: f.t, s: f.s };
      this.publish({ type: 'announce', from, a: f.a, t: f.t, s: f.s });
    } else if (f.type === 'grant') {
      if (from !== this.host) {
        this.error(from, 'not_host', "Only the room's host can do this.", f.ref);
        return;
      }
      for (const g of f.grants) {
        if (!this.members.has(g.to) || g.to === from || this.dropGrantsTo.has(g.to)) continue;
        this.publish({ type: 'grant', from, to: g.to, g: g.g, n: g.n, c: g.c, s: g.s }, g.to);
      }
    } else if (f.type === 'msg') {
      this.publish({ type: 'msg', from, env: f.env });
    } else if (f.type === 'chunk') {
      this.publish({ type: 'chunk', from, file: f.file, i: f.i, n: f.n, c: f.c, s: f.s });
    } else if (f.type === 'kick') {
      if (from !== this.host) return this.error(from, 'not_host', "Only the room's host can do this.", f.ref);
      if (!this.members.has(f.user) || f.user === from) return this.error(from, 'not_member', 'No such member.', f.ref);
      this.leave(f.user, 'kicked', from);
    } else if (f.type === 'lock' || f.type === 'unlock') {
      if (from !== this.host) return this.error(from, 'not_host', "Only the room's host can do this.", f.ref);
      if (this.locked !== (f.type === 'lock')) {
        this.locked = f.type === 'lock';
        this.publish({ type: f.type === 'lock' ? 'locked' : 'unlocked', by: from });
      }
    }
  }

  leave(name, reason = 'leave', by) {
    const m = this.members.get(name);
    const wasHost = this.host === name;
    this.members.delete(name);
    m.connected = false;
    const ev = { type: 'left', user: name, reason };
    if (by) ev.by = by;
    if (this.members.size) {
      this.publish(ev);
      if (wasHost) this.publish({ type: 'host', user: this.host });
    }
    m.room.close();
  }
}

// Resolves when pred(views) holds (or fails after a generous wait).
function until(pred, what, ms = 8000) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    (function look() {
      let v;
      try {
        v = pred();
      } catch (e) {
        v = null;
      }
      if (v) resolve(v);
      else if (Date.now() - started > ms) reject(new Error('timed out waiting for ' + what));
      else setTimeout(look, 5);
    }());
  });
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// The member's newest usable epoch number (or 0).
function usableEpoch(m) {
  const ep = m.room.ring.usable();
  return ep ? ep.epoch : 0;
}

function texts(m) {
  return m.views.filter((v) => v.type === 'text').map((v) => v.text);
}

function of(m, type) {
  return m.views.filter((v) => v.type === type);
}

function sendText(m, text) {
  return new Promise((resolve, reject) => m.room.sendText(text, (err) => (err ? reject(err) : resolve())));
}

// The header of an envelope as sent.
function header(SC, envl) {
  return JSON.parse(SC.fromUtf8(SC.unb64u(envl.h)));
}

// Plain data from the page's realm, for deepStrictEqual.
function plain(x) {
  return JSON.parse(JSON.stringify(x));
}

module.exports = { page, Hub, closeAll, until, sleep, usableEpoch, texts, of, sendText, header, plain, TIMING };
