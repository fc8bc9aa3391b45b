"""Rebuilds file-chunks-v1.json, the known-answer vectors for the file framing in docs/API.md.

Run from the repository root: python tests/vectors/make_file_vectors.py
The inputs are fixed, so the output is the same on every run.
"""
import hashlib
import json
import pathlib

from chat.client import crypto

HERE = pathlib.Path(__file__).parent
SHARED = HERE / "protocol-v1-vectors.json"


def pattern(size: int) -> bytes:
    return bytes(i % 251 for i in range(size))


def main() -> None:
    case = json.loads(SHARED.read_text())["cases"][0]
    keys = crypto.RoomKeys(case["room_id"], bytes.fromhex(case["ikm_hex"]),
                           bytes.fromhex(case["enc_key_hex"]), crypto.unb64u(case["auth_key"]))
    files = []
    # 262144 and 262145 sit on the chunk boundary: one full chunk, then a second of one byte.
    for file_id_byte, size in ((0x11, 0), (0x22, 20), (0x33, 600_000), (0x44, 262_144), (0x55, 262_145)):
        file_id = bytes([file_id_byte]) * 16
        fkey = crypto.file_key(keys, file_id)
        chunks = list(crypto.encrypt_chunks(fkey, file_id, pattern(size)))
        entry = {
            "file_id": crypto.b64u(file_id),
            "size": size,
            "content": "bytes(i % 251 for i in range(size))",
            "content_sha256": hashlib.sha256(pattern(size)).hexdigest(),
            "file_key_hex": fkey.hex(),
            "chunks": len(chunks),
            "chunk_sha256": [hashlib.sha256(c).hexdigest() for c in chunks],
        }
        if size <= 64:
            entry["chunk_c"] = [crypto.b64u(c) for c in chunks]
        files.append(entry)
    out = {
        "protocol": "sealchat/v1 file framing (docs/API.md)",
        "enc_key_hex": case["enc_key_hex"],
        "room_id": case["room_id"],
        "chunk_bytes": crypto.CHUNK_BYTES,
        "files": files,
    }
    (HERE / "file-chunks-v1.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
