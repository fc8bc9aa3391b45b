'use strict';
// Seal.idle (frontend/static/js/idle.js) in a small imitated page with a hand-driven clock: the
// warning's countdown before an idle page leaves the room, in English and, through a catalog, in
// Polish, whose plural forms change the words around the number as it counts down.
// Run with: node --test tests/js/

const test = require('node:test');
const assert = require('node:assert/strict');
const { element, textOf, smallPage, polishPlural } = require('./small-page.js');

const SENTENCE = 'Nobody has used this page for a while. To keep the conversation from the next person at this device, it leaves the room in {seconds} second.';
const SENTENCES = 'Nobody has used this page for a while. To keep the conversation from the next person at this device, it leaves the room in {seconds} seconds.';
const POLISH = {
  lang: 'pl', rtl: false, plural: polishPlural, number: { decimal: ',', group: '\u00a0', minGroup: 2 },
  messages: {
    [SENTENCE]: [
      'Nikt nie używa tej strony od dłuższego czasu. Za {seconds} sekundę opuści pokój.',
      'Nikt nie używa tej strony od dłuższego czasu. Za {seconds} sekundy opuści pokój.',
      'Nikt nie używa tej strony od dłuższego czasu. Za {seconds} sekund opuści pokój.',
    ],
    'Stay in the room': 'Zostań w pokoju',
  },
};

// An idle watch of 60 seconds (the warning shows for the last 30) on a fresh page.
function watch(catalog) {
  const p = smallPage({ catalog });
  p.load('idle.js');
  const container = element('div');
  let left = 0;
  const idle = p.Seal.idle.start({ timeout: 60, container, onIdle: () => { left += 1; } });
  const warning = container.childNodes[0];
  const text = warning.childNodes[0];
  return { p, idle, warning, text, stay: warning.childNodes[1], left: () => left };
}

test('the countdown reads as one sentence, the number in its own element, in English', () => {
  const w = watch();
  assert.equal(w.warning.getAttribute('hidden'), '', 'hidden until the last 30 seconds');
  w.p.tick(31000);
  assert.equal(w.warning.hasAttribute('hidden'), false);
  assert.equal(textOf(w.text), SENTENCES.replace('{seconds}', '29') + ' ');
  assert.equal(w.text.childNodes[1].tagName, 'STRONG');
  assert.equal(w.text.childNodes[1].textContent, '29');
  assert.equal(textOf(w.stay), 'Stay in the room');
  w.p.tick(28000);
  assert.equal(textOf(w.text), SENTENCE.replace('{seconds}', '1') + ' ');
  w.p.tick(1000);
  assert.equal(w.left(), 1, 'the page leaves the room');
});

test('in Polish the words follow the number\'s plural form, and only the number changes within one', () => {
  const w = watch(POLISH);
  w.p.tick(31000);
  assert.equal(textOf(w.text), 'Nikt nie używa tej strony od dłuższego czasu. Za 29 sekund opuści pokój. ');
  assert.equal(w.text.childNodes[1].textContent, '29');
  const before = w.text.childNodes[0];
  w.p.tick(1000);
  assert.equal(textOf(w.text), 'Nikt nie używa tej strony od dłuższego czasu. Za 28 sekund opuści pokój. ');
  assert.equal(w.text.childNodes[0], before, 'same form: the sentence is not rebuilt, only its number');
  w.p.tick(26000);
  assert.equal(textOf(w.text), 'Nikt nie używa tej strony od dłuższego czasu. Za 2 sekundy opuści pokój. ');
  w.p.tick(1000);
  assert.equal(textOf(w.text), 'Nikt nie używa tej strony od dłuższego czasu. Za 1 sekundę opuści pokój. ');
  assert.equal(textOf(w.stay), 'Zostań w pokoju');
  w.idle.stop();
});

test('activity hides the warning and starts the wait again', () => {
  const w = watch();
  w.p.tick(40000);
  assert.equal(w.warning.hasAttribute('hidden'), false);
  w.stay.listeners.click[0]();
  assert.equal(w.warning.hasAttribute('hidden'), true);
  w.p.tick(29000);
  assert.equal(w.warning.hasAttribute('hidden'), true);
  w.idle.stop();
  assert.equal(w.left(), 0);
});
