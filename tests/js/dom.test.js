'use strict';
// Seal.dom (frontend/static/js/dom.js) in a vm with a small imitation of the document: what the
// polite live region gets, and the words and numbers a waiting user reads, in English and, through
// a catalog as the server serves one (frontend/static/js/i18n.js), in Polish.
// Run with: node --test tests/js/

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const vm = require('node:vm');
const { staticDir, runFile } = require('./browser-env.js');

function node(tag) {
  return {
    tagName: tag, childNodes: [], attrs: {}, textContent: '',
    setAttribute(k, v) { this.attrs[k] = String(v); },
    getAttribute(k) { return k in this.attrs ? this.attrs[k] : null; },
    appendChild(c) { this.childNodes.push(c); return c; },
    removeChild(c) { this.childNodes.splice(this.childNodes.indexOf(c), 1); return c; },
    get firstChild() { return this.childNodes[0] || null; },
  };
}

// A Polish catalog of the shape chat/jscatalog.py writes, with the words the formatters use.
const POLISH = {
  lang: 'pl',
  rtl: false,
  messages: {
    '{count} second': ['{count} sekunda', '{count} sekundy', '{count} sekund'],
    '{count} minute': ['{count} minuta', '{count} minuty', '{count} minut'],
    '{count} byte': ['{count} bajt', '{count} bajty', '{count} bajtów'],
    '{size} MB': '{size} MB',
    '{minutes} ({seconds})': '{minutes} ({seconds})',
    '{s} s': '{s} s',
    '{m} min {s} s': '{m} min {s} s',
    '{h} h {m} min': '{h} godz. {m} min',
    '{h} h': '{h} godz.',
  },
  plural: (n) => (n === 1 ? 0 : n % 10 >= 2 && n % 10 <= 4 && (n % 100 < 10 || n % 100 >= 20) ? 1 : 2),
  number: { decimal: ',', group: '\u00a0', minGroup: 2 },
  time: { pattern: 'HH:mm', am: 'AM', pm: 'PM' },
};

// catalog: what the page's catalog script would have set (none: the English source text).
function page(ids, catalog) {
  const byId = {};
  for (const id of ids) byId[id] = node('div');
  const ctx = vm.createContext({ setTimeout, clearTimeout });
  if (catalog) ctx.SealCatalog = catalog;
  ctx.window = ctx;
  ctx.localStorage = { getItem: () => null, setItem() {} };
  ctx.document = {
    documentElement: { className: '' },
    cookie: '',
    getElementById: (id) => byId[id] || null,
    createElement: node,
    createTextNode: (text) => ({ textContent: text }),
  };
  runFile(ctx, path.join(staticDir, 'js', 'i18n.js')); // every page loads it before the other scripts
  runFile(ctx, path.join(staticDir, 'js', 'dom.js'));
  return { dom: ctx.Seal.dom, byId };
}

test('announcements go into the live region, one paragraph each, the newest twenty kept', () => {
  const { dom, byId } = page(['announcer']);
  for (let i = 1; i <= 25; i++) dom.announce('olga: message ' + i);
  const region = byId.announcer;
  assert.equal(region.childNodes.length, 20);
  assert.equal(region.childNodes[0].tagName, 'p');
  assert.equal(region.childNodes[0].textContent, 'olga: message 6');
  assert.equal(region.childNodes[19].textContent, 'olga: message 25');
  dom.announce('');
  assert.equal(region.childNodes[19].textContent, 'olga: message 25', 'nothing to say adds nothing');
});

test('a page without a live region announces nothing, and does not fail', () => {
  const { dom } = page([]);
  dom.announce('bob joined');
});

test('a running clock in short words', () => {
  const { dom } = page([]);
  assert.equal(dom.formatSpan(0), '0 s');
  assert.equal(dom.formatSpan(44.6), '45 s');
  assert.equal(dom.formatSpan(60), '1 min');
  assert.equal(dom.formatSpan(163), '2 min 43 s');
  assert.equal(dom.formatSpan(3600 + 5 * 60 + 20), '1 h 5 min');
  assert.equal(dom.formatSpan(-3), '0 s');
});

test('a wait in words, rounded up, and exactly once it is a minute or more', () => {
  const { dom } = page([]);
  assert.equal(dom.formatDuration(1), '1 second');
  assert.equal(dom.formatDuration(44.2), '45 seconds');
  assert.equal(dom.formatDuration(60), '1 minute');
  assert.equal(dom.formatDuration(61), '2 minutes');
  assert.equal(dom.formatWait(20), '20 seconds');
  assert.equal(dom.formatWait(600), '10 minutes (600 seconds)');
  assert.equal(dom.formatWait(-5), '0 seconds');
});

test('sizes and times of day', () => {
  const { dom } = page([]);
  assert.equal(dom.formatBytes(1), '1 byte');
  assert.equal(dom.formatBytes(20), '20 bytes');
  assert.equal(dom.formatBytes(300 * 1024), '300 KB');
  assert.equal(dom.formatBytes(1.5 * 1048576), '1.5 MB');
  assert.equal(dom.formatTime(new Date(2026, 0, 2, 9, 5).getTime()), '09:05');
});

test('with a catalog the formatters speak the page\'s language: its plural forms and number signs', () => {
  const { dom } = page([], POLISH);
  assert.equal(dom.formatDuration(1), '1 sekunda');
  assert.equal(dom.formatDuration(3), '3 sekundy');
  assert.equal(dom.formatDuration(25), '25 sekund');
  assert.equal(dom.formatDuration(22 * 60), '22 minuty');
  assert.equal(dom.formatWait(12000), '200 minut (12\u00a0000 sekund)');
  assert.equal(dom.formatBytes(2), '2 bajty');
  assert.equal(dom.formatBytes(1.5 * 1048576), '1,5 MB');
  assert.equal(dom.formatSpan(163), '2 min 43 s');
  assert.equal(dom.formatSpan(3600 + 5 * 60), '1 godz. 5 min');
  assert.equal(dom.formatSpan(7200), '2 godz.');
});
