'use strict';
// Seal.dom (frontend/static/js/dom.js) in a vm with a small imitation of the document: what the
// polite live region gets, and the words and numbers a waiting user reads.
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

function page(ids) {
  const byId = {};
  for (const id of ids) byId[id] = node('div');
  const ctx = vm.createContext({ setTimeout, clearTimeout });
  ctx.window = ctx;
  ctx.localStorage = { getItem: () => null, setItem() {} };
  ctx.document = {
    documentElement: { className: '' },
    cookie: '',
    getElementById: (id) => byId[id] || null,
    createElement: node,
    createTextNode: (text) => ({ textContent: text }),
  };
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
