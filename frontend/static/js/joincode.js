/*
 * Seal.joincode: a room's current join code with its countdown, for members (GET /api/joincode),
 * and the authenticator QR code (GET /api/joincode/qr, fetched with the bearer token and shown
 * from a blob: URL because an <img> cannot send the token). Rooms without a join code show
 * nothing. On the chat page it adds its panel to the sidebar by itself.
 */
(function (root) {
    'use strict';

    var Seal = root.Seal;
    var dom = Seal.dom, api = Seal.api, i18n = Seal.i18n;
    var doc = root.document;
    var RETRY_MS = 5000;

    // ui: {box, code, expires, progress} (nodes; progress optional). Returns {stop: fn}.
    function watch(token, ui, onInfo) {
        var stopped = false, timer = null, expiresAt = 0, step = 30, req = null;

        function later(fn, ms) {
            if (timer) {
                root.clearTimeout(timer);
            }
            timer = root.setTimeout(function () {
                timer = null;
                if (!stopped) {
                    fn();
                }
            }, ms);
        }

        function tick() {
            var left = Math.ceil((expiresAt - dom.now()) / 1000);
            if (left <= 0) {
                fetch();
                return;
            }
            // TRANSLATORS: s for seconds.
            dom.setText(ui.expires, i18n.t('New code in {seconds} s', {seconds: i18n.number(left)}));
            if (ui.progress) {
                ui.progress.max = step;
                ui.progress.value = left;
            }
            later(tick, 1000 - (dom.now() % 1000) + 20);
        }

        function fetch() {
            req = api.request('GET', '/api/joincode', null, {token: token, timeout: 15000}, function (err, info) {
                req = null;
                if (stopped) {
                    return;
                }
                if (err) {
                    if (err.code === 'not_found' || api.isTerminal(err)) {
                        dom.show(ui.box, false);
                        stopped = true;
                        return;
                    }
                    if (expiresAt <= dom.now()) {
                        dom.setText(ui.code, '······');
                        dom.setText(ui.expires, i18n.t('Waiting for the server…'));
                    }
                    later(fetch, RETRY_MS);
                    return;
                }
                step = info.step || 30;
                // A code fetched in its last second is refreshed right after the step ends.
                expiresAt = dom.now() + Math.max(1, info.expires_in) * 1000;
                dom.setText(ui.code, info.code);
                ui.code.setAttribute('data-code', info.code);
                dom.show(ui.box, true);
                if (onInfo) {
                    onInfo(info);
                }
                tick();
            });
        }

        fetch();
        return {
            stop: function () {
                stopped = true;
                if (timer) {
                    root.clearTimeout(timer);
                }
                if (req) {
                    req.abort();
                }
            }
        };
    }

    // cb(err, url): a blob: URL of the authenticator QR code (an SVG); revoke it when done.
    function fetchQr(token, cb) {
        var xhr = new root.XMLHttpRequest();
        if (!root.Blob || !root.URL || typeof root.URL.createObjectURL !== 'function') {
            cb(api.makeError('unsupported', i18n.t('This browser cannot show the QR code.')));
            return;
        }
        xhr.open('GET', '/api/joincode/qr', true);
        xhr.setRequestHeader('Authorization', 'Bearer ' + token);
        xhr.responseType = 'blob';
        xhr.timeout = 15000;
        xhr.onreadystatechange = function () {
            if (xhr.readyState !== 4) {
                return;
            }
            if (xhr.status === 200 && xhr.response) {
                cb(null, root.URL.createObjectURL(xhr.response));
            } else {
                cb(api.makeError('http', i18n.t('The QR code could not be loaded.'), xhr.status));
            }
        };
        xhr.send(null);
    }

    // The chat page's panel: the code for everyone in the room, the QR code on request (and at
    // once for the member who has just created the room).
    function chatPanel() {
        var saved = Seal.session.load(), side = doc.querySelector ? doc.querySelector('aside.sidebar') : null;
        var box, code, expires, button, img, qrUrl = null, watcher;
        if (!saved || !side || saved.joinCode === false) {
            return;
        }
        code = dom.el('strong', {id: 'joincode-code', className: 'joincode-code', text: '······'});
        expires = dom.el('span', {id: 'joincode-expires', className: 'hint'});
        button = dom.el('button', {type: 'button', id: 'joincode-qr-button', className: 'secondary small',
            text: i18n.t('Show QR code for an authenticator app')});
        img = dom.el('img', {id: 'joincode-qr', className: 'joincode-qr',
            alt: i18n.t('QR code of the join-code secret, for an authenticator app'), width: '200', height: '200'});
        dom.show(img, false);
        box = dom.el('section', {id: 'joincode-panel', className: 'joincode', 'aria-label': i18n.t('Join code')}, [
            dom.el('h2', {text: i18n.t('Join code')}),
            dom.el('p', null, [code, ' ', expires]),
            dom.el('p', {className: 'hint', text: i18n.t(
                'Joiners need the password and this code. Anyone who adds the room to an authenticator app can read the codes there; keep that QR code private.'
            )}),
            button, img
        ]);
        dom.show(box, false);
        side.insertBefore(box, dom.byId('settings') || null);

        function showQr() {
            if (qrUrl) {
                dom.show(img, true);
                return;
            }
            button.disabled = true;
            fetchQr(saved.token, function (err, url) {
                button.disabled = false;
                if (err) {
                    dom.setText(button, i18n.t('QR code unavailable; try again'));
                    return;
                }
                qrUrl = url;
                img.src = url;
                dom.show(img, true);
                dom.setText(button, i18n.t('Hide QR code'));
            });
        }
        dom.on(button, 'click', function () {
            if (qrUrl && !img.hasAttribute('hidden')) {
                dom.show(img, false);
                dom.setText(button, i18n.t('Show QR code for an authenticator app'));
                return;
            }
            showQr();
        });
        function revokeQr() {
            if (qrUrl) {
                root.URL.revokeObjectURL(qrUrl);
                qrUrl = null;
            }
        }
        dom.on(root, 'pagehide', revokeQr);
        watcher = watch(saved.token, {box: box, code: code, expires: expires}, function () {
            if (saved.joinCodeNew) {
                saved.joinCodeNew = false;
                Seal.session.update({joinCodeNew: false});
                showQr();
            }
        });
        // Leave: the code, the secret's QR code and the panel go with the rest of the room.
        Seal.joincode.panel = {
            remove: function () {
                watcher.stop();
                revokeQr();
                img.removeAttribute('src');
                if (box.parentNode) {
                    box.parentNode.removeChild(box);
                }
            }
        };
    }

    Seal.joincode = {watch: watch, fetchQr: fetchQr, panel: null};

    if (doc.body && doc.body.getAttribute('data-page') === 'chat') {
        chatPanel();
    }
}(this));
