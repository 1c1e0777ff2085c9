"""Signing JSON objects and checking their signatures (spec appendix "Signing JSON").

A signature covers the canonical JSON of the object without ``signatures`` and
``unsigned``; it is stored as ``signatures[<server>][<alg>:<version>]`` in unpadded
base64. Keys are PyNaCl objects with ``alg``/``version`` attributes (see ``hs.core.keys``),
so these functions interoperate with ``signedjson`` in both directions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from hs.core.canonical_json import CanonicalJSONError, encode_canonical_json
from hs.core.keys import ED25519, key_id
from hs.core.unpadded_base64 import decode_base64, encode_base64

__all__ = [
    "SignatureVerifyError",
    "sign_json",
    "signature_ids",
    "signed_bytes",
    "verify_signature",
    "verify_signed_json",
]


class SignatureVerifyError(ValueError):
    """A required signature is missing, malformed or does not verify."""


def signed_bytes(obj: dict[str, Any]) -> bytes:
    """The bytes a signature on ``obj`` covers: canonical JSON minus signatures/unsigned."""
    data: bytes = encode_canonical_json(
        {k: v for k, v in obj.items() if k != "signatures" and k != "unsigned"}
    )
    return data


def sign_json(obj: dict[str, Any], server_name: str, signing_key: SigningKey) -> dict[str, Any]:
    """Sign ``obj`` in place as ``server_name`` and return it.

    Existing signatures (ours under other key IDs, other servers') are kept; ``unsigned``
    is neither signed nor touched. The ``signatures`` dict is rebuilt rather than mutated,
    so a redacted copy sharing it with the original event cannot alias.
    """
    signature = signing_key.sign(signed_bytes(obj)).signature
    old = obj.get("signatures")
    signatures: dict[str, Any] = {}
    if isinstance(old, dict):
        signatures = {name: dict(v) if isinstance(v, dict) else v for name, v in old.items()}
    ours = signatures.get(server_name)
    if not isinstance(ours, dict):
        ours = signatures[server_name] = {}
    ours[key_id(signing_key)] = encode_base64(signature)
    obj["signatures"] = signatures
    return obj


def signature_ids(
    obj: dict[str, Any], server_name: str, supported_algorithms: Iterable[str] = (ED25519,)
) -> list[str]:
    """Key IDs of ``server_name``'s signatures on ``obj`` whose algorithm we understand."""
    signatures = obj.get("signatures")
    if not isinstance(signatures, dict):
        return []
    ours = signatures.get(server_name)
    if not isinstance(ours, dict):
        return []
    prefixes = tuple(f"{alg}:" for alg in supported_algorithms)
    return [kid for kid in ours if isinstance(kid, str) and kid.startswith(prefixes)]


def _signature(obj: dict[str, Any], server_name: str, kid: str) -> bytes:
    signatures = obj.get("signatures")
    if not isinstance(signatures, dict) or not isinstance(signatures.get(server_name), dict):
        raise SignatureVerifyError(f"no signatures from {server_name}")
    encoded = signatures[server_name].get(kid)
    if encoded is None:
        raise SignatureVerifyError(f"no signature from {server_name} with key {kid}")
    try:
        return decode_base64(encoded)
    except ValueError:
        raise SignatureVerifyError(f"signature {server_name} {kid} is not base64") from None


def verify_signature(message: bytes, signature: bytes, verify_key: VerifyKey, what: str) -> None:
    """Check one ed25519 signature over ``message``; ``what`` names it in the error."""
    if len(signature) != 64:
        raise SignatureVerifyError(f"{what}: an ed25519 signature is 64 bytes")
    try:
        verify_key.verify(message, signature)
    except BadSignatureError:
        raise SignatureVerifyError(f"{what}: signature does not verify") from None


def verify_signed_json(obj: dict[str, Any], server_name: str, verify_key: VerifyKey) -> None:
    """Raise ``SignatureVerifyError`` unless ``server_name`` signed ``obj`` with this key.

    Follows "Checking for a Signature": the signature under ``<alg>:<version>`` of the key
    must be present, decode, and verify over the canonical object minus signatures/unsigned.
    """
    kid = key_id(verify_key)
    if not kid.startswith(ED25519 + ":"):
        raise SignatureVerifyError(f"unsupported signing algorithm in {kid}")
    signature = _signature(obj, server_name, kid)
    try:
        message = signed_bytes(obj)
    except CanonicalJSONError as exc:
        raise SignatureVerifyError(f"object has no canonical JSON form: {exc}") from exc
    verify_signature(message, signature, verify_key, f"{server_name} {kid}")
