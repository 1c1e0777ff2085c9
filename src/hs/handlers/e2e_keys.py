"""End-to-end encryption keys (spec modules/end_to_end_encryption.md, keys.yaml,
cross_signing.yaml): device/one-time/fallback key upload, query, claim, cross-signing keys
and signatures.

Only local users are served; remote users end up in ``failures`` until federation key
queries exist. Signatures are checked the way clients make them: ed25519 over the canonical
JSON of the object without ``signatures`` and ``unsigned``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
from nacl.signing import VerifyKey

from hs.core.canonical_json import CanonicalJSONError, encode_canonical_json
from hs.core.signing import SignatureVerifyError, signed_bytes, verify_signature
from hs.core.unpadded_base64 import decode_base64
from hs.handlers.device_lists import DeviceListHandler
from hs.http.errors import MatrixError, bad_json, invalid_param
from hs.storage.e2e import E2EStore, SignatureRow

logger = logging.getLogger(__name__)

KEY_TYPES = {"master_key": "master", "self_signing_key": "self_signing",
             "user_signing_key": "user_signing"}
#: Response field for each stored cross-signing key type.
_QUERY_FIELDS = {"master": "master_keys", "self_signing": "self_signing_keys",
                 "user_signing": "user_signing_keys"}
_MAX_ID_LENGTH = 255


def canonical(obj: Any, what: str) -> str:
    try:
        data: bytes = encode_canonical_json(obj)
    except CanonicalJSONError as exc:
        raise bad_json(f"{what}: {exc}") from None
    return data.decode()


def server_of(user_id: str) -> str:
    """The server part of a user ID; 400 when it is not one."""
    if not isinstance(user_id, str) or not user_id.startswith("@") or ":" not in user_id:
        raise invalid_param(f"Invalid user ID {user_id!r}")
    return user_id.split(":", 1)[1]


def _verify(obj: dict[str, Any], signer: str, key_id: str, public_key: str) -> str:
    """The signature ``signer``/``key_id`` on ``obj`` if it verifies with ``public_key``
    (unpadded base64 ed25519); raises ``SignatureVerifyError`` otherwise."""
    sigs = obj.get("signatures")
    encoded = sigs.get(signer, {}).get(key_id) if isinstance(sigs, dict) and isinstance(
        sigs.get(signer), dict) else None
    if not isinstance(encoded, str):
        raise SignatureVerifyError(f"no signature by {signer} {key_id}")
    try:
        raw_key, signature = decode_base64(public_key), decode_base64(encoded)
    except ValueError:
        raise SignatureVerifyError(f"{key_id}: malformed base64") from None
    if len(raw_key) != 32:
        raise SignatureVerifyError(f"{key_id}: an ed25519 key is 32 bytes")
    try:
        message = signed_bytes(obj)
    except CanonicalJSONError as exc:
        raise SignatureVerifyError(f"object has no canonical JSON form: {exc}") from None
    verify_signature(message, signature, VerifyKey(raw_key), f"{signer} {key_id}")
    return encoded


def _unsigned_part(obj: dict[str, Any]) -> str:
    """Canonical JSON of a key object without signatures/unsigned: what signing covers."""
    return canonical({k: v for k, v in obj.items() if k not in ("signatures", "unsigned")},
                     "key")


def _cross_signing_key(obj: Any, user_id: str, usage: str, field: str) -> tuple[str, str]:
    """Validate an uploaded cross-signing key; returns (public key, canonical JSON)."""
    if not isinstance(obj, dict):
        raise bad_json(f"'{field}' must be an object")
    if obj.get("user_id") != user_id:
        raise invalid_param(f"'{field}.user_id' must be {user_id}")
    usages = obj.get("usage")
    if not isinstance(usages, list) or usage not in usages:
        raise invalid_param(f"'{field}.usage' must contain {usage!r}")
    keys = obj.get("keys")
    if not isinstance(keys, dict) or len(keys) != 1:
        raise invalid_param(f"'{field}.keys' must hold exactly one key")
    (key_id, public), = keys.items()
    if not isinstance(public, str) or key_id != f"ed25519:{public}":
        raise invalid_param(f"'{field}.keys' must map 'ed25519:<key>' to <key>")
    try:
        if len(decode_base64(public)) != 32:
            raise ValueError
    except ValueError:
        raise invalid_param(f"'{field}' is not an ed25519 public key") from None
    if "signatures" in obj and not isinstance(obj["signatures"], dict):
        raise bad_json(f"'{field}.signatures' must be an object")
    return public, canonical(obj, field)


def _public_key(key: dict[str, Any]) -> str | None:
    keys = key.get("keys")
    if isinstance(keys, dict) and len(keys) == 1:
        value = next(iter(keys.values()))
        return value if isinstance(value, str) else None
    return None


def _failure(errcode: str, error: str) -> dict[str, str]:
    return {"errcode": errcode, "error": error}


class E2EKeysHandler:
    def __init__(self, server_name: str, store: E2EStore, device_lists: DeviceListHandler,
                 clock: Callable[[], int]) -> None:
        self.server_name = server_name
        self.store = store
        self.device_lists = device_lists
        self.clock = clock
        #: Outbound federation queries for other servers' users (``FederationQueries``,
        #: set by the F2 wiring); without it they are reported in ``failures``.
        self.remote: Any = None

    def is_mine(self, user_id: str) -> bool:
        return server_of(user_id) == self.server_name

    # -- read APIs for /sync ----------------------------------------------------------------

    async def one_time_key_counts(self, user_id: str, device_id: str) -> dict[str, int]:
        """Unclaimed one-time keys per algorithm. ``signed_curve25519`` is always present:
        clients (libolm-based ones especially) read a missing entry as "unknown"."""
        counts = await self.store.count_one_time_keys(user_id, device_id)
        counts.setdefault("signed_curve25519", 0)
        return counts

    async def unused_fallback_key_types(self, user_id: str, device_id: str) -> list[str]:
        return await self.store.unused_fallback_key_types(user_id, device_id)

    # -- /keys/upload -----------------------------------------------------------------------

    async def upload_keys(self, user_id: str, device_id: str, body: dict[str, Any]
                          ) -> dict[str, Any]:
        device_keys = body.get("device_keys")
        otks = self._parse_keys(body.get("one_time_keys"), "one_time_keys")
        fallbacks = self._parse_keys(body.get("fallback_keys"), "fallback_keys")
        if device_keys is not None:
            key_json = self._check_device_keys(device_keys, user_id, device_id)
            if await self.store.set_device_keys(user_id, device_id, key_json, self.clock()):
                await self.device_lists.record_change(user_id, [device_id])
        if otks:
            conflicts = await self.store.add_one_time_keys(user_id, device_id, otks)
            if conflicts:
                alg, kid = conflicts[0]
                raise invalid_param(f"One time key {alg}:{kid} already exists with a "
                                    "different value")
        if fallbacks:
            await self.store.set_fallback_keys(user_id, device_id, fallbacks)
        return {"one_time_key_counts": await self.one_time_key_counts(user_id, device_id)}

    @staticmethod
    def _parse_keys(value: Any, field: str) -> list[tuple[str, str, str]]:
        """``{"<algorithm>:<key_id>": key}`` -> [(algorithm, key_id, canonical JSON)]."""
        if value is None:
            return []
        if not isinstance(value, dict):
            raise bad_json(f"'{field}' must be an object")
        out = []
        for full_id, key in value.items():
            alg, sep, kid = full_id.partition(":")
            if not sep or not alg or not kid or len(full_id) > _MAX_ID_LENGTH:
                raise invalid_param(f"'{field}': key ID {full_id!r} is not <algorithm>:<id>")
            if isinstance(key, dict):
                if not isinstance(key.get("key"), str):
                    raise bad_json(f"'{field}.{full_id}.key' must be a string")
            elif not isinstance(key, str):
                raise bad_json(f"'{field}.{full_id}' must be a string or an object")
            out.append((alg, kid, canonical(key, field)))
        return out

    @staticmethod
    def _check_device_keys(obj: Any, user_id: str, device_id: str) -> str:
        """The canonical JSON to store, after checking the object is this device's and is
        self-signed with its own ed25519 key (spec "Device keys")."""
        if not isinstance(obj, dict):
            raise bad_json("'device_keys' must be an object")
        if obj.get("user_id") != user_id:
            raise invalid_param("'device_keys.user_id' does not match the authenticated user")
        if obj.get("device_id") != device_id:
            raise invalid_param("'device_keys.device_id' does not match the access token's "
                                "device")
        algorithms = obj.get("algorithms")
        if not isinstance(algorithms, list) or not all(isinstance(a, str) for a in algorithms):
            raise bad_json("'device_keys.algorithms' must be a list of strings")
        keys = obj.get("keys")
        if not isinstance(keys, dict) or not all(isinstance(v, str) for v in keys.values()):
            raise bad_json("'device_keys.keys' must map key IDs to strings")
        ed_id = f"ed25519:{device_id}"
        if ed_id not in keys:
            raise invalid_param(f"'device_keys.keys' has no {ed_id} key")
        if not isinstance(obj.get("signatures"), dict):
            raise bad_json("'device_keys.signatures' must be an object")
        try:
            _verify(obj, user_id, ed_id, keys[ed_id])
        except SignatureVerifyError as exc:
            raise invalid_param(f"Device keys are not self-signed: {exc}") from None
        stored = {k: v for k, v in obj.items() if k != "unsigned"}
        return canonical(stored, "device_keys")

    # -- /keys/query ------------------------------------------------------------------------

    async def query_keys(self, requester: str, wanted: Any) -> dict[str, Any]:
        if not isinstance(wanted, dict):
            raise bad_json("'device_keys' must be an object")
        local: dict[str, list[str]] = {}
        remote: dict[str, list[str]] = {}
        failures: dict[str, Any] = {}
        for user_id, devices in wanted.items():
            if not isinstance(devices, list) or not all(isinstance(d, str) for d in devices):
                raise bad_json("'device_keys' must map user IDs to lists of device IDs")
            server = server_of(user_id)
            if server == self.server_name:
                local[user_id] = devices
            elif self.remote is not None:
                remote[user_id] = devices
            else:
                failures[server] = {"status": 503, "message":
                                    "Querying keys of remote users is not supported yet"}
        result: dict[str, Any] = {"device_keys": {}, "failures": failures, "master_keys": {},
                                  "self_signing_keys": {}, "user_signing_keys": {}}
        remote_result = await self.remote.query_keys(remote) if remote else None
        if not local:
            _merge_remote(result, remote_result)
            return result
        rows = await self.store.get_device_keys(local)
        cross = await self.store.get_cross_signing_keys(local)
        signatures = await self.store.get_signatures(local)
        by_target: dict[tuple[str, str], list[SignatureRow]] = {}
        for sig in signatures:
            # Signatures by the key's owner are public; a user's signatures on someone
            # else's key (their user-signing key) are visible only to that user.
            if sig.signer_user_id in (sig.target_user_id, requester):
                by_target.setdefault((sig.target_user_id, sig.target_key_id), []).append(sig)

        device_keys: dict[str, dict[str, Any]] = {u: {} for u in local}
        for row in rows:
            devices = local[row.user_id]
            if devices and row.device_id not in devices:
                continue
            key = _merge_signatures(row.keys, by_target.get((row.user_id, row.device_id)))
            key["unsigned"] = ({"device_display_name": row.display_name}
                               if row.display_name is not None else {})
            device_keys[row.user_id][row.device_id] = key
        result["device_keys"] = device_keys
        for user_id, keys in cross.items():
            for keytype, key in keys.items():
                if keytype == "user_signing" and user_id != requester:
                    continue
                if keytype == "master":
                    pub = _public_key(key)
                    key = _merge_signatures(key, by_target.get((user_id, pub or "")))
                result[_QUERY_FIELDS[keytype]][user_id] = key
        _merge_remote(result, remote_result)
        return result

    # -- /keys/claim ------------------------------------------------------------------------

    async def claim_keys(self, wanted: Any) -> dict[str, Any]:
        if not isinstance(wanted, dict):
            raise bad_json("'one_time_keys' must be an object")
        requests: list[tuple[str, str, str]] = []
        remote: dict[str, dict[str, str]] = {}
        failures: dict[str, Any] = {}
        for user_id, devices in wanted.items():
            if not isinstance(devices, dict) or not all(
                    isinstance(a, str) for a in devices.values()):
                raise bad_json("'one_time_keys' must map user IDs to {device ID: algorithm}")
            server = server_of(user_id)
            if server != self.server_name:
                if self.remote is not None:
                    remote[user_id] = devices
                else:
                    failures[server] = {"status": 503, "message":
                                        "Claiming keys of remote users is not supported yet"}
                continue
            requests.extend((user_id, device, alg) for device, alg in devices.items())
        claimed = await self.store.claim_keys(requests)
        out: dict[str, dict[str, dict[str, Any]]] = {}
        if remote:
            got = await self.remote.claim_keys(remote)
            out.update(got["one_time_keys"])
            failures.update(got["failures"])
        for (user_id, device_id, alg), (key_id, key) in claimed.items():
            out.setdefault(user_id, {})[device_id] = {f"{alg}:{key_id}": key}
        return {"one_time_keys": out, "failures": failures}

    # -- /keys/device_signing/upload --------------------------------------------------------

    def parse_signing_keys(self, user_id: str, body: dict[str, Any]) -> dict[str, tuple[
            str, str, dict[str, Any]]]:
        """keytype -> (public key, canonical JSON, object) for the keys in the body."""
        out = {}
        for field, keytype in KEY_TYPES.items():
            obj = body.get(field)
            if obj is None:
                continue
            pub, js = _cross_signing_key(obj, user_id, keytype, field)
            out[keytype] = (pub, js, obj)
        return out

    async def signing_keys_need_uia(self, user_id: str,
                                    keys: dict[str, tuple[str, str, dict[str, Any]]]) -> bool:
        """Spec (cross_signing.yaml): UIA is needed unless there is no master key yet or
        every key in the request is identical to the stored one (an idempotent retry)."""
        stored = await self.store.get_cross_signing_key_json(user_id)
        if "master" not in stored:
            return False
        return any(stored.get(kt) != js for kt, (_pub, js, _obj) in keys.items())

    async def upload_signing_keys(self, user_id: str,
                                  keys: dict[str, tuple[str, str, dict[str, Any]]]) -> None:
        stored = await self.store.get_cross_signing_keys([user_id])
        current = stored.get(user_id, {})
        if all(canonical(current.get(kt), kt) == js for kt, (_p, js, _o) in keys.items()):
            return  # nothing new (also covers an empty body)
        if "master" in keys:
            master_pub = keys["master"][0]
        elif "master" in current:
            master_pub = _public_key(current["master"]) or ""
        else:
            raise invalid_param("A master key must be uploaded before the other keys")
        for keytype in ("self_signing", "user_signing"):
            if keytype in keys:
                try:
                    _verify(keys[keytype][2], user_id, f"ed25519:{master_pub}", master_pub)
                except SignatureVerifyError as exc:
                    raise MatrixError(400, "M_INVALID_SIGNATURE",
                                      f"The {keytype} key is not signed by the master key: "
                                      f"{exc}") from None
        await self.store.set_cross_signing_keys(
            user_id, {kt: (pub, js) for kt, (pub, js, _o) in keys.items()}, self.clock())
        await self.device_lists.record_change(user_id, [master_pub])

    # -- /keys/signatures/upload ------------------------------------------------------------

    async def upload_signatures(self, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Verify and store each signature; per-key problems go to ``failures``
        (spec cross_signing.yaml ``/keys/signatures/upload``)."""
        failures: dict[str, dict[str, Any]] = {}
        targets: list[tuple[str, str, dict[str, Any]]] = []
        for target_user, keys in body.items():
            if not isinstance(keys, dict):
                raise bad_json("The body must map user IDs to {key ID: signed object}")
            server_of(target_user)
            for key_id, obj in keys.items():
                if not isinstance(obj, dict):
                    failures.setdefault(target_user, {})[key_id] = _failure(
                        "M_BAD_JSON", "The signed object must be a JSON object")
                else:
                    targets.append((target_user, key_id, obj))
        if not targets:
            return {"failures": failures}
        own_devices = await self.store.get_device_keys_json(user_id)
        cross = await self.store.get_cross_signing_keys(
            {user_id} | {t for t, _, _ in targets})
        mine = cross.get(user_id, {})
        self_signing = _public_key(mine["self_signing"]) if "self_signing" in mine else None
        user_signing = _public_key(mine["user_signing"]) if "user_signing" in mine else None

        new_rows: list[SignatureRow] = []
        own_changed: list[str] = []
        observed: set[str] = set()
        for target_user, key_id, obj in targets:
            try:
                rows = self._check_signature(user_id, target_user, key_id, obj, own_devices,
                                             cross, self_signing, user_signing)
            except _Failure as exc:
                failures.setdefault(target_user, {})[key_id] = _failure(exc.errcode,
                                                                        exc.error)
                continue
            new_rows.extend(rows)
            if target_user == user_id:
                own_changed.append(key_id)
            else:
                observed.add(target_user)
        if new_rows:
            await self.store.add_signatures(new_rows)
        if own_changed:
            await self.device_lists.record_change(user_id, own_changed)
        for target_user in sorted(observed):
            await self.device_lists.record_change(target_user, [], observer=user_id)
        return {"failures": failures}

    def _check_signature(self, user_id: str, target_user: str, key_id: str,
                         obj: dict[str, Any], own_devices: dict[str, str],
                         cross: dict[str, dict[str, dict[str, Any]]],
                         self_signing: str | None, user_signing: str | None
                         ) -> list[SignatureRow]:
        if obj.get("user_id") != target_user:
            raise _Failure("M_INVALID_PARAM", "user_id of the object does not match")
        target_master = cross.get(target_user, {}).get("master")
        master_pub = _public_key(target_master) if target_master else None
        if target_user == user_id and key_id in own_devices:
            # One of my devices, signed with my self-signing key.
            stored = orjson_loads(own_devices[key_id])
            signer_key, signer_pub = self_signing, self_signing
            what = "self-signing key"
        elif target_user == user_id and key_id == master_pub and target_master:
            # My master key, signed by one of my devices (its ed25519 device key).
            stored = target_master
            rows = []
            for dev_key_id in _signature_ids(obj, user_id):
                device = dev_key_id.partition(":")[2]
                if device not in own_devices:
                    continue
                dev_keys = orjson_loads(own_devices[device]).get("keys", {})
                pub = dev_keys.get(dev_key_id)
                rows.append(self._verified_row(obj, stored, user_id, dev_key_id, pub,
                                               target_user, key_id, "device key"))
            if not rows:
                raise _Failure("M_INVALID_SIGNATURE", "No signature by a device of the user")
            return rows
        elif target_user != user_id and key_id == master_pub and target_master:
            # Someone else's master key, signed with my user-signing key.
            stored = target_master
            signer_key, signer_pub = user_signing, user_signing
            what = "user-signing key"
        else:
            raise _Failure("M_NOT_FOUND", f"Unknown key {key_id} of {target_user}")
        if signer_key is None or signer_pub is None:
            raise _Failure("M_MISSING_PARAM", f"No {what} has been uploaded")
        return [self._verified_row(obj, stored, user_id, f"ed25519:{signer_key}", signer_pub,
                                   target_user, key_id, what)]

    @staticmethod
    def _verified_row(obj: dict[str, Any], stored: dict[str, Any], signer: str,
                      signer_key_id: str, signer_pub: str | None, target_user: str,
                      target_key: str, what: str) -> SignatureRow:
        try:
            if _unsigned_part(obj) != _unsigned_part(stored):
                raise _Failure("M_INVALID_PARAM", "The signed object differs from the "
                               "stored key")
        except MatrixError as exc:
            raise _Failure("M_BAD_JSON", exc.error) from None
        if signer_pub is None:
            raise _Failure("M_INVALID_SIGNATURE", f"Unknown {what} {signer_key_id}")
        try:
            signature = _verify(obj, signer, signer_key_id, signer_pub)
        except SignatureVerifyError as exc:
            raise _Failure("M_INVALID_SIGNATURE", f"Bad signature by {what}: {exc}") from None
        return SignatureRow(signer, signer_key_id, target_user, target_key, signature)

    # -- device deletion --------------------------------------------------------------------

    async def on_devices_deleted(self, user_id: str, device_ids: list[str]) -> None:
        """``DeviceHandler.on_deleted`` hook: the keys go, and watchers are told."""
        await self.store.delete_devices(user_id, device_ids)
        await self.device_lists.record_change(user_id, device_ids)


class _Failure(Exception):
    def __init__(self, errcode: str, error: str) -> None:
        super().__init__(error)
        self.errcode = errcode
        self.error = error


def _merge_remote(result: dict[str, Any], remote: dict[str, Any] | None) -> None:
    """Add other servers' answers (``FederationQueries.query_keys``) to a /keys/query."""
    if remote is None:
        return
    for field in ("device_keys", "master_keys", "self_signing_keys", "failures"):
        result[field].update(remote.get(field, {}))


def orjson_loads(text: str) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(text)
    return value


def _signature_ids(obj: dict[str, Any], signer: str) -> list[str]:
    sigs = obj.get("signatures")
    if not isinstance(sigs, dict) or not isinstance(sigs.get(signer), dict):
        return []
    return [k for k in sigs[signer] if isinstance(k, str) and k.startswith("ed25519:")]


def _merge_signatures(key: dict[str, Any], extra: list[SignatureRow] | None
                      ) -> dict[str, Any]:
    """A copy of ``key`` with the separately uploaded signatures added."""
    key = dict(key)
    if not extra:
        return key
    sigs = {u: dict(v) for u, v in key.get("signatures", {}).items() if isinstance(v, dict)}
    for row in extra:
        sigs.setdefault(row.signer_user_id, {})[row.signer_key_id] = row.signature
    key["signatures"] = sigs
    return key


__all__ = ["E2EKeysHandler", "server_of"]
