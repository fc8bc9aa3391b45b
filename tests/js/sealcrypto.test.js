'use strict';
// SealCrypto (sealchat/v2) against tests/vectors/protocol-v2-vectors.json (made by
// scripts/make_vectors_v2.py from the Python client) and the v1 admission vectors, on both
// backends: Web Crypto, and the node-forge fallback with crypto.subtle absent (in a Worker and, for
// engines without Worker, in main-thread slices). tweetnacl does X25519 and Ed25519 on all of them.
// Run with: node --test tests/js/

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const env = require('./browser-env.js');

const { repoRoot, makeBrowser, call, callThen, detect, hex, fromB64u, toB64u, sha256hex } = env;
const readVectors = (name) => JSON.parse(fs.readFileSync(path.join(repoRoot, 'tests', 'vectors', name), 'utf8'));
const V1 = readVectors('protocol-v1-vectors.json');
const V2 = readVectors('protocol-v2-vectors.json');

const MODES = ['webcrypto', 'fallback', 'fallback-noworker'];
const EXPECTED_BACKEND = { webcrypto: 'webcrypto', fallback: 'fallback', 'fallback-noworker': 'fallback' };

// Objects made inside the imitated page have that realm's prototypes; compare their data only.
const plain = (x) => JSON.parse(JSON.stringify(x));
const b64 = (bytes) => toB64u(Buffer.from(bytes));
// The file vectors' content formula: bytes((i * 7 + 3) % 256 for i in range(size)).
const content = (size) => Uint8Array.from({ length: size }, (_, i) => (i * 7 + 3) % 256);

async function rejects(promise, code, messagePattern) {
  await assert.rejects(promise, (err) => {
    // Errors come from the page's realm, so look at the tag rather than instanceof.
    assert.equal(Object.prototype.toString.call(err), '[object Error]', 'an Error is expected');
    if (code) assert.equal(err.code, code, `code of "${err.message}"`);
    if (messagePattern) assert.match(err.message, messagePattern);
    return true;
  });
}

const fixedCall = (SC, name, before, fixed) => callThen(SC, name, before, [fixed]);
const session = (SC, p) => SC.sessionFromSaved({ dhSk: p.dh_sk, sigSeed: p.sig_seed });
const announced = (SC, mk, roomId, person) => call(SC, 'checkAnnouncement', mk, roomId, person.announcement, person.user);

function epochs(SC, roomId, map) {
  return Promise.all(Object.entries(map).map(([e, k]) => call(SC, 'epochFromKey', roomId, Number(e), new Uint8Array(fromB64u(k)))))
    .then((eps) => {
      const byNumber = new Map(eps.map((ep) => [ep.epoch, ep]));
      return (n) => byNumber.get(n) || null;
    });
}

// Little-endian S + L: the same signature in a second, non-canonical form (RFC 8032 5.1.7).
function malleate(sigB64u) {
  const L = [0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
  const s = fromB64u(sigB64u);
  let carry = 0;
  for (let i = 0; i < 32; i++) {
    const x = s[32 + i] + L[i] + carry;
    s[32 + i] = x & 255;
    carry = x >> 8;
  }
  assert.equal(carry, 0);
  return toB64u(s);
}

// One refused case of the vectors, run through the matching SealCrypto function.
async function refuseCase(SC, c) {
  if (c.kind === 'announcement') {
    return call(SC, 'checkAnnouncement', c.member_key, c.room_id, c.wire, c.attested_from);
  }
  if (c.kind === 'grant') {
    const host = await announced(SC, c.member_key, c.room_id, c.host);
    return call(SC, 'openGrant', c.member_key, c.room_id, session(SC, c.me), c.me.user, host,
      { ...c.wire, from: c.attested_from });
  }
  if (c.kind === 'envelope') {
    const sender = c.sender ? await announced(SC, c.member_key, c.room_id, c.sender) : null;
    return call(SC, 'open', await epochs(SC, c.room_id, c.epoch_keys), c.env, c.attested_from, sender);
  }
  if (c.kind === 'chunk') {
    const sender = await announced(SC, c.member_key, c.room_id, c.sender);
    const ep = await call(SC, 'epochFromKey', c.room_id, c.epoch, new Uint8Array(fromB64u(c.epoch_key)));
    return call(SC, 'decryptChunk', ep, sender, c.file_id, c.i, c.n, c.c, c.s);
  }
  if (c.kind === 'vault') {
    return call(SC, 'vaultOpen', c.resume_key, c.room_id, c.username, c.vault);
  }
  throw new Error('unknown negative kind ' + c.kind);
}

for (const mode of MODES) {
  test(`${mode}: protocol v2 vectors`, async (t) => {
    const { SC, stats } = makeBrowser(mode);
    assert.equal(await detect(SC), EXPECTED_BACKEND[mode]);
    const readsAfterDetect = stats.subtleReads;

    await t.test('admission keys: v2 vectors (auth_key, verifier, member_key)', async () => {
      for (const c of V2.admission) {
        const progress = [];
        const keys = await call(SC, 'deriveKeys', c.password, c.salt, c.iter, c.room_id, c.kdf, (f) => progress.push(f));
        assert.deepEqual(Object.keys(keys).sort(), ['auth', 'backend', 'memberKey', 'roomId', 'verifier']);
        assert.equal(keys.roomId, c.room_id);
        assert.equal(keys.auth, c.auth_key, `auth_key of ${c.room_id}`);
        assert.equal(keys.verifier, c.verifier, `verifier of ${c.room_id}`);
        assert.equal(keys.memberKey, c.member_key, `member_key of ${c.room_id}`);
        assert.equal(progress[0], 0);
        assert.equal(progress[progress.length - 1], 1);
        for (let i = 1; i < progress.length; i++) assert.ok(progress[i] >= progress[i - 1], 'progress is monotonic');
        if (mode === 'webcrypto') assert.deepEqual(progress, [0, 1]);
        else assert.ok(progress.length > 2, 'the fallback reports intermediate progress');
      }
    });

    await t.test('admission keys: v1 vectors (auth_key, verifier)', async () => {
      for (const c of V1.cases) {
        const keys = await call(SC, 'deriveKeys', c.password, c.salt, c.iter, c.room_id, c.kdf, null);
        assert.equal(keys.auth, c.auth_key);
        assert.equal(hex(fromB64u(keys.verifier)), c.verifier_hex);
      }
    });

    await t.test('announcements', async () => {
      for (const c of V2.announcement) {
        const me = session(SC, c);
        assert.equal(b64(me.dhPk), c.dh_pk);
        assert.equal(b64(me.sigPk), c.sig_pk);
        const wire = await fixedCall(SC, 'makeAnnouncement', [c.member_key, c.room_id, me, c.user], { ts: c.ts });
        assert.deepEqual(plain(wire), { a: c.a, t: c.t, s: c.s });
        assert.equal(fromB64u(wire.a).toString('utf8'), c.body_json);
        const ann = await call(SC, 'checkAnnouncement', c.member_key, c.room_id, { a: c.a, t: c.t, s: c.s, extra: 1 }, c.user);
        assert.equal(ann.user, c.user);
        assert.equal(b64(ann.dh), c.dh_pk);
        assert.equal(b64(ann.sig), c.sig_pk);
        assert.equal(ann.ts, c.ts);
        assert.deepEqual(plain(ann.wire), { a: c.a, t: c.t, s: c.s });
      }
    });

    await t.test('grants: exact bytes, and the member opens them', async () => {
      for (const c of V2.grant) {
        const host = session(SC, c.host);
        const member = session(SC, c.member);
        const hostAnn = await announced(SC, c.member_key, c.room_id, c.host);
        const memberAnn = await announced(SC, c.member_key, c.room_id, c.member);
        const wire = await fixedCall(SC, 'sealGrant', [c.member_key, c.room_id, host, c.host.user, memberAnn, c.epoch,
          c.at, c.members, new Uint8Array(fromB64u(c.epoch_key))], { nonce: c.nonce, ts: c.ts });
        assert.deepEqual(plain(wire), { to: c.to, g: c.g, n: c.n, c: c.c, s: c.s });
        assert.equal(fromB64u(wire.g).toString('utf8'), c.body_json);
        const got = await call(SC, 'openGrant', c.member_key, c.room_id, member, c.member.user, hostAnn,
          { seq: 9, from: c.host.user, to: c.to, g: c.g, n: c.n, c: c.c, s: c.s });
        assert.deepEqual(plain({ ...got, key: b64(got.key) }),
          { epoch: c.epoch, at: c.at, members: c.members, key: c.epoch_key, host: c.host.user });
      }
    });

    await t.test('envelopes: exact bytes, opened, msg_key', async () => {
      for (const c of V2.envelope) {
        const me = session(SC, c.sender);
        const ann = await announced(SC, V2.grant[0].member_key, c.room_id, c.sender);
        const ep = await call(SC, 'epochFromKey', c.room_id, c.epoch, new Uint8Array(fromB64u(c.epoch_key)));
        assert.equal(ep.epoch, c.epoch);
        assert.equal(b64(ep.raw), c.epoch_key);
        assert.equal(b64(ep._msg.raw), c.msg_key, 'msg_key');
        const sealed = await fixedCall(SC, 'seal', [ep, me, c.sender.user, c.type, SC.utf8(c.plaintext)],
          { id: c.id, ts: c.ts, nonce: c.nonce });
        assert.deepEqual(plain(sealed), { h: c.h, n: c.n, c: c.c, s: c.s });
        assert.equal(fromB64u(sealed.h).toString('utf8'), c.header_json);
        const opened = await call(SC, 'open', (n) => (n === c.epoch ? ep : null), { h: c.h, n: c.n, c: c.c, s: c.s },
          c.sender.user, ann);
        assert.equal(SC.fromUtf8(opened.plaintext), c.plaintext);
        assert.deepEqual(plain(opened.header), JSON.parse(c.header_json));
      }
    });

    await t.test('files: chunks and signatures, file_key, decryption', async () => {
      for (const c of V2.file) {
        assert.equal(c.content, 'bytes((i * 7 + 3) % 256 for i in range(size))');
        const data = content(c.size);
        assert.equal(sha256hex(data), c.content_sha256_hex);
        const me = session(SC, c.signer);
        const ann = await announced(SC, V2.grant[0].member_key, c.room_id, c.signer);
        const ep = await call(SC, 'epochFromKey', c.room_id, c.epoch, new Uint8Array(fromB64u(c.epoch_key)));
        const progress = [];
        const out = await callThen(SC, 'encryptFile', [ep, me, data, (x) => progress.push(x)], [c.file_id]);
        assert.equal(progress[progress.length - 1], 1);
        assert.equal(out.fileId, c.file_id);
        assert.equal(b64(ep._files[c.file_id].raw), c.file_key, 'file_key');
        assert.equal(out.chunks.length, c.chunks.length);
        assert.equal(SC.chunkCount(c.size), c.chunks.length);
        const parts = [];
        for (const [i, want] of c.chunks.entries()) {
          const got = out.chunks[i];
          if (want.c) assert.equal(got.c, want.c, `chunk ${i}`);
          else {
            assert.equal(fromB64u(got.c).length, want.c_len);
            assert.equal(sha256hex(fromB64u(got.c)), want.c_sha256_hex, `chunk ${i} sha256`);
          }
          assert.equal(got.s, want.s, `chunk ${i} signature`);
          parts.push(Buffer.from(await call(SC, 'decryptChunk', ep, ann, c.file_id, want.i, want.n, got.c, got.s)));
        }
        assert.equal(sha256hex(Buffer.concat(parts)), c.content_sha256_hex, 'decrypted content');
      }
    });

    await t.test('safety code and fingerprints', async () => {
      for (const c of V2.safety) {
        const members = c.members.map((m) => ({ user: m.user, dh: new Uint8Array(fromB64u(m.dh_pk)), sig: new Uint8Array(fromB64u(m.sig_pk)) }));
        assert.equal(await call(SC, 'safetyCode', c.room_id, members), c.code);
        assert.equal(await call(SC, 'safetyCode', c.room_id, members.slice().reverse()), c.code, 'any order');
        for (const m of c.members) {
          assert.equal(await call(SC, 'fingerprint', new Uint8Array(fromB64u(m.dh_pk)), new Uint8Array(fromB64u(m.sig_pk))), m.fingerprint);
        }
      }
    });

    await t.test('reload vault', async () => {
      for (const c of V2.vault) {
        const state = JSON.parse(c.state_json);
        const sealed = await fixedCall(SC, 'vaultSeal', [c.resume_key, c.room_id, c.username, state], { nonce: c.nonce });
        assert.deepEqual(plain(sealed), { n: c.n, c: c.c });
        const opened = await call(SC, 'vaultOpen', c.resume_key, c.room_id, c.username, { n: c.n, c: c.c });
        assert.deepEqual(plain(opened), c.state);
        // The saved keys give back the same session.
        const again = SC.sessionFromSaved({ dhSk: opened.dh_sk, sigSeed: opened.sig_seed });
        assert.equal(b64(again.dhSk), c.state.dh_sk);
      }
    });

    await t.test('every refused vector is refused with its code', async () => {
      assert.ok(V2.negative.length >= 40);
      for (const c of V2.negative) {
        await rejects(refuseCase(SC, c), c.code).catch((e) => {
          throw new Error(`${c.name} (${c.why}): ${e.message}`);
        });
      }
    });

    await t.test('round trips with random keys, ids, nonces and file ids', async () => {
      const mk = V2.admission[1].member_key;
      const roomId = V2.admission[1].room_id;
      const host = SC.newSession();
      const bob = SC.newSession();
      assert.notEqual(b64(host.dhSk), b64(bob.dhSk));
      const hostAnn = await call(SC, 'checkAnnouncement', mk, roomId, await call(SC, 'makeAnnouncement', mk, roomId, host, 'alice'), 'alice');
      const bobAnn = await call(SC, 'checkAnnouncement', mk, roomId, await call(SC, 'makeAnnouncement', mk, roomId, bob, 'bob'), 'bob');
      assert.ok(Math.abs(hostAnn.ts - Date.now()) < 60000);
      const key = SC.newEpochKey();
      assert.equal(key.length, 32);
      const g = await call(SC, 'sealGrant', mk, roomId, host, 'alice', bobAnn, 1, 0, ['alice', 'bob'], key);
      const g2 = await call(SC, 'sealGrant', mk, roomId, host, 'alice', bobAnn, 1, 0, ['alice', 'bob'], key);
      assert.notEqual(g.n, g2.n);
      const got = await call(SC, 'openGrant', mk, roomId, bob, 'bob', hostAnn, { ...g, from: 'alice' });
      assert.equal(b64(got.key), b64(key));
      const ep = await call(SC, 'epochFromKey', roomId, got.epoch, got.key);
      const text = 'grüße 👋 and a "quote"\n';
      const a = await call(SC, 'sealText', ep, bob, 'bob', text);
      const b = await call(SC, 'sealText', ep, bob, 'bob', text);
      assert.notEqual(a.n, b.n);
      const header = JSON.parse(fromB64u(a.h).toString('utf8'));
      assert.deepEqual(Object.keys(header), ['v', 'room', 'from', 'type', 'id', 'ts', 'epoch']);
      assert.notEqual(header.id, JSON.parse(fromB64u(b.h)).id);
      assert.equal(fromB64u(header.id).length, 16);
      const opened = await call(SC, 'open', (n) => (n === 1 ? ep : null), a, 'bob', bobAnn);
      assert.equal(SC.fromUtf8(opened.plaintext), text);
      const data = new Uint8Array(crypto.randomBytes(300000));
      const file = await call(SC, 'encryptFile', ep, bob, data, null);
      assert.equal(fromB64u(file.fileId).length, 16);
      assert.equal(file.chunks.length, 2);
      const back = await call(SC, 'decryptChunk', ep, bobAnn, file.fileId, 1, 2, file.chunks[1].c, file.chunks[1].s);
      assert.equal(hex(back), hex(data.subarray(262144)));
      const vault = await call(SC, 'vaultSeal', toB64u(crypto.randomBytes(32)), roomId, 'bob',
        { member_key: mk, dh_sk: b64(bob.dhSk), sig_seed: b64(bob.sigSeed), epochs: { 1: b64(key) }, floor: 1, seen: [] });
      assert.equal(fromB64u(vault.n).length, 12);
    });

    await t.test('refuses what the vectors do not cover', async () => {
      const mk = V2.admission[1].member_key;
      const roomId = V2.admission[1].room_id;
      const env0 = V2.envelope[0];
      const alice = await announced(SC, mk, roomId, env0.sender);
      const lookup = await epochs(SC, roomId, { [env0.epoch]: env0.epoch_key });
      const good = { h: env0.h, n: env0.n, c: env0.c, s: env0.s };
      const open = (e, from = 'alice', ann = alice) => call(SC, 'open', lookup, e, from, ann);
      assert.equal(SC.fromUtf8((await open(good)).plaintext), env0.plaintext);

      // A second spelling of a valid signature (S + L) is refused; tweetnacl alone would take it.
      await rejects(open({ ...good, s: malleate(good.s) }), 'forged');
      await rejects(open({ ...good, s: good.s.slice(0, -2) }), 'forged');
      await rejects(open({ ...good, s: 7 }), 'forged');
      await rejects(open(null), 'malformed');
      await rejects(open({ ...good, h: undefined }), 'malformed');
      await rejects(open({ ...good, h: 'x'.repeat(2049) }), 'malformed');
      await rejects(open({ ...good, n: 'AQEB' }), 'malformed');
      await rejects(open({ ...good, c: toB64u(Buffer.alloc(15)) }), 'malformed', /too short/);
      await rejects(open({ ...good, h: toB64u(Buffer.from('[1]')) }), 'malformed');
      await rejects(open({ ...good, h: 'not json!' }), 'malformed');
      await rejects(open(good, 'alice', { ...alice, user: 'bob' }), 'forged');
      await rejects(open(good, 'alice', { user: 'alice', dh: alice.dh }), 'forged');
      await rejects(call(SC, 'open', () => null, good, 'alice', alice), 'nokey', /epoch 3/);
      // Another room's ep for the same epoch number is not this room's key.
      const foreign = await call(SC, 'epochFromKey', 'lobby', env0.epoch, new Uint8Array(fromB64u(env0.epoch_key)));
      await rejects(call(SC, 'open', () => foreign, good, 'alice', alice), 'room');

      // A signed header with a repeated field, a float where an integer goes, or an extra field.
      const alicePriv = session(SC, env0.sender);
      const ep = lookup(env0.epoch);
      const header = JSON.parse(env0.header_json);
      async function signedHeader(text) {
        const h = toB64u(Buffer.from(text, 'utf8'));
        const nonce = crypto.randomBytes(12);
        const cipher = crypto.createCipheriv('aes-256-gcm', Buffer.from(ep._msg.raw), nonce);
        cipher.setAAD(Buffer.from(h, 'ascii'));
        const c = toB64u(Buffer.concat([cipher.update(Buffer.from('hi')), cipher.final(), cipher.getAuthTag()]));
        const n = toB64u(nonce);
        const nacl = require('tweetnacl');
        const msg = Buffer.concat([Buffer.from('sealchat/v2/envelope\0'), Buffer.from([h, n, c].join('.'))]);
        const s = toB64u(nacl.sign.detached(new Uint8Array(msg), new Uint8Array(alicePriv._sigSk)));
        return { h, n, c, s };
      }
      assert.equal(SC.fromUtf8((await open(await signedHeader(JSON.stringify(header)))).plaintext), 'hi');
      const json = JSON.stringify(header);
      for (const [name, text] of Object.entries({
        'repeated from': json.replace('"from":"alice"', '"from":"bob","from":"alice"'),
        'epoch 3.0': json.replace('"epoch":3', '"epoch":3.0'),
        'ts in exponent form': json.replace(/"ts":(\d+)/, (m, d) => `"ts":${d.slice(0, -3)}e3`),
        'extra field': json.replace('}', ',"x":1}'),
        'missing field': JSON.stringify({ ...header, type: undefined }),
        'negative ts': JSON.stringify({ ...header, ts: -1 }),
      })) {
        await rejects(open(await signedHeader(text)), 'malformed').catch((e) => {
          throw new Error(`${name}: ${e.message}`);
        });
      }
      // A 65-code-point name is not a name; 64 astral characters are.
      const named = (from) => signedHeader(JSON.stringify({ ...header, from }));
      await rejects(call(SC, 'open', lookup, await named('a'.repeat(65)), 'a'.repeat(65), { ...alice, user: 'a'.repeat(65) }), 'malformed');
      const fox = '🦊'.repeat(64);
      assert.equal(SC.fromUtf8((await call(SC, 'open', lookup, await named(fox), fox, { ...alice, user: fox })).plaintext), 'hi');

      // X25519 with a low-order key gives all zeros: refused on both sides of a grant.
      const host = SC.newSession();
      const zeroAnn = { user: 'bob', dh: new Uint8Array(32), sig: alice.sig };
      await rejects(call(SC, 'sealGrant', mk, roomId, host, 'alice', zeroAnn, 1, 0, ['alice', 'bob'], SC.newEpochKey()),
        'malformed', /all zero/);
      const g0 = V2.grant[0];
      const bob = session(SC, g0.member);
      const lowOrderHost = { ...(await announced(SC, mk, roomId, g0.host)), dh: new Uint8Array(32) };
      const g0wire = { from: 'alice', g: g0.g, n: g0.n, c: g0.c, s: g0.s };
      await rejects(call(SC, 'openGrant', mk, roomId, bob, 'bob', lowOrderHost, g0wire), 'malformed');
      const hostAnn = await announced(SC, mk, roomId, g0.host);
      await rejects(call(SC, 'openGrant', mk, roomId, bob, 'bob', hostAnn, { ...g0wire, s: malleate(g0.s) }), 'forged');
      await rejects(call(SC, 'openGrant', mk, roomId, bob, 'bob', hostAnn, { ...g0wire, g: undefined }), 'malformed');
      await rejects(call(SC, 'openGrant', mk, roomId, bob, 'bob', hostAnn, { ...g0wire, from: undefined }), 'forged');
      await rejects(call(SC, 'openGrant', mk, roomId, bob, 'bob', null, g0wire), 'forged');
      await rejects(call(SC, 'openGrant', mk, roomId, bob, 'bob', hostAnn, { ...g0wire, c: g0.c.slice(0, -4) }), 'malformed');

      // Announcements: a tag or signature that is not 32 / 64 bytes is a forgery; a body too long is malformed.
      const a0 = V2.announcement[0];
      const aw = { a: a0.a, t: a0.t, s: a0.s };
      const check = (w, from = a0.user) => call(SC, 'checkAnnouncement', a0.member_key, a0.room_id, w, from);
      await rejects(check({ ...aw, t: aw.t.slice(0, -2) }), 'forged');
      await rejects(check({ ...aw, s: undefined }), 'forged');
      await rejects(check({ ...aw, s: malleate(aw.s) }), 'forged');
      await rejects(check({ ...aw, a: 'A'.repeat(1025) }), 'malformed');
      await rejects(check({ ...aw, a: aw.a + '=' }), 'malformed');
      await rejects(check(null), 'malformed');
      await rejects(call(SC, 'checkAnnouncement', 'AAAA', a0.room_id, aw, a0.user), 'malformed');

      // Chunks: an index out of range, a bad file id, a sender without an announcement.
      const f0 = V2.file[0];
      const fep = await call(SC, 'epochFromKey', f0.room_id, f0.epoch, new Uint8Array(fromB64u(f0.epoch_key)));
      const ch = f0.chunks[0];
      await rejects(call(SC, 'decryptChunk', fep, alice, f0.file_id, 1, 1, ch.c, ch.s), 'malformed', /out of range/);
      await rejects(call(SC, 'decryptChunk', fep, alice, f0.file_id, -1, 1, ch.c, ch.s), 'malformed');
      await rejects(call(SC, 'decryptChunk', fep, alice, 'AAAA', 0, 1, ch.c, ch.s), 'malformed', /16 bytes/);
      await rejects(call(SC, 'decryptChunk', fep, null, f0.file_id, 0, 1, ch.c, ch.s), 'forged');
      await rejects(call(SC, 'decryptChunk', fep, alice, f0.file_id, 0, 1, ch.c, malleate(ch.s)), 'forged');
      const wrongEp = await call(SC, 'epochFromKey', f0.room_id, f0.epoch, SC.newEpochKey());
      await rejects(call(SC, 'decryptChunk', wrongEp, alice, f0.file_id, 0, 1, ch.c, ch.s), 'decrypt', /does not authenticate/);

      // Vault: tampered, wrong shapes.
      const v0 = V2.vault[0];
      await rejects(call(SC, 'vaultOpen', v0.resume_key, v0.room_id, v0.username, { n: v0.n, c: v0.c.slice(0, -3) + 'AAA' }), 'decrypt');
      await rejects(call(SC, 'vaultOpen', v0.resume_key, v0.room_id, v0.username, { n: 'AAAA', c: v0.c }), 'malformed');
      await rejects(call(SC, 'vaultOpen', v0.resume_key, v0.room_id, v0.username, null), 'malformed');
      // A vault that opens but does not hold the state PROTOCOL.md defines is malformed.
      const rk = toB64u(crypto.randomBytes(32));
      const n = crypto.randomBytes(12);
      const cipher = crypto.createCipheriv('aes-256-gcm', fromB64u(rk), n);
      cipher.setAAD(Buffer.concat([Buffer.from('sealchat/v2/vault\0' + v0.room_id + '\0' + v0.username + '\0', 'utf8')]));
      const odd = Buffer.concat([cipher.update(Buffer.from('{"floor":3}')), cipher.final(), cipher.getAuthTag()]);
      await rejects(call(SC, 'vaultOpen', rk, v0.room_id, v0.username, { n: toB64u(n), c: toB64u(odd) }), 'malformed');

      // Sessions from saved keys.
      for (const bad of [null, {}, { dhSk: 'AAAA', sigSeed: v0.state.sig_seed }, { dhSk: v0.state.dh_sk }]) {
        assert.throws(() => SC.sessionFromSaved(bad), (e) => e.code === 'malformed');
      }

      // Admission parameters.
      const c0 = V2.admission[0];
      await rejects(call(SC, 'deriveKeys', 'pw', c0.salt, 600000, 'lobby', 'argon2id', null), 'kdf', /unsupported key derivation "argon2id"/);
      for (const iter of [99999, 10000001, 0, -1, 600000.5, '600000', NaN, Infinity]) {
        await rejects(call(SC, 'deriveKeys', 'pw', c0.salt, iter, 'lobby', 'pbkdf2-sha256', null), 'iter', /between 100000 and 10000000/);
      }
      await rejects(call(SC, 'deriveKeys', 'pw', 'bad salt!', 100000, 'lobby', 'pbkdf2-sha256', null), 'malformed', /bad salt/);
    });

    await t.test('programming errors are TypeErrors; callbacks come once and later', async () => {
      const mk = V2.admission[1].member_key;
      const me = SC.newSession();
      await assert.rejects(call(SC, 'makeAnnouncement', mk, 'room', { dhPk: 1 }, 'bob'), (e) => e.name === 'TypeError');
      await assert.rejects(call(SC, 'makeAnnouncement', 42, 'room', me, 'bob'), (e) => e.name === 'TypeError');
      await assert.rejects(call(SC, 'seal', {}, me, 'bob', 'text', new Uint8Array(1)), (e) => e.name === 'TypeError');
      const ep = await call(SC, 'epochFromKey', 'room', 1, SC.newEpochKey());
      await assert.rejects(call(SC, 'seal', ep, me, 'bob', 'image', new Uint8Array(1)), (e) => e.name === 'TypeError');
      await assert.rejects(call(SC, 'epochFromKey', 'room', 0, SC.newEpochKey()), (e) => e.name === 'TypeError');
      await assert.rejects(call(SC, 'vaultSeal', toB64u(crypto.randomBytes(32)), 'room', 'bob', { floor: 3 }), (e) => e.name === 'TypeError');
      assert.throws(() => SC.seal(ep, me, 'bob', 'text', new Uint8Array(1)), (e) => e.name === 'TypeError');

      // Every callback comes after the call returns, exactly once, on success and on refusal.
      const calls = [];
      let returned = false;
      await new Promise((resolve) => {
        SC.sealText(ep, me, 'bob', 'hi', (err, env) => {
          calls.push(['ok', returned, err]);
          SC.open(() => null, env, 'bob', null, (err2) => {
            calls.push(['refused', returned, err2 && err2.code]);
            setTimeout(resolve, 20);
          });
        });
        returned = true;
      });
      assert.deepEqual(calls, [['ok', true, null], ['refused', true, 'forged']]);
    });

    await t.test('the per-epoch message limit', async () => {
      const me = SC.newSession();
      const ep = await call(SC, 'epochFromKey', 'room', 1, SC.newEpochKey());
      ep._sent = 8388608 - 1; // 2^23, PROTOCOL.md
      await call(SC, 'sealText', ep, me, 'bob', 'the last one');
      await rejects(call(SC, 'sealText', ep, me, 'bob', 'one too many'), 'limit');
    });

    if (mode === 'webcrypto') {
      await t.test('message keys are non-extractable CryptoKeys', async () => {
        const ep = await call(SC, 'epochFromKey', 'room', 1, SC.newEpochKey());
        assert.equal(ep._msg.aes.extractable, false);
        assert.deepEqual(Array.from(ep._msg.aes.usages).sort(), ['decrypt', 'encrypt']);
      });
    } else {
      await t.test('the fallback never touches crypto.subtle', () => {
        assert.equal(stats.subtleReads, readsAfterDetect, 'no read of crypto.subtle after detection');
        assert.equal(stats.worker.subtleReads, 0);
        if (mode === 'fallback') assert.ok(stats.workersStarted > 0, 'the derivation ran in a Worker');
        else assert.equal(stats.workersStarted, 0);
      });
    }
  });
}

for (const mode of ['fallback', 'fallback-noworker']) {
  test(`${mode}: a cancelled derivation stops, and says nothing more`, async () => {
    const { SC } = makeBrowser(mode);
    assert.equal(await detect(SC), 'fallback');
    const c = V2.admission[0];
    let firstProgress = 0;
    let firstDone = false;
    let cancelledAt = -1;
    let run;
    await new Promise((resolve) => {
      run = SC.deriveKeys(c.password, c.salt, 10000000, c.room_id, c.kdf, (f) => {
        firstProgress += 1;
        if (f > 0 && cancelledAt < 0) {
          cancelledAt = firstProgress;
          run.cancel();
          resolve();
        }
      }, () => { firstDone = true; });
    });
    run.cancel(); // twice is harmless
    // A second derivation, run to its end: the first, had it gone on, would have reported meanwhile.
    const progress = [];
    const keys = await call(SC, 'deriveKeys', c.password, c.salt, c.iter, c.room_id, c.kdf, (f) => progress.push(f));
    assert.equal(keys.auth, c.auth_key);
    assert.ok(progress.length > 2, 'the second one reported its own progress');
    assert.equal(firstProgress, cancelledAt, 'no progress after cancel()');
    assert.equal(firstDone, false, 'no callback after cancel()');
  });
}

test('encodings', () => {
  const { SC } = makeBrowser('none');
  assert.equal(SC.VERSION, 2);
  for (let n = 0; n < 40; n++) {
    const b = crypto.randomBytes(n);
    assert.equal(SC.b64u(new Uint8Array(b)), toB64u(b));
    assert.equal(hex(SC.unb64u(toB64u(b))), b.toString('hex'));
  }
  for (const bad of ['a', 'ab=c', 'AA==', 'a+b/', 'ab cd', 'é', 42, null]) {
    assert.throws(() => SC.unb64u(bad), (e) => e.code === 'malformed' && /base64url/.test(e.message), String(bad));
  }
  const text = 'ASCII, ß, €, 👋, \u2028';
  assert.equal(hex(SC.utf8(text)), Buffer.from(text, 'utf8').toString('hex'));
  assert.equal(SC.fromUtf8(SC.utf8(text)), text);
  assert.equal(hex(SC.utf8('\ud800x')), Buffer.from('\ufffdx', 'utf8').toString('hex'));
  for (const bad of [[0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xff], [0xf4, 0x90, 0x80, 0x80]]) {
    assert.throws(() => SC.fromUtf8(new Uint8Array(bad)), /invalid UTF-8/);
  }
});

test('the API is exactly the v2 one', () => {
  const { SC } = makeBrowser('webcrypto');
  assert.deepEqual(Object.keys(SC).sort(), [
    'CHUNK_BYTES', 'DEFAULT_ITER', 'KDF', 'MAX_ITER', 'MIN_ITER', 'VERSION', 'b64u', 'checkAnnouncement', 'chunkCount',
    'decryptChunk', 'deriveKeys', 'detect', 'encryptFile', 'epochFromKey', 'fingerprint', 'fromUtf8', 'makeAnnouncement',
    'newEpochKey', 'newSalt', 'newSession', 'open', 'openGrant', 'randomBytes', 'safetyCode', 'seal', 'sealGrant',
    'sealText', 'sessionFromSaved', 'setFallbackUrls', 'unb64u', 'utf8', 'vaultOpen', 'vaultSeal',
  ]);
});

test('callbacks come through a MessageChannel where there is one, and through timers if it is dead', async (t) => {
  for (const channel of ['working', 'dead']) {
    await t.test(channel, async () => {
      const { SC, stats } = makeBrowser('webcrypto', { channel });
      const c = V2.envelope[0];
      const ann = await announced(SC, V2.grant[0].member_key, c.room_id, c.sender);
      const ep = await call(SC, 'epochFromKey', c.room_id, c.epoch, new Uint8Array(fromB64u(c.epoch_key)));
      const me = session(SC, c.sender);
      const env = await call(SC, 'sealText', ep, me, c.sender.user, 'hi');
      // Asynchronous, exactly once, and a callback that throws stops nothing else.
      const order = [];
      await new Promise((resolve) => {
        SC.open(() => ep, env, c.sender.user, ann, () => {
          order.push('first');
          throw new Error('a page bug');
        });
        SC.open(() => ep, env, c.sender.user, ann, (err, got) => {
          order.push(err ? err.code : SC.fromUtf8(got.plaintext));
          setTimeout(resolve, 50);
        });
        order.push('returned');
      });
      assert.deepEqual(order, ['returned', 'first', 'hi']);
      assert.deepEqual(stats.pageErrors, ['a page bug']);
      if (channel === 'working') assert.ok(stats.messages > 0, 'the callbacks came as messages');
      else assert.equal(stats.messages, 0);
    });
  }
});

test('tweetnacl: missing or broken means unsupported, never a wrong key', async (t) => {
  await t.test('a page without it derives admission keys but has no sessions', async () => {
    const { SC } = makeBrowser('webcrypto', { nacl: false });
    const c = V2.admission[0];
    assert.equal((await call(SC, 'deriveKeys', c.password, c.salt, c.iter, c.room_id, c.kdf, null)).memberKey, c.member_key);
    assert.throws(() => SC.newSession(), (e) => e.code === 'unsupported');
    assert.throws(() => SC.sessionFromSaved({ dhSk: V2.vault[0].state.dh_sk, sigSeed: V2.vault[0].state.sig_seed }),
      (e) => e.code === 'unsupported');
  });
  await t.test('a library that gives wrong answers fails its self-test', () => {
    const { SC, ctx } = makeBrowser('webcrypto');
    const real = ctx.nacl.scalarMult;
    ctx.nacl.scalarMult = (n, p) => {
      const out = real(n, p);
      out[0] ^= 1;
      return out;
    };
    assert.throws(() => SC.newSession(), (e) => e.code === 'unsupported');
  });
});

test('detection', async (t) => {
  await t.test('nothing usable: null, and derivation says so', async () => {
    const { SC } = makeBrowser('none');
    assert.equal(await detect(SC), null);
    await rejects(call(SC, 'deriveKeys', 'pw', 'AAECAwQFBgcICQoLDA0ODw', 100000, 'lobby', 'pbkdf2-sha256', null), 'unsupported', /cannot do the encryption/);
  });

  await t.test('no fallback URLs and no crypto.subtle: null', async () => {
    const { SC } = makeBrowser('fallback');
    SC.setFallbackUrls({ vendor: null, worker: null });
    assert.equal(await detect(SC), null);
    SC.setFallbackUrls(env.URLS);
    assert.equal(await detect(SC), 'fallback');
  });

  const broken = {
    'rejects every call': {
      importKey: () => Promise.reject(new Error('NotSupportedError')),
      digest: () => Promise.reject(new Error('NotSupportedError')),
    },
    'throws synchronously': {
      importKey: () => { throw new Error('SecurityError'); },
      digest: () => { throw new Error('SecurityError'); },
    },
    'returns no promises (pre-standard)': {
      importKey: () => ({ oncomplete: null }),
      digest: () => ({ oncomplete: null }),
    },
    'gives wrong answers': {
      importKey: crypto.webcrypto.subtle.importKey.bind(crypto.webcrypto.subtle),
      digest: () => Promise.resolve(new ArrayBuffer(32)),
    },
    'has no HMAC': (() => {
      const s = crypto.webcrypto.subtle;
      return {
        importKey: (fmt, key, alg, ...rest) => (alg.name === 'HMAC' ? Promise.reject(new Error('NotSupportedError')) : s.importKey(fmt, key, alg, ...rest)),
        digest: s.digest.bind(s),
        deriveBits: s.deriveBits.bind(s),
        encrypt: s.encrypt.bind(s),
        decrypt: s.decrypt.bind(s),
      };
    })(),
  };
  for (const [name, subtle] of Object.entries(broken)) {
    await t.test(`crypto.subtle that ${name}: fallback`, async () => {
      const { SC } = makeBrowser('fallback', { subtle });
      assert.equal(await detect(SC), 'fallback');
    });
  }

  await t.test('concurrent detect calls share one probe', async () => {
    const { SC } = makeBrowser('webcrypto');
    const results = await Promise.all([detect(SC), detect(SC), detect(SC)]);
    assert.deepEqual(results, ['webcrypto', 'webcrypto', 'webcrypto']);
  });
});

test('the lazily loaded scripts carry the integrity the page states', async (t) => {
  const good = {
    'data-vendor': env.URLS.vendor,
    'data-vendor-integrity': env.sriFor(env.URLS.vendor),
    'data-worker': env.URLS.worker,
    'data-worker-integrity': env.sriFor(env.URLS.worker),
  };
  await t.test('from the sealchat-crypto meta element', async () => {
    const { SC, stats } = makeBrowser('fallback-noworker', { meta: good });
    SC.setFallbackUrls(env.URLS); // as the pages call it: URLs only
    assert.equal(await detect(SC), 'fallback');
    const loaded = Object.fromEntries(stats.scriptElements.map((el) => [el.src, el.integrity]));
    assert.deepEqual(loaded, { [env.URLS.vendor]: good['data-vendor-integrity'], [env.URLS.worker]: good['data-worker-integrity'] });
  });
  await t.test('a vendored library that does not match is refused', async () => {
    const { SC, stats } = makeBrowser('fallback-noworker', { meta: { ...good, 'data-vendor-integrity': 'sha384-' + 'A'.repeat(64) } });
    SC.setFallbackUrls(env.URLS);
    assert.equal(await detect(SC), null);
    assert.deepEqual(stats.scriptsLoaded, []);
  });
  await t.test('given explicitly', async () => {
    const { SC, stats } = makeBrowser('fallback-noworker');
    SC.setFallbackUrls({ ...env.URLS, vendorIntegrity: good['data-vendor-integrity'] });
    assert.equal(await detect(SC), 'fallback');
    assert.equal(stats.scriptElements[0].integrity, good['data-vendor-integrity']);
  });
});

test('fallback KDF engine: fast core and library-only loop agree with the vector', async () => {
  const { SC, ctx } = makeBrowser('fallback-noworker');
  assert.equal(await detect(SC), 'fallback');
  const c = V2.admission[0];
  const kdf = ctx.SealKdf;
  assert.equal(kdf.selfTest(ctx.forge), true);
  const pw = new Uint8Array(Buffer.from(c.password, 'utf8'));
  const salt = new Uint8Array(fromB64u(c.salt));
  for (const fast of [true, false]) {
    const job = new kdf.Job(ctx.forge, pw, salt, c.iter, fast);
    while (!job.step(25000));
    assert.equal(toB64u(Buffer.from(job.result())), c.ikm, fast ? 'fast core' : 'library loop');
  }
  // Keys longer than the 64-byte HMAC block are hashed first.
  const long = Buffer.alloc(100, 7);
  const job = new kdf.Job(ctx.forge, new Uint8Array(long), salt, 1000, true);
  job.step(1000);
  assert.equal(hex(job.result()), crypto.pbkdf2Sync(long, fromB64u(c.salt), 1000, 32, 'sha256').toString('hex'));
});

test('vendored libraries are the pinned npm releases', () => {
  const readme = fs.readFileSync(path.join(repoRoot, 'frontend', 'static', 'vendor', 'README.md'), 'utf8');
  const script = fs.readFileSync(path.join(repoRoot, 'scripts', 'vendor-crypto.sh'), 'utf8');
  for (const [file, pin, installed] of [
    [env.VENDOR_FILE, 'FORGE_FILE_SHA256', path.join('node-forge', 'dist', 'forge.min.js')],
    [env.NACL_FILE, 'NACL_FILE_SHA256', path.join('tweetnacl', 'nacl-fast.min.js')],
  ]) {
    const vendored = fs.readFileSync(file);
    const digest = crypto.createHash('sha256').update(vendored).digest('hex');
    assert.ok(readme.includes(digest), `frontend/static/vendor/README.md names the sha256 of ${path.basename(file)}`);
    assert.ok(script.includes(`${pin}=${digest}`), `scripts/vendor-crypto.sh pins the same sha256 (${pin})`);
    const lib = path.join(repoRoot, 'node_modules', installed);
    assert.ok(fs.existsSync(lib), `node_modules/${installed} is missing: run \`npm ci\``);
    assert.ok(vendored.equals(fs.readFileSync(lib)), `${path.basename(file)} differs from the locked npm package`);
  }
});
