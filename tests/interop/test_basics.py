"""Server keys, profiles and room aliases across hs and a real Synapse (no shared room)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from tests.interop.client import Client, register, request, verify_json, wait_for
from tests.interop.synapse_fed import FedHs, FedSynapse

SIDES = ("hs", "synapse")


def _own_keys(server: Any) -> dict[str, Any]:
    keys = request(server.base_url, "GET", "/_matrix/key/v2/server")
    assert keys["server_name"] == server.server_name
    for key_id, key in keys["verify_keys"].items():
        verify_json(keys, server.server_name, key_id, key["key"])
    return dict(keys)


def _check_notary(notary: Any, origin: Any) -> None:
    """``notary`` fetched ``origin``'s keys itself and returns them with both signatures."""
    direct = _own_keys(origin)
    notary_keys = _own_keys(notary)
    # Name the key IDs: Synapse only fetches on a cache miss of a named key.
    criteria = {key_id: {"minimum_valid_until_ts": int(time.time() * 1000)}
                for key_id in direct["verify_keys"]}
    answer = request(notary.base_url, "POST", "/_matrix/key/v2/query",
                     {"server_keys": {origin.server_name: criteria}}, timeout=30)
    [fetched] = [k for k in answer["server_keys"] if k["server_name"] == origin.server_name]
    assert set(fetched["verify_keys"]) == set(direct["verify_keys"])
    for key_id, key in direct["verify_keys"].items():
        assert fetched["verify_keys"][key_id]["key"] == key["key"]
        verify_json(fetched, origin.server_name, key_id, key["key"])
    notary_sigs = fetched["signatures"].get(notary.server_name, {})
    assert notary_sigs, f"{notary.server_name} did not sign the keys it served: {fetched}"
    for key_id in notary_sigs:
        verify_json(fetched, notary.server_name, key_id,
                    notary_keys["verify_keys"][key_id]["key"])


def test_synapse_fetches_and_verifies_hs_keys(synapse: FedSynapse, hs: FedHs) -> None:
    _check_notary(synapse, hs)


def test_hs_fetches_and_verifies_synapse_keys(synapse: FedSynapse, hs: FedHs) -> None:
    _check_notary(hs, synapse)


@pytest.mark.parametrize("owner", SIDES)
def test_profile_query_over_federation(synapse: FedSynapse, hs: FedHs, owner: str) -> None:
    servers = {"hs": hs, "synapse": synapse}
    viewer_side = "synapse" if owner == "hs" else "hs"
    subject: Client = register(servers[owner], "prof")
    viewer: Client = register(servers[viewer_side], "viewer")
    subject.set_displayname(f"Profile of {owner}")
    profile = viewer.profile(subject.user_id)
    assert profile.get("displayname") == f"Profile of {owner}"


@pytest.mark.parametrize("owner", SIDES)
def test_alias_resolution_over_federation(synapse: FedSynapse, hs: FedHs, owner: str) -> None:
    servers = {"hs": hs, "synapse": synapse}
    creator = register(servers[owner], "alias")
    resolver = register(servers["synapse" if owner == "hs" else "hs"], "resolver")
    localpart = f"interop-{creator.user_id[1:].split(':')[0]}"
    room_id = creator.create_room("10", room_alias_name=localpart)
    alias = f"#{localpart}:{creator.server_name}"
    assert creator.resolve_alias(alias)["room_id"] == room_id
    answer = resolver.resolve_alias(alias)
    assert answer["room_id"] == room_id
    assert creator.server_name in answer["servers"]


@pytest.mark.parametrize("owner", SIDES)
def test_join_by_alias_over_federation(synapse: FedSynapse, hs: FedHs, owner: str) -> None:
    """A user of the other server joins ``#alias:owner`` (resolve, then join via its servers)."""
    servers = {"hs": hs, "synapse": synapse}
    creator = register(servers[owner], "jalias")
    joiner = register(servers["synapse" if owner == "hs" else "hs"], "joiner")
    localpart = f"join-{creator.user_id[1:].split(':')[0]}"
    room_id = creator.create_room("12", room_alias_name=localpart)
    assert joiner.join(f"#{localpart}:{creator.server_name}") == room_id
    wait_for(lambda: creator.membership(room_id, joiner.user_id) == "join",
             f"{creator.server_name} to see {joiner.user_id} joined by alias")
