/*
 * Seal.dom: small DOM helpers shared by every page. User data only ever reaches the page as
 * text nodes or as attributes set one by one; links are built from http(s) URLs only.
 */
(function (root) {
    'use strict';

    var Seal = root.Seal = root.Seal || {};
    var i18n = Seal.i18n;
    var doc = root.document;
    var URL_RE = /https?:\/\/[^\s<>"']+/gi;
    var TRAILING_RE = /[.,;:!?'")\]}>]+$/;

    function byId(id) {
        return doc.getElementById(id);
    }

    function setText(node, text) {
        if ('textContent' in node) {
            node.textContent = text;
        } else {
            node.innerText = text;
        }
    }

    // el('a', {href: u, className: 'x', text: 't'}, [child, 'text'])
    function el(tag, props, children) {
        var node = doc.createElement(tag), k, i, c;
        if (props) {
            for (k in props) {
                if (Object.prototype.hasOwnProperty.call(props, k) && props[k] !== undefined && props[k] !== null) {
                    if (k === 'text') {
                        setText(node, String(props[k]));
                    } else if (k === 'className') {
                        node.className = props[k];
                    } else {
                        node.setAttribute(k, String(props[k]));
                    }
                }
            }
        }
        if (children) {
            for (i = 0; i < children.length; i++) {
                c = children[i];
                if (c !== null && c !== undefined) {
                    node.appendChild(typeof c === 'string' ? doc.createTextNode(c) : c);
                }
            }
        }
        return node;
    }

    function clear(node) {
        while (node.firstChild) {
            node.removeChild(node.firstChild);
        }
    }

    function show(node, visible) {
        if (!node) {
            return;
        }
        if (visible) {
            node.removeAttribute('hidden');
        } else {
            node.setAttribute('hidden', '');
        }
    }

    function on(node, type, fn) {
        if (node) {
            node.addEventListener(type, fn, false);
        }
    }

    function isSafeUrl(url) {
        return /^https?:\/\/[^\s<>"']+$/i.test(url);
    }

    // Text with http(s) URLs turned into links; everything is a text node or an <a> made here.
    function linkify(text) {
        var frag = doc.createDocumentFragment(), last = 0, m, url, trail, a;
        URL_RE.lastIndex = 0;
        while ((m = URL_RE.exec(text)) !== null) {
            url = m[0];
            trail = TRAILING_RE.exec(url);
            if (trail) {
                url = url.slice(0, url.length - trail[0].length);
            }
            if (m.index > last) {
                frag.appendChild(doc.createTextNode(text.slice(last, m.index)));
            }
            if (isSafeUrl(url) && url.length > 8) {
                a = el('a', {href: url, rel: 'noopener noreferrer', target: '_blank', text: url});
                frag.appendChild(a);
            } else {
                frag.appendChild(doc.createTextNode(url));
            }
            last = m.index + url.length;
            URL_RE.lastIndex = last;
        }
        if (last < text.length) {
            frag.appendChild(doc.createTextNode(text.slice(last)));
        }
        return frag;
    }

    function cookie(name) {
        var parts = (doc.cookie || '').split(';'), i, kv;
        for (i = 0; i < parts.length; i++) {
            kv = parts[i].replace(/^\s+/, '');
            if (kv.indexOf(name + '=') === 0) {
                return decodeURIComponent(kv.slice(name.length + 1));
            }
        }
        return '';
    }

    // "1.5 MB", "300 KB", "20 bytes", in the page's language.
    function formatBytes(n) {
        return i18n.size(n);
    }

    // "10 minutes", "1 minute", "45 seconds": a wait in words, rounded up to whole minutes past one.
    function formatDuration(seconds) {
        var s = Math.max(0, Math.ceil(seconds)), m;
        if (s < 60) {
            return i18n.n('{count} second', '{count} seconds', s);
        }
        m = Math.ceil(s / 60);
        return i18n.n('{count} minute', '{count} minutes', m);
    }

    // A wait exactly, for someone who has to wait it out: "20 seconds", "10 minutes (600 seconds)".
    function formatWait(seconds) {
        var s = Math.max(0, Math.ceil(seconds)), exactly;
        if (s < 60) {
            return formatDuration(s);
        }
        exactly = i18n.n('{count} second', '{count} seconds', s);
        // TRANSLATORS: a wait rounded to minutes, then exactly: "10 minutes (600 seconds)".
        return i18n.t('{minutes} ({seconds})', {minutes: formatDuration(s), seconds: exactly});
    }

    // A running clock in short words: "45 s", "2 min 43 s", "1 h 5 min".
    function formatSpan(seconds) {
        var s = Math.max(0, Math.round(seconds)), m = Math.floor(s / 60), h = Math.floor(m / 60);
        if (s < 60) {
            // TRANSLATORS: a short running clock, s for seconds.
            return i18n.t('{s} s', {s: i18n.number(s)});
        }
        if (m < 60) {
            // TRANSLATORS: a short running clock, min for minutes and s for seconds.
            return s % 60 ? i18n.t('{m} min {s} s', {m: i18n.number(m), s: i18n.number(s % 60)}) :
                i18n.t('{m} min', {m: i18n.number(m)});
        }
        // TRANSLATORS: a short running clock, h for hours and min for minutes.
        return m % 60 ? i18n.t('{h} h {m} min', {h: i18n.number(h), m: i18n.number(m % 60)}) :
            i18n.t('{h} h', {h: i18n.number(h)});
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

    // The time of day as the page's language writes it ("14:05", "2:05 PM").
    function formatTime(ms) {
        return i18n.time(new Date(typeof ms === 'number' ? ms : new Date().getTime()));
    }

    function debounce(fn, ms) {
        var timer = null;
        return function () {
            var self = this, args = arguments;
            if (timer) {
                root.clearTimeout(timer);
            }
            timer = root.setTimeout(function () {
                timer = null;
                fn.apply(self, args);
            }, ms);
        };
    }

    function now() {
        return new Date().getTime();
    }

    // Says `text` to screen readers through the page's polite live region (#announcer, visually
    // hidden), one short paragraph per event; the oldest go once there are more than ANNOUNCED.
    var ANNOUNCED = 20;
    function announce(text) {
        var region = byId('announcer');
        if (!region || !text) {
            return;
        }
        region.appendChild(el('p', {text: text}));
        while (region.childNodes.length > ANNOUNCED) {
            region.removeChild(region.firstChild);
        }
    }

    // Light/dark: follows the system unless the user picked one (kept in localStorage).
    function initTheme() {
        var html = doc.documentElement, stored;
        try {
            stored = root.localStorage.getItem('sealchat.theme');
        } catch (e) {
            stored = null;
        }
        function apply(theme) {
            html.className = html.className.replace(/\s*theme-(dark|light)/g, '');
            if (theme === 'dark' || theme === 'light') {
                html.className += ' theme-' + theme;
            }
        }
        function current() {
            if (/theme-dark/.test(html.className)) {
                return 'dark';
            }
            if (/theme-light/.test(html.className)) {
                return 'light';
            }
            return root.matchMedia && root.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
        }
        apply(stored);
        function toggle() {
            var next = current() === 'dark' ? 'light' : 'dark';
            apply(next);
            try {
                root.localStorage.setItem('sealchat.theme', next);
            } catch (e) {
                // private mode: the choice lasts for this page only
            }
        }
        on(byId('theme-toggle'), 'click', toggle);
        on(byId('theme-toggle-settings'), 'click', toggle); // the chat page's, in its settings on phones
    }

    Seal.dom = {
        byId: byId,
        el: el,
        setText: setText,
        clear: clear,
        show: show,
        on: on,
        isSafeUrl: isSafeUrl,
        linkify: linkify,
        cookie: cookie,
        formatBytes: formatBytes,
        formatDuration: formatDuration,
        formatWait: formatWait,
        formatSpan: formatSpan,
        formatTime: formatTime,
        indexOf: indexOf,
        debounce: debounce,
        now: now,
        announce: announce
    };

    initTheme();
}(this));
