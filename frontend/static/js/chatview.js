/*
 * The chat page: resumes this tab's session, connects the room to a transport, and renders
 * what happens. User data reaches the page only as text nodes; images are shown only from
 * decrypted bytes of a whitelisted type (never SVG); every other file is a download link.
 * The member list marks the host and shows each member's key fingerprint; the host gets a
 * Remove button per member and a Lock button; the safety code sits in its own panel. Any member
 * may mint a single-use invite: its code and link are shown in #invite-box, on this page only.
 */
(function (root) {
    'use strict';

    var Seal = root.Seal;
    var dom = Seal.dom, SC = root.SealCrypto, i18n = Seal.i18n;
    var doc = root.document;
    var IMAGE_TYPES = {'image/png': true, 'image/jpeg': true, 'image/gif': true, 'image/webp': true};

    var saved = Seal.session.load();
    var urlRoom = decodeURIComponent(root.location.pathname.replace(/^\/chat\//, ''));
    var room = null, transport = null, leaving = false, objectUrls = [], pending = {};
    var list = dom.byId('messages');
    // What the member list shows: names in order, the host, fingerprints by name.
    var roster = {members: [], host: null, fingerprints: {}}, noKeyShown = false;
    var inviteTimer = null;

    // What the join page says after the server ended this session (code from its refusal), or null.
    function endedMessage(code) {
        if (code === 'session_expired') {
            return i18n.t('The server restarted, so the room and this session are gone. Create or join a room again.');
        }
        if (code === 'session_ended') {
            return i18n.t('Your session in this room has ended. Join again with the room password.');
        }
        if (code === 'token_invalid') {
            return i18n.t('The server did not accept this session any more. Join again with the room password.');
        }
        return null;
    }

    function goJoin(message, roomName, username) {
        Seal.session.wipe();
        if (message) {
            Seal.session.flash(message);
        }
        root.location.replace('/login?roomname=' + encodeURIComponent(roomName || '') +
            '&username=' + encodeURIComponent(username || ''));
    }

    // How long a removed member stays out: what the server says (the refusal's retry_after, or
    // its kick_ban limit), else its default.
    function removedMessage(retryAfter) {
        var seconds = retryAfter || Number(((room && room.limits) || saved.limits || {}).kick_ban) || 0;
        if (seconds > 0) {
            return i18n.t('The host removed you from this room. You may join it again in {wait}.',
                {wait: dom.formatWait(seconds)});
        }
        return i18n.t('The host removed you from this room. You may join it again once the host\'s ban ends (10 minutes, unless this server is set otherwise).');
    }

    // This tab is in another room: leave that one properly (its members see it, and this
    // address may join it again at once), then offer the join page of the room asked for.
    function leaveForOtherRoom() {
        var other = saved.room, username = saved.username, token = saved.token;
        leaving = true;
        Seal.session.wipe();
        dom.setText(dom.byId('transport-status'), i18n.t('Leaving {room}…', {room: other}));
        Seal.api.leave(token, function () {
            goJoin(i18n.t('You left the room {room} to open this one.', {room: other}), urlRoom, username);
        });
    }

    // ---- rendering -----------------------------------------------------------------------

    function nearBottom() {
        return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    }

    function append(node) {
        var stick = nearBottom();
        list.appendChild(node);
        if (stick) {
            list.scrollTop = list.scrollHeight;
        }
        return node;
    }

    // Every notice (someone joined or left, an error, a change of host) is also said aloud.
    function notice(text, cls) {
        dom.announce(text);
        return append(dom.el('li', {className: 'event' + (cls ? ' ' + cls : ''), text: text}));
    }

    function messageShell(from, ts, mine, extraClass) {
        var meta = dom.el('div', {className: 'meta'}, [
            dom.el('span', {className: 'from', text: from}),
            dom.el('time', {text: i18n.time(typeof ts === 'number' ? ts : new Date())})
        ]);
        return dom.el('li', {className: 'msg' + (mine ? ' mine' : '') + (extraClass ? ' ' + extraClass : '')}, [meta]);
    }

    function renderText(v) {
        var li = messageShell(v.from, v.ts, v.mine), body = dom.el('div', {className: 'body'});
        body.appendChild(dom.linkify(v.text));
        li.appendChild(body);
        li.setAttribute('data-id', v.id);
        append(li);
    }

    function startsWith(bytes, sig) {
        var i;
        if (bytes.length < sig.length) {
            return false;
        }
        for (i = 0; i < sig.length; i++) {
            if (sig[i] !== null && bytes[i] !== sig[i]) {
                return false;
            }
        }
        return true;
    }

    // The bytes must look like the type they claim before they go into an <img>.
    function imageTypeOk(mime, b) {
        if (!IMAGE_TYPES[mime]) {
            return false;
        }
        if (mime === 'image/png') {
            return startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
        }
        if (mime === 'image/jpeg') {
            return startsWith(b, [0xff, 0xd8, 0xff]);
        }
        if (mime === 'image/gif') {
            return startsWith(b, [0x47, 0x49, 0x46, 0x38]);
        }
        return startsWith(b, [0x52, 0x49, 0x46, 0x46, null, null, null, null, 0x57, 0x45, 0x42, 0x50]);
    }

    function blobUrl(bytes, type) {
        var blob;
        if (!root.Blob || !root.URL || typeof root.URL.createObjectURL !== 'function') {
            return null;
        }
        try {
            blob = new root.Blob([bytes], {type: type});
        } catch (e) {
            return null;
        }
        var url = root.URL.createObjectURL(blob);
        objectUrls.push(url);
        return url;
    }

    function fileShell(v) {
        var li = pending[v.from + '\n' + v.fileId];
        if (!li) {
            li = append(messageShell(v.from, v.ts, v.mine, 'file'));
            pending[v.from + '\n' + v.fileId] = li;
        }
        return li;
    }

    function renderFileStart(v) {
        var li = fileShell(v);
        li.appendChild(dom.el('div', {className: 'body receiving', text: i18n.t('Receiving {name} ({size})…',
            {name: v.name, size: i18n.size(v.size)})}));
    }

    function renderFile(v) {
        var key = v.from + '\n' + v.fileId, li = fileShell(v), isImage = imageTypeOk(v.mime, v.bytes), url, body, img;
        delete pending[key];
        while (li.childNodes.length > 1) {
            li.removeChild(li.lastChild);
        }
        body = dom.el('div', {className: 'body'});
        url = blobUrl(v.bytes, isImage ? v.mime : 'application/octet-stream');
        if (isImage && url) {
            img = dom.el('img', {className: 'shared', src: url, alt: i18n.t('Image: {name}', {name: v.name})});
            body.appendChild(img);
        }
        if (url) {
            body.appendChild(dom.el('a', {className: 'download', href: url, download: v.name,
                rel: 'noopener noreferrer', text: v.name}));
            body.appendChild(doc.createTextNode(' ' + i18n.t('({size})', {size: i18n.size(v.size)})));
        } else {
            body.appendChild(doc.createTextNode(i18n.t('{name}: this browser cannot show received files.',
                {name: v.name})));
        }
        li.appendChild(body);
        li.setAttribute('data-id', v.id);
        if (img) {
            dom.on(img, 'load', function () {
                list.scrollTop = list.scrollHeight;
            });
        }
    }

    function renderFileAbandoned(v) {
        var key = v.from + '\n' + v.fileId, li = pending[key];
        if (!li) {
            return;
        }
        delete pending[key];
        while (li.childNodes.length > 1) {
            li.removeChild(li.lastChild);
        }
        li.className += ' bad';
        li.appendChild(dom.el('div', {className: 'body abandoned', text: v.reason ?
            i18n.t('{name} did not arrive: {reason}.', {name: v.name, reason: v.reason}) :
            i18n.t('{name} did not arrive.', {name: v.name})}));
    }

    // An item: name, "(you)", "(host)" when it is, the key fingerprint, and for the host a
    // Remove button. Nothing hidden stays in it, so its text is what it shows.
    function memberItem(user) {
        var li = dom.el('li', {'data-user': user});
        li.appendChild(dom.el('span', {className: 'name', text: user}));
        if (user === saved.username) {
            li.className = 'me';
            li.appendChild(dom.el('span', {className: 'hint', text: ' ' + i18n.t('(you)')}));
        }
        li.appendChild(dom.el('span', {className: 'host-badge'}));
        li.appendChild(dom.el('span', {className: 'fp-label sr-only'}));
        li.appendChild(dom.el('code', {className: 'fingerprint'}));
        return li;
    }

    function setRemoveButton(li, user, wanted) {
        var button = li.querySelector('button.remove-member');
        if (wanted && !button) {
            button = dom.el('button', {type: 'button', className: 'remove-member ghost small',
                'aria-label': i18n.t('Remove {user}', {user: user}), text: i18n.t('Remove')});
            dom.on(button, 'click', function () {
                removeMember(user, button);
            });
            li.appendChild(button);
        } else if (!wanted && button) {
            li.removeChild(button);
        }
    }

    // Updates the list in place (a focused Remove button keeps its focus while others change).
    function renderMembers() {
        var ul = dom.byId('member-list'), items = {}, i, li, user, isHost, fp, kids = ul.childNodes,
            order = [], inOrder = true;
        for (i = kids.length - 1; i >= 0; i--) {
            user = kids[i].getAttribute('data-user');
            if (dom.indexOf(roster.members, user) < 0 || items[user]) {
                ul.removeChild(kids[i]);
            } else {
                items[user] = kids[i];
            }
        }
        for (i = 0; i < ul.childNodes.length; i++) {
            order.push(ul.childNodes[i].getAttribute('data-user'));
            inOrder = inOrder && order[i] === roster.members[i];
        }
        for (i = 0; i < roster.members.length; i++) {
            user = roster.members[i];
            li = items[user];
            if (!li) {
                li = memberItem(user);
                ul.appendChild(li);
            } else if (!inOrder) {
                ul.appendChild(li); // a welcome brought another order: every item moves, in order
            }
            isHost = user === roster.host;
            if (isHost) {
                li.setAttribute('data-host', 'true');
            } else {
                li.removeAttribute('data-host');
            }
            dom.setText(li.querySelector('.host-badge'), isHost ? ' ' + i18n.t('(host)') : '');
            fp = roster.fingerprints[user] || '';
            dom.setText(li.querySelector('.fp-label'), fp ? ' ' + i18n.t('key fingerprint:') + ' ' : '');
            dom.setText(li.querySelector('.fingerprint'), fp);
            li.setAttribute('data-fingerprint', fp);
            setRemoveButton(li, user, user !== saved.username && roster.host === saved.username && !leaving);
        }
        dom.setText(dom.byId('member-count'), i18n.number(roster.members.length));
        dom.setText(dom.byId('members-button-count'), i18n.number(roster.members.length));
    }

    // On a phone the member list sits below the conversation: the header's Members button brings
    // it into view in one tap, with focus on its heading.
    function setupMembersButton() {
        var heading = dom.byId('members-heading');
        dom.on(dom.byId('members-button'), 'click', function () {
            if (heading.scrollIntoView) {
                heading.scrollIntoView(true);
            }
            heading.focus();
        });
    }

    function removeMember(user, button) {
        var ask = i18n.t('Remove {user} from the room? They will not be able to join again for a while, and a new room key leaves them out.',
            {user: user});
        if (!room || leaving || (typeof root.confirm === 'function' && !root.confirm(ask))) {
            return;
        }
        if (!room.kick(user)) {
            notice(i18n.t('Not connected: {user} was not removed. Try again when the room is connected.', {user: user}),
                'bad');
            return;
        }
        button.disabled = true;
        dom.setText(button, i18n.t('Removing…'));
    }

    function renderLock(locked, amHost) {
        var state = dom.byId('room-lock-state'), button = dom.byId('lock-button');
        state.setAttribute('data-locked', locked ? 'true' : 'false');
        dom.setText(state, locked ? i18n.t('Locked: nobody new can join until the host unlocks the room.') :
            i18n.t('Open: anyone with the password can join.'));
        button.setAttribute('aria-pressed', locked ? 'true' : 'false');
        button.disabled = false;
        dom.show(button, amHost && !leaving);
    }

    function renderSafety(v) {
        var i, node = dom.byId('safety-code');
        roster.fingerprints = {};
        for (i = 0; i < v.members.length; i++) {
            roster.fingerprints[v.members[i].user] = v.members[i].fingerprint;
        }
        dom.setText(node, v.code || '…');
        node.setAttribute('data-code', v.code || '');
        renderMembers();
    }

    function renderKeyState(v) {
        var node = dom.byId('key-status');
        if (v.usable) {
            noKeyShown = false;
            dom.show(node, false);
            return;
        }
        if (v.held > 0 || noKeyShown) {
            dom.setText(node, v.held > 0 ?
                i18n.n('Waiting for the room key from the host… {count} message waits to be sent.',
                    'Waiting for the room key from the host… {count} messages wait to be sent.', v.held) :
                i18n.t('Waiting for the room key from the host…'));
            dom.show(node, true);
        }
    }

    function renderForged(v) {
        var li = messageShell(v.from, null, v.from === saved.username, 'forged bad'), body;
        body = dom.el('div', {className: 'body'}, [
            dom.el('strong', {text: (v.what === 'file' ? i18n.t('Forged file:') : v.what === 'announcement' ?
                i18n.t('Forged key announcement:') : i18n.t('Forged message:')) + ' '}),
            i18n.t('this does not come from {user} as it claims, so it is not shown. Why: {reason}.',
                {user: v.from, reason: v.reason})
        ]);
        li.appendChild(body);
        dom.announce(body.textContent);
        if (v.fileId && pending[v.from + '\n' + v.fileId]) {
            renderFileAbandoned({from: v.from, fileId: v.fileId, name: v.name, reason: i18n.t('a piece of it is forged')});
        }
        append(li);
    }

    function renderTransport(v) {
        var node = dom.byId('transport-status'), how = v.mode === 'poll' ? 'long-poll' : 'WebSocket', text;
        node.setAttribute('data-transport', v.mode || '');
        node.setAttribute('data-state', v.state);
        if (v.state === 'connected') {
            text = v.mode === 'poll' && v.detail ? i18n.t('Connected via {transport} ({detail})', {transport: how,
                detail: v.detail}) : i18n.t('Connected via {transport}', {transport: how});
        } else if (v.state === 'reconnecting') {
            text = i18n.t('Reconnecting ({transport})…', {transport: how});
        } else if (v.state === 'closed') {
            text = i18n.t('Disconnected');
        } else {
            text = i18n.t('Connecting ({transport})…', {transport: how});
        }
        dom.setText(node, text);
        node.setAttribute('title', v.detail || '');
    }

    function memberLi(user) {
        var kids = dom.byId('member-list').childNodes, i;
        for (i = 0; i < kids.length; i++) {
            if (kids[i].getAttribute('data-user') === user) {
                return kids[i];
            }
        }
        return null;
    }

    function onView(v) {
        var removedItem;
        if (leaving) {
            return;
        }
        if (v.type === 'text') {
            renderText(v);
            if (!v.mine) {
                dom.announce(i18n.t('{user}: {text}', {user: v.from, text: v.text}));
                Seal.alerts.incoming(v.from, saved.room);
            }
        } else if (v.type === 'file-start') {
            renderFileStart(v);
        } else if (v.type === 'file') {
            renderFile(v);
            if (!v.mine) {
                dom.announce(imageTypeOk(v.mime, v.bytes) ? i18n.t('{user} sent {name}, an image.', {user: v.from,
                    name: v.name}) : i18n.t('{user} sent {name}, a file.', {user: v.from, name: v.name}));
                Seal.alerts.incoming(v.from, saved.room);
            }
        } else if (v.type === 'file-abandoned') {
            renderFileAbandoned(v);
        } else if (v.type === 'members') {
            roster.members = v.members.slice();
            renderMembers();
        } else if (v.type === 'joined') {
            notice(i18n.t('{user} joined', {user: v.user}), 'joined');
        } else if (v.type === 'left') {
            notice(v.reason === 'timeout' ? i18n.t('{user} was disconnected', {user: v.user}) :
                i18n.t('{user} left', {user: v.user}), 'left');
        } else if (v.type === 'removed') {
            notice(v.by ? i18n.t('{user} was removed from the room by {host}, the host.', {user: v.user, host: v.by}) :
                i18n.t('{user} was removed from the room.', {user: v.user}), 'removed');
            // Focus was on the Remove button that goes with the member: keep it on the list.
            removedItem = memberLi(v.user);
            if (removedItem && removedItem.contains(doc.activeElement)) {
                dom.byId('members-heading').focus();
            }
        } else if (v.type === 'host') {
            roster.host = v.user;
            renderMembers();
            renderLock(room ? room.locked : false, v.me);
            if (!v.initial) {
                notice(v.me ? i18n.t('You are now the host: you can remove members and lock the room.') :
                    i18n.t('{user} is now the host.', {user: v.user}), 'host');
            }
        } else if (v.type === 'locked' || v.type === 'unlocked') {
            renderLock(v.type === 'locked', roster.host === saved.username);
            if (!v.initial) {
                notice(lockNotice(v.type === 'locked', v.by), v.type === 'locked' ? 'locked' : 'locked unlocked');
            }
        } else if (v.type === 'safety') {
            renderSafety(v);
        } else if (v.type === 'key-state') {
            renderKeyState(v);
        } else if (v.type === 'no_key') {
            if (!noKeyShown) {
                noKeyShown = true;
                notice(i18n.t('Waiting for the room key from the host… Messages you write wait here, in order, until it arrives.'),
                    'no-key');
                renderKeyState({usable: false, held: room ? room.held() : 0});
            }
        } else if (v.type === 'rekey') {
            dom.byId('safety').setAttribute('data-epoch', String(v.epoch));
        } else if (v.type === 'forged') {
            renderForged(v);
        } else if (v.type === 'key_changed') {
            notice(i18n.t('{user}\'s keys changed during the session. The new keys were refused and messages signed with them will show as forged. Compare the safety code with {user}.',
                {user: v.user}), 'bad key-changed');
        } else if (v.type === 'bad_grant') {
            notice(i18n.t('A room key from {user} was refused: {reason}.', {user: v.from, reason: v.reason}),
                'bad bad-grant');
        } else if (v.type === 'gap') {
            notice(v.from && v.to ? i18n.t('Some messages were missed while the connection was away (events {from} to {to}).',
                {from: v.from, to: v.to}) : i18n.t('Some messages were missed while the connection was away.'), 'gap');
        } else if (v.type === 'undecryptable') {
            notice(i18n.t('A message from {user} could not be opened: {reason}', {user: v.from, reason: v.reason}),
                'bad');
        } else if (v.type === 'invite') {
            renderInvite(v);
        } else if (v.type === 'invite-refused') {
            renderInviteRefused(v);
        } else if (v.type === 'guessing') {
            notice((v.retryAfter > 0 ?
                i18n.n('Someone may be trying passwords for this room: {count} join failed in the last minute, and joins without an invite are held back for {wait}.',
                    'Someone may be trying passwords for this room: {count} joins failed in the last minute, and joins without an invite are held back for {wait}.',
                    v.failures, {wait: dom.formatWait(v.retryAfter)}) :
                i18n.n('Someone may be trying passwords for this room: {count} join failed in the last minute.',
                    'Someone may be trying passwords for this room: {count} joins failed in the last minute.', v.failures)) +
                ' ' + i18n.t('If people who should join are waiting, share an invite with them now (Invite someone).'),
                'guessing');
        } else if (v.type === 'error') {
            if (v.code === 'removed') {
                terminal({code: 'removed', message: v.message, retryAfter: v.retryAfter});
                return;
            }
            // The server's message comes translated already; only the sentence around it is this page's.
            notice(i18n.t('The server refused something: {message}', {message: v.message || v.code}) +
                (v.retryAfter ? ' ' + i18n.n('Try again in {count} second.', 'Try again in {count} seconds.',
                    v.retryAfter) : ''), 'bad');
            restoreHostButtons();
        } else if (v.type === 'fatal') {
            endUnusable(i18n.t('This tab could not restore the room keys ({message}). Join again with the password.',
                {message: v.message}));
        } else if (v.type === 'transport') {
            renderTransport(v);
        } else if (v.type === 'sent') {
            uploadEcho(v);
        }
    }

    // Who locked or unlocked the room, when the server named them.
    function lockNotice(locked, by) {
        if (locked) {
            return by ? i18n.t('{user} locked the room: nobody new can join.', {user: by}) :
                i18n.t('The host locked the room: nobody new can join.');
        }
        return by ? i18n.t('{user} unlocked the room: people with the password can join again.', {user: by}) :
            i18n.t('The host unlocked the room: people with the password can join again.');
    }

    // The tab cannot go on in the room (its keys did not open): end the session at the server,
    // so that this address may join again at once, and offer the join page.
    function endUnusable(message) {
        var token = saved.token;
        leaving = true;
        forget();
        Seal.api.leave(token, function () {
            goJoin(message, saved.room, saved.username);
        });
    }

    // A refused kick or lock leaves its button usable again.
    function restoreHostButtons() {
        var buttons = dom.byId('member-list').querySelectorAll('button.remove-member'), i;
        for (i = 0; i < buttons.length; i++) {
            buttons[i].disabled = false;
            dom.setText(buttons[i], i18n.t('Remove'));
        }
        dom.byId('lock-button').disabled = false;
        inviteIdle();
    }

    // ---- invites: shown to this member only, never sent anywhere --------------------------

    function inviteIdle() {
        var button = dom.byId('invite-button');
        button.disabled = leaving;
        button.removeAttribute('aria-busy');
    }

    function inviteOrigin() {
        var loc = root.location;
        return loc.origin || (loc.protocol + '//' + loc.host);
    }

    // Replaces what the box shows; role=status on the box reads it out.
    function inviteBox(children, state) {
        var box = dom.byId('invite-box'), i;
        root.clearTimeout(inviteTimer);
        inviteTimer = null;
        dom.clear(box);
        box.setAttribute('data-state', state);
        for (i = 0; i < children.length; i++) {
            box.appendChild(children[i]);
        }
        dom.show(box, true);
        return box;
    }

    function copyLink(link, result) {
        var clip = root.navigator && root.navigator.clipboard;
        function failed() {
            dom.setText(result, i18n.t('Could not copy: select the link above and copy it.'));
        }
        try {
            clip.writeText(link).then(function () {
                dom.setText(result, i18n.t('Link copied.'));
            }, failed);
        } catch (e) {
            failed();
        }
    }

    function renderInvite(v) {
        var link = inviteOrigin() + '/login?roomname=' + encodeURIComponent(saved.room) + '&invite=' +
                encodeURIComponent(v.code),
            seconds = v.expiresIn > 0 ? v.expiresIn : 600,
            until = i18n.time(new Date().getTime() + seconds * 1000),
            expiry = dom.el('p', {className: 'hint invite-expiry', id: 'invite-expiry',
                text: i18n.t('Valid once, for {wait} (until {time}).', {wait: dom.formatWait(seconds), time: until})}),
            parts, copy, result, box;
        inviteIdle();
        parts = [
            dom.el('p', {className: 'invite-title', text: i18n.t('Invite for one person (only you see this)')}),
            dom.el('p', {}, [i18n.t('Code:') + ' ', dom.el('code', {id: 'invite-code', className: 'invite-code',
                text: v.code})]),
            dom.el('p', {}, [i18n.t('Link:') + ' ', dom.el('code', {id: 'invite-link', className: 'invite-link',
                text: link})]),
            expiry,
            dom.el('p', {className: 'hint', text: i18n.t('Give it with the room password, outside this chat. It lets one person in even while password guessers are being turned away.')})
        ];
        if (root.navigator && root.navigator.clipboard && typeof root.navigator.clipboard.writeText === 'function') {
            copy = dom.el('button', {type: 'button', id: 'invite-copy', className: 'secondary small',
                text: i18n.t('Copy link')});
            result = dom.el('span', {className: 'hint', id: 'invite-copied', 'aria-live': 'polite'});
            dom.on(copy, 'click', function () {
                copyLink(link, result);
            });
            parts.push(dom.el('p', {className: 'actions'}, [copy, ' ', result]));
        }
        box = inviteBox(parts, 'shown');
        box.setAttribute('data-code', v.code);
        box.setAttribute('data-link', link);
        inviteTimer = root.setTimeout(function () {
            inviteTimer = null;
            box.setAttribute('data-state', 'expired');
            dom.setText(expiry, i18n.t('This invite has expired. Make a new one if someone still needs it.'));
        }, seconds * 1000);
    }

    function renderInviteRefused(v) {
        inviteIdle();
        inviteBox([dom.el('p', {className: 'hint bad', text: v.message || i18n.t('The server refused to make an invite.')})],
            'refused').setAttribute('data-code', v.code || '');
    }

    function setupInvites() {
        var button = dom.byId('invite-button');
        button.disabled = false;
        dom.on(button, 'click', function () {
            if (!room || leaving) {
                return;
            }
            if (!room.invite()) {
                inviteBox([dom.el('p', {className: 'hint bad', text: i18n.t('Not connected: try again when the room is connected.')})],
                    'refused');
                return;
            }
            button.disabled = true; // until the server's answer (or a refusal)
            button.setAttribute('aria-busy', 'true');
            inviteBox([dom.el('p', {className: 'hint', text: i18n.t('Asking the server for an invite…')})], 'waiting');
        });
    }

    function setupHostTools() {
        var button = dom.byId('lock-button');
        dom.on(button, 'click', function () {
            var lock = button.getAttribute('aria-pressed') !== 'true';
            if (!room || leaving) {
                return;
            }
            if (!room.setLocked(lock)) {
                notice(lock ? i18n.t('Not connected: the room was not locked. Try again when the room is connected.') :
                    i18n.t('Not connected: the room was not unlocked. Try again when the room is connected.'), 'bad');
                return;
            }
            button.disabled = true; // until the server's locked/unlocked event (or a refusal)
        });
    }

    // ---- sending -------------------------------------------------------------------------

    var uploads = {}, uploadCount = 0;

    // One row per file being sent, so several files at once each show their own progress.
    function uploadRow(name) {
        var id = 'upload-' + (++uploadCount), box = dom.byId('upload-box'), row;
        row = {name: name, fileId: null, n: 0, got: 0, seen: {},
            label: dom.el('label', {'for': id, text: i18n.t('Encrypting {name}…', {name: name})}),
            bar: dom.el('progress', {id: id, max: '100', value: '0'})};
        row.node = dom.el('div', {className: 'upload-item'}, [row.label, row.bar]);
        box.appendChild(row.node);
        dom.show(box, true);
        return row;
    }

    function uploadStep(row, label, fraction) {
        dom.setText(row.label, label);
        row.bar.value = Math.round(100 * fraction);
    }

    function uploadDone(row) {
        var box = dom.byId('upload-box');
        if (row.node.parentNode) {
            row.node.parentNode.removeChild(row.node);
        }
        if (row.fileId && uploads[row.fileId] === row) {
            delete uploads[row.fileId];
        }
        if (!box.firstChild) {
            dom.show(box, false);
        }
    }

    // A chunk resent after a reconnect is echoed again; each counts once.
    function uploadEcho(v) {
        var row = uploads[v.fileId];
        if (!row || row.seen[v.i]) {
            return;
        }
        row.seen[v.i] = true;
        row.got++;
        uploadStep(row, i18n.t('Sending {name}… {done} of {total}', {name: row.name, done: i18n.number(row.got),
            total: i18n.number(row.n)}), 0.5 + 0.5 * row.got / row.n);
        if (row.got >= row.n) {
            uploadDone(row);
        }
    }

    function sendFile(file) {
        var limit = room.limits.max_file_bytes || 5242880, reader, name = file.name || 'pasted-image', mime;
        if (file.size > limit) {
            notice(i18n.t('{name} is {size}; files may be at most {limit}.', {name: name, size: i18n.size(file.size),
                limit: i18n.size(limit)}), 'bad');
            return;
        }
        mime = String(file.type || 'application/octet-stream').slice(0, 100);
        if (!file.name && IMAGE_TYPES[mime]) {
            name = 'pasted-image.' + mime.slice(6);
        }
        reader = new root.FileReader();
        reader.onload = function () {
            var bytes = new Uint8Array(reader.result), row;
            if (leaving) {
                return;
            }
            row = uploadRow(name);
            room.sendFile(bytes, name, mime, function (f) {
                uploadStep(row, i18n.t('Encrypting {name}…', {name: name}), f / 2);
            }, function (err, info) {
                if (leaving) {
                    return;
                }
                if (err) {
                    uploadDone(row);
                    notice(i18n.t('Could not send {name}: {message}', {name: name, message: err.message}), 'bad');
                    return;
                }
                row.fileId = info.fileId;
                row.n = info.n;
                uploads[info.fileId] = row;
                uploadStep(row, i18n.t('Sending {name}…', {name: name}), 0.5);
            });
        };
        reader.onerror = function () {
            notice(i18n.t('Could not read {name}.', {name: name}), 'bad');
        };
        reader.readAsArrayBuffer(file);
    }

    function sendFiles(files) {
        var i;
        for (i = 0; files && i < files.length; i++) {
            sendFile(files[i]);
        }
    }

    function setupComposer() {
        var form = dom.byId('composer'), input = dom.byId('message-input'), fileInput = dom.byId('file-input'),
            chat = dom.byId('chat'), hint = dom.byId('drop-hint'), picker;
        function submit() {
            var text = input.value;
            if (!/\S/.test(text)) {
                return;
            }
            input.value = '';
            room.sendText(text, function (err) {
                if (err) {
                    notice(i18n.t('Could not send: {message}', {message: err.message}), 'bad');
                }
            });
            picker.close();
        }
        dom.clear(dom.byId('upload-box')); // rows are added per file
        picker = Seal.emoji.picker(dom.byId('emoji-panel'), dom.byId('emoji-button'), input);
        dom.on(form, 'submit', function (ev) {
            ev.preventDefault();
            submit();
        });
        dom.on(input, 'keydown', function (ev) {
            if ((ev.key === 'Enter' || ev.keyCode === 13) && !ev.shiftKey && !ev.isComposing) {
                ev.preventDefault();
                submit();
            }
        });
        dom.on(fileInput, 'change', function () {
            sendFiles(fileInput.files);
            fileInput.value = '';
        });
        dom.on(input, 'paste', function (ev) {
            var items = ev.clipboardData && ev.clipboardData.items, files = [], i, f;
            for (i = 0; items && i < items.length; i++) {
                if (items[i].kind === 'file') {
                    f = items[i].getAsFile();
                    if (f) {
                        files.push(f);
                    }
                }
            }
            if (files.length) {
                ev.preventDefault();
                sendFiles(files);
            }
        });
        dom.on(chat, 'dragover', function (ev) {
            ev.preventDefault();
            dom.show(hint, true);
        });
        dom.on(hint, 'dragleave', function () {
            dom.show(hint, false);
        });
        dom.on(chat, 'drop', function (ev) {
            ev.preventDefault();
            dom.show(hint, false);
            sendFiles(ev.dataTransfer && ev.dataTransfer.files);
        });
        if (!('ontouchstart' in root)) {
            input.focus(); // on phones this would pop up the keyboard before anyone asked
        }
    }

    function setupSettings() {
        var sound = dom.byId('opt-sound'), notify = dom.byId('opt-notify'), poll = dom.byId('opt-poll');
        sound.checked = !!Seal.session.pref('sound');
        poll.checked = !!Seal.session.pref('forcePoll');
        Seal.alerts.enable('sound', sound.checked);
        dom.on(sound, 'change', function () {
            Seal.session.pref('sound', sound.checked);
            Seal.alerts.enable('sound', sound.checked, function () {});
        });
        dom.on(notify, 'change', function () {
            Seal.alerts.enable('notify', notify.checked, function (ok) {
                notify.checked = ok;
                if (!ok && notify.checked !== ok) {
                    notice(i18n.t('Desktop notifications are not allowed in this browser.'), 'bad');
                }
            });
        });
        dom.on(poll, 'change', function () {
            Seal.session.pref('forcePoll', poll.checked);
            if (transport) {
                transport.setForcePoll(poll.checked);
            }
        });
    }

    // Nothing of the room stays in this tab once Leave is pressed: keys, storage, decrypted
    // files and the conversation go first; the server is told after (the page moves on when it
    // has answered or given up, with nothing left on screen meanwhile).
    function forget() {
        var i;
        if (transport) {
            transport.close();
        }
        if (room) {
            room.close();
        }
        Seal.session.wipe();
        saved.vault = null;
        saved.token = null;
        for (i = 0; i < objectUrls.length; i++) {
            root.URL.revokeObjectURL(objectUrls[i]);
        }
        objectUrls = [];
        if (Seal.joincode && Seal.joincode.panel) {
            Seal.joincode.panel.remove();
        }
        pending = {};
        uploads = {};
        roster = {members: [], host: null, fingerprints: {}};
        dom.clear(list);
        dom.clear(dom.byId('announcer'));
        dom.clear(dom.byId('member-list'));
        dom.setText(dom.byId('member-count'), i18n.number(0));
        dom.setText(dom.byId('members-button-count'), i18n.number(0));
        dom.setText(dom.byId('safety-code'), '');
        dom.byId('safety-code').setAttribute('data-code', '');
        dom.show(dom.byId('lock-button'), false);
        dom.show(dom.byId('key-status'), false);
        root.clearTimeout(inviteTimer);
        dom.clear(dom.byId('invite-box'));
        dom.show(dom.byId('invite-box'), false);
        dom.byId('invite-button').disabled = true;
        dom.clear(dom.byId('upload-box'));
        dom.show(dom.byId('upload-box'), false);
        dom.byId('message-input').value = '';
        dom.byId('send-button').disabled = true;
    }

    function leave() {
        var token = saved.token;
        if (leaving) {
            return;
        }
        leaving = true;
        dom.byId('leave-button').disabled = true;
        forget();
        list.appendChild(dom.el('li', {className: 'event left', text: i18n.t('You left the room.')}));
        Seal.session.flash(i18n.t('You left the room. Its conversation is gone from this tab.'));
        Seal.api.leave(token, function () {
            root.location.replace('/');
        });
    }

    function terminal(err) {
        if (leaving) {
            return;
        }
        if (err.code === 'removed') {
            leaving = true;
            forget();
            goJoin(removedMessage(err.retryAfter), saved.room, saved.username);
            return;
        }
        if (endedMessage(err.code)) {
            goJoin(endedMessage(err.code), saved.room, saved.username);
            return;
        }
        notice(err.message, 'bad');
        renderTransport({mode: transport && transport.mode, state: 'closed', detail: err.message});
        dom.byId('send-button').disabled = true;
    }

    function start() {
        var forcePoll = !!Seal.session.pref('forcePoll');
        if (leaving) {
            return; // Leave was pressed while the crypto engine was being checked
        }
        room = new Seal.Room({roomId: saved.roomId, username: saved.username, token: saved.token, cursor: saved.cursor,
            members: [saved.username], limits: saved.limits || {}, vault: saved.vault, onView: onView,
            onCursor: function (cursor) {
                Seal.session.update({cursor: cursor});
            },
            onVault: function (vault) {
                if (!leaving) {
                    Seal.session.update({vault: vault});
                }
            }});
        onView({type: 'members', members: room.members});
        transport = new Seal.Transport({token: saved.token, forcePoll: forcePoll,
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
        if (saved.opened) {
            notice(i18n.t('Back in the room after a reload. Earlier messages are not kept, by design.'), 'resumed');
        } else {
            Seal.session.update({opened: true});
        }
        setupComposer();
        setupSettings();
        setupHostTools();
        setupInvites();
        transport.start();
    }

    function noCrypto() {
        dom.setText(dom.byId('crypto-notice'), i18n.t('This browser cannot do the encryption Sealchat needs. Please use a current version of Firefox, Chrome, Safari or Edge.'));
        dom.show(dom.byId('crypto-notice'), true);
    }

    function boot() {
        var meta = dom.byId('sealchat-crypto'), out = dom.byId('crypto-backend');
        if (!SC) {
            noCrypto();
            return;
        }
        if (!saved) {
            goJoin(i18n.t('Join the room with its password to chat in this tab.'), urlRoom, '');
            return;
        }
        if (!saved.vault || typeof saved.roomId !== 'string') {
            goJoin(i18n.t('This tab\'s session was made by an older version of Sealchat. Join the room again with its password.'),
                saved.room, saved.username);
            return;
        }
        if (!Seal.api.sameRoom(saved, urlRoom)) {
            leaveForOtherRoom();
            return;
        }
        Seal.alerts.setTitle(i18n.t('{room} - Sealchat', {room: saved.room}));
        dom.setText(dom.byId('room-name'), saved.room);
        dom.setText(dom.byId('max-file'), i18n.size((saved.limits || {}).max_file_bytes || 5242880));
        dom.on(dom.byId('leave-button'), 'click', leave);
        setupMembersButton();
        SC.setFallbackUrls({vendor: meta.getAttribute('data-vendor'), worker: meta.getAttribute('data-worker')});
        SC.detect(function (backend) {
            out.setAttribute('data-backend', backend || 'none');
            dom.setText(out, backend === 'webcrypto' ? i18n.t('Web Crypto (built into the browser)') :
                backend === 'fallback' ? i18n.t('compatibility mode (JavaScript)') : i18n.t('none available'));
            if (!backend) {
                noCrypto();
                return;
            }
            start();
        });
    }

    boot();
}(this));
