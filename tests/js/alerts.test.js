'use strict';
// Seal.alerts and Seal.emoji (frontend/static/js/alerts.js, emoji.js) in a small imitated page:
// the unread count in the title and the desktop notification of a hidden tab, and the emoji
// buttons' labels, in English and, through a catalog, in the page's language.
// Run with: node --test tests/js/

const test = require('node:test');
const assert = require('node:assert/strict');
const { element, textOf, smallPage } = require('./small-page.js');

const ARABIC = {
  lang: 'ar', rtl: true, number: { decimal: '\u066b', group: '\u066c', minGroup: 1 },
  messages: {
    '({count}) {title}': '{title} ({count})',
    '{room} - Sealchat': 'Sealchat - {room}',
    'Sealchat: {room}': 'Sealchat: {room}',
    'New message from {user}': 'رسالة جديدة من {user}',
    'Insert {emoji}': 'إدراج {emoji}',
  },
};

// A page whose tab is hidden, with notifications allowed; shown: what notifications were made.
function hiddenPage(catalog) {
  const shown = [];
  function Notification(title, opts) {
    shown.push({ title, body: opts.body });
    this.close = () => {};
  }
  Notification.permission = 'granted';
  const p = smallPage({ catalog, globals: { Notification } });
  p.ctx.document.hidden = true;
  p.load('alerts.js');
  return { p, alerts: p.Seal.alerts, doc: p.ctx.document, shown };
}

test('a hidden tab counts unread messages in its title and names the sender in a notification', () => {
  const { alerts, doc, shown } = hiddenPage();
  alerts.setTitle('lobby - Sealchat');
  alerts.enable('notify', true, () => {});
  alerts.incoming('olga', 'lobby');
  alerts.incoming('olga', 'lobby');
  assert.equal(doc.title, '(2) lobby - Sealchat');
  assert.deepEqual(shown[0], { title: 'Sealchat: lobby', body: 'New message from olga' });
  alerts.reset();
  assert.equal(doc.title, 'lobby - Sealchat');
});

test('with a catalog the title and notification are in the page\'s language', () => {
  const { alerts, doc, shown } = hiddenPage(ARABIC);
  alerts.setTitle('lobby');
  alerts.enable('notify', true, () => {});
  for (let i = 0; i < 1200; i++) alerts.incoming('olga', 'lobby');
  assert.equal(doc.title, 'lobby (1\u066c200)');
  assert.equal(shown[0].body, 'رسالة جديدة من olga');
});

test('each emoji button says what it inserts, in the page\'s language', () => {
  for (const [catalog, label] of [[undefined, 'Insert '], [ARABIC, 'إدراج ']]) {
    const p = smallPage({ catalog });
    p.load('emoji.js');
    const panel = element('div');
    const toggle = element('button');
    const input = Object.assign(element('input'), { value: 'hi ', selectionStart: 3, selectionEnd: 3 });
    panel.setAttribute('hidden', '');
    p.Seal.emoji.picker(panel, toggle, input);
    toggle.listeners.click[0]();
    const first = panel.childNodes[0];
    assert.equal(panel.childNodes.length, p.Seal.emoji.LIST.length);
    assert.equal(first.getAttribute('aria-label'), label + p.Seal.emoji.LIST[0]);
    assert.equal(textOf(first), p.Seal.emoji.LIST[0]);
    panel.listeners.click[0]({ target: first });
    assert.equal(input.value, 'hi ' + p.Seal.emoji.LIST[0]);
  }
});
