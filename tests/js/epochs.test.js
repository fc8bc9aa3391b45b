'use strict';
// Seal.epochs (frontend/static/js/epochs.js) on its own, with explicit fake dependencies and the
// real sealcrypto.js: the sender's usable-epoch rule, which grants are accepted, the host's
// coalesced rekeys, the vault's contents and its round trip, and wiping on close.
// Run with: node --test tests/js/

const test = require('node:test');
const assert = require('node:assert/strict');
const env = require('./browser-env.js');
const { page, until, sleep, plain } = require('./room-hub.js');

const { call } = env;
const ROOM = 'lobby';
const SLOW = { keyWaitMs: 60000, newcomerWaitMs: 60000, oldKeyMs: 60000 };

// Every keyring made, closed after each test (their timers would keep node running).
const made = [];
test.afterEach(() => {
  for (const r of made.splice(0)) r.ring.close();
});

// A keyring for name with fake deps: members() is the shared list; frames and views are recorded.
function ring(p, shared, name, { cursor = 0, timing = SLOW } = {}) {
  const r = {
    name, frames: [], views: [], vaults: [], cursor, busy: false,
  };
  r.ring = p.ctx.Seal.epochs.init({
    crypto: p.SC, roomId: ROOM, username: name, changeSeq: cursor, timing,
    members: () => shared.members,
    cursor: () => r.cursor,
    send: (frame) => { r.frames.push(JSON.parse(JSON.stringify(frame))); return true; },
    busy: () => r.busy,
    connected: () => true,
    emit: (v) => r.views.push(v),
    saveVault: (v) => r.vaults.push(v),
    changed: () => {},
  });
  made.push(r);
  return r;
}

async function joinPageVault(p, shared, name, resumeKey) {
  const SC = p.SC;
  return call(SC, 'vaultSeal', resumeKey, ROOM, name, { member_key: shared.memberKey, dh_sk: SC.b64u(SC.randomBytes(32)),
    sig_seed: SC.b64u(SC.randomBytes(32)), epochs: {}, floor: 0, seen: [] });
}

function welcome(r, ev, vault) {
  return new Promise((resolve, reject) => r.ring.welcome(ev, vault, (err) => (err ? reject(err) : resolve())));
}

// The announcement r sent (its first announce frame), as a welcome key or an announce event.
function announcement(r) {
  const f = r.frames.find((x) => x.type === 'announce');
  return { from: r.name, a: f.a, t: f.t, s: f.s };
}

function feed(r, method, ev) {
  return new Promise((resolve) => r.ring[method](ev, resolve));
}

// alice (host, alone in epoch 1) and bob, who joined at seq 3 and announced; alice has drawn epoch 2.
async function pair(pageOpts) {
  const p = await page(undefined, pageOpts);
  const SC = p.SC;
  const shared = { members: ['alice'], memberKey: SC.b64u(SC.randomBytes(32)) };
  const keys = { alice: SC.b64u(SC.randomBytes(32)), bob: SC.b64u(SC.randomBytes(32)) };
  const alice = ring(p, shared, 'alice', { cursor: 1 });
  await welcome(alice, { host: 'alice', keys: [], resume_key: keys.alice }, await joinPageVault(p, shared, 'alice', keys.alice));
  await until(() => alice.ring.newest === 1 && alice.frames.some((f) => f.type === 'announce'), 'epoch 1');
  alice.cursor = 2;
  shared.members.push('bob');
  const bob = ring(p, shared, 'bob', { cursor: 3 });
  await welcome(bob, { host: 'alice', keys: [announcement(alice)], resume_key: keys.bob }, await joinPageVault(p, shared, 'bob', keys.bob));
  await until(() => bob.frames.some((f) => f.type === 'announce'), 'bob announced');
  alice.ring.joined('bob', 3);
  alice.cursor = 4;
  await feed(alice, 'onAnnounce', { ...announcement(bob), seq: 4 });
  await until(() => alice.ring.newest === 2, 'epoch 2 drawn');
  const grant = alice.frames.filter((f) => f.type === 'grant').pop().grants[0];
  return { p, SC, shared, keys, alice, bob, grant };
}

function grantEvent(grant, from = 'alice') {
  return { type: 'grant', seq: 5, from, to: grant.to, g: grant.g, n: grant.n, c: grant.c, s: grant.s };
}

test('the sender\'s rule: only the newest epoch, with at >= change_seq, all its members present, self included', async () => {
  const { alice, bob, grant, shared } = await pair();
  assert.equal(bob.ring.usable(), null, 'no grant yet');
  await feed(bob, 'onGrant', grantEvent(grant));
  assert.equal(bob.ring.usable().epoch, 2);
  assert.equal(alice.ring.usable().epoch, 2, 'the host installs its own epoch');
  assert.deepEqual(plain(bob.views.filter((v) => v.type === 'rekey')), [{ type: 'rekey', epoch: 2, by: 'alice', members: ['alice', 'bob'] }]);

  // carol joins at seq 6: epoch 2 (at 4) no longer covers everyone present.
  shared.members.push('carol');
  bob.ring.joined('carol', 6);
  assert.equal(bob.ring.usable(), null, 'at < change_seq');
  bob.ring.changeSeq = 4;
  assert.equal(bob.ring.usable().epoch, 2);
  // A member of the epoch is gone.
  shared.members.splice(shared.members.indexOf('alice'), 1);
  assert.equal(bob.ring.usable(), null, 'a member of the epoch left');
  shared.members.unshift('alice');
  // This member is not in the newest epoch (another member's grant cannot be used).
  bob.ring.epochs[2].members = ['alice', 'carol'];
  assert.equal(bob.ring.usable(), null, 'not one of its members');
});

test('grants: from the host only, for a newer epoch only; the host\'s answer to a repeat is taken quietly', async () => {
  const { alice, bob, grant } = await pair();
  // Not from the host.
  await feed(bob, 'onGrant', grantEvent(grant, 'carol'));
  assert.match(bob.views.filter((v) => v.type === 'bad_grant').pop().reason, /host/);
  // A host that never announced.
  bob.ring.hostName = 'dave';
  await feed(bob, 'onGrant', grantEvent(grant, 'dave'));
  assert.match(bob.views.filter((v) => v.type === 'bad_grant').pop().reason, /announced/);
  bob.ring.hostName = 'alice';
  // Addressed to someone else.
  await feed(bob, 'onGrant', { ...grantEvent(grant), to: 'carol' });
  assert.match(bob.views.filter((v) => v.type === 'bad_grant').pop().reason, /addressed to carol/);
  assert.equal(bob.views.filter((v) => v.type === 'bad_grant').length, 3);
  assert.equal(bob.ring.newest, 0, 'none of them was used');

  await feed(bob, 'onGrant', grantEvent(grant));
  assert.equal(bob.ring.newest, 2);
  // The same grant again is a replay: refused and reported.
  await feed(bob, 'onGrant', grantEvent(grant));
  assert.match(bob.views.filter((v) => v.type === 'bad_grant').pop().reason, /not newer than epoch 2/);
  assert.equal(bob.views.filter((v) => v.type === 'bad_grant').length, 4);
  // After bob asked again (no usable key), the host's re-grant of the same key is no alarm.
  bob.ring.askedAgain = true;
  await feed(bob, 'onGrant', grantEvent(grant));
  assert.equal(bob.views.filter((v) => v.type === 'bad_grant').length, 4);

  // The host answers a repeated announcement of a member of the current epoch with that epoch again.
  const before = alice.frames.filter((f) => f.type === 'grant').length;
  await feed(alice, 'onAnnounce', { ...announcement(bob), seq: 9 });
  await until(() => alice.frames.filter((f) => f.type === 'grant').length === before + 1, 're-grant');
  const again = alice.frames.filter((f) => f.type === 'grant').pop();
  assert.equal(again.grants.length, 1);
  assert.equal(again.grants[0].to, 'bob');
  assert.equal(alice.ring.newest, 2, 'no new epoch for a repeat');
});

test('a refused grant is explained in the page\'s language', async () => {
  const catalog = {
    lang: 'de', rtl: false,
    messages: {
      'it is addressed to {user}': 'er ist an {user} gerichtet',
      'it is for epoch {epoch}, not newer than epoch {newest} (a replayed or reordered grant)':
        'er gilt für Epoche {epoch}, nicht neuer als Epoche {newest} (ein wiederholter oder vertauschter Schlüssel)',
    },
  };
  const { bob, grant } = await pair({ catalog });
  await feed(bob, 'onGrant', { ...grantEvent(grant), to: 'carol' });
  assert.equal(bob.views.filter((v) => v.type === 'bad_grant').pop().reason, 'er ist an carol gerichtet');
  await feed(bob, 'onGrant', grantEvent(grant));
  await feed(bob, 'onGrant', grantEvent(grant));
  assert.equal(bob.views.filter((v) => v.type === 'bad_grant').pop().reason,
    'er gilt für Epoche 2, nicht neuer als Epoche 2 (ein wiederholter oder vertauschter Schlüssel)');
  // Not in the catalog: the English sentence.
  await feed(bob, 'onGrant', grantEvent(grant, 'carol'));
  assert.equal(bob.views.filter((v) => v.type === 'bad_grant').pop().reason, 'it does not come from the room\'s host');
});

test('the host answers events processed together with one rekey, and waits while the room is busy', async () => {
  const { alice, shared } = await pair();
  const grants = () => alice.frames.filter((f) => f.type === 'grant').length;
  const before = grants();
  alice.busy = true;
  shared.members.push('carol', 'dave');
  alice.ring.joined('carol', 10);
  alice.ring.joined('dave', 11);
  shared.members.splice(shared.members.indexOf('bob'), 1);
  alice.ring.left('bob', 12);
  shared.members.splice(shared.members.indexOf('carol'), 1);
  alice.ring.left('carol', 13);
  await sleep(30);
  assert.equal(alice.ring.newest, 2, 'nothing while events are still being processed');
  alice.busy = false;
  alice.cursor = 13;
  alice.ring.flush();
  await until(() => alice.ring.newest === 3, 'one rekey');
  await sleep(50);
  assert.equal(alice.ring.newest, 3);
  assert.equal(grants(), before, 'no grant frame: nobody else present has announced yet');
  assert.deepEqual(plain(alice.ring.epochs[3].members), ['alice']);
  assert.equal(alice.ring.epochs[3].at, 13);
  assert.equal(alice.ring.usable().epoch, 3);
});

test('the vault holds only what a reload needs, and a reload gets the same keys, epoch, floor and seen ids', async () => {
  const { p, SC, shared, keys, bob, grant } = await pair();
  await feed(bob, 'onGrant', grantEvent(grant));
  const id = SC.b64u(SC.randomBytes(16));
  bob.ring.remember(id, 2);
  bob.ring.remember(SC.b64u(SC.randomBytes(16)), 1); // below the floor: not kept
  await until(() => !bob.ring.sealing && bob.vaults.length > 0, 'sealed');
  await sleep(20);
  const state = plain(bob.ring.state());
  assert.deepEqual(Object.keys(state), ['member_key', 'dh_sk', 'sig_seed', 'epochs', 'floor', 'seen', 'meta', 'change_seq']);
  assert.deepEqual(Object.keys(state.epochs), ['2']);
  assert.equal(state.floor, 2);
  assert.deepEqual(state.seen, [id]);
  assert.deepEqual(state.meta['2'], { at: 4, members: ['alice', 'bob'], by: 'alice' });
  assert.equal(state.change_seq, 3);
  const vault = bob.vaults[bob.vaults.length - 1];
  assert.ok(!JSON.stringify(vault).includes(shared.memberKey));

  const again = ring(p, shared, 'bob', { cursor: 40 });
  await welcome(again, { host: 'alice', keys: [announcement(bob)], resume_key: keys.bob }, vault);
  assert.equal(SC.b64u(again.ring.session.dhPk), SC.b64u(bob.ring.session.dhPk));
  assert.equal(again.ring.usable().epoch, 2, 'change_seq from the vault, not the saved cursor');
  assert.equal(again.ring.floor, 2);
  assert.ok(again.ring.belowFloor(1) && !again.ring.belowFloor(2));
  assert.deepEqual(plain(again.ring.restoredSeen), [id]);
  assert.equal(again.frames.filter((f) => f.type === 'announce').length, 0, 'no new announcement');
  // The replayed epoch-2 grant is refused after the reload too.
  await feed(again, 'onGrant', grantEvent(grant));
  assert.equal(again.views.filter((v) => v.type === 'bad_grant').length, 1);

  // Another session's resume_key opens nothing.
  const stranger = ring(p, shared, 'bob');
  await assert.rejects(welcome(stranger, { host: 'alice', keys: [], resume_key: keys.alice }, vault), (e) => e.code === 'vault');
  assert.equal(stranger.ring.session, null);
});

test('seals never overlap, and a change made during a seal is in the next one', async () => {
  const { bob, grant } = await pair();
  await feed(bob, 'onGrant', grantEvent(grant));
  await until(() => !bob.ring.sealing, 'idle');
  const before = bob.vaults.length;
  let done = 0;
  for (let i = 0; i < 10; i++) bob.ring.persist(() => { done += 1; });
  await until(() => done === 10, 'every waiter answered');
  await sleep(20);
  assert.ok(bob.vaults.length - before <= 2, 'at most two seals for ten changes');
});

test('close erases every key, pin and timer', async () => {
  const { bob, grant } = await pair();
  await feed(bob, 'onGrant', grantEvent(grant));
  bob.ring.close();
  assert.equal(bob.ring.session, null);
  assert.equal(bob.ring.memberKey, null);
  assert.equal(bob.ring.resumeKey, null);
  assert.deepEqual(Object.keys(bob.ring.epochs), []);
  assert.deepEqual(Object.keys(bob.ring.pins), []);
  assert.equal(bob.ring.usable(), null);
  assert.equal(bob.ring.waitTimer, null);
});
