/*
 * Seal.epochs: the keys of one member of a sealchat/v2 room (docs/PROTOCOL.md, "Session keys" to
 * "Reload vault"), apart from the event ordering, messages and files that Seal.Room handles.
 *
 * One keyring per room page. It holds this session's X25519/Ed25519 keys and member_key, pins
 * every member's announced keys, follows who the host is, accepts grants only from the current
 * host and only for a higher epoch, and decides which epoch may be used to send. As host it
 * draws epoch keys and grants them (on becoming host, on every `left`, on a newcomer's
 * announcement or 5 s after its `joined`, on an announcement from a member outside the current
 * epoch; events processed together get one rekey), and re-grants the current epoch to a member
 * that repeats the same announcement. Older epoch keys stay 60 s after a newer one, then go.
 * Everything a reload needs is sealed into the vault under the session's resume_key; the tab's
 * storage never holds a key in the clear.
 *
 * Usage: var ring = Seal.epochs.init(deps); the room feeds it events (welcome, joined, left,
 * host, announce, grant) in order and asks it for epochs (usable, lookup, whenUsable).
 * ES5, callbacks only: it runs on the fallback path (no Promise, no Worker, no WebSocket).
 */
(function (root) {
    'use strict';

    var Seal = root.Seal = root.Seal || {};
    // The reasons and errors below reach the page's notices: in the page's language.
    var i18n = Seal.i18n;

    var KEY_WAIT_MS = 5000;       // no usable epoch for this long: say so and announce again
    var KEY_WAIT_MAX_MS = 30000;  // repeated announcements back off to this
    var NEWCOMER_WAIT_MS = 5000;  // the host waits this long for a newcomer's announcement
    var OLD_KEY_MS = 60000;       // a replaced epoch key opens late messages this long
    var VAULT_SEEN = 2000;        // message ids of the current epoch kept across a reload

    function has(obj, key) {
        return Object.prototype.hasOwnProperty.call(obj, key);
    }

    function indexOf(list, item) {
        var i;
        for (i = 0; list && i < list.length; i++) {
            if (list[i] === item) {
                return i;
            }
        }
        return -1;
    }

    function sameBytes(a, b) {
        var i, diff = 0;
        if (!a || !b || a.length !== b.length) {
            return false;
        }
        for (i = 0; i < a.length; i++) {
            diff |= a[i] ^ b[i];
        }
        return diff === 0;
    }

    function isWholeNumber(x) {
        return typeof x === 'number' && isFinite(x) && Math.floor(x) === x && x >= 0;
    }

    // Runs fn(item, next) for each item in turn, then done(); for callback APIs that must not overlap.
    function eachInTurn(items, fn, done) {
        var i = 0;
        function next() {
            if (i >= items.length) {
                done();
                return;
            }
            fn(items[i++], next);
        }
        next();
    }

    // Names in UTF-8 byte order (PROTOCOL.md, "Safety code").
    function byUtf8(sc) {
        return function (a, b) {
            var x = sc.utf8(a.user), y = sc.utf8(b.user), i;
            for (i = 0; i < x.length && i < y.length; i++) {
                if (x[i] !== y[i]) {
                    return x[i] - y[i];
                }
            }
            return x.length - y.length;
        };
    }

    /**
     * The keyring of one member.
     * @param {Object} deps explicit dependencies:
     *   crypto: SealCrypto (v2 API); roomId: the canonical room id; username: this member;
     *   members(): the present members in the server's order (the room's list);
     *   cursor(): seq of the last room event processed (a grant's `at`);
     *   changeSeq: seq of this member's own join (the join answer's cursor);
     *   send(frame) -> bool: hands a frame to the transport, false when it could not;
     *   busy() -> bool: true while room events are still queued (a rekey waits for them);
     *   connected() -> bool; emit(view): view events for the page;
     *   saveVault(vault): stores the sealed vault {n, c} in the tab;
     *   changed(): usability of an epoch may have changed (the room releases held messages);
     *   timing (optional): {keyWaitMs, newcomerWaitMs, oldKeyMs}; setTimeout/clearTimeout (optional).
     * @constructor
     */
    function Keyring(deps) {
        var t = deps.timing || {};
        this.deps = deps;
        this.sc = deps.crypto;
        this.roomId = deps.roomId;
        this.me = deps.username;
        this.keyWaitMs = t.keyWaitMs || KEY_WAIT_MS;
        this.newcomerWaitMs = t.newcomerWaitMs || NEWCOMER_WAIT_MS;
        this.oldKeyMs = t.oldKeyMs || OLD_KEY_MS;
        this.setTimer = deps.setTimeout || function (fn, ms) {
            return root.setTimeout(fn, ms);
        };
        this.clearTimer = deps.clearTimeout || function (id) {
            root.clearTimeout(id);
        };
        this.memberKey = null;   // b64u, from the vault the join page sealed
        this.session = null;     // {dhPk, dhSk, sigPk, sigSeed}
        this.resumeKey = null;   // b64u, from this session's welcome; memory only
        this.opened = false;
        this.closed = false;
        this.pins = {};          // user -> accepted announcement {user, dh, sig, ts, wire}
        this.hostName = null;
        this.epochs = {};        // E -> {ep, at, members, by, timer}
        this.newest = 0;         // the highest epoch accepted (or drawn, as host)
        this.highestSeen = 0;    // the highest epoch number met anywhere (a new host counts on)
        this.floor = 0;          // after a reload: envelopes of older epochs are refused
        this.changeSeq = deps.changeSeq || 0;
        this.restoredSeen = [];
        this.seenList = [];      // [id, epoch] of accepted messages, for the vault
        this.waiters = [];
        this.waitTimer = null;
        this.waitMs = this.keyWaitMs;
        this.wasUsable = null;
        this.rekeyWanted = false;
        this.rekeying = false;
        this.rekeyMembers = [];
        this.flushTimer = null;
        this.askedAgain = false; // announced again for want of a key: a re-grant of the same key is expected
        this.newcomers = {};     // user -> timer, while the host waits for an announcement
        this.regranting = {};
        this.sealing = false;
        this.dirty = false;
        this.persistWaiters = [];
        this.safetyRun = 0;
    }

    // ---- small queries ---------------------------------------------------------------------

    /** @returns {boolean} whether this member is the room's host now. */
    Keyring.prototype.isHost = function () {
        return this.hostName !== null && this.hostName === this.me;
    };

    /** @returns {Object|null} the accepted announcement of user (the key its envelopes must verify under). */
    Keyring.prototype.sender = function (user) {
        return has(this.pins, user) ? this.pins[user] : null;
    };

    /** @returns {Object|null} the epoch object for number n while its key is held, for SealCrypto.open. */
    Keyring.prototype.lookup = function (n) {
        return has(this.epochs, n) ? this.epochs[n].ep : null;
    };

    /** @returns {boolean} true when an envelope of epoch n must be refused because this tab reloaded after it. */
    Keyring.prototype.belowFloor = function (n) {
        return n < this.floor;
    };

    /**
     * Records the epoch number of an envelope whose signature verified (opened, or refused only
     * for want of its key): a new host counts on from the highest.
     */
    Keyring.prototype.noteEpoch = function (n) {
        if (isWholeNumber(n) && n > this.highestSeen && n < 9007199254740991) {
            this.highestSeen = n;
        }
    };

    /**
     * The epoch this member may send under now (PROTOCOL.md, "Which epoch a member sends under"):
     * the newest accepted one, if its `at` is at least change_seq, all its members are present
     * and this member is one of them.
     * @returns {Object|null} the SealCrypto epoch object, or null (hold outgoing messages).
     */
    Keyring.prototype.usable = function () {
        var cur = this.epochs[this.newest], present, i;
        if (!cur || !this.session || cur.at < this.changeSeq || indexOf(cur.members, this.me) < 0) {
            return null;
        }
        present = this.deps.members();
        for (i = 0; i < cur.members.length; i++) {
            if (indexOf(present, cur.members[i]) < 0) {
                return null;
            }
        }
        return cur.ep;
    };

    /**
     * Calls fn(ep) with a usable epoch: now if there is one, else once one arrives. Callers keep
     * their messages in order by waiting one at a time (Seal.Room's outgoing queue).
     */
    Keyring.prototype.whenUsable = function (fn) {
        var ep = this.usable();
        if (ep) {
            fn(ep);
            return;
        }
        this.waiters.push(fn);
        this.changed();
    };

    /** Remembers an accepted message id with its epoch, for the vault's `seen` list. */
    Keyring.prototype.remember = function (id, epoch) {
        this.seenList.push([id, epoch]);
        if (this.seenList.length > 2 * VAULT_SEEN) {
            this.seenList = this.seenList.slice(-VAULT_SEEN);
        }
        this.persist();
    };

    // ---- state changes the room reports ------------------------------------------------------

    /**
     * A welcome: the first one opens the vault with its resume_key (and makes and announces
     * session keys if the vault has none); every one pins the members' announcements it carries
     * and sets the host.
     * @param {Object} ev the welcome event; @param {function(Error=)} cb
     */
    Keyring.prototype.welcome = function (ev, vault, cb) {
        var self = this;
        if (typeof ev.resume_key === 'string' && ev.resume_key) {
            this.resumeKey = ev.resume_key;
        }
        function settle() {
            var listed = false, i;
            for (i = 0; ev.keys && i < ev.keys.length; i++) {
                listed = listed || (ev.keys[i] && ev.keys[i].from === self.me);
            }
            self.pinAll(ev.keys || [], function () {
                if (self.closed) {
                    cb(null);
                    return;
                }
                self.setHost(typeof ev.host === 'string' ? ev.host : null, true);
                if (!listed) {
                    // A fresh session, or an announcement that never reached the server.
                    self.announce();
                }
                self.emitSafety();
                self.changed();
                cb(null);
            });
        }
        if (this.opened) {
            settle();
            return;
        }
        this.restore(vault, function (err) {
            if (err) {
                cb(err);
                return;
            }
            settle();
        });
    };

    /**
     * The member joined at seq: the epoch in use no longer covers everyone until a rekey.
     * @param {function()} [done] runs once the vault holds the new change_seq (the room advances
     *     the tab's saved cursor only then, so a reload cannot skip the change).
     */
    Keyring.prototype.joined = function (user, seq, done) {
        if (typeof seq === 'number' && seq > this.changeSeq) {
            this.changeSeq = seq;
        }
        if (this.isHost() && user !== this.me) {
            this.waitForNewcomer(user);
        }
        this.changed();
        this.persist(done);
    };

    Keyring.prototype.waitForNewcomer = function (user) {
        var self = this;
        if (has(this.newcomers, user)) {
            this.clearTimer(this.newcomers[user]);
        }
        this.newcomers[user] = this.setTimer(function () {
            delete self.newcomers[user];
            if (!self.closed && self.isHost()) {
                self.wantRekey(); // without it; its announcement, when it comes, brings the next one
            }
        }, this.newcomerWaitMs);
    };

    /**
     * The member left (leave, timeout or removal) at seq: its pin goes, and the host rekeys at once.
     * @param {function()} [done] as for joined
     */
    Keyring.prototype.left = function (user, seq, done) {
        if (typeof seq === 'number' && seq > this.changeSeq) {
            this.changeSeq = seq;
        }
        delete this.pins[user];
        if (has(this.newcomers, user)) {
            this.clearTimer(this.newcomers[user]);
            delete this.newcomers[user];
        }
        this.emitSafety();
        this.changed();
        if (this.isHost()) {
            this.wantRekey();
        }
        this.persist(done);
    };

    /**
     * The host is user (from a welcome, initial=true, or a `host` event). Becoming host means
     * drawing a new epoch at once.
     */
    Keyring.prototype.setHost = function (user, initial) {
        var was = this.hostName;
        this.hostName = user;
        if (user !== was) {
            this.deps.emit({type: 'host', user: user, me: user === this.me, initial: !!initial});
        }
        if (user === this.me && was !== this.me) {
            this.wantRekey();
        }
        this.changed();
    };

    /**
     * An `announce` event: verified against member_key and the attested sender; the first one of
     * a member pins its keys; other keys later are refused (key_changed); the same keys again ask
     * the host for the current epoch.
     */
    Keyring.prototype.onAnnounce = function (ev, cb, inWelcome) {
        var self = this, wire = {a: ev.a, t: ev.t, s: ev.s};
        if (!this.opened || this.closed) {
            cb();
            return;
        }
        this.sc.checkAnnouncement(this.memberKey, this.roomId, wire, ev.from, function (err, ann) {
            if (self.closed) {
                cb();
                return;
            }
            if (err) {
                self.deps.emit({type: 'forged', from: ev.from, what: 'announcement',
                    reason: i18n.t('its key announcement was refused: {reason}', {reason: err.message})});
                cb();
                return;
            }
            self.accept(ann, !!inWelcome);
            cb();
        });
    };

    // One verified announcement: pin, refuse a change, or answer a repeat. inWelcome: it came in
    // a welcome's keys (the server's copy), which is no request for a key.
    Keyring.prototype.accept = function (ann, inWelcome) {
        var user = ann.user, old = this.pins[user];
        if (indexOf(this.deps.members(), user) < 0) {
            return; // it left meanwhile
        }
        if (old) {
            if (!sameBytes(old.dh, ann.dh) || !sameBytes(old.sig, ann.sig)) {
                this.deps.emit({type: 'key_changed', user: user});
                return;
            }
            if (user !== this.me && this.isHost() && !inWelcome) {
                if (this.inCurrent(user)) {
                    this.regrant(user);
                } else if (!this.rekeying || indexOf(this.rekeyMembers, user) < 0) {
                    this.wantRekey(); // unless the rekey under way takes it in already
                }
            }
            return;
        }
        this.pins[user] = ann;
        this.emitSafety();
        if (user !== this.me && this.isHost()) {
            if (has(this.newcomers, user)) {
                this.clearTimer(this.newcomers[user]);
                delete this.newcomers[user];
            }
            if (!this.inCurrent(user)) {
                this.wantRekey();
            }
        }
    };

    // Checks and pins the announcements of a welcome, one at a time; members who are gone lose theirs.
    Keyring.prototype.pinAll = function (entries, done) {
        var self = this, present = this.deps.members(), user;
        for (user in this.pins) {
            if (has(this.pins, user) && indexOf(present, user) < 0) {
                delete this.pins[user];
            }
        }
        eachInTurn(entries, function (entry, next) {
            if (!entry || typeof entry.from !== 'string' || indexOf(present, entry.from) < 0) {
                next();
                return;
            }
            self.onAnnounce({from: entry.from, a: entry.a, t: entry.t, s: entry.s}, next, true);
        }, done);
    };

    Keyring.prototype.inCurrent = function (user) {
        var cur = this.epochs[this.newest];
        return !!cur && indexOf(cur.members, user) >= 0;
    };

    /**
     * A `grant` event addressed to this member. Accepted only from the current host, verified
     * by SealCrypto.openGrant, and only for an epoch above every one accepted before; anything
     * else is refused and reported (bad_grant). The same epoch and key again is dropped quietly.
     * cb runs once the accepted key is sealed into the vault, so a reload cannot lose it.
     */
    Keyring.prototype.onGrant = function (ev, cb) {
        var self = this, hostAnn;
        function refuse(reason) {
            self.deps.emit({type: 'bad_grant', from: ev.from, reason: reason});
            cb();
        }
        if (!this.opened || this.closed) {
            cb();
            return;
        }
        if (ev.to !== undefined && ev.to !== this.me) {
            refuse(i18n.t('it is addressed to {user}', {user: ev.to}));
            return;
        }
        if (ev.from !== this.hostName) {
            refuse(i18n.t('it does not come from the room\'s host'));
            return;
        }
        hostAnn = this.pins[ev.from];
        if (!hostAnn) {
            refuse(i18n.t('the host has not announced its keys'));
            return;
        }
        this.sc.openGrant(this.memberKey, this.roomId, this.session, this.me, hostAnn, ev, function (err, g) {
            var held;
            if (self.closed) {
                cb();
                return;
            }
            if (err) {
                refuse(err.message);
                return;
            }
            self.noteEpoch(g.epoch);
            if (g.epoch <= self.newest) {
                held = self.epochs[g.epoch];
                if (self.askedAgain && g.epoch === self.newest && held && sameBytes(held.ep.raw, g.key)) {
                    cb(); // the host's answer to this member's repeated announcement: the key it holds
                    return;
                }
                refuse(i18n.t('it is for epoch {epoch}, not newer than epoch {newest} (a replayed or reordered grant)',
                    {epoch: g.epoch, newest: self.newest}));
                return;
            }
            self.sc.epochFromKey(self.roomId, g.epoch, g.key, function (err2, ep) {
                if (self.closed) {
                    cb();
                    return;
                }
                if (err2 || g.epoch <= self.newest) {
                    refuse(err2 ? err2.message : i18n.t('a newer epoch was accepted meanwhile'));
                    return;
                }
                self.install(g.epoch, ep, g.at, g.members, ev.from);
                self.persist(function () {
                    cb();
                });
            });
        });
    };

    // A new newest epoch: older ones are kept for a while, held messages may go.
    Keyring.prototype.install = function (n, ep, at, members, by) {
        var k;
        this.epochs[n] = {ep: ep, at: at, members: members.slice(), by: by, timer: null};
        this.newest = n;
        this.askedAgain = false;
        if (n > this.highestSeen) {
            this.highestSeen = n;
        }
        for (k in this.epochs) {
            if (has(this.epochs, k) && Number(k) < n && !this.epochs[k].timer) {
                this.retire(k);
            }
        }
        this.deps.emit({type: 'rekey', epoch: n, by: by, members: members.slice()});
        this.changed();
        this.persist();
    };

    Keyring.prototype.retire = function (k) {
        var self = this;
        this.epochs[k].timer = this.setTimer(function () {
            if (self.epochs[k]) {
                self.epochs[k].ep = null;
                delete self.epochs[k];
            }
        }, this.oldKeyMs);
    };

    // ---- waiting for a key -------------------------------------------------------------------

    /**
     * Re-evaluates usability: releases held senders when an epoch is usable, and otherwise
     * keeps the 5-second no-key timer running (which reports no_key and announces again).
     */
    Keyring.prototype.changed = function () {
        var ep, waiting;
        if (this.closed || !this.opened) {
            return;
        }
        ep = this.usable();
        if (ep) {
            if (this.waitTimer) {
                this.clearTimer(this.waitTimer);
                this.waitTimer = null;
            }
            this.waitMs = this.keyWaitMs;
            waiting = this.waiters;
            this.waiters = [];
            while (waiting.length) {
                waiting.shift()(ep);
            }
        } else if (!this.waitTimer) {
            this.startWait();
        }
        if (this.wasUsable !== !!ep) {
            this.wasUsable = !!ep;
            this.deps.changed();
        }
    };

    Keyring.prototype.startWait = function () {
        var self = this;
        this.waitTimer = this.setTimer(function () {
            self.waitTimer = null;
            if (self.closed || self.usable()) {
                return;
            }
            if (!self.deps.connected()) {
                self.startWait(); // offline: nobody could answer; wait on
                return;
            }
            if (self.isHost()) {
                // The host makes keys itself; a rekey that was due is overdue now.
                if (!self.rekeying && !self.hasNewcomers()) {
                    self.wantRekey();
                }
            } else {
                self.deps.emit({type: 'no_key'});
                self.askedAgain = true;
                self.announce();
                self.waitMs = Math.min(KEY_WAIT_MAX_MS, self.waitMs * 2);
            }
            self.startWait();
        }, this.waitMs);
    };

    Keyring.prototype.hasNewcomers = function () {
        var k;
        for (k in this.newcomers) {
            if (has(this.newcomers, k)) {
                return true;
            }
        }
        return false;
    };

    // ---- own announcement ----------------------------------------------------------------------

    /** Sends this session's announcement (made fresh, same keys); pins it for itself first. */
    Keyring.prototype.announce = function () {
        var self = this;
        if (!this.session || this.closed) {
            return;
        }
        this.sc.makeAnnouncement(this.memberKey, this.roomId, this.session, this.me, function (err, wire) {
            if (err || self.closed) {
                if (err) {
                    self.deps.emit({type: 'error', code: err.code || 'crypto',
                        message: i18n.t('Could not announce this tab\'s keys: {message}', {message: err.message})});
                }
                return;
            }
            if (self.pins[self.me]) {
                self.deps.send({type: 'announce', a: wire.a, t: wire.t, s: wire.s});
                return;
            }
            self.sc.checkAnnouncement(self.memberKey, self.roomId, wire, self.me, function (err2, ann) {
                if (self.closed) {
                    return;
                }
                if (!err2 && !self.pins[self.me]) {
                    self.pins[self.me] = ann;
                    self.emitSafety();
                }
                self.deps.send({type: 'announce', a: wire.a, t: wire.t, s: wire.s});
            });
        });
    };

    // ---- host duties ---------------------------------------------------------------------------

    Keyring.prototype.wantRekey = function () {
        this.rekeyWanted = true;
        this.flush();
    };

    /**
     * Draws the epoch that is due, once room events queued now are processed (Seal.Room calls
     * flush when its inbox is empty): events processed together are answered by one rekey.
     */
    Keyring.prototype.flush = function () {
        var self = this;
        if (!this.rekeyWanted || this.rekeying || this.flushTimer || this.closed || !this.opened || !this.session ||
                !this.isHost() || this.deps.busy()) {
            return;
        }
        // One turn later: events that arrived in the same burst (a replay, frames read together)
        // are queued by then, and the room calls flush again once they are processed.
        this.flushTimer = this.setTimer(function () {
            self.flushTimer = null;
            if (!self.rekeyWanted || self.rekeying || self.closed || !self.isHost() || self.deps.busy()) {
                return;
            }
            self.rekeyWanted = false;
            self.rekey();
        }, 0);
    };

    // E = highest seen + 1; members = the host and every present member with an accepted
    // announcement, in member order; at = the host's cursor. One grant frame, then the host
    // installs the epoch itself (after the frame, so grants reach members before messages do).
    Keyring.prototype.rekey = function () {
        var self = this, sc = this.sc, n = Math.max(this.highestSeen, this.newest) + 1,
            key = sc.newEpochKey(), at = this.deps.cursor(), present = this.deps.members(),
            members = [], targets = [], i;
        for (i = 0; i < present.length; i++) {
            if (present[i] === this.me) {
                members.push(present[i]);
            } else if (this.pins[present[i]]) {
                members.push(present[i]);
                targets.push(this.pins[present[i]]);
            }
        }
        if (indexOf(members, this.me) < 0) {
            return;
        }
        this.rekeying = true;
        this.rekeyMembers = members;
        sc.epochFromKey(this.roomId, n, key, function (err, ep) {
            var grants = [];
            if (self.closed) {
                return;
            }
            if (err) {
                self.rekeying = false;
                self.deps.emit({type: 'error', code: err.code || 'crypto',
                    message: i18n.t('Could not make a room key: {message}', {message: err.message})});
                return;
            }
            eachInTurn(targets, function (ann, next) {
                sc.sealGrant(self.memberKey, self.roomId, self.session, self.me, ann, n, at, members, key,
                    function (err2, g) {
                        if (!err2) {
                            grants.push(g);
                        }
                        next();
                    });
            }, function () {
                if (self.closed) {
                    return;
                }
                self.rekeying = false;
                if (grants.length && !self.deps.send({type: 'grant', ref: 'grant-' + n, grants: grants})) {
                    self.rekeyWanted = true; // not connected: draw again on the next welcome
                    return;
                }
                self.install(n, ep, at, members, self.me);
                self.flush();
            });
        });
    };

    /** The current epoch again, to one member of it that repeated its announcement. */
    Keyring.prototype.regrant = function (user) {
        var self = this, n = this.newest, cur = this.epochs[n], ann = this.pins[user];
        if (!cur || !cur.ep || !ann || this.regranting[user]) {
            return;
        }
        this.regranting[user] = true;
        this.sc.sealGrant(this.memberKey, this.roomId, this.session, this.me, ann, n, cur.at, cur.members,
            cur.ep.raw, function (err, g) {
                delete self.regranting[user];
                if (!err && !self.closed && self.isHost() && self.newest === n) {
                    self.deps.send({type: 'grant', ref: 'grant-' + n + '-' + user, grants: [g]});
                }
            });
    };

    /** The server refused a grant frame (its ref starts with "grant-"). */
    Keyring.prototype.grantRefused = function (code, retryAfter) {
        var self = this;
        if (code === 'not_host' || this.closed) {
            return true; // the host changed meanwhile; the new host rekeys
        }
        if (code === 'rate_limited') {
            this.setTimer(function () {
                self.wantRekey();
            }, Math.max(1, retryAfter || 1) * 1000);
            return true;
        }
        return false;
    };

    // ---- vault -------------------------------------------------------------------------------

    // The first welcome: the vault the join page sealed (member_key), or the one this page sealed
    // before a reload (session keys, epoch keys, floor, seen).
    Keyring.prototype.restore = function (vault, cb) {
        var self = this, sc = this.sc, fresh = false;
        if (!this.resumeKey || !vault) {
            cb(makeError('vault', i18n.t('This tab holds no room key.')));
            return;
        }
        sc.vaultOpen(this.resumeKey, this.roomId, this.me, vault, function (err, state) {
            var numbers = [], k, meta;
            if (self.closed) {
                return;
            }
            if (err || !state || typeof state.member_key !== 'string') {
                cb(makeError('vault', err ? i18n.t('This tab could not open its saved room key: {message}',
                    {message: err.message}) : i18n.t('This tab could not open its saved room key.')));
                return;
            }
            self.memberKey = state.member_key;
            try {
                if (typeof state.dh_sk === 'string' && typeof state.sig_seed === 'string') {
                    self.session = sc.sessionFromSaved({dhSk: state.dh_sk, sigSeed: state.sig_seed});
                } else {
                    self.session = sc.newSession();
                    fresh = true;
                }
            } catch (e) {
                cb(makeError('vault', i18n.t('This tab\'s saved keys are damaged.')));
                return;
            }
            // The vault's change_seq, not the saved cursor: the cursor has moved past later
            // messages, the membership has not changed since.
            if (isWholeNumber(state.change_seq)) {
                self.changeSeq = state.change_seq;
            }
            self.floor = isWholeNumber(state.floor) ? state.floor : 0;
            self.newest = self.floor;
            self.highestSeen = self.floor;
            self.restoredSeen = state.seen && state.seen.length ? state.seen.slice(0, VAULT_SEEN) : [];
            meta = state.meta || {};
            for (k in state.epochs || {}) {
                if (has(state.epochs, k) && /^[0-9]+$/.test(k) && Number(k) >= self.floor && meta[k] &&
                        isWholeNumber(meta[k].at) && meta[k].members && meta[k].members.length) {
                    numbers.push(Number(k));
                }
            }
            eachInTurn(numbers, function (n, next) {
                var key;
                try {
                    key = sc.unb64u(state.epochs[String(n)]);
                } catch (e) {
                    next();
                    return;
                }
                sc.epochFromKey(self.roomId, n, key, function (err2, ep) {
                    var m = meta[String(n)];
                    if (!err2 && !self.closed) {
                        self.epochs[n] = {ep: ep, at: m.at, members: m.members.slice(), by: m.by || null, timer: null};
                        if (n > self.newest) {
                            self.newest = n;
                            self.highestSeen = n;
                        }
                    }
                    next();
                });
            }, function () {
                var i;
                if (self.closed) {
                    return;
                }
                for (i = 0; i < self.restoredSeen.length; i++) {
                    self.seenList.push([self.restoredSeen[i], self.floor]);
                }
                self.opened = true;
                if (fresh) {
                    // The new keys are in the vault before anyone sees them announced: a reload
                    // right after cannot come back with other keys.
                    self.persist(function () {
                        cb(null);
                    });
                } else {
                    cb(null);
                }
            });
        });
    };

    function makeError(code, message) {
        var e = new Error(message);
        e.code = code;
        return e;
    }

    /**
     * The vault state (PROTOCOL.md, "Reload vault"), plus `meta` (each held epoch's `at` and
     * members, so the sender's rule still holds after a reload) and `change_seq`. Only the
     * newest epoch is kept: it is the floor, and older ones would be refused after a reload.
     */
    Keyring.prototype.state = function () {
        var sc = this.sc, cur = this.epochs[this.newest], epochs = {}, meta = {}, seen = [], i;
        if (cur && cur.ep && cur.ep.raw) {
            epochs[String(this.newest)] = sc.b64u(cur.ep.raw);
            meta[String(this.newest)] = {at: cur.at, members: cur.members.slice(), by: cur.by};
        }
        for (i = Math.max(0, this.seenList.length - VAULT_SEEN); i < this.seenList.length; i++) {
            if (this.seenList[i][1] >= this.newest) {
                seen.push(this.seenList[i][0]);
            }
        }
        return {member_key: this.memberKey, dh_sk: sc.b64u(this.session.dhSk), sig_seed: sc.b64u(this.session.sigSeed),
            epochs: epochs, floor: this.newest, seen: seen, meta: meta, change_seq: this.changeSeq};
    };

    /**
     * Seals the state into the vault and hands it to deps.saveVault; cb (optional) runs once a
     * seal that includes every change made before this call is stored. Seals never overlap.
     */
    Keyring.prototype.persist = function (cb) {
        var self = this, waiting;
        if (cb) {
            this.persistWaiters.push(cb);
        }
        if (this.closed || !this.opened || !this.resumeKey || !this.session) {
            waiting = this.persistWaiters;
            this.persistWaiters = [];
            while (waiting.length) {
                waiting.shift()();
            }
            return;
        }
        if (this.sealing) {
            this.dirty = true;
            return;
        }
        this.sealing = true;
        this.dirty = false;
        waiting = this.persistWaiters;
        this.persistWaiters = [];
        this.sc.vaultSeal(this.resumeKey, this.roomId, this.me, this.state(), function (err, vault) {
            self.sealing = false;
            if (!err && !self.closed) {
                self.deps.saveVault(vault);
            }
            while (waiting.length) {
                waiting.shift()();
            }
            if (self.dirty || self.persistWaiters.length) {
                self.persist();
            }
        });
    };

    // ---- safety code ---------------------------------------------------------------------------

    /**
     * Emits {type: 'safety', code, members: [{user, fingerprint}]} for the present members with
     * accepted announcements (this member included), after any change of them.
     */
    Keyring.prototype.emitSafety = function () {
        var self = this, sc = this.sc, run = ++this.safetyRun, present = this.deps.members(), list = [], i, ann;
        if (!this.opened) {
            return;
        }
        for (i = 0; i < present.length; i++) {
            ann = this.pins[present[i]];
            if (ann) {
                list.push({user: present[i], dh: ann.dh, sig: ann.sig, ann: ann});
            }
        }
        list.sort(byUtf8(sc));
        eachInTurn(list, function (m, next) {
            if (m.ann.fingerprint) {
                next();
                return;
            }
            sc.fingerprint(m.dh, m.sig, function (err, fp) {
                m.ann.fingerprint = err ? '' : fp;
                next();
            });
        }, function () {
            var members = [], j, entries = [];
            if (run !== self.safetyRun || self.closed) {
                return;
            }
            for (j = 0; j < list.length; j++) {
                members.push({user: list[j].user, fingerprint: list[j].ann.fingerprint});
                entries.push({user: list[j].user, dh: list[j].dh, sig: list[j].sig});
            }
            if (!entries.length) {
                self.deps.emit({type: 'safety', code: '', members: members});
                return;
            }
            sc.safetyCode(self.roomId, entries, function (err, code) {
                if (run === self.safetyRun && !self.closed) {
                    self.deps.emit({type: 'safety', code: err ? '' : code, members: members});
                }
            });
        });
    };

    // ---- end -----------------------------------------------------------------------------------

    /** Leave, removal or the end of the session: every key and timer goes. */
    Keyring.prototype.close = function () {
        var k;
        this.closed = true;
        this.clearTimer(this.waitTimer);
        this.waitTimer = null;
        this.clearTimer(this.flushTimer);
        this.flushTimer = null;
        for (k in this.newcomers) {
            if (has(this.newcomers, k)) {
                this.clearTimer(this.newcomers[k]);
            }
        }
        for (k in this.epochs) {
            if (has(this.epochs, k)) {
                this.clearTimer(this.epochs[k].timer);
                this.epochs[k].ep = null;
            }
        }
        this.newcomers = {};
        this.epochs = {};
        this.pins = {};
        this.waiters = [];
        this.persistWaiters = [];
        this.seenList = [];
        this.restoredSeen = [];
        this.session = null;
        this.memberKey = null;
        this.resumeKey = null;
    };

    Seal.epochs = {
        /**
         * @param {Object} deps see Keyring
         * @returns {Keyring}
         */
        init: function (deps) {
            return new Keyring(deps);
        },
        Keyring: Keyring,
        KEY_WAIT_MS: KEY_WAIT_MS,
        NEWCOMER_WAIT_MS: NEWCOMER_WAIT_MS,
        OLD_KEY_MS: OLD_KEY_MS,
        VAULT_SEEN: VAULT_SEEN
    };
}(this));
