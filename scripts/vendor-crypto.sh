#!/bin/sh
# Rebuilds frontend/static/vendor/ from the pinned node-forge and tweetnacl releases so anyone can
# check that the vendored bytes are exactly the published ones. Usage: sh scripts/vendor-crypto.sh [--check]
#   (no argument) fetch both packages, verify every hash, copy the files into frontend/static/vendor/
#   --check       fetch and verify, then fail unless the vendored files are byte-identical
# Needs node and npm with the npm registry reachable.
set -eu

# node-forge: SHA-256, HMAC, PBKDF2's first block and AES-GCM where Web Crypto is missing.
FORGE_VERSION=1.4.3
# Integrity of the package tarball as the registry publishes it (same value as package-lock.json).
FORGE_TARBALL_SHA512=sha512-P6wzfh6t70avmV8FrVEAd/36sOPJQ+hkaJVX1Laap9J/77m7M0eyozDvc8SwnDf4P7MP94gwbAAo0rg3YVXT+g==
# SHA-256 of dist/forge.min.js inside that tarball, the file that is served to browsers.
FORGE_FILE_SHA256=a8b6d50267d709db0411a598efc4c57bffd6127f21410339f71c919e3bde725b

# tweetnacl: X25519, Ed25519 and SHA-512 on every browser (Web Crypto has no X25519 on old engines).
NACL_VERSION=1.0.3
NACL_TARBALL_SHA512=sha512-6rt+RN7aOi1nGMyC4Xa5DdYiukl2UWCbcJft7YhxReBGQD7OAM8Pbxw6YMo4r2diNEA8FEmu32YOn9rhaiE5yw==
# SHA-256 of nacl-fast.min.js inside that tarball.
NACL_FILE_SHA256=3ec535c004aeeb225785d8e93fb33bf99f52e399bd7dfc01969b5629baea5131

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST="$ROOT/frontend/static/vendor"
MODE=${1:-write}
case "$MODE" in write|--check) ;; *) echo "usage: $0 [--check]" >&2; exit 2 ;; esac

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM

digest() { # digest ALGORITHM FILE ENCODING -> prints the digest
    node -e 'var c=require("crypto"),fs=require("fs");process.stdout.write(c.createHash(process.argv[1]).update(fs.readFileSync(process.argv[2])).digest(process.argv[3]))' "$1" "$2" "$3"
}

# fetch NAME VERSION TARBALL_SHA512 FILE FILE_SHA256: unpacks the verified package into $TMP/NAME/package
fetch() {
    mkdir -p "$TMP/$1"
    (cd "$TMP/$1" && npm pack --silent "$1@$2" >/dev/null)
    tgz="$TMP/$1/$1-$2.tgz"
    got="sha512-$(digest sha512 "$tgz" base64)"
    if [ "$got" != "$3" ]; then
        echo "$1 tarball integrity mismatch: expected $3, got $got" >&2
        exit 1
    fi
    tar -xzf "$tgz" -C "$TMP/$1"
    got=$(digest sha256 "$TMP/$1/package/$4" hex)
    if [ "$got" != "$5" ]; then
        echo "$1 $4 sha256 mismatch: expected $5, got $got" >&2
        exit 1
    fi
}

FORGE_TARGET="forge-$FORGE_VERSION.min.js"
NACL_TARGET="nacl-fast-$NACL_VERSION.min.js"
fetch node-forge "$FORGE_VERSION" "$FORGE_TARBALL_SHA512" dist/forge.min.js "$FORGE_FILE_SHA256"
fetch tweetnacl "$NACL_VERSION" "$NACL_TARBALL_SHA512" nacl-fast.min.js "$NACL_FILE_SHA256"
FORGE_PKG="$TMP/node-forge/package"
NACL_PKG="$TMP/tweetnacl/package"

if [ "$MODE" = "--check" ]; then
    cmp "$FORGE_PKG/dist/forge.min.js" "$DEST/$FORGE_TARGET"
    cmp "$FORGE_PKG/LICENSE" "$DEST/LICENSE.node-forge"
    cmp "$NACL_PKG/nacl-fast.min.js" "$DEST/$NACL_TARGET"
    cmp "$NACL_PKG/LICENSE" "$DEST/LICENSE.tweetnacl"
    echo "vendored node-forge $FORGE_VERSION matches the published package (sha256 $FORGE_FILE_SHA256)"
    echo "vendored tweetnacl $NACL_VERSION matches the published package (sha256 $NACL_FILE_SHA256)"
    exit 0
fi

mkdir -p "$DEST"
cp "$FORGE_PKG/dist/forge.min.js" "$DEST/$FORGE_TARGET"
cp "$FORGE_PKG/LICENSE" "$DEST/LICENSE.node-forge"
cp "$NACL_PKG/nacl-fast.min.js" "$DEST/$NACL_TARGET"
cp "$NACL_PKG/LICENSE" "$DEST/LICENSE.tweetnacl"
cat > "$DEST/README.md" <<README
# Vendored browser libraries

- node-forge $FORGE_VERSION, file \`dist/forge.min.js\` copied unchanged as \`$FORGE_TARGET\`, sha256 \`$FORGE_FILE_SHA256\`,
  source: npm package \`node-forge@$FORGE_VERSION\` (tarball integrity \`$FORGE_TARBALL_SHA512\`),
  licence: BSD-3-Clause (chosen; the package is dual-licensed BSD-3-Clause OR GPL-2.0, see \`LICENSE.node-forge\`).
  Used only by \`js/sealcrypto.js\` and \`js/sealcrypto-worker.js\` when the browser has no usable Web Crypto (docs/BROWSER-CRYPTO.md).
- tweetnacl $NACL_VERSION, file \`nacl-fast.min.js\` copied unchanged as \`$NACL_TARGET\`, sha256 \`$NACL_FILE_SHA256\`,
  source: npm package \`tweetnacl@$NACL_VERSION\` (tarball integrity \`$NACL_TARBALL_SHA512\`),
  licence: public domain (Unlicense, see \`LICENSE.tweetnacl\`).
  Loaded by the chat and kiosk pages before \`js/sealcrypto.js\`, which uses it on every browser for X25519, Ed25519 and SHA-512 (docs/PROTOCOL.md).

Rebuild or verify both with \`sh scripts/vendor-crypto.sh\` or \`sh scripts/vendor-crypto.sh --check\`.
README
echo "wrote $DEST: $FORGE_TARGET (sha256 $FORGE_FILE_SHA256), $NACL_TARGET (sha256 $NACL_FILE_SHA256), licences and README.md"
