/*
 * Seal.wakelock: keeps the screen on where the browser offers the Screen Wake Lock API, and
 * asks again whenever the page becomes visible (the browser drops the lock when it is hidden).
 * Where the API is missing or refused, nothing happens beyond the reported state.
 * States: 'on', 'off' (refused or released), 'unsupported'.
 */
(function (root) {
    'use strict';

    var Seal = root.Seal = root.Seal || {};
    var doc = root.document;

    function supported() {
        var nav = root.navigator;
        return !!(nav && nav.wakeLock && typeof nav.wakeLock.request === 'function');
    }

    function keep(onState) {
        var sentinel = null, wanted = true, asking = false;
        var report = typeof onState === 'function' ? onState : function () {};

        function request() {
            var promise;
            if (!wanted || asking || sentinel || doc.visibilityState === 'hidden') {
                return;
            }
            asking = true;
            try {
                promise = root.navigator.wakeLock.request('screen');
            } catch (e) {
                asking = false;
                report('off');
                return;
            }
            promise.then(function (lock) {
                asking = false;
                if (!wanted) {
                    lock.release();
                    return;
                }
                sentinel = lock;
                report('on');
                lock.addEventListener('release', function () {
                    if (sentinel === lock) {
                        sentinel = null;
                        report('off');
                    }
                });
            }, function () {
                asking = false;
                report('off');
            });
        }

        if (!supported()) {
            report('unsupported');
            return {release: function () {}};
        }
        doc.addEventListener('visibilitychange', function () {
            if (doc.visibilityState === 'visible') {
                request();
            }
        }, false);
        request();
        return {
            release: function () {
                wanted = false;
                if (sentinel) {
                    sentinel.release();
                    sentinel = null;
                }
            }
        };
    }

    Seal.wakelock = {supported: supported, keep: keep};
}(this));
