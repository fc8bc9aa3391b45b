/*
 * Seal.idle: shared-device safety. After the server's idle timeout (limits.idle_timeout seconds,
 * 0 = never) without keyboard, pointer, touch or scroll input, the page warns with a countdown,
 * then leaves the room through the page's own Leave button (which ends the session, wipes keys
 * and session storage, and returns to the start page). Time is measured from the clock, not by
 * counting timer ticks, so a throttled background tab still leaves when it wakes.
 */
(function (root) {
    'use strict';

    var Seal = root.Seal;
    var dom = Seal.dom;
    var i18n = Seal.i18n;
    var doc = root.document;
    var WARN_SECONDS = 30;
    // Stands for the countdown in the translated sentence, which is then cut around it: the
    // number goes into its own <strong>, wherever the language puts it.
    var MARK = '\uE000';
    // Input only: 'scroll' and 'focus' also fire when the page scrolls to a new message by itself.
    var ACTIVITY = ['keydown', 'mousedown', 'mousemove', 'pointerdown', 'touchstart', 'wheel', 'input'];

    // opts: {timeout: seconds, onIdle: fn, container: node (where the warning goes)}. Returns {stop, reset}.
    function start(opts) {
        var timeoutMs = opts.timeout * 1000, warnMs = Math.min(WARN_SECONDS, opts.timeout / 2) * 1000;
        var last = dom.now(), timer = null, stopped = false, warning = null, count = null, text = null, shown = null, i;

        // The warning's sentence for `left` seconds, rebuilt only when its words change (another
        // plural form); otherwise only the number changes, so screen readers do not repeat it all.
        function showSeconds(left) {
            var words = i18n.n('Nobody has used this page for a while. To keep the conversation from the next person at this device, it leaves the room in {seconds} second.',
                'Nobody has used this page for a while. To keep the conversation from the next person at this device, it leaves the room in {seconds} seconds.',
                left, {seconds: MARK}), at = words.indexOf(MARK);
            dom.setText(count, i18n.number(left));
            if (words === shown) {
                return;
            }
            shown = words;
            dom.clear(text);
            if (at < 0) {
                text.appendChild(doc.createTextNode(words + ' '));
                return;
            }
            text.appendChild(doc.createTextNode(words.slice(0, at)));
            text.appendChild(count);
            text.appendChild(doc.createTextNode(words.slice(at + MARK.length) + ' '));
        }

        function build() {
            var stay;
            count = dom.el('strong', {id: 'idle-seconds'});
            text = dom.el('p', {id: 'idle-text'});
            stay = dom.el('button', {type: 'button', id: 'idle-stay', className: 'secondary small',
                text: i18n.t('Stay in the room')});
            warning = dom.el('div', {id: 'idle-warning', className: 'notice error idle-warning',
                role: 'alertdialog', 'aria-live': 'assertive', 'aria-labelledby': 'idle-text'}, [text, stay]);
            showSeconds(Math.ceil(warnMs / 1000));
            dom.show(warning, false);
            opts.container.insertBefore(warning, opts.container.firstChild);
            dom.on(stay, 'click', activity);
        }

        function check() {
            var idle = dom.now() - last, left;
            timer = null;
            if (stopped) {
                return;
            }
            if (idle >= timeoutMs) {
                stop();
                opts.onIdle();
                return;
            }
            if (idle >= timeoutMs - warnMs) {
                left = Math.ceil((timeoutMs - idle) / 1000);
                showSeconds(left);
                dom.show(warning, true);
            } else {
                dom.show(warning, false);
            }
            timer = root.setTimeout(check, Math.min(1000, Math.max(50, timeoutMs - warnMs - idle)));
        }

        function activity() {
            if (stopped) {
                return;
            }
            last = dom.now();
            if (warning && !warning.hasAttribute('hidden')) {
                dom.show(warning, false);
            }
        }

        function stop() {
            var j;
            stopped = true;
            if (timer) {
                root.clearTimeout(timer);
                timer = null;
            }
            for (j = 0; j < ACTIVITY.length; j++) {
                doc.removeEventListener(ACTIVITY[j], activity, true);
            }
        }

        build();
        for (i = 0; i < ACTIVITY.length; i++) {
            doc.addEventListener(ACTIVITY[i], activity, true);
        }
        // Coming back to a hidden tab: act on the time that passed while it slept.
        dom.on(doc, 'visibilitychange', function () {
            if (!stopped && doc.visibilityState === 'visible') {
                if (timer) {
                    root.clearTimeout(timer);
                }
                check();
            }
        });
        check();
        return {stop: stop, reset: activity};
    }

    // The chat page: time out through its own Leave button; never show a page restored from the
    // back/forward cache after the session was wiped.
    function chatPage() {
        var saved = Seal.session.load(), button = dom.byId('leave-button'), seconds;
        dom.on(root, 'pageshow', function (ev) {
            if (ev.persisted && !Seal.session.load()) {
                root.location.replace('/');
            }
        });
        seconds = saved && saved.limits ? Number(saved.limits.idle_timeout) : 0;
        if (!button || !(seconds > 0)) {
            return;
        }
        start({timeout: seconds, container: dom.byId('chat') || dom.byId('main') || doc.body, onIdle: function () {
            if (!button.disabled) {
                button.click();
            }
        }});
    }

    Seal.idle = {start: start};

    if (doc.body && doc.body.getAttribute('data-page') === 'chat') {
        chatPage();
    }
}(this));
