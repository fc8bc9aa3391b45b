/*
 * The kiosk view: a member device on a wall. It resumes this tab's session like the chat page,
 * runs the same Seal.Room over the same Seal.Transport (which falls back to long-poll and keeps
 * reconnecting), and shows the conversation in large type with the room's current join code and
 * a QR code of the join link (room name only, never the password), the room's lock state and its
 * safety code. It is a member like any other: when it is the host, its room draws and grants the
 * keys (it offers no remove or lock buttons: those belong to a person). Read-only when the page
 * was opened with ?readonly=1. The screen is kept on where the browser allows it.
 */
(function (root) {
    'use strict';

    var Seal = root.Seal;
    var dom = Seal.dom, SC = root.SealCrypto, i18n = Seal.i18n;
    var doc = root.document;
    var MAX_SHOWN = 200;
    var ENDED = {
        session_expired: i18n.t('The server restarted, so the room is gone. Join again to show a room here.'),
        session_ended: i18n.t('This kiosk\'s session in the room has ended. Join again with the room password.'),
        token_invalid: i18n.t('The server did not accept this session any more. Join again with the room password.')
    };

    var saved = Seal.session.load();
    var urlRoom = decodeURIComponent(root.location.pathname.replace(/^\/kiosk\//, ''));
    var readOnly = doc.body.getAttribute('data-readonly') === 'true';
    var list = dom.byId('messages');
    var room = null, transport = null, leaving = false, codeWatch = null, wake = null, noKeyShown = false;
    var WAITING = i18n.t('Waiting for the room key from the host…');

    function goJoin(message, roomName) {
        Seal.session.wipe();
        if (message) {
            Seal.session.flash(message);
        }
        root.location.replace('/login?kiosk=1&roomname=' + encodeURIComponent(roomName || ''));
    }

    // This tab is in another room: leave that one properly (its members see it, and this
    // device may join it again at once), then offer the join page of the room asked for.
    function leaveForOtherRoom() {
        var other = saved.room, token = saved.token;
        leaving = true;
        Seal.session.wipe();
        Seal.api.leave(token, function () {
            goJoin(i18n.t('The kiosk left the room {room} to show this one.', {room: other}), urlRoom);
        });
    }

    // ---- rendering -----------------------------------------------------------------------

    function append(node) {
        list.appendChild(node);
        while (list.childNodes.length > MAX_SHOWN) {
            list.removeChild(list.firstChild);
        }
        list.scrollTop = list.scrollHeight;
    }

    // Notices and others' messages are also said through the polite live region.
    function notice(text, cls) {
        dom.announce(text);
        append(dom.el('li', {className: 'event' + (cls ? ' ' + cls : ''), text: text}));
    }

    function message(from, body, id, extraClass) {
        var li = dom.el('li', {className: 'msg' + (from === saved.username ? ' mine' : '') + (extraClass ? ' ' + extraClass : '')}, [
            dom.el('span', {className: 'from', text: from}),
            dom.el('div', {className: 'body', text: body})
        ]);
        if (id) {
            li.setAttribute('data-id', id);
        }
        if (from !== saved.username) {
            // TRANSLATORS: what a screen reader says of a message: its sender, then its text.
            dom.announce(i18n.t('{user}: {text}', {user: from, text: body}));
        }
        append(li);
    }

    function renderTransport(v) {
        var node = dom.byId('transport-status'), text;
        node.setAttribute('data-transport', v.mode || '');
        node.setAttribute('data-state', v.state);
        node.setAttribute('title', v.detail || '');
        if (v.state === 'connected') {
            text = v.mode === 'poll' ? i18n.t('Live (long-poll)') : i18n.t('Live (WebSocket)');
        } else {
            text = v.state === 'closed' ? i18n.t('Disconnected') : i18n.t('Reconnecting…');
        }
        dom.setText(node, text);
    }

    function renderLock(locked) {
        var node = dom.byId('k-lock-state');
        node.setAttribute('data-locked', locked ? 'true' : 'false');
        dom.setText(node, locked ? i18n.t('Locked: nobody new can join') : i18n.t('Open to new members'));
    }

    function lockNotice(locked, by) {
        if (by) {
            return locked ? i18n.t('{user} locked the room.', {user: by}) :
                i18n.t('{user} unlocked the room.', {user: by});
        }
        return locked ? i18n.t('The host locked the room.') : i18n.t('The host unlocked the room.');
    }

    function renderKeyState(v) {
        var node = dom.byId('key-status');
        if (v.usable) {
            noKeyShown = false;
        }
        dom.show(node, !v.usable && (v.held > 0 || noKeyShown));
    }

    function onView(v) {
        if (leaving) {
            return;
        }
        if (v.type === 'text') {
            message(v.from, v.text, v.id);
        } else if (v.type === 'file-start') {
            // TRANSLATORS: after the sender's name, in a kiosk's conversation.
            message(v.from, i18n.t('sends a file: {name} ({size})', {name: v.name, size: dom.formatBytes(v.size)}), v.id);
        } else if (v.type === 'file-abandoned') {
            notice(i18n.t('{name} from {user} did not arrive.', {name: v.name, user: v.from}), 'bad');
        } else if (v.type === 'members') {
            dom.setText(dom.byId('member-count'), i18n.number(v.members.length));
        } else if (v.type === 'joined') {
            notice(i18n.t('{user} joined', {user: v.user}));
        } else if (v.type === 'left') {
            notice(v.reason === 'timeout' ? i18n.t('{user} was disconnected', {user: v.user}) :
                i18n.t('{user} left', {user: v.user}));
        } else if (v.type === 'removed') {
            notice(v.by ? i18n.t('{user} was removed from the room by {host}, the host.', {user: v.user, host: v.by}) :
                i18n.t('{user} was removed from the room.', {user: v.user}), 'removed');
        } else if (v.type === 'host') {
            if (!v.initial) {
                notice(v.me ? i18n.t('This kiosk is now the host.') : i18n.t('{user} is now the host.', {user: v.user}),
                    'host');
            }
        } else if (v.type === 'locked' || v.type === 'unlocked') {
            renderLock(v.type === 'locked');
            if (!v.initial) {
                notice(lockNotice(v.type === 'locked', v.by), v.type === 'locked' ? 'locked' : 'locked unlocked');
            }
        } else if (v.type === 'safety') {
            dom.setText(dom.byId('k-safety-code'), v.code || '…');
            dom.byId('k-safety-code').setAttribute('data-code', v.code || '');
        } else if (v.type === 'key-state') {
            renderKeyState(v);
        } else if (v.type === 'no_key') {
            if (!noKeyShown) {
                noKeyShown = true;
                notice(WAITING, 'no-key');
                renderKeyState({usable: false, held: 0});
            }
        } else if (v.type === 'forged') {
            message(v.from, v.what === 'file' ?
                i18n.t('Forged file: it does not come from {user} as it claims, so it is not shown. Why: {reason}.',
                    {user: v.from, reason: v.reason}) :
                i18n.t('Forged message: it does not come from {user} as it claims, so it is not shown. Why: {reason}.',
                    {user: v.from, reason: v.reason}), null, 'forged');
        } else if (v.type === 'key_changed') {
            notice(i18n.t('{user}\'s keys changed; the new keys were refused.', {user: v.user}), 'bad');
        } else if (v.type === 'bad_grant') {
            notice(i18n.t('A room key from {user} was refused: {reason}.', {user: v.from, reason: v.reason}), 'bad');
        } else if (v.type === 'gap') {
            notice(i18n.t('Some messages were missed while the connection was away.'), 'bad');
        } else if (v.type === 'undecryptable') {
            notice(i18n.t('A message from {user} could not be opened.', {user: v.from}), 'bad');
        } else if (v.type === 'error') {
            if (v.code === 'removed') {
                terminal({code: 'removed', message: v.message, retryAfter: v.retryAfter});
                return;
            }
            notice(i18n.t('The server refused something: {reason}', {reason: v.message || v.code}), 'bad');
        } else if (v.type === 'fatal') {
            endUnusable(i18n.t('This device could not restore the room keys ({reason}). Join again with the password.',
                {reason: v.message}));
        } else if (v.type === 'transport') {
            renderTransport(v);
        }
    }

    // ---- ending --------------------------------------------------------------------------

    function stopAll() {
        if (transport) {
            transport.close();
        }
        if (codeWatch) {
            codeWatch.stop();
        }
        if (wake) {
            wake.release();
        }
    }

    // The keys, this tab's storage and the conversation go at once.
    function wipe() {
        var code = dom.byId('joincode-code'), input = dom.byId('message-input');
        stopAll();
        if (room) {
            room.close();
        }
        Seal.session.wipe();
        saved.vault = null;
        saved.token = null;
        dom.clear(list);
        dom.clear(dom.byId('announcer'));
        if (input) {
            input.value = '';
        }
        dom.setText(code, '');
        code.removeAttribute('data-code');
        dom.show(dom.byId('joincode-box'), false);
        dom.setText(dom.byId('member-count'), '0');
        dom.setText(dom.byId('k-safety-code'), '');
        dom.show(dom.byId('key-status'), false);
    }

    // Leave: everything goes first; the server is told after, and the start page shows when it
    // has answered (or given up).
    function leave() {
        var token = saved.token;
        if (leaving) {
            return;
        }
        leaving = true;
        dom.byId('leave-button').disabled = true;
        wipe();
        Seal.session.flash(i18n.t('The kiosk left the room. Its conversation is gone from this device.'));
        Seal.api.leave(token, function () {
            root.location.replace('/');
        });
    }

    // The keys did not open: end the session at the server so this device may join again at once.
    function endUnusable(message) {
        var token = saved.token;
        leaving = true;
        wipe();
        Seal.api.leave(token, function () {
            goJoin(message, saved.room);
        });
    }

    function removedMessage(retryAfter) {
        var seconds = retryAfter || Number(((room && room.limits) || saved.limits || {}).kick_ban) || 0;
        if (seconds > 0) {
            return i18n.t('The host removed you from this room. This kiosk may join it again in {wait}.',
                {wait: dom.formatWait(seconds)});
        }
        return i18n.t(
            'The host removed you from this room. This kiosk may join it again once the host\'s ban ends (10 minutes, unless this server is set otherwise).'
        );
    }

    function terminal(err) {
        if (leaving) {
            return;
        }
        if (err.code === 'removed') {
            leaving = true;
            wipe();
            goJoin(removedMessage(err.retryAfter), saved.room);
            return;
        }
        if (ENDED[err.code]) {
            stopAll();
            goJoin(ENDED[err.code], saved.room);
            return;
        }
        notice(err.message, 'bad');
        renderTransport({mode: transport && transport.mode, state: 'closed', detail: err.message});
    }

    // ---- controls ------------------------------------------------------------------------

    function setupComposer() {
        var form = dom.byId('composer'), input = dom.byId('message-input');
        if (readOnly) {
            form.parentNode.removeChild(form);
            return;
        }
        dom.show(form, true);
        dom.on(form, 'submit', function (ev) {
            var text = input.value;
            ev.preventDefault();
            if (!/\S/.test(text)) {
                return;
            }
            input.value = '';
            room.sendText(text, function (err) {
                if (err) {
                    notice(i18n.t('Could not send: {reason}', {reason: err.message}), 'bad');
                }
            });
        });
    }

    function setupFullscreen() {
        var button = dom.byId('fullscreen-button'), el = doc.documentElement;
        var request = el.requestFullscreen || el.webkitRequestFullscreen || el.msRequestFullscreen;
        if (!request) {
            return;
        }
        dom.show(button, true);
        dom.on(button, 'click', function () {
            var result;
            try {
                result = request.call(el);
            } catch (e) {
                result = null;
            }
            if (result && typeof result.then === 'function') {
                result.then(null, function () {});
            }
        });
        dom.on(doc, 'fullscreenchange', function () {
            dom.show(button, !doc.fullscreenElement);
        });
    }

    function setupJoinInfo() {
        var qr = dom.byId('join-qr'), link = root.location.protocol + '//' + root.location.host +
            '/login?roomname=' + encodeURIComponent(saved.room);
        qr.src = '/qr/join?roomname=' + encodeURIComponent(saved.room);
        dom.show(qr, true);
        dom.setText(dom.byId('join-link'), link);
        codeWatch = Seal.joincode.watch(saved.token, {box: dom.byId('joincode-box'), code: dom.byId('joincode-code'),
            expires: dom.byId('joincode-expires'), progress: dom.byId('joincode-progress')});
    }

    function setupWakeLock() {
        var out = dom.byId('wakelock-state');
        wake = Seal.wakelock.keep(function (state) {
            out.setAttribute('data-state', state);
            dom.setText(out, state === 'on' ? i18n.t('Screen stays on') : state === 'unsupported' ?
                '' : i18n.t('Screen may turn off'));
        });
    }

    // ---- start ---------------------------------------------------------------------------

    function start() {
        if (leaving) {
            return; // Leave was pressed while the crypto engine was being checked
        }
        room = new Seal.Room({roomId: saved.roomId, username: saved.username, token: saved.token, cursor: saved.cursor,
            members: saved.members || [saved.username], limits: saved.limits || {}, vault: saved.vault, onView: onView,
            onCursor: function (cursor) {
                Seal.session.update({cursor: cursor});
            },
            onVault: function (vault) {
                if (!leaving) {
                    Seal.session.update({vault: vault});
                }
            }});
        onView({type: 'members', members: room.members});
        transport = new Seal.Transport({token: saved.token, forcePoll: !!Seal.session.pref('forcePoll'),
            pollTimeout: (saved.limits || {}).poll_timeout,
            cursor: function () {
                return room.cursor;
            },
            onEvent: function (ev) {
                room.receive(ev);
            },
            onState: function (info) {
                room.transportState(info);
            },
            onTerminal: terminal});
        room.attach(transport);
        setupComposer();
        transport.start();
    }

    function boot() {
        var meta = dom.byId('sealchat-crypto'), out = dom.byId('crypto-backend');
        if (!saved) {
            goJoin(i18n.t('Join the room on this device to show it as a kiosk.'), urlRoom);
            return;
        }
        if (!Seal.api.sameRoom(saved, urlRoom)) {
            leaveForOtherRoom();
            return;
        }
        if (!saved.vault || typeof saved.roomId !== 'string') {
            goJoin(i18n.t('This device\'s session was made by an older version of Sealchat. Join the room again.'),
                saved.room);
            return;
        }
        // TRANSLATORS: the kiosk page's title.
        doc.title = i18n.t('{room} - Sealchat kiosk', {room: saved.room});
        dom.setText(dom.byId('room-name'), saved.room);
        dom.on(dom.byId('leave-button'), 'click', leave);
        dom.on(root, 'pageshow', function (ev) {
            if (ev.persisted && !Seal.session.load()) {
                root.location.replace('/');
            }
        });
        setupJoinInfo();
        setupFullscreen();
        setupWakeLock();
        SC.setFallbackUrls({vendor: meta.getAttribute('data-vendor'), worker: meta.getAttribute('data-worker')});
        SC.detect(function (backend) {
            out.setAttribute('data-backend', backend || 'none');
            if (!backend) {
                dom.setText(dom.byId('crypto-notice'), i18n.t('This browser cannot do the encryption Sealchat needs.'));
                dom.show(dom.byId('crypto-notice'), true);
                return;
            }
            start();
        });
    }

    boot();
}(this));
