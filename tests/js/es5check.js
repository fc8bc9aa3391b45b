'use strict';
// Parses every file named on the command line as an ES5 script with acorn, the language level of
// the old Android browsers Sealchat serves; prints each failure with its reason and exits 1 on any.
// Usage: node tests/js/es5check.js FILE...

const fs = require('node:fs');

let acorn;
try {
  acorn = require('acorn');
} catch (e) {
  console.error('acorn is not installed: run `npm ci` at the repository root');
  process.exit(2);
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node tests/js/es5check.js FILE...');
  process.exit(2);
}

let failed = 0;
for (const file of files) {
  try {
    acorn.parse(fs.readFileSync(file, 'utf8'), { ecmaVersion: 5, sourceType: 'script', locations: true });
    console.log(`ok   ${file}`);
  } catch (e) {
    failed += 1;
    const where = e.loc ? `:${e.loc.line}:${e.loc.column + 1}` : '';
    console.log(`FAIL ${file}${where}: ${e.message}`);
  }
}
console.log(`${files.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
