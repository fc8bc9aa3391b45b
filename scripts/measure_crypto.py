"""Times SealCrypto's protocol v2 operations in headless Chromium and prints a Markdown table.

    python scripts/measure_crypto.py [--chromium /usr/bin/chromium] [--members 200] [--runs 15]

Why this exists: the browser's key exchange runs on the vendored tweetnacl on every engine, and the
fallback path runs AES-GCM/HKDF/HMAC on node-forge, so a slow phone pays for every signature,
X25519 and grant itself. This starts a Sealchat server on 127.0.0.1 (a free port), opens a page of
it in Debian's Chromium driven by Playwright, loads the scripts the chat page loads (tweetnacl,
then sealcrypto.js, from the server's own content-hashed URLs with their integrity), and times the
real SealCrypto four ways:

- engine: "fast" (the normal JIT) or "slow phone" (--js-flags=--jitless plus CDP
  Emulation.setCPUThrottlingRate 4);
- path: "Web Crypto" (127.0.0.1 is a secure context) or "fallback" (crypto.subtle hidden before
  any script runs, as on plain HTTP, so detection picks node-forge).

Each cell is the median of --runs runs (one run each for the full-room rekeys, which seal one grant
after another as the host's page does, and then once more with all grants in flight at once). The
members' set-up for those rows runs without CPU throttling and is not timed. Output goes to stdout
only; nothing is written to the repository.
"""
from __future__ import annotations

import argparse
import pathlib
import re
import subprocess
import sys
import time
import urllib.request
from typing import Dict, List, Tuple

from playwright.sync_api import sync_playwright
from local_server import start_server  # scripts/local_server.py

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
SLOW_FLAGS = ["--js-flags=--jitless"]
CPU_THROTTLE = 4

# Hides crypto.subtle before any page script runs, as browsers do on plain HTTP.
HIDE_SUBTLE = """
Object.defineProperty(Crypto.prototype, 'subtle', {configurable: true, get: function () { return undefined; }});
"""

LOAD_SCRIPT = """
([src, sri]) => new Promise((resolve, reject) => {
  const s = document.createElement('script');
  s.src = src;
  s.integrity = sri;
  s.onload = resolve;
  s.onerror = () => reject(new Error('could not load ' + src));
  document.head.appendChild(s);
})
"""

# The in-page benchmark (not shipped, so it may use modern JavaScript), in three parts that share
# window.bench: timed rows, the members' set-up (not timed, run without CPU throttling), timed rows.
# Every row goes through window.SealCrypto except the three raw tweetnacl rows, which time what
# SealCrypto calls.
PRELUDE = r"""
window.bench = window.bench || {};
const B = window.bench, SC = window.SealCrypto, nacl = window.nacl;
const p = (name, ...args) => new Promise((res, rej) => SC[name](...args, (e, v) => (e ? rej(e) : res(v))));
const median = (xs) => { const s = xs.slice().sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const rows = {};
async function time(name, n, fn) {
  const xs = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn(i);
    xs.push(performance.now() - t0);
  }
  rows[name] = median(xs);
}
"""

PART_1 = "async ({runs}) => {" + PRELUDE + r"""
  B.backend = await new Promise((res) => SC.detect(res));
  B.roomId = 'bench-room';
  B.mk = SC.b64u(SC.randomBytes(32));
  let t0 = performance.now();
  const host = SC.newSession(); // the first call also runs tweetnacl's known-answer self-test
  rows['first newSession (with tweetnacl self-test)'] = performance.now() - t0;
  await time('newSession', runs, () => SC.newSession());
  const peer = SC.newSession();
  await time('X25519 shared secret (nacl.scalarMult)', runs, () => nacl.scalarMult(host.dhSk, peer.dhPk));
  const msg = SC.randomBytes(200);
  await time('Ed25519 sign, 200 bytes (nacl.sign.detached)', runs, () => nacl.sign.detached(msg, host._sigSk));
  const sig = nacl.sign.detached(msg, host._sigSk);
  await time('Ed25519 verify, 200 bytes (nacl.sign.detached.verify)', runs,
    () => nacl.sign.detached.verify(msg, sig, host.sigPk));
  const wire = await p('makeAnnouncement', B.mk, B.roomId, host, 'host');
  await time('makeAnnouncement', runs, () => p('makeAnnouncement', B.mk, B.roomId, host, 'host'));
  await time('checkAnnouncement', runs, () => p('checkAnnouncement', B.mk, B.roomId, wire, 'host'));
  B.host = host;
  B.hostAnn = await p('checkAnnouncement', B.mk, B.roomId, wire, 'host');
  return {backend: B.backend, rows};
}
"""

SETUP = "async ({count}) => {" + PRELUDE + r"""
  B.people = [];
  for (let i = 0; i < count; i++) {
    const s = SC.newSession();
    const name = 'm' + i;
    const wire = await p('makeAnnouncement', B.mk, B.roomId, s, name);
    const ann = await p('checkAnnouncement', B.mk, B.roomId, wire, name);
    B.people.push({name, s, ann});
  }
}
"""

PART_2 = "async ({runs, members}) => {" + PRELUDE + r"""
  const {roomId, mk, host, hostAnn, people} = B;
  let t0;
  const names = ['host'].concat(people.map((x) => x.name));
  const key = SC.newEpochKey();
  const grants = [];
  await time('sealGrant, first to this member (X25519 + HKDF + AES-GCM + sign)', runs, async (i) => {
    grants.push(await p('sealGrant', mk, roomId, host, 'host', people[i].ann, 1, 0, names, key));
  });
  await time('sealGrant, again to the same member (X25519 cached)', runs,
    (i) => p('sealGrant', mk, roomId, host, 'host', people[i].ann, 2, 0, names, key));
  await time('openGrant (verify + X25519 + HKDF + AES-GCM)', runs, (i) => {
    const g = grants[i];
    const ev = {from: 'host', g: g.g, n: g.n, c: g.c, s: g.s};
    return p('openGrant', mk, roomId, people[i].s, people[i].name, hostAnn, ev);
  });
  const ep = await p('epochFromKey', roomId, 1, key);
  await time('epochFromKey (msg_key)', runs, (i) => p('epochFromKey', roomId, 10 + i, key));
  const text = 'a message of about the length people type in a chat room, give or take';
  const envs = [];
  await time('sealText (AES-GCM + sign)', runs, async () => {
    envs.push(await p('sealText', ep, host, 'host', text));
  });
  await time('open (verify + AES-GCM)', runs, (i) => p('open', () => ep, envs[i], 'host', hostAnn));
  const file = SC.randomBytes(SC.CHUNK_BYTES);
  let chunk;
  await time('encryptFile, one 256 KiB chunk (AES-GCM + SHA-512 + sign)', Math.min(runs, 5), async () => {
    chunk = await p('encryptFile', ep, host, file, null);
  });
  await time('decryptChunk, 256 KiB (SHA-512 + verify + AES-GCM)', Math.min(runs, 5),
    () => p('decryptChunk', ep, hostAnn, chunk.fileId, 0, 1, chunk.chunks[0].c, chunk.chunks[0].s));
  const code = [hostAnn].concat(people.slice(0, members - 1).map((x) => x.ann))
    .map((x) => ({user: x.user, dh: x.dh, sig: x.sig}));
  await time('safetyCode, ' + members + ' members', runs, () => p('safetyCode', roomId, code));

  // A full room's rekey as the host's page does it: one epochFromKey, then one grant after another.
  async function rekey(epoch, me) {
    const k = SC.newEpochKey();
    const t = performance.now();
    await p('epochFromKey', roomId, epoch, k);
    for (const x of people.slice(0, members - 1)) {
      await p('sealGrant', mk, roomId, me, 'host', x.ann, epoch, 0, names.slice(0, members), k);
    }
    return performance.now() - t;
  }
  const fresh = SC.newSession(); // a new host: every grant pays its X25519
  rows['rekey, ' + members + ' members: first (' + (members - 1) + ' X25519)'] = await rekey(100, fresh);
  rows['rekey, ' + members + ' members: next ones (X25519 cached)'] = await rekey(101, fresh);
  // The same with every grant in flight at once: tweetnacl's work is synchronous either way, but
  // the Web Crypto round trips of one grant then overlap the others'.
  const k2 = SC.newEpochKey();
  t0 = performance.now();
  await p('epochFromKey', roomId, 102, k2);
  await Promise.all(people.slice(0, members - 1).map(
    (x) => p('sealGrant', mk, roomId, fresh, 'host', x.ann, 102, 0, names.slice(0, members), k2)));
  rows['rekey, ' + members + ' members: next ones, grants concurrent'] = performance.now() - t0;
  return {rows};
}
"""



def chat_page_scripts(base: str) -> Tuple[List[Tuple[str, str]], Dict[str, str]]:
    """The chat page's tweetnacl and sealcrypto.js (URL, integrity) and its sealchat-crypto meta attributes."""
    page = urllib.request.urlopen(base + "/chat/bench-room", timeout=10).read().decode("utf-8")
    scripts = re.findall(r'<script src="([^"]+)" integrity="([^"]+)"></script>', page)
    ends = ("/vendor/nacl-fast-1.0.3.min.js", "/js/sealcrypto.js")
    wanted = [(src, sri) for src, sri in scripts if src.endswith(ends)]
    if len(wanted) != 2:
        raise SystemExit("the chat page does not load tweetnacl and sealcrypto.js")
    meta = re.search(r'<meta name="sealchat-crypto"[^>]*>', page)
    attrs = dict(re.findall(r'(data-[a-z-]+)="([^"]*)"', meta.group(0))) if meta else {}
    return wanted, attrs


def measure(pw, chromium: str, base: str, slow: bool, fallback: bool, runs: int, members: int) -> Dict:
    browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                 args=CHROMIUM_FLAGS + (SLOW_FLAGS if slow else []))
    try:
        context = browser.new_context()
        page = context.new_page()
        if fallback:
            page.add_init_script(HIDE_SUBTLE)
        cdp = context.new_cdp_session(page)

        def throttle(rate: int) -> None:
            if slow:
                cdp.send("Emulation.setCPUThrottlingRate", {"rate": rate})

        throttle(CPU_THROTTLE)
        page.goto(base + "/", wait_until="load")
        scripts, meta = chat_page_scripts(base)
        for src_sri in scripts:  # in order, each with its integrity, as the chat page has them
            page.evaluate(LOAD_SCRIPT, list(src_sri))
        page.evaluate("(m) => SealCrypto.setFallbackUrls({vendor: m['data-vendor'], worker: m['data-worker'], "
                      "vendorIntegrity: m['data-vendor-integrity'], workerIntegrity: m['data-worker-integrity']})",
                      meta)
        result = page.evaluate(PART_1, {"runs": runs})
        throttle(1)  # the members' set-up is not measured
        page.evaluate(SETUP, {"count": max(members - 1, runs)})
        throttle(CPU_THROTTLE)
        result["rows"].update(page.evaluate(PART_2, {"runs": runs, "members": members})["rows"])
        expected = "fallback" if fallback else "webcrypto"
        if result["backend"] != expected:
            raise SystemExit(f"expected the {expected} path, detection chose {result['backend']}")
        return result
    finally:
        browser.close()


def fmt(ms: float) -> str:
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    if ms >= 10:
        return f"{ms:.0f} ms"
    return f"{ms:.2f} ms"


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--members", type=int, default=200, help="room size for the rekey and safety code rows")
    ap.add_argument("--runs", type=int, default=15, help="runs per timed row (median reported)")
    args = ap.parse_args(argv)
    proc, base = start_server()
    columns = [("fast, Web Crypto", False, False), ("fast, fallback", False, True),
               ("slow phone, Web Crypto", True, False), ("slow phone, fallback", True, True)]
    results = {}
    try:
        with sync_playwright() as pw:
            for name, slow, fallback in columns:
                t0 = time.monotonic()
                results[name] = measure(pw, args.chromium, base, slow, fallback, args.runs, args.members)
                print(f"measured {name} in {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    version = subprocess.run([args.chromium, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"SealCrypto v2 timings, {version}, median of {args.runs} runs; "
          f"slow phone = --js-flags=--jitless and CPU throttling x{CPU_THROTTLE}\n")
    print("| operation | " + " | ".join(name for name, _, _ in columns) + " |")
    print("| --- |" + " ---: |" * len(columns))
    for row in results[columns[0][0]]["rows"]:
        print(f"| {row} | " + " | ".join(fmt(results[name]["rows"][row]) for name, _, _ in columns) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
