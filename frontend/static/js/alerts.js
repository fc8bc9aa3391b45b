/*
 * Seal.alerts: attention while the tab is hidden - an unread count in the title, an optional
 * beep made with WebAudio (no sound file), and optional desktop notifications that name the
 * sender but never show message text.
 */
(function (root) {
    'use strict';

    var Seal = root.Seal;
    var i18n = Seal.i18n;
    var doc = root.document;
    var baseTitle = doc.title;
    var unread = 0;
    var audio = null;
    var prefs = {sound: false, notify: false};

    function hidden() {
        if (typeof doc.hidden === 'boolean') {
            return doc.hidden;
        }
        return typeof doc.hasFocus === 'function' ? !doc.hasFocus() : false;
    }

    function updateTitle() {
        doc.title = unread > 0 ? i18n.t('({count}) {title}', {count: i18n.number(unread), title: baseTitle}) : baseTitle;
    }

    function setTitle(title) {
        baseTitle = title;
        updateTitle();
    }

    function reset() {
        unread = 0;
        updateTitle();
    }

    function audioContext() {
        var Ctx = root.AudioContext || root.webkitAudioContext;
        if (!audio && Ctx) {
            try {
                audio = new Ctx();
            } catch (e) {
                audio = null;
            }
        }
        return audio;
    }

    function beep() {
        var ctx = audioContext(), osc, gain, t;
        if (!ctx) {
            return;
        }
        try {
            if (ctx.state === 'suspended' && ctx.resume) {
                ctx.resume();
            }
            t = ctx.currentTime;
            osc = ctx.createOscillator();
            gain = ctx.createGain();
            osc.type = 'sine';
            osc.frequency.value = 880;
            gain.gain.setValueAtTime(0.0001, t);
            gain.gain.exponentialRampToValueAtTime(0.15, t + 0.02);
            gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.25);
            osc.connect(gain);
            gain.connect(ctx.destination);
            osc.start(t);
            osc.stop(t + 0.3);
        } catch (e) {
            // no sound on this device
        }
    }

    function notificationsSupported() {
        return typeof root.Notification === 'function';
    }

    // Must run from a click, so the browser allows the permission prompt and the audio context.
    function enable(kind, on, cb) {
        prefs[kind] = !!on;
        if (kind === 'sound' && on) {
            audioContext();
        }
        if (kind === 'notify' && on) {
            if (!notificationsSupported()) {
                prefs.notify = false;
                cb(false);
                return;
            }
            if (root.Notification.permission === 'granted') {
                cb(true);
                return;
            }
            var answered = function (result) {
                prefs.notify = result === 'granted';
                cb(prefs.notify);
            };
            var p = root.Notification.requestPermission(answered);
            if (p && typeof p.then === 'function') {
                p.then(answered);
            }
            return;
        }
        if (cb) {
            cb(prefs[kind]);
        }
    }

    // A new message from someone else arrived.
    function incoming(from, roomName) {
        var n;
        if (!hidden()) {
            return;
        }
        unread++;
        updateTitle();
        if (prefs.sound) {
            beep();
        }
        if (prefs.notify && notificationsSupported() && root.Notification.permission === 'granted') {
            try {
                n = new root.Notification(i18n.t('Sealchat: {room}', {room: roomName}),
                    {body: i18n.t('New message from {user}', {user: from}), tag: 'sealchat'});
                n.onclick = function () {
                    root.focus();
                    n.close();
                };
            } catch (e) {
                // some engines only allow notifications from a service worker
            }
        }
    }

    function onVisible() {
        if (!hidden()) {
            reset();
        }
    }

    Seal.dom.on(doc, 'visibilitychange', onVisible);
    Seal.dom.on(root, 'focus', onVisible);

    Seal.alerts = {
        setTitle: setTitle,
        incoming: incoming,
        enable: enable,
        reset: reset,
        beep: beep,
        unread: function () {
            return unread;
        }
    };
}(this));
