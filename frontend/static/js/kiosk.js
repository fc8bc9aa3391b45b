/*
 * The kiosk view: a member device on a wall. It resumes this tab's session like the chat page,
 * runs the same Seal.Room over the same Seal.Transport (which falls back to long-poll and keeps
 * reconnecting), and shows the conversation in large type with the room's current join code and
 * a QR code of the join link (room name only, never the password). Read-only when the page was
 * opened with ?readonly=1. The screen is kept on where the browser allows it.
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
    var room = null, transport = null, leaving = false, codeWatch = null, wake = null;

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

    function notice(text, cls) {
        append(dom.el('li', {className: 'event' + (cls ? ' ' + cls : ''), text: text}));
    }

    function message(from, body, id) {
        var li = dom.el('li', {className: 'msg' + (from === saved.username ? ' mine' : '')}, [
            dom.el('span', {className: 'from', text: from}),
            dom.el('div', {className: 'body', text: body})
        ]);
        if (id) {
            li.setAttribute('data-id', id);
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
        } else if (v.type === 'gap') {
            notice('Some messages were missed while the connection was away.', 'bad');
        } else if (v.type === 'undecryptable') {
            notice('A message from ' + v.from + ' could not be opened.', 'bad');
        } else if (v.type === 'error') {
            notice('The server refused something: ' + (v.message || v.code), 'bad');
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

    // Leave: the keys, this tab's storage and the conversation go at once; the server is told
    // after, and the start page shows when it has answered (or given up).
    function leave() {
        var token = saved.token, code = dom.byId('joincode-code'), input = dom.byId('message-input');
        if (leaving) {
            return;
        }
        leaving = true;
        dom.byId('leave-button').disabled = true;
        stopAll();
        if (room) {
            room.close();
        }
        Seal.session.wipe();
        saved.keys = null;
        saved.token = null;
        dom.clear(list);
        if (input) {
            input.value = '';
        }
        dom.setText(code, '');
        code.removeAttribute('data-code');
        dom.show(dom.byId('joincode-box'), false);
        dom.setText(dom.byId('member-count'), '0');
        Seal.session.flash('The kiosk left the room. Its conversation is gone from this device.');
        Seal.api.leave(token, function () {
            root.location.replace('/');
        });
    }

    function terminal(err) {
        if (leaving) {
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

    function start(keys) {
        if (leaving) {
            return; // Leave was pressed while the key was being restored
        }
        room = new Seal.Room({keys: keys, username: saved.username, token: saved.token, cursor: saved.cursor,
            members: saved.members || [], limits: saved.limits || {}, onView: onView,
            onCursor: function (cursor) {
                Seal.session.update({cursor: cursor});
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
            SC.importForResume(saved.keys, function (err, keys) {
                if (err) {
                    goJoin('This device could not restore the room key; join again with the password.', saved.room);
                    return;
                }
                start(keys);
            });
        });
    }

    boot();
}(this));
