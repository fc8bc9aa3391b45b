'use strict';
// A small imitation of a browser for the shipped scripts: a vm context with timers, a crypto
// object with or without `subtle`, the vendored tweetnacl loaded before sealcrypto.js as the chat
// page does, a document that "loads" <script> URLs from disk (checking their integrity attribute as
// a browser does) and a Worker that runs the worker script in its own context. URLs map to files
// under frontend/static.

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

const repoRoot = path.resolve(__dirname, '..', '..');
// SEALCHAT_STATIC_DIR lets tests/test_javascript.py run this suite on the minified scripts as served.
const staticDir = process.env.SEALCHAT_STATIC_DIR
  ? path.resolve(process.env.SEALCHAT_STATIC_DIR)
  : path.join(repoRoot, 'frontend', 'static');
const VENDOR_FILE = path.join(staticDir, 'vendor', 'forge-1.4.3.min.js');
const NACL_FILE = path.join(staticDir, 'vendor', 'nacl-fast-1.0.3.min.js');

// URLs as the page would pass them: hashed, under /static/.
const URLS = {
  vendor: '/static/vendor/forge-1.4.3.min.js?v=test',
  worker: '/static/js/sealcrypto-worker.js?v=test',
};

function fileForUrl(url) {
  const m = /^\/static\/([^?#]+)/.exec(url);
  if (!m) throw new Error('unknown URL ' + url);
  return path.join(staticDir, m[1]);
}

// The Subresource Integrity value of a served file, as chat/assets.py computes it.
function sriFor(url) {
  return 'sha384-' + crypto.createHash('sha384').update(fs.readFileSync(fileForUrl(url))).digest('base64');
}

const sourceCache = new Map();
function runFile(ctx, file) {
  if (!sourceCache.has(file)) sourceCache.set(file, new vm.Script(fs.readFileSync(file, 'utf8'), { filename: file }));
  sourceCache.get(file).runInContext(ctx);
}

// crypto without subtle; every read of `subtle` is counted so tests can prove it is never used.
function fallbackCrypto(stats) {
  const c = {
    getRandomValues(a) {
      crypto.randomFillSync(a);
      return a;
    },
  };
  Object.defineProperty(c, 'subtle', {
    configurable: true,
    get() {
      stats.subtleReads += 1;
      return undefined;
    },
  });
  return c;
}

function baseGlobals(ctx) {
  ctx.setTimeout = setTimeout;
  ctx.clearTimeout = clearTimeout;
  ctx.console = console;
  ctx.self = ctx;
  ctx.addEventListener = () => {};
  ctx.removeEventListener = () => {};
}

// A MessageChannel as pages have it, on Node's; the port keeps the process alive only while a message
// is on its way. dead: one that never delivers (an engine where it is broken). stats.messages counts;
// an exception in a handler goes to stats.pageErrors, as a browser reports it and goes on.
function pageMessageChannel(stats, dead) {
  return function MessageChannel() {
    const ch = new globalThis.MessageChannel();
    let pending = 0;
    let handler = null;
    ch.port1.onmessage = () => {
      pending -= 1;
      if (pending === 0) ch.port1.unref();
      stats.messages += 1;
      try {
        if (handler) handler({ data: 0 });
      } catch (e) {
        stats.pageErrors.push(e.message);
      }
    };
    ch.port1.unref(); // after onmessage, which refs the port
    return {
      port1: { set onmessage(fn) { handler = fn; }, get onmessage() { return handler; } },
      port2: {
        postMessage(m) {
          if (dead) return;
          pending += 1;
          ch.port1.ref();
          ch.port2.postMessage(m);
        },
      },
    };
  };
}

class FakeWorker {
  constructor(url, stats) {
    this.onmessage = null;
    this.onerror = null;
    this.terminated = false;
    const w = vm.createContext({});
    baseGlobals(w);
    w.crypto = fallbackCrypto(stats.worker);
    w.importScripts = (...urls) => urls.forEach((u) => runFile(w, fileForUrl(u)));
    w.postMessage = (m) => {
      const data = structuredClone(m);
      setTimeout(() => {
        if (!this.terminated && this.onmessage) this.onmessage({ data });
      }, 0);
    };
    this.ctx = w;
    stats.workersStarted += 1;
    runFile(w, fileForUrl(url));
  }

  postMessage(m) {
    const data = structuredClone(m);
    setTimeout(() => {
      if (!this.terminated && this.ctx.onmessage) this.ctx.onmessage({ data });
    }, 0);
  }

  terminate() {
    this.terminated = true;
  }
}

/**
 * Builds a browser-like context with sealcrypto.js loaded.
 * mode: 'webcrypto' (node's Web Crypto), 'fallback' (no subtle, with Worker),
 *       'fallback-noworker' (no subtle, no Worker: main-thread slices), 'none' (no crypto at all).
 * subtle: optional replacement subtle object (to imitate broken implementations).
 * meta: optional attributes of the page's sealchat-crypto meta element.
 * nacl: false for a page without tweetnacl (the join pages), which only derives admission keys.
 * channel: 'working' or 'dead' to give the page a MessageChannel (none by default).
 */
function makeBrowser(mode, { subtle, meta, nacl = true, channel } = {}) {
  const stats = {
    subtleReads: 0, scriptsLoaded: [], scriptElements: [], workersStarted: 0, worker: { subtleReads: 0 }, messages: 0, pageErrors: [],
  };
  const ctx = vm.createContext({});
  baseGlobals(ctx);
  if (channel) {
    ctx.MessageChannel = pageMessageChannel(stats, channel === 'dead');
    ctx.setTimeout = (fn, ms) => setTimeout(() => {
      try {
        fn();
      } catch (e) {
        stats.pageErrors.push(e.message);
      }
    }, ms);
  }
  ctx.window = ctx;
  ctx.document = {
    head: {
      appendChild(el) {
        stats.scriptElements.push(el);
        setTimeout(() => {
          if (el.integrity && el.integrity !== sriFor(el.src)) {
            if (el.onerror) el.onerror(new Error('integrity mismatch'));
            return;
          }
          try {
            runFile(ctx, fileForUrl(el.src));
            stats.scriptsLoaded.push(el.src);
          } catch (e) {
            if (el.onerror) el.onerror(e);
            return;
          }
          if (el.onload) el.onload();
        }, 0);
      },
    },
    createElement(tag) {
      return { tagName: tag.toUpperCase() };
    },
    getElementById(id) {
      if (id !== 'sealchat-crypto' || !meta) return null;
      return { getAttribute: (name) => (Object.prototype.hasOwnProperty.call(meta, name) ? meta[name] : null) };
    },
  };
  if (mode === 'webcrypto') {
    ctx.crypto = crypto.webcrypto;
  } else if (mode === 'fallback' || mode === 'fallback-noworker') {
    ctx.crypto = fallbackCrypto(stats);
    if (subtle) {
      Object.defineProperty(ctx.crypto, 'subtle', {
        get() {
          stats.subtleReads += 1;
          return subtle;
        },
      });
    }
  } else if (mode !== 'none') {
    throw new Error('unknown mode ' + mode);
  }
  if (mode === 'fallback') {
    ctx.Worker = function Worker(url) {
      return new FakeWorker(url, stats);
    };
  }
  if (nacl) runFile(ctx, NACL_FILE);
  runFile(ctx, path.join(staticDir, 'js', 'sealcrypto.js'));
  const SC = ctx.SealCrypto;
  SC.setFallbackUrls(URLS);
  return { ctx, SC, stats };
}

// Promise wrappers around the callback API; `after` holds arguments that follow the callback.
function call(SC, name, ...args) {
  return callThen(SC, name, args, []);
}

function callThen(SC, name, before, after) {
  return new Promise((resolve, reject) => {
    SC[name](...before, (err, value) => (err ? reject(err) : resolve(value)), ...after);
  });
}

function detect(SC) {
  return new Promise((resolve) => SC.detect(resolve));
}

const hex = (bytes) => Buffer.from(Array.from(bytes)).toString('hex');
const fromB64u = (s) => Buffer.from(s, 'base64url');
const toB64u = (buf) => Buffer.from(buf).toString('base64url');
const sha256hex = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

module.exports = {
  repoRoot, staticDir, VENDOR_FILE, NACL_FILE, URLS, sriFor, makeBrowser, runFile, call, callThen, detect, hex, fromB64u, toB64u, sha256hex,
};
