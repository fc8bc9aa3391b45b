/*
 * Seal.i18n: the page's words in the page's language. The server renders every page in one
 * locale and loads that locale's catalog (a content-hashed script with SRI that sets
 * root.SealCatalog) before this module; without one, the English source text is used.
 *
 * Catalog shape (made by chat/jscatalog.py from the gettext catalogs):
 *   {lang: 'pl', rtl: false, messages: {msgid: 'text' | ['form0', 'form1', ...]},
 *    plural: function (n) -> index of the plural form,
 *    number: {decimal: ',', group: ' ', minGroup: 2}, time: {pattern: 'HH:mm', am: 'AM', pm: 'PM'}}
 */
(function (root) {
    'use strict';

    var Seal = root.Seal = root.Seal || {};
    var catalog = null;
    var i18n = {};
    var PLACEHOLDER = /\{([A-Za-z0-9_]+)\}/g;

    /**
     * Uses the given catalog, or the page's root.SealCatalog when none is given.
     * @param {Object=} given a catalog of the shape above
     */
    function init(given) {
        catalog = given || root.SealCatalog || null;
    }

    function fill(text, params) {
        if (!params) {
            return text;
        }
        return text.replace(PLACEHOLDER, function (whole, name) {
            return Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : whole;
        });
    }

    function lookup(msgid) {
        var messages = catalog && catalog.messages;
        return messages && Object.prototype.hasOwnProperty.call(messages, msgid) ? messages[msgid] : null;
    }

    /**
     * A sentence in the page's language with its {placeholders} filled.
     * @param {string} msgid the English source sentence (a literal, for extraction)
     * @param {Object=} params placeholder values
     * @return {string}
     */
    function t(msgid, params) {
        var found = lookup(msgid);
        return fill(typeof found === 'string' && found ? found : msgid, params);
    }

    /**
     * The plural form for `count`; {count} is filled with the locale-formatted number.
     * @param {string} singular English singular (a literal)
     * @param {string} plural English plural (a literal)
     * @param {number} count
     * @param {Object=} params more placeholder values
     * @return {string}
     */
    function n(singular, plural, count, params) {
        var found = lookup(singular), text, index, all = {}, key;
        if (params) {
            for (key in params) {
                if (Object.prototype.hasOwnProperty.call(params, key)) {
                    all[key] = params[key];
                }
            }
        }
        all.count = number(count);
        if (found && typeof found === 'object' && catalog.plural) {
            index = catalog.plural(Math.abs(count));
            text = found[index] || found[found.length - 1];
        }
        return fill(text || (count === 1 ? singular : plural), all);
    }

    function group(digits, separator) {
        var out = '', i;
        for (i = 0; i < digits.length; i += 1) {
            if (i > 0 && (digits.length - i) % 3 === 0) {
                out += separator;
            }
            out += digits.charAt(i);
        }
        return out;
    }

    /**
     * A number written the locale's way (decimal and grouping signs from CLDR).
     * @param {number} x
     * @param {number=} maxFractionDigits 0 unless given
     * @return {string}
     */
    function number(x, maxFractionDigits) {
        var signs = (catalog && catalog.number) || {decimal: '.', group: ','};
        var digits = maxFractionDigits || 0, scale = Math.pow(10, digits);
        var rounded = Math.round(Math.abs(x) * scale) / scale, whole = Math.floor(rounded);
        var fraction = digits ? String(Math.round((rounded - whole) * scale) + scale).slice(1).replace(/0+$/, '') : '';
        var text = (whole >= (signs.minGroup === 2 ? 10000 : 1000) ? group(String(whole), signs.group) :
            String(whole)) + (fraction ? signs.decimal + fraction : '');
        return (x < 0 && rounded !== 0 ? '-' : '') + text;
    }

    /**
     * A size in bytes, KB or MB, written the locale's way.
     * @param {number} bytes
     * @return {string}
     */
    function size(bytes) {
        if (bytes >= 1048576) {
            return i18n.t('{size} MB', {size: number(bytes / 1048576, 1)});
        }
        if (bytes >= 1024) {
            return i18n.t('{size} KB', {size: number(Math.round(bytes / 1024))});
        }
        return i18n.n('{count} byte', '{count} bytes', bytes);
    }

    function pad2(v) {
        return v < 10 ? '0' + v : String(v);
    }

    /**
     * The time of day as the locale writes a short time (CLDR pattern: H, HH, h, hh, mm, a).
     * @param {Date|number} when a Date or milliseconds since the epoch
     * @return {string}
     */
    function time(when) {
        var d = typeof when === 'number' ? new Date(when) : when;
        var spec = (catalog && catalog.time) || {pattern: 'HH:mm', am: 'AM', pm: 'PM'};
        var hours = d.getHours(), minutes = d.getMinutes();
        return spec.pattern.replace(/'([^']*)'|HH|H|hh|h|mm|m|a/g, function (token, quoted) {
            if (quoted !== undefined) {
                return quoted;
            }
            switch (token) {
            case 'HH': return pad2(hours);
            case 'H': return String(hours);
            case 'hh': return pad2(hours % 12 || 12);
            case 'h': return String(hours % 12 || 12);
            case 'mm': return pad2(minutes);
            case 'm': return String(minutes);
            default: return hours < 12 ? spec.am : spec.pm;
            }
        });
    }

    /** @return {string} the page's BCP 47 language tag */
    function lang() {
        return (catalog && catalog.lang) || 'en';
    }

    /** @return {boolean} whether the page's language is written right to left */
    function rtl() {
        return !!(catalog && catalog.rtl);
    }

    init();
    i18n.init = init;
    i18n.t = t;
    i18n.n = n;
    i18n.number = number;
    i18n.size = size;
    i18n.time = time;
    i18n.lang = lang;
    i18n.rtl = rtl;
    Seal.i18n = i18n;
}(this));
