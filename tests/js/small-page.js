'use strict';
// A small imitation of a page for the chat page's little modules (idle.js, alerts.js, emoji.js):
// elements with attributes, children, listeners and text, a vm context with the real i18n.js
// (given a catalog, as the server sets root.SealCatalog before it) and dom.js, and hand-driven
// timers and clock, so a countdown can be stepped through second by second.

const path = require('node:path');
const vm = require('node:vm');
const { staticDir, runFile } = require('./browser-env.js');

function element(tag) {
  const attrs = {};
  const listeners = {};
  return {
    tagName: tag.toUpperCase(), childNodes: [], textContent: '', focused: 0, listeners,
    setAttribute(k, v) { attrs[k] = String(v); },
    getAttribute(k) { return k in attrs ? attrs[k] : null; },
    hasAttribute(k) { return k in attrs; },
    removeAttribute(k) { delete attrs[k]; },
    appendChild(c) { this.childNodes.push(c); return c; },
    insertBefore(c, ref) {
      const at = this.childNodes.indexOf(ref);
      this.childNodes.splice(at < 0 ? this.childNodes.length : at, 0, c);
      return c;
    },
    removeChild(c) { this.childNodes.splice(this.childNodes.indexOf(c), 1); return c; },
    get firstChild() { return this.childNodes[0] || null; },
    addEventListener(type, fn) { (listeners[type] = listeners[type] || []).push(fn); },
    removeEventListener(type, fn) { listeners[type] = (listeners[type] || []).filter((f) => f !== fn); },
    getElementsByTagName(name) { return this.childNodes.filter((c) => c.tagName === name.toUpperCase()); },
    focus() { this.focused += 1; },
  };
}

// What a node reads as: its own text, or its children's in order.
function textOf(node) {
  return node.childNodes && node.childNodes.length ? node.childNodes.map(textOf).join('') : node.textContent;
}

/**
 * A page with i18n.js and dom.js loaded. catalog: the page's translations (none: English);
 * globals: more properties of the window (Notification, ...). The clock starts at 0 and moves
 * only with tick(ms), which also runs the timers that fall due.
 */
function smallPage({ catalog, globals = {} } = {}) {
  let clock = 0;
  let timers = [];
  let nextId = 1;
  const ctx = vm.createContext({});
  ctx.window = ctx;
  ctx.setTimeout = (fn, ms) => {
    timers.push({ id: nextId, at: clock + (ms || 0), fn });
    return nextId++;
  };
  ctx.clearTimeout = (id) => { timers = timers.filter((t) => t.id !== id); };
  ctx.addEventListener = () => {};
  ctx.localStorage = { getItem: () => null, setItem() {} };
  ctx.document = Object.assign(element('#document'), {
    title: 'Sealchat',
    hidden: false,
    documentElement: { className: '' },
    cookie: '',
    body: element('body'),
    getElementById: () => null,
    createElement: element,
    createTextNode: (text) => ({ textContent: text }),
  });
  Object.assign(ctx, globals);
  if (catalog) ctx.SealCatalog = catalog;
  runFile(ctx, path.join(staticDir, 'js', 'i18n.js')); // every page loads it before the other scripts
  runFile(ctx, path.join(staticDir, 'js', 'dom.js'));
  ctx.Seal.dom.now = () => clock;
  return {
    ctx,
    Seal: ctx.Seal,
    load(name) {
      runFile(ctx, path.join(staticDir, 'js', name));
    },
    tick(ms) {
      const until = clock + ms;
      for (;;) {
        const due = timers.filter((t) => t.at <= until).sort((a, b) => a.at - b.at)[0];
        if (!due) break;
        timers = timers.filter((t) => t !== due);
        clock = Math.max(clock, due.at);
        due.fn();
      }
      clock = until;
    },
  };
}

// A Polish plural rule, as chat/jscatalog.py writes it from CLDR.
const polishPlural = (n) => (n === 1 ? 0 : n % 10 >= 2 && n % 10 <= 4 && (n % 100 < 10 || n % 100 >= 20) ? 1 : 2);

module.exports = { element, textOf, smallPage, polishPlural };
