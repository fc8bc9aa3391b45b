/*
 * Seal.session: what this tab keeps to resume after a reload, a one-time message for the next
 * page, and non-secret preferences (localStorage). Leave, removal and ended sessions wipe it.
 *
 * sessionStorage holds the token, room name and id, username, cursor, a few non-secret page
 * settings (limits, join-code flags) and the vault: member_key, this session's private keys,
 * the epoch keys held, the floor epoch and the ids seen, sealed (SealCrypto.vaultSeal) under
 * the resume_key the server gives only to this session in its join answer and welcomes. No key
 * is stored in the clear, so a copy of sessionStorage alone decrypts nothing.
 */
(function (root) {
    'use strict';

    var Seal = root.Seal = root.Seal || {};
    var KEY = 'sealchat.session';
    var FLASH = 'sealchat.flash';
    var PREFS = 'sealchat.prefs';

    function store(kind) {
        try {
            return root[kind] || null;
        } catch (e) {
            return null;
        }
    }

    function readJson(s, key) {
        var raw;
        if (!s) {
            return null;
        }
        try {
            raw = s.getItem(key);
            return raw ? JSON.parse(raw) : null;
        } catch (e) {
            return null;
        }
    }

    function writeJson(s, key, value) {
        if (!s) {
            return false;
        }
        try {
            s.setItem(key, JSON.stringify(value));
            return true;
        } catch (e) {
            return false;
        }
    }

    var memory = null; // when sessionStorage is unavailable the session lasts for this page only

    function load() {
        var s = readJson(store('sessionStorage'), KEY);
        s = s && typeof s.token === 'string' ? s : memory;
        if (s && s.keys !== undefined) {
            // Saved by protocol version 1 (a message key in the clear): drop it; without a
            // vault the page asks to join again.
            delete s.keys;
            writeJson(store('sessionStorage'), KEY, s);
        }
        return s;
    }

    function save(obj) {
        memory = obj;
        writeJson(store('sessionStorage'), KEY, obj);
    }

    function update(fields) {
        var s = load(), k;
        if (!s) {
            return;
        }
        for (k in fields) {
            if (Object.prototype.hasOwnProperty.call(fields, k)) {
                s[k] = fields[k];
            }
        }
        save(s);
    }

    function wipe() {
        var s = store('sessionStorage');
        memory = null;
        if (s) {
            try {
                s.removeItem(KEY);
            } catch (e) {
                // nothing stored
            }
        }
    }

    function flash(message) {
        writeJson(store('sessionStorage'), FLASH, {message: String(message)});
    }

    function takeFlash() {
        var s = store('sessionStorage'), f = readJson(s, FLASH);
        if (s) {
            try {
                s.removeItem(FLASH);
            } catch (e) {
                // nothing stored
            }
        }
        return f && typeof f.message === 'string' ? f.message : '';
    }

    function pref(name, value) {
        var s = store('localStorage'), prefs = readJson(s, PREFS) || {};
        if (arguments.length < 2) {
            return prefs[name];
        }
        prefs[name] = value;
        writeJson(s, PREFS, prefs);
        return value;
    }

    function showFlash() {
        var node = Seal.dom.byId('flash'), message = takeFlash();
        if (node && message) {
            Seal.dom.setText(node, message);
            Seal.dom.show(node, true);
        }
    }

    Seal.session = {
        load: load,
        save: save,
        update: update,
        wipe: wipe,
        flash: flash,
        takeFlash: takeFlash,
        pref: pref
    };

    showFlash();
}(this));
