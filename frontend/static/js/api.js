/*
 * Seal.api: the JSON API over XMLHttpRequest (docs/API.md). Every POST carries the XSRF token
 * from the _xsrf cookie; session calls carry the bearer token. Callbacks get (err, data) where
 * err is {code, message, status, retryAfter, network}.
 */
(function (root) {
    'use strict';

    var Seal = root.Seal = root.Seal || {};
    var i18n = Seal.i18n;
    // The session is over for good: the page wipes the tab and returns to the join page.
    var TERMINAL = {session_expired: true, session_ended: true, token_invalid: true, removed: true};
    var DEFAULT_POLL_WAIT = 25; // the server's default, for a page that was not told
    var POLL_MARGIN = 15;

    function makeError(code, message, status, retryAfter) {
        return {code: code, message: message, status: status || 0, retryAfter: retryAfter || 0,
            network: code === 'network' || code === 'timeout'};
    }

    function request(method, path, body, opts, cb) {
        var xhr = new root.XMLHttpRequest(), done = false, timer = null;
        opts = opts || {};
        function finish(err, data) {
            if (!done) {
                done = true;
                if (timer) {
                    root.clearTimeout(timer);
                }
                cb(err, data);
            }
        }
        xhr.open(method, path, true);
        xhr.setRequestHeader('Accept', 'application/json');
        if (method !== 'GET') {
            xhr.setRequestHeader('Content-Type', 'application/json');
            xhr.setRequestHeader('X-XSRFToken', Seal.dom.cookie('_xsrf'));
        }
        if (opts.token) {
            xhr.setRequestHeader('Authorization', 'Bearer ' + opts.token);
        }
        // A timer rather than xhr.timeout, which old engines lack.
        if (opts.timeout) {
            timer = root.setTimeout(function () {
                timer = null;
                finish(makeError('timeout', i18n.t('The server did not answer in time.')));
                try {
                    xhr.abort();
                } catch (e) {
                    // already finished
                }
            }, opts.timeout);
        }
        xhr.onreadystatechange = function () {
            var data, status;
            if (xhr.readyState !== 4) {
                return;
            }
            status = xhr.status;
            if (status === 0) {
                finish(makeError('network', i18n.t('The server cannot be reached.')));
                return;
            }
            try {
                data = JSON.parse(xhr.responseText);
            } catch (e) {
                data = null;
            }
            if (status >= 200 && status < 300 && data) {
                finish(null, data);
            } else if (data && data.type === 'error' && data.code) {
                finish(makeError(data.code, data.message || i18n.t('The server refused the request.'), status,
                    data.retry_after));
            } else {
                finish(makeError(status >= 500 ? 'server' : 'http',
                    i18n.t('The server answered with an error ({status}).', {status: status}), status));
            }
        };
        xhr.send(body === undefined || body === null ? null : JSON.stringify(body));
        return {
            abort: function () {
                done = true;
                if (timer) {
                    root.clearTimeout(timer);
                }
                try {
                    xhr.abort();
                } catch (e) {
                    // already finished
                }
            }
        };
    }

    function lookup(room, username, cb) {
        var path = '/api/rooms/' + encodeURIComponent(room);
        if (username) {
            path += '?username=' + encodeURIComponent(username);
        }
        return request('GET', path, null, {timeout: 15000}, cb);
    }

    // Whether a room name (from an address) names the room of a saved session: the same name,
    // or the same canonical id as the server makes it (NFKC, trimmed, case-folded).
    function sameRoom(saved, name) {
        var s = String(name || '');
        if (!saved) {
            return false;
        }
        if (saved.room === s) {
            return true;
        }
        if (typeof s.normalize === 'function') {
            s = s.normalize('NFKC');
        }
        return saved.roomId === s.replace(/^\s+|\s+$/g, '').toLowerCase();
    }

    Seal.api = {
        TERMINAL: TERMINAL,
        request: request,
        makeError: makeError,
        lookup: lookup,
        sameRoom: sameRoom,
        create: function (body, cb) {
            return request('POST', '/api/rooms', body, {timeout: 20000}, cb);
        },
        join: function (body, cb) {
            return request('POST', '/api/join', body, {timeout: 20000}, cb);
        },
        leave: function (token, cb) {
            return request('POST', '/api/leave', {}, {token: token, timeout: 10000}, cb);
        },
        // wait: the server's poll timeout in seconds (limits.poll_timeout), which the server
        // holds the request for at most; the margin covers a slow network.
        pollEvents: function (token, cursor, welcome, wait, cb) {
            var seconds = wait > 0 ? wait : DEFAULT_POLL_WAIT;
            return request('POST', '/api/poll/events', {cursor: cursor, welcome: !!welcome},
                {token: token, timeout: (seconds + POLL_MARGIN) * 1000}, cb);
        },
        pollSend: function (token, frame, cb) {
            return request('POST', '/api/poll/send', frame, {token: token, timeout: 30000}, cb);
        },
        isTerminal: function (err) {
            return !!(err && TERMINAL[err.code]);
        }
    };
}(this));
