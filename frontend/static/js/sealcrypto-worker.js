/*
 * Fallback PBKDF2-HMAC-SHA256 for browsers without usable Web Crypto (docs/BROWSER-CRYPTO.md).
 *
 * Started as a Web Worker by sealcrypto.js, it runs the password's PBKDF2 (the ikm of the admission
 * keys and member_key, docs/PROTOCOL.md) off the page's thread and reports progress. Loaded as a
 * classic <script> (engines without Worker) it only defines the global SealKdf, which sealcrypto.js
 * then runs in slices between timers.
 *
 * Worker messages, in: {type: "init", vendor: url} first, then
 *   {type: "pbkdf2", password: [bytes], salt: [bytes], iter: n};
 * out: {type: "ready", fast: bool}, {type: "progress", fraction: 0..1},
 *   {type: "result", ikm: [32 bytes]}, {type: "error", message: str}.
 * Plain ES5, no eval: the page's CSP is script-src 'self'; worker-src 'self'.
 */
(function (root) {
    'use strict';

    // SHA-256 round constants and initial state (FIPS 180-4, 4.2.2 and 5.3.3).
    var K = new Int32Array([
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
    ]);
    var IV = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

    // Number of iterations between two progress reports or time checks.
    var STEP = 10000;

    /*
     * One SHA-256 compression of the block in w[0..15] into st; w[16..63] is scratch.
     * The library's hash keeps its state private, so the PBKDF2 loop cannot reuse precomputed
     * HMAC pad states through it; this function is what makes 600000 iterations affordable.
     */
    function compress(st, w) {
        var a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
        var i, t1, t2, x, y;
        for (i = 16; i < 64; i++) {
            x = w[i - 15];
            y = w[i - 2];
            w[i] = (((x >>> 7 | x << 25) ^ (x >>> 18 | x << 14) ^ (x >>> 3)) + w[i - 7] +
                ((y >>> 17 | y << 15) ^ (y >>> 19 | y << 13) ^ (y >>> 10)) + w[i - 16]) | 0;
        }
        for (i = 0; i < 64; i++) {
            t1 = (h + ((e >>> 6 | e << 26) ^ (e >>> 11 | e << 21) ^ (e >>> 25 | e << 7)) +
                (g ^ (e & (f ^ g))) + K[i] + w[i]) | 0;
            t2 = (((a >>> 2 | a << 30) ^ (a >>> 13 | a << 19) ^ (a >>> 22 | a << 10)) +
                ((a & b) | (c & (a | b)))) | 0;
            h = g;
            g = f;
            f = e;
            e = (d + t1) | 0;
            d = c;
            c = b;
            b = a;
            a = (t1 + t2) | 0;
        }
        st[0] = (st[0] + a) | 0;
        st[1] = (st[1] + b) | 0;
        st[2] = (st[2] + c) | 0;
        st[3] = (st[3] + d) | 0;
        st[4] = (st[4] + e) | 0;
        st[5] = (st[5] + f) | 0;
        st[6] = (st[6] + g) | 0;
        st[7] = (st[7] + h) | 0;
    }

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

    // HMAC state after absorbing the 64-byte block key XOR pad, computed once per derivation.
    function padState(key64, pad) {
        var st = new Int32Array(IV), w = new Int32Array(64), i;
        for (i = 0; i < 16; i++) {
            w[i] = ((key64[4 * i] ^ pad) << 24) | ((key64[4 * i + 1] ^ pad) << 16) |
                ((key64[4 * i + 2] ^ pad) << 8) | (key64[4 * i + 3] ^ pad);
        }
        compress(st, w);
        return st;
    }

    /*
     * PBKDF2-HMAC-SHA256 with a 32-byte output, which is a single block:
     * U1 = HMAC(P, S || INT(1)), Ui = HMAC(P, Ui-1), result = U1 xor ... xor Uc.
     * U1 comes from the vendored library; the loop runs either on the fast core above (fast) or on
     * the library's HMAC alone, which is slower but needs nothing of this file but the loop.
     * step(count) runs up to count more iterations and returns true once all are done.
     */
    function Job(forge, password, salt, iter, fast) {
        var keyStr, hmac, u1, key64, j;
        if (typeof iter !== 'number' || iter !== Math.floor(iter) || iter < 1 || iter > 10000000) {
            throw new Error('PBKDF2 iteration count out of range');
        }
        keyStr = bytesToStr(password);
        hmac = forge.hmac.create();
        hmac.start('sha256', keyStr);
        hmac.update(bytesToStr(salt) + '\x00\x00\x00\x01');
        u1 = hmac.digest().getBytes();
        this.iter = iter;
        this.done = 1;
        this.fast = !!fast;
        if (this.fast) {
            // HMAC hashes keys longer than the 64-byte block first (RFC 2104).
            if (password.length > 64) {
                password = strToBytes(forge.md.sha256.create().update(keyStr).digest().getBytes());
            }
            key64 = new Uint8Array(64);
            key64.set(password);
            this.ist = padState(key64, 0x36);
            this.ost = padState(key64, 0x5c);
            this.w = new Int32Array(64);
            this.st = new Int32Array(8);
            this.u = new Int32Array(8);
            this.acc = new Int32Array(8);
            for (j = 0; j < 8; j++) {
                this.u[j] = (u1.charCodeAt(4 * j) << 24) | (u1.charCodeAt(4 * j + 1) << 16) |
                    (u1.charCodeAt(4 * j + 2) << 8) | u1.charCodeAt(4 * j + 3);
                this.acc[j] = this.u[j];
            }
        } else {
            this.hmac = hmac;
            this.uStr = u1;
            this.accBytes = strToBytes(u1);
        }
    }

    Job.prototype.step = function (count) {
        var end = Math.min(this.iter, this.done + count);
        var i, j, w, st, u, acc, ist, ost, hmac, uStr, accBytes;
        if (this.fast) {
            w = this.w;
            st = this.st;
            u = this.u;
            acc = this.acc;
            ist = this.ist;
            ost = this.ost;
            for (i = this.done; i < end; i++) {
                // Inner hash: ipad state, then U (32 bytes) padded; the message is 96 bytes = 768 bits.
                for (j = 0; j < 8; j++) {
                    st[j] = ist[j];
                    w[j] = u[j];
                }
                w[8] = 0x80000000 | 0;
                for (j = 9; j < 15; j++) {
                    w[j] = 0;
                }
                w[15] = 768;
                compress(st, w);
                // Outer hash: opad state, then the inner digest padded the same way.
                for (j = 0; j < 8; j++) {
                    w[j] = st[j];
                    st[j] = ost[j];
                }
                w[8] = 0x80000000 | 0;
                for (j = 9; j < 15; j++) {
                    w[j] = 0;
                }
                w[15] = 768;
                compress(st, w);
                for (j = 0; j < 8; j++) {
                    u[j] = st[j];
                    acc[j] ^= st[j];
                }
            }
        } else {
            hmac = this.hmac;
            uStr = this.uStr;
            accBytes = this.accBytes;
            for (i = this.done; i < end; i++) {
                hmac.start(null, null);
                hmac.update(uStr);
                uStr = hmac.digest().getBytes();
                for (j = 0; j < 32; j++) {
                    accBytes[j] ^= uStr.charCodeAt(j);
                }
            }
            this.uStr = uStr;
        }
        this.done = end;
        return end >= this.iter;
    };

    // The derived 32 bytes as a plain array (structured-clone friendly on every engine).
    Job.prototype.result = function () {
        var out = [], j, x;
        if (this.done < this.iter) {
            throw new Error('PBKDF2 not finished');
        }
        if (this.fast) {
            for (j = 0; j < 8; j++) {
                x = this.acc[j];
                out.push(x >>> 24, (x >>> 16) & 255, (x >>> 8) & 255, x & 255);
            }
        } else {
            for (j = 0; j < 32; j++) {
                out.push(this.accBytes[j]);
            }
        }
        return out;
    };

    /*
     * True when the fast core agrees with the library's own PBKDF2 on a short and a long (hashed)
     * key; old JIT compilers have miscompiled 32-bit arithmetic, so this is checked on the device.
     */
    function selfTest(forge) {
        var keys = ['sealchat', new Array(71).join('k')], salt = 'sealchat/selftest', i, job, want, got;
        try {
            for (i = 0; i < keys.length; i++) {
                job = new Job(forge, strToBytes(keys[i]), strToBytes(salt), 3, true);
                job.step(3);
                got = bytesToStr(job.result());
                want = forge.pkcs5.pbkdf2(keys[i], salt, 3, 32, 'sha256');
                if (got !== want) {
                    return false;
                }
            }
            return true;
        } catch (e) {
            return false;
        }
    }

    function runJob(forge, fast, m, post) {
        var job = new Job(forge, new Uint8Array(m.password), new Uint8Array(m.salt), m.iter, fast);
        while (!job.step(STEP)) {
            post({type: 'progress', fraction: job.done / job.iter});
        }
        post({type: 'result', ikm: job.result()});
    }

    root.SealKdf = {Job: Job, selfTest: selfTest, STEP: STEP};

    if (typeof root.importScripts === 'function' && typeof root.document === 'undefined') {
        (function () {
            var forge = null, fast = false;
            function post(m) {
                root.postMessage(m);
            }
            root.onmessage = function (ev) {
                var m = ev.data || {};
                try {
                    if (m.type === 'init') {
                        if (!forge) {
                            // The library's bundle is wrapped for pages and refers to "window".
                            root.window = root;
                            root.importScripts(m.vendor);
                            forge = root.forge;
                            if (!forge || !forge.hmac || !forge.md || !forge.pkcs5) {
                                throw new Error('vendored crypto library did not load');
                            }
                            fast = selfTest(forge);
                        }
                        post({type: 'ready', fast: fast});
                    } else if (m.type === 'pbkdf2') {
                        if (!forge) {
                            throw new Error('worker used before init');
                        }
                        runJob(forge, fast, m, post);
                    }
                } catch (e) {
                    post({type: 'error', message: String((e && e.message) || e)});
                }
            };
        }());
    }
}(this));
