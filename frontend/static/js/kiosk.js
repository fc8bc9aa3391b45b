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
    var dom = Seal.dom, SC = root.SealCrypto;
    var doc = root.document;
    var MAX_SHOWN = 200;
    var ENDED = {
        session_expired: 'The server restarted, so the room is gone. Join again to show a room here.',
        session_ended: 'This kiosk\'s session in the room has ended. Join again with the room password.',
        token_invalid: 'The server did not accept this session any more. Join again with the room password.'
    };

    var saved = Seal.session.load();
    var urlRoom = decodeURIComponent(root.location.pathname.replace(/^\/kiosk\//, ''));
    var readOnly = doc.body.getAttribute('data-readonly') === 'true';
    var list = dom.byId('messages');
    var room = null, transport = null, leaving = false, codeWatch = null, wake = null, noKeyShown = false;
    var WAITING = 'Waiting for the room key from the host…';

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
            goJoin('The kiosk left the room ' + other + ' to show this one.', urlRoom);
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
            dom.announce(from + ': ' + body);
        }
        append(li);
    }

    function renderTransport(v) {
        var node = dom.byId('transport-status'), how = v.mode === 'poll' ? 'long-poll' : 'WebSocket';
        node.setAttribute('data-transport', v.mode || '');
        node.setAttribute('data-state', v.state);
        node.setAttribute('title', v.detail || '');
        dom.setText(node, v.state === 'connected' ? 'Live (' + how + ')' : v.state === 'closed' ? 'Disconnected' :
            'Reconnecting…');
    }

    function renderLock(locked) {
        var node = dom.byId('k-lock-state');
        node.setAttribute('data-locked', locked ? 'true' : 'false');
        dom.setText(node, locked ? 'Locked: nobody new can join' : 'Open to new members');
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
            message(v.from, 'sends a file: ' + v.name + ' (' + dom.formatBytes(v.size) + ')', v.id);
        } else if (v.type === 'file-abandoned') {
            notice(v.name + ' from ' + v.from + ' did not arrive.', 'bad');
        } else if (v.type === 'members') {
            dom.setText(dom.byId('member-count'), String(v.members.length));
        } else if (v.type === 'joined') {
            notice(v.user + ' joined');
        } else if (v.type === 'left') {
            notice(v.user + (v.reason === 'timeout' ? ' was disconnected' : ' left'));
        } else if (v.type === 'removed') {
            notice(v.user + ' was removed from the room' + (v.by ? ' by ' + v.by + ', the host' : '') + '.', 'removed');
        } else if (v.type === 'host') {
            if (!v.initial) {
                notice((v.me ? 'This kiosk' : v.user) + ' is now the host.', 'host');
            }
        } else if (v.type === 'locked' || v.type === 'unlocked') {
            renderLock(v.type === 'locked');
            if (!v.initial) {
                notice((v.by || 'The host') + (v.type === 'locked' ? ' locked the room.' : ' unlocked the room.'),
                    v.type === 'locked' ? 'locked' : 'locked unlocked');
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
            message(v.from, 'Forged ' + (v.what === 'file' ? 'file' : 'message') + ': it does not come from ' + v.from +
                ' as it claims, so it is not shown. Why: ' + v.reason + '.', null, 'forged');
        } else if (v.type === 'key_changed') {
            notice(v.user + '\'s keys changed; the new keys were refused.', 'bad');
        } else if (v.type === 'bad_grant') {
            notice('A room key from ' + v.from + ' was refused: ' + v.reason + '.', 'bad');
        } else if (v.type === 'gap') {
            notice('Some messages were missed while the connection was away.', 'bad');
        } else if (v.type === 'undecryptable') {
            notice('A message from ' + v.from + ' could not be opened.', 'bad');
        } else if (v.type === 'error') {
            if (v.code === 'removed') {
                terminal({code: 'removed', message: v.message, retryAfter: v.retryAfter});
                return;
            }
            notice('The server refused something: ' + (v.message || v.code), 'bad');
        } else if (v.type === 'fatal') {
            endUnusable('This device could not restore the room keys (' + v.message + '). Join again with the password.');
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
        Seal.session.flash('The kiosk left the room. Its conversation is gone from this device.');
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
        return 'The host removed you from this room. This kiosk may join it again ' + (seconds > 0 ?
            'in ' + dom.formatWait(seconds) + '.' : 'once the host\'s ban ends (10 minutes, unless this server ' +
            'is set otherwise).');
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
                    notice('Could not send: ' + err.message, 'bad');
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
            dom.setText(out, state === 'on' ? 'Screen stays on' : state === 'unsupported' ?
                '' : 'Screen may turn off');
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
            goJoin('Join the room on this device to show it as a kiosk.', urlRoom);
            return;
        }
        if (!Seal.api.sameRoom(saved, urlRoom)) {
            leaveForOtherRoom();
            return;
        }
        if (!saved.vault || typeof saved.roomId !== 'string') {
            goJoin('This device\'s session was made by an older version of Sealchat. Join the room again.', saved.room);
            return;
        }
        doc.title = saved.room + ' - Sealchat kiosk';
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
                dom.setText(dom.byId('crypto-notice'), 'This browser cannot do the encryption Sealchat needs.');
                dom.show(dom.byId('crypto-notice'), true);
                return;
            }
            start();
        });
    }

    boot();
}(this));
