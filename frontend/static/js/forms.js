/*
 * The start, create and join pages: live name checks, password tools, key derivation with a
 * progress bar, then create or join and hand the session to the chat page. The join page takes a
 * member's single-use invite (?invite=, prefilled in its field) and sends it with the join.
 */
(function (root) {
    'use strict';

    var Seal = root.Seal;
    var dom = Seal.dom, api = Seal.api;
    var page = root.document.body.getAttribute('data-page');

    var FRIENDLY = {
        address_in_use: 'This device already has a session in this room (maybe in another tab). ' +
            'Go back to that tab, or leave there first.',
        wrong_password: 'Wrong password for this room.',
        username_taken: 'Someone in this room already uses this name; pick another.',
        room_exists: 'A room with this name already exists. Join it, or pick another name.',
        room_not_found: 'There is no room with this name. It may have closed when its last member left.'
    };
    // bad_invite: the server's own sentence says what to do (ask a member for a new one).

    var UNSUPPORTED = 'This browser cannot do the encryption Sealchat needs, so it cannot create or join ' +
        'rooms. Please use a current version of Firefox, Chrome, Safari or Edge.';

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
        var text = FRIENDLY[err.code] || err.message || 'Something went wrong.';
        if (err.code === 'address_in_use' && err.message) {
            text = err.message + ' ' + FRIENDLY.address_in_use;
        }
        // banned and room_locked: the server's own sentence says why (and, for banned, when).
        if (err.retryAfter && err.code !== 'banned') {
            text += ' Try again in ' + err.retryAfter + ' seconds.';
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
            dom.setText(notice, UNSUPPORTED);
            dom.show(notice, true);
            cb(null);
            return;
        }
        root.SealCrypto.setFallbackUrls({vendor: meta.getAttribute('data-vendor'),
            worker: meta.getAttribute('data-worker')});
        root.SealCrypto.detect(function (backend) {
            if (out) {
                out.setAttribute('data-backend', backend || 'none');
                dom.setText(out, backend === 'webcrypto' ? 'Web Crypto (built into the browser)' :
                    backend === 'fallback' ? 'compatibility mode (JavaScript; slower key derivation)' :
                        'none available');
            }
            if (!backend && notice) {
                dom.setText(notice, UNSUPPORTED);
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
                    hint('username-status', 'Someone in this room already uses this name.', 'bad');
                } else if (user) {
                    hint('username-status', 'This name is free.', 'ok');
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
            dom.setText(button, showing ? 'Show' : 'Hide');
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
            text = dom.formatSpan(elapsed) + ' so far';
        if (left !== null) {
            text += ', about ' + dom.formatSpan(left) + ' left';
        } else if (engine === 'webcrypto') {
            text += '; this browser\'s built-in engine does not say how far it is';
        } else {
            text += ', working out how long it takes…';
        }
        dom.setText(field('kdf-time'), text);
    }

    // Screen readers hear the start, and then each quarter with the time left.
    function sayProgress(fraction) {
        var quarter = Math.floor(fraction * 4), left;
        if (quarter <= deriving.said || quarter >= 4) {
            return;
        }
        deriving.said = quarter;
        left = remaining((dom.now() - deriving.t0) / 1000, fraction);
        dom.setText(field('kdf-said'), (quarter * 25) + '% done' + (left !== null ? ', about ' +
            dom.formatDuration(left) + ' left.' : '.'));
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
            dom.setText(field('kdf-percent'), 'working…');
            return;
        }
        bar.value = pct;
        dom.setText(field('kdf-percent'), pct + '%');
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
        status('Stopped. Nothing was sent to the server: change what you need and try again.', true);
        field('submit-button').focus();
    }

    function derive(password, salt, iter, roomId, kdf, cb) {
        var cancel = field('cancel-button');
        busy(true);
        deriving = {t0: dom.now(), fraction: 0, said: 0, run: null, timer: root.setInterval(clockUi, 1000)};
        dom.setText(field('kdf-said'), 'Making the room key from the password. This can take a while on a slow ' +
            'device; Cancel stops it.');
        clockUi();
        if (cancel) {
            dom.show(cancel, true);
            cancel.focus(); // the Join or Create button it took the focus from is disabled now
        }
        deriving.run = root.SealCrypto.deriveKeys(password, salt, iter, roomId, kdf, progressUi, function (err, keys) {
            if (err) {
                busy(false);
                status(err.code === 'iter' || err.code === 'kdf' ?
                    'This room uses settings this page cannot handle: ' + err.message + '.' :
                    'Could not make the room key: ' + err.message);
                cb(null);
                return;
            }
            progressUi(1);
            stopClock();
            cb(keys);
        });
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
                status('This tab could not keep the room key (' + err.message + '). Please try again.');
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
            status('This tab is still in the room ' + saved.room + ' as ' + saved.username + '. Return to it ' +
                'and leave there first, or use a new tab to enter another room. ');
            node = field('form-status');
            node.setAttribute('data-code', 'in_another_room');
            node.appendChild(dom.el('a', {href: '/chat/' + encodeURIComponent(saved.room), text: 'Return to ' +
                saved.room}));
        });
    }

    function validate(needPassword) {
        if (!value('roomname')) {
            status('Enter a room name.');
            field('roomname').focus();
            return false;
        }
        if (!value('username')) {
            status('Enter your name.');
            field('username').focus();
            return false;
        }
        if (needPassword && !field('password').value) {
            status('Enter the room password.');
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
                hint('roomname-status', 'This room exists: join it with its password.', 'ok');
                join.className = '';
                create.className = 'secondary';
            } else {
                hint('roomname-status', 'No room with this name yet: you can create it.', 'ok');
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
            hint('strength-text', pwInput.value ? 'Strength: ' + s.label + ' (about ' + s.bits + ' bits).' :
                'Choose a long password, or generate one.', s.score >= 3 ? 'ok' : pwInput.value ? 'bad' : '');
        }
        function generated(pw) {
            pwInput.value = pw;
            pwInput.setAttribute('type', 'text');
            dom.setText(field('show-password'), 'Hide');
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
                hint('roomname-status', 'A room with this name exists; join it instead, or pick another name.', 'bad');
            } else {
                hint('roomname-status', 'This room name is free.', 'ok');
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
                hint('roomname-status', 'Room found, but its host has locked it: nobody new can join now.', 'bad');
            } else if (info.exists) {
                hint('roomname-status', 'Room found.', 'ok');
            } else {
                hint('roomname-status', 'There is no room with this name.', 'bad');
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
                        status('This room needs a join code.');
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
            'This tab is still in the room ' + saved.room + ' as ' + saved.username + '. ',
            dom.el('a', {href: '/chat/' + encodeURIComponent(saved.room), text: 'Return to it'}),
            '.'
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
