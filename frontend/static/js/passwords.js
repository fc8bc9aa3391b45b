/*
 * Seal.passwords: a strength estimate for the create form, and a password and passphrase
 * generator drawing from crypto.getRandomValues (never Math.random).
 */
(function (root) {
    'use strict';

    var Seal = root.Seal = root.Seal || {};
    var i18n = Seal.i18n;
    var ALPHABET = 'abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789-_!?%+=';
    // Well-known passwords, alone or with a few digits or symbols appended; a longer password
    // that merely starts with one (a passphrase "dragon-...") is not discounted.
    var COMMON = /^(password|passwort|qwerty|azerty|letmein|welcome|admin|iloveyou|monkey|dragon|sealchat|abc123)[0-9\W_]{0,4}$/i;
    var RUNS = ['01234567890', 'abcdefghijklmnopqrstuvwxyz', 'qwertyuiopasdfghjklzxcvbnm', 'azertyuiop'];
    // 256 short, distinct words: each word of a passphrase adds 8 bits.
    var WORDS = [
        'acorn', 'adobe', 'agent', 'alarm', 'album', 'alley', 'amber', 'angle', 'ankle', 'apple', 'apron',
        'arena', 'arrow', 'aspen', 'atlas', 'autumn', 'badge', 'bagel', 'baker', 'bamboo', 'banjo', 'barn',
        'basil', 'basin', 'beach', 'beacon', 'bean', 'berry', 'bison', 'blade', 'blanket', 'bloom', 'bottle',
        'brave', 'breeze', 'brick', 'bridge', 'brook', 'broom', 'bucket', 'bunny', 'butter', 'cabin',
        'cactus', 'camel', 'candle', 'canoe', 'canyon', 'carpet', 'carrot', 'castle', 'cedar', 'cello',
        'chalk', 'cherry', 'chess', 'chimney', 'cider', 'circus', 'citrus', 'clay', 'cliff', 'clock',
        'cloud', 'clover', 'cobalt', 'cocoa', 'comet', 'copper', 'coral', 'cotton', 'cradle', 'crane',
        'crayon', 'creek', 'cricket', 'crystal', 'cumin', 'cupcake', 'daisy', 'dawn', 'delta', 'desert',
        'dingo', 'dolphin', 'donut', 'dragon', 'drum', 'dune', 'eagle', 'easel', 'echo', 'elbow', 'ember',
        'emerald', 'engine', 'falcon', 'fern', 'fiddle', 'fig', 'flame', 'flute', 'forest', 'fossil', 'fox',
        'frost', 'galaxy', 'garden', 'garlic', 'gecko', 'geyser', 'ginger', 'glacier', 'globe', 'goose',
        'granite', 'grape', 'gravel', 'guitar', 'hammer', 'harbor', 'harp', 'hazel', 'helmet', 'heron',
        'hill', 'honey', 'hoop', 'igloo', 'indigo', 'island', 'ivory', 'jacket', 'jade', 'jaguar', 'jasmine',
        'jelly', 'jigsaw', 'jungle', 'kayak', 'kettle', 'kite', 'kiwi', 'koala', 'ladder', 'lagoon',
        'lantern', 'lava', 'lemon', 'lilac', 'lily', 'linen', 'lizard', 'llama', 'lobster', 'lotus', 'lunar',
        'magnet', 'mango', 'maple', 'marble', 'meadow', 'melon', 'mint', 'mirror', 'mitten', 'moose',
        'mosaic', 'moss', 'muffin', 'nectar', 'needle', 'nest', 'noodle', 'nutmeg', 'oasis', 'ocean',
        'olive', 'onion', 'orbit', 'orchid', 'otter', 'owl', 'oyster', 'paddle', 'panda', 'papaya', 'parrot',
        'pasta', 'peach', 'pebble', 'pepper', 'piano', 'pickle', 'pillow', 'pine', 'planet', 'plum',
        'pocket', 'pony', 'poppy', 'prairie', 'pretzel', 'pumpkin', 'puzzle', 'quail', 'quartz', 'quill',
        'rabbit', 'radar', 'radish', 'rain', 'raven', 'reef', 'ribbon', 'river', 'robin', 'rocket', 'rose',
        'ruby', 'saddle', 'saffron', 'salmon', 'sand', 'satin', 'scarf', 'seal', 'shadow', 'shell', 'silver',
        'sketch', 'sled', 'slope', 'snow', 'sofa', 'spark', 'spice', 'spoon', 'spruce', 'squid', 'stone',
        'storm', 'sugar', 'summit', 'sun', 'swan', 'tango', 'teapot', 'thistle', 'thunder', 'tiger',
        'timber', 'toast', 'tomato', 'topaz', 'torch'
    ];
    var SEPARATORS = /[\s\-_.]+/;
    var LISTED = {};
    (function () {
        var i;
        for (i = 0; i < WORDS.length; i++) {
            LISTED[WORDS[i]] = true;
        }
    }());

    // The meter's word for a score from 0 to 4, in the page's language.
    function label(score) {
        switch (score) {
        case 0:
            // TRANSLATORS: the password strength meter's words, from the weakest to the strongest.
            return i18n.t('Too weak');
        case 1:
            return i18n.t('Weak');
        case 2:
            return i18n.t('Fair');
        case 3:
            return i18n.t('Good');
        default:
            return i18n.t('Strong');
        }
    }

    function randomSource() {
        var c = root.crypto || root.msCrypto;
        return c && typeof c.getRandomValues === 'function' ? c : null;
    }

    function available() {
        return randomSource() !== null;
    }

    // A uniform integer in [0, n), n <= 65536, by rejection sampling (no modulo bias).
    function randomIndex(n) {
        var c = randomSource(), buf = new Uint16Array(1), limit = 65536 - (65536 % n);
        if (!c) {
            throw new Error('this browser has no secure random number generator');
        }
        do {
            c.getRandomValues(buf);
        } while (buf[0] >= limit);
        return buf[0] % n;
    }

    function generatePassword(length) {
        var out = '', i;
        length = length || 20;
        for (i = 0; i < length; i++) {
            out += ALPHABET.charAt(randomIndex(ALPHABET.length));
        }
        return out;
    }

    function generatePassphrase(count) {
        var out = [], i;
        count = count || 8;
        for (i = 0; i < count; i++) {
            out.push(WORDS[randomIndex(WORDS.length)]);
        }
        return out.join('-');
    }

    function looksLikePassphrase(pw) {
        var parts = pw.split(SEPARATORS), i, n = 0;
        for (i = 0; i < parts.length; i++) {
            if (/^[A-Za-z][a-z]{2,}$/.test(parts[i])) {
                n++;
            }
        }
        return n;
    }

    // How many words pw has when every one is from the generator's list, else 0: such a
    // passphrase holds exactly 8 bits a word, whoever typed it.
    function listedWords(pw) {
        var parts = pw.toLowerCase().split(SEPARATORS), i;
        for (i = 0; i < parts.length; i++) {
            if (!Object.prototype.hasOwnProperty.call(LISTED, parts[i])) {
                return 0;
            }
        }
        return parts.length;
    }

    // True for "1234", "abcdef", "qwerty", "9876" and the like: a run along a row, either way.
    function isRun(pw) {
        var lower = pw.replace(/[\W_]+$/, '').toLowerCase(), i;
        for (i = 0; i < RUNS.length && lower.length >= 3; i++) {
            if (RUNS[i].indexOf(lower) >= 0 || RUNS[i].split('').reverse().join('').indexOf(lower) >= 0) {
                return true;
            }
        }
        return false;
    }

    // A rough entropy estimate: character classes times length, discounted for repeats,
    // sequences and well-known passwords; the generator's own passphrases count exactly 8 bits a
    // word, other lower-case passphrases about 10.
    function strength(pw) {
        var pool = 0, bits, unique = {}, u = 0, i, words, listed, score;
        if (!pw) {
            return {score: 0, bits: 0, label: label(0)};
        }
        if (/[a-z]/.test(pw)) {
            pool += 26;
        }
        if (/[A-Z]/.test(pw)) {
            pool += 26;
        }
        if (/[0-9]/.test(pw)) {
            pool += 10;
        }
        if (/[^a-zA-Z0-9]/.test(pw)) {
            pool += 33;
        }
        for (i = 0; i < pw.length; i++) {
            if (!unique[pw.charAt(i)]) {
                unique[pw.charAt(i)] = true;
                u++;
            }
        }
        bits = Math.log(Math.max(pool, 2)) / Math.LN2 * Math.min(pw.length, u * 2);
        words = looksLikePassphrase(pw);
        listed = listedWords(pw);
        if (listed) {
            bits = listed * 8;
        } else if (/^[a-z]+([\s\-_.][a-z]+){3,}$/.test(pw)) {
            bits = Math.min(bits, words * 10);
        } else if (words >= 4) {
            bits = Math.max(bits * 0.6, words * 10);
        }
        if (COMMON.test(pw) || isRun(pw) || /^(.)\1+$/.test(pw)) {
            bits = Math.min(bits, 10);
        }
        score = bits < 28 ? 0 : bits < 45 ? 1 : bits < 60 ? 2 : bits < 80 ? 3 : 4;
        return {score: score, bits: Math.round(bits), label: label(score)};
    }

    Seal.passwords = {
        available: available,
        strength: strength,
        generatePassword: generatePassword,
        generatePassphrase: generatePassphrase,
        WORDS: WORDS
    };
}(this));
