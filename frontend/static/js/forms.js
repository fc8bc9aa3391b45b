/*
 * The start, create and join pages: live name checks, password tools, key derivation with a
 * progress bar, then create or join and hand the session to the chat page. The join page takes a
 * member's single-use invite (?invite=, prefilled in its field) and sends it with the join.
 */
(function (root) {
    'use strict';

    var Seal = root.Seal;
    var dom = Seal.dom, api = Seal.api, i18n = Seal.i18n;
    var page = root.document.body.getAttribute('data-page');

    // This page's own sentence for a refusal, where it says more than the server's; else ''.
    // bad_invite: the server's own sentence says what to do (ask a member for a new one).
    function friendly(code) {
        switch (code) {
        case 'address_in_use':
            return i18n.t('This device already has a session in this room (maybe in another tab). Go back to that tab, or leave there first.');
        case 'wrong_password':
            return i18n.t('Wrong password for this room.');
        case 'username_taken':
            return i18n.t('Someone in this room already uses this name; pick another.');
        case 'room_exists':
            return i18n.t('A room with this name already exists. Join it, or pick another name.');
        case 'room_not_found':
            return i18n.t('There is no room with this name. It may have closed when its last member left.');
        default:
            return '';
        }
    }

    function unsupported() {
        return i18n.t('This browser cannot do the encryption Sealchat needs, so it cannot create or join rooms. Please use a current version of Firefox, Chrome, Safari or Edge.');
    }

    function field(id) {
        return dom.byId(id);
    }

    function checked(id) {
        var node = field(id);
        return !!(node && node.checked);
    }

    function value(id) {
        var node = field(id);
        return node ? node.value.replace(/^\s+|\s+$/g, '') : '';
    }

    function hint(id, text, state) {
        var node = field(id);
        if (!node) {
            return;
        }
        dom.setText(node, text || '');
        node.className = 'hint' + (state ? ' ' + state : '');
    }

    function errorText(err) {
        var text = friendly(err.code) || err.message || i18n.t('Something went wrong.');
        if (err.code === 'address_in_use' && err.message) {
            text = err.message + ' ' + friendly(err.code);
        }
        // banned and room_locked: the server's own sentence says why (and, for banned, when).
        if (err.retryAfter && err.code !== 'banned') {
            text += ' ' + i18n.n('Try again in {count} second.', 'Try again in {count} seconds.', err.retryAfter);
        }
        return text;
    }

    // A sentence under the form: an error unless `plain` (a cancelled derivation is no error).
    function status(text, plain) {
        var node = field('form-status');
        if (!node) {
            return;
        }
        dom.setText(node, text || '');
        node.className = plain ? 'notice' : 'notice error';
        node.setAttribute('data-code', '');
        dom.show(node, !!text);
    }

    // The field to fix after each refusal; any other refusal puts focus on the sentence itself.
    var FIX_FIELD = {
        wrong_password: 'password',
        username_taken: 'username',
        room_exists: 'roomname',
        room_not_found: 'roomname',
        bad_invite: 'invite',
        wrong_join_code: 'joincode',
        join_code_required: 'joincode'
    };

    // The refusal is said (role=alert) and focus goes where the user can act on it.
    function statusError(err) {
        var node = field('form-status'), fix = FIX_FIELD[err.code] ? field(FIX_FIELD[err.code]) : null;
        status(errorText(err));
        node.setAttribute('data-code', err.code || '');
        if (fix && fix.offsetParent !== null) {
            fix.focus();
            if (fix.select && err.code === 'wrong_password') {
                fix.select();
            }
        } else {
            node.focus();
        }
    }

    // ---- crypto engine ---------------------------------------------------------------------

    function setupCrypto(cb) {
        var meta = field('sealchat-crypto'), out = field('crypto-backend'), notice = field('crypto-notice');
        if (!root.SealCrypto) {
            dom.setText(notice, unsupported());
            dom.show(notice, true);
            cb(null);
            return;
        }
        root.SealCrypto.setFallbackUrls({vendor: meta.getAttribute('data-vendor'),
            worker: meta.getAttribute('data-worker')});
        root.SealCrypto.detect(function (backend) {
            if (out) {
                out.setAttribute('data-backend', backend || 'none');
                dom.setText(out, backend === 'webcrypto' ? i18n.t('Web Crypto (built into the browser)') :
                    backend === 'fallback' ? i18n.t('compatibility mode (JavaScript; slower key derivation)') :
                        i18n.t('none available'));
            }
            if (!backend && notice) {
                dom.setText(notice, unsupported());
                dom.show(notice, true);
            }
            cb(backend);
        });
    }

    // ---- live availability checks --------------------------------------------------------

    function watchNames(onInfo) {
        var seq = 0;
        var check = dom.debounce(function () {
            var room = value('roomname'), user = value('username'), mine = ++seq;
            if (!room) {
                hint('roomname-status', '');
                hint('username-status', '');
                onInfo(null);
                return;
            }
            api.lookup(room, user, function (err, info) {
                if (mine !== seq) {
                    return;
                }
                if (err) {
                    hint('roomname-status', err.code === 'bad_name' ? err.message : '', 'bad');
                    onInfo(null);
                    return;
                }
                onInfo(info);
                if (user && info.username_ok === false) {
                    hint('username-status', info.username_error, 'bad');
                } else if (user && info.exists && !info.username_available) {
                    hint('username-status', i18n.t('Someone in this room already uses this name.'), 'bad');
                } else if (user) {
                    hint('username-status', i18n.t('This name is free.'), 'ok');
                } else {
                    hint('username-status', '');
                }
            });
        }, 250);
        dom.on(field('roomname'), 'input', check);
        dom.on(field('username'), 'input', check);
        check();
    }

    function linkWithNames(id, path) {
        var link = field(id);
        if (!link) {
            return;
        }
        function update() {
            link.setAttribute('href', path + '?roomname=' + encodeURIComponent(value('roomname')) +
                '&username=' + encodeURIComponent(value('username')));
        }
        dom.on(field('roomname'), 'input', update);
        dom.on(field('username'), 'input', update);
        update();
    }

    function setupShowPassword() {
        var button = field('show-password'), input = field('password');
        dom.on(button, 'click', function () {
            var showing = input.getAttribute('type') === 'text';
            input.setAttribute('type', showing ? 'password' : 'text');
            button.setAttribute('aria-pressed', showing ? 'false' : 'true');
            dom.setText(button, showing ? i18n.t('Show') : i18n.t('Hide'));
        });
    }

    // ---- deriving and entering -----------------------------------------------------------

    // The derivation under way: its handle (cancel), when it started, how far it is, the clock.
    var deriving = null;
    var engine = null; // 'webcrypto' or 'fallback', once detected

    // How long the rest will take, from the pace so far; null until there is a pace to go by.
    function remaining(elapsed, fraction) {
        if (!(fraction >= 0.01 && fraction < 1) || elapsed < 0.5) {
            return null;
        }
        return elapsed * (1 - fraction) / fraction;
    }

    // "12 s so far, about 1 min 30 s left" under the bar, every second. Web Crypto says nothing
    // until it is done, so there the line says so instead of guessing.
    function clockUi() {
        var elapsed = (dom.now() - deriving.t0) / 1000, left = remaining(elapsed, deriving.fraction),
            spent = dom.formatSpan(elapsed), text;
        if (left !== null) {
            text = i18n.t('{elapsed} so far, about {left} left', {elapsed: spent, left: dom.formatSpan(left)});
        } else if (engine === 'webcrypto') {
            text = i18n.t('{elapsed} so far; this browser\'s built-in engine does not say how far it is',
                {elapsed: spent});
        } else {
            text = i18n.t('{elapsed} so far, working out how long it takes…', {elapsed: spent});
        }
        dom.setText(field('kdf-time'), text);
    }

    // "25%" as the page's language writes a percentage.
    function percent(x) {
        // TRANSLATORS: a percentage ("25%"); write it as your language does ("25 %", "%25").
        return i18n.t('{percent}%', {percent: i18n.number(x)});
    }

    // Screen readers hear the start, and then each quarter with the time left.
    function sayProgress(fraction) {
        var quarter = Math.floor(fraction * 4), left;
        if (quarter <= deriving.said || quarter >= 4) {
            return;
        }
        deriving.said = quarter;
        left = remaining((dom.now() - deriving.t0) / 1000, fraction);
        dom.setText(field('kdf-said'), left !== null ?
            i18n.t('{percent} done, about {left} left.', {percent: percent(quarter * 25),
                left: dom.formatDuration(left)}) :
            i18n.t('{percent} done.', {percent: percent(quarter * 25)}));
    }

    // Web Crypto derives in one step: the bar stays indeterminate until a fraction is known.
    function progressUi(fraction) {
        var pct = Math.max(0, Math.min(100, Math.round(fraction * 100))), bar = field('kdf-progress');
        if (deriving) {
            deriving.fraction = fraction;
            sayProgress(fraction);
        }
        if (fraction <= 0) {
            bar.removeAttribute('value');
            dom.setText(field('kdf-percent'), i18n.t('working…'));
            return;
        }
        bar.value = pct;
        dom.setText(field('kdf-percent'), percent(pct));
    }

    // Scrolls as little as needed to show `first` to `last` (the progress and the form's buttons)
    // together, as they are on a small screen whose keyboard just closed.
    function keepInView(first, last) {
        var h, top, bottom;
        if (!first || !last || !first.getBoundingClientRect || !root.scrollBy) {
            return;
        }
        h = root.innerHeight || root.document.documentElement.clientHeight;
        top = first.getBoundingClientRect().top;
        bottom = last.getBoundingClientRect().bottom;
        if (bottom > h - 8) {
            root.scrollBy(0, Math.min(bottom - h + 8, top - 8));
        } else if (top < 8) {
            root.scrollBy(0, top - 8);
        }
    }

    function busy(on) {
        field('submit-button').disabled = !!on;
        dom.show(field('kdf-box'), on);
        if (on) {
            progressUi(0);
            keepInView(field('kdf-box'), field('submit-button').parentNode);
        } else {
            stopClock();
        }
    }

    function stopClock() {
        var cancel = field('cancel-button');
        if (deriving) {
            root.clearInterval(deriving.timer);
            deriving = null;
        }
        if (cancel) {
            if (cancel === root.document.activeElement) {
                field('submit-button').focus();
            }
            dom.show(cancel, false);
        }
    }

    // Cancel: the derivation stops, nothing goes to the server, and the form is as it was.
    function cancelDerivation() {
        if (!deriving) {
            return;
        }
        deriving.run.cancel();
        busy(false);
        status(i18n.t('Stopped. Nothing was sent to the server: change what you need and try again.'), true);
        field('submit-button').focus();
    }

    function derive(password, salt, iter, roomId, kdf, cb) {
        var cancel = field('cancel-button');
        busy(true);
        deriving = {t0: dom.now(), fraction: 0, said: 0, run: null, timer: root.setInterval(clockUi, 1000)};
        dom.setText(field('kdf-said'),
            i18n.t('Making the room key from the password. This can take a while on a slow device; Cancel stops it.'));
        clockUi();
        if (cancel) {
            dom.show(cancel, true);
            cancel.focus(); // the Join or Create button it took the focus from is disabled now
        }
        deriving.run = root.SealCrypto.deriveKeys(password, salt, iter, roomId, kdf, progressUi, function (err, keys) {
            if (err) {
                busy(false);
                status(deriveError(err, iter, kdf));
                cb(null);
                return;
            }
            progressUi(1);
            stopClock();
            cb(keys);
        });
    }

    // Why the room key could not be made, in the page's language; the reason of an unexpected
    // failure is the crypto engine's own (English) text.
    function deriveError(err, iter, kdf) {
        var SC = root.SealCrypto;
        if (err.code === 'iter') {
            return i18n.t('This room uses settings this page cannot handle: its key derivation asks for {iter} iterations, and this page accepts {min} to {max}.',
                {iter: i18n.number(Number(iter) || 0), min: i18n.number(SC.MIN_ITER), max: i18n.number(SC.MAX_ITER)});
        }
        if (err.code === 'kdf') {
            return i18n.t('This room uses settings this page cannot handle: the key derivation {kdf}, where this page knows only {known}.',
                {kdf: String(kdf), known: SC.KDF});
        }
        if (err.code === 'unsupported') {
            return unsupported();
        }
        return i18n.t('Could not make the room key: {reason}', {reason: err.message});
    }

    // sessionStorage gets the token, the names, the cursor and a vault sealed under this
    // session's resume_key (which the server gives only to this session, at its address): a copy
    // of the tab's storage opens nothing. The vault holds member_key and the private halves of
    // this session's keys, drawn here from the CSPRNG as SealCrypto.newSession does; the chat
    // page announces them. The auth key and the password stay in this page's memory only.
    function entered(resp, keys) {
        var SC = root.SealCrypto, state;
        field('password').value = '';
        state = {member_key: keys.memberKey, dh_sk: SC.b64u(SC.randomBytes(32)), sig_seed: SC.b64u(SC.randomBytes(32)),
            epochs: {}, floor: 0, seen: []};
        SC.vaultSeal(resp.resume_key, resp.room_id, resp.username, state, function (err, vault) {
            state = null;
            if (err) {
                busy(false);
                status(i18n.t('This tab could not keep the room key ({reason}). Please try again.',
                    {reason: err.message}));
                api.leave(resp.token, function () {});
                return;
            }
            Seal.session.save({
                token: resp.token,
                room: resp.name,
                roomId: resp.room_id,
                username: resp.username,
                cursor: resp.cursor,
                limits: resp.limits,
                vault: vault,
                joinCode: !!resp.join_code,
                joinCodeNew: !!resp.join_code_info
            });
            root.location.href = (checked('opt-kiosk') ? '/kiosk/' : '/chat/') + encodeURIComponent(resp.name);
        });
    }

    // A tab holds one session. Entering another room here would strand the one it is in (the
    // server keeps it, and refuses this device there, until the presence timeout), so the page
    // refuses and offers the way back instead. A session the server has ended no longer counts.
    function notInAnotherRoom(cb) {
        var saved = Seal.session.load();
        if (!saved) {
            cb();
            return;
        }
        api.pollSend(saved.token, {type: 'ping'}, function (err) {
            var node;
            if (err && api.isTerminal(err)) {
                Seal.session.wipe();
                dom.show(field('return-notice'), false);
                cb();
                return;
            }
            field('submit-button').disabled = false;
            status(i18n.t('This tab is still in the room {room} as {user}. Return to it and leave there first, or use a new tab to enter another room.',
                {room: saved.room, user: saved.username}) + ' ');
            node = field('form-status');
            node.setAttribute('data-code', 'in_another_room');
            node.appendChild(dom.el('a', {href: '/chat/' + encodeURIComponent(saved.room),
                text: i18n.t('Return to {room}', {room: saved.room})}));
        });
    }

    function validate(needPassword) {
        if (!value('roomname')) {
            status(i18n.t('Enter a room name.'));
            field('roomname').focus();
            return false;
        }
        if (!value('username')) {
            status(i18n.t('Enter your name.'));
            field('username').focus();
            return false;
        }
        if (needPassword && !field('password').value) {
            status(i18n.t('Enter the room password.'));
            field('password').focus();
            return false;
        }
        return true;
    }

    // ---- pages ---------------------------------------------------------------------------

    function startPage() {
        watchNames(function (info) {
            var join = field('join-button'), create = field('create-button');
            if (!info) {
                hint('roomname-status', '');
                return;
            }
            if (info.exists) {
                hint('roomname-status', i18n.t('This room exists: join it with its password.'), 'ok');
                join.className = '';
                create.className = 'secondary';
            } else {
                hint('roomname-status', i18n.t('No room with this name yet: you can create it.'), 'ok');
                join.className = 'secondary';
                create.className = '';
            }
        });
    }

    function createPage(backend) {
        var pwInput = field('password');
        function showStrength() {
            var s = Seal.passwords.strength(pwInput.value);
            field('strength-bar').className = 'strength-bar strength-' + s.score;
            hint('strength-text', pwInput.value ?
                i18n.n('Strength: {label} (about {count} bit).', 'Strength: {label} (about {count} bits).', s.bits,
                    {label: s.label}) :
                i18n.t('Choose a long password, or generate one.'), s.score >= 3 ? 'ok' : pwInput.value ? 'bad' : '');
        }
        function generated(pw) {
            pwInput.value = pw;
            pwInput.setAttribute('type', 'text');
            dom.setText(field('show-password'), i18n.t('Hide'));
            field('show-password').setAttribute('aria-pressed', 'true');
            showStrength();
        }
        dom.on(pwInput, 'input', showStrength);
        dom.on(field('gen-password'), 'click', function () {
            generated(Seal.passwords.generatePassword(20));
        });
        dom.on(field('gen-passphrase'), 'click', function () {
            generated(Seal.passwords.generatePassphrase(8));
        });
        if (!Seal.passwords.available()) {
            field('gen-password').disabled = true;
            field('gen-passphrase').disabled = true;
        }
        linkWithNames('to-login', '/login');
        watchNames(function (info) {
            if (!info) {
                return;
            }
            if (info.exists) {
                hint('roomname-status', i18n.t('A room with this name exists; join it instead, or pick another name.'),
                    'bad');
            } else {
                hint('roomname-status', i18n.t('This room name is free.'), 'ok');
            }
        });
        dom.on(field('create-form'), 'submit', function (ev) {
            var room = value('roomname'), user = value('username'), password = pwInput.value, iter, radios, i;
            ev.preventDefault();
            status('');
            if (!backend || !validate(true)) {
                return;
            }
            radios = root.document.getElementsByName('iter');
            for (i = 0; i < radios.length; i++) {
                if (radios[i].checked) {
                    iter = parseInt(radios[i].value, 10);
                }
            }
            iter = Math.max(root.SealCrypto.MIN_ITER, iter || root.SealCrypto.DEFAULT_ITER);
            field('submit-button').disabled = true;
            notInAnotherRoom(function () {
                createRoom(room, user, password, iter);
            });
        });
    }

    function createRoom(room, user, password, iter) {
        api.lookup(room, user, function (err, info) {
            var salt;
            if (err || info.exists) {
                field('submit-button').disabled = false;
                statusError(err || {code: 'room_exists'});
                return;
            }
            salt = root.SealCrypto.newSalt();
            derive(password, salt, iter, info.room_id, root.SealCrypto.KDF, function (keys) {
                if (!keys) {
                    return;
                }
                api.create({room: room, username: user, salt: salt, kdf: root.SealCrypto.KDF, iter: iter,
                    verifier: keys.verifier, join_code: checked('opt-joincode')}, function (err2, resp) {
                    if (err2) {
                        busy(false);
                        statusError(err2);
                        return;
                    }
                    entered(resp, keys);
                });
            });
        });
    }

    function loginPage(backend) {
        var needCode = false;
        linkWithNames('to-create', '/create');
        watchNames(function (info) {
            if (!info) {
                return;
            }
            if (info.exists && info.locked) {
                hint('roomname-status', i18n.t('Room found, but its host has locked it: nobody new can join now.'),
                    'bad');
            } else if (info.exists) {
                hint('roomname-status', i18n.t('Room found.'), 'ok');
            } else {
                hint('roomname-status', i18n.t('There is no room with this name.'), 'bad');
            }
            needCode = !!(info.exists && info.join_code);
            dom.show(field('joincode-field'), needCode);
        });
        dom.on(field('login-form'), 'submit', function (ev) {
            var room = value('roomname'), user = value('username'), password = field('password').value;
            ev.preventDefault();
            status('');
            if (!backend || !validate(true)) {
                return;
            }
            field('submit-button').disabled = true;
            notInAnotherRoom(function () {
                api.lookup(room, user, function (err, info) {
                    if (err || !info.exists) {
                        field('submit-button').disabled = false;
                        statusError(err || {code: 'room_not_found'});
                        return;
                    }
                    if (info.join_code && !value('joincode')) {
                        field('submit-button').disabled = false;
                        dom.show(field('joincode-field'), true);
                        status(i18n.t('This room needs a join code.'));
                        field('joincode').focus();
                        return;
                    }
                    derive(password, info.salt, info.iter, info.room_id, info.kdf, function (keys) {
                        var body;
                        if (!keys) {
                            return;
                        }
                        body = {room: room, username: user, auth_key: keys.auth};
                        if (info.join_code) {
                            body.join_code = value('joincode');
                        }
                        if (value('invite')) {
                            body.invite = value('invite');
                        }
                        api.join(body, function (err2, resp) {
                            if (err2) {
                                busy(false);
                                statusError(err2);
                                return;
                            }
                            entered(resp, keys);
                        });
                    });
                });
            });
        });
    }

    // A tab that is still in a room (Back button, typed address) is offered the way back.
    function offerReturn() {
        var saved = Seal.session.load(), main = field('main'), note;
        if (!saved || !main) {
            return;
        }
        note = dom.el('p', {className: 'notice', id: 'return-notice'}, [
            i18n.t('This tab is still in the room {room} as {user}.', {room: saved.room, user: saved.username}) + ' ',
            dom.el('a', {href: '/chat/' + encodeURIComponent(saved.room),
                text: i18n.t('Return to {room}', {room: saved.room})})
        ]);
        main.insertBefore(note, main.firstChild);
    }

    offerReturn();
    if (page === 'index') {
        startPage();
    } else if (page === 'create' || page === 'login') {
        setupShowPassword();
        field('submit-button').disabled = true;
        dom.on(field('cancel-button'), 'click', cancelDerivation);
        setupCrypto(function (backend) {
            engine = backend;
            field('submit-button').disabled = !backend;
            if (page === 'create') {
                createPage(backend);
            } else {
                loginPage(backend);
            }
        });
    }
}(this));
