/*
 * SealCrypto: the browser side of the sealchat/v2 protocol (docs/PROTOCOL.md, docs/API.md).
 *
 * AES-GCM, HKDF, HMAC-SHA256, SHA-256 and PBKDF2 run on Web Crypto where a real derivation through
 * it works, and on the vendored node-forge plus sealcrypto-worker.js otherwise, so old phones on
 * plain HTTP can take part. X25519, Ed25519 and SHA-512 run on the vendored tweetnacl
 * (window.nacl, loaded by the page before this file) on every browser: Web Crypto has no X25519
 * or Ed25519 on the engines Sealchat serves. Hand-written ES5 with callbacks (cb(err, result))
 * because those engines have nothing newer. Callbacks are always called asynchronously and exactly
 * once. Errors carry a 'code' (see docs/BROWSER-CRYPTO.md).
 */
(function (root) {
    'use strict';

    var VERSION = 2;
    var KDF = 'pbkdf2-sha256';
    var MIN_ITER = 100000;
    var MAX_ITER = 10000000;
    var DEFAULT_ITER = 600000;
    var CHUNK_BYTES = 262144;
    var MAX_MESSAGES_PER_KEY = 8388608; // 2^23 per epoch key, PROTOCOL.md: random 96-bit nonces stay safe below it
    var MAX_SHARED_CACHE = 1024; // X25519 results a session keeps (one per peer key it has granted to)
    var DETECT_TIMEOUT_MS = 10000;
    var SLICE_MS = 40; // main-thread PBKDF2 slice, short enough that the page keeps painting

    var urls = {vendor: null, worker: null, vendorIntegrity: null, workerIntegrity: null};
    var backend; // undefined until detect() has finished, then 'webcrypto', 'fallback' or null
    var detectWaiters = null;
    var forge = null; // the vendored library, once loaded and checked
    var kdfFast = null; // whether SealKdf's fast core passed its self-test on this engine

    // Known answers for the detection round trip (computed with Python's cryptography package).
    var PROBE_IKM = '50eb2638aba358955633de09e9ce279f4abc7bb38d1d7bc083a3462481c9a93d';
    var PROBE_CT = '9945d7b369dc1a6b1f3cb82d2d217e79a2f6';
    var ABC_SHA256 = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
    var PROBE_HMAC = '70f3bf5513c5b3688c2e9dd427b4ae15a352027f380f2fb34e5689b98ce0b956';
    var ABC_SHA512 = 'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a' +
        '2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f';
    // RFC 7748 section 6.1 (X25519) and RFC 8032 section 7.1 test 1 (Ed25519), for tweetnacl's self-test.
    var X_ALICE_SK = '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a';
    var X_BOB_PK = 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f';
    var X_SHARED = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
    var ED_SEED = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';
    var ED_PK = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
    var ED_SIG = 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155' +
        '5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b';
    // The Ed25519 group order L, little-endian: a signature's S must be below it (RFC 8032 5.1.7).
    var ED_L = [0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];

    // Labels (PROTOCOL.md), each used as L(text): the ASCII bytes and one zero byte.
    var LABEL_AUTH = 'sealchat/v1/auth';
    var LABEL_VERIFIER = 'sealchat/v1/verifier';
    var LABEL_MEMBER = 'sealchat/v2/member';
    var LABEL_ANNOUNCE = 'sealchat/v2/announce';
    var LABEL_GRANT = 'sealchat/v2/grant';
    var LABEL_MSG = 'sealchat/v2/msg';
    var LABEL_ENVELOPE = 'sealchat/v2/envelope';
    var LABEL_FILE = 'sealchat/v2/file';
    var LABEL_CHUNK = 'sealchat/v2/chunk';
    var LABEL_SAFETY = 'sealchat/v2/safety';
    var LABEL_FINGERPRINT = 'sealchat/v2/fingerprint';
    var LABEL_VAULT = 'sealchat/v2/vault';

    // ---- small helpers -------------------------------------------------------------------

    /*
     * Runs fn in a task of its own, after the caller has returned: every callback is asynchronous.
     * A MessageChannel message where there is one, because browsers clamp nested setTimeout(0)
     * chains to 4 ms a step (a 200-member rekey is about a thousand steps) and throttle them much
     * harder in hidden tabs; setTimeout otherwise. One message per function, so an exception in one
     * reaches the page's error handler and the others still run. A channel that has delivered
     * nothing a second after its first message is given up for setTimeout, with what it holds.
     */
    var laterQueue = [];
    var laterPort; // undefined until first use, then a MessagePort, or null for setTimeout
    var laterDelivered = 0;
    var LATER_CHECK_MS = 1000;

    function laterFallBack() {
        var fns = laterQueue;
        if (laterDelivered > 0 || !laterPort) {
            return;
        }
        laterPort = null;
        laterQueue = [];
        while (fns.length) {
            root.setTimeout(fns.shift(), 0);
        }
    }

    function later(fn) {
        var ch;
        if (laterPort === undefined) {
            laterPort = null;
            try {
                if (typeof root.MessageChannel === 'function') {
                    ch = new root.MessageChannel();
                    ch.port1.onmessage = function () {
                        laterDelivered++;
                        if (laterQueue.length) {
                            laterQueue.shift()();
                        }
                    };
                    laterPort = ch.port2;
                    root.setTimeout(laterFallBack, LATER_CHECK_MS);
                }
            } catch (e) {
                laterPort = null;
            }
        }
        if (laterPort) {
            laterQueue.push(fn);
            try {
                laterPort.postMessage(0);
                return;
            } catch (e2) {
                laterQueue.pop();
            }
        }
        root.setTimeout(fn, 0);
    }

    function now() {
        return new Date().getTime();
    }

    function fail(code, message) {
        var e = new Error(message);
        e.code = code;
        return e;
    }

    function needCallback(cb) {
        if (typeof cb !== 'function') {
            throw new TypeError('SealCrypto: a callback function is required');
        }
    }

    // Calls back later with an error, so validation failures follow the same path as crypto ones.
    function failLater(cb, err) {
        later(function () {
            cb(err);
        });
    }

    // Progress callbacks belong to the page; one that throws must not stop a derivation.
    function progressFn(onProgress) {
        if (typeof onProgress !== 'function') {
            return function () {};
        }
        return function (fraction) {
            try {
                onProgress(fraction);
            } catch (e) {
                later(function () {
                    throw e;
                });
            }
        };
    }

    // Typed arrays from another realm (iframes, tests) fail instanceof, so look at the tag.
    function isBytes(x) {
        return Object.prototype.toString.call(x) === '[object Uint8Array]';
    }

    function isInt(x) {
        return typeof x === 'number' && isFinite(x) && Math.floor(x) === x;
    }

    function concatBytes(parts) {
        var len = 0, i, out, off = 0;
        for (i = 0; i < parts.length; i++) {
            len += parts[i].length;
        }
        out = new Uint8Array(len);
        for (i = 0; i < parts.length; i++) {
            out.set(parts[i], off);
            off += parts[i].length;
        }
        return out;
    }

    function uint64be(x) {
        var out = new Uint8Array(8), hi = Math.floor(x / 4294967296), lo = x % 4294967296, i;
        for (i = 3; i >= 0; i--) {
            out[i] = hi & 255;
            hi = Math.floor(hi / 256);
            out[4 + i] = lo & 255;
            lo = Math.floor(lo / 256);
        }
        return out;
    }

    function toHex(bytes) {
        var s = '', i, h;
        for (i = 0; i < bytes.length; i++) {
            h = bytes[i].toString(16);
            s += h.length < 2 ? '0' + h : h;
        }
        return s;
    }

    function fromHex(hex) {
        var out = new Uint8Array(hex.length / 2), i;
        for (i = 0; i < out.length; i++) {
            out[i] = parseInt(hex.substr(2 * i, 2), 16);
        }
        return out;
    }

    function toArray(bytes) {
        var out = [], i;
        for (i = 0; i < bytes.length; i++) {
            out.push(bytes[i]);
        }
        return out;
    }

    // Binary strings are what node-forge works on.
    function bytesToStr(bytes) {
        var parts = [], i, j, end, chunk;
        for (i = 0; i < bytes.length; i += 4096) {
            end = Math.min(bytes.length, i + 4096);
            chunk = [];
            for (j = i; j < end; j++) {
                chunk.push(bytes[j]);
            }
            parts.push(String.fromCharCode.apply(null, chunk));
        }
        return parts.join('');
    }

    function strToBytes(str) {
        var out = new Uint8Array(str.length), i;
        for (i = 0; i < str.length; i++) {
            out[i] = str.charCodeAt(i) & 255;
        }
        return out;
    }

    function unitsToString(units) {
        var parts = [], i;
        for (i = 0; i < units.length; i += 4096) {
            parts.push(String.fromCharCode.apply(null, units.slice(i, i + 4096)));
        }
        return parts.join('');
    }

    // ---- encodings -----------------------------------------------------------------------

    var B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    var B64_INDEX = (function () {
        var t = [], i;
        for (i = 0; i < 128; i++) {
            t.push(-1);
        }
        for (i = 0; i < 64; i++) {
            t[B64.charCodeAt(i)] = i;
        }
        return t;
    }());

    /**
     * @param {Uint8Array} bytes
     * @return {string} base64url without padding; TypeError for anything but a Uint8Array
     */
    function b64u(bytes) {
        var out = [], n, i, x;
        if (!isBytes(bytes)) {
            throw new TypeError('b64u: expected a Uint8Array');
        }
        n = bytes.length;
        for (i = 0; i + 2 < n; i += 3) {
            x = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
            out.push(B64.charAt(x >>> 18) + B64.charAt((x >>> 12) & 63) + B64.charAt((x >>> 6) & 63) +
                B64.charAt(x & 63));
        }
        if (n - i === 1) {
            x = bytes[i] << 16;
            out.push(B64.charAt(x >>> 18) + B64.charAt((x >>> 12) & 63));
        } else if (n - i === 2) {
            x = (bytes[i] << 16) | (bytes[i + 1] << 8);
            out.push(B64.charAt(x >>> 18) + B64.charAt((x >>> 12) & 63) + B64.charAt((x >>> 6) & 63));
        }
        return out.join('');
    }

    /**
     * @param {string} str base64url without padding
     * @return {Uint8Array} throws code 'malformed' on bad characters, padding or an impossible length
     */
    function unb64u(str) {
        var out, i, j = 0, c, v, acc = 0, bits = 0;
        if (typeof str !== 'string') {
            throw fail('malformed', 'not base64url: expected a string');
        }
        if (str.length % 4 === 1) {
            throw fail('malformed', 'not base64url: impossible length');
        }
        out = new Uint8Array(Math.floor(str.length * 3 / 4));
        for (i = 0; i < str.length; i++) {
            c = str.charCodeAt(i);
            v = c < 128 ? B64_INDEX[c] : -1;
            if (v < 0) {
                throw fail('malformed', 'not base64url without padding: bad character at ' + i);
            }
            acc = ((acc << 6) | v) & 0xffffff;
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                out[j++] = (acc >>> bits) & 255;
            }
        }
        return out;
    }

    /** @param {string} str @return {Uint8Array} its UTF-8 bytes (a lone surrogate becomes U+FFFD) */
    function utf8(str) {
        var out = [], i, c, d;
        if (typeof str !== 'string') {
            throw new TypeError('utf8: expected a string');
        }
        for (i = 0; i < str.length; i++) {
            c = str.charCodeAt(i);
            if (c < 0x80) {
                out.push(c);
            } else if (c < 0x800) {
                out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
            } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < str.length &&
                    (d = str.charCodeAt(i + 1)) >= 0xdc00 && d <= 0xdfff) {
                c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
                i++;
                out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
            } else {
                if (c >= 0xd800 && c <= 0xdfff) {
                    c = 0xfffd; // a lone surrogate has no UTF-8 form
                }
                out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
            }
        }
        return new Uint8Array(out);
    }

    /**
     * Strict decoder: invalid UTF-8 is an error (code 'malformed') rather than silently replaced text.
     * @param {Uint8Array} bytes @return {string}
     */
    function fromUtf8(bytes) {
        var units = [], i = 0, n, b, c, need, min;
        if (!isBytes(bytes)) {
            throw new TypeError('fromUtf8: expected a Uint8Array');
        }
        n = bytes.length;
        while (i < n) {
            b = bytes[i++];
            if (b < 0x80) {
                units.push(b);
                continue;
            }
            if (b >= 0xc2 && b <= 0xdf) {
                need = 1;
                c = b & 0x1f;
                min = 0x80;
            } else if (b >= 0xe0 && b <= 0xef) {
                need = 2;
                c = b & 0x0f;
                min = 0x800;
            } else if (b >= 0xf0 && b <= 0xf4) {
                need = 3;
                c = b & 0x07;
                min = 0x10000;
            } else {
                throw fail('malformed', 'invalid UTF-8');
            }
            if (i + need > n) {
                throw fail('malformed', 'invalid UTF-8: truncated sequence');
            }
            while (need > 0) {
                b = bytes[i++];
                if ((b & 0xc0) !== 0x80) {
                    throw fail('malformed', 'invalid UTF-8');
                }
                c = (c << 6) | (b & 0x3f);
                need--;
            }
            if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
                throw fail('malformed', 'invalid UTF-8');
            }
            if (c >= 0x10000) {
                c -= 0x10000;
                units.push(0xd800 + (c >> 10), 0xdc00 + (c & 0x3ff));
            } else {
                units.push(c);
            }
        }
        return unitsToString(units);
    }

    function label(text) {
        return concatBytes([utf8(text), new Uint8Array([0])]);
    }

    // ---- randomness ----------------------------------------------------------------------

    /**
     * @param {number} n a byte count
     * @return {Uint8Array} n bytes from crypto.getRandomValues (msCrypto on IE 11); throws without one
     */
    function randomBytes(n) {
        var c = root.crypto || root.msCrypto, out, i;
        if (!isInt(n) || n < 0) {
            throw new TypeError('randomBytes: expected a byte count');
        }
        if (!c || typeof c.getRandomValues !== 'function') {
            throw new Error('this browser has no crypto.getRandomValues');
        }
        out = new Uint8Array(n);
        for (i = 0; i < n; i += 65536) { // the API refuses more than 65536 bytes per call
            c.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
        }
        return out;
    }

    // ---- Web Crypto primitives (used only when backend === 'webcrypto') --------------------

    function subtle() {
        return root.crypto.subtle;
    }

    // Runs a promise-returning function and calls back outside the promise chain, so that an
    // exception in cb is reported by the page instead of turning into a second rejection.
    function wcRun(start, cb) {
        try {
            // Pre-standard implementations may return something that is not a promise at all.
            start().then(function (v) {
                later(function () {
                    cb(null, v);
                });
            }, function (e) {
                later(function () {
                    cb(e || new Error('Web Crypto operation failed'));
                });
            });
        } catch (e) {
            failLater(cb, e);
        }
    }

    function wcPbkdf2(password, salt, iter) {
        var s = subtle();
        return s.importKey('raw', password, {name: 'PBKDF2'}, false, ['deriveBits']).then(function (k) {
            return s.deriveBits({name: 'PBKDF2', salt: salt, iterations: iter, hash: 'SHA-256'}, k, 256);
        }).then(function (bits) {
            return new Uint8Array(bits);
        });
    }

    function wcHkdf(key, salt, info) {
        var s = subtle();
        return s.importKey('raw', key, {name: 'HKDF'}, false, ['deriveBits']).then(function (k) {
            return s.deriveBits({name: 'HKDF', hash: 'SHA-256', salt: salt, info: info}, k, 256);
        }).then(function (bits) {
            return new Uint8Array(bits);
        });
    }

    function wcAesKey(raw) {
        return subtle().importKey('raw', raw, {name: 'AES-GCM'}, false, ['encrypt', 'decrypt']);
    }

    function wcHmac(key, msg) {
        var s = subtle();
        return s.importKey('raw', key, {name: 'HMAC', hash: 'SHA-256'}, false, ['sign']).then(function (k) {
            return s.sign('HMAC', k, msg);
        }).then(function (buf) {
            return new Uint8Array(buf);
        });
    }

    function wcEncrypt(key, iv, pt, ad) {
        return subtle().encrypt({name: 'AES-GCM', iv: iv, additionalData: ad, tagLength: 128}, key, pt)
            .then(function (buf) {
                return new Uint8Array(buf);
            });
    }

    function wcDecrypt(key, iv, ct, ad) {
        return subtle().decrypt({name: 'AES-GCM', iv: iv, additionalData: ad, tagLength: 128}, key, ct)
            .then(function (buf) {
                return new Uint8Array(buf);
            });
    }

    // ---- node-forge primitives (used only when backend === 'fallback') ---------------------

    function fHmac(key, msg) {
        var h = forge.hmac.create();
        h.start('sha256', bytesToStr(key));
        h.update(bytesToStr(msg));
        return strToBytes(h.digest().getBytes());
    }

    function fSha256(data) {
        return strToBytes(forge.md.sha256.create().update(bytesToStr(data)).digest().getBytes());
    }

    // HKDF (RFC 5869) with a 32-byte output: extract, then the single expand block T(1).
    function fHkdf(key, salt, info) {
        var prk = fHmac(salt, key);
        return fHmac(prk, concatBytes([info, new Uint8Array([1])]));
    }

    function fEncrypt(key, iv, pt, ad) {
        var c = forge.cipher.createCipher('AES-GCM', bytesToStr(key));
        c.start({iv: bytesToStr(iv), additionalData: bytesToStr(ad), tagLength: 128});
        c.update(forge.util.createBuffer(bytesToStr(pt)));
        if (!c.finish()) {
            throw new Error('AES-GCM encryption failed');
        }
        return strToBytes(c.output.getBytes() + c.mode.tag.getBytes());
    }

    // Returns null when the tag does not verify.
    function fDecrypt(key, iv, ct, ad) {
        var d;
        if (ct.length < 16) {
            return null;
        }
        d = forge.cipher.createDecipher('AES-GCM', bytesToStr(key));
        d.start({iv: bytesToStr(iv), additionalData: bytesToStr(ad), tagLength: 128,
            tag: bytesToStr(ct.subarray(ct.length - 16))});
        d.update(forge.util.createBuffer(bytesToStr(ct.subarray(0, ct.length - 16))));
        if (!d.finish()) {
            return null;
        }
        return strToBytes(d.output.getBytes());
    }

    // ---- primitives by backend, all cb(err, result) ----------------------------------------

    function syncLater(fn, cb) {
        var v;
        try {
            v = fn();
        } catch (e) {
            failLater(cb, e);
            return;
        }
        later(function () {
            cb(null, v);
        });
    }

    function hkdf(which, key, salt, info, cb) {
        if (which === 'webcrypto') {
            wcRun(function () {
                return wcHkdf(key, salt, info);
            }, cb);
        } else {
            syncLater(function () {
                return fHkdf(key, salt, info);
            }, cb);
        }
    }

    function hmac(which, key, msg, cb) {
        if (which === 'webcrypto') {
            wcRun(function () {
                return wcHmac(key, msg);
            }, cb);
        } else {
            syncLater(function () {
                return fHmac(key, msg);
            }, cb);
        }
    }

    function sha256(which, data, cb) {
        if (which === 'webcrypto') {
            wcRun(function () {
                return subtle().digest('SHA-256', data).then(function (buf) {
                    return new Uint8Array(buf);
                });
            }, cb);
        } else {
            syncLater(function () {
                return fSha256(data);
            }, cb);
        }
    }

    // Key material: {raw: bytes, aes: non-extractable CryptoKey or null on the fallback}.
    function aesKey(which, raw, cb) {
        if (which === 'webcrypto') {
            wcRun(function () {
                return wcAesKey(raw);
            }, function (err, k) {
                cb(err, err ? undefined : {raw: raw, aes: k});
            });
        } else {
            later(function () {
                cb(null, {raw: raw, aes: null});
            });
        }
    }

    function encrypt(which, key, iv, pt, ad, cb) {
        if (which === 'webcrypto') {
            wcRun(function () {
                return wcEncrypt(key.aes, iv, pt, ad);
            }, cb);
        } else {
            syncLater(function () {
                return fEncrypt(key.raw, iv, pt, ad);
            }, cb);
        }
    }

    // cb(null, plaintext) or cb(null, null) when the ciphertext does not authenticate.
    function decrypt(which, key, iv, ct, ad, cb) {
        if (which === 'webcrypto') {
            wcRun(function () {
                return wcDecrypt(key.aes, iv, ct, ad);
            }, function (err, pt) {
                cb(null, err ? null : pt);
            });
        } else {
            syncLater(function () {
                return fDecrypt(key.raw, iv, ct, ad);
            }, cb);
        }
    }

    // ---- loading the fallback --------------------------------------------------------------

    // integrity: the page's Subresource Integrity value for url, so a tampered copy is refused.
    function loadScript(url, integrity, cb) {
        var doc = root.document, s, parent, done = false;
        function finish(err) {
            if (!done) {
                done = true;
                cb(err);
            }
        }
        if (!doc || typeof doc.createElement !== 'function') {
            failLater(cb, new Error('cannot load ' + url + ': no document'));
            return;
        }
        s = doc.createElement('script');
        s.onload = function () {
            finish(null);
        };
        s.onerror = function () {
            finish(new Error('could not load ' + url));
        };
        if (integrity) {
            s.integrity = integrity;
        }
        s.src = url;
        parent = doc.head || (doc.getElementsByTagName && doc.getElementsByTagName('head')[0]) ||
            doc.documentElement;
        parent.appendChild(s);
    }

    function forgeUsable(f) {
        return !!(f && f.cipher && f.cipher.createCipher && f.hmac && f.md && f.md.sha256 &&
            f.pkcs5 && f.pkcs5.pbkdf2 && f.util && f.util.createBuffer);
    }

    // The page may already have included the library with a <script>; otherwise load it.
    function loadForge(cb) {
        if (forge) {
            later(function () {
                cb(null);
            });
        } else if (forgeUsable(root.forge)) {
            forge = root.forge;
            later(function () {
                cb(null);
            });
        } else if (!urls.vendor) {
            failLater(cb, new Error('vendored crypto library URL not set (SealCrypto.setFallbackUrls)'));
        } else {
            loadScript(urls.vendor, urls.vendorIntegrity, function (err) {
                if (!err && !forgeUsable(root.forge)) {
                    err = new Error('vendored crypto library did not load');
                }
                if (!err) {
                    forge = root.forge;
                }
                cb(err);
            });
        }
    }

    // sealcrypto-worker.js loaded as a plain script defines SealKdf for the main thread.
    function loadKdfEngine(cb) {
        if (root.SealKdf) {
            later(function () {
                cb(null);
            });
        } else if (!urls.worker) {
            failLater(cb, new Error('key derivation script URL not set (SealCrypto.setFallbackUrls)'));
        } else {
            loadScript(urls.worker, urls.workerIntegrity, function (err) {
                cb(err || (root.SealKdf ? null : new Error('key derivation script did not load')));
            });
        }
    }

    // ---- detection -----------------------------------------------------------------------

    // A real PBKDF2 + HKDF + AES-GCM round trip against known answers: only success counts, since
    // insecure contexts, old engines and partial implementations fail in many different ways.
    function probeWebCrypto(cb) {
        var c = root.crypto, s = null, finished = false, timer;
        var probeSalt = utf8('sealchat/detect!');
        function finish(ok) {
            if (!finished) {
                finished = true;
                root.clearTimeout(timer);
                cb(ok);
            }
        }
        try {
            s = c && c.subtle;
        } catch (e) {
            s = null;
        }
        if (!s || typeof s.importKey !== 'function' || typeof root.Promise === 'undefined') {
            later(function () {
                cb(false);
            });
            return;
        }
        timer = root.setTimeout(function () {
            finish(false);
        }, DETECT_TIMEOUT_MS);
        wcRun(function () {
            return s.digest('SHA-256', utf8('abc')).then(function (d) {
                if (toHex(new Uint8Array(d)) !== ABC_SHA256) {
                    throw new Error('SHA-256 mismatch');
                }
                return wcPbkdf2(utf8('sealchat'), probeSalt, 2);
            }).then(function (ikm) {
                if (toHex(ikm) !== PROBE_IKM) {
                    throw new Error('PBKDF2 mismatch');
                }
                return wcHmac(ikm, utf8('sealchat/v2/detect')).then(function (mac) {
                    if (toHex(mac) !== PROBE_HMAC) {
                        throw new Error('HMAC mismatch');
                    }
                    return wcHkdf(ikm, probeSalt, utf8('sealchat/v1/detect'));
                });
            }).then(function (raw) {
                return wcAesKey(raw);
            }).then(function (k) {
                return wcEncrypt(k, new Uint8Array(12), utf8('ok'), utf8('ad')).then(function (ct) {
                    if (toHex(ct) !== PROBE_CT) {
                        throw new Error('AES-GCM mismatch');
                    }
                    return wcDecrypt(k, new Uint8Array(12), ct, utf8('ad'));
                });
            }).then(function (pt) {
                return toHex(pt) === toHex(utf8('ok'));
            });
        }, function (err, ok) {
            finish(!err && ok === true);
        });
    }

    function fallbackSelfTest() {
        var salt = utf8('sealchat/detect!'), ikm, key, ct, pt;
        if (toHex(fSha256(utf8('abc'))) !== ABC_SHA256) {
            return false;
        }
        ikm = strToBytes(forge.pkcs5.pbkdf2('sealchat', bytesToStr(salt), 2, 32, 'sha256'));
        if (toHex(ikm) !== PROBE_IKM) {
            return false;
        }
        if (toHex(fHmac(ikm, utf8('sealchat/v2/detect'))) !== PROBE_HMAC) {
            return false;
        }
        key = fHkdf(ikm, salt, utf8('sealchat/v1/detect'));
        ct = fEncrypt(key, new Uint8Array(12), utf8('ok'), utf8('ad'));
        if (toHex(ct) !== PROBE_CT) {
            return false;
        }
        pt = fDecrypt(key, new Uint8Array(12), ct, utf8('ad'));
        return !!pt && toHex(pt) === toHex(utf8('ok'));
    }

    // Never touches crypto.subtle: the fallback must work where it is missing or broken.
    function probeFallback(cb) {
        if (typeof root.Uint8Array === 'undefined' || typeof root.Int32Array === 'undefined') {
            later(function () {
                cb(false);
            });
            return;
        }
        try {
            randomBytes(16);
        } catch (e) {
            later(function () {
                cb(false);
            });
            return;
        }
        loadForge(function (err) {
            var ok = false;
            if (!err) {
                try {
                    ok = fallbackSelfTest();
                } catch (e) {
                    ok = false;
                }
            }
            if (!ok) {
                cb(false);
            } else if (root.Worker && urls.worker) {
                cb(true);
            } else {
                loadKdfEngine(function (e2) {
                    cb(!e2);
                });
            }
        });
    }

    /**
     * Decides once per page which backend runs AES-GCM, HKDF, HMAC, SHA-256 and PBKDF2
     * (docs/BROWSER-CRYPTO.md "Detection"); concurrent calls share one probe.
     * @param {function(?string)} cb 'webcrypto', 'fallback' or null (nothing usable)
     */
    function detect(cb) {
        needCallback(cb);
        if (backend !== undefined) {
            later(function () {
                cb(backend);
            });
            return;
        }
        if (detectWaiters) {
            detectWaiters.push(cb);
            return;
        }
        detectWaiters = [cb];
        probeWebCrypto(function (ok) {
            function done(result) {
                var waiters = detectWaiters, i;
                backend = result;
                detectWaiters = null;
                for (i = 0; i < waiters.length; i++) {
                    waiters[i](result);
                }
            }
            if (ok) {
                done('webcrypto');
            } else {
                probeFallback(function (ok2) {
                    done(ok2 ? 'fallback' : null);
                });
            }
        });
    }

    // Runs fn(backend) once detection is known, or calls back with an 'unsupported' error.
    function withBackend(cb, fn) {
        detect(function (which) {
            if (!which) {
                cb(fail('unsupported', 'this browser cannot do the encryption Sealchat needs'));
            } else {
                fn(which);
            }
        });
    }

    // The integrity of a URL as the page's sealchat-crypto meta element states it, if it names that URL.
    function pageIntegrity(which, url) {
        var doc = root.document, meta;
        try {
            meta = doc && typeof doc.getElementById === 'function' ? doc.getElementById('sealchat-crypto') : null;
            if (meta && url && meta.getAttribute('data-' + which) === url) {
                return meta.getAttribute('data-' + which + '-integrity') || null;
            }
        } catch (e) {
            // no usable document
        }
        return null;
    }

    /**
     * The page's content-hashed URLs of the vendored node-forge and of sealcrypto-worker.js, needed
     * before detect() can choose the fallback.
     * @param {{vendor: string, worker: string, vendorIntegrity: string, workerIntegrity: string}} opts
     *     an integrity not given is read from the page's sealchat-crypto meta element when that names
     *     the same URL
     */
    function setFallbackUrls(opts) {
        if (!opts || typeof opts !== 'object') {
            throw new TypeError('setFallbackUrls: expected {vendor: url, worker: url}');
        }
        if (opts.vendor !== undefined) {
            urls.vendor = opts.vendor ? String(opts.vendor) : null;
            urls.vendorIntegrity = opts.vendorIntegrity ? String(opts.vendorIntegrity) :
                pageIntegrity('vendor', urls.vendor);
        }
        if (opts.worker !== undefined) {
            urls.worker = opts.worker ? String(opts.worker) : null;
            urls.workerIntegrity = opts.workerIntegrity ? String(opts.workerIntegrity) :
                pageIntegrity('worker', urls.worker);
        }
        if (backend === null) {
            backend = undefined; // a failed detection may succeed with the URLs now known
        }
    }

    // ---- key derivation ------------------------------------------------------------------

    function checkParams(kdf, iter) {
        if (kdf !== KDF) {
            return fail('kdf', 'unsupported key derivation ' + JSON.stringify(String(kdf)) +
                ' (this client knows only ' + KDF + ')');
        }
        if (!isInt(iter) || iter < MIN_ITER || iter > MAX_ITER) {
            return fail('iter', 'iterations must be between ' + MIN_ITER + ' and ' + MAX_ITER);
        }
        return null;
    }

    // Engines before ES2015 have no normalize(); there the password is used as typed.
    function normalizePassword(password) {
        if (typeof password.normalize === 'function') {
            return password.normalize('NFC');
        }
        return password;
    }

    // run: the derivation's handle from deriveKeys; its stop() ends the work under way.
    function pbkdf2Worker(password, salt, iter, progress, cb, onStartFailure, run) {
        var w, ready = false, finished = false;
        function finish(err, ikm) {
            if (finished) {
                return;
            }
            finished = true;
            try {
                w.terminate();
            } catch (e) {
                // already gone
            }
            if (err && !ready) {
                onStartFailure();
            } else {
                cb(err, ikm);
            }
        }
        try {
            w = new root.Worker(urls.worker);
        } catch (e) {
            later(onStartFailure);
            return;
        }
        run.stop = function () {
            finished = true;
            w.terminate();
        };
        w.onmessage = function (ev) {
            var m = ev.data || {};
            if (m.type === 'ready') {
                ready = true;
                w.postMessage({type: 'pbkdf2', password: toArray(password), salt: toArray(salt), iter: iter});
            } else if (m.type === 'progress') {
                progress(m.fraction);
            } else if (m.type === 'result') {
                finish(null, new Uint8Array(m.ikm));
            } else if (m.type === 'error') {
                finish(new Error('key derivation failed: ' + m.message));
            }
        };
        w.onerror = function (ev) {
            if (ev && ev.preventDefault) {
                ev.preventDefault();
            }
            finish(new Error('key derivation worker failed' + (ev && ev.message ? ': ' + ev.message : '')));
        };
        w.postMessage({type: 'init', vendor: urls.vendor});
    }

    function pbkdf2MainThread(password, salt, iter, progress, cb, run) {
        run.stop = function () {};
        loadKdfEngine(function (err) {
            var job;
            if (run.cancelled) {
                return;
            }
            if (err) {
                cb(err);
                return;
            }
            try {
                if (kdfFast === null) {
                    kdfFast = root.SealKdf.selfTest(forge);
                }
                job = new root.SealKdf.Job(forge, password, salt, iter, kdfFast);
            } catch (e) {
                cb(e);
                return;
            }
            function slice() {
                var t0 = now();
                if (run.cancelled) {
                    return;
                }
                try {
                    while (!job.step(1000)) {
                        if (now() - t0 > SLICE_MS) {
                            progress(job.done / job.iter);
                            root.setTimeout(slice, 0);
                            return;
                        }
                    }
                } catch (e) {
                    cb(e);
                    return;
                }
                cb(null, new Uint8Array(job.result()));
            }
            later(slice);
        });
    }

    function pbkdf2Fallback(password, salt, iter, progress, cb, run) {
        if (root.Worker && urls.worker && urls.vendor) {
            pbkdf2Worker(password, salt, iter, progress, cb, function () {
                if (!run.cancelled) {
                    pbkdf2MainThread(password, salt, iter, progress, cb, run);
                }
            }, run);
        } else {
            pbkdf2MainThread(password, salt, iter, progress, cb, run);
        }
    }

    // ---- admission keys ------------------------------------------------------------------

    // From ikm to the admission keys and member_key; both backends.
    function finishKeys(which, roomId, ikm, salt, cb) {
        var rid = utf8(roomId);
        hkdf(which, ikm, salt, concatBytes([label(LABEL_AUTH), rid]), function (err, auth) {
            if (err) {
                cb(err);
                return;
            }
            sha256(which, concatBytes([label(LABEL_VERIFIER), auth]), function (err2, verifier) {
                if (err2) {
                    cb(err2);
                    return;
                }
                hkdf(which, ikm, salt, concatBytes([label(LABEL_MEMBER), rid]), function (err3, member) {
                    cb(err3, err3 ? undefined : {
                        roomId: roomId,
                        auth: b64u(auth),
                        verifier: b64u(verifier),
                        memberKey: b64u(member),
                        backend: which
                    });
                });
            });
        });
    }

    /**
     * Derives a room's admission keys from its password (PROTOCOL.md "Admission").
     * @param {string} password as typed (NFC-normalised here where the engine can)
     * @param {string} saltB64u the room's salt
     * @param {number} iter PBKDF2 iterations, MIN_ITER..MAX_ITER
     * @param {string} roomId the canonical room name exactly as the server returns it
     * @param {string} kdf must be KDF
     * @param {function(number)|null} onProgress fractions 0..1 (many on the fallback, 0 and 1 on Web Crypto)
     * @param {function(Error, {roomId, auth, verifier, memberKey, backend})} cb auth = b64u(auth_key) for
     *     /api/join, verifier = b64u(SHA-256 verifier) for /api/rooms, memberKey = b64u(member_key);
     *     errors: 'kdf', 'iter', 'malformed' (salt), 'unsupported'
     * @return {{cancel: function()}} cancel() stops the derivation where it can (the fallback's
     *     Worker is terminated, its main-thread slices end; Web Crypto's single step runs out
     *     unseen); after it neither onProgress nor cb is called
     */
    function deriveKeys(password, saltB64u, iter, roomId, kdf, onProgress, cb) {
        var err, salt, pw, run = {cancelled: false, stop: function () {}}, handle, progress, done;
        needCallback(cb);
        handle = {cancel: function () {
            if (!run.cancelled) {
                run.cancelled = true;
                run.stop();
            }
        }};
        progress = progressFn(function (fraction) {
            if (!run.cancelled && typeof onProgress === 'function') {
                onProgress(fraction);
            }
        });
        done = cb;
        cb = function (e, keys) {
            if (!run.cancelled) {
                done(e, keys);
            }
        };
        if (typeof password !== 'string' || typeof roomId !== 'string') {
            failLater(cb, new TypeError('deriveKeys: password and roomId must be strings'));
            return handle;
        }
        err = checkParams(kdf, iter);
        if (err) {
            failLater(cb, err);
            return handle;
        }
        try {
            salt = unb64u(saltB64u);
        } catch (e) {
            failLater(cb, fail('malformed', 'bad salt: ' + e.message));
            return handle;
        }
        pw = utf8(normalizePassword(password));
        withBackend(cb, function (which) {
            function afterIkm(err2, ikm) {
                if (err2) {
                    cb(err2);
                    return;
                }
                progress(1);
                finishKeys(which, roomId, ikm, salt, cb);
            }
            if (run.cancelled) {
                return;
            }
            progress(0);
            if (which === 'webcrypto') {
                wcRun(function () {
                    return wcPbkdf2(pw, salt, iter);
                }, afterIkm);
            } else {
                pbkdf2Fallback(pw, salt, iter, progress, afterIkm, run);
            }
        });
        return handle;
    }

    /** @return {string} b64u of 16 random bytes: a new room's salt */
    function newSalt() {
        return b64u(randomBytes(16));
    }

    // ---- decoding what others sent -----------------------------------------------------------
    // Mirrors chat/client/crypto.py's strict field readers, so both clients refuse the same input
    // with the same kind of error.

    var MSG_TYPES = ['text', 'file'];
    var MAX_ANNOUNCE_CHARS = 1024;
    var MAX_GRANT_CHARS = 16384;
    var MAX_HEADER_CHARS = 2048;
    var MAX_NAME_CHARS = 64; // code points; usernames are at most 32
    var MAX_SAFE_INT = 9007199254740991; // 2^53 - 1
    var ANNOUNCE_FIELDS = ['v', 'room', 'user', 'dh', 'sig', 'ts'];
    var GRANT_FIELDS = ['v', 'room', 'from', 'to', 'epoch', 'at', 'members', 'hdh', 'mdh', 'ts'];
    var HEADER_FIELDS = ['v', 'room', 'from', 'type', 'id', 'ts', 'epoch'];
    var B64U_TEXT = /^[A-Za-z0-9_-]*$/;

    function isObject(x) {
        return !!x && typeof x === 'object' && Object.prototype.toString.call(x) !== '[object Array]';
    }

    function isArray(x) {
        return Object.prototype.toString.call(x) === '[object Array]';
    }

    function has(obj, key) {
        return Object.prototype.hasOwnProperty.call(obj, key);
    }

    function contains(list, x) {
        var i;
        for (i = 0; i < list.length; i++) {
            if (list[i] === x) {
                return true;
            }
        }
        return false;
    }

    function quote(x) {
        return JSON.stringify(String(x));
    }

    // A base64url string of exactly len bytes in its one canonical spelling, else an error of `code`.
    function decodeFixed(str, len, what, code) {
        var bytes = null;
        if (typeof str === 'string') {
            try {
                bytes = unb64u(str);
            } catch (e) {
                bytes = null;
            }
        }
        if (!bytes || bytes.length !== len || b64u(bytes) !== str) {
            throw fail(code || 'malformed', what + ' must be ' + len + ' bytes of base64url');
        }
        return bytes;
    }

    // A base64url string of any length, canonical (signatures cover the text, so one spelling only).
    function decodeAny(str, what) {
        var bytes;
        if (typeof str !== 'string') {
            throw fail('malformed', what + ' must be a base64url string');
        }
        try {
            bytes = unb64u(str);
        } catch (e) {
            throw fail('malformed', what + ': ' + e.message);
        }
        if (b64u(bytes) !== str) {
            throw fail('malformed', what + ' is not canonical base64url');
        }
        return bytes;
    }

    // A wire field that is signed as text (a, g, h): non-empty base64url of at most limit characters.
    function wireText(wire, name, what, limit) {
        var value = isObject(wire) ? wire[name] : undefined;
        if (typeof value !== 'string' || value.length === 0 || value.length > limit || !B64U_TEXT.test(value)) {
            throw fail('malformed', what + ': field ' + quote(name) + ' must be base64url of at most ' + limit +
                ' characters');
        }
        return value;
    }

    /*
     * Whether valid JSON text repeats a key in one object or writes a number that is not a plain
     * integer literal: JSON.parse would keep the last key and turn 3.0 into 3, where the Python client
     * refuses both, so a sender could otherwise show the two clients different things.
     */
    function jsonAmbiguous(text) {
        var stack = [], i = 0, n = text.length, ch, start, key, top, expectKey = false;
        while (i < n) {
            ch = text.charAt(i);
            if (ch === '"') {
                start = i;
                i++;
                while (i < n && text.charAt(i) !== '"') {
                    i += text.charAt(i) === '\\' ? 2 : 1;
                }
                if (expectKey) {
                    key = '~' + JSON.parse(text.slice(start, i + 1));
                    top = stack[stack.length - 1];
                    if (has(top, key)) {
                        return true;
                    }
                    top[key] = true;
                    expectKey = false;
                }
            } else if (ch === '{') {
                stack.push({});
                expectKey = true;
            } else if (ch === '[') {
                stack.push(null);
            } else if (ch === '}' || ch === ']') {
                stack.pop();
                expectKey = false;
            } else if (ch === ',') {
                expectKey = stack.length > 0 && stack[stack.length - 1] !== null;
            } else if (ch === '-' || (ch >= '0' && ch <= '9')) {
                start = i;
                while (i + 1 < n && /[0-9eE+\-.]/.test(text.charAt(i + 1))) {
                    i++;
                }
                if (/[.eE]/.test(text.slice(start, i + 1))) {
                    return true;
                }
            }
            i++;
        }
        return false;
    }

    // b64u(JSON object) -> the object; anything else is malformed.
    function decodeBody(str, what) {
        var text, obj;
        try {
            text = fromUtf8(unb64u(str));
            obj = JSON.parse(text);
        } catch (e) {
            throw fail('malformed', 'unreadable ' + what);
        }
        if (!isObject(obj)) {
            throw fail('malformed', what + ' is not a JSON object');
        }
        if (jsonAmbiguous(text)) {
            throw fail('malformed', what + ': a repeated field or a number that is not a whole-number literal');
        }
        return obj;
    }

    function checkVersionRoom(body, roomId, what) {
        if (body.v !== VERSION) {
            throw fail('version', what + ' of unknown protocol version ' + quote(body.v) +
                ' (this client speaks version ' + VERSION + ')');
        }
        if (body.room !== roomId) {
            throw fail('room', what + ' for another room');
        }
    }

    // The body's fields are exactly `expected`, no more and no fewer.
    function checkFields(body, expected, what) {
        var k, count = 0;
        for (k in body) {
            if (has(body, k)) {
                if (!contains(expected, k)) {
                    throw fail('malformed', what + ': unexpected field ' + quote(k));
                }
                count++;
            }
        }
        if (count !== expected.length) {
            throw fail('malformed', what + ': fields must be exactly ' + expected.join(', '));
        }
    }

    function intField(body, name, what, minimum) {
        var x = body[name];
        if (!isInt(x) || x < minimum || x > MAX_SAFE_INT) {
            throw fail('malformed', what + ': field ' + quote(name) + ' must be a whole number from ' + minimum);
        }
        return x;
    }

    // Code points, as the Python client counts a name's length.
    function codePoints(str) {
        var count = 0, i, c;
        for (i = 0; i < str.length; i++) {
            c = str.charCodeAt(i);
            if (!(c >= 0xdc00 && c <= 0xdfff && i > 0 && str.charCodeAt(i - 1) >= 0xd800 &&
                    str.charCodeAt(i - 1) <= 0xdbff)) {
                count++;
            }
        }
        return count;
    }

    function isName(x) {
        return typeof x === 'string' && x.length > 0 && codePoints(x) <= MAX_NAME_CHARS;
    }

    function nameField(x, name, what) {
        if (!isName(x)) {
            throw fail('malformed', what + ': field ' + quote(name) + ' must be a name');
        }
        return x;
    }

    // A non-empty list of distinct names.
    function membersField(members, what) {
        var seen = {}, i;
        if (!isArray(members) || members.length === 0) {
            throw fail('malformed', what + ': members must be a non-empty list');
        }
        for (i = 0; i < members.length; i++) {
            nameField(members[i], 'members', what);
            if (has(seen, '~' + members[i])) {
                throw fail('malformed', what + ': members repeats ' + quote(members[i]));
            }
            seen['~' + members[i]] = true;
        }
        return members.slice();
    }

    // Constant-time comparison of two byte strings of the same public length.
    function sameBytes(a, b) {
        var d = 0, i;
        if (a.length !== b.length) {
            return false;
        }
        for (i = 0; i < a.length; i++) {
            d |= a[i] ^ b[i];
        }
        return d === 0;
    }

    // The labelled message a signature covers: L(label) || the parts joined with '.', ASCII.
    function signedText(lbl, parts) {
        return concatBytes([label(lbl), utf8(parts.join('.'))]);
    }

    // Arguments the page gives: wrong types are programming errors (TypeError).
    function keyArg(keyB64u, what) {
        if (typeof keyB64u !== 'string') {
            throw new TypeError(what + ' must be a base64url string');
        }
        return decodeFixed(keyB64u, 32, what);
    }

    function stringArg(x, what) {
        if (typeof x !== 'string') {
            throw new TypeError(what + ' must be a string');
        }
        return x;
    }

    function fixedArg(fixed, name, fallback) {
        return fixed && fixed[name] !== undefined && fixed[name] !== null ? fixed[name] : fallback();
    }

    // ---- tweetnacl: X25519, Ed25519, SHA-512 ----------------------------------------------------

    var naclChecked = null; // the library object that passed the self-test

    function naclSelfTest(n) {
        var kp, sig, empty = new Uint8Array(0);
        if (toHex(n.scalarMult(fromHex(X_ALICE_SK), fromHex(X_BOB_PK))) !== X_SHARED) {
            return false;
        }
        kp = n.sign.keyPair.fromSeed(fromHex(ED_SEED));
        if (toHex(kp.publicKey) !== ED_PK) {
            return false;
        }
        sig = n.sign.detached(empty, kp.secretKey);
        if (toHex(sig) !== ED_SIG || !n.sign.detached.verify(empty, sig, kp.publicKey)) {
            return false;
        }
        sig[0] ^= 1;
        if (n.sign.detached.verify(empty, sig, kp.publicKey)) {
            return false;
        }
        return toHex(n.hash(utf8('abc'))) === ABC_SHA512;
    }

    /*
     * The page's tweetnacl once it is there and gives the RFC answers on this engine (old JIT
     * compilers have miscompiled floating-point and 32-bit arithmetic); throws 'unsupported' if not.
     */
    function nacl() {
        var n = root.nacl, ok;
        if (n && n === naclChecked) {
            return n;
        }
        try {
            ok = !!(n && n.scalarMult && n.box && n.box.keyPair && n.box.keyPair.fromSecretKey && n.sign &&
                n.sign.detached && n.sign.detached.verify && n.sign.keyPair && n.sign.keyPair.fromSeed &&
                n.hash) && naclSelfTest(n);
        } catch (e) {
            ok = false;
        }
        if (!ok) {
            throw fail('unsupported', 'the key-exchange library (tweetnacl) is missing or does not work here');
        }
        naclChecked = n;
        return n;
    }

    // tweetnacl checks `instanceof Uint8Array`, which a typed array from another realm (an iframe)
    // fails; such arrays are copied into this one.
    function own(bytes) {
        return bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    }

    // RFC 8032 5.1.7: S must be below the group order, so a signature has one valid form.
    function canonicalS(sig) {
        var i;
        for (i = 31; i >= 0; i--) {
            if (sig[32 + i] < ED_L[i]) {
                return true;
            }
            if (sig[32 + i] > ED_L[i]) {
                return false;
            }
        }
        return false;
    }

    function verifySig(pk, msg, sig) {
        return isBytes(pk) && pk.length === 32 && isBytes(sig) && sig.length === 64 && canonicalS(sig) &&
            nacl().sign.detached.verify(own(msg), own(sig), own(pk));
    }

    // ---- sessions ----------------------------------------------------------------------------

    function makeSession(dhSk, sigSeed) {
        var n = nacl(), dh = n.box.keyPair.fromSecretKey(own(dhSk)), sg = n.sign.keyPair.fromSeed(own(sigSeed));
        return {
            dhPk: dh.publicKey,
            dhSk: dh.secretKey,
            sigPk: sg.publicKey,
            sigSeed: new Uint8Array(sigSeed),
            // Internal: the 64-byte signing key tweetnacl wants, and X25519 results by peer key.
            _sigSk: sg.secretKey,
            _shared: {},
            _sharedCount: 0
        };
    }

    /**
     * Draws this session's X25519 and Ed25519 key pairs (PROTOCOL.md "Session keys") from the
     * browser's CSPRNG (randomBytes). Synchronous.
     * @return {{dhPk: Uint8Array, dhSk: Uint8Array, sigPk: Uint8Array, sigSeed: Uint8Array}} 32 bytes each;
     *     throws 'unsupported' without a working tweetnacl
     */
    function newSession() {
        return makeSession(randomBytes(32), randomBytes(32));
    }

    /**
     * The session again from its saved private halves (the reload vault). Synchronous.
     * @param {{dhSk: string, sigSeed: string}} saved b64u of 32 bytes each
     * @return the same shape as newSession(); throws 'malformed' for anything else
     */
    function sessionFromSaved(saved) {
        if (!isObject(saved)) {
            throw fail('malformed', 'saved session: expected {dhSk, sigSeed}');
        }
        return makeSession(decodeFixed(saved.dhSk, 32, 'saved session dhSk'),
            decodeFixed(saved.sigSeed, 32, 'saved session sigSeed'));
    }

    function checkSession(s, what) {
        if (!s || !isBytes(s.dhPk) || s.dhPk.length !== 32 || !isBytes(s.dhSk) || s.dhSk.length !== 32 ||
                !isBytes(s.sigPk) || s.sigPk.length !== 32 || !isBytes(s.sigSeed) || s.sigSeed.length !== 32) {
            throw new TypeError(what + ': not a SealCrypto session');
        }
    }

    function sign(session, msg) {
        var n = nacl(), sk = session._sigSk;
        if (!isBytes(sk) || sk.length !== 64) {
            sk = n.sign.keyPair.fromSeed(own(session.sigSeed)).secretKey;
            session._sigSk = sk;
        }
        return n.sign.detached(own(msg), own(sk));
    }

    // X25519(session dh_sk, peer dh_pk), refused when all zero; cached per peer key because a host
    // grants to the same members' keys epoch after epoch.
    function shared(session, peerPk) {
        var name = b64u(peerPk), out, i, any = 0;
        if (!isObject(session._shared)) {
            session._shared = {};
            session._sharedCount = 0;
        }
        if (Object.prototype.hasOwnProperty.call(session._shared, name)) {
            return session._shared[name];
        }
        out = nacl().scalarMult(own(session.dhSk), own(peerPk));
        for (i = 0; i < out.length; i++) {
            any |= out[i];
        }
        if (any === 0) {
            throw fail('malformed', 'X25519 gave all zeros: the peer key is of low order');
        }
        if (session._sharedCount >= MAX_SHARED_CACHE) {
            session._shared = {};
            session._sharedCount = 0;
        }
        session._shared[name] = out;
        session._sharedCount++;
        return out;
    }

    function checkAnn(ann) {
        return isObject(ann) && typeof ann.user === 'string' && isBytes(ann.dh) && ann.dh.length === 32 &&
            isBytes(ann.sig) && ann.sig.length === 32;
    }

    // ---- announcements -------------------------------------------------------------------------

    /**
     * This member's announcement (PROTOCOL.md "Announcement") for the `announce` frame.
     * @param {string} memberKeyB64u keys.memberKey
     * @param {string} roomId
     * @param session from newSession() or sessionFromSaved()
     * @param {string} username this member's name as the server knows it
     * @param {function(Error, {a: string, t: string, s: string})} cb
     * @param {{ts: number}} [fixed] for known-answer tests only
     */
    function makeAnnouncement(memberKeyB64u, roomId, session, username, cb, fixed) {
        var mk, a;
        needCallback(cb);
        try {
            mk = keyArg(memberKeyB64u, 'makeAnnouncement: member key');
            stringArg(roomId, 'makeAnnouncement: roomId');
            stringArg(username, 'makeAnnouncement: username');
            checkSession(session, 'makeAnnouncement');
            a = b64u(utf8(JSON.stringify({v: VERSION, room: roomId, user: username, dh: b64u(session.dhPk),
                sig: b64u(session.sigPk), ts: fixedArg(fixed, 'ts', now)})));
        } catch (e) {
            failLater(cb, e);
            return;
        }
        withBackend(cb, function (which) {
            hmac(which, mk, concatBytes([label(LABEL_ANNOUNCE), utf8(a)]), function (err, t) {
                var tb, s;
                if (err) {
                    cb(err);
                    return;
                }
                tb = b64u(t);
                try {
                    s = b64u(sign(session, signedText(LABEL_ANNOUNCE, [a, tb])));
                } catch (e) {
                    cb(e);
                    return;
                }
                cb(null, {a: a, t: tb, s: s});
            });
        });
    }

    /**
     * Checks a member's announcement as PROTOCOL.md says: the tag under member_key, v, room, exactly
     * the body's fields, 32-byte keys, a whole-number ts, the signature under its own sig, and the
     * user the server attests. Pinning keys (key_changed) is the caller's: it keeps the first
     * accepted announcement of each member.
     * @param {string} memberKeyB64u keys.memberKey
     * @param {string} roomId
     * @param {{a, t, s}} wire the announce event's or welcome key's fields (others ignored)
     * @param {string} attestedFrom the sender the server attests (event `from`)
     * @param {function(Error, {user: string, dh: Uint8Array, sig: Uint8Array, ts: number, room: string,
     *     wire: {a, t, s}})} cb errors: 'malformed', 'forged' (tag, signature or user), 'version', 'room'
     */
    function checkAnnouncement(memberKeyB64u, roomId, wire, attestedFrom, cb) {
        var mk, a, t, s;
        needCallback(cb);
        try {
            mk = keyArg(memberKeyB64u, 'checkAnnouncement: member key');
            stringArg(roomId, 'checkAnnouncement: roomId');
            stringArg(attestedFrom, 'checkAnnouncement: attestedFrom');
            a = wireText(wire, 'a', 'announcement', MAX_ANNOUNCE_CHARS);
            t = decodeFixed(wire.t, 32, 'announcement tag', 'forged');
            s = decodeFixed(wire.s, 64, 'announcement signature', 'forged');
        } catch (e) {
            failLater(cb, e);
            return;
        }
        withBackend(cb, function (which) {
            hmac(which, mk, concatBytes([label(LABEL_ANNOUNCE), utf8(a)]), function (err, want) {
                var ann;
                if (err) {
                    cb(err);
                    return;
                }
                try {
                    ann = acceptAnnouncement(roomId, a, wire.t, t, s, want, attestedFrom);
                } catch (e) {
                    cb(e);
                    return;
                }
                cb(null, ann);
            });
        });
    }

    function acceptAnnouncement(roomId, a, tText, t, s, want, attestedFrom) {
        var what = 'announcement', body, user, dh, sig, ts;
        if (!sameBytes(t, want)) {
            throw fail('forged', 'announcement tag does not match: not from a holder of the room password');
        }
        body = decodeBody(a, what);
        checkVersionRoom(body, roomId, what);
        checkFields(body, ANNOUNCE_FIELDS, what);
        user = nameField(body.user, 'user', what);
        dh = decodeFixed(body.dh, 32, what + ' dh');
        sig = decodeFixed(body.sig, 32, what + ' sig');
        ts = intField(body, 'ts', what, 0);
        if (!verifySig(sig, signedText(LABEL_ANNOUNCE, [a, tText]), s)) {
            throw fail('forged', 'announcement signature does not verify');
        }
        if (user !== attestedFrom) {
            throw fail('forged', 'announcement names ' + quote(user) + ' but was sent by ' + quote(attestedFrom));
        }
        return {user: user, dh: dh, sig: sig, ts: ts, room: roomId, wire: {a: a, t: tText, s: b64u(s)}};
    }

    // ---- grants --------------------------------------------------------------------------

    /** A fresh random 32-byte epoch key (PROTOCOL.md "Epochs and grants"). */
    function newEpochKey() {
        return randomBytes(32);
    }

    function grantInfo(roomId, epoch, hostDh, memberDh) {
        return concatBytes([label(LABEL_GRANT), utf8(roomId), uint64be(epoch), hostDh, memberDh]);
    }

    function checkEpochNumber(epoch) {
        return isInt(epoch) && epoch >= 1 && epoch <= MAX_SAFE_INT;
    }

    /**
     * The host's grant of an epoch key to one member (one entry of the `grant` frame's `grants`).
     * @param hostSession the host's own session; hostName its username
     * @param memberAnn the member's accepted announcement (checkAnnouncement); the grant goes to memberAnn.user
     * @param {number} epoch E >= 1; at: the host's cursor; members: distinct names, host and member included
     * @param {Uint8Array} epochKey 32 bytes (newEpochKey)
     * @param {function(Error, {to, g, n, c, s})} cb errors: 'malformed' (a member key of low order)
     * @param {{nonce: string, ts: number}} [fixed] for known-answer tests only (nonce b64u)
     */
    function sealGrant(memberKeyB64u, roomId, hostSession, hostName, memberAnn, epoch, at, members, epochKey,
                       cb, fixed) {
        var mk, g, nonce, wrapIkm;
        needCallback(cb);
        try {
            mk = keyArg(memberKeyB64u, 'sealGrant: member key');
            stringArg(roomId, 'sealGrant: roomId');
            stringArg(hostName, 'sealGrant: hostName');
            checkSession(hostSession, 'sealGrant');
            if (!checkAnn(memberAnn)) {
                throw new TypeError('sealGrant: memberAnn is not an accepted announcement');
            }
            if (!checkEpochNumber(epoch) || !isInt(at) || at < 0 || at > MAX_SAFE_INT) {
                throw new TypeError('sealGrant: epoch must be a whole number >= 1 and at one >= 0');
            }
            try {
                members = membersField(members, 'sealGrant');
            } catch (e) {
                throw new TypeError(e.message);
            }
            if (!contains(members, memberAnn.user)) {
                throw new TypeError('sealGrant: members must include the member granted to');
            }
            if (!isBytes(epochKey) || epochKey.length !== 32) {
                throw new TypeError('sealGrant: epochKey must be 32 bytes');
            }
            nonce = fixed && fixed.nonce ? decodeFixed(fixed.nonce, 12, 'sealGrant: fixed nonce') : randomBytes(12);
            g = b64u(utf8(JSON.stringify({v: VERSION, room: roomId, from: hostName, to: memberAnn.user, epoch: epoch,
                at: at, members: members, hdh: b64u(hostSession.dhPk), mdh: b64u(memberAnn.dh),
                ts: fixedArg(fixed, 'ts', now)})));
            wrapIkm = shared(hostSession, memberAnn.dh);
        } catch (e) {
            failLater(cb, e);
            return;
        }
        withBackend(cb, function (which) {
            hkdf(which, wrapIkm, mk, grantInfo(roomId, epoch, hostSession.dhPk, memberAnn.dh), function (err, wk) {
                if (err) {
                    cb(err);
                    return;
                }
                aesKey(which, wk, function (err2, key) {
                    if (err2) {
                        cb(err2);
                        return;
                    }
                    encrypt(which, key, nonce, epochKey, utf8(g), function (err3, c) {
                        var nb, cb64, s;
                        if (err3) {
                            cb(err3);
                            return;
                        }
                        nb = b64u(nonce);
                        cb64 = b64u(c);
                        try {
                            s = b64u(sign(hostSession, signedText(LABEL_GRANT, [g, nb, cb64])));
                        } catch (e) {
                            cb(e);
                            return;
                        }
                        cb(null, {to: memberAnn.user, g: g, n: nb, c: cb64, s: s});
                    });
                });
            });
        });
    }

    /**
     * Opens a grant addressed to this member, checking everything PROTOCOL.md lists except "E is
     * greater than every epoch accepted before", which the caller must check on the result.
     * @param {string} memberKeyB64u keys.memberKey
     * @param {string} roomId
     * @param mySession this member's session; myName its username
     * @param hostAnn the current host's accepted announcement
     * @param {{from, g, n, c, s}} ev the grant event; from = the sender the server attests (others ignored)
     * @param {function(Error, {epoch: number, at: number, members: string[], key: Uint8Array, host: string})} cb
     *     errors: 'forged' (not from the host, bad or missing signature, another host named),
     *     'malformed' (fields; to, mdh or members not this member; hdh not the host's), 'version',
     *     'room', 'decrypt'
     */
    function openGrant(memberKeyB64u, roomId, mySession, myName, hostAnn, ev, cb) {
        var what = 'grant', mk, g, nonce, c, s, body, epoch, at, members, wrapIkm;
        needCallback(cb);
        try {
            mk = keyArg(memberKeyB64u, 'openGrant: member key');
            stringArg(roomId, 'openGrant: roomId');
            stringArg(myName, 'openGrant: myName');
            checkSession(mySession, 'openGrant');
            g = wireText(ev, 'g', what, MAX_GRANT_CHARS);
            nonce = decodeFixed(ev.n, 12, 'grant nonce');
            c = decodeFixed(ev.c, 48, 'grant ciphertext');
            s = decodeFixed(ev.s, 64, 'grant signature', 'forged');
            if (!checkAnn(hostAnn) || ev.from !== hostAnn.user) {
                throw fail('forged', 'grant sent by ' + quote(ev.from) + ', who is not the host');
            }
            if (!verifySig(hostAnn.sig, signedText(LABEL_GRANT, [g, ev.n, ev.c]), s)) {
                throw fail('forged', 'grant signature does not verify under the host\'s key');
            }
            body = decodeBody(g, what);
            checkVersionRoom(body, roomId, what);
            checkFields(body, GRANT_FIELDS, what);
            if (body.from !== hostAnn.user) {
                throw fail('forged', 'grant names ' + quote(body.from) + ' as its host, not ' + quote(hostAnn.user));
            }
            if (body.to !== myName) {
                throw fail('malformed', 'grant addressed to someone else');
            }
            if (!sameBytes(decodeFixed(body.hdh, 32, 'grant hdh'), hostAnn.dh)) {
                throw fail('malformed', 'grant wrapped with a key the host did not announce');
            }
            if (!sameBytes(decodeFixed(body.mdh, 32, 'grant mdh'), mySession.dhPk)) {
                throw fail('malformed', 'grant wrapped for another key of this member');
            }
            epoch = intField(body, 'epoch', what, 1);
            at = intField(body, 'at', what, 0);
            intField(body, 'ts', what, 0);
            members = membersField(body.members, what);
            if (!contains(members, myName)) {
                throw fail('malformed', 'grant\'s members do not include this member');
            }
            wrapIkm = shared(mySession, hostAnn.dh);
        } catch (e) {
            failLater(cb, e);
            return;
        }
        withBackend(cb, function (which) {
            hkdf(which, wrapIkm, mk, grantInfo(roomId, epoch, hostAnn.dh, mySession.dhPk), function (err, wk) {
                if (err) {
                    cb(err);
                    return;
                }
                aesKey(which, wk, function (err2, key) {
                    if (err2) {
                        cb(err2);
                        return;
                    }
                    decrypt(which, key, nonce, c, utf8(g), function (err3, epochKey) {
                        if (err3 || !epochKey || epochKey.length !== 32) {
                            cb(fail('decrypt', 'grant does not open: wrong keys or tampered'));
                        } else {
                            cb(null, {epoch: epoch, at: at, members: members, key: epochKey, host: hostAnn.user});
                        }
                    });
                });
            });
        });
    }

    // ---- epochs and envelopes ----------------------------------------------------------------

    function checkEp(ep) {
        return !!(ep && typeof ep.roomId === 'string' && checkEpochNumber(ep.epoch) && ep._msg &&
            isBytes(ep.raw) && ep.raw.length === 32 && (ep.backend === 'webcrypto' || ep.backend === 'fallback'));
    }

    /**
     * Prepares an epoch key for use: derives and caches msg_key (PROTOCOL.md "Envelope").
     * @param {string} roomId
     * @param {number} epoch E >= 1
     * @param {Uint8Array} epochKeyBytes 32 bytes (openGrant's key, or the host's own newEpochKey)
     * @param {function(Error, ep)} cb ep is opaque: ep.epoch and ep.raw (the epoch key) may be read
     */
    function epochFromKey(roomId, epoch, epochKeyBytes, cb) {
        needCallback(cb);
        try {
            stringArg(roomId, 'epochFromKey: roomId');
            if (!checkEpochNumber(epoch)) {
                throw new TypeError('epochFromKey: epoch must be a whole number >= 1');
            }
            if (!isBytes(epochKeyBytes) || epochKeyBytes.length !== 32) {
                throw new TypeError('epochFromKey: the epoch key must be 32 bytes');
            }
        } catch (e) {
            failLater(cb, e);
            return;
        }
        withBackend(cb, function (which) {
            var info = concatBytes([label(LABEL_MSG), utf8(roomId), uint64be(epoch)]);
            hkdf(which, epochKeyBytes, new Uint8Array(32), info, function (err, raw) {
                if (err) {
                    cb(err);
                    return;
                }
                aesKey(which, raw, function (err2, msg) {
                    cb(err2, err2 ? undefined : {
                        roomId: roomId,
                        epoch: epoch,
                        raw: epochKeyBytes,
                        backend: which,
                        // Internal: msg_key material ({raw, aes}), file keys, messages sealed under it.
                        _msg: msg,
                        _files: {},
                        _fileCount: 0,
                        _sent: 0
                    });
                });
            });
        });
    }

    /**
     * Seals and signs one message under an epoch.
     * @param ep from epochFromKey; session this member's; from its username; type 'text' or 'file'
     * @param {Uint8Array} plaintextBytes
     * @param {function(Error, {h, n, c, s})} cb errors: 'limit' (2^23 messages under this epoch key)
     * @param {{id: string, ts: number, nonce: string}} [fixed] for known-answer tests only (b64u id, nonce)
     */
    function seal(ep, session, from, type, plaintextBytes, cb, fixed) {
        var id, ts, nonce, h;
        needCallback(cb);
        try {
            if (!checkEp(ep)) {
                throw new TypeError('seal: not a SealCrypto epoch');
            }
            checkSession(session, 'seal');
            stringArg(from, 'seal: from');
            if (!contains(MSG_TYPES, type)) {
                throw new TypeError('seal: type must be one of ' + MSG_TYPES.join(', '));
            }
            if (!isBytes(plaintextBytes)) {
                throw new TypeError('seal: plaintext must be a Uint8Array');
            }
            if (ep._sent >= MAX_MESSAGES_PER_KEY) {
                throw fail('limit', 'this epoch key has sealed its maximum number of messages');
            }
            id = fixed && fixed.id ? b64u(decodeFixed(fixed.id, 16, 'seal: fixed id')) : b64u(randomBytes(16));
            ts = fixedArg(fixed, 'ts', now);
            if (!isInt(ts)) {
                throw new TypeError('seal: ts must be an integer number of milliseconds');
            }
            nonce = fixed && fixed.nonce ? decodeFixed(fixed.nonce, 12, 'seal: fixed nonce') : randomBytes(12);
            // Key order is part of the protocol; JSON.stringify keeps insertion order.
            h = b64u(utf8(JSON.stringify({v: VERSION, room: ep.roomId, from: from, type: type, id: id, ts: ts,
                epoch: ep.epoch})));
        } catch (e) {
            failLater(cb, e);
            return;
        }
        ep._sent++;
        encrypt(ep.backend, ep._msg, nonce, plaintextBytes, utf8(h), function (err, c) {
            var nb, cb64, s;
            if (err) {
                cb(err);
                return;
            }
            nb = b64u(nonce);
            cb64 = b64u(c);
            try {
                s = b64u(sign(session, signedText(LABEL_ENVELOPE, [h, nb, cb64])));
            } catch (e) {
                cb(e);
                return;
            }
            cb(null, {h: h, n: nb, c: cb64, s: s});
        });
    }

    /** seal(ep, session, from, 'text', utf8(text), cb). */
    function sealText(ep, session, from, text, cb) {
        needCallback(cb);
        if (typeof text !== 'string') {
            failLater(cb, new TypeError('sealText: text must be a string'));
            return;
        }
        seal(ep, session, from, 'text', utf8(text), cb);
    }

    /**
     * Checks and opens an envelope in PROTOCOL.md's order: shape, v and room, authorship (sender,
     * announcement, signature), header fields, epoch key, AEAD. Dropping duplicate ids and epochs
     * below the reload floor is the caller's.
     * @param {function(number): ?Object} epochLookup the held ep (epochFromKey) for an epoch number, or null
     * @param {{h, n, c, s}} env
     * @param {string} attestedFrom the sender the server attests
     * @param senderAnn that sender's accepted announcement (checkAnnouncement), or null if none
     * @param {function(Error, {header: Object, plaintext: Uint8Array})} cb errors: 'malformed',
     *     'version', 'room', 'forged' (sender, announcement or signature), 'nokey', 'decrypt'
     */
    function open(epochLookup, env, attestedFrom, senderAnn, cb) {
        var what = 'envelope', h, nonce, c, header, s, ep;
        needCallback(cb);
        try {
            if (typeof epochLookup !== 'function') {
                throw new TypeError('open: epochLookup must be a function');
            }
            stringArg(attestedFrom, 'open: attestedFrom');
            if (!isObject(env)) {
                throw fail('malformed', 'malformed envelope');
            }
            h = wireText(env, 'h', what, MAX_HEADER_CHARS);
            nonce = decodeFixed(env.n, 12, 'envelope nonce');
            c = decodeAny(env.c, 'envelope ciphertext');
            if (c.length < 16) {
                throw fail('malformed', 'envelope: ciphertext too short to hold a tag');
            }
            header = decodeBody(h, 'header');
            // The room is the one the sender announced in (ep.roomId is checked again below).
            checkVersionRoom(header, senderAnn && typeof senderAnn.room === 'string' ? senderAnn.room : header.room,
                what);
            if (header.from !== attestedFrom) {
                throw fail('forged', 'forged sender: claims ' + quote(header.from) + ', sent by ' +
                    quote(attestedFrom));
            }
            if (!checkAnn(senderAnn) || senderAnn.user !== attestedFrom) {
                throw fail('forged', quote(attestedFrom) + ' has no accepted announcement');
            }
            s = decodeFixed(env.s, 64, 'envelope signature', 'forged');
            if (!verifySig(senderAnn.sig, signedText(LABEL_ENVELOPE, [h, env.n, env.c]), s)) {
                throw fail('forged', 'signature of ' + quote(attestedFrom) + ' does not verify');
            }
            checkFields(header, HEADER_FIELDS, 'header');
            nameField(header.from, 'from', 'header');
            if (!contains(MSG_TYPES, header.type)) {
                throw fail('malformed', 'header: type must be one of ' + MSG_TYPES.join(', '));
            }
            decodeFixed(header.id, 16, 'header id');
            intField(header, 'ts', 'header', 0);
            intField(header, 'epoch', 'header', 1);
            ep = epochLookup(header.epoch);
            if (!ep) {
                throw fail('nokey', 'no key held for epoch ' + header.epoch);
            }
            if (!checkEp(ep) || ep.epoch !== header.epoch) {
                throw new TypeError('open: epochLookup gave something other than that epoch');
            }
            if (ep.roomId !== header.room) {
                throw fail('room', what + ' for another room');
            }
        } catch (e) {
            failLater(cb, e);
            return;
        }
        decrypt(ep.backend, ep._msg, nonce, c, utf8(h), function (err, plaintext) {
            if (err || !plaintext) {
                cb(fail('decrypt', 'envelope does not open: wrong epoch key or tampered'));
            } else {
                cb(null, {header: header, plaintext: plaintext});
            }
        });
    }

    // ---- files ---------------------------------------------------------------------------

    /** @param {number} size bytes @return {number} max(1, ceil(size / CHUNK_BYTES)) */
    function chunkCount(size) {
        return Math.max(1, Math.ceil(size / CHUNK_BYTES));
    }

    function chunkNonce(i) {
        return concatBytes([new Uint8Array(4), uint64be(i)]);
    }

    function chunkAd(fileId, i, n) {
        return concatBytes([label(LABEL_CHUNK), fileId, uint64be(i), uint64be(n)]);
    }

    function chunkSigned(fileIdB64u, i, n, c) {
        return concatBytes([signedText(LABEL_CHUNK, [fileIdB64u, String(i), String(n)]), nacl().hash(own(c))]);
    }

    // file_key = HKDF(epoch_key, file_id, L("sealchat/v2/file") || room_id || u64(E)), cached per epoch.
    function fileKey(ep, fileId, cb) {
        var name = b64u(fileId), cached = ep._files[name];
        if (cached) {
            later(function () {
                cb(null, cached);
            });
            return;
        }
        hkdf(ep.backend, ep.raw, fileId, concatBytes([label(LABEL_FILE), utf8(ep.roomId), uint64be(ep.epoch)]),
            function (err, raw) {
                if (err) {
                    cb(err);
                    return;
                }
                aesKey(ep.backend, raw, function (err2, k) {
                    if (!err2) {
                        if (ep._fileCount >= 16) {
                            ep._files = {};
                            ep._fileCount = 0;
                        }
                        ep._files[name] = k;
                        ep._fileCount++;
                    }
                    cb(err2, k);
                });
            });
    }

    /**
     * Encrypts and signs a file's chunks (PROTOCOL.md "Files") under the epoch of its `file` envelope.
     * @param {Uint8Array} bytes the content
     * @param {function(number)|null} onProgress fractions 0..1
     * @param {function(Error, {fileId: string, chunks: Array<{c: string, s: string}>})} cb
     * @param {string} [fixedFileId] b64u of 16 bytes, for known-answer tests only
     */
    function encryptFile(ep, session, bytes, onProgress, cb, fixedFileId) {
        var progress = progressFn(onProgress), fileId, fileIdB64u, n, size;
        needCallback(cb);
        try {
            if (!checkEp(ep)) {
                throw new TypeError('encryptFile: not a SealCrypto epoch');
            }
            checkSession(session, 'encryptFile');
            if (!isBytes(bytes)) {
                throw new TypeError('encryptFile: content must be a Uint8Array');
            }
            fileId = fixedFileId ? decodeFixed(fixedFileId, 16, 'file id') : randomBytes(16);
            nacl();
        } catch (e) {
            failLater(cb, e);
            return;
        }
        fileIdB64u = b64u(fileId);
        size = bytes.length;
        n = chunkCount(size);
        fileKey(ep, fileId, function (err, fk) {
            var chunks = [], i = 0;
            if (err) {
                cb(err);
                return;
            }
            // One chunk per timer turn keeps the page responsive during large files.
            function next() {
                var part;
                if (i >= n) {
                    cb(null, {fileId: fileIdB64u, chunks: chunks});
                    return;
                }
                part = bytes.subarray(i * CHUNK_BYTES, Math.min(size, (i + 1) * CHUNK_BYTES));
                encrypt(ep.backend, fk, chunkNonce(i), part, chunkAd(fileId, i, n), function (err2, c) {
                    var s;
                    if (err2) {
                        cb(err2);
                        return;
                    }
                    try {
                        s = sign(session, chunkSigned(fileIdB64u, i, n, c));
                    } catch (e) {
                        cb(e);
                        return;
                    }
                    chunks.push({c: b64u(c), s: b64u(s)});
                    i++;
                    progress(i / n);
                    root.setTimeout(next, 0);
                });
            }
            progress(0);
            next();
        });
    }

    /**
     * Checks chunk i of n's signature under the sender's key, then decrypts it.
     * @param ep the epoch of the file's `file` envelope; senderAnn the announcement of its sender
     * @param {string|Uint8Array} cB64u the chunk ciphertext; sB64u its signature
     * @param {function(Error, Uint8Array)} cb errors: 'malformed', 'forged' (signature), 'decrypt'
     */
    function decryptChunk(ep, senderAnn, fileIdB64u, i, n, cB64u, sB64u, cb) {
        var fileId, c, s;
        needCallback(cb);
        try {
            if (!checkEp(ep)) {
                throw new TypeError('decryptChunk: not a SealCrypto epoch');
            }
            if (!isInt(n) || n < 1 || !isInt(i) || i < 0 || i >= n) {
                throw fail('malformed', 'chunk index ' + i + ' of ' + n + ' is out of range');
            }
            fileId = decodeFixed(fileIdB64u, 16, 'file id');
            c = isBytes(cB64u) ? cB64u : decodeAny(cB64u, 'chunk ciphertext');
            s = decodeFixed(sB64u, 64, 'chunk signature', 'forged');
            if (!checkAnn(senderAnn)) {
                throw fail('forged', 'file chunk from a sender without an accepted announcement');
            }
            if (!verifySig(senderAnn.sig, chunkSigned(fileIdB64u, i, n, c), s)) {
                throw fail('forged', 'file chunk ' + i + '/' + n + ': signature does not verify');
            }
        } catch (e) {
            failLater(cb, e);
            return;
        }
        fileKey(ep, fileId, function (err, fk) {
            if (err) {
                cb(err);
                return;
            }
            decrypt(ep.backend, fk, chunkNonce(i), c, chunkAd(fileId, i, n), function (err2, pt) {
                if (err2 || !pt) {
                    cb(fail('decrypt', 'file chunk ' + i + '/' + n +
                        ' does not authenticate: wrong key, reordered, truncated or tampered'));
                } else {
                    cb(null, pt);
                }
            });
        });
    }

    // ---- safety code and fingerprints ---------------------------------------------------------

    function compareBytes(a, b) {
        var i;
        for (i = 0; i < a.length && i < b.length; i++) {
            if (a[i] !== b[i]) {
                return a[i] - b[i];
            }
        }
        return a.length - b.length;
    }

    function u16(x) {
        return new Uint8Array([(x >>> 8) & 255, x & 255]);
    }

    function lengthPrefixed(text, what) {
        var bytes = utf8(text);
        if (bytes.length > 65535) {
            throw new TypeError(what + ' is too long');
        }
        return concatBytes([u16(bytes.length), bytes]);
    }

    /**
     * The room's safety code (PROTOCOL.md "Safety code and fingerprints").
     * @param {string} roomId
     * @param {Array<{user: string, dh: Uint8Array, sig: Uint8Array}>} members every present member
     *     with an accepted announcement, the viewer included, in any order (distinct names)
     * @param {function(Error, string)} cb six groups of five digits joined by single spaces
     */
    function safetyCode(roomId, members, cb) {
        var parts, entries = [], seen = {}, i, m;
        needCallback(cb);
        try {
            parts = [label(LABEL_SAFETY), lengthPrefixed(stringArg(roomId, 'safetyCode: roomId'), 'room id')];
            if (!isArray(members)) {
                throw new TypeError('safetyCode: members must be an array');
            }
            for (i = 0; i < members.length; i++) {
                m = members[i];
                if (!checkAnn(m)) {
                    throw new TypeError('safetyCode: members must be {user, dh, sig} with 32-byte keys');
                }
                if (Object.prototype.hasOwnProperty.call(seen, '~' + m.user)) {
                    throw new TypeError('safetyCode: ' + quote(m.user) + ' is listed twice');
                }
                seen['~' + m.user] = true;
                entries.push({name: utf8(m.user),
                    bytes: concatBytes([lengthPrefixed(m.user, 'user name'), m.dh, m.sig])});
            }
            entries.sort(function (a, b) {
                return compareBytes(a.name, b.name);
            });
            for (i = 0; i < entries.length; i++) {
                parts.push(entries[i].bytes);
            }
        } catch (e) {
            failLater(cb, e);
            return;
        }
        withBackend(cb, function (which) {
            sha256(which, concatBytes(parts), function (err, d) {
                var groups = [], k, x, g;
                if (err) {
                    cb(err);
                    return;
                }
                for (k = 0; k < 6; k++) {
                    x = d[4 * k] * 16777216 + d[4 * k + 1] * 65536 + d[4 * k + 2] * 256 + d[4 * k + 3];
                    g = String(x % 100000);
                    groups.push('00000'.slice(g.length) + g);
                }
                cb(null, groups.join(' '));
            });
        });
    }

    /**
     * A member's key fingerprint: the first 10 bytes of SHA-256(L(label) || dh || sig) as lowercase
     * hex in five groups of four. cb(err, "abcd ef01 2345 6789 abcd").
     */
    function fingerprint(dh, sig, cb) {
        needCallback(cb);
        if (!isBytes(dh) || dh.length !== 32 || !isBytes(sig) || sig.length !== 32) {
            failLater(cb, new TypeError('fingerprint: dh and sig must be 32 bytes each'));
            return;
        }
        withBackend(cb, function (which) {
            sha256(which, concatBytes([label(LABEL_FINGERPRINT), dh, sig]), function (err, d) {
                var hex, groups = [], k;
                if (err) {
                    cb(err);
                    return;
                }
                hex = toHex(d.subarray(0, 10));
                for (k = 0; k < 20; k += 4) {
                    groups.push(hex.slice(k, k + 4));
                }
                cb(null, groups.join(' '));
            });
        });
    }

    // ---- reload vault --------------------------------------------------------------------------

    function vaultAd(roomId, username) {
        return concatBytes([label(LABEL_VAULT), label(roomId), label(username)]);
    }

    // The vault state as PROTOCOL.md "Reload vault" defines it; other fields are the page's own.
    function checkVaultState(state) {
        var e;
        if (!isObject(state)) {
            throw fail('malformed', 'vault state must be an object');
        }
        decodeFixed(state.member_key, 32, 'vault member_key');
        decodeFixed(state.dh_sk, 32, 'vault dh_sk');
        decodeFixed(state.sig_seed, 32, 'vault sig_seed');
        if (!isObject(state.epochs)) {
            throw fail('malformed', 'vault epochs must be an object');
        }
        for (e in state.epochs) {
            if (Object.prototype.hasOwnProperty.call(state.epochs, e)) {
                if (!/^[1-9][0-9]{0,15}$/.test(e) || !checkEpochNumber(Number(e))) {
                    throw fail('malformed', 'vault epoch numbers must be whole numbers >= 1');
                }
                decodeFixed(state.epochs[e], 32, 'vault epoch key');
            }
        }
        if (!isInt(state.floor) || state.floor < 0) {
            throw fail('malformed', 'vault floor must be a whole number');
        }
        if (!isArray(state.seen)) {
            throw fail('malformed', 'vault seen must be a list of message ids');
        }
        for (e = 0; e < state.seen.length; e++) {
            decodeFixed(state.seen[e], 16, 'vault seen id');
        }
    }

    /**
     * Seals the tab's state for sessionStorage under the session's resume_key.
     * @param {string} resumeKeyB64u the resume_key of the join answer or welcome
     * @param {{member_key, dh_sk, sig_seed, epochs, floor, seen}} stateObj binary values b64u
     * @param {function(Error, {n, c})} cb
     * @param {{nonce: string}} [fixed] for known-answer tests only
     */
    function vaultSeal(resumeKeyB64u, roomId, username, stateObj, cb, fixed) {
        var rk, json, nonce;
        needCallback(cb);
        try {
            rk = keyArg(resumeKeyB64u, 'vaultSeal: resume key');
            stringArg(roomId, 'vaultSeal: roomId');
            stringArg(username, 'vaultSeal: username');
            try {
                checkVaultState(stateObj);
            } catch (e) {
                throw new TypeError('vaultSeal: ' + e.message);
            }
            json = utf8(JSON.stringify(stateObj));
            nonce = fixed && fixed.nonce ? decodeFixed(fixed.nonce, 12, 'vaultSeal: fixed nonce') : randomBytes(12);
        } catch (e) {
            failLater(cb, e);
            return;
        }
        withBackend(cb, function (which) {
            aesKey(which, rk, function (err, key) {
                if (err) {
                    cb(err);
                    return;
                }
                encrypt(which, key, nonce, json, vaultAd(roomId, username), function (err2, c) {
                    cb(err2, err2 ? undefined : {n: b64u(nonce), c: b64u(c)});
                });
            });
        });
    }

    /**
     * Opens a vault sealed by vaultSeal with the resume_key of the new welcome.
     * @param {function(Error, Object)} cb the state; errors: 'malformed', 'decrypt' (another
     *     resume_key, room or user, or tampered)
     */
    function vaultOpen(resumeKeyB64u, roomId, username, vault, cb) {
        var rk, nonce, c;
        needCallback(cb);
        try {
            rk = keyArg(resumeKeyB64u, 'vaultOpen: resume key');
            stringArg(roomId, 'vaultOpen: roomId');
            stringArg(username, 'vaultOpen: username');
            if (!isObject(vault)) {
                throw fail('malformed', 'vault must be {n, c}');
            }
            nonce = decodeFixed(vault.n, 12, 'vault nonce');
            c = decodeAny(vault.c, 'vault ciphertext');
        } catch (e) {
            failLater(cb, e);
            return;
        }
        withBackend(cb, function (which) {
            aesKey(which, rk, function (err, key) {
                if (err) {
                    cb(err);
                    return;
                }
                decrypt(which, key, nonce, c, vaultAd(roomId, username), function (err2, pt) {
                    var state;
                    if (err2 || !pt) {
                        cb(fail('decrypt', 'the vault does not open with this session\'s resume key'));
                        return;
                    }
                    try {
                        state = JSON.parse(fromUtf8(pt));
                        checkVaultState(state);
                    } catch (e) {
                        cb(e.code ? e : fail('malformed', 'unreadable vault'));
                        return;
                    }
                    cb(null, state);
                });
            });
        });
    }

    root.SealCrypto = {
        VERSION: VERSION,
        KDF: KDF,
        MIN_ITER: MIN_ITER,
        MAX_ITER: MAX_ITER,
        DEFAULT_ITER: DEFAULT_ITER,
        CHUNK_BYTES: CHUNK_BYTES,
        detect: detect,
        setFallbackUrls: setFallbackUrls,
        randomBytes: randomBytes,
        b64u: b64u,
        unb64u: unb64u,
        utf8: utf8,
        fromUtf8: fromUtf8,
        newSalt: newSalt,
        chunkCount: chunkCount,
        deriveKeys: deriveKeys,
        newSession: newSession,
        sessionFromSaved: sessionFromSaved,
        makeAnnouncement: makeAnnouncement,
        checkAnnouncement: checkAnnouncement,
        newEpochKey: newEpochKey,
        sealGrant: sealGrant,
        openGrant: openGrant,
        epochFromKey: epochFromKey,
        seal: seal,
        sealText: sealText,
        open: open,
        encryptFile: encryptFile,
        decryptChunk: decryptChunk,
        safetyCode: safetyCode,
        fingerprint: fingerprint,
        vaultSeal: vaultSeal,
        vaultOpen: vaultOpen
    };
}(this));
