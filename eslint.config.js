'use strict';
// ESLint over the scripts the server ships (frontend/static/js; not the vendored libraries), run by
// .ci/run as `npx eslint`. They are ES5 classic scripts for old Android WebViews: each is one
// function called with the global object and reaches other modules only through it (root.Seal,
// root.SealCrypto), so the only bare globals are the browser's and the names declared below.

const js = require('@eslint/js');
const globals = require('globals');

// What the shipped scripts define on the global object, and the vendored libraries they load. The
// scripts reach them only as properties of it (root.SealCrypto), never assign them as bare names.
const SEALCHAT = {
  Seal: 'readonly', // the namespace api.js, dom.js, epochs.js, passwords.js, session.js, wakelock.js fill
  SealCrypto: 'readonly', // sealcrypto.js
  SealKdf: 'readonly', // sealcrypto-worker.js, also run as a classic script
  nacl: 'readonly', // frontend/static/vendor/nacl-fast-1.0.3.min.js
  forge: 'readonly' // frontend/static/vendor/forge-1.4.3.min.js, loaded only where Web Crypto is missing
};

// Typed arrays are ES2015 by the standard but in every engine served (Android 4 WebViews have them);
// nothing else newer than ES5 (Promise, Map, TextEncoder) may be used as a bare name.
const TYPED_ARRAYS = {
  Uint8Array: 'readonly',
  Uint16Array: 'readonly',
  Int32Array: 'readonly'
};

module.exports = [
  // Only the shipped scripts: every other JavaScript file (tests, bench, vendor, this file) is left out.
  { ignores: ['**/*.js', '**/*.cjs', '**/*.mjs', '!frontend/static/js/*.js'] },
  {
    files: ['frontend/static/js/*.js'],
    languageOptions: {
      ecmaVersion: 5,
      sourceType: 'script',
      globals: { ...globals.browser, ...TYPED_ARRAYS, ...SEALCHAT }
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      ...js.configs.recommended.rules,
      'no-undef': 'error',
      // ES5 has no optional catch binding: `catch (e)` must name what it ignores.
      'no-unused-vars': ['error', { caughtErrors: 'none' }],
      // An Error's `cause` option is ES2022; old engines drop it, so the message carries the reason.
      'preserve-caught-error': 'off'
    }
  },
  {
    // Also runs as a dedicated worker (importScripts, postMessage, onmessage on its global).
    files: ['frontend/static/js/sealcrypto-worker.js'],
    languageOptions: { globals: { ...globals.worker } }
  }
];
