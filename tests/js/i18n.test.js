'use strict';
// Seal.i18n (frontend/static/js/i18n.js) in a vm: English without a catalog, a catalog's words,
// plural forms chosen by the catalog's rule, placeholders, numbers, sizes and times.
// Run with: node --test tests/js/

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const vm = require('node:vm');
const { staticDir, runFile } = require('./browser-env.js');

function load(catalog) {
  const ctx = vm.createContext({});
  if (catalog) ctx.SealCatalog = catalog;
  runFile(ctx, path.join(staticDir, 'js', 'i18n.js'));
  return ctx.Seal.i18n;
}

// Polish, as chat/jscatalog.py writes it (plural rule from CLDR).
const POLISH = {
  lang: 'pl', rtl: false,
  messages: {
    'Remove {user} from the room?': 'Usunąć {user} z pokoju?',
    '{count} member': ['{count} uczestnik', '{count} uczestników', '{count} uczestników'],
    '{count} guess': ['{count} próba', '{count} próby', '{count} prób'],
    '{size} MB': '{size} MB',
  },
  plural: (n) => +(n == 1 ? 0 : n % 10 >= 2 && n % 10 <= 4 && (n % 100 < 12 || n % 100 > 14) ? 1 : 2),
  number: { decimal: ',', group: '\u00a0', minGroup: 1 },
  time: { pattern: 'HH:mm', am: 'AM', pm: 'PM' },
};

test('without a catalog the English source is used, placeholders filled', () => {
  const i18n = load(null);
  assert.equal(i18n.t('Remove {user} from the room?', { user: 'bob' }), 'Remove bob from the room?');
  assert.equal(i18n.n('{count} member', '{count} members', 1), '1 member');
  assert.equal(i18n.n('{count} member', '{count} members', 1200), '1,200 members');
  assert.equal(i18n.lang(), 'en');
  assert.equal(i18n.rtl(), false);
});

test('a catalog translates and picks the plural form by its rule', () => {
  const i18n = load(POLISH);
  assert.equal(i18n.t('Remove {user} from the room?', { user: 'ola' }), 'Usunąć ola z pokoju?');
  assert.deepEqual([1, 2, 5, 12, 22, 25].map((n) => i18n.n('{count} guess', '{count} guesses', n)),
    ['1 próba', '2 próby', '5 prób', '12 prób', '22 próby', '25 prób']);
  assert.equal(i18n.t('Not in the catalog: {x}.', { x: 1 }), 'Not in the catalog: 1.');
  assert.equal(i18n.lang(), 'pl');
});

test('placeholders without a value stay visible rather than vanish', () => {
  assert.equal(load(null).t('Hello {name}, {other}.', { name: 'ada' }), 'Hello ada, {other}.');
});

test('numbers, sizes and times are written the locale way', () => {
  const pl = load(POLISH), en = load(null);
  assert.equal(pl.number(1234567.891, 2), '1\u00a0234\u00a0567,89');
  assert.equal(en.number(1234567.891, 2), '1,234,567.89');
  assert.equal(pl.size(1.5 * 1048576), '1,5 MB');
  assert.equal(en.size(2048), '2 KB');
  assert.equal(en.size(1), '1 byte');
  const evening = new Date(2026, 0, 2, 21, 5);
  assert.equal(pl.time(evening), '21:05');
  assert.equal(load({ messages: {}, time: { pattern: 'h:mm a', am: 'AM', pm: 'PM' } }).time(evening), '9:05 PM');
  assert.equal(load({ messages: {}, time: { pattern: "H 'h' mm", am: 'a', pm: 'p' } }).time(evening), '21 h 05');
});
