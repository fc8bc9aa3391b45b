'use strict';
// Seal.Room (frontend/static/js/room.js, with epochs.js and the real sealcrypto.js) speaking
// protocol v2 through a stand-in relay (room-hub.js): the host's rekeys on join and leave,
// messages held until a key is usable and released in order, grants refused unless new and from
// the host, forged messages flagged, the reload vault, files, resending after a reconnect.
// Run with: node --test tests/js/

const test = require('node:test');
const assert = require('node:assert/strict');
const { page, Hub, closeAll, until, sleep, usableEpoch, texts, of, sendText, header, plain, TIMING } = require('./room-hub.js');

test.afterEach(closeAll);

async function roomOf(names, opts = {}) {
  const p = await page(opts.mode, { catalog: opts.catalog });
  const hub = new Hub(p, opts);
  const members = {};
  for (const name of names) {
    members[name] = await hub.join(name);
    // Each newcomer is in the next epoch before the next one joins.
    await until(() => Object.values(members).every((m) => usableEpoch(m) > 0 &&
      m.room.ring.usable() && m.room.members.length === hub.members.size), 'everyone keyed after ' + name + ' joined');
  }
  return { p, hub, SC: p.SC, ...members };
}

test('the host rekeys on every join and leave; a member who left gets no later key', async () => {
  const { hub, SC, alice, bob, carol } = await roomOf(['alice', 'bob', 'carol']);
  // alice alone: epoch 1; bob in: 2; carol in: 3.
  assert.equal(usableEpoch(alice), 3);
  assert.equal(usableEpoch(bob), 3);
  assert.equal(usableEpoch(carol), 3);
  assert.deepEqual(plain(of(carol, 'rekey').map((v) => [v.epoch, v.by, v.members])), [[3, 'alice', ['alice', 'bob', 'carol']]]);
  assert.ok(of(alice, 'host').some((v) => v.user === 'alice' && v.me), 'alice is told she is host');
  assert.equal(bob.room.isHost(), false);

  hub.leave('bob');
  await until(() => usableEpoch(alice) === 4 && usableEpoch(carol) === 4, 'epoch 4 after bob left');
  const grants4 = hub.log.filter((e) => e.ev.type === 'grant' && JSON.parse(SC.fromUtf8(SC.unb64u(e.ev.g))).epoch === 4);
  assert.deepEqual(grants4.map((e) => e.to), ['carol'], 'epoch 4 goes to carol only');
  assert.deepEqual(plain(alice.room.ring.epochs[4].members), ['alice', 'carol']);

  await sendText(alice, 'after bob');
  await until(() => texts(carol).includes('after bob'), 'carol reads it');
  const last = hub.log.filter((e) => e.ev.type === 'msg').pop().ev;
  assert.equal(header(SC, last.env).epoch, 4, 'sent under the epoch bob never had');
});

test('events processed together are answered by one rekey', async () => {
  const { hub, SC, alice, bob, carol, dave } = await roomOf(['alice', 'bob', 'carol', 'dave']);
  const before = hub.log.filter((e) => e.ev.type === 'grant').length;
  const epoch = usableEpoch(alice);
  // bob and carol go at once: alice processes both lefts, then rekeys once.
  hub.leave('bob');
  hub.leave('carol');
  await until(() => usableEpoch(dave) === epoch + 1, 'dave keyed');
  await sleep(100);
  const after = hub.log.filter((e) => e.ev.type === 'grant').slice(before);
  assert.equal(after.length, 1, 'one grant, to dave, for one new epoch');
  assert.equal(JSON.parse(SC.fromUtf8(SC.unb64u(after[0].ev.g))).epoch, epoch + 1);
  assert.equal(usableEpoch(alice), epoch + 1);
});

test('messages written before a key is usable are held, then sent in order under the new epoch', async () => {
  const { hub, SC, alice } = await roomOf(['alice']);
  const bob = await hub.join('bob');
  // bob writes at once: no grant yet, so nothing may leave.
  bob.room.sendText('one');
  bob.room.sendText('two');
  bob.room.sendText('three');
  await until(() => of(bob, 'key-state').some((v) => !v.usable && v.held === 3), 'three held');
  assert.equal(bob.sent.filter((f) => f.type === 'msg').length, 0);
  await until(() => texts(alice).length === 3, 'alice reads all three');
  assert.deepEqual(texts(alice), ['one', 'two', 'three']);
  const epochs = hub.log.filter((e) => e.ev.type === 'msg').map((e) => header(SC, e.ev.env).epoch);
  assert.deepEqual(epochs, [2, 2, 2], 'every message under the epoch that includes bob');
  assert.ok(of(bob, 'key-state').pop().usable);

  // alice writes while carol's announcement is awaited: held until the epoch that takes carol in.
  const carol = await hub.join('carol');
  await until(() => alice.room.members.includes('carol'), 'alice processed carol\'s joined');
  await sendText(alice, 'welcome carol');
  await until(() => texts(carol).includes('welcome carol'), 'carol reads what was written as she joined');
  const last = hub.log.filter((e) => e.ev.type === 'msg').pop().ev;
  assert.equal(header(SC, last.env).epoch, 3);
  assert.equal(of(carol, 'undecryptable').length, 0);
});

test('a newcomer that never announces is left out after the wait; the others go on', async () => {
  const { hub, alice, bob } = await roomOf(['alice', 'bob'], { timing: { ...TIMING, newcomerWaitMs: 300 } });
  // A member whose page never announces (a server-side name with no client).
  hub.publish({ type: 'joined', user: 'ghost' });
  hub.members.set('ghost', { name: 'ghost', connected: false, room: { close() {}, receive() {} }, views: [] });
  await until(() => usableEpoch(alice) === 3 && usableEpoch(bob) === 3, 'epoch 3 without ghost');
  assert.deepEqual(plain(alice.room.ring.epochs[3].members), ['alice', 'bob']);
  await sendText(bob, 'still here');
  await until(() => texts(alice).includes('still here'), 'alice reads bob');
  hub.members.delete('ghost');
});

test('a replayed or reordered grant is refused as bad_grant, and so is one from anyone but the host', async () => {
  const { hub, alice, bob } = await roomOf(['alice', 'bob']);
  const old = hub.log.filter((e) => e.ev.type === 'grant' && e.to === 'bob').pop().ev;
  const carol = await hub.join('carol');
  await until(() => usableEpoch(bob) === 3 && usableEpoch(carol) === 3, 'epoch 3');

  // The epoch-2 grant again, under a new sequence number.
  hub.publish({ ...old, seq: undefined }, 'bob');
  await until(() => of(bob, 'bad_grant').length === 1, 'bad_grant');
  assert.match(of(bob, 'bad_grant')[0].reason, /not newer than epoch 3/);
  assert.equal(usableEpoch(bob), 3, 'bob keeps epoch 3');

  // A grant attested from carol, who is not the host (the relay delivers it anyway).
  hub.publish({ ...old, seq: undefined, from: 'carol' }, 'bob');
  await until(() => of(bob, 'bad_grant').length === 2, 'second bad_grant');
  assert.equal(of(bob, 'bad_grant')[1].from, 'carol');
  assert.match(of(bob, 'bad_grant')[1].reason, /host/);

  // A tampered grant from the host.
  const fresh = hub.log.filter((e) => e.ev.type === 'grant' && e.to === 'bob').pop().ev;
  hub.publish({ ...fresh, seq: undefined, c: fresh.c.slice(0, -2) + (fresh.c.slice(-2) === 'AA' ? 'AB' : 'AA') }, 'bob');
  await until(() => of(bob, 'bad_grant').length === 3, 'third bad_grant');
  assert.equal(usableEpoch(bob), 3);
  assert.equal(usableEpoch(alice), 3);
});

test('a message with a forged sender, a bad signature or none is flagged forged, never shown', async () => {
  const { hub, SC, alice, bob } = await roomOf(['alice', 'bob']);
  const ep = bob.room.ring.usable();
  const mallory = SC.newSession();
  const seal = (session, from, text) => new Promise((res, rej) => SC.sealText(ep, session, from, text, (e, v) => (e ? rej(e) : res(v))));

  // Sealed with the room's epoch key but another session's signing key, claiming to be bob.
  const fake = await seal(mallory, 'bob', 'send me the password');
  hub.publish({ type: 'msg', from: 'bob', env: fake });
  // A genuine envelope of bob's relayed as if from alice (the header names bob).
  const genuine = await seal(bob.room.ring.session, 'bob', 'hello');
  hub.publish({ type: 'msg', from: 'alice', env: genuine });
  // No signature at all.
  const unsigned = { h: genuine.h, n: genuine.n, c: genuine.c };
  hub.publish({ type: 'msg', from: 'bob', env: unsigned });
  await until(() => of(alice, 'forged').length === 3, 'three forged');
  assert.deepEqual(of(alice, 'forged').map((v) => v.from), ['bob', 'alice', 'bob']);
  assert.ok(of(alice, 'forged').every((v) => v.what === 'message' && v.reason));
  assert.deepEqual(texts(alice), [], 'none shown as a message');
});

test('a repeated announcement with other keys is refused (key_changed); the same keys get the key again', async () => {
  const { hub, SC, alice, bob } = await roomOf(['alice', 'bob'], { timing: { ...TIMING, keyWaitMs: 300 } });
  const other = SC.newSession();
  const wire = await new Promise((res, rej) => SC.makeAnnouncement(hub.memberKey, hub.roomId, other, 'bob', (e, v) => (e ? rej(e) : res(v))));
  hub.publish({ type: 'announce', from: 'bob', ...wire });
  await until(() => of(alice, 'key_changed').length === 1, 'key_changed');
  assert.equal(of(alice, 'key_changed')[0].user, 'bob');
  assert.equal(SC.b64u(alice.room.ring.sender('bob').dh), SC.b64u(bob.room.ring.session.dhPk), 'the first keys stay pinned');

  // bob lost his grant (say, a reload at the wrong moment): his repeated announcement gets it again.
  const epoch = usableEpoch(bob);
  delete bob.room.ring.epochs[epoch];
  bob.room.ring.newest = epoch - 1;
  bob.room.ring.changed();
  await until(() => of(bob, 'no_key').length >= 1, 'bob says no key');
  await until(() => usableEpoch(bob) === epoch, 'the same epoch re-granted');
  assert.equal(usableEpoch(alice), epoch, 'no new epoch for a repeat');
  assert.equal(of(bob, 'bad_grant').length, 0);
});

test('a member with no usable key says so after the wait and announces again', async () => {
  const p = await page();
  const hub = new Hub(p, { timing: { ...TIMING, keyWaitMs: 300 } });
  const alice = await hub.join('alice');
  await until(() => usableEpoch(alice) === 1, 'alice keyed');
  hub.dropGrantsTo.add('bob');
  const bob = await hub.join('bob');
  await until(() => of(bob, 'no_key').length >= 1, 'no_key');
  const announces = () => bob.sent.filter((f) => f.type === 'announce').length;
  await until(() => announces() >= 2, 'bob announced again');
  hub.dropGrantsTo.delete('bob');
  await until(() => usableEpoch(bob) === 2, 'the repeat brought the key');
});

test('when the host leaves, the next member becomes host and rekeys; the old host\'s grants are refused', async () => {
  const { hub, bob, carol } = await roomOf(['alice', 'bob', 'carol']);
  const aliceGrant = hub.log.filter((e) => e.ev.type === 'grant' && e.to === 'carol').pop().ev;
  hub.leave('alice');
  await until(() => of(carol, 'host').some((v) => v.user === 'bob' && !v.initial), 'host event');
  await until(() => usableEpoch(bob) === 4 && usableEpoch(carol) === 4, 'epoch 4 from bob');
  assert.equal(bob.room.isHost(), true);
  assert.equal(of(carol, 'rekey').pop().by, 'bob');
  hub.publish({ ...aliceGrant, seq: undefined }, 'carol');
  await until(() => of(carol, 'bad_grant').length === 1, 'refused');
  assert.equal(of(carol, 'bad_grant')[0].from, 'alice');
});

test('the host removes a member and locks the room; everyone sees it and the next epoch leaves it out', async () => {
  const { hub, alice, bob, carol } = await roomOf(['alice', 'bob', 'carol']);
  assert.equal(bob.room.kick('alice'), true);
  await until(() => of(bob, 'error').some((v) => v.code === 'not_host'), 'a non-host is refused');
  alice.room.kick('bob');
  await until(() => of(carol, 'removed').length === 1, 'carol sees the removal');
  assert.deepEqual(plain(of(carol, 'removed')[0]), { type: 'removed', user: 'bob', by: 'alice' });
  await until(() => usableEpoch(carol) === 4, 'epoch 4');
  assert.deepEqual(plain(carol.room.ring.epochs[4].members), ['alice', 'carol']);
  alice.room.setLocked(true);
  await until(() => of(carol, 'locked').some((v) => !v.initial && v.by === 'alice'), 'locked');
  assert.equal(carol.room.locked, true);
  alice.room.setLocked(false);
  await until(() => of(carol, 'unlocked').some((v) => !v.initial), 'unlocked');
});

test('the safety code is the same for everyone and changes when someone joins', async () => {
  const { hub, alice, bob } = await roomOf(['alice', 'bob']);
  const code = (m) => of(m, 'safety').filter((v) => v.members.length === m.room.members.length).pop();
  await until(() => code(alice) && code(bob), 'codes');
  assert.equal(code(alice).code, code(bob).code);
  assert.match(code(alice).code, /^\d{5}( \d{5}){5}$/);
  assert.deepEqual(plain(code(alice).members), plain(code(bob).members));
  assert.match(code(alice).members[0].fingerprint, /^[0-9a-f]{4}( [0-9a-f]{4}){4}$/);
  const before = code(alice).code;
  const carol = await hub.join('carol');
  await until(() => code(alice) && code(alice).members.length === 3 && code(carol) && code(carol).members.length === 3, 'three');
  assert.notEqual(code(alice).code, before);
  assert.equal(code(alice).code, code(carol).code);
});

test('files: chunks are signed; one with a bad signature makes the file forged', async () => {
  const { hub, SC, alice, bob } = await roomOf(['alice', 'bob']);
  const content = new Uint8Array(300000).map((_, i) => i % 251);
  await new Promise((res, rej) => alice.room.sendFile(content, 'a.bin', 'application/octet-stream', null, (e) => (e ? rej(e) : res())));
  const got = await until(() => of(bob, 'file')[0], 'bob has the file');
  assert.equal(got.size, 300000);
  assert.deepEqual(Buffer.from(got.bytes), Buffer.from(content));
  await until(() => of(alice, 'sent').length === 2, 'alice saw both chunks echoed');

  // Again, with chunk 1's signature spoilt on the way.
  const chunks = [];
  const realFrame = hub.frame.bind(hub);
  hub.frame = (from, f) => {
    if (f.type === 'chunk' && f.i === 1) f.s = SC.b64u(new Uint8Array(64));
    if (f.type === 'chunk') chunks.push(f);
    realFrame(from, f);
  };
  await new Promise((res, rej) => alice.room.sendFile(content, 'b.bin', 'application/octet-stream', null, (e) => (e ? rej(e) : res())));
  const forged = await until(() => of(bob, 'forged')[0], 'forged file');
  assert.equal(forged.what, 'file');
  assert.equal(forged.from, 'alice');
  assert.equal(of(bob, 'file').length, 1, 'the second file is never shown');
});

test('the vault: a reload resumes with the same keys, refuses older epochs and ids already seen', async () => {
  const { hub, SC, alice, bob } = await roomOf(['alice', 'bob']);
  await sendText(alice, 'before the reload');
  await until(() => texts(bob).includes('before the reload'), 'bob read it');
  const seenMsg = hub.log.filter((e) => e.ev.type === 'msg').pop().ev;
  const epoch = usableEpoch(bob);
  const vaultsBefore = bob.vaults.length;
  await until(() => bob.vaults.length > vaultsBefore || bob.room.ring.sealing === false, 'vault sealed');
  await sleep(50);

  // What sessionStorage holds: the sealed vault and nothing readable.
  const stored = JSON.stringify({ vault: bob.vault });
  assert.ok(!stored.includes(hub.memberKey), 'member_key is not in the clear');
  assert.ok(!stored.includes(SC.b64u(bob.room.ring.epochs[epoch].ep.raw)), 'the epoch key is not in the clear');
  // Without the session's resume_key it opens nothing.
  await assert.rejects(new Promise((res, rej) => SC.vaultOpen(SC.b64u(SC.randomBytes(32)), hub.roomId, 'bob', bob.vault,
    (e, v) => (e ? rej(e) : res(v)))));

  // An old epoch-1-style message sealed under an epoch below the floor, kept for the replay.
  const dhBefore = SC.b64u(bob.room.ring.session.dhPk);
  const cursor = bob.room.cursor;
  bob.room.close();
  bob.views.length = 0;
  const sentBefore = bob.sent.length;
  hub.open(bob, cursor);
  await until(() => usableEpoch(bob) === epoch, 'bob usable again after the reload');
  assert.equal(SC.b64u(bob.room.ring.session.dhPk), dhBefore, 'the same session keys');
  assert.equal(bob.sent.slice(sentBefore).filter((f) => f.type === 'announce').length, 0, 'no new announcement');
  assert.equal(bob.room.ring.floor, epoch);

  // The server replays a message already seen: dropped. One below the floor: refused.
  hub.publish({ type: 'msg', from: 'alice', env: seenMsg.env });
  const older = await new Promise((res, rej) => SC.epochFromKey(hub.roomId, epoch - 1, SC.randomBytes(32), (e, v) => (e ? rej(e) : res(v))));
  const below = await new Promise((res, rej) => SC.sealText(older, alice.room.ring.session, 'alice', 'from before', (e, v) => (e ? rej(e) : res(v))));
  hub.publish({ type: 'msg', from: 'alice', env: below });
  await sendText(alice, 'after the reload');
  await until(() => texts(bob).includes('after the reload'), 'new messages read');
  assert.deepEqual(texts(bob), ['after the reload']);
  assert.equal(of(bob, 'undecryptable').length, 1);
  assert.match(of(bob, 'undecryptable')[0].reason, /older than/);

  // A welcome with another resume_key (another session's): the vault does not open.
  bob.room.close();
  bob.views.length = 0;
  bob.resumeKey = SC.b64u(SC.randomBytes(32));
  hub.open(bob, bob.room.cursor);
  await until(() => of(bob, 'fatal').length === 1, 'fatal');
  assert.equal(of(bob, 'fatal')[0].code, 'vault');
});

test('old epoch keys open late messages for a while, then are erased', async () => {
  const { hub, SC, alice, bob } = await roomOf(['alice', 'bob'], { timing: { ...TIMING, oldKeyMs: 2500 } });
  const e2 = bob.room.ring.usable();
  const late = await new Promise((res, rej) => SC.sealText(e2, alice.room.ring.session, 'alice', 'in flight', (e, v) => (e ? rej(e) : res(v))));
  const carol = await hub.join('carol');
  await until(() => usableEpoch(bob) === 3 && usableEpoch(carol) === 3, 'epoch 3');
  hub.publish({ type: 'msg', from: 'alice', env: late });
  await until(() => texts(bob).includes('in flight'), 'opened under the previous key');
  await until(() => !bob.room.ring.lookup(2), 'epoch 2 erased after the wait');
  const late2 = await new Promise((res, rej) => SC.sealText(e2, alice.room.ring.session, 'alice', 'too late', (e, v) => (e ? rej(e) : res(v))));
  hub.publish({ type: 'msg', from: 'alice', env: late2 });
  await until(() => of(bob, 'undecryptable').length === 1, 'no key any more');
});

test('on the fallback path (no Web Crypto, no Worker) the room works the same', async () => {
  const { hub, alice, bob } = await roomOf(['alice', 'bob'], { mode: 'fallback-noworker' });
  assert.equal(alice.room.ring.usable().backend, 'fallback');
  await sendText(bob, 'from an old phone');
  await until(() => texts(alice).includes('from an old phone'), 'alice reads bob');
  const content = new Uint8Array(1000).fill(3);
  await new Promise((res, rej) => alice.room.sendFile(content, 'c.bin', 'application/octet-stream', null, (e) => (e ? rej(e) : res())));
  const got = await until(() => of(bob, 'file')[0], 'bob has the file');
  assert.equal(got.size, 1000);
  const epoch = usableEpoch(bob);
  const cursor = bob.room.cursor;
  await sleep(100);
  bob.room.close();
  hub.open(bob, cursor);
  await until(() => usableEpoch(bob) === epoch, 'reload on the fallback path');
});

// Imitates a WebSocket reconnect: the state changes, then the welcome with the room's cursor.
function reconnect(m, cursor) {
  m.room.transportState({ mode: 'ws', state: 'reconnecting' });
  m.room.receive({ type: 'welcome', members: m.hub.names(), host: m.hub.host, locked: false, keys: [], cursor,
    resume_key: m.resumeKey });
  m.room.transportState({ mode: 'ws', state: 'connected' });
}

// A reconnect as the relay makes it: the welcome carries everyone's announcement.
function reconnectWithKeys(m) {
  const keys = [];
  for (const other of m.hub.members.values()) {
    if (other.announcement) keys.push({ from: other.name, ...other.announcement });
  }
  m.room.transportState({ mode: 'ws', state: 'reconnecting' });
  m.room.receive({ type: 'welcome', members: m.hub.names(), host: m.hub.host, locked: false, keys, cursor: m.hub.seq,
    resume_key: m.resumeKey });
  m.room.transportState({ mode: 'ws', state: 'connected' });
}

test('a reconnect\'s welcome is no request for keys: nobody is re-granted, nothing is refused', async () => {
  const { hub, alice, bob, carol } = await roomOf(['alice', 'bob', 'carol']);
  const grants = () => hub.log.filter((e) => e.ev.type === 'grant').length;
  const before = grants();
  const epoch = usableEpoch(alice);
  reconnectWithKeys(alice);
  reconnectWithKeys(bob);
  await idle(alice.room);
  await idle(bob.room);
  await sleep(100);
  assert.equal(grants(), before, 'no grant after the host reconnected');
  assert.equal(usableEpoch(alice), epoch);
  assert.equal(usableEpoch(bob), epoch);
  assert.equal(of(bob, 'bad_grant').length + of(carol, 'bad_grant').length, 0);
  assert.equal(of(alice, 'key_changed').length, 0);
  await sendText(bob, 'still fine');
  await until(() => texts(carol).includes('still fine'), 'carol reads bob');
});

function idle(room) {
  return until(() => !room.working && !room.inbox.length, 'idle').then(() => sleep(5));
}

test('unconfirmed frames are resent once, after the replay that could confirm them', async () => {
  const { hub, alice } = await roomOf(['alice', 'bob']);
  await idle(alice.room);
  // alice's frames reach nobody for now: the relay is cut.
  const frames = [];
  hub.frame = (from, f) => frames.push(f);
  await sendText(alice, 'a');
  await sendText(alice, 'b');
  await sendText(alice, 'c');
  const msgs = () => alice.sent.filter((f) => f.type === 'msg');
  assert.equal(msgs().length, 3);
  assert.ok(msgs().every((f) => typeof f.ref === 'string' && f.ref.length === 22), 'every frame has a ref');
  const [a, b, c] = msgs();
  // The connection drops; the server had received a and b (replayed after the cursor).
  const base = hub.seq;
  reconnect(alice, base + 2);
  await sleep(20);
  assert.equal(msgs().length, 3, 'nothing is resent before the replay');
  alice.room.receive({ type: 'msg', seq: base + 1, from: 'alice', env: a.env });
  alice.room.receive({ type: 'msg', seq: base + 2, from: 'alice', env: b.env });
  await idle(alice.room);
  await sleep(10);
  assert.deepEqual(msgs().slice(3).map((f) => f.ref), [c.ref], 'only c is resent');
  alice.room.receive({ type: 'msg', seq: base + 3, from: 'alice', env: c.env });
  await idle(alice.room);

  // A frame the server refused is not resent; a gap resends what is still unconfirmed.
  await sendText(alice, 'd');
  await sendText(alice, 'e');
  const [d, e] = msgs().slice(-2);
  alice.room.receive({ type: 'error', code: 'rate_limited', message: 'Slow down.', ref: d.ref });
  const before = msgs().length;
  reconnect(alice, base + 3);
  alice.room.receive({ type: 'gap', from_seq: base + 4, to_seq: base + 9 });
  await idle(alice.room);
  await sleep(10);
  assert.deepEqual(msgs().slice(before).map((f) => f.ref), [e.ref], 'e once, d never');
});

test('the resend list is bounded', async () => {
  const { hub, alice } = await roomOf(['alice']);
  for (let i = 0; i < 5000; i++) alice.room.track('id' + i, { type: 'msg', env: { h: 'h', n: 'n', c: 'c', s: 's' } });
  assert.ok(Object.keys(alice.room.unconfirmed).length <= 4096, 'map holds at most 4096 frames');
  assert.ok(alice.room.unconfirmedOrder.length <= 2 * 4096 + 1, 'order list is bounded too');
  assert.ok(alice.room.unconfirmed.id4999, 'the newest are kept');
});

// Bob starts a two-chunk file, sends its start only, and leaves: what alice's room says of it.
async function fileAbandonedByItsSender({ hub, SC, alice, bob }) {
  const ep = alice.room.ring.usable();
  const fileId = SC.b64u(SC.randomBytes(16));
  const meta = { file_id: fileId, name: 'big.bin', mime: 'application/octet-stream', size: 300000, chunks: 2 };
  const envl = await new Promise((res, rej) => SC.seal(ep, bob.room.ring.session, 'bob', 'file', SC.utf8(JSON.stringify(meta)), (e, v) => (e ? rej(e) : res(v))));
  hub.publish({ type: 'msg', from: 'bob', env: envl });
  await until(() => of(alice, 'file-start').length === 1, 'file-start');
  hub.leave('bob');
  const gone = await until(() => of(alice, 'file-abandoned')[0], 'file-abandoned');
  return { fileId, gone };
}

test('an unfinished file is abandoned when its sender leaves', async () => {
  const room = await roomOf(['alice', 'bob', 'carol']);
  const { fileId, gone } = await fileAbandonedByItsSender(room);
  assert.equal(gone.fileId, fileId);
  assert.match(gone.reason, /left/);
  assert.deepEqual(Object.keys(room.alice.room.files), []);
});

test('reasons and refusals the room makes are in the page\'s language', async () => {
  const catalog = {
    lang: 'pl', rtl: false, number: { decimal: ',', group: '\u00a0', minGroup: 2 },
    plural: (n) => (n === 1 ? 0 : n % 10 >= 2 && n % 10 <= 4 && (n % 100 < 10 || n % 100 >= 20) ? 1 : 2),
    messages: {
      'the sender left': 'nadawca wyszedł',
      'Files may be at most {size}.': 'Pliki mogą mieć najwyżej {size}.',
      '{size} MB': '{size} MB',
    },
  };
  const room = await roomOf(['alice', 'bob', 'carol'], { catalog });
  const { alice } = room;
  const { gone } = await fileAbandonedByItsSender(room);
  assert.equal(gone.reason, 'nadawca wyszedł');

  alice.room.limits = { max_file_bytes: 1572864 };
  const err = await new Promise((res) => alice.room.sendFile(new Uint8Array(1572865), 'x.bin', 'application/octet-stream', null, res));
  assert.equal(err.code, 'too_large');
  assert.equal(err.message, 'Pliki mogą mieć najwyżej 1,5 MB.');
});

test('closing the room on leave drops every key and everything still queued', async () => {
  const { hub, alice, bob } = await roomOf(['alice', 'bob']);
  hub.dropGrantsTo.add('bob');
  bob.room.close();
  assert.equal(bob.room.ring.session, null);
  assert.equal(bob.room.ring.memberKey, null);
  assert.deepEqual(Object.keys(bob.room.ring.epochs), []);
  assert.equal(bob.room.vault, null);
  const seen = bob.views.length;
  await sendText(alice, 'after close');
  await sleep(50);
  assert.equal(bob.views.length, seen, 'a closed room shows nothing more');
});

// Answers a member's invite frames as the server does, to that member only: each frame gets the
// next answer (a reply, or an error naming the frame's ref). Other frames go to the hub.
function inviteServer(m, answers, mode = 'ws') {
  const relay = m.room.transport;
  const frames = [];
  m.room.attach({
    mode,
    send(frame) {
      if (frame.type !== 'invite') return relay.send(frame);
      const copy = JSON.parse(JSON.stringify(frame));
      frames.push(copy);
      const answer = answers.shift();
      setTimeout(() => m.room.receive({ ...answer, ref: copy.ref }), 0);
      return true;
    },
  });
  return frames;
}

test('an invite is asked for with a ref and its answer is shown to the asking member alone', async () => {
  const { alice, bob } = await roomOf(['alice', 'bob']);
  const refusal = 'As many invites as you hold are open; try again in 597 seconds.';
  const frames = inviteServer(bob, [
    { type: 'invite', code: 'K7QX2MZP4A', expires_in: 600 },
    { type: 'error', code: 'rate_limited', message: refusal, retry_after: 597 },
  ]);
  const before = alice.views.length;
  assert.equal(bob.room.invite(), true);
  const shown = await until(() => of(bob, 'invite')[0], 'the invite');
  assert.deepEqual(plain(shown), { type: 'invite', code: 'K7QX2MZP4A', expiresIn: 600 });
  assert.equal(bob.room.invite(), true);
  const refused = await until(() => of(bob, 'invite-refused')[0], 'the refusal');
  assert.deepEqual(plain(refused), { type: 'invite-refused', code: 'rate_limited', message: refusal, retryAfter: 597 });
  assert.deepEqual(plain(frames), [{ type: 'invite', ref: 'invite-1' }, { type: 'invite', ref: 'invite-2' }]);
  assert.equal(of(bob, 'error').length, 0, 'a refused invite is no general error');
  assert.deepEqual(Object.keys(bob.room.unconfirmed), [], 'invites are not kept for resending');
  await sendText(bob, 'still fine');
  await until(() => texts(alice).includes('still fine'), 'the room goes on');
  assert.ok(alice.views.slice(before).every((v) => v.type !== 'invite' && v.type !== 'invite-refused'));
  bob.room.close();
  assert.equal(bob.room.invite(), false, 'a closed room asks for nothing');
});

test('over long-poll an invite goes straight to the server, so a refusal is shown instead of retried', async () => {
  const { bob } = await roomOf(['alice', 'bob']);
  const posts = [];
  const answers = [
    [null, { ok: true, reply: { type: 'invite', code: 'ABCDEFGH23', expires_in: 300, ref: 'invite-1' } }],
    [{ code: 'rate_limited', message: 'As many invites as this room holds are open; try again in 40 seconds.',
      retryAfter: 40, status: 429 }],
    [{ code: 'session_ended', message: 'gone' }],
  ];
  bob.room.transport.mode = 'poll';
  Object.assign(bob.hub.p.ctx.Seal.api, {
    pollSend(token, frame, cb) {
      posts.push({ token, frame: JSON.parse(JSON.stringify(frame)) });
      const a = answers.shift();
      setTimeout(() => cb(a[0], a[1]), 0);
    },
    isTerminal: (err) => err.code === 'session_ended',
  });
  try {
    assert.equal(bob.room.invite(), true);
    await until(() => of(bob, 'invite').length === 1, 'the reply of the send');
    assert.equal(of(bob, 'invite')[0].code, 'ABCDEFGH23');
    assert.equal(of(bob, 'invite')[0].expiresIn, 300);
    bob.room.invite();
    const refused = await until(() => of(bob, 'invite-refused')[0], 'the 429');
    assert.equal(refused.retryAfter, 40);
    assert.match(refused.message, /this room holds/);
    bob.room.invite();
    await until(() => answers.length === 0, 'the third send');
    await sleep(20);
    assert.equal(of(bob, 'invite-refused').length, 1, 'a terminal answer is the transport\'s to report');
    assert.deepEqual(posts.map((p) => [p.token, p.frame.type, p.frame.ref]),
      [['t-bob', 'invite', 'invite-1'], ['t-bob', 'invite', 'invite-2'], ['t-bob', 'invite', 'invite-3']]);
    bob.room.transportState({ mode: 'poll', state: 'reconnecting' });
    assert.equal(bob.room.invite(), false, 'not connected: nothing is sent');
    assert.equal(posts.length, 3);
  } finally {
    delete bob.hub.p.ctx.Seal.api.pollSend;
    delete bob.hub.p.ctx.Seal.api.isTerminal;
  }
});

test('the guessing notice reaches every member in order with the room\'s other events', async () => {
  const { hub, alice, bob } = await roomOf(['alice', 'bob']);
  hub.publish({ type: 'guessing', failures: 12, retry_after: 20 });
  await sendText(alice, 'after the notice');
  for (const m of [alice, bob]) {
    await until(() => texts(m).includes('after the notice'), m.name + ' reads on');
    const kinds = m.views.filter((v) => v.type === 'guessing' || v.type === 'text').map((v) => v.type);
    assert.deepEqual(kinds, ['guessing', 'text'], m.name + ' sees the notice first');
    assert.deepEqual(plain(of(m, 'guessing')[0]), { type: 'guessing', failures: 12, retryAfter: 20 });
  }
  const seq = hub.seq;
  hub.publish({ type: 'guessing', failures: 3, retry_after: 0 });
  await until(() => of(bob, 'guessing').length === 2, 'a second notice');
  assert.equal(of(bob, 'guessing')[1].retryAfter, 0);
  assert.equal(bob.room.processed, seq + 1, 'the notice moves the cursor like any room event');
});
