'use strict';
// Seal.Room (frontend/static/js/room.js) in the imitated browser: unfinished incoming files are
// dropped, resending waits for the reconnect's replay, and the key's message count is saved for a
// reload. Run with: node --test tests/js/

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const env = require('./browser-env.js');

const { repoRoot, staticDir, makeBrowser, runFile, call, callThen, toB64u } = env;
const SHARED = JSON.parse(fs.readFileSync(path.join(repoRoot, 'tests', 'vectors', 'protocol-v1-vectors.json'), 'utf8'));
const CASE = SHARED.cases[0];

function fakeStorage() {
  const data = new Map();
  return {
    data,
    getItem: (k) => (data.has(k) ? data.get(k) : null),
    setItem: (k, v) => data.set(k, String(v)),
    removeItem: (k) => data.delete(k),
  };
}

// A page with sealcrypto.js, session.js and room.js; the keys of the first shared case.
async function page() {
  const { ctx, SC } = makeBrowser('webcrypto');
  ctx.sessionStorage = fakeStorage();
  ctx.localStorage = fakeStorage();
  ctx.Seal = { dom: { byId: () => null } };
  runFile(ctx, path.join(staticDir, 'js', 'session.js'));
  runFile(ctx, path.join(staticDir, 'js', 'room.js'));
  const keys = await call(SC, 'importForResume', { roomId: CASE.room_id, enc: toB64u(Buffer.from(CASE.enc_key_hex, 'hex')) });
  return { ctx, SC, keys };
}

function makeRoom(p, opts = {}) {
  const views = [];
  const sent = [];
  const room = new p.ctx.Seal.Room({
    keys: p.keys, username: 'alice', token: 't', cursor: 0, members: ['alice', 'bob'],
    limits: { max_file_bytes: 5242880 }, onView: (v) => views.push(v), ...opts,
  });
  room.attach({ send: (frame) => { sent.push(JSON.parse(JSON.stringify(frame))); return true; } });
  room.transportState({ mode: 'ws', state: 'connected' });
  return { room, views, sent };
}

// Resolves when a view event matching pred has been emitted (or fails after a generous wait).
function viewEvent(views, pred, what) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    (function look() {
      const v = views.find(pred);
      if (v) resolve(v);
      else if (Date.now() - started > 5000) reject(new Error('no view event: ' + what));
      else setTimeout(look, 5);
    }());
  });
}

function idle(room) {
  return new Promise((resolve) => {
    (function look() {
      if (!room.working && !room.inbox.length) setTimeout(resolve, 5);
      else setTimeout(look, 5);
    }());
  });
}

async function fileAnnouncement(p, from, size, extra = {}) {
  const fileId = toB64u(Buffer.alloc(16, size % 251));
  const meta = { file_id: fileId, name: 'big.bin', mime: 'application/octet-stream', size, chunks: p.SC.chunkCount(size), ...extra };
  const envl = await callThen(p.SC, 'seal', [p.keys, from, 'file', p.SC.utf8(JSON.stringify(meta))], []);
  return { fileId, meta, env: envl };
}

test('a file whose claimed size is beyond the room limit is undecryptable, not pending', async () => {
  const p = await page();
  const { room, views } = makeRoom(p, { limits: { max_file_bytes: 5242880 } });
  const huge = await fileAnnouncement(p, 'bob', 10 * 1024 * 1024 * 1024);
  room.receive({ type: 'msg', seq: 1, from: 'bob', env: huge.env });
  const wrongCount = await fileAnnouncement(p, 'bob', 1000, { chunks: 2 });
  room.receive({ type: 'msg', seq: 2, from: 'bob', env: wrongCount.env });
  const fractional = await fileAnnouncement(p, 'bob', 10.5, { chunks: 1 });
  room.receive({ type: 'msg', seq: 3, from: 'bob', env: fractional.env });
  await idle(room);
  assert.deepEqual(views.filter((v) => v.type === 'file-start'), []);
  assert.equal(views.filter((v) => v.type === 'undecryptable').length, 3);
  assert.match(views.find((v) => v.type === 'undecryptable').reason, /larger than this room allows/);
  assert.deepEqual(Object.keys(room.files), []);
  room.close();
});

test('an unfinished file is abandoned when its sender leaves', async () => {
  const p = await page();
  const { room, views } = makeRoom(p);
  const f = await fileAnnouncement(p, 'bob', 300000);
  room.receive({ type: 'msg', seq: 1, from: 'bob', env: f.env });
  room.receive({ type: 'left', seq: 2, user: 'bob', reason: 'leave' });
  const gone = await viewEvent(views, (v) => v.type === 'file-abandoned', 'file-abandoned');
  assert.equal(gone.from, 'bob');
  assert.equal(gone.fileId, f.fileId);
  assert.equal(gone.name, 'big.bin');
  assert.match(gone.reason, /left/);
  assert.deepEqual(Object.keys(room.files), []);
  room.close();
});

test('an unfinished file is abandoned when no chunk comes, but not while this tab is offline', async () => {
  const p = await page();
  const { room, views } = makeRoom(p, { fileIdleMs: 300 });
  const content = new Uint8Array(300000).fill(7);
  const enc = await callThen(p.SC, 'encryptFile', [p.keys, content, null], []);
  const meta = { file_id: enc.fileId, name: 'a.bin', mime: 'application/octet-stream', size: content.length, chunks: 2 };
  const announce = await callThen(p.SC, 'seal', [p.keys, 'bob', 'file', p.SC.utf8(JSON.stringify(meta))], []);

  // Offline: the wait does not count, and the file completes when the connection is back.
  room.transportState({ mode: 'ws', state: 'reconnecting' });
  room.receive({ type: 'msg', seq: 1, from: 'bob', env: announce });
  room.receive({ type: 'chunk', seq: 2, from: 'bob', file: enc.fileId, i: 0, n: 2, c: enc.chunks[0] });
  await new Promise((r) => setTimeout(r, 800));
  assert.equal(views.filter((v) => v.type === 'file-abandoned').length, 0);
  room.transportState({ mode: 'ws', state: 'connected' });
  room.receive({ type: 'chunk', seq: 3, from: 'bob', file: enc.fileId, i: 1, n: 2, c: enc.chunks[1] });
  const done = await viewEvent(views, (v) => v.type === 'file', 'file');
  assert.equal(done.size, 300000);

  // Connected and nothing more after the first chunk: abandoned, and a late chunk changes nothing.
  const second = await callThen(p.SC, 'seal', [p.keys, 'bob', 'file', p.SC.utf8(JSON.stringify(meta))], []);
  room.receive({ type: 'msg', seq: 4, from: 'bob', env: second });
  room.receive({ type: 'chunk', seq: 5, from: 'bob', file: enc.fileId, i: 0, n: 2, c: enc.chunks[0] });
  const gone = await viewEvent(views, (v) => v.type === 'file-abandoned', 'file-abandoned');
  assert.match(gone.reason, /nothing arrived/);
  assert.deepEqual(Object.keys(room.files), []);
  room.receive({ type: 'chunk', seq: 6, from: 'bob', file: enc.fileId, i: 1, n: 2, c: enc.chunks[1] });
  await idle(room);
  assert.equal(views.filter((v) => v.type === 'file').length, 1, 'the abandoned file never completes');
  room.close();
});

function sendText(room, text) {
  return new Promise((resolve, reject) => room.sendText(text, (err) => (err ? reject(err) : resolve())));
}

function echo(frame, seq) {
  return { type: 'msg', seq, from: 'alice', env: frame.env };
}

// Imitates a WebSocket reconnect: the state changes, then the welcome with the room's cursor.
function reconnect(room, cursor) {
  room.transportState({ mode: 'ws', state: 'reconnecting' });
  room.receive({ type: 'welcome', members: ['alice', 'bob'], cursor });
  room.transportState({ mode: 'ws', state: 'connected' });
}

test('unconfirmed frames are resent once, after the replay that could confirm them', async () => {
  const p = await page();
  const { room, sent } = makeRoom(p);
  await sendText(room, 'a');
  await sendText(room, 'b');
  await sendText(room, 'c');
  assert.equal(sent.length, 3);
  assert.ok(sent.every((f) => typeof f.ref === 'string' && f.ref.length === 22), 'every frame has a ref');
  // The connection drops; the server had received a and b (replayed as events 1 and 2).
  reconnect(room, 2);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(sent.length, 3, 'nothing is resent before the replay');
  room.receive(echo(sent[0], 1));
  room.receive(echo(sent[1], 2));
  await idle(room);
  assert.deepEqual(sent.slice(3).map((f) => f.ref), [sent[2].ref], 'only c is resent');
  room.receive(echo(sent[2], 3));
  await idle(room);

  // A frame the server refused is not resent; a gap resends what is still unconfirmed.
  await sendText(room, 'd');
  await sendText(room, 'e');
  const [d, e] = sent.slice(-2);
  room.receive({ type: 'error', code: 'rate_limited', message: 'Slow down.', ref: d.ref });
  const before = sent.length;
  reconnect(room, 3);
  room.receive({ type: 'gap', from_seq: 4, to_seq: 9 });
  await idle(room);
  assert.deepEqual(sent.slice(before).map((f) => f.ref), [e.ref], 'e once, d never');
  room.close();
});

test('the resend list is bounded', async () => {
  const p = await page();
  const { room } = makeRoom(p);
  for (let i = 0; i < 5000; i++) room.track('id' + i, { type: 'msg', env: { h: 'h', n: 'n', c: 'c' } });
  assert.ok(Object.keys(room.unconfirmed).length <= 4096, 'map holds at most 4096 frames');
  assert.ok(room.unconfirmedOrder.length <= 2 * 4096 + 1, 'order list is bounded too');
  assert.ok(room.unconfirmed.id4999, 'the newest are kept');
  room.close();
});

test('sending saves the message count with the resume data, without the auth key', async () => {
  const p = await page();
  p.ctx.Seal.session.save({ token: 't', room: 'lobby', roomId: CASE.room_id, username: 'alice', keys: p.SC.exportForResume(p.keys) });
  const { room } = makeRoom(p);
  await sendText(room, 'one');
  await sendText(room, 'two');
  const stored = JSON.parse(p.ctx.sessionStorage.getItem('sealchat.session'));
  assert.equal(stored.keys.sent, 2);
  assert.deepEqual(Object.keys(stored.keys).sort(), ['enc', 'roomId', 'sent']);
  const reloaded = await call(p.SC, 'importForResume', stored.keys);
  assert.equal(p.SC.exportForResume(reloaded).sent, 2);
  room.close();
});

test('closing the room on leave drops its key and everything still queued', async () => {
  const p = await page();
  const { room, views } = makeRoom(p);
  const f = await fileAnnouncement(p, 'bob', 300000);
  room.receive({ type: 'msg', seq: 1, from: 'bob', env: f.env });
  room.close();
  assert.equal(room.keys, null);
  assert.equal(room.inbox.length, 0);
  assert.equal(room.outgoing.length, 0);
  assert.deepEqual(Object.keys(room.files), []);
  const seen = views.length;
  room.receive({ type: 'msg', seq: 2, from: 'bob', env: f.env });
  await idle(room);
  assert.equal(room.inbox.length, 0);
  assert.equal(views.length, seen);
});
