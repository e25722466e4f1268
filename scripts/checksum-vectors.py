#!/usr/bin/env python3
"""Write checksum test vectors for ota-core from independent implementations.

The expected values come from Python's hashlib (MD5, SHA-256/384/512), zlib (CRC-32) and the
`mmh3` package (MurmurHash3 x86 32-bit and x64 128-bit, seed 0), in the hex encodings that
ThingsBoard devices verify:

- digests: lowercase hex of the digest bytes;
- CRC32, MURMUR3_32: the unsigned 32-bit number's bytes, little-endian first
  (struct.pack('<I', n).hex());
- MURMUR3_128: mmh3.hash_bytes(data).hex() (h1 little-endian, then h2 little-endian).

Inputs are described in the JSON, not embedded; `ota-core/tests/checksum_vectors.rs`
regenerates them. The pseudo-random input uses xorshift64*:

    state = SEED (0x9E3779B97F4A7C15)
    each step:
        state ^= state >> 12
        state ^= state << 25   (mod 2**64)
        state ^= state >> 27
        out = state * 0x2545F4914F6CDD1D   (mod 2**64)
        emit out as 8 bytes, little-endian
    repeat until LENGTH bytes are emitted (LENGTH is a multiple of 8).

Usage: pip install mmh3 && python3 scripts/checksum-vectors.py
"""

import hashlib
import json
import pathlib
import struct
import zlib

import mmh3

MASK64 = (1 << 64) - 1
SEED = 0x9E3779B97F4A7C15
MULTIPLIER = 0x2545F4914F6CDD1D
RANDOM_LEN = 1024 * 1024

OUT = pathlib.Path(__file__).resolve().parent.parent / "ota-core" / "tests" / "vectors" / "checksums.json"


def xorshift64star(seed: int, length: int) -> bytes:
    """`length` bytes (a multiple of 8) from xorshift64* started at `seed`."""
    if length % 8 != 0:
        raise ValueError("length must be a multiple of 8")
    state = seed & MASK64
    out = bytearray()
    for _ in range(length // 8):
        state ^= state >> 12
        state = (state ^ (state << 25)) & MASK64
        state ^= state >> 27
        out += struct.pack("<Q", (state * MULTIPLIER) & MASK64)
    return bytes(out)


def checksums(data: bytes) -> dict:
    return {
        "MD5": hashlib.md5(data).hexdigest(),
        "SHA256": hashlib.sha256(data).hexdigest(),
        "SHA384": hashlib.sha384(data).hexdigest(),
        "SHA512": hashlib.sha512(data).hexdigest(),
        "CRC32": struct.pack("<I", zlib.crc32(data) & 0xFFFFFFFF).hex(),
        "MURMUR3_32": struct.pack("<I", mmh3.hash(data, 0, signed=False)).hex(),
        "MURMUR3_128": mmh3.hash_bytes(data, 0).hex(),
    }


def main() -> None:
    fox = b"The quick brown fox jumps over the lazy dog"
    inputs = [
        ("empty", {"kind": "bytes", "text": ""}, b""),
        ("fox", {"kind": "bytes", "text": fox.decode("ascii")}, fox),
        (
            "random_1mib",
            {
                "kind": "xorshift64star",
                "seed": f"0x{SEED:016x}",
                "multiplier": f"0x{MULTIPLIER:016x}",
                "length": RANDOM_LEN,
                "description": (
                    "state = seed; per step: state ^= state >> 12; state ^= state << 25 "
                    "(mod 2^64); state ^= state >> 27; emit (state * multiplier mod 2^64) "
                    "as 8 bytes little-endian; repeat until length bytes"
                ),
            },
            xorshift64star(SEED, RANDOM_LEN),
        ),
    ]
    doc = {
        "generated_by": "scripts/checksum-vectors.py (hashlib, zlib, mmh3; seed 0)",
        "encoding": (
            "lowercase hex; digests as bytes; CRC32 and MURMUR3_32 as the unsigned 32-bit "
            "number little-endian first; MURMUR3_128 as mmh3.hash_bytes (h1 LE, h2 LE)"
        ),
        "vectors": [
            {
                "name": name,
                "input": desc,
                "sha256_of_input": hashlib.sha256(data).hexdigest(),
                "checksums": checksums(data),
            }
            for name, desc, data in inputs
        ],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
