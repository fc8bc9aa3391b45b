/*
 * Seal.Room: one member of one room, the browser twin of chat/client/room.py. It processes
 * every room event once and in order (seq at or below the cursor is ignored, duplicate message
 * ids are dropped), decrypts messages, reassembles files, resends frames the server has not
 * echoed once a reconnect's replay is through, and reports view events:
 *   members, joined, left, text, file-start, file-progress, file, file-abandoned, undecryptable,
 *   gap, error, transport, sent.
 * file-abandoned {from, fileId, name, reason}: an announced file that will not complete (its
 * sender left, or no chunk came for a minute while connected); its file-start entry is dead.
 */
(function (root) {
    'use strict';

    var Seal = root.Seal;
    var SC = root.SealCrypto;
    var SEEN_IDS = 50000;
    var FILE_IDLE_MS = 60000;
    var MAX_UNCONFIRMED = 4096; // frames kept for resending, and at most this many characters:
    var MAX_UNCONFIRMED_CHARS = 67108864;

    // Resumed keys must carry their message count across a reload (the per-key limit).
    function saveKeyUse(keys) {
        if (Seal.session && typeof Seal.session.update === 'function') {
            Seal.session.update({keys: SC.exportForResume(keys)});
        }
    }

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

    function Room(opts) {
        this.keys = opts.keys;
        this.username = opts.username;
        this.token = opts.token;
        this.cursor = opts.cursor || 0;
        this.members = (opts.members || []).slice();
        this.limits = opts.limits || {};
        this.onView = opts.onView;
        this.onCursor = opts.onCursor || function () {};
        this.onKeysUsed = opts.onKeysUsed || saveKeyUse;
        this.fileIdleMs = opts.fileIdleMs || FILE_IDLE_MS;
        this.seen = {};
        this.seenOrder = [];
        this.files = {};
        // id -> {frame, chars, epoch}; epoch counts welcomes and gaps, so a resend takes only
        // frames sent before the reconnect (later ones are on their way on the new connection).
        this.unconfirmed = {};
        this.unconfirmedOrder = [];
        this.unconfirmedCount = 0;
        this.unconfirmedChars = 0;
        this.epoch = 0;
        this.resendAfter = null; // resend once events up to this seq have been processed
        this.processed = this.cursor;
        this.connected = false;
        this.closed = false;
        this.inbox = [];
        this.working = false;
        this.outgoing = [];
        this.sendingOp = false;
        this.transport = null;
    }

    Room.prototype.attach = function (transport) {
        this.transport = transport;
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
        if (this.working || !this.inbox.length) {
            return;
        }
        this.working = true;
        ev = this.inbox.shift();
        this.handle(ev, function () {
            self.working = false;
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
            this.members = (ev.members || []).slice();
            if (ev.limits) {
                this.limits = ev.limits;
            }
            // The replay up to the welcome's cursor may confirm frames; resend the rest after it.
            this.epoch++;
            this.resendAfter = typeof ev.cursor === 'number' ? ev.cursor : this.processed;
            this.emit({type: 'members', members: this.members.slice()});
            done();
        } else if (kind === 'joined') {
            if (this.indexOf(ev.user) < 0) {
                this.members.push(ev.user);
            }
            this.emit({type: 'joined', user: ev.user});
            this.emit({type: 'members', members: this.members.slice()});
            done();
        } else if (kind === 'left') {
            i = this.indexOf(ev.user);
            if (i >= 0) {
                this.members.splice(i, 1);
            }
            this.abandonFrom(ev.user, 'the sender left');
            this.emit({type: 'left', user: ev.user, reason: ev.reason});
            this.emit({type: 'members', members: this.members.slice()});
            done();
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
            this.epoch++;
            if (this.resendAfter === null) {
                this.resendAfter = this.processed;
            }
            this.emit({type: 'gap', from: ev.from_seq, to: ev.to_seq});
            done();
        } else if (kind === 'error') {
            if (typeof ev.ref === 'string') {
                this.forget(ev.ref); // refused: resending would be refused again
            }
            this.emit({type: 'error', code: ev.code, message: ev.message, retryAfter: ev.retry_after});
            done();
        } else {
            done();
        }
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
            self.abandonFile(key, 'nothing arrived for ' + Math.round(self.fileIdleMs / 1000) + ' seconds');
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

    // The page is leaving the room: stop the timers and drop the keys and all queued work.
    Room.prototype.close = function () {
        var key;
        this.closed = true;
        this.inbox = [];
        this.outgoing = [];
        this.onKeysUsed = function () {};
        this.keys = null;
        for (key in this.files) {
            if (Object.prototype.hasOwnProperty.call(this.files, key)) {
                root.clearTimeout(this.files[key].timer);
            }
        }
        this.files = {};
        root.clearTimeout(this.resendTimer);
    };

    Room.prototype.onMsg = function (ev, done) {
        var self = this, sender = ev.from;
        SC.open(this.keys, ev.env, sender, function (err, opened) {
            var h, base, meta, text;
            if (err) {
                self.emit({type: 'undecryptable', from: sender, reason: err.message});
                done();
                return;
            }
            h = opened.header;
            if (sender === self.username) {
                self.forget(h.id);
            }
            if (!self.isNewId(h.id)) {
                done();
                return;
            }
            base = {from: sender, id: h.id, ts: h.ts, mine: sender === self.username};
            if (h.type === 'text') {
                try {
                    text = SC.fromUtf8(opened.plaintext);
                } catch (e) {
                    text = null;
                }
                if (text === null) {
                    self.emit({type: 'undecryptable', from: sender, reason: 'the text is not valid UTF-8'});
                } else {
                    base.type = 'text';
                    base.text = text;
                    self.emit(base);
                }
            } else if (h.type === 'file') {
                try {
                    meta = JSON.parse(SC.fromUtf8(opened.plaintext));
                    if (!meta || typeof meta.file_id !== 'string' || SC.unb64u(meta.file_id).length !== 16 ||
                            typeof meta.size !== 'number' || Math.floor(meta.size) !== meta.size || meta.size < 0 ||
                            meta.chunks !== SC.chunkCount(meta.size) ||
                            typeof meta.name !== 'string' || typeof meta.mime !== 'string') {
                        throw new Error('bad file metadata');
                    }
                } catch (e) {
                    self.emit({type: 'undecryptable', from: sender, reason: 'bad file metadata'});
                    done();
                    return;
                }
                // The size is the sender's claim: one beyond the room's limit can never arrive.
                if (self.limits.max_file_bytes && meta.size > self.limits.max_file_bytes) {
                    self.emit({type: 'undecryptable', from: sender, fileId: meta.file_id,
                        reason: 'the file claims to be larger than this room allows'});
                    done();
                    return;
                }
                self.abandonFile(sender + '\n' + meta.file_id, null);
                self.files[sender + '\n' + meta.file_id] = {meta: meta, base: base, parts: [], count: 0, timer: null};
                self.touchFile(sender + '\n' + meta.file_id);
                base.type = 'file-start';
                base.name = meta.name;
                base.mime = meta.mime;
                base.size = meta.size;
                base.fileId = meta.file_id;
                self.emit(base);
            } else {
                self.emit({type: 'undecryptable', from: sender, reason: 'a message of a kind this page does not know'});
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
        SC.decryptChunk(this.keys, ev.file, ev.i, ev.n, ev.c, function (err, plain) {
            var total = 0, i, bytes, off = 0;
            if (self.files[key] !== incoming) {
                done();
                return;
            }
            if (err) {
                self.abandonFile(key, null);
                self.emit({type: 'undecryptable', from: sender, reason: err.message, fileId: ev.file});
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
                self.emit({type: 'undecryptable', from: sender, reason: 'file size mismatch', fileId: ev.file});
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
            self.resend(self.epoch);
        }, 0);
    };

    Room.prototype.resend = function (epoch) {
        var i, id, entry;
        if (!this.transport || this.closed) {
            return;
        }
        this.compact();
        for (i = 0; i < this.unconfirmedOrder.length; i++) {
            id = this.unconfirmedOrder[i];
            entry = this.unconfirmed[id];
            if (entry && entry.epoch < epoch) {
                entry.epoch = epoch;
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
        this.unconfirmed[id] = {frame: frame, chars: chars, epoch: this.epoch};
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
    };

    Room.prototype.nextOp = function () {
        var self = this, op;
        if (this.sendingOp || !this.outgoing.length) {
            return;
        }
        this.sendingOp = true;
        op = this.outgoing.shift();
        op(function () {
            self.sendingOp = false;
            self.nextOp();
        });
    };

    Room.prototype.keysUsed = function () {
        callPage(this.onKeysUsed, this.keys);
    };

    function headerId(env) {
        return JSON.parse(SC.fromUtf8(SC.unb64u(env.h))).id;
    }

    Room.prototype.sendText = function (text, cb) {
        var self = this;
        this.queue(function (next) {
            SC.sealText(self.keys, self.username, text, function (err, env) {
                if (!err) {
                    self.keysUsed();
                    self.track(headerId(env), {type: 'msg', env: env});
                }
                next();
                if (cb) {
                    cb(err || null);
                }
            });
        });
    };

    // bytes: Uint8Array; onProgress(fraction) covers encryption; the server's echo of each chunk
    // is reported as a 'sent' view event.
    Room.prototype.sendFile = function (bytes, name, mime, onProgress, cb) {
        var self = this, limit = this.limits.max_file_bytes;
        if (limit && bytes.length > limit) {
            root.setTimeout(function () {
                cb(Seal.api.makeError('too_large', 'Files may be at most ' + Seal.dom.formatBytes(limit) + '.'));
            }, 0);
            return;
        }
        this.queue(function (next) {
            SC.encryptFile(self.keys, bytes, onProgress, function (err, enc) {
                var meta;
                if (err) {
                    next();
                    cb(err);
                    return;
                }
                meta = {file_id: enc.fileId, name: name, mime: mime, size: bytes.length, chunks: enc.chunks.length};
                SC.seal(self.keys, self.username, 'file', SC.utf8(JSON.stringify(meta)), function (err2, env) {
                    var i;
                    if (err2) {
                        next();
                        cb(err2);
                        return;
                    }
                    self.keysUsed();
                    self.track(headerId(env), {type: 'msg', env: env});
                    for (i = 0; i < enc.chunks.length; i++) {
                        self.track(enc.fileId + '/' + i, {type: 'chunk', file: enc.fileId, i: i,
                            n: enc.chunks.length, c: enc.chunks[i]});
                    }
                    next();
                    cb(null, {fileId: enc.fileId, n: enc.chunks.length});
                });
            });
        });
    };

    Seal.Room = Room;
}(this));
