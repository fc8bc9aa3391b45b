/*
 * SealCrypto: the browser side of the sealchat/v1 protocol (PROTOCOL.md, docs/API.md).
 *
 * Uses Web Crypto where a real derivation through it works, and the vendored node-forge plus
 * sealcrypto-worker.js otherwise, so old phones on plain HTTP can take part. Hand-written ES5 with
 * callbacks (cb(err, result)) because those engines have nothing newer. Callbacks are always
 * called asynchronously and exactly once. Errors carry a 'code' (see docs/BROWSER-CRYPTO.md).
 */
(function (root) {
    'use strict';

    var VERSION = 1;
    var KDF = 'pbkdf2-sha256';
    var MIN_ITER = 100000;
    var MAX_ITER = 10000000;
    var DEFAULT_ITER = 600000;
    var CHUNK_BYTES = 262144;
    var MAX_MESSAGES_PER_KEY = 8388608; // 2^23, PROTOCOL.md: random 96-bit nonces stay safe below it
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

    // ---- small helpers -------------------------------------------------------------------

    function later(fn) {
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

    // Strict decoder: invalid UTF-8 is an error rather than silently replaced text.
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
                return wcHkdf(ikm, probeSalt, utf8('sealchat/v1/detect'));
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

    // opts: {vendor, worker, vendorIntegrity, workerIntegrity}; an integrity not given is read
    // from the page's sealchat-crypto meta element when that names the same URL.
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

    function pbkdf2Worker(password, salt, iter, progress, cb, onStartFailure) {
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

    function pbkdf2MainThread(password, salt, iter, progress, cb) {
        loadKdfEngine(function (err) {
            var job;
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

    function pbkdf2Fallback(password, salt, iter, progress, cb) {
        if (root.Worker && urls.worker && urls.vendor) {
            pbkdf2Worker(password, salt, iter, progress, cb, function () {
                pbkdf2MainThread(password, salt, iter, progress, cb);
            });
        } else {
            pbkdf2MainThread(password, salt, iter, progress, cb);
        }
    }

    // auth and verifier are null for resumed keys: only joining needs them.
    function makeKeys(which, roomId, enc, auth, verifier, ikm) {
        return {
            roomId: roomId,
            authKey: auth ? b64u(auth) : null,
            verifier: verifier ? b64u(verifier) : null,
            backend: which,
            // Internal: enc key material ({raw, aes}), the PBKDF2 output (tests), message count.
            _enc: enc,
            _ikm: ikm || null,
            _sent: 0,
            _files: {},
            _fileCount: 0
        };
    }

    // From ikm (or, on resume, from enc alone) to a keys object; both backends.
    function finishKeys(which, roomId, ikm, salt, encRaw, cb) {
        function withEncAuth(encBytes, authBytes) {
            if (!authBytes) {
                aesKey(which, encBytes, function (err, enc) {
                    cb(err, err ? undefined : makeKeys(which, roomId, enc, null, null, ikm));
                });
                return;
            }
            sha256(which, concatBytes([label('sealchat/v1/verifier'), authBytes]), function (err, verifier) {
                if (err) {
                    cb(err);
                    return;
                }
                aesKey(which, encBytes, function (err2, enc) {
                    cb(err2, err2 ? undefined : makeKeys(which, roomId, enc, authBytes, verifier, ikm));
                });
            });
        }
        var rid = utf8(roomId);
        if (encRaw) {
            withEncAuth(encRaw, null);
            return;
        }
        hkdf(which, ikm, salt, concatBytes([label('sealchat/v1/enc'), rid]), function (err, encBytes) {
            if (err) {
                cb(err);
                return;
            }
            hkdf(which, ikm, salt, concatBytes([label('sealchat/v1/auth'), rid]), function (err2, authBytes) {
                if (err2) {
                    cb(err2);
                    return;
                }
                withEncAuth(encBytes, authBytes);
            });
        });
    }

    function deriveKeys(password, saltB64u, iter, roomId, kdf, onProgress, cb) {
        var err, salt, pw, progress = progressFn(onProgress);
        needCallback(cb);
        if (typeof password !== 'string' || typeof roomId !== 'string') {
            failLater(cb, new TypeError('deriveKeys: password and roomId must be strings'));
            return;
        }
        err = checkParams(kdf, iter);
        if (err) {
            failLater(cb, err);
            return;
        }
        try {
            salt = unb64u(saltB64u);
        } catch (e) {
            failLater(cb, fail('malformed', 'bad salt: ' + e.message));
            return;
        }
        pw = utf8(normalizePassword(password));
        withBackend(cb, function (which) {
            function afterIkm(err2, ikm) {
                if (err2) {
                    cb(err2);
                    return;
                }
                progress(1);
                finishKeys(which, roomId, ikm, salt, null, cb);
            }
            progress(0);
            if (which === 'webcrypto') {
                wcRun(function () {
                    return wcPbkdf2(pw, salt, iter);
                }, afterIkm);
            } else {
                pbkdf2Fallback(pw, salt, iter, progress, afterIkm);
            }
        });
    }

    function newSalt() {
        return b64u(randomBytes(16));
    }

    function checkKeys(keys) {
        return !!(keys && typeof keys.roomId === 'string' && keys._enc && isBytes(keys._enc.raw) &&
            (keys.backend === 'webcrypto' || keys.backend === 'fallback'));
    }

    // What a reload needs to go on in the room: the message key and how many messages it has
    // sealed (the per-key limit must not restart). Never the auth key: that is a join credential.
    function exportForResume(keys) {
        if (!checkKeys(keys)) {
            throw new TypeError('exportForResume: not a SealCrypto keys object');
        }
        return {roomId: keys.roomId, enc: b64u(keys._enc.raw), sent: keys._sent};
    }

    function importForResume(obj, cb) {
        var enc, sent;
        needCallback(cb);
        try {
            if (!obj || typeof obj.roomId !== 'string') {
                throw fail('malformed', 'saved keys: missing room');
            }
            enc = unb64u(obj.enc);
            if (enc.length !== 32) {
                throw fail('malformed', 'saved keys: wrong key length');
            }
            sent = obj.sent === undefined ? 0 : obj.sent;
            if (!isInt(sent) || sent < 0 || sent > MAX_MESSAGES_PER_KEY) {
                throw fail('malformed', 'saved keys: bad message count');
            }
        } catch (e) {
            failLater(cb, e.code ? e : fail('malformed', 'saved keys: ' + e.message));
            return;
        }
        withBackend(cb, function (which) {
            finishKeys(which, obj.roomId, null, null, enc, function (err, keys) {
                if (keys) {
                    keys._sent = sent;
                }
                cb(err, keys);
            });
        });
    }

    // ---- messages ------------------------------------------------------------------------

    function seal(keys, from, type, plaintextBytes, cb, fixed) {
        var id, ts, nonce, h, ad;
        needCallback(cb);
        fixed = fixed || {};
        try {
            if (!checkKeys(keys)) {
                throw new TypeError('seal: not a SealCrypto keys object');
            }
            if (typeof from !== 'string' || typeof type !== 'string') {
                throw new TypeError('seal: from and type must be strings');
            }
            if (!isBytes(plaintextBytes)) {
                throw new TypeError('seal: plaintext must be a Uint8Array');
            }
            if (keys._sent >= MAX_MESSAGES_PER_KEY) {
                throw fail('limit', 'this room key has sent its maximum number of messages; rejoin the room');
            }
            id = fixed.id !== undefined && fixed.id !== null ? fixed.id : b64u(randomBytes(16));
            if (typeof id !== 'string') {
                throw new TypeError('seal: fixed id must be a base64url string');
            }
            ts = fixed.ts !== undefined && fixed.ts !== null ? fixed.ts : now();
            if (!isInt(ts)) {
                throw new TypeError('seal: ts must be an integer number of milliseconds');
            }
            nonce = fixed.nonce !== undefined && fixed.nonce !== null ? unb64u(fixed.nonce) : randomBytes(12);
            if (nonce.length !== 12) {
                throw fail('malformed', 'seal: nonce must be 12 bytes');
            }
            // Key order is part of the protocol; JSON.stringify keeps insertion order.
            h = b64u(utf8(JSON.stringify({v: VERSION, room: keys.roomId, from: from, type: type, id: id, ts: ts})));
            ad = utf8(h);
        } catch (e) {
            failLater(cb, e);
            return;
        }
        keys._sent++;
        encrypt(keys.backend, keys._enc, nonce, plaintextBytes, ad, function (err, c) {
            cb(err, err ? undefined : {h: h, n: b64u(nonce), c: b64u(c)});
        });
    }

    function sealText(keys, from, text, cb) {
        needCallback(cb);
        if (typeof text !== 'string') {
            failLater(cb, new TypeError('sealText: text must be a string'));
            return;
        }
        seal(keys, from, 'text', utf8(text), cb);
    }

    function open(keys, env, attestedFrom, cb) {
        var header, nonce, c;
        needCallback(cb);
        try {
            if (!checkKeys(keys)) {
                throw new TypeError('open: not a SealCrypto keys object');
            }
            if (!env || typeof env !== 'object' || typeof env.h !== 'string' || typeof env.n !== 'string' ||
                    typeof env.c !== 'string') {
                throw fail('malformed', 'malformed envelope: h, n and c must be strings');
            }
            try {
                header = JSON.parse(fromUtf8(unb64u(env.h)));
            } catch (e) {
                throw fail('malformed', 'unreadable header');
            }
            if (!header || typeof header !== 'object' || Object.prototype.toString.call(header) === '[object Array]') {
                throw fail('malformed', 'unreadable header');
            }
            if (header.v !== VERSION) {
                throw fail('version', 'unknown protocol version ' + JSON.stringify(header.v) +
                    ' (this client speaks version ' + VERSION + ')');
            }
            if (header.room !== keys.roomId) {
                throw fail('room', 'envelope for another room');
            }
            // Receivers drop duplicates by id, so an id must be exactly one canonical 16-byte value.
            if (typeof header.id !== 'string' || header.id.length !== 22 || b64u(unb64u(header.id)) !== header.id) {
                throw fail('malformed', 'bad header: id must be 16 bytes of base64url');
            }
            if (!isInt(header.ts)) {
                throw fail('malformed', 'bad header: ts must be a whole number of milliseconds');
            }
            if (typeof header.type !== 'string') {
                throw fail('malformed', 'bad header: type must be a string');
            }
            nonce = unb64u(env.n);
            if (nonce.length !== 12) {
                throw fail('malformed', 'bad nonce: must be 12 bytes');
            }
            c = unb64u(env.c);
        } catch (e) {
            failLater(cb, e.code || e instanceof TypeError ? e : fail('malformed', e.message));
            return;
        }
        decrypt(keys.backend, keys._enc, nonce, c, utf8(env.h), function (err, plaintext) {
            if (err || !plaintext) {
                cb(fail('decrypt', 'cannot decrypt: wrong key or tampered message'));
            } else if (header.from !== attestedFrom) {
                cb(fail('forged', 'forged sender: claims ' + JSON.stringify(String(header.from)) +
                    ', sent by ' + JSON.stringify(String(attestedFrom))));
            } else {
                cb(null, {header: header, plaintext: plaintext});
            }
        });
    }

    // ---- files ---------------------------------------------------------------------------

    function chunkCount(size) {
        return Math.max(1, Math.ceil(size / CHUNK_BYTES));
    }

    function chunkNonce(i) {
        return concatBytes([new Uint8Array(4), uint64be(i)]);
    }

    function chunkAd(fileId, i, n) {
        return concatBytes([label('sealchat/v1/chunk'), fileId, uint64be(i), uint64be(n)]);
    }

    function decodeFileId(fileIdB64u) {
        var id = unb64u(fileIdB64u);
        if (id.length !== 16) {
            throw fail('malformed', 'file id must be 16 bytes');
        }
        return id;
    }

    // file_key = HKDF(enc_key, salt=file_id, info="sealchat/v1/file"), cached for the last few files.
    function fileKey(keys, fileId, cb) {
        var name = b64u(fileId), cached = keys._files[name];
        if (cached) {
            later(function () {
                cb(null, cached);
            });
            return;
        }
        hkdf(keys.backend, keys._enc.raw, fileId, utf8('sealchat/v1/file'), function (err, raw) {
            if (err) {
                cb(err);
                return;
            }
            aesKey(keys.backend, raw, function (err2, k) {
                if (!err2) {
                    if (keys._fileCount >= 16) {
                        keys._files = {};
                        keys._fileCount = 0;
                    }
                    keys._files[name] = k;
                    keys._fileCount++;
                }
                cb(err2, k);
            });
        });
    }

    function encryptFile(keys, bytes, onProgress, cb, fixedFileId) {
        var progress = progressFn(onProgress), fileId, n, size;
        needCallback(cb);
        try {
            if (!checkKeys(keys)) {
                throw new TypeError('encryptFile: not a SealCrypto keys object');
            }
            if (!isBytes(bytes)) {
                throw new TypeError('encryptFile: content must be a Uint8Array');
            }
            fileId = fixedFileId !== undefined && fixedFileId !== null ? decodeFileId(fixedFileId) : randomBytes(16);
        } catch (e) {
            failLater(cb, e);
            return;
        }
        size = bytes.length;
        n = chunkCount(size);
        fileKey(keys, fileId, function (err, fk) {
            var chunks = [], i = 0;
            if (err) {
                cb(err);
                return;
            }
            // One chunk per timer turn keeps the page responsive during large files.
            function next() {
                var part;
                if (i >= n) {
                    cb(null, {fileId: b64u(fileId), chunks: chunks});
                    return;
                }
                part = bytes.subarray(i * CHUNK_BYTES, Math.min(size, (i + 1) * CHUNK_BYTES));
                encrypt(keys.backend, fk, chunkNonce(i), part, chunkAd(fileId, i, n), function (err2, c) {
                    if (err2) {
                        cb(err2);
                        return;
                    }
                    chunks.push(b64u(c));
                    i++;
                    progress(i / n);
                    root.setTimeout(next, 0);
                });
            }
            progress(0);
            next();
        });
    }

    function decryptChunk(keys, fileIdB64u, i, n, cB64u, cb) {
        var fileId, c;
        needCallback(cb);
        try {
            if (!checkKeys(keys)) {
                throw new TypeError('decryptChunk: not a SealCrypto keys object');
            }
            if (!isInt(n) || n < 1 || !isInt(i) || i < 0 || i >= n) {
                throw fail('malformed', 'chunk index ' + i + ' of ' + n + ' is out of range');
            }
            fileId = decodeFileId(fileIdB64u);
            c = isBytes(cB64u) ? cB64u : unb64u(cB64u);
        } catch (e) {
            failLater(cb, e);
            return;
        }
        fileKey(keys, fileId, function (err, fk) {
            if (err) {
                cb(err);
                return;
            }
            decrypt(keys.backend, fk, chunkNonce(i), c, chunkAd(fileId, i, n), function (err2, pt) {
                if (err2 || !pt) {
                    cb(fail('decrypt', 'file chunk ' + i + '/' + n +
                        ' does not authenticate: wrong key, reordered, truncated or tampered'));
                } else {
                    cb(null, pt);
                }
            });
        });
    }

    // For known-answer tests only: the derived file key in hex.
    function fileKeyHex(keys, fileIdB64u, cb) {
        var fileId;
        needCallback(cb);
        try {
            if (!checkKeys(keys)) {
                throw new TypeError('fileKeyHex: not a SealCrypto keys object');
            }
            fileId = decodeFileId(fileIdB64u);
        } catch (e) {
            failLater(cb, e);
            return;
        }
        fileKey(keys, fileId, function (err, k) {
            cb(err, err ? undefined : toHex(k.raw));
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
        deriveKeys: deriveKeys,
        exportForResume: exportForResume,
        importForResume: importForResume,
        seal: seal,
        sealText: sealText,
        open: open,
        chunkCount: chunkCount,
        encryptFile: encryptFile,
        decryptChunk: decryptChunk,
        fileKeyHex: fileKeyHex
    };
}(this));
