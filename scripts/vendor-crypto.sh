#!/bin/sh
# Rebuilds frontend/static/vendor/ from the pinned node-forge release so anyone can check that the
# vendored bytes are exactly the published ones. Usage: sh scripts/vendor-crypto.sh [--check]
#   (no argument) fetch the package, verify both hashes, copy the files into frontend/static/vendor/
#   --check       fetch and verify, then fail unless the vendored files are byte-identical
# Needs node and npm with the npm registry reachable.
set -eu

NAME=node-forge
VERSION=1.4.3
# Integrity of the package tarball as the registry publishes it (same value as package-lock.json).
TARBALL_SHA512=sha512-P6wzfh6t70avmV8FrVEAd/36sOPJQ+hkaJVX1Laap9J/77m7M0eyozDvc8SwnDf4P7MP94gwbAAo0rg3YVXT+g==
# SHA-256 of dist/forge.min.js inside that tarball, the file that is served to browsers.
FILE_SHA256=a8b6d50267d709db0411a598efc4c57bffd6127f21410339f71c919e3bde725b

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST="$ROOT/frontend/static/vendor"
TARGET="forge-$VERSION.min.js"
MODE=${1:-write}
case "$MODE" in write|--check) ;; *) echo "usage: $0 [--check]" >&2; exit 2 ;; esac

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM

(cd "$TMP" && npm pack --silent "$NAME@$VERSION" >/dev/null)
TGZ="$TMP/$NAME-$VERSION.tgz"

digest() { # digest ALGORITHM FILE ENCODING -> prints the digest
    node -e 'var c=require("crypto"),fs=require("fs");process.stdout.write(c.createHash(process.argv[1]).update(fs.readFileSync(process.argv[2])).digest(process.argv[3]))' "$1" "$2" "$3"
}

got="sha512-$(digest sha512 "$TGZ" base64)"
if [ "$got" != "$TARBALL_SHA512" ]; then
    echo "tarball integrity mismatch: expected $TARBALL_SHA512, got $got" >&2
    exit 1
fi
tar -xzf "$TGZ" -C "$TMP"
got=$(digest sha256 "$TMP/package/dist/forge.min.js" hex)
if [ "$got" != "$FILE_SHA256" ]; then
    echo "dist/forge.min.js sha256 mismatch: expected $FILE_SHA256, got $got" >&2
    exit 1
fi

if [ "$MODE" = "--check" ]; then
    cmp "$TMP/package/dist/forge.min.js" "$DEST/$TARGET"
    cmp "$TMP/package/LICENSE" "$DEST/LICENSE.node-forge"
    echo "vendored $NAME $VERSION matches the published package (sha256 $FILE_SHA256)"
    exit 0
fi

mkdir -p "$DEST"
cp "$TMP/package/dist/forge.min.js" "$DEST/$TARGET"
cp "$TMP/package/LICENSE" "$DEST/LICENSE.node-forge"
cat > "$DEST/README.md" <<README
# Vendored browser libraries

- node-forge $VERSION, file \`dist/forge.min.js\` copied unchanged as \`$TARGET\`, sha256 \`$FILE_SHA256\`,
  source: npm package \`$NAME@$VERSION\` (tarball integrity \`$TARBALL_SHA512\`),
  licence: BSD-3-Clause (chosen; the package is dual-licensed BSD-3-Clause OR GPL-2.0, see \`LICENSE.node-forge\`).
  Rebuild or verify with \`sh scripts/vendor-crypto.sh\` or \`sh scripts/vendor-crypto.sh --check\`.
  Used only by \`js/sealcrypto.js\` and \`js/sealcrypto-worker.js\` when the browser has no usable Web Crypto (docs/BROWSER-CRYPTO.md).
README
echo "wrote $DEST/$TARGET (sha256 $FILE_SHA256), LICENSE.node-forge and README.md"
