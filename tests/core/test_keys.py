"""Signing keys: the Synapse-format key file, key IDs, base64 forms, signedjson interop."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import signedjson.key
from nacl.signing import SigningKey, VerifyKey

from hs.core.keys import (
    KeyFormatError,
    decode_signing_key_base64,
    decode_verify_key_base64,
    decode_verify_key_bytes,
    encode_signing_key_base64,
    encode_verify_key_base64,
    generate_signing_key,
    get_verify_key,
    is_signing_algorithm_supported,
    key_id,
    read_signing_key_file,
    read_signing_keys,
    static_key_lookup,
    write_signing_key_file,
    write_signing_keys,
)

SEED = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"
#: From the spec vectors' notes: the public key derived from SEED.
PUBLIC = "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI"
#: A key file line as Synapse writes it (``<alg> <version> <seed>``).
SYNAPSE_FILE = f"ed25519 a_AbCd {SEED}\n"
#: The spec's seed has non-zero padding bits; re-encoding yields the canonical form.
CANONICAL_SEED = SEED[:-1] + "0"


def test_synapse_key_file_line() -> None:
    (key,) = read_signing_keys(SYNAPSE_FILE)
    assert isinstance(key, SigningKey)
    assert (key.alg, key.version) == ("ed25519", "a_AbCd")
    assert key_id(key) == "ed25519:a_AbCd"
    assert encode_verify_key_base64(get_verify_key(key)) == PUBLIC
    assert encode_signing_key_base64(key) == CANONICAL_SEED
    assert write_signing_keys([key]) == f"ed25519 a_AbCd {CANONICAL_SEED}\n"
    assert read_signing_keys(write_signing_keys([key]))[0].encode() == key.encode()
    # signedjson reads the same line to the same key.
    (theirs,) = signedjson.key.read_signing_keys(SYNAPSE_FILE.splitlines())
    assert bytes(theirs) == bytes(key) and theirs.version == key.version


def test_key_file_round_trip(tmp_path: Path) -> None:
    keys = [generate_signing_key("a_1"), generate_signing_key("b_2")]
    path = tmp_path / "signing.key"
    write_signing_key_file(path, keys)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    back = read_signing_key_file(path)
    assert [(k.version, bytes(k)) for k in back] == [(k.version, bytes(k)) for k in keys]
    # signedjson's writer output is readable by us, and ours by it.
    with path.open("w") as handle:
        signedjson.key.write_signing_keys(handle, keys)
    assert [bytes(k) for k in read_signing_key_file(path)] == [bytes(k) for k in keys]
    theirs = signedjson.key.read_signing_keys(write_signing_keys(keys).splitlines())
    assert [bytes(k) for k in theirs] == [bytes(k) for k in keys]


def test_multiple_lines_and_blank_lines() -> None:
    text = f"\n{SYNAPSE_FILE}\n  \ned25519 second {SEED}\n"
    assert [k.version for k in read_signing_keys(text)] == ["a_AbCd", "second"]
    assert [k.version for k in read_signing_keys(text.splitlines())] == ["a_AbCd", "second"]


@pytest.mark.parametrize(
    "line",
    [
        f"ed25519 a_1 {SEED} extra",
        "ed25519 a_1",
        f"curve25519 a_1 {SEED}",
        f"ed25519 bad:version {SEED}",
        "ed25519 a_1 not*base64",
        "ed25519 a_1 AAAA",  # 3 bytes, not 32
    ],
)
def test_bad_key_lines(line: str) -> None:
    with pytest.raises(KeyFormatError):
        read_signing_keys(line)


def test_verify_keys() -> None:
    vk = decode_verify_key_base64("ed25519", "1", PUBLIC)
    assert isinstance(vk, VerifyKey) and key_id(vk) == "ed25519:1"
    assert vk == get_verify_key(decode_signing_key_base64("ed25519", "1", SEED))
    theirs = signedjson.key.decode_verify_key_base64("ed25519", "1", PUBLIC)
    assert bytes(theirs) == bytes(vk)
    raw = decode_verify_key_bytes("ed25519:x_y", bytes(vk))
    assert raw.version == "x_y" and raw == vk
    for bad_id in ("ed25519", "rsa:1", "ed25519:", 5):
        with pytest.raises(KeyFormatError):
            decode_verify_key_bytes(bad_id, bytes(vk))  # type: ignore[arg-type]
    with pytest.raises(KeyFormatError):
        decode_verify_key_bytes("ed25519:1", b"short")
    with pytest.raises(KeyFormatError):
        decode_verify_key_base64("ed25519", "1", "@@@")


def test_key_ids_and_generation() -> None:
    key = generate_signing_key("auto")
    assert key_id(key) == "ed25519:auto" == key_id(get_verify_key(key))
    assert generate_signing_key("auto").encode() != key.encode()
    with pytest.raises(KeyFormatError):
        generate_signing_key("has space")
    with pytest.raises(KeyFormatError):
        key_id(SigningKey.generate())  # a bare PyNaCl key has no version
    assert is_signing_algorithm_supported("ed25519:abc")
    assert not is_signing_algorithm_supported("curve25519:abc")
    theirs = signedjson.key.generate_signing_key("z")
    assert key_id(theirs) == "ed25519:z"


def test_static_key_lookup() -> None:
    vk = decode_verify_key_base64("ed25519", "1", PUBLIC)
    lookup = static_key_lookup({"s": {"ed25519:1": (vk, 5)}})
    assert lookup("s", "ed25519:1") == (vk, 5)
    assert lookup("s", "ed25519:2") is None
    assert lookup("t", "ed25519:1") is None
