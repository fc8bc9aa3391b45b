/*
 * Seal.Room: one member of one sealchat/v2 room, the browser twin of chat/client/room.py. It
 * processes every room event once and in order (seq at or below the cursor is ignored, duplicate
 * message ids are dropped), opens and checks signed messages and files, holds outgoing messages
 * in order until an epoch is usable, resends frames the server has not echoed once a reconnect's
 * replay is through, and reports view events. Keys, host duties and the reload vault are the
 * keyring's (Seal.epochs, epochs.js); the room feeds it the events in order.
 *
 * View events ({type, ...}):
 *   members {members}; joined {user}; left {user, reason}; removed {user, by} (a `left` with
 *   reason kicked); host {user, me, initial}; locked / unlocked {by, initial}; rekey {epoch, by,
 *   members}; safety {code, members: [{user, fingerprint}]}; key-state {usable, held};
 *   no_key {} (no usable key for 5 s: the keyring announced again); key_changed {user};
 *   bad_grant {from, reason}; forged {from, reason, what}; undecryptable {from, reason, fileId?};
 *   text {from, id, ts, mine, text}; file-start / file-progress / file / file-abandoned;
 *   gap {from, to}; error {code, message, retryAfter}; transport {mode, state, detail};
 *   sent {fileId, i, n}; fatal {code, message} (the tab cannot go on: its keys did not open);
 *   invite {code, expiresIn} (the server's answer to this member's invite(), for this page only);
 *   invite-refused {code, message, retryAfter}; guessing {failures, retryAfter} (joins to the room
 *   are failing: someone may be trying passwords).
 * file-abandoned {from, fileId, name, reason}: an announced file that will not complete (its
 * sender left, or no chunk came for a minute while connected); its file-start entry is dead.
 */
(function (root) {
    'use strict';

    var Seal = root.Seal;
    // Reasons in view events are shown as they are: in the page's language.
    var i18n = Seal.i18n;
    var SEEN_IDS = 50000;
    var FILE_IDLE_MS = 60000;
    var MAX_UNCONFIRMED = 4096; // frames kept for resending, and at most this many characters:
    var MAX_UNCONFIRMED_CHARS = 67108864;

    // A page callback that throws must not stop the room's event processing: report it later.
    function callPage(fn, arg) {
        try {
            fn(arg);
        } catch (e) {
            root.setTimeout(function () {
                throw e;
            }, 0);
        }
    }

    /**
     * @param {Object} opts roomId (canonical), username, token, cursor (the join answer's or the
     *   saved one), members, limits, vault (sealed {n, c} from the tab's storage), onView(view),
     *   onCursor(seq), onVault(vault) (store the re-sealed vault), fileIdleMs, timing (see
     *   Seal.epochs), crypto (defaults to window.SealCrypto).
     * @constructor
     */
    function Room(opts) {
        var self = this;
        this.sc = opts.crypto || root.SealCrypto;
        this.roomId = opts.roomId;
        this.username = opts.username;
        this.token = opts.token;
        this.cursor = opts.cursor || 0;
        this.members = (opts.members || []).slice();
        this.limits = opts.limits || {};
        this.vault = opts.vault || null;
        this.onView = opts.onView;
        this.onCursor = opts.onCursor || function () {};
        this.onVault = opts.onVault || function () {};
        this.fileIdleMs = opts.fileIdleMs || FILE_IDLE_MS;
        this.host = null;
        this.locked = false;
        this.seen = {};
        this.seenOrder = [];
        this.files = {};
        // id -> {frame, chars, generation}; the generation counts welcomes and gaps, so a resend
        // takes only frames sent before the reconnect (later ones are on the new connection).
        this.unconfirmed = {};
        this.unconfirmedOrder = [];
        this.unconfirmedCount = 0;
        this.unconfirmedChars = 0;
        this.generation = 0;
        this.resendAfter = null; // resend once events up to this seq have been processed
        this.processed = this.cursor;
        this.connected = false;
        this.closed = false;
        this.inbox = [];
        this.working = false;
        this.outgoing = [];
        this.sendingOp = false;
        this.heldShown = -1;
        this.transport = null;
        this.invites = 0; // invite frames sent, for their refs
        this.ring = Seal.epochs.init({
            crypto: this.sc,
            roomId: this.roomId,
            username: this.username,
            changeSeq: this.cursor,
            timing: opts.timing,
            members: function () {
                return self.members;
            },
            cursor: function () {
                return self.processed;
            },
            send: function (frame) {
                return !!(self.transport && !self.closed && self.transport.send(frame));
            },
            busy: function () {
                return self.working || self.inbox.length > 0;
            },
            connected: function () {
                return self.connected;
            },
            emit: function (view) {
                self.emit(view);
                if (view.type === 'host') {
                    self.host = view.user;
                }
            },
            saveVault: function (vault) {
                self.vault = vault;
                callPage(self.onVault, vault);
            },
            changed: function () {
                self.keyState();
            }
        });
    }

    Room.prototype.attach = function (transport) {
        this.transport = transport;
    };

    /** @returns {boolean} whether this member is the host (it may remove members and lock the room). */
    Room.prototype.isHost = function () {
        return this.ring.isHost();
    };

    // ---- incoming ------------------------------------------------------------------------

    // Called by the transport for every frame; room events are queued and handled one by one,
    // because decryption finishes asynchronously and the order must hold.
    Room.prototype.receive = function (ev) {
        if (this.closed || !ev || typeof ev !== 'object') {
            return;
        }
        if (typeof ev.seq === 'number') {
            if (ev.seq <= this.cursor) {
                return;
            }
            this.cursor = ev.seq;
        }
        this.inbox.push(ev);
        this.pump();
    };

    Room.prototype.pump = function () {
        var self = this, ev;
        if (this.working || this.closed) {
            return;
        }
        if (!this.inbox.length) {
            this.ring.flush(); // what these events asked of the host, answered once
            return;
        }
        this.working = true;
        ev = this.inbox.shift();
        this.handle(ev, function () {
            self.working = false;
            if (self.closed) {
                return;
            }
            if (typeof ev.seq === 'number') {
                if (ev.seq > self.processed) {
                    self.processed = ev.seq;
                }
                self.onCursor(ev.seq);
            }
            self.maybeResend();
            self.pump();
        });
    };

    Room.prototype.emit = function (view) {
        if (this.closed) {  // work in flight when the member left shows nothing
            return;
        }
        callPage(this.onView, view);
    };

    Room.prototype.handle = function (ev, done) {
        var kind = ev.type, i;
        if (kind === 'welcome') {
            this.onWelcome(ev, done);
        } else if (kind === 'joined') {
            if (this.indexOf(ev.user) < 0) {
                this.members.push(ev.user);
            }
            this.emit({type: 'joined', user: ev.user});
            this.emit({type: 'members', members: this.members.slice()});
            this.ring.joined(ev.user, ev.seq, done);
        } else if (kind === 'left') {
            i = this.indexOf(ev.user);
            if (i >= 0) {
                this.members.splice(i, 1);
            }
            this.abandonFrom(ev.user, i18n.t('the sender left'));
            if (ev.reason === 'kicked') {
                this.emit({type: 'removed', user: ev.user, by: ev.by || null});
            } else {
                this.emit({type: 'left', user: ev.user, reason: ev.reason});
            }
            this.emit({type: 'members', members: this.members.slice()});
            this.ring.left(ev.user, ev.seq, done);
        } else if (kind === 'host') {
            if (typeof ev.user === 'string') {
                this.ring.setHost(ev.user, false);
                this.emit({type: 'members', members: this.members.slice()});
            }
            done();
        } else if (kind === 'locked' || kind === 'unlocked') {
            this.locked = kind === 'locked';
            this.emit({type: kind, by: ev.by || null, initial: false});
            done();
        } else if (kind === 'announce') {
            this.ring.onAnnounce(ev, done);
        } else if (kind === 'grant') {
            this.ring.onGrant(ev, done);
        } else if (kind === 'msg') {
            this.onMsg(ev, done);
        } else if (kind === 'chunk') {
            this.onChunk(ev, done);
        } else if (kind === 'gap') {
            if (typeof ev.to_seq === 'number' && ev.to_seq > this.cursor) {
                this.cursor = ev.to_seq;
            }
            if (typeof ev.to_seq === 'number' && ev.to_seq > this.processed) {
                this.processed = ev.to_seq;
            }
            // Echoes of our own frames may be among the lost events: resend (receivers drop
            // duplicate ids and chunks).
            this.generation++;
            if (this.resendAfter === null) {
                this.resendAfter = this.processed;
            }
            this.emit({type: 'gap', from: ev.from_seq, to: ev.to_seq});
            done();
        } else if (kind === 'invite') {
            // Addressed to this session alone (no seq): shown on this page, never sent on.
            if (typeof ev.code === 'string' && ev.code) {
                this.emit({type: 'invite', code: ev.code, expiresIn: typeof ev.expires_in === 'number' ?
                    ev.expires_in : 0});
            }
            done();
        } else if (kind === 'guessing') {
            this.emit({type: 'guessing', failures: typeof ev.failures === 'number' ? ev.failures : 0,
                retryAfter: typeof ev.retry_after === 'number' ? ev.retry_after : 0});
            done();
        } else if (kind === 'error') {
            if (typeof ev.ref === 'string' && ev.ref.indexOf('invite-') === 0) {
                this.emit({type: 'invite-refused', code: ev.code, message: ev.message, retryAfter: ev.retry_after});
                done();
                return;
            }
            if (typeof ev.ref === 'string') {
                this.forget(ev.ref); // refused: resending would be refused again
                if (ev.ref.indexOf('grant-') === 0 && this.ring.grantRefused(ev.code, ev.retry_after)) {
                    done();
                    return;
                }
            }
            this.emit({type: 'error', code: ev.code, message: ev.message, retryAfter: ev.retry_after});
            done();
        } else {
            done();
        }
    };

    // The first welcome opens the tab's vault (inside the keyring); every one sets the members,
    // host, lock state and pinned keys, and schedules the resend of unconfirmed frames.
    Room.prototype.onWelcome = function (ev, done) {
        var self = this, first = !this.ring.opened;
        if (ev.members && ev.members.length) {
            this.members = ev.members.slice();
        }
        if (ev.limits) {
            this.limits = ev.limits;
        }
        // The replay up to the welcome's cursor may confirm frames; resend the rest after it.
        this.generation++;
        this.resendAfter = typeof ev.cursor === 'number' ? ev.cursor : this.processed;
        this.ring.welcome(ev, this.vault, function (err) {
            var i;
            if (self.closed) {
                done();
                return;
            }
            if (err) {
                self.emit({type: 'fatal', code: err.code || 'vault', message: err.message});
                self.close();
                done();
                return;
            }
            if (first) {
                for (i = 0; i < self.ring.restoredSeen.length; i++) {
                    self.isNewId(self.ring.restoredSeen[i]);
                }
            }
            self.locked = !!ev.locked;
            self.emit({type: ev.locked ? 'locked' : 'unlocked', by: null, initial: true});
            self.emit({type: 'members', members: self.members.slice()});
            self.keyState();
            done();
        });
    };

    Room.prototype.indexOf = function (user) {
        var i;
        for (i = 0; i < this.members.length; i++) {
            if (this.members[i] === user) {
                return i;
            }
        }
        return -1;
    };

    Room.prototype.isNewId = function (id) {
        if (Object.prototype.hasOwnProperty.call(this.seen, id)) {
            return false;
        }
        this.seen[id] = true;
        this.seenOrder.push(id);
        if (this.seenOrder.length > SEEN_IDS) {
            delete this.seen[this.seenOrder.shift()];
        }
        return true;
    };

    // The frame needs no resending: the server echoed it, refused it, or it was pushed out.
    Room.prototype.forget = function (id) {
        if (Object.prototype.hasOwnProperty.call(this.unconfirmed, id)) {
            this.unconfirmedChars -= this.unconfirmed[id].chars;
            this.unconfirmedCount--;
            delete this.unconfirmed[id];
        }
    };

    // ---- incoming files --------------------------------------------------------------------

    // Restarts the file's idle timer; while this tab is not connected the wait does not count.
    Room.prototype.touchFile = function (key) {
        var self = this, incoming = this.files[key];
        if (!incoming || this.closed) {
            return;
        }
        root.clearTimeout(incoming.timer);
        incoming.timer = root.setTimeout(function () {
            if (self.files[key] !== incoming) {
                return;
            }
            if (!self.connected) {
                self.touchFile(key);
                return;
            }
            self.abandonFile(key, i18n.n('nothing arrived for {count} second', 'nothing arrived for {count} seconds',
                Math.round(self.fileIdleMs / 1000)));
        }, this.fileIdleMs);
    };

    // Drops an unfinished file; reason is a short phrase for the view.
    Room.prototype.abandonFile = function (key, reason) {
        var incoming = this.files[key];
        if (!incoming) {
            return;
        }
        root.clearTimeout(incoming.timer);
        delete this.files[key];
        if (reason) {
            this.emit({type: 'file-abandoned', from: incoming.base.from, fileId: incoming.meta.file_id,
                name: incoming.meta.name, reason: reason});
        }
    };

    Room.prototype.abandonFrom = function (user, reason) {
        var key, prefix = user + '\n';
        for (key in this.files) {
            if (Object.prototype.hasOwnProperty.call(this.files, key) && key.indexOf(prefix) === 0) {
                this.abandonFile(key, reason);
            }
        }
    };

    // The page is leaving the room (or was removed): stop the timers and drop every key and all
    // queued work.
    Room.prototype.close = function () {
        var key;
        this.closed = true;
        this.inbox = [];
        this.outgoing = [];
        this.onVault = function () {};
        this.vault = null;
        this.ring.close();
        for (key in this.files) {
            if (Object.prototype.hasOwnProperty.call(this.files, key)) {
                root.clearTimeout(this.files[key].timer);
            }
        }
        this.files = {};
        this.seen = {};
        this.seenOrder = [];
        root.clearTimeout(this.resendTimer);
    };

    // The header as sent, read without any key: only to refuse epochs below the reload floor
    // and to learn epoch numbers. Everything in it is checked again by SealCrypto.open.
    Room.prototype.peekHeader = function (env) {
        try {
            return JSON.parse(this.sc.fromUtf8(this.sc.unb64u(env.h)));
        } catch (e) {
            return null;
        }
    };

    Room.prototype.onMsg = function (ev, done) {
        var self = this, sc = this.sc, sender = ev.from, ring = this.ring, peek = ev.env ? this.peekHeader(ev.env) : null;
        if (!ring.opened) {
            done();
            return;
        }
        if (peek && typeof peek.epoch === 'number') {
            if (ring.belowFloor(peek.epoch)) {
                this.emit({type: 'undecryptable', from: sender,
                    reason: i18n.t('it was sealed under a key older than the one this tab held when it reloaded (a late or replayed message)')});
                done();
                return;
            }
        }
        sc.open(function (n) {
            return ring.lookup(n);
        }, ev.env, sender, ring.sender(sender), function (err, opened) {
            var h, base, meta, text;
            if (self.closed) {
                done();
                return;
            }
            if (err) {
                if (err.code === 'forged') {
                    self.emit({type: 'forged', from: sender, what: 'message', reason: err.message});
                } else {
                    if (err.code === 'nokey' && peek) {
                        ring.noteEpoch(peek.epoch); // signed by its sender: a real epoch this tab lacks
                    }
                    self.emit({type: 'undecryptable', from: sender, reason: err.code === 'nokey' ?
                        i18n.t('this tab has no key for it (sent under a key this member was not given)') : err.message});
                }
                done();
                return;
            }
            h = opened.header;
            ring.noteEpoch(h.epoch);
            if (sender === self.username) {
                self.forget(h.id);
            }
            if (!self.isNewId(h.id)) {
                done();
                return;
            }
            ring.remember(h.id, h.epoch);
            base = {from: sender, id: h.id, ts: h.ts, mine: sender === self.username};
            if (h.type === 'text') {
                try {
                    text = sc.fromUtf8(opened.plaintext);
                } catch (e) {
                    text = null;
                }
                if (text === null) {
                    self.emit({type: 'undecryptable', from: sender, reason: i18n.t('the text is not valid UTF-8')});
                } else {
                    base.type = 'text';
                    base.text = text;
                    self.emit(base);
                }
            } else if (h.type === 'file') {
                try {
                    meta = JSON.parse(sc.fromUtf8(opened.plaintext));
                    if (!meta || typeof meta.file_id !== 'string' || sc.unb64u(meta.file_id).length !== 16 ||
                            typeof meta.size !== 'number' || Math.floor(meta.size) !== meta.size || meta.size < 0 ||
                            meta.chunks !== sc.chunkCount(meta.size) ||
                            typeof meta.name !== 'string' || typeof meta.mime !== 'string') {
                        throw new Error('bad file metadata');
                    }
                } catch (e) {
                    self.emit({type: 'undecryptable', from: sender, reason: i18n.t('bad file metadata')});
                    done();
                    return;
                }
                // The size is the sender's claim: one beyond the room's limit can never arrive.
                if (self.limits.max_file_bytes && meta.size > self.limits.max_file_bytes) {
                    self.emit({type: 'undecryptable', from: sender, fileId: meta.file_id,
                        reason: i18n.t('the file claims to be larger than this room allows')});
                    done();
                    return;
                }
                self.abandonFile(sender + '\n' + meta.file_id, null);
                // The file's chunks open under the epoch of this envelope and verify under the
                // sender's key, held here while the file is in flight.
                self.files[sender + '\n' + meta.file_id] = {meta: meta, base: base, parts: [], count: 0, timer: null,
                    ep: ring.lookup(h.epoch), ann: ring.sender(sender)};
                self.touchFile(sender + '\n' + meta.file_id);
                base.type = 'file-start';
                base.name = meta.name;
                base.mime = meta.mime;
                base.size = meta.size;
                base.fileId = meta.file_id;
                self.emit(base);
            } else {
                self.emit({type: 'undecryptable', from: sender, reason: i18n.t('a message of a kind this page does not know')});
            }
            done();
        });
    };

    Room.prototype.onChunk = function (ev, done) {
        var self = this, sender = ev.from, key = sender + '\n' + ev.file, incoming = this.files[key];
        if (sender === this.username) {
            this.forget(ev.file + '/' + ev.i);
            this.emit({type: 'sent', fileId: ev.file, i: ev.i, n: ev.n});
        }
        if (!incoming || ev.n !== incoming.meta.chunks || typeof ev.i !== 'number' || incoming.parts[ev.i]) {
            done();
            return;
        }
        this.sc.decryptChunk(incoming.ep, incoming.ann, ev.file, ev.i, ev.n, ev.c, ev.s, function (err, plain) {
            var total = 0, i, bytes, off = 0;
            if (self.files[key] !== incoming) {
                done();
                return;
            }
            if (err) {
                self.abandonFile(key, null);
                if (err.code === 'forged') {
                    self.emit({type: 'forged', from: sender, what: 'file', fileId: ev.file, name: incoming.meta.name,
                        reason: i18n.t('a piece of the file {name} is not signed by {user}: {reason}',
                            {name: incoming.meta.name, user: sender, reason: err.message})});
                } else {
                    self.emit({type: 'undecryptable', from: sender, reason: err.message, fileId: ev.file});
                }
                done();
                return;
            }
            incoming.parts[ev.i] = plain;
            incoming.count++;
            self.touchFile(key);
            self.emit({type: 'file-progress', fileId: ev.file, from: sender, received: incoming.count, n: ev.n});
            if (incoming.count < ev.n) {
                done();
                return;
            }
            self.abandonFile(key, null);
            for (i = 0; i < ev.n; i++) {
                total += incoming.parts[i].length;
            }
            if (total !== incoming.meta.size) {
                self.emit({type: 'undecryptable', from: sender, reason: i18n.t('file size mismatch'), fileId: ev.file});
                done();
                return;
            }
            bytes = new Uint8Array(total);
            for (i = 0; i < ev.n; i++) {
                bytes.set(incoming.parts[i], off);
                off += incoming.parts[i].length;
            }
            self.emit({type: 'file', from: sender, id: incoming.base.id, ts: incoming.base.ts,
                mine: incoming.base.mine, fileId: ev.file, name: incoming.meta.name, mime: incoming.meta.mime,
                size: total, bytes: bytes});
            done();
        });
    };

    // ---- transport state -----------------------------------------------------------------

    Room.prototype.transportState = function (info) {
        this.connected = info.state === 'connected';
        this.emit({type: 'transport', mode: info.mode, state: info.state, detail: info.detail});
    };

    // Resending waits until the replay after a welcome (or a gap) has been processed, because
    // the replay is what confirms the frames the server did get.
    Room.prototype.maybeResend = function () {
        var self = this;
        if (this.resendAfter === null || this.processed < this.resendAfter || this.working) {
            return;
        }
        this.resendAfter = null;
        // Later, so that the transport has finished switching to connected before frames go out.
        root.clearTimeout(this.resendTimer);
        this.resendTimer = root.setTimeout(function () {
            self.resend(self.generation);
        }, 0);
    };

    Room.prototype.resend = function (generation) {
        var i, id, entry;
        if (!this.transport || this.closed) {
            return;
        }
        this.compact();
        for (i = 0; i < this.unconfirmedOrder.length; i++) {
            id = this.unconfirmedOrder[i];
            entry = this.unconfirmed[id];
            if (entry && entry.generation < generation) {
                entry.generation = generation;
                this.transport.send(entry.frame);
            }
        }
    };

    Room.prototype.compact = function () {
        var kept = [], i;
        for (i = 0; i < this.unconfirmedOrder.length; i++) {
            if (Object.prototype.hasOwnProperty.call(this.unconfirmed, this.unconfirmedOrder[i])) {
                kept.push(this.unconfirmedOrder[i]);
            }
        }
        this.unconfirmedOrder = kept;
    };

    // ---- sending -------------------------------------------------------------------------

    // Sends a frame and keeps it, under its ref, until the server echoes it or refuses it.
    Room.prototype.track = function (id, frame) {
        var chars = frame.c ? frame.c.length : frame.env ? frame.env.c.length : 0;
        frame.ref = id;
        this.forget(id);
        this.unconfirmed[id] = {frame: frame, chars: chars, generation: this.generation};
        this.unconfirmedOrder.push(id);
        this.unconfirmedCount++;
        this.unconfirmedChars += chars;
        if (this.unconfirmedOrder.length > 2 * MAX_UNCONFIRMED) {
            this.compact();
        }
        while (this.unconfirmedCount > MAX_UNCONFIRMED || this.unconfirmedChars > MAX_UNCONFIRMED_CHARS) {
            this.forget(this.unconfirmedOrder.shift()); // the oldest will not be resent
        }
        this.transport.send(frame);
    };

    // Outgoing work runs one operation at a time, so frames leave in the order they were made.
    Room.prototype.queue = function (op) {
        this.outgoing.push(op);
        this.nextOp();
        this.keyState();
    };

    Room.prototype.nextOp = function () {
        var self = this, op;
        if (this.sendingOp || !this.outgoing.length || this.closed) {
            return;
        }
        this.sendingOp = true;
        op = this.outgoing.shift();
        op(function () {
            self.sendingOp = false;
            self.nextOp();
            self.keyState();
        });
    };

    /** How many outgoing messages wait (for a key, or behind one that does). */
    Room.prototype.held = function () {
        return this.outgoing.length + (this.sendingOp ? 1 : 0);
    };

    // Tells the page whether a key is usable and how much is waiting, when either changes.
    Room.prototype.keyState = function () {
        var usable = !!this.ring.usable(), held = usable ? 0 : this.held(), shown = (usable ? 1 : 0) + 2 * held;
        if (this.closed || !this.ring.opened || shown === this.heldShown) {
            return;
        }
        this.heldShown = shown;
        this.emit({type: 'key-state', usable: usable, held: held});
    };

    // Seals with make(ep, cb) under a usable epoch, and again under the new one if the epoch
    // stopped being usable meanwhile (a member left or joined while sealing): nothing leaves
    // under an epoch that is not the usable one at the moment it is handed to the transport.
    Room.prototype.underUsable = function (make, cb) {
        var self = this;
        this.ring.whenUsable(function (ep) {
            if (self.closed) {
                return;
            }
            make(ep, function (err, result) {
                if (self.closed) {
                    return;
                }
                if (!err && self.ring.usable() !== ep) {
                    self.underUsable(make, cb);
                    return;
                }
                cb(err, result);
            });
        });
    };

    function headerId(sc, env) {
        return JSON.parse(sc.fromUtf8(sc.unb64u(env.h))).id;
    }

    Room.prototype.sendText = function (text, cb) {
        var self = this, sc = this.sc;
        this.queue(function (next) {
            self.underUsable(function (ep, made) {
                sc.sealText(ep, self.ring.session, self.username, text, made);
            }, function (err, env) {
                if (!err) {
                    self.track(headerId(sc, env), {type: 'msg', env: env});
                }
                next();
                if (cb) {
                    cb(err || null);
                }
            });
        });
    };

    // bytes: Uint8Array; onProgress(fraction) covers encryption; the server's echo of each chunk
    // is reported as a 'sent' view event. The announcement and the chunks use one epoch.
    Room.prototype.sendFile = function (bytes, name, mime, onProgress, cb) {
        var self = this, sc = this.sc, limit = this.limits.max_file_bytes;
        if (limit && bytes.length > limit) {
            root.setTimeout(function () {
                cb(Seal.api.makeError('too_large', i18n.t('Files may be at most {size}.', {size: i18n.size(limit)})));
            }, 0);
            return;
        }
        this.queue(function (next) {
            self.underUsable(function (ep, made) {
                var session = self.ring.session;
                sc.encryptFile(ep, session, bytes, onProgress, function (err, enc) {
                    var meta;
                    if (err) {
                        made(err);
                        return;
                    }
                    meta = {file_id: enc.fileId, name: name, mime: mime, size: bytes.length, chunks: enc.chunks.length};
                    sc.seal(ep, session, self.username, 'file', sc.utf8(JSON.stringify(meta)), function (err2, env) {
                        made(err2 || null, err2 ? null : {enc: enc, env: env});
                    });
                });
            }, function (err, made) {
                var i, enc;
                if (err) {
                    next();
                    cb(err);
                    return;
                }
                enc = made.enc;
                self.track(headerId(sc, made.env), {type: 'msg', env: made.env});
                for (i = 0; i < enc.chunks.length; i++) {
                    self.track(enc.fileId + '/' + i, {type: 'chunk', file: enc.fileId, i: i,
                        n: enc.chunks.length, c: enc.chunks[i].c, s: enc.chunks[i].s});
                }
                next();
                cb(null, {fileId: enc.fileId, n: enc.chunks.length});
            });
        });
    };

    // ---- the host's actions --------------------------------------------------------------

    // Host-only frames are not resent: the page shows a refusal, and a retry is the user's.
    Room.prototype.hostFrame = function (frame) {
        if (this.closed || !this.transport) {
            return false;
        }
        return !!this.transport.send(frame);
    };

    /** Removes user from the room (host only). @returns {boolean} false when not connected. */
    Room.prototype.kick = function (user) {
        return this.hostFrame({type: 'kick', user: user, ref: 'kick'});
    };

    /** Locks (locked=true) or unlocks the room (host only). @returns {boolean} false when not connected. */
    Room.prototype.setLocked = function (locked) {
        return this.hostFrame({type: locked ? 'lock' : 'unlock', ref: locked ? 'lock' : 'unlock'});
    };

    // ---- invites ---------------------------------------------------------------------------

    /**
     * Asks the server for a single-use invite; its answer comes as an `invite` view event (or
     * `invite-refused`), to this page only. Not resent: a retry is the user's. Over long-poll the
     * frame goes straight to the server, so that a refusal (rate_limited included) is shown at
     * once instead of being retried in the transport's queue.
     * @returns {boolean} false when not connected.
     */
    Room.prototype.invite = function () {
        var self = this, frame, api = Seal.api;
        if (this.closed || !this.transport) {
            return false;
        }
        this.invites++;
        frame = {type: 'invite', ref: 'invite-' + this.invites};
        if (this.transport.mode === 'poll' && api && typeof api.pollSend === 'function') {
            if (!this.connected) {
                return false;
            }
            api.pollSend(this.token, frame, function (err, data) {
                if (self.closed) {
                    return;
                }
                if (err && api.isTerminal && api.isTerminal(err)) {
                    return; // the transport's own requests meet the same end and report it
                }
                if (err) {
                    self.receive({type: 'error', code: err.code, message: err.message, retry_after: err.retryAfter,
                        ref: frame.ref});
                } else if (data && data.reply) {
                    self.receive(data.reply);
                }
            });
            return true;
        }
        return !!this.transport.send(frame);
    };

    Seal.Room = Room;
}(this));
