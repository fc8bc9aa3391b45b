/*
 * Seal.Transport: moves frames and events between the page and the server. WebSocket first;
 * long-poll (POST /api/poll/events by cursor, POST /api/poll/send per frame) when WebSocket is
 * missing, fails to connect or keeps dropping, with a periodic attempt to switch back. A
 * setting forces long-poll. Events are passed on as they arrive; the room de-duplicates them.
 *
 * opts: {token, cursor: function () -> int, onEvent(ev), onState({mode, state, detail}),
 *        onTerminal(err), forcePoll: bool, pollTimeout: seconds (the server's limits.poll_timeout)}
 * States: connecting, connected, reconnecting, closed.
 */
(function (root) {
    'use strict';

    var Seal = root.Seal;
    var api = Seal.api, i18n = Seal.i18n;

    var WS_OPEN_TIMEOUT_MS = 8000;
    var WS_FAILURES_BEFORE_POLL = 2;
    var WS_DROPS_BEFORE_POLL = 3;
    var WS_DROP_WINDOW_MS = 60000;
    var WS_RETRY_FROM_POLL_MS = 30000;
    var MAX_BACKOFF_MS = 8000;
    var CLOSE_REPLACED = 4000;
    var CLOSE_REFUSED = 4001;
    var CLOSE_ENDED = 4002;
    var CLOSE_REMOVED = 4003;

    function wsUrl() {
        var loc = root.location;
        return (loc.protocol === 'https:' ? 'wss://' : 'ws://') + loc.host + '/ws';
    }

    function Transport(opts) {
        this.opts = opts;
        this.token = opts.token;
        this.forcePoll = !!opts.forcePoll;
        this.mode = null;
        this.state = 'connecting';
        this.detail = '';
        this.closed = false;
        this.ws = null;
        this.wsFailures = 0;
        this.wsDrops = [];
        this.backoff = 500;
        this.timers = {};
        this.pollReq = null;
        this.pollGen = 0;
        this.fetched = 0;
        this.pollWelcome = true;
        this.outbox = [];
        this.sending = false;
        this.pollTimeout = opts.pollTimeout;
    }

    Transport.prototype.wsAvailable = function () {
        return typeof root.WebSocket === 'function' || typeof root.WebSocket === 'object';
    };

    Transport.prototype.start = function () {
        if (this.forcePoll || !this.wsAvailable()) {
            this.startPoll(this.forcePoll ? i18n.t('long-poll chosen in settings') :
                i18n.t('this browser has no WebSocket'));
        } else {
            this.connectWs(false);
        }
    };

    Transport.prototype.setState = function (state, detail) {
        this.state = state;
        this.detail = detail || '';
        this.opts.onState({mode: this.mode, state: state, detail: this.detail});
    };

    Transport.prototype.later = function (name, fn, ms) {
        var self = this;
        this.cancel(name);
        this.timers[name] = root.setTimeout(function () {
            self.timers[name] = null;
            if (!self.closed) {
                fn.call(self);
            }
        }, ms);
    };

    Transport.prototype.cancel = function (name) {
        if (this.timers[name]) {
            root.clearTimeout(this.timers[name]);
            this.timers[name] = null;
        }
    };

    Transport.prototype.terminal = function (err) {
        if (this.closed) {
            return;
        }
        this.close();
        this.setState('closed', err.message);
        this.opts.onTerminal(err);
    };

    Transport.prototype.deliver = function (ev) {
        if (ev && ev.type === 'welcome' && ev.limits && ev.limits.poll_timeout > 0) {
            this.pollTimeout = ev.limits.poll_timeout;
        }
        if (!this.closed) {
            this.opts.onEvent(ev);
        }
    };

    // ---- WebSocket -----------------------------------------------------------------------

    // probe: true when trying to come back from long-poll; polling goes on until it works.
    Transport.prototype.connectWs = function (probe) {
        var self = this, ws, welcomed = false, lastError = null;
        if (!probe) {
            this.mode = 'ws';
            this.setState(this.wsFailures || this.wsDrops.length ? 'reconnecting' : 'connecting');
        }
        try {
            ws = new root.WebSocket(wsUrl());
        } catch (e) {
            this.wsFailed(probe, i18n.t('WebSocket could not be opened'));
            return;
        }
        this.ws = ws;
        this.later('wsOpen', function () {
            if (!welcomed && this.ws === ws) {
                this.detachWs(ws);
                this.wsFailed(probe, i18n.t('WebSocket did not connect in time'));
            }
        }, WS_OPEN_TIMEOUT_MS);
        ws.onopen = function () {
            try {
                ws.send(JSON.stringify({type: 'hello', token: self.token, cursor: self.opts.cursor()}));
            } catch (e) {
                // onclose follows
            }
        };
        ws.onmessage = function (msg) {
            var ev;
            if (self.ws !== ws || self.closed) {
                return;
            }
            try {
                ev = JSON.parse(msg.data);
            } catch (e) {
                return;
            }
            if (!ev || typeof ev !== 'object') {
                return;
            }
            if (ev.type === 'welcome' && !welcomed) {
                welcomed = true;
                self.cancel('wsOpen');
                self.wsFailures = 0;
                self.backoff = 500;
                if (probe) {
                    self.stopPoll();
                    self.wsDrops = [];
                }
                self.mode = 'ws';
                self.deliver(ev);
                self.setState('connected');
                self.flushOutboxToWs();
                return;
            }
            // Kept for onclose: before the welcome any refusal, after it one that ends the session
            // (the host's removal comes as an error frame, then close code 4003).
            if (ev.type === 'error' && (!welcomed || api.TERMINAL[ev.code])) {
                lastError = ev;
            }
            self.deliver(ev);
        };
        ws.onerror = function () {
            // onclose follows with the details
        };
        ws.onclose = function (ce) {
            var code = ce && ce.code;
            if (self.ws !== ws || self.closed) {
                return;
            }
            self.ws = null;
            self.cancel('wsOpen');
            if (code === CLOSE_REFUSED || (lastError && api.TERMINAL[lastError.code])) {
                self.terminal(api.makeError(lastError ? lastError.code : 'token_invalid',
                    lastError ? lastError.message : i18n.t('The server refused this session.'), 401));
                return;
            }
            if (code === CLOSE_REMOVED) {
                self.terminal(api.makeError('removed', lastError && lastError.code === 'removed' ?
                    lastError.message : i18n.t('The host removed you from this room.'), 401,
                    lastError && lastError.retry_after));
                return;
            }
            if (code === CLOSE_ENDED) {
                self.terminal(api.makeError('session_ended',
                    i18n.t('This session has ended; join the room again.'), 401));
                return;
            }
            if (code === CLOSE_REPLACED) {
                self.terminal(api.makeError('replaced', i18n.t(
                    'This conversation was opened in another tab or window, which took it over. Close this tab, or leave there.'
                ), 0));
                return;
            }
            if (welcomed) {
                self.wsDropped();
            } else {
                self.wsFailed(probe, i18n.t('WebSocket could not connect'));
            }
        };
    };

    Transport.prototype.detachWs = function (ws) {
        ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
        try {
            ws.close();
        } catch (e) {
            // already closed
        }
        if (this.ws === ws) {
            this.ws = null;
        }
    };

    Transport.prototype.wsFailed = function (probe, why) {
        if (probe) {
            this.later('probe', function () {
                this.connectWs(true);
            }, WS_RETRY_FROM_POLL_MS);
            return;
        }
        this.wsFailures++;
        if (this.wsFailures >= WS_FAILURES_BEFORE_POLL) {
            this.startPoll(why);
            return;
        }
        this.retryWs();
    };

    Transport.prototype.wsDropped = function () {
        var now = new Date().getTime(), kept = [], i;
        this.wsDrops.push(now);
        for (i = 0; i < this.wsDrops.length; i++) {
            if (now - this.wsDrops[i] < WS_DROP_WINDOW_MS) {
                kept.push(this.wsDrops[i]);
            }
        }
        this.wsDrops = kept;
        if (kept.length >= WS_DROPS_BEFORE_POLL) {
            this.startPoll(i18n.t('the WebSocket connection keeps dropping'));
            return;
        }
        this.retryWs();
    };

    Transport.prototype.retryWs = function () {
        var delay = this.backoff;
        this.backoff = Math.min(MAX_BACKOFF_MS, this.backoff * 2);
        this.setState('reconnecting', i18n.t('WebSocket lost'));
        this.later('reconnect', function () {
            this.connectWs(false);
        }, delay);
    };

    // While a long-poll send is under way its frame stays first in the outbox; the rest follow
    // when it is answered, so nothing goes out twice and the order holds.
    Transport.prototype.flushOutboxToWs = function () {
        var frames = this.outbox;
        if (this.sending) {
            return;
        }
        this.outbox = [];
        while (frames.length) {
            this.send(frames.shift());
        }
    };

    // ---- long-poll -----------------------------------------------------------------------

    Transport.prototype.startPoll = function (why) {
        this.mode = 'poll';
        this.pollWelcome = true;
        this.setState('connecting', why);
        this.pollGen++;
        this.poll(this.pollGen);
        this.pollCheck(this.pollGen);
        if (!this.forcePoll && this.wsAvailable()) {
            this.later('probe', function () {
                this.connectWs(true);
            }, WS_RETRY_FROM_POLL_MS);
        }
    };

    Transport.prototype.stopPoll = function () {
        this.pollGen++;
        this.cancel('poll');
        if (this.pollReq) {
            this.pollReq.abort();
            this.pollReq = null;
        }
    };

    Transport.prototype.poll = function (gen) {
        var self = this, cursor = Math.max(this.opts.cursor(), this.fetched), wait = this.pollTimeout;
        this.pollReq = api.pollEvents(this.token, cursor, this.pollWelcome, wait, function (err, data) {
            var i;
            if (gen !== self.pollGen || self.closed) {
                return;
            }
            self.pollReq = null;
            if (err) {
                if (api.isTerminal(err)) {
                    self.terminal(err);
                    return;
                }
                if (err.code === 'bad_cursor') {
                    self.fetched = 0;
                }
                self.setState('reconnecting', err.message);
                self.later('poll', function () {
                    this.poll(gen);
                }, err.retryAfter ? err.retryAfter * 1000 : self.pollBackoff());
                return;
            }
            self.backoff = 500;
            self.pollWelcome = false;
            if (self.state !== 'connected' || self.mode !== 'poll') {
                self.mode = 'poll';
                self.setState('connected', self.detail);
            }
            if (data.welcome) {
                self.deliver(data.welcome);
            }
            if (data.gap) {
                self.deliver(data.gap);
            }
            for (i = 0; data.events && i < data.events.length; i++) {
                self.deliver(data.events[i]);
            }
            if (typeof data.cursor === 'number') {
                self.fetched = data.cursor;
            }
            self.pumpOutbox();
            self.later('poll', function () {
                this.poll(gen);
            }, 0);
        });
    };

    // The first events request may wait the whole poll timeout; a ping says at once whether
    // the session is live and the server reachable.
    Transport.prototype.pollCheck = function (gen) {
        var self = this;
        api.pollSend(this.token, {type: 'ping'}, function (err) {
            if (gen !== self.pollGen || self.closed) {
                return;
            }
            if (err && api.isTerminal(err)) {
                self.terminal(err);
            } else if (!err && self.state !== 'connected') {
                self.setState('connected', self.detail);
            }
        });
    };

    Transport.prototype.pollBackoff = function () {
        var delay = this.backoff;
        this.backoff = Math.min(MAX_BACKOFF_MS, this.backoff * 2);
        return delay;
    };

    // Frames go one at a time and in order: a file's chunks must follow its announcement.
    Transport.prototype.pumpOutbox = function () {
        var self = this, frame;
        if (this.sending || !this.outbox.length || this.mode !== 'poll' || this.closed) {
            return;
        }
        this.sending = true;
        frame = this.outbox[0];
        api.pollSend(this.token, frame, function (err, data) {
            var retry;
            self.sending = false;
            if (self.closed) {
                return;
            }
            if (err && api.isTerminal(err)) {
                self.terminal(err);
                return;
            }
            retry = err && (err.network || err.code === 'rate_limited' || err.code === 'server');
            if (retry && self.mode === 'poll') {
                self.later('send', function () {
                    this.pumpOutbox();
                }, err.retryAfter ? err.retryAfter * 1000 : 1000);
                return;
            }
            // Failed, but WebSocket is back meanwhile: the frame stays first and goes there.
            if (!retry && self.outbox[0] === frame) {
                self.outbox.shift();
            }
            if (err && !retry) {
                self.deliver({type: 'error', code: err.code, message: err.message, ref: frame.ref});
            } else if (!err && data && data.reply) {
                self.deliver(data.reply);
            }
            if (self.mode === 'poll') {
                self.pumpOutbox();
            } else {
                self.flushOutboxToWs();
            }
        });
    };

    // ---- sending -------------------------------------------------------------------------

    // Returns true when the frame was handed to a connection; frames queued while WebSocket
    // is reconnecting are not kept (the room resends what the server has not echoed).
    Transport.prototype.send = function (frame) {
        if (this.closed) {
            return false;
        }
        if (this.mode === 'ws') {
            if (this.ws && this.state === 'connected' && this.ws.readyState === 1) {
                try {
                    this.ws.send(JSON.stringify(frame));
                    return true;
                } catch (e) {
                    return false;
                }
            }
            return false;
        }
        this.outbox.push(frame);
        this.pumpOutbox();
        return true;
    };

    Transport.prototype.setForcePoll = function (force) {
        this.forcePoll = !!force;
        if (this.closed) {
            return;
        }
        if (force && this.mode === 'ws') {
            this.cancel('reconnect');
            this.cancel('wsOpen');
            if (this.ws) {
                this.detachWs(this.ws);
            }
            this.startPoll(i18n.t('long-poll chosen in settings'));
        } else if (!force && this.mode === 'poll' && this.wsAvailable()) {
            this.wsFailures = 0;
            this.wsDrops = [];
            this.connectWs(true);
        } else if (force) {
            this.cancel('probe');
            this.cancel('wsOpen');
            if (this.ws) {
                this.detachWs(this.ws); // a switch-back attempt under way must not take over
            }
        }
    };

    Transport.prototype.close = function () {
        var name;
        if (this.closed) {
            return;
        }
        this.closed = true;
        for (name in this.timers) {
            if (Object.prototype.hasOwnProperty.call(this.timers, name)) {
                this.cancel(name);
            }
        }
        this.stopPoll();
        if (this.ws) {
            this.detachWs(this.ws);
        }
    };

    Seal.Transport = Transport;
}(this));
