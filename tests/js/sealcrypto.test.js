'use strict';
// SealCrypto against the shared protocol vectors and the file-framing vectors, on both backends:
// Web Crypto, and the node-forge fallback with crypto.subtle absent (in a Worker and, for engines
// without Worker, in main-thread slices). Run with: node --test tests/js/

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const env = require('./browser-env.js');

const { repoRoot, makeBrowser, call, callThen, detect, hex, fromB64u, toB64u, sha256hex } = env;
const SHARED = JSON.parse(fs.readFileSync(path.join(repoRoot, 'tests', 'vectors', 'protocol-v1-vectors.json'), 'utf8'));
const FILES = JSON.parse(fs.readFileSync(path.join(repoRoot, 'tests', 'vectors', 'file-chunks-v1.json'), 'utf8'));

const MODES = ['webcrypto', 'fallback', 'fallback-noworker'];
const EXPECTED_BACKEND = { webcrypto: 'webcrypto', fallback: 'fallback', 'fallback-noworker': 'fallback' };

// Objects made inside the imitated page have that realm's prototypes; compare their data only.
const plain = (x) => JSON.parse(JSON.stringify(x));

function pattern(size) {
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) out[i] = i % 251;
  return out;
}

function seal(SC, keys, from, type, bytes, fixed) {
  return callThen(SC, 'seal', [keys, from, type, bytes], [fixed]);
}

function encryptFile(SC, keys, bytes, fixedFileId, onProgress) {
  return callThen(SC, 'encryptFile', [keys, bytes, onProgress || null], [fixedFileId]);
}

async function rejects(promise, code, messagePattern) {
  await assert.rejects(promise, (err) => {
    // Errors come from the page's realm, so look at the tag rather than instanceof.
    assert.equal(Object.prototype.toString.call(err), '[object Error]', 'an Error is expected');
    if (code) assert.equal(err.code, code, `code of "${err.message}"`);
    if (messagePattern) assert.match(err.message, messagePattern);
    return true;
  });
}

// Keys for the first shared case without running PBKDF2 again.
function resumeCase(SC, c, sent) {
  const saved = { roomId: c.room_id, enc: toB64u(Buffer.from(c.enc_key_hex, 'hex')) };
  if (sent !== undefined) saved.sent = sent;
  return call(SC, 'importForResume', saved);
}

// A fresh envelope whose header is given verbatim, sealed with the room's real key.
function envelopeWithHeader(c, headerJson, plaintext) {
  const h = toB64u(Buffer.from(headerJson, 'utf8'));
  const n = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', Buffer.from(c.enc_key_hex, 'hex'), n);
  cipher.setAAD(Buffer.from(h, 'ascii'));
  const body = Buffer.concat([cipher.update(Buffer.from(plaintext, 'utf8')), cipher.final(), cipher.getAuthTag()]);
  return { h, n: toB64u(n), c: toB64u(body) };
}

for (const mode of MODES) {
  test(`${mode}: protocol and file vectors`, async (t) => {
    const { SC, stats } = makeBrowser(mode);
    assert.equal(await detect(SC), EXPECTED_BACKEND[mode]);
    const readsAfterDetect = stats.subtleReads;

    for (const c of SHARED.cases) {
      await t.test(`derive, seal and open: ${c.room_id} (${c.iter} iterations)`, async () => {
        const progress = [];
        const keys = await call(SC, 'deriveKeys', c.password, c.salt, c.iter, c.room_id, c.kdf, (f) => progress.push(f));
        assert.equal(keys.roomId, c.room_id);
        assert.equal(keys.backend, EXPECTED_BACKEND[mode]);
        assert.equal(hex(keys._ikm), c.ikm_hex, 'ikm');
        // What sessionStorage gets: the message key and its count, never the auth key.
        const saved = SC.exportForResume(keys);
        assert.deepEqual(plain(saved), { roomId: c.room_id, enc: saved.enc, sent: 0 });
        assert.ok(!JSON.stringify(saved).includes(c.auth_key), 'the auth key is not in the resume data');
        assert.equal(hex(fromB64u(saved.enc)), c.enc_key_hex, 'enc_key');
        assert.equal(keys.authKey, c.auth_key, 'auth_key');
        assert.equal(hex(fromB64u(keys.verifier)), c.verifier_hex, 'verifier');

        assert.equal(progress[0], 0);
        assert.equal(progress[progress.length - 1], 1);
        for (let i = 1; i < progress.length; i++) assert.ok(progress[i] >= progress[i - 1], 'progress is monotonic');
        if (mode === 'webcrypto') assert.deepEqual(progress, [0, 1]);
        else assert.ok(progress.length > 2, 'the fallback reports intermediate progress');

        const fixed = { id: c.header.id, ts: c.header.ts, nonce: c.envelope.n };
        const sealed = await seal(SC, keys, c.header.from, c.header.type, SC.utf8(c.plaintext), fixed);
        assert.deepEqual(plain(sealed), c.envelope, 'exact envelope');
        assert.deepEqual(JSON.parse(fromB64u(sealed.h).toString('utf8')), c.header);

        const opened = await call(SC, 'open', keys, c.envelope, c.header.from);
        assert.equal(SC.fromUtf8(opened.plaintext), c.plaintext);
        assert.deepEqual(plain(opened.header), c.header);

        // Resumed keys (sessionStorage round trip) open the same envelope and carry the count;
        // they hold no join credential.
        const resumed = await call(SC, 'importForResume', JSON.parse(JSON.stringify(SC.exportForResume(keys))));
        assert.equal(resumed.authKey, null);
        assert.equal(resumed.verifier, null);
        assert.equal(SC.exportForResume(resumed).sent, 1, 'the envelope sealed above is counted');
        const again = await call(SC, 'open', resumed, c.envelope, c.header.from);
        assert.equal(SC.fromUtf8(again.plaintext), c.plaintext);
      });
    }

    for (const f of FILES.files) {
      await t.test(`file vector: ${f.size} bytes`, async () => {
        const keys = await resumeCase(SC, SHARED.cases[0]);
        assert.equal(hex(fromB64u(SC.exportForResume(keys).enc)), FILES.enc_key_hex);
        assert.equal(await call(SC, 'fileKeyHex', keys, f.file_id), f.file_key_hex, 'file_key');
        const content = pattern(f.size);
        assert.equal(sha256hex(content), f.content_sha256);
        const progress = [];
        const out = await encryptFile(SC, keys, new Uint8Array(content), f.file_id, (x) => progress.push(x));
        assert.equal(progress[progress.length - 1], 1);
        assert.equal(out.fileId, f.file_id);
        assert.equal(out.chunks.length, f.chunks);
        assert.equal(SC.chunkCount(f.size), f.chunks);
        out.chunks.forEach((cB64u, i) => assert.equal(sha256hex(fromB64u(cB64u)), f.chunk_sha256[i], `chunk ${i} sha256`));
        if (f.chunk_c) assert.deepEqual(plain(out.chunks), f.chunk_c, 'full chunk ciphertexts');
        const parts = [];
        for (let i = 0; i < f.chunks; i++) {
          parts.push(Buffer.from(await call(SC, 'decryptChunk', keys, f.file_id, i, f.chunks, out.chunks[i])));
        }
        assert.equal(sha256hex(Buffer.concat(parts)), f.content_sha256, 'decrypted content');
      });
    }

    await t.test('round trips with random ids, nonces and file ids', async () => {
      const keys = await resumeCase(SC, SHARED.cases[0]);
      const text = 'grüße 👋 and a "quote"\n';
      const a = await call(SC, 'sealText', keys, 'carol', text);
      const b = await call(SC, 'sealText', keys, 'carol', text);
      assert.notEqual(a.n, b.n);
      assert.notEqual(JSON.parse(fromB64u(a.h)).id, JSON.parse(fromB64u(b.h)).id);
      assert.equal(fromB64u(a.n).length, 12);
      const header = JSON.parse(fromB64u(a.h).toString('utf8'));
      assert.deepEqual(Object.keys(header), ['v', 'room', 'from', 'type', 'id', 'ts']);
      assert.equal(fromB64u(header.id).length, 16);
      const opened = await call(SC, 'open', keys, a, 'carol');
      assert.equal(SC.fromUtf8(opened.plaintext), text);
      const content = new Uint8Array(crypto.randomBytes(300000));
      const file = await encryptFile(SC, keys, content);
      assert.equal(fromB64u(file.fileId).length, 16);
      assert.equal(file.chunks.length, 2);
      const back = await call(SC, 'decryptChunk', keys, file.fileId, 1, 2, file.chunks[1]);
      assert.equal(hex(back), hex(content.subarray(262144)));
    });

    await t.test('refuses forged, foreign, tampered and unknown input', async () => {
      const c0 = SHARED.cases[0];
      const c1 = SHARED.cases[1];
      const keys = await resumeCase(SC, c0);
      const good = c0.envelope;

      const flipped = fromB64u(good.c);
      flipped[0] ^= 1;
      await rejects(call(SC, 'open', keys, { ...good, c: toB64u(flipped) }, 'alice'), 'decrypt', /cannot decrypt/);
      const shortTag = fromB64u(good.c).subarray(0, 10);
      await rejects(call(SC, 'open', keys, { ...good, c: toB64u(shortTag) }, 'alice'), 'decrypt', /cannot decrypt/);
      await rejects(call(SC, 'open', keys, { ...good, n: toB64u(Buffer.alloc(12)) }, 'alice'), 'decrypt');
      // A header changed after sealing (ts edited) no longer matches the associated data.
      const edited = JSON.stringify({ ...c0.header, ts: c0.header.ts + 1 });
      await rejects(call(SC, 'open', keys, { ...good, h: toB64u(Buffer.from(edited)) }, 'alice'), 'decrypt');

      await rejects(call(SC, 'open', keys, c1.envelope, 'bob'), 'room', /another room/);
      const otherRoom = envelopeWithHeader(c0, JSON.stringify({ ...c0.header, room: 'kitchen' }), 'hi');
      await rejects(call(SC, 'open', keys, otherRoom, 'alice'), 'room', /another room/);

      await rejects(call(SC, 'open', keys, good, 'mallory'), 'forged', /forged sender: claims "alice", sent by "mallory"/);

      const v2 = envelopeWithHeader(c0, JSON.stringify({ ...c0.header, v: 2 }), 'hi');
      await rejects(call(SC, 'open', keys, v2, 'alice'), 'version', /unknown protocol version 2/);
      const noV = envelopeWithHeader(c0, JSON.stringify({ room: 'lobby', from: 'alice' }), 'hi');
      await rejects(call(SC, 'open', keys, noV, 'alice'), 'version');

      await rejects(call(SC, 'open', keys, { h: good.h, n: good.n }, 'alice'), 'malformed', /malformed envelope/);
      await rejects(call(SC, 'open', keys, null, 'alice'), 'malformed');
      await rejects(call(SC, 'open', keys, { ...good, h: 'not json!' }, 'alice'), 'malformed');
      await rejects(call(SC, 'open', keys, { ...good, h: toB64u(Buffer.from('[1]')) }, 'alice'), 'malformed', /unreadable header/);
      await rejects(call(SC, 'open', keys, { ...good, n: 'AQEB' }, 'alice'), 'malformed', /bad nonce/);
      await rejects(call(SC, 'open', keys, { ...good, c: 'a=' }, 'alice'), 'malformed');

      await rejects(call(SC, 'deriveKeys', 'pw', c0.salt, 600000, 'lobby', 'argon2id', null), 'kdf', /unsupported key derivation "argon2id"/);
      await rejects(call(SC, 'deriveKeys', 'pw', c0.salt, 600000, 'lobby', 'pbkdf2-sha512', null), 'kdf');
      for (const iter of [99999, 10000001, 0, -1, 600000.5, '600000', NaN, Infinity]) {
        await rejects(call(SC, 'deriveKeys', 'pw', c0.salt, iter, 'lobby', 'pbkdf2-sha256', null), 'iter', /between 100000 and 10000000/);
      }
      await rejects(call(SC, 'deriveKeys', 'pw', 'bad salt!', 100000, 'lobby', 'pbkdf2-sha256', null), 'malformed', /bad salt/);

      const f = FILES.files[2];
      const file = await encryptFile(SC, keys, new Uint8Array(pattern(f.size)), f.file_id);
      await rejects(call(SC, 'decryptChunk', keys, f.file_id, 0, 3, file.chunks[1]), 'decrypt', /chunk 0\/3 does not authenticate/);
      await rejects(call(SC, 'decryptChunk', keys, f.file_id, 1, 3, file.chunks[0]), 'decrypt', /does not authenticate/);
      await rejects(call(SC, 'decryptChunk', keys, f.file_id, 2, 4, file.chunks[2]), 'decrypt', /chunk 2\/4 does not authenticate/);
      await rejects(call(SC, 'decryptChunk', keys, f.file_id, 1, 2, file.chunks[1]), 'decrypt');
      await rejects(call(SC, 'decryptChunk', keys, FILES.files[1].file_id, 0, 3, file.chunks[0]), 'decrypt');
      await rejects(call(SC, 'decryptChunk', keys, f.file_id, 3, 3, file.chunks[2]), 'malformed', /out of range/);
      await rejects(call(SC, 'decryptChunk', keys, f.file_id, -1, 3, file.chunks[0]), 'malformed');
      await rejects(call(SC, 'decryptChunk', keys, 'AAAA', 0, 3, file.chunks[0]), 'malformed', /file id/);
      const cut = fromB64u(file.chunks[2]).subarray(1);
      await rejects(call(SC, 'decryptChunk', keys, f.file_id, 2, 3, toB64u(cut)), 'decrypt');

      await rejects(call(SC, 'importForResume', { roomId: 'lobby', enc: 'AAAA' }), 'malformed');
      await rejects(call(SC, 'importForResume', null), 'malformed');
      for (const sent of [-1, 1.5, '3', 8388609, null]) {
        await rejects(resumeCase(SC, c0, sent), 'malformed', /message count/);
      }
    });

    await t.test('header fields with the wrong type are malformed, not messages', async () => {
      const c0 = SHARED.cases[0];
      const keys = await resumeCase(SC, c0);
      const h = c0.header;
      const bad = {
        'no id': { v: 1, room: h.room, from: h.from, type: h.type, ts: h.ts },
        'numeric id': { ...h, id: 7 },
        'id of 15 bytes': { ...h, id: toB64u(Buffer.alloc(15, 1)) },
        'id of 17 bytes': { ...h, id: toB64u(Buffer.alloc(17, 1)) },
        'id with padding': { ...h, id: Buffer.alloc(16, 1).toString('base64') },
        'non-canonical id': { ...h, id: toB64u(Buffer.alloc(16, 0)).slice(0, 21) + 'B' },
        'ts as a string': { ...h, ts: String(h.ts) },
        'fractional ts': { ...h, ts: h.ts + 0.5 },
        'no ts': { v: 1, room: h.room, from: h.from, type: h.type, id: h.id },
        'numeric type': { ...h, type: 1 },
        'no type': { v: 1, room: h.room, from: h.from, id: h.id, ts: h.ts },
      };
      for (const [name, header] of Object.entries(bad)) {
        const env = envelopeWithHeader(c0, JSON.stringify(header), 'hi');
        await rejects(call(SC, 'open', keys, env, h.from), 'malformed', /bad header/).catch((e) => {
          throw new Error(`${name}: ${e.message}`);
        });
      }
      const fine = envelopeWithHeader(c0, JSON.stringify({ ...h, id: toB64u(Buffer.alloc(16, 9)), ts: 0 }), 'hi');
      assert.equal(SC.fromUtf8((await call(SC, 'open', keys, fine, h.from)).plaintext), 'hi');
    });

    await t.test('the per-key message limit holds across a resume', async () => {
      const c0 = SHARED.cases[0];
      const LIMIT = 8388608; // 2^23, PROTOCOL.md
      const keys = await resumeCase(SC, c0, LIMIT - 1);
      await call(SC, 'sealText', keys, 'alice', 'the last one');
      await rejects(call(SC, 'sealText', keys, 'alice', 'one too many'), 'limit', /maximum number of messages/);
      // A reload brings the count back with the key: the limit does not start over.
      const saved = JSON.parse(JSON.stringify(SC.exportForResume(keys)));
      assert.equal(saved.sent, LIMIT);
      const reloaded = await call(SC, 'importForResume', saved);
      await rejects(call(SC, 'sealText', reloaded, 'alice', 'after reload'), 'limit');
      // Below the limit the count survives the round trip too.
      const fresh = await resumeCase(SC, c0, 41);
      await call(SC, 'sealText', fresh, 'alice', 'x');
      const back = await call(SC, 'importForResume', JSON.parse(JSON.stringify(SC.exportForResume(fresh))));
      assert.equal(SC.exportForResume(back).sent, 42);
      // Resume data saved before the count existed starts at zero.
      assert.equal(SC.exportForResume(await resumeCase(SC, c0)).sent, 0);
    });

    if (mode === 'webcrypto') {
      await t.test('the message key is a non-extractable CryptoKey', () => {
        return resumeCase(SC, SHARED.cases[0]).then((keys) => {
          assert.equal(keys._enc.aes.extractable, false);
          assert.deepEqual(Array.from(keys._enc.aes.usages).sort(), ['decrypt', 'encrypt']);
        });
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

test('encodings', () => {
  const { SC } = makeBrowser('none');
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
  const c = SHARED.cases[0];
  const kdf = ctx.SealKdf;
  assert.equal(kdf.selfTest(ctx.forge), true);
  const pw = new Uint8Array(Buffer.from(c.password, 'utf8'));
  const salt = new Uint8Array(fromB64u(c.salt));
  for (const fast of [true, false]) {
    const job = new kdf.Job(ctx.forge, pw, salt, c.iter, fast);
    while (!job.step(25000));
    assert.equal(hex(job.result()), c.ikm_hex, fast ? 'fast core' : 'library loop');
  }
  // Keys longer than the 64-byte HMAC block are hashed first.
  const long = Buffer.alloc(100, 7);
  const job = new kdf.Job(ctx.forge, new Uint8Array(long), salt, 1000, true);
  job.step(1000);
  assert.equal(hex(job.result()), crypto.pbkdf2Sync(long, fromB64u(c.salt), 1000, 32, 'sha256').toString('hex'));
});

test('vendored library is the pinned npm release', () => {
  const vendored = fs.readFileSync(env.VENDOR_FILE);
  const digest = crypto.createHash('sha256').update(vendored).digest('hex');
  const readme = fs.readFileSync(path.join(repoRoot, 'frontend', 'static', 'vendor', 'README.md'), 'utf8');
  assert.ok(readme.includes(digest), 'frontend/static/vendor/README.md names the sha256 of the vendored file');
  const script = fs.readFileSync(path.join(repoRoot, 'scripts', 'vendor-crypto.sh'), 'utf8');
  assert.ok(script.includes(`FILE_SHA256=${digest}`), 'scripts/vendor-crypto.sh pins the same sha256');
  const installed = path.join(repoRoot, 'node_modules', 'node-forge', 'dist', 'forge.min.js');
  assert.ok(fs.existsSync(installed), 'node_modules/node-forge is missing: run `npm ci`');
  assert.ok(vendored.equals(fs.readFileSync(installed)), 'vendored file differs from the locked node-forge package');
});
