'use strict';
// The create form's strength meter and generators (frontend/static/js/passwords.js): what a person
// choosing a room password is told, for every word the passphrase generator can draw.
// Run with: node --test tests/js/

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const path = require('node:path');
const vm = require('node:vm');
const { staticDir, runFile } = require('./browser-env.js');

// catalog: the page's catalog (see frontend/static/js/i18n.js); none gives the English words.
function load(catalog) {
  const ctx = vm.createContext({ crypto: { getRandomValues: (a) => crypto.randomFillSync(a) } });
  if (catalog) ctx.SealCatalog = catalog;
  runFile(ctx, path.join(staticDir, 'js', 'i18n.js')); // every page loads it before the other scripts
  runFile(ctx, path.join(staticDir, 'js', 'passwords.js'));
  return ctx.Seal.passwords;
}

const P = load();

test('a generated passphrase rates Good or better whichever word it starts or ends with', () => {
  const words = Array.from(P.WORDS);
  assert.equal(new Set(words).size, words.length, 'the word list has duplicates');
  const filler = ['otter', 'maple', 'quartz', 'lagoon', 'cedar', 'piano'];
  for (const w of words) {
    for (const phrase of [[w, ...filler, 'comet'], ['comet', ...filler, w]]) {
      const r = P.strength(phrase.join('-'));
      assert.ok(r.score >= 3, `${phrase.join('-')} rated ${r.label} (${r.bits} bits)`);
    }
  }
});

test('generated passwords and passphrases rate Good or better', () => {
  for (let i = 0; i < 5000; i++) {
    const pw = P.generatePassword(20);
    assert.equal(pw.length, 20);
    assert.equal(P.strength(pw).label, 'Strong', pw);
    const phrase = P.generatePassphrase(8);
    assert.equal(phrase.split('-').length, 8);
    // 8 words drawn from 256: the meter states the 64 bits the generator drew, not more.
    assert.equal(P.strength(phrase).bits, 64, phrase);
    assert.equal(P.strength(phrase).label, 'Good', phrase);
  }
});

test('well-known passwords, keyboard runs and repeats rate Too weak', () => {
  for (const pw of ['password', 'Password1!', 'dragon', 'qwerty123', 'letmein!!', 'sealchat2026',
    '12345678', '123456789!', 'abcdefgh', 'ZYXWVUTS', 'qwertyuiop', '987654321', 'aaaaaaaaaaaa',
    'apple', 'otter-maple']) {
    assert.equal(P.strength(pw).label, 'Too weak', pw);
  }
});

test('a strong password that begins with a common word or run keeps its rating', () => {
  for (const pw of ['dragon7#kq Lm2!vX9 pR4@', '1234Xk9!mQ2#vL8$wR', 'Password-otter-maple-quartz-lagoon-cedar']) {
    assert.ok(P.strength(pw).score >= 3, `${pw} rated ${P.strength(pw).label}`);
  }
});

test('the meter\'s words come from the page\'s catalog', () => {
  const german = load({
    lang: 'de', rtl: false, plural: (n) => (n === 1 ? 0 : 1),
    messages: { 'Too weak': 'Zu schwach', Weak: 'Schwach', Fair: 'Mittel', Good: 'Gut', Strong: 'Stark' },
  });
  assert.equal(german.strength('').label, 'Zu schwach');
  assert.equal(german.strength('password').label, 'Zu schwach');
  assert.equal(german.strength('otter-maple-quartz-lagoon-cedar-piano-comet-fox').label, 'Gut');
  assert.equal(german.strength(german.generatePassword(20)).label, 'Stark');
  assert.equal(german.strength('otter-maple-quartz-lagoon-cedar-piano-comet-fox').score, 3, 'scores do not change');
});
