'use strict';
// The join page script (frontend/static/js/forms.js) in the imitated browser, with a stub server:
// what it leaves in sessionStorage (a vault sealed under the session's resume_key, nothing readable),
// how it shows a refused join, and what it does when the tab is still in another room.
// Run with: node --test tests/js/

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const env = require('./browser-env.js');

const { repoRoot, staticDir, makeBrowser, runFile, call } = env;
const SHARED = JSON.parse(fs.readFileSync(path.join(repoRoot, 'tests', 'vectors', 'protocol-v2-vectors.json'), 'utf8'));
const CASE = SHARED.admission[0];
const RESUME_KEY = Buffer.alloc(32, 7).toString('base64url');

function fakeStorage() {
  const data = new Map();
  return {
    getItem: (k) => (data.has(k) ? data.get(k) : null),
    setItem: (k, v) => data.set(k, String(v)),
    removeItem: (k) => data.delete(k),
  };
}

let lastFocused = null; // the id of the element the page last moved focus to

function element(id) {
  const attrs = {};
  return {
    id, value: '', className: '', disabled: false, checked: false, textContent: '', children: [], listeners: {},
    getAttribute: (k) => (k in attrs ? attrs[k] : null),
    setAttribute: (k, v) => { attrs[k] = String(v); },
    removeAttribute: (k) => { delete attrs[k]; },
    appendChild(c) { this.children.push(c); return c; },
    insertBefore(c) { this.children.unshift(c); return c; },
    focus() { lastFocused = id; },
    text() { return this.textContent + this.children.map((c) => (c.textContent || '')).join(''); },
  };
}

// The login page, joining room "lobby" as "bob"; saved: what sessionStorage holds beforehand;
// oldSession: the server's answer to a ping with the saved token ('live' or 'ended').
// joinError: the server's refusal of the join, if any; invite: what the invite field holds (the
// template prefills it from ?invite=); catalog: the page's catalog (frontend/static/js/i18n.js),
// none for the English source text.
function loginPage({ saved, oldSession, joinError, invite, catalog }) {
  const { ctx, SC } = makeBrowser('webcrypto', { nacl: false }); // the join pages load no tweetnacl
  const nodes = new Map();
  const byId = (id) => {
    if (!nodes.has(id)) nodes.set(id, element(id));
    return nodes.get(id);
  };
  const calls = { join: [], ping: [], leave: [] };
  ctx.sessionStorage = fakeStorage();
  ctx.localStorage = fakeStorage();
  if (saved) ctx.sessionStorage.setItem('sealchat.session', JSON.stringify(saved));
  ctx.location = { href: '/login' };
  ctx.document.body = { getAttribute: (k) => (k === 'data-page' ? 'login' : null) };
  ctx.document.getElementsByName = () => [];
  ctx.Seal = {
    dom: {
      byId,
      setText: (node, text) => { node.textContent = text; node.children = []; },
      show: (node, visible) => node && (visible ? node.removeAttribute('hidden') : node.setAttribute('hidden', '')),
      on: (node, type, fn) => { (node.listeners[type] = node.listeners[type] || []).push(fn); },
      el: (tag, props) => Object.assign(element(props && props.id), { tagName: tag, textContent: (props && props.text) || '', href: props && props.href }),
      debounce: (fn) => fn,
      now: () => Date.now(),
      formatSpan: (seconds) => Math.round(seconds) + ' s',
      formatDuration: (seconds) => Math.ceil(seconds) + ' seconds',
    },
  };
  ctx.setInterval = setInterval;
  ctx.clearInterval = clearInterval;
  const errors = { session_ended: true, session_expired: true, token_invalid: true };
  ctx.Seal.api = {
    isTerminal: (err) => !!(err && errors[err.code]),
    lookup: (room, user, cb) => setTimeout(() => cb(null, {
      exists: true, room_id: CASE.room_id, salt: CASE.salt, iter: CASE.iter, kdf: CASE.kdf, join_code: false,
    }), 0),
    pollSend: (token, frame, cb) => {
      calls.ping.push({ token, frame });
      setTimeout(() => (oldSession === 'live' ? cb(null, { reply: { type: 'pong' } }) :
        cb({ code: 'session_ended', message: 'This session has ended.' })), 0);
    },
    join: (body, cb) => {
      calls.join.push(body);
      setTimeout(() => (joinError ? cb(joinError) : cb(null, { token: 'tok-new', name: 'lobby', room_id: CASE.room_id,
        username: 'bob', cursor: 3, limits: {}, host: 'alice', locked: false, resume_key: RESUME_KEY })), 0);
    },
    leave: (token, cb) => {
      calls.leave.push(token);
      setTimeout(() => cb(null, {}), 0);
    },
  };
  if (catalog) ctx.SealCatalog = catalog;
  runFile(ctx, path.join(staticDir, 'js', 'i18n.js')); // every page loads it before the other scripts
  runFile(ctx, path.join(staticDir, 'js', 'session.js'));
  runFile(ctx, path.join(staticDir, 'js', 'forms.js'));
  byId('roomname').value = 'lobby';
  byId('username').value = 'bob';
  byId('password').value = CASE.password;
  if (invite !== undefined) byId('invite').value = invite;
  return { ctx, SC, byId, calls };
}

function until(pred, what) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    (function look() {
      const v = pred();
      if (v) resolve(v);
      else if (Date.now() - started > 20000) reject(new Error('timed out waiting for ' + what));
      else setTimeout(look, 10);
    }());
  });
}

async function submit(p) {
  const form = p.byId('login-form');
  await until(() => form.listeners.submit, 'the page to be ready');
  form.listeners.submit[0]({ preventDefault() {} });
}

const OLD = { token: 'tok-old', room: 'kitchen', roomId: 'kitchen', username: 'alice', cursor: 9, vault: { n: 'x', c: 'y' } };

test('joining keeps only the token, names, cursor and a vault that opens with the session\'s resume_key', async () => {
  const p = loginPage({});
  await submit(p);
  await until(() => p.ctx.location.href !== '/login', 'navigation to the room');
  assert.equal(p.ctx.location.href, '/chat/lobby');
  assert.equal(p.calls.join[0].auth_key, CASE.auth_key, 'the auth key goes to the server');
  const raw = p.ctx.sessionStorage.getItem('sealchat.session');
  for (const secret of [CASE.auth_key, CASE.member_key, CASE.password, RESUME_KEY]) {
    assert.ok(!raw.includes(secret), 'nothing secret in sessionStorage');
  }
  const saved = JSON.parse(raw);
  assert.deepEqual(Object.keys(saved).sort(), ['cursor', 'joinCode', 'joinCodeNew', 'limits', 'room', 'roomId', 'token',
    'username', 'vault']);
  assert.equal(saved.token, 'tok-new');
  assert.equal(saved.cursor, 3);
  assert.deepEqual(Object.keys(saved.vault).sort(), ['c', 'n']);
  // The chat page opens it with the resume_key of its welcome: member_key and this session's keys.
  const state = await call(p.SC, 'vaultOpen', RESUME_KEY, CASE.room_id, 'bob', saved.vault);
  assert.equal(state.member_key, CASE.member_key);
  assert.equal(p.SC.unb64u(state.dh_sk).length, 32);
  assert.equal(p.SC.unb64u(state.sig_seed).length, 32);
  assert.notEqual(state.dh_sk, state.sig_seed);
  assert.deepEqual(JSON.parse(JSON.stringify(state.epochs)), {});
  assert.equal(state.floor, 0);
  // Another resume_key (a copy of the storage elsewhere) opens nothing.
  await assert.rejects(call(p.SC, 'vaultOpen', Buffer.alloc(32, 8).toString('base64url'), CASE.room_id, 'bob', saved.vault));
  assert.equal(p.byId('password').value, '', 'the password field is cleared');
});

test('a join refused because the host removed this person, or locked the room, says so plainly', async () => {
  const banned = 'The room\'s host removed you; you may join again in 540 seconds.';
  let p = loginPage({ joinError: { code: 'banned', message: banned, retryAfter: 540 } });
  await submit(p);
  let status = p.byId('form-status');
  await until(() => status.getAttribute('data-code') === 'banned', 'the refusal');
  assert.equal(status.text(), banned, 'the server\'s sentence, once');
  assert.equal(p.ctx.sessionStorage.getItem('sealchat.session'), null);

  const locked = 'The host has locked this room: nobody new can join.';
  p = loginPage({ joinError: { code: 'room_locked', message: locked } });
  await submit(p);
  status = p.byId('form-status');
  await until(() => status.getAttribute('data-code') === 'room_locked', 'the refusal');
  assert.equal(status.text(), locked);
  assert.equal(p.ctx.location.href, '/login');
});

test('a tab still in another room is not moved to a new one: it is offered the way back', async () => {
  const p = loginPage({ saved: OLD, oldSession: 'live' });
  await submit(p);
  const status = p.byId('form-status');
  await until(() => status.getAttribute('data-code') === 'in_another_room', 'the refusal');
  assert.match(status.text(), /still in the room kitchen as alice/);
  const link = status.children.find((c) => c.href);
  assert.equal(link.href, '/chat/kitchen');
  assert.deepEqual(p.calls.join, [], 'no join was sent');
  assert.equal(p.calls.ping[0].token, 'tok-old');
  assert.equal(JSON.parse(p.ctx.sessionStorage.getItem('sealchat.session')).token, 'tok-old', 'the old session is kept');
  assert.equal(p.ctx.location.href, '/login');
  assert.equal(p.byId('submit-button').disabled, false, 'the form can be used again');
});

test('a saved session the server has ended does not stand in the way', async () => {
  const p = loginPage({ saved: OLD, oldSession: 'ended' });
  await submit(p);
  await until(() => p.ctx.location.href !== '/login', 'navigation to the room');
  assert.equal(p.calls.join.length, 1);
  assert.equal(JSON.parse(p.ctx.sessionStorage.getItem('sealchat.session')).token, 'tok-new');
});

test('an invite in the field goes with the join as `invite`; without one the body has none', async () => {
  let p = loginPage({ invite: '  K7QX-2MZP-4A ' });
  await submit(p);
  await until(() => p.ctx.location.href !== '/login', 'navigation to the room');
  assert.equal(p.calls.join.length, 1);
  assert.equal(p.calls.join[0].invite, 'K7QX-2MZP-4A', 'sent as typed, trimmed (the server ignores dashes and case)');
  assert.equal(p.calls.join[0].auth_key, CASE.auth_key);

  p = loginPage({ invite: '' });
  await submit(p);
  await until(() => p.ctx.location.href !== '/login', 'navigation to the room');
  assert.ok(!('invite' in p.calls.join[0]), 'no invite field when none was given');
});

test('a refused invite shows the server\'s sentence and leaves the tab on the join page', async () => {
  const sentence = 'This invite is unknown, used or expired; ask a member for a new one.';
  const p = loginPage({ invite: 'K7QX2MZP4A', joinError: { code: 'bad_invite', message: sentence, status: 403 } });
  await submit(p);
  const status = p.byId('form-status');
  await until(() => status.getAttribute('data-code') === 'bad_invite', 'the refusal');
  assert.equal(status.text(), sentence, 'the server\'s sentence, once');
  assert.equal(p.calls.join[0].invite, 'K7QX2MZP4A');
  assert.equal(p.ctx.location.href, '/login');
  assert.equal(p.ctx.sessionStorage.getItem('sealchat.session'), null);
  assert.equal(p.byId('submit-button').disabled, false, 'the form can be used again');
});

test('after a refusal, focus goes where the user can act: the field to fix, else the sentence', async () => {
  const cases = [
    [{ code: 'wrong_password', message: 'Wrong password for this room.' }, 'password'],
    [{ code: 'username_taken', message: 'Taken.' }, 'username'],
    [{ code: 'bad_invite', message: 'This invite is unknown, used or expired.' }, 'invite'],
    [{ code: 'room_locked', message: 'The host has locked this room: nobody new can join.' }, 'form-status'],
  ];
  for (const [joinError, focused] of cases) {
    lastFocused = null;
    const p = loginPage({ joinError });
    await submit(p);
    await until(() => p.byId('form-status').getAttribute('data-code') === joinError.code, 'the refusal');
    assert.equal(lastFocused, focused, joinError.code);
  }
});

test('Cancel during the key derivation stops it: no join is sent, the form works again', async () => {
  lastFocused = null;
  const p = loginPage({});
  await submit(p);
  const cancel = p.byId('cancel-button');
  // Focus moves from the Join button, disabled now, to Cancel.
  await until(() => lastFocused === 'cancel-button', 'focus on the Cancel button');
  assert.equal(p.byId('submit-button').disabled, true);
  assert.match(p.byId('kdf-time').textContent, /^0 s so far/);
  cancel.listeners.click[0]();
  assert.equal(p.byId('kdf-box').getAttribute('hidden'), '', 'the progress goes');
  assert.equal(cancel.getAttribute('hidden'), '', 'and Cancel with it');
  assert.equal(p.byId('submit-button').disabled, false);
  assert.equal(lastFocused, 'submit-button');
  assert.match(p.byId('form-status').text(), /^Stopped\. Nothing was sent/);
  assert.equal(p.byId('form-status').className, 'notice', 'not shown as an error');
  // Joining again goes through, and it is the only join the server sees.
  await submit(p);
  await until(() => p.ctx.location.href !== '/login', 'navigation to the room');
  assert.equal(p.calls.join.length, 1);
});

// A few of the page's sentences in French, as chat/jscatalog.py writes a catalog.
const FRENCH = {
  lang: 'fr',
  rtl: false,
  messages: {
    'Wrong password for this room.': 'Mot de passe incorrect pour ce salon.',
    'Try again in {count} second.': ['Réessayez dans {count} seconde.', 'Réessayez dans {count} secondes.'],
    'This tab is still in the room {room} as {user}. Return to it and leave there first, or use a new tab to enter another room.':
      'Cet onglet est encore dans le salon {room} en tant que {user}. Retournez-y et quittez-le d\'abord, ou ouvrez un nouvel onglet.',
    'Return to {room}': 'Retourner dans {room}',
  },
  plural: (n) => (n > 1 ? 1 : 0),
  number: { decimal: ',', group: '\u202f', minGroup: 1 },
  time: { pattern: 'HH:mm', am: 'AM', pm: 'PM' },
};

test('the page\'s own sentences come from its catalog; the server\'s arrive translated and are shown as they are', async () => {
  let p = loginPage({ catalog: FRENCH, joinError: { code: 'wrong_password', message: 'Falsches Passwort.', retryAfter: 1200 } });
  await submit(p);
  let status = p.byId('form-status');
  await until(() => status.getAttribute('data-code') === 'wrong_password', 'the refusal');
  assert.equal(status.text(), 'Mot de passe incorrect pour ce salon. Réessayez dans 1\u202f200 secondes.');

  const banned = 'L\'hôte du salon vous a retiré ; vous pourrez revenir dans 540 secondes.';
  p = loginPage({ catalog: FRENCH, joinError: { code: 'banned', message: banned, retryAfter: 540 } });
  await submit(p);
  status = p.byId('form-status');
  await until(() => status.getAttribute('data-code') === 'banned', 'the refusal');
  assert.equal(status.text(), banned);

  p = loginPage({ catalog: FRENCH, saved: OLD, oldSession: 'live' });
  await submit(p);
  status = p.byId('form-status');
  await until(() => status.getAttribute('data-code') === 'in_another_room', 'the refusal');
  assert.match(status.text(), /^Cet onglet est encore dans le salon kitchen en tant que alice\. .*Retourner dans kitchen$/);
});
