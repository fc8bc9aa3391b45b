/*
 * Seal.language: the language switcher. Choosing a language stores it on this device (a
 * year-long cookie the server reads to render every page in it) and reloads the page, which the
 * server then sends in that language; the chat page resumes its room from the tab's sealed vault.
 */
(function (root) {
    'use strict';

    var Seal = root.Seal = root.Seal || {};
    var doc = root.document;
    var COOKIE = 'sealchat_lang';
    var YEAR = 365 * 24 * 3600;

    /**
     * Remembers `tag` (a BCP 47 tag the server offers) on this device.
     * @param {string} tag
     */
    function remember(tag) {
        doc.cookie = COOKIE + '=' + encodeURIComponent(tag) + '; path=/; max-age=' + YEAR + '; samesite=lax';
    }

    /** Wires every select.language-switcher on the page. */
    function init() {
        var selects = doc.querySelectorAll ? doc.querySelectorAll('select.language-switcher') : [], i;
        function changed() {
            remember(this.value);
            root.location.reload();
        }
        for (i = 0; i < selects.length; i += 1) {
            selects[i].onchange = changed;
        }
    }

    Seal.language = {init: init, remember: remember, COOKIE: COOKIE};
    if (doc && doc.readyState === 'loading') {
        doc.addEventListener('DOMContentLoaded', init);
    } else if (doc) {
        init();
    }
}(this));
